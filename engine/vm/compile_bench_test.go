package vm

import (
	"testing"

	"github.com/emberchain/ember/internal/sdkas"
)

// TestLargeContract: the ~100 KB SDK contract of BenchmarkCompileLarge
// passes the upload checks and runs.
func TestLargeContract(t *testing.T) {
	code := sdkas.Contract(t, "large")
	if len(code) < 90_000 {
		t.Fatalf("large.wasm is %d bytes; the benchmark wants about 100 KB (regenerate assembly/large.ts with more entry points)", len(code))
	}
	v := newVM(t, Config{})
	if err := v.Prepare(contractA, code); err != nil {
		t.Fatal(err)
	}
	h := newMemHost(v)
	for _, ep := range []uint32{1, 50, 95} {
		res, err := v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: code, EntryPoint: ep, Args: []byte("abc"), Fuel: testFuel, Host: h})
		if err != nil || len(res.Value) == 0 {
			t.Fatalf("entry point %d: %v, %d bytes", ep, err, len(res.Value))
		}
	}
}

// BenchmarkCompileLarge: instrumenting, validating and compiling a ~100 KB
// SDK contract from cold, what an upload_contract of that size costs the
// node once (internal/sdkas/testdata/assembly/large.ts).
func BenchmarkCompileLarge(b *testing.B) { benchCompile(b, sdkas.Contract(b, "large")) }
