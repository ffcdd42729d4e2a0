package vm

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/emberchain/ember/internal/sdkas"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// snapshotOf prepares code on v and returns its start-up snapshot, nil
// when it has none.
func snapshotOf(t *testing.T, v *VM, code []byte) *snapshot {
	t.Helper()
	if err := v.Prepare(contractA, code); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cache[cacheKey{id: string(contractA), code: sha256.Sum256(code)}].snap
}

// sameOutcome fails unless two calls ended alike: error (code and text),
// value, compute, events and logs.
func sameOutcome(t *testing.T, what string, got, want *Result, gotErr, wantErr error) {
	t.Helper()
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || codeOf(gotErr) != codeOf(wantErr) {
		t.Fatalf("%s: error %v, without the snapshot %v", what, gotErr, wantErr)
	}
	if got.Compute != want.Compute || string(got.Value) != string(want.Value) ||
		len(got.Events) != len(want.Events) || !slices.Equal(got.Logs, want.Logs) {
		t.Fatalf("%s: compute %d value %q events %d logs %q; without the snapshot %d %q %d %q", what,
			got.Compute, got.Value, len(got.Events), got.Logs, want.Compute, want.Value, len(want.Events), want.Logs)
	}
}

// Memory layout of splitContract.
const (
	splitExitAt = 0x2000          // exit arguments whose result is "AB"
	splitLogAt  = 0x2100          // log arguments "hi"
	splitValue  = splitExitAt + 4 // the "A"
)

// splitContract is a contract whose _start does start-up work first
// (changes its data, a global and a local nobody reads later, calls a
// helper that loops and may grow memory), then extra, then logs, checks
// the start-up's global from the rest, and exits with the changed data.
func splitContract(extra, helper []byte) wasmModule {
	exit := exitWith(0, []byte("AB"), "")
	if exit[splitValue-splitExitAt] != 'A' {
		panic("exit arguments laid out otherwise")
	}
	log := mustMarshal(&chainpb.LogArguments{Message: "hi"})
	start := cat(
		store8(splitValue, 'Z'),
		i32c(7), []byte{0x24, 0}, // global 0 = 7
		i32c(5), []byte{0x21, 1}, // local 1 = 5, never read
		call(2),
		extra,
		sysCall(chainpb.SystemCallId_log, splitLogAt, int32(len(log))),
		trapIf([]byte{0x23, 0}, i32c(7), []byte{0x47}), // global 0 != 7
		sysCall(chainpb.SystemCallId_exit, splitExitAt, int32(len(exit))),
	)
	if helper == nil {
		// Ten iterations of a loop: a charged loop segment in a callee.
		helper = cat(i32c(10), []byte{0x21, 0, 0x03, 0x40, 0x20, 0}, i32c(1), []byte{0x6b, 0x22, 0, 0x0d, 0, 0x0b})
	}
	return wasmModule{
		types:   [][2][]byte{syscallType, {nil, nil}},
		imports: true,
		funcs: []wasmFunc{
			{typ: 1, nLocal: 1, locals: []byte{2, valI32}, code: start},
			{typ: 1, nLocal: 1, locals: []byte{1, valI32}, code: helper},
		},
		memory:  &[2]uint32{1, 0},
		globals: [][]byte{{valI32, 1, 0x41, 0, 0x0b}},
		exports: map[string]uint32{"_start": 1},
		data:    map[uint32][]byte{splitExitAt: exit, splitLogAt: log},
	}
}

