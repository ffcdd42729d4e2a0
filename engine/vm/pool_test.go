package vm

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// Memory layout of dirtyContract, past the scripted contracts' buffers.
const (
	dirtyData = 0x3000 // a data segment: 0x2a, 0x00, 0x2b
	dirtyZero = 0x8000 // past every data segment: zero in a fresh instance
	dirtyMark = 0x9000 // the call's marker while it runs
)

// Modes of dirtyContract, chosen by the entry point.
const (
	modeExit       = 1 // exit with "ok"
	modeTrap       = 2 // unreachable
	modeLoop       = 3 // loop until the fuel runs out
	modeGrow       = 4 // grow memory by a page and return
	modeRecurse    = 5 // recurse past the call depth
	modeRevert     = 6 // exit with code 1
	modeCallItself = 7 // call itself (as contractA) with modeExit, then exit with "ok"
)

// trapIf is: if cond (on the stack) { unreachable }.
func trapIf(cond ...[]byte) []byte { return cat(cat(cond...), []byte{0x04, 0x40, 0x00, 0x0b}) }

func load8(addr int32) []byte { return cat(i32c(addr), []byte{0x2d, 0, 0}) }

func store8(addr, v int32) []byte { return cat(i32c(addr), i32c(v), []byte{0x3a, 0, 0}) }

// sysCall calls sid with args of n bytes at off, dropping the code.
func sysCall(sid chainpb.SystemCallId, off, n int32) []byte {
	return cat(i32c(int32(sid)), i32c(retBuf), i32c(retBufLen), i32c(off), i32c(n), i32c(writtenAt), call(0), []byte{0x1a})
}

// dirtyContract checks that it starts from a fresh instance's state (a
// mutable global at its initial value, its data segment intact, zeroes
// elsewhere, one page of memory) and traps otherwise; then dirties all
// of it, marks memory with its first argument byte, spins, checks the
// mark is still its own, and ends as its entry point (mode) says.
func dirtyContract() []byte {
	exitOK := exitWith(0, []byte("ok"), "")
	exitRevert := exitWith(1, nil, "revert")
	callSelf := mustMarshal(&chainpb.CallArguments{ContractId: contractA, EntryPoint: modeExit, Args: []byte{0x77}})
	args := cat(exitOK, exitRevert, callSelf)
	exitOKAt := int32(scriptData)
	exitRevertAt := exitOKAt + int32(len(exitOK))
	callSelfAt := exitRevertAt + int32(len(exitRevert))
	mode := load8(retBuf + 3) // get_arguments result: 0x0a len 0x08 <entry point> 0x12 len <args>
	mark := load8(retBuf + 6)
	when := func(m int32, body ...[]byte) []byte {
		return cat(mode, i32c(m), []byte{0x46, 0x04, 0x40}, cat(body...), []byte{0x0b})
	}
	start := cat(
		trapIf([]byte{0x23, 0}, i32c(7), []byte{0x47}), // global 0 != 7
		trapIf(load8(dirtyData), i32c(0x2a), []byte{0x47}),
		trapIf(load8(dirtyData+1)),
		trapIf(load8(dirtyData+2), i32c(0x2b), []byte{0x47}),
		trapIf(load8(dirtyZero)),
		trapIf(load8(dirtyMark)),
		trapIf([]byte{0x3f, 0}, i32c(1), []byte{0x47}), // memory.size != 1
		i32c(99), []byte{0x24, 0}, // global 0 = 99
		store8(dirtyData, 0), store8(dirtyData+1, 1), store8(dirtyZero, 0xff),
		sysCall(chainpb.SystemCallId_get_arguments, exitOKAt, 0),
		i32c(dirtyMark), mark, []byte{0x3a, 0, 0},
		// Spin a while, so that concurrent calls overlap.
		i32c(2000), []byte{0x21, 0, 0x03, 0x40, 0x20, 0}, i32c(1), []byte{0x6b, 0x22, 0, 0x0d, 0, 0x0b},
		trapIf(load8(dirtyMark), mark, []byte{0x47}),
		when(modeExit, sysCall(chainpb.SystemCallId_exit, exitOKAt, int32(len(exitOK)))),
		when(modeTrap, []byte{0x00}),
		when(modeLoop, []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}),
		when(modeGrow, i32c(1), []byte{0x40, 0, 0x1a}),
		when(modeRecurse, call(2)),
		when(modeRevert, sysCall(chainpb.SystemCallId_exit, exitRevertAt, int32(len(exitRevert)))),
		when(modeCallItself,
			sysCall(chainpb.SystemCallId_call, callSelfAt, int32(len(callSelf))),
			sysCall(chainpb.SystemCallId_exit, exitOKAt, int32(len(exitOK)))),
	)
	return wasmModule{
		types:   [][2][]byte{syscallType, {nil, nil}},
		imports: true,
		funcs:   []wasmFunc{{typ: 1, nLocal: 1, locals: []byte{1, valI32}, code: start}, {typ: 1, code: call(2)}},
		memory:  &[2]uint32{1, 0},
		globals: [][]byte{{valI32, 1, 0x41, 7, 0x0b}, {valI64, 0, 0x42, 5, 0x0b}},
		exports: map[string]uint32{"_start": 1},
		data:    map[uint32][]byte{scriptData: args, dirtyData: {0x2a, 0x00, 0x2b}},
	}.bytes()
}

