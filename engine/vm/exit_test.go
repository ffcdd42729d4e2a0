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