// TestStartUpSnapshot: modules whose start-up can be run ahead, and those
// whose cannot, end every call exactly as without the snapshot, with
// fuel to spare and with fuel around what the start-up takes, on both
// engines, the second call from a pooled instance.
func TestStartUpSnapshot(t *testing.T) {
	withStart := func(m wasmModule, start uint32) []byte {
		m.start = &start
		return m.bytes()
	}
	withExport := func(m wasmModule, name string, f uint32) []byte {
		m.exports = map[string]uint32{"_start": 1, name: f}
		return m.bytes()
	}
	returnEarly := splitContract(nil, nil)
	returnEarly.globals = [][]byte{{valI32, 1, 0x41, 1, 0x0b}} // global 0 starts at 1
	returnEarly.funcs[0].code = cat([]byte{0x23, 0, 0x04, 0x40, 0x0f, 0x0b}, returnEarly.funcs[0].code)
	startedGuard := splitContract(nil, nil) // AssemblyScript's: if (~started) return; ~started = 1
	startedGuard.globals = append(startedGuard.globals, []byte{valI32, 1, 0x41, 0, 0x0b})
	startedGuard.funcs[0].code = cat([]byte{0x23, 1, 0x04, 0x40, 0x0f, 0x0b}, i32c(1), []byte{0x24, 1}, startedGuard.funcs[0].code)
	// A helper that makes a system call through call_indirect: cut before.
	indirect := splitContract(nil, nil)
	indirect.funcs = append(indirect.funcs, wasmFunc{typ: 1, code: cat(i32c(0), []byte{0x04, 0x40}, i32c(0), []byte{0x11, 1, 0, 0x0b})})
	indirect.funcs[0].code = cat(indirect.funcs[0].code[:0:0], store8(splitValue, 'Z'), call(3), indirect.funcs[0].code[len(store8(splitValue, 'Z')):])
	// The start section reaching a system call: no snapshot at all.
	syscallStart := splitContract(nil, nil)
	syscallStart.funcs = append(syscallStart.funcs, wasmFunc{typ: 1, code: sysCall(chainpb.SystemCallId_log, splitLogAt, 4)})
	pureStart := splitContract(nil, nil)
	pureStart.funcs = append(pureStart.funcs, wasmFunc{typ: 1, code: store8(splitValue+1, 'Y')})
	// A local the start-up writes and the rest reads: cut before the write.
	readsLocal := splitContract(nil, nil)
	readsLocal.funcs[0].code = cat(readsLocal.funcs[0].code, []byte{0x20, 1, 0x1a})
	for _, tc := range []struct {
		name string
		code []byte
		snap bool
	}{
		{"cut after the start-up", splitContract(nil, nil).bytes(), true},
		{"start-up grows memory", splitContract(cat(i32c(1), []byte{0x40, 0, 0x1a}), nil).bytes(), true},
		{"operands on the stack at the first system call", scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")}), false},
		{"start-up traps", splitContract(nil, cat(i32c(1), i32c(0), []byte{0x6e, 0x1a})).bytes(), false},
		{"start-up out of its fuel", splitContract(nil, cat(i32c(300_000), []byte{0x21, 0, 0x03, 0x40, 0x20, 0}, i32c(1), []byte{0x6b, 0x22, 0, 0x0d, 0, 0x0b})).bytes(), false},
		{"start-up exceeds the call depth", splitContract(nil, call(2)).bytes(), false},
		{"start-up returns early", returnEarly.bytes(), false},
		{"AssemblyScript's started guard", startedGuard.bytes(), true},
		{"call_indirect in the start-up", indirect.withTable(1), true},
		{"start function makes a system call", withStart(syscallStart, 3), false},
		{"start function run ahead", withStart(pureStart, 3), true},
		{"local read after the cut", readsLocal.bytes(), true},
		{"cut exports clash: compiled without the cut", withExport(splitContract(nil, nil), exportInit, 2), false},
		{"no system call at all", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: cat(i32c(1), []byte{0x1a})}}, exports: map[string]uint32{"_start": 0}}.bytes(), true},
	} {
		for _, interp := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/interpreter=%v", tc.name, interp), func(t *testing.T) {
				with := newVM(t, Config{Interpreter: interp})
				without := newVM(t, Config{Interpreter: interp, NoSnapshot: true})
				snap := snapshotOf(t, with, tc.code)
				if (snap != nil) != tc.snap {
					t.Fatalf("snapshot %+v, want one: %v", snap, tc.snap)
				}
				if snapshotOf(t, without, tc.code) != nil {
					t.Fatal("a snapshot with NoSnapshot")
				}
				fuels := []uint64{testFuel, 0, 1, 2_000}
				if snap != nil {
					at := snap.memCharge + snap.fuel
					fuels = append(fuels, at-1, at, at+1, at+500)
				}
				for _, fuel := range fuels {
					for round := range 2 { // the second from a pooled instance
						runWith := func(v *VM) (*Result, error) {
							return run(t, v, newMemHost(v), tc.code, func(c *Call) { c.Fuel = fuel })
						}
						got, gotErr := runWith(with)
						want, wantErr := runWith(without)
						sameOutcome(t, fmt.Sprintf("fuel %d, round %d", fuel, round), got, want, gotErr, wantErr)
					}
				}
			})
		}
	}
}