// idle is the idle instances of a cached contract.
func idle(v *VM, id, code []byte) []*instance {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.cache[cacheKey{id: string(id), code: sha256.Sum256(code)}]
	if c == nil {
		return nil
	}
	return append([]*instance(nil), c.idle...)
}

// TestPooledInstanceIsPristine: whatever a call did to its instance
// (dirtied memory and globals, trapped, ran out of fuel, grew memory,
// exceeded the call depth, reverted, re-entered itself), the next call
// sees a fresh instance's state and is charged as on a fresh VM, on both
// engines.
func TestPooledInstanceIsPristine(t *testing.T) {
	code := dirtyContract()
	call := func(v *VM, h *memHost, mode uint32, fuel uint64) (*Result, error) {
		return v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: code, EntryPoint: mode, Args: []byte{0x11}, Fuel: fuel, Host: h})
	}
	fresh := newVM(t, Config{})
	want, err := call(fresh, newMemHost(fresh), modeExit, testFuel)
	if err != nil || string(want.Value) != "ok" {
		t.Fatalf("first call on a fresh VM: %v, %q", err, want.Value)
	}
	for _, tc := range []struct {
		name   string
		mode   uint32
		fuel   uint64
		want   chainpb.ErrorCode
		msg    string
		pooled bool // the instance goes back to the pool
	}{
		{"exit", modeExit, testFuel, chainpb.ErrorCode_success, "", true},
		{"trap", modeTrap, testFuel, chainpb.ErrorCode_reversion, "trapped", true},
		{"out of fuel", modeLoop, 200_000, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		{"memory grown", modeGrow, testFuel, chainpb.ErrorCode_success, "", false},
		{"call depth", modeRecurse, testFuel, chainpb.ErrorCode_reversion, "call depth", true},
		{"revert", modeRevert, testFuel, 1, "revert", true},
		{"re-entered", modeCallItself, testFuel, chainpb.ErrorCode_success, "", true},
	} {
		for _, cfg := range []Config{{}, {Interpreter: true}} {
			t.Run(fmt.Sprintf("%s/interpreter=%v", tc.name, cfg.Interpreter), func(t *testing.T) {
				v := newVM(t, cfg)
				h := newMemHost(v)
				h.contracts[string(contractA)] = code
				if _, err := call(v, h, modeExit, testFuel); err != nil {
					t.Fatal(err)
				}
				before := idle(v, contractA, code)
				if len(before) == 0 {
					t.Fatal("no idle instance after a call")
				}
				_, err := call(v, h, tc.mode, tc.fuel)
				if codeOf(err) != tc.want || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
					t.Fatalf("error %v (code %d), want code %d containing %q", err, codeOf(err), tc.want, tc.msg)
				}
				reused := false
				for _, in := range idle(v, contractA, code) {
					reused = reused || in == before[len(before)-1]
				}
				if reused != tc.pooled {
					t.Fatalf("instance back in the pool: %v, want %v", reused, tc.pooled)
				}
				for range 3 {
					got, err := call(v, h, modeExit, testFuel)
					if err != nil {
						t.Fatalf("next call did not see a fresh instance: %v", err)
					}
					if string(got.Value) != "ok" || got.Compute != want.Compute {
						t.Fatalf("next call: %q, compute %d; on a fresh VM %q, %d", got.Value, got.Compute, want.Value, want.Compute)
					}
				}
			})
		}
	}
}

