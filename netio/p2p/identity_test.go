package p2p

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "p2p.key")
	k, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, %v", fi.Mode().Perm(), err)
	}
	again, err := LoadOrCreateIdentity(path)
	if err != nil || !again.Equals(k) {
		t.Fatalf("second load: %v (same key: %v)", err, again != nil && again.Equals(k))
	}
	id1, _ := PeerID(k)
	id2, _ := PeerID(again)
	if id1 != id2 {
		t.Fatal("peer id changed across loads")
	}

	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"readable by others", nil, 0o644, "readable by its owner only"},
		{"garbage", []byte("not a key"), 0o600, "not a libp2p private key"},
		{"too large", make([]byte, maxIdentityBytes+1), 0o600, "not a key file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			b := tt.content
			if b == nil {
				b, _ = os.ReadFile(path)
			}
			if err := os.WriteFile(p, b, tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tt.mode)
			if _, err := LoadOrCreateIdentity(p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadOrCreateIdentity = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