// TestFindCut: where _start is cut, on hand-made bodies.
func TestFindCut(t *testing.T) {
	pure := []byte{0x41, 1, 0x1a} // i32.const 1; drop
	reach := cat(i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), call(0), []byte{0x1a})
	for _, tc := range []struct {
		name   string
		code   []byte
		prefix int // bytes of code before the cut; -1: no cut
	}{
		{"pure then a system call", cat(pure, pure, reach), 2 * len(pure)},
		{"a system call first", cat(reach, pure), 0},
		{"nothing reaches a system call", cat(pure, pure), 2 * len(pure)},
		{"operands pushed before the call are left after the cut", cat(pure, i32c(4), []byte{0x1a}, reach), len(pure) + 3},
		{"an operand pushed long before", cat(i32c(9), pure, pure, reach, []byte{0x1a}), 0},
		{"a block is whole", cat(pure, []byte{0x02, 0x40}, pure, reach, []byte{0x0b}), len(pure)},
		{"a block's result counts", cat([]byte{0x02, 0x7f, 0x41, 3, 0x0b}, pure, reach, []byte{0x1a}), 0},
		{"a local written before and read after", cat(pure, i32c(1), []byte{0x21, 0}, pure, reach, []byte{0x20, 0, 0x1a}), len(pure)},
		{"a local written before and never read", cat(pure, i32c(1), []byte{0x21, 0}, pure, reach), len(pure) + 4 + len(pure)},
		{"after an unconditional branch no cut", cat(pure, []byte{0x02, 0x40, 0x0c, 0, 0x0b}, []byte{0x00}, pure, reach), len(pure) + 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &module{types: []funcType{{params: syscallType[0], results: syscallType[1]}, {}}, funcTypes: []uint32{1}, numImported: 1}
			body := cat([]byte{1, 1, valI32}, tc.code, []byte{0x0b})
			start, cut, ok := m.findCut(body, []bool{false})
			if !ok {
				t.Fatal("does not decode")
			}
			if cut-start != tc.prefix {
				t.Fatalf("cut after %d bytes of code, want %d", cut-start, tc.prefix)
			}
		})
	}
}

// TestSnapshotKeepsSDKCompute: every call of the SDK-built contracts'
// scenarios charges the same compute, and ends the same, with the
// start-up snapshot and without, and the token does get one.
func TestSnapshotKeepsSDKCompute(t *testing.T) {
	code := sdkContract(t, "token")
	snap := snapshotOf(t, newVM(t, Config{}), code)
	if snap == nil {
		t.Fatal("the SDK token has no start-up snapshot")
	}
	t.Logf("the SDK token's start-up: %d fuel run once, %d for the initial memory", snap.fuel, snap.memCharge)
	with, without := runTokenScenario(t, Config{}), runTokenScenario(t, Config{NoSnapshot: true})
	if !slices.Equal(with, without) || len(with) == 0 {
		t.Fatalf("token compute per call: with the snapshot %v, without %v", with, without)
	}
	for _, name := range []string{"storage", "kvstore", "authorizer", "forwarder", "token"} {
		code := sdkContract(t, name)
		vs := []*VM{newVM(t, Config{}), newVM(t, Config{NoSnapshot: true})}
		hs := []*memHost{newMemHost(vs[0]), newMemHost(vs[1])}
		for _, h := range hs {
			h.signers[string(accountX)] = true
		}
		snap := snapshotOf(t, vs[0], code)
		// The storage contract's entry points, the key-value store's, the
		// token's reads, and unknown ones.
		eps := []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 697873187, 926724806, 2119567531,
			sdkas.TokenName, sdkas.TokenBalanceOf, sdkas.TokenTotalSupply}
		for _, ep := range eps {
			fuels := []uint64{testFuel, 100_000}
			if snap != nil {
				fuels = append(fuels, snap.memCharge+snap.fuel-1, snap.memCharge+snap.fuel, snap.memCharge+snap.fuel+1)
			}
			for _, fuel := range fuels {
				var res [2]*Result
				var errs [2]error
				for i, v := range vs {
					res[i], errs[i] = run(t, v, hs[i], code, func(c *Call) { c.EntryPoint, c.Args, c.Fuel = ep, []byte("hello"), fuel })
				}
				sameOutcome(t, fmt.Sprintf("%s entry point %d, fuel %d", name, ep, fuel), res[0], res[1], errs[0], errs[1])
			}
		}
	}
}
