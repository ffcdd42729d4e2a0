package vm

import (
	"testing"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// TestWarmCallAllocations: a warm call allocates little: the Result, the
// frame, the context, the exit value. Instantiating per call was 49
// allocations and 80 KB; decoding and encoding system-call messages
// through an interface moved every message to the heap.
func TestWarmCallAllocations(t *testing.T) {
	v := newVM(t, Config{})
	h := newMemHost(v)
	for _, tc := range []struct {
		name string
		code []byte
		max  float64
	}{
		{"exit only", scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")}), 6},
		{"contract id, caller, exit", scripted(
			syscall{sid: chainpb.SystemCallId_get_contract_id},
			syscall{sid: chainpb.SystemCallId_get_caller},
			syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")}), 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Call{ContractID: contractA, Bytecode: tc.code, Fuel: testFuel, Host: h}
			if _, err := v.Run(bgCtx, c); err != nil {
				t.Fatal(err)
			}
			n := testing.AllocsPerRun(50, func() {
				if _, err := v.Run(bgCtx, c); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%.0f allocations per call", n)
			if n > tc.max {
				t.Fatalf("%.0f allocations per warm call, want at most %.0f", n, tc.max)
			}
		})
	}
}
