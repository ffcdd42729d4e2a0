package vm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emberchain/ember/internal/sdkas"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// sdkContract is the contract testdata/assembly/<name>.ts of
// internal/sdkas, built with Koinos's AssemblyScript SDK (skipped without
// Node.js and the npm packages, failed in CI).
func sdkContract(tb testing.TB, name string) []byte {
	tb.Helper()
	return sdkas.Contract(tb, name)
}

// TestSDKStorageContract runs a contract written and compiled with
// Koinos's own AssemblyScript SDK, unmodified: arguments, objects, events,
// authority, hashing, logs, chain id, revert, and the same compute on
// wazero's compiler and interpreter.
func TestSDKStorageContract(t *testing.T) {
	code := sdkContract(t, "storage")
	for _, engine := range []struct {
		name string
		cfg  Config
	}{{"compiler", Config{}}, {"interpreter", Config{Interpreter: true}}} {
		t.Run(engine.name, func(t *testing.T) {
			v := newVM(t, engine.cfg)
			if err := v.Prepare(contractA, code); err != nil {
				t.Fatalf("the SDK's contract is refused: %v", err)
			}
			h := newMemHost(v)
			h.signers[string(accountX)] = true
			call := func(ep uint32, args []byte) (*Result, error) {
				return run(t, v, h, code, func(c *Call) { c.EntryPoint, c.Args = ep, args })
			}
			if res, err := call(2, nil); err != nil || len(res.Value) != 0 {
				t.Fatalf("get before put: %q, %v", res.Value, err)
			}
			res, err := call(1, []byte("hello"))
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if len(res.Events) != 1 || res.Events[0].Name != "storage.stored" || string(res.Events[0].Data) != "hello" || !bytes.Equal(res.Events[0].Source, contractA) {
				t.Fatalf("put events %v", res.Events)
			}
			if res, err := call(2, nil); err != nil || string(res.Value) != "hello" {
				t.Fatalf("get: %q, %v", res.Value, err)
			}
			if _, err := call(3, nil); err != nil {
				t.Fatalf("remove: %v", err)
			}
			if res, err := call(2, nil); err != nil || len(res.Value) != 0 {
				t.Fatalf("get after remove: %q, %v", res.Value, err)
			}
			if res, err := call(4, accountX); err != nil || string(res.Value) != "authorized" {
				t.Fatalf("guarded call by a signer: %q, %v", res.Value, err)
			}
			if _, err := call(4, contractB); codeOf(err) != chainpb.ErrorCode_authorization_failure || !strings.Contains(err.Error(), "authorization failed") {
				t.Fatalf("guarded call by a non-signer: %v (code %d)", err, codeOf(err))
			}
			if res, err := call(5, []byte("abc")); err != nil || !bytes.Equal(res.Value, append([]byte{0x12, 0x20}, sha256Of("abc")...)) {
				t.Fatalf("digest: %x, %v", res.Value, err)
			}
			if res, err := call(6, nil); err != nil || string(res.Value) != "chain" || len(res.Logs) != 1 || res.Logs[0] != "chain id asked" {
				t.Fatalf("chain: %q %q, %v", res.Value, res.Logs, err)
			}
			if _, err := call(99, nil); codeOf(err) != chainpb.ErrorCode_reversion || err.Error() != "unknown entry point" {
				t.Fatalf("unknown entry point: %v", err)
			}
			if res, err := call(2, nil); err != nil || res.Compute == 0 {
				t.Fatalf("compute of a get: %d, %v", res.Compute, err)
			}
		})
	}
}

// TestSDKContractComputeIsEngineIndependent: the compute charged for the
// same calls is the same to the unit on the compiler and the interpreter.
func TestSDKContractComputeIsEngineIndependent(t *testing.T) {
	code := sdkContract(t, "storage")
	var computes [2][]uint64
	for i, cfg := range []Config{{}, {Interpreter: true}} {
		v := newVM(t, cfg)
		h := newMemHost(v)
		for ep := uint32(1); ep <= 6; ep++ {
			res, _ := run(t, v, h, code, func(c *Call) { c.EntryPoint, c.Args = ep, []byte("hello") })
			computes[i] = append(computes[i], res.Compute)
		}
	}
	for i := range computes[0] {
		if computes[0][i] != computes[1][i] || computes[0][i] == 0 {
			t.Fatalf("compute per entry point: compiler %v, interpreter %v", computes[0], computes[1])
		}
	}
}
