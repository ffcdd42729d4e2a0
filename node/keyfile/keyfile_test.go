package keyfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/emberchain/ember/engine/keys"
)

func TestWriteRead(t *testing.T) {
	for _, s := range []keys.Scheme{keys.SchemeSecp256k1, keys.SchemeEd25519} {
		t.Run(s.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "keys", "a.key")
			k, err := keys.Generate(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := Write(path, k, false); err != nil {
				t.Fatal(err)
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %o", st.Mode().Perm())
			}
			if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
				t.Fatalf("dir mode %o", st.Mode().Perm())
			}
			got, err := Read(path)
			if err != nil || got.Address() != k.Address() {
				t.Fatalf("read back: %v", err)
			}
			if err := Write(path, k, false); err == nil {
				t.Fatal("overwrote an existing key")
			}
			if err := Write(path, k, true); err != nil {
				t.Fatal(err)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "keys", ".key-*"))
			if len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	k, _ := keys.Generate(keys.SchemeSecp256k1)
	good := filepath.Join(dir, "good.key")
	if err := Write(good, k, false); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	os.WriteFile(open, []byte(k.String()), 0o644)
	os.Chmod(open, 0o644)
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	big := filepath.Join(dir, "big.key")
	os.WriteFile(big, make([]byte, maxKeyFileBytes+1), 0o600)
	tests := []struct {
		path string
		perm bool
	}{
		{open, true},
		{garbage, false},
		{big, false},
		{dir, false},
		{filepath.Join(dir, "missing.key"), false},
	}
	for _, tt := range tests {
		_, err := Read(tt.path)
		if err == nil {
			t.Errorf("%s: accepted", tt.path)
		}
		if errors.Is(err, ErrPermissions) != tt.perm {
			t.Errorf("%s: %v", tt.path, err)
		}
	}
}
