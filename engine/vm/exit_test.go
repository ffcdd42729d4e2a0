package vm

import (
	"strings"
	"testing"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// bigFill is memory.fill of 1 GiB at 0: its charge alone (64 Mi fuel)
// exceeds testFuel, so a call that reaches it runs out of compute.
func bigFill() []byte { return cat(i32c(0), i32c(0), i32c(1<<30), []byte{0xfc, 11, 0}) }

// deepExit is a contract that exits three frames deep, inside blocks and
// a loop, from functions returning i64 and i32, with after code right
// after the exit in the innermost frame and a 1 GiB memory.fill after each
// call in the outer ones: none of it may run once the contract exited.
func deepExit(exitArgs, after []byte) []byte {
	inner := cat(
		[]byte{0x02, 0x40, 0x03, 0x40}, // block; loop
		sysCall(chainpb.SystemCallId_exit, scriptData, int32(len(exitArgs))),
		after,
		[]byte{0x0b, 0x0b}, // end; end
		[]byte{0x42, 9},    // i64.const 9
	)
	middle := cat([]byte{0x02, 0x40}, call(3), []byte{0x1a}, bigFill(), []byte{0x0b}, i32c(5))
	start := cat([]byte{0x03, 0x40}, call(2), []byte{0x1a}, bigFill(), []byte{0x0c, 0, 0x0b})
	return wasmModule{
		types:   [][2][]byte{syscallType, {nil, nil}, {nil, []byte{valI32}}, {nil, []byte{valI64}}},
		imports: true,
		funcs:   []wasmFunc{{typ: 1, code: start}, {typ: 2, code: middle}, {typ: 3, code: inner}},
		memory:  &[2]uint32{1, 0},
		exports: map[string]uint32{"_start": 1},
		data:    map[uint32][]byte{scriptData: exitArgs},
	}.bytes()
}

// TestExitEndsTheCallAtOnce: exit ends the contract where it is, however
// deep, with its result or its error; nothing after it runs or is charged
// (not even a bulk instruction's charge right after the call), the same
// on both engines.
func TestExitEndsTheCallAtOnce(t *testing.T) {
	logArgs := mustMarshal(&chainpb.LogArguments{Message: "after exit"})
	afterLog := cat(i32c(int32(chainpb.SystemCallId_log)), i32c(retBuf), i32c(retBufLen), i32c(0x3000), i32c(int32(len(logArgs))), i32c(writtenAt), call(0), []byte{0x1a})
	compiler := newVM(t, Config{})
	interp := newVM(t, Config{Interpreter: true})
	for _, tc := range []struct {
		name  string
		exit  []byte
		after []byte
		want  chainpb.ErrorCode
		value string
	}{
		{"then unreachable", exitWith(0, []byte("done"), ""), []byte{0x00}, chainpb.ErrorCode_success, "done"},
		{"then a bulk fill", exitWith(0, []byte("done"), ""), bigFill(), chainpb.ErrorCode_success, "done"},
		{"then a loop", exitWith(0, []byte("done"), ""), []byte{0x0c, 0}, chainpb.ErrorCode_success, "done"},
		{"then a system call", exitWith(0, []byte("done"), ""), afterLog, chainpb.ErrorCode_success, "done"},
		{"reverting", exitWith(1, nil, "deep revert"), bigFill(), 1, ""},
		{"failing", exitWith(-3, nil, "deep failure"), []byte{0x0c, 0}, -3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := deepExit(tc.exit, tc.after)
			var computes []uint64
			for _, v := range []*VM{compiler, interp, compiler} {
				res, err := run(t, v, newMemHost(v), code)
				if codeOf(err) != tc.want || string(res.Value) != tc.value {
					t.Fatalf("interpreter %v: %v (code %d), value %q; want code %d, %q", v.cfg.Interpreter, err, codeOf(err), res.Value, tc.want, tc.value)
				}
				if err != nil && !strings.Contains(err.Error(), "deep") {
					t.Fatalf("error %v lost the contract's message", err)
				}
				if len(res.Logs) != 0 {
					t.Fatalf("logs after exit: %q", res.Logs)
				}
				computes = append(computes, res.Compute)
			}
			if computes[0] != computes[1] || computes[0] != computes[2] || computes[0] >= 1<<20 {
				t.Fatalf("compute %v: want one small figure", computes)
			}
		})
	}
}

// depthChain is _start calling f(n), which recurses to f(0), which calls
// g: n+3 frames. g is a leaf, or, with nonLeaf, holds a call that never
// runs (so it counts its frame as every other function does).
func depthChain(n int32, nonLeaf bool) []byte {
	f := cat([]byte{0x20, 0, 0x04, 0x40, 0x20, 0}, i32c(1), []byte{0x6b}, call(1), []byte{0x05}, call(2), []byte{0x0b})
	var g []byte
	if nonLeaf {
		g = cat(i32c(0), []byte{0x04, 0x40}, call(2), []byte{0x0b})
	}
	return wasmModule{
		types:   [][2][]byte{{nil, nil}, {[]byte{valI32}, nil}},
		funcs:   []wasmFunc{{typ: 0, code: cat(i32c(n), call(1))}, {typ: 1, code: f}, {typ: 0, code: g}},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

// TestLeafCallDepth: a function that calls nothing does not count its
// frame, yet traps at exactly the depth a counted frame would, with the
// same error, on both engines.
func TestLeafCallDepth(t *testing.T) {
	compiler := newVM(t, Config{})
	interp := newVM(t, Config{Interpreter: true})
	for _, tc := range []struct {
		name string
		n    int32 // frames: n + 3
		want chainpb.ErrorCode
	}{
		{"at the limit", DefaultMaxCallDepth - 3, chainpb.ErrorCode_success},
		{"one past it", DefaultMaxCallDepth - 2, chainpb.ErrorCode_reversion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var computes []uint64
			for _, nonLeaf := range []bool{false, true} {
				for _, v := range []*VM{compiler, interp} {
					res, err := run(t, v, newMemHost(v), depthChain(tc.n, nonLeaf))
					if codeOf(err) != tc.want || (err != nil && !strings.Contains(err.Error(), "call depth")) {
						t.Fatalf("non-leaf %v, interpreter %v: %v (code %d), want code %d", nonLeaf, v.cfg.Interpreter, err, codeOf(err), tc.want)
					}
					computes = append(computes, res.Compute)
				}
			}
			if computes[0] != computes[1] || computes[2] != computes[3] {
				t.Fatalf("compute differs between engines: %v", computes)
			}
		})
	}
}
