package sdkas

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrToolsMissing is wrapped by Build's error when Node.js or the npm
// packages are not installed: tests skip on it outside CI.
var ErrToolsMissing = errors.New("sdkas: the AssemblyScript toolchain is missing")

// ascFlags are the SDK's own build flags (@koinos/sdk-as's package.json
// scripts: no sign extension or bulk memory, abort disabled, _start
// exported), with -O3 as its release target.
var ascFlags = []string{"-O3", "--use", "abort=", "--disable", "sign-extension", "--disable", "bulk-memory", "--exportStart", "_start"}

// buildTimeout bounds one asc run (about 10 s on a quiet machine).
const buildTimeout = 3 * time.Minute

// Dir is the npm project holding the SDK, the compiler, the contract
// sources (assembly/) and their ABIs (abi/). It is found from this
// file's path, or, in a binary built with -trimpath, from the module root
// above the working directory.
func Dir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), "testdata")
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		dir := filepath.Join(d, "internal", "sdkas", "testdata")
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("sdkas: internal/sdkas/testdata not found above %s", wd)
		}
	}
}

// builds holds one build per contract name for the process.
var builds struct {
	mu   sync.Mutex
	byID map[string]*build
}

type build struct {
	once sync.Once
	code []byte
	err  error
}

// Contract returns the WebAssembly of testdata/assembly/<name>.ts, built
// as @koinos/sdk-as builds contracts, once per process. Without Node.js or
// the npm packages it skips the test, and fails it when CI=true.
func Contract(tb testing.TB, name string) []byte {
	tb.Helper()
	builds.mu.Lock()
	if builds.byID == nil {
		builds.byID = map[string]*build{}
	}
	b, ok := builds.byID[name]
	if !ok {
		b = &build{}
		builds.byID[name] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.code, b.err = Build(name) })
	if errors.Is(b.err, ErrToolsMissing) && os.Getenv("CI") != "true" {
		tb.Skipf("%v", b.err)
	}
	if b.err != nil {
		tb.Fatalf("building the SDK contract %s: %v", name, b.err)
	}
	return b.code
}

// Build compiles assembly/<name>.ts with asc, or takes the result of an
// earlier build of the same sources, lock file and flags from the user's
// cache directory. The error wraps ErrToolsMissing when Node.js or the
// npm packages are missing.
func Build(name string) ([]byte, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	src := filepath.Join("assembly", name+".ts")
	if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
		return nil, fmt.Errorf("sdkas: no contract %q: %w", name, err)
	}
	key, err := sourceKey(dir, name)
	if err != nil {
		return nil, err
	}
	cached := ""
	if cache, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(cache, "ember-sdk-as", fmt.Sprintf("%s-%x.wasm", name, key[:12]))
		if code, err := os.ReadFile(cached); err == nil {
			return code, nil
		}
		// make test runs several test binaries at once, each wanting the
		// same contracts: one builds, the others wait for its result.
		unlock := lockFile(cached + ".lock")
		defer unlock()
		if code, err := os.ReadFile(cached); err == nil {
			return code, nil
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node is required to build the SDK contracts: %v", ErrToolsMissing, err)
	}
	asc := filepath.Join("node_modules", "assemblyscript", "bin", "asc.js")
	if _, err := os.Stat(filepath.Join(dir, asc)); err != nil {
		return nil, fmt.Errorf("%w: run `npm ci --prefix %s` (make js-deps does)", ErrToolsMissing, dir)
	}
	out, err := os.MkdirTemp("", "ember-sdk-as-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	wasm := filepath.Join(out, name+".wasm")
	args := append([]string{asc, src}, ascFlags...)
	cmd := exec.CommandContext(ctx, node, append(args, "-o", wasm)...)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("sdkas: asc %s: %v\n%s", name, err, msg)
	}
	code, err := os.ReadFile(wasm)
	if err != nil {
		return nil, err
	}
	storeCached(cached, code)
	return code, nil
}

// sourceKey hashes what a build depends on: every file under assembly/
// (a contract may import its neighbours), the lock file (the SDK and
// compiler versions), the flags and the contract's name.
func sourceKey(dir, name string) ([32]byte, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "assembly"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return [32]byte{}, err
	}
	sort.Strings(files)
	files = append(files, filepath.Join(dir, "package-lock.json"))
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return [32]byte{}, err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%s\x00%s", strings.Join(ascFlags, " "), name)
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return key, nil
}

// storeCached writes code to the cache through a temporary file, so a
// concurrent reader (another test binary) sees all of it or nothing. A
// cache that cannot be written costs only time.
func storeCached(path string, code []byte) {
	if path == "" || os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+"-*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(code)
	if cerr := tmp.Close(); werr == nil && cerr == nil {
		_ = os.Rename(tmp.Name(), path)
	}
	_ = os.Remove(tmp.Name())
}

// ABI returns the committed ABI of a contract, testdata/abi/<name>.abi:
// the JSON to pass to koilib's Contract or koinos-cli's register, or to
// store as the contract's meta.
func ABI(tb testing.TB, name string) []byte {
	tb.Helper()
	dir, err := Dir()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "abi", name+".abi"))
	if err != nil {
		tb.Fatalf("the ABI of %s: %v", name, err)
	}
	return b
}
