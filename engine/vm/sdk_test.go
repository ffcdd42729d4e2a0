package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// sdkDir holds Koinos's AssemblyScript SDK and compiler (npm ci, as `make
// js-deps` runs it) and the contracts built from them.
var sdkDir = filepath.Join("testdata", "sdk-as")

var sdkBuild struct {
	once sync.Once
	code map[string][]byte
	err  error
}

// sdkContract compiles testdata/sdk-as/assembly/<name>.ts with asc as
// @koinos/sdk-as builds contracts (--exportStart _start, no sign extension
// or bulk memory, abort disabled), once per test binary. Without Node.js
// or the npm packages it skips, and fails in CI.
func sdkContract(tb testing.TB, name string) []byte {
	tb.Helper()
	missing := func(format string, args ...any) {
		tb.Helper()
		if os.Getenv("CI") == "true" {
			tb.Fatalf(format, args...)
		}
		tb.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is required to build the SDK contracts: %v", err)
	}
	asc := filepath.Join(sdkDir, "node_modules", "assemblyscript", "bin", "asc.js")
	if _, err := os.Stat(asc); err != nil {
		missing("the AssemblyScript SDK is not installed: run `npm ci --prefix %s` (make js-deps does)", sdkDir)
	}
	sdkBuild.once.Do(func() {
		sdkBuild.code = map[string][]byte{}
		for _, c := range []string{"storage"} {
			if sdkBuild.code[c], sdkBuild.err = buildSDKContract(node, c); sdkBuild.err != nil {
				return
			}
		}
	})
	if sdkBuild.err != nil {
		tb.Fatalf("building the SDK contracts: %v", sdkBuild.err)
	}
	return sdkBuild.code[name]
}

// ascFlags are the SDK's own build flags (@koinos/sdk-as's package.json
// scripts), with -O3 as its release target.
var ascFlags = []string{"-O3", "--use", "abort=", "--disable", "sign-extension", "--disable", "bulk-memory", "--exportStart", "_start"}

// buildSDKContract compiles assembly/<name>.ts, or takes the result of an
// earlier build of the same source, lock file and flags from the user's
// cache directory: asc takes about 10 s, and make test runs the package
// twice (plain and -race).
func buildSDKContract(node, name string) ([]byte, error) {
	h := sha256.New()
	for _, f := range []string{filepath.Join("assembly", name+".ts"), "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(sdkDir, f))
		if err != nil {
			return nil, err
		}
		h.Write(b)
	}
	h.Write([]byte(strings.Join(ascFlags, " ")))
	cached := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(dir, "ember-sdk-as", fmt.Sprintf("%s-%x.wasm", name, h.Sum(nil)[:12]))
		if code, err := os.ReadFile(cached); err == nil {
			return code, nil
		}
	}
	out, err := os.MkdirTemp("", "ember-sdk-as-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wasm := filepath.Join(out, name+".wasm")
	args := append([]string{"node_modules/assemblyscript/bin/asc.js", "assembly/" + name + ".ts"}, ascFlags...)
	cmd := exec.CommandContext(ctx, node, append(args, "-o", wasm)...)
	cmd.Dir = sdkDir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{name, err, string(msg)}
	}
	code, err := os.ReadFile(wasm)
	if err != nil {
		return nil, err
	}
	// A cache that cannot be written costs only time.
	if cached != "" && os.MkdirAll(filepath.Dir(cached), 0o755) == nil {
		if tmp, err := os.CreateTemp(filepath.Dir(cached), name+"-*.tmp"); err == nil {
			_, werr := tmp.Write(code)
			if cerr := tmp.Close(); werr == nil && cerr == nil {
				_ = os.Rename(tmp.Name(), cached)
			}
			_ = os.Remove(tmp.Name())
		}
	}
	return code, nil
}

type buildError struct {
	contract string
	err      error
	out      string
}

func (e *buildError) Error() string { return "asc " + e.contract + ": " + e.err.Error() + "\n" + e.out }

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
