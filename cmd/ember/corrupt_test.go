package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emberchain/ember/rpcgw/client"
)

// TestCorruptFilesRefusedAtStart damages, one at a time, every file the
// node reads at start: the keys, the sign guard, genesis, the
// configuration and the store's MANIFEST, its marker and an sstable. The
// node must refuse to start with an error that names the file, and never
// panic or run on the damaged file.
func TestCorruptFilesRefusedAtStart(t *testing.T) {
	base := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", base, "--block-interval", "200ms"); code != 0 {
		t.Fatal(stderr)
	}
	// Two runs: the second flushes the first's write-ahead log into an
	// sstable, so the store has every kind of file.
	rpcAddr := freePort(t)
	args := func(dir string) []string {
		return []string{"node", "--datadir", dir, "--rpc-addr", rpcAddr, "--set", "admin.listen=", "--set", "p2p.listen=/ip4/127.0.0.1/tcp/0"}
	}
	c, err := client.New("http://" + rpcAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		cmd, logs := emberProcess(t, args(base)...)
		waitRPC(t, c, logs)
		time.Sleep(500 * time.Millisecond) // a few blocks
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run: %v\n%s", err, logs)
		}
	}
	store := filepath.Join(base, "data", "store")
	glob := func(pattern string) string {
		m, _ := filepath.Glob(filepath.Join(store, pattern))
		if len(m) == 0 {
			t.Fatalf("no %s in the store", pattern)
		}
		return filepath.Base(m[len(m)-1])
	}
	sst, manifest := glob("*.sst"), glob("MANIFEST-*")

	garble := func(off int64, n int) func(string) error {
		return func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			b := make([]byte, n)
			if _, err := f.ReadAt(b, off); err != nil {
				return err
			}
			for i := range b {
				b[i] ^= 0x5a
			}
			_, err = f.WriteAt(b, off)
			return err
		}
	}
	truncate := func(size int64) func(string) error {
		return func(p string) error { return os.Truncate(p, size) }
	}
	remove := func(p string) error { return os.Remove(p) }
	for _, c := range []struct {
		name, file string
		damage     func(string) error
		want       string // in the error, besides the file's name
	}{
		{"producer key truncated", "keys/producer.key", truncate(10), "not a WIF private key"},
		{"producer key garbled", "keys/producer.key", garble(5, 20), "producer key"},
		{"p2p key truncated", "keys/p2p.key", truncate(10), "not a libp2p private key"},
		{"p2p key public half garbled", "keys/p2p.key", garble(50, 8), "corrupt"},
		{"p2p key private half garbled", "keys/p2p.key", garble(10, 8), "corrupt"},
		{"sign guard garbled", "data/sign-guard", garble(3, 1), "corrupt"},
		{"sign guard truncated", "data/sign-guard", truncate(7), "corrupt"},
		{"genesis truncated", "genesis.json", truncate(100), "genesis"},
		{"config garbled", "config.toml", func(p string) error { return os.WriteFile(p, []byte("[[[\n"), 0o600) }, "toml"},
		{"store MANIFEST garbled", "data/store/" + manifest, garble(10, 16), "manifest"},
		{"store MANIFEST marker lost", "data/store/" + glob("marker.manifest.*"), remove, "MANIFEST"},
		{"sstable garbled", "data/store/" + sst, garble(100, 64), "corrupt"},
		{"sstable truncated", "data/store/" + sst, truncate(1000), "size mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
				t.Fatalf("copy: %v %s", err, out)
			}
			if err := c.damage(filepath.Join(dir, c.file)); err != nil {
				t.Fatal(err)
			}
			cmd, logs := emberProcess(t, args(dir)...)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				if err == nil {
					t.Fatalf("the node ran on a damaged %s:\n%s", c.file, logs)
				}
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("the node started on a damaged %s:\n%s", c.file, logs)
			}
			out := logs.String()
			if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
				t.Fatalf("the node panicked on a damaged %s:\n%s", c.file, out)
			}
			name := filepath.Base(c.file)
			if strings.HasPrefix(name, "marker.") {
				name = "marker.manifest" // the error names the kind of file lost
			}
			if !strings.Contains(out, "ember node:") || !strings.Contains(out, c.want) || !strings.Contains(out, name) {
				t.Fatalf("error does not name %s (%q):\n%s", c.file, c.want, out)
			}
		})
	}
}