// TestInstancesNotShared: concurrent calls of one contract, each marking
// memory with its own byte and checking it is still there after a spin,
// and each starting from a fresh instance's state (run with -race).
func TestInstancesNotShared(t *testing.T) {
	code := dirtyContract()
	for _, cfg := range []Config{{}, {Interpreter: true}} {
		v := newVM(t, cfg)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := newMemHost(v)
				for range 50 {
					res, err := v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: code, EntryPoint: modeExit, Args: []byte{byte(g + 1)}, Fuel: testFuel, Host: h})
					if err == nil && string(res.Value) != "ok" {
						err = fmt.Errorf("result %q", res.Value)
					}
					if err != nil {
						errs <- fmt.Errorf("goroutine %d (interpreter %v): %w", g, cfg.Interpreter, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := len(idle(v, contractA, code)); n == 0 || n > maxIdle {
			t.Errorf("%d idle instances after the calls, want 1 to %d", n, maxIdle)
		}
	}
}

// spliceBefore inserts section sec before the section with the given id.
func spliceBefore(b []byte, id byte, sec []byte) []byte {
	r := reader{b: b, off: 8}
	for !r.done() {
		at := r.off
		s, _ := r.byte()
		n, _ := r.u32()
		if s == id {
			return cat(b[:at], sec, b[at:])
		}
		r.off += int(n)
	}
	return cat(b, sec)
}

// TestSegmentChangesAreNotPooled: table.set and data.drop change an
// instance outside its memory and globals; a contract using either gets a
// fresh instance every call, so its second call succeeds as its first.
func TestSegmentChangesAreNotPooled(t *testing.T) {
	checkEntry0 := cat(i32c(0), []byte{0x11, 1, 0}, i32c(1), []byte{0x47, 0x04, 0x40, 0x00, 0x0b}) // call_indirect 0 must return 1
	tableSet := wasmModule{
		types:   [][2][]byte{{nil, nil}, {nil, []byte{valI32}}},
		funcs:   []wasmFunc{{typ: 0, code: cat(checkEntry0, i32c(0), i32c(1), []byte{0x25, 0, 0x26, 0})}, {typ: 1, code: i32c(1)}, {typ: 1, code: i32c(2)}},
		exports: map[string]uint32{"_start": 0},
	}.withTable(2)
	tableSet = spliceBefore(tableSet, secCode, section(secElement, vec(1, []byte{0x00, 0x41, 0x00, 0x0b, 2, 1, 2})))
	dataDrop := wasmModule{
		types:   [][2][]byte{{nil, nil}},
		funcs:   []wasmFunc{{typ: 0, code: cat(i32c(0), i32c(0), i32c(1), []byte{0xfc, 8, 0, 0}, []byte{0xfc, 9, 0})}},
		memory:  &[2]uint32{1, 0},
		exports: map[string]uint32{"_start": 0},
		extra:   [][]byte{section(secData, vec(1, []byte{0x01, 1, 0x05}))},
	}.bytes()
	dataDrop = spliceBefore(dataDrop, secCode, section(secDataCount, appendU32(nil, 1)))
	plain := wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: cat(i32c(0), []byte{0x25, 0, 0x1a})}}, exports: map[string]uint32{"_start": 0}}.withTable(1)
	for _, tc := range []struct {
		name     string
		code     []byte
		reusable bool
	}{
		{"table.set", tableSet, false},
		{"data.drop", dataDrop, false},
		{"table.get only", plain, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := instrumentModule(tc.code, DefaultMaxCallDepth, false)
			if err != nil {
				t.Fatal(err)
			}
			if inst.reusable != tc.reusable {
				t.Fatalf("reusable %v, want %v", inst.reusable, tc.reusable)
			}
			for _, cfg := range []Config{{}, {Interpreter: true}} {
				v := newVM(t, cfg)
				for i := range 3 {
					if _, err := run(t, v, newMemHost(v), tc.code); err != nil {
						t.Fatalf("call %d (interpreter %v): %v", i, cfg.Interpreter, err)
					}
				}
				if n := len(idle(v, contractA, tc.code)); (n > 0) != tc.reusable {
					t.Fatalf("%d idle instances", n)
				}
			}
		})
	}
}

// TestIdleMemoryBudget: idle instances are kept only while their memory
// fits the VM's budget; calls succeed from fresh state either way, and
// evicting a module gives its instances' memory back.
func TestIdleMemoryBudget(t *testing.T) {
	code := dirtyContract() // one page
	for _, tc := range []struct {
		name   string
		budget int64
		idle   int // after a call that re-entered itself (two instances)
	}{
		{"none", 0, 0},
		{"one instance", pageBytes, 1},
		{"two instances", 2*pageBytes + 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVM(t, Config{CacheEntries: 1})
			v.idleBudget = tc.budget
			h := newMemHost(v)
			h.contracts[string(contractA)] = code
			for _, mode := range []uint32{modeCallItself, modeExit, modeCallItself} {
				if _, err := v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: code, EntryPoint: mode, Args: []byte{1}, Fuel: testFuel, Host: h}); err != nil {
					t.Fatal(err)
				}
			}
			v.mu.Lock()
			held := v.idleBytes
			v.mu.Unlock()
			if n := len(idle(v, contractA, code)); n != tc.idle || held != int64(n)*pageBytes {
				t.Fatalf("%d idle instances holding %d bytes, want %d", n, held, tc.idle)
			}
			if err := v.Prepare(contractB, loopForever()); err != nil { // evicts contractA
				t.Fatal(err)
			}
			v.mu.Lock()
			held = v.idleBytes
			v.mu.Unlock()
			if held != 0 {
				t.Fatalf("%d idle bytes after the module's eviction", held)
			}
		})
	}
}
