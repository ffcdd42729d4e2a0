package sdkas

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestContract builds every contract in testdata/assembly (or takes it
// from the cache) and checks each is a WebAssembly module exporting
// _start, and that a second request in the process returns the same build.
func TestContract(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	sources, err := filepath.Glob(filepath.Join(dir, "assembly", "*.ts"))
	if err != nil || len(sources) < 2 {
		t.Fatalf("contract sources %v, %v", sources, err)
	}
	for _, src := range sources {
		name := filepath.Base(src[:len(src)-len(".ts")])
		code := Contract(t, name)
		if !bytes.HasPrefix(code, []byte("\x00asm\x01\x00\x00\x00")) || !bytes.Contains(code, []byte("_start")) {
			t.Fatalf("%s: not a wasm module exporting _start (%d bytes)", name, len(code))
		}
		if again := Contract(t, name); &again[0] != &code[0] {
			t.Fatalf("%s: built twice in one process", name)
		}
	}
	if _, err := Build("no-such-contract"); err == nil {
		t.Fatal("Build of a contract without a source: no error")
	}
}

// TestSourceKey: the cache key depends on the contract's name and on the
// sources, and on nothing that varies between runs.
func TestSourceKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package-lock.json", "{}")
	write("assembly/a.ts", "a")
	write("assembly/lib/b.ts", "b")
	key := func(name string) [32]byte {
		t.Helper()
		k, err := sourceKey(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a := key("a")
	if key("a") != a || key("b") == a {
		t.Fatal("the key is not stable, or does not depend on the name")
	}
	write("assembly/lib/b.ts", "b changed")
	changed := key("a")
	if changed == a {
		t.Fatal("the key ignores an imported source")
	}
	write("package-lock.json", "{ }")
	if key("a") == changed {
		t.Fatal("the key ignores the lock file")
	}
}
