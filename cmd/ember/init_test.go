package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/node/keyfile"
)

func readGenesis(t *testing.T, path string) *genesis.Genesis {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := genesis.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func readConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	cfg, err := config.Load(config.Sources{File: filepath.Join(dir, "config.toml")})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// keyAddress reads a key file, checking it is readable by its owner only.
func keyAddress(t *testing.T, path string) koinos.Address {
	t.Helper()
	mustBePrivate(t, path)
	k, err := keyfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return k.Address()
}

func mustBePrivate(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
}

// peerIDOf reads a node's identity key file and returns its peer id.
func peerIDOf(t *testing.T, path string) string {
	t.Helper()
	mustBePrivate(t, path)
	k, err := p2p.LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := p2p.PeerID(k)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func newKeyFile(t *testing.T, path string) koinos.Address {
	t.Helper()
	k, err := keys.Generate(keys.SchemeSecp256k1)
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Write(path, k, false); err != nil {
		t.Fatal(err)
	}
	return k.Address()
}

// A new chain with N generated producers lists them in genesis in the order
// of keys/producer.key, producer-2.key, ...; --force keeps every key.
func TestInitDevGeneratesProducerKeys(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("producers=%d", n), func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"init", "--dev", "--datadir", dir, "--p2p-listen", "/ip4/127.0.0.1/tcp/18888"}
			if n > 1 {
				args = append(args, "--producers", fmt.Sprint(n))
			}
			stdout, stderr, code := ember(t, args...)
			if code != 0 {
				t.Fatal(stderr)
			}
			var want []koinos.Address
			for i := 1; i <= n; i++ {
				name := "producer.key"
				if i > 1 {
					name = fmt.Sprintf("producer-%d.key", i)
				}
				want = append(want, keyAddress(t, filepath.Join(dir, "keys", name)))
			}
			if _, err := os.Stat(filepath.Join(dir, "keys", fmt.Sprintf("producer-%d.key", n+1))); !os.IsNotExist(err) {
				t.Fatalf("a key beyond the %d producers: %v", n, err)
			}
			g := readGenesis(t, filepath.Join(dir, "genesis.json"))
			if got := g.Producers(); !slices.Equal(got, want) {
				t.Fatalf("genesis producers %v, want the key files' %v", got, want)
			}
			dev := keyAddress(t, filepath.Join(dir, "keys", "dev.key"))
			if bal := g.Balances(); len(bal) != 1 || !bytes.Equal(bal[0].Address, dev.Bytes()) || bal[0].Amount != devFunds {
				t.Fatalf("genesis balances %v, want the dev account %s funded", bal, dev)
			}
			if cfg := readConfig(t, dir); !cfg.Producer.Enabled || len(cfg.P2P.Peers) != 0 || !slices.Equal(cfg.P2P.Listen, []string{"/ip4/127.0.0.1/tcp/18888"}) {
				t.Fatalf("config: producer %+v, p2p %+v", cfg.Producer, cfg.P2P)
			}
			id := peerIDOf(t, filepath.Join(dir, "keys", "p2p.key"))
			if addr := "/ip4/127.0.0.1/tcp/18888/p2p/" + id; !strings.Contains(stdout, addr) {
				t.Fatalf("init did not print the peer address %s:\n%s", addr, stdout)
			}

			if _, stderr, code := ember(t, append(args, "--force")...); code != 0 {
				t.Fatal(stderr)
			}
			if got := readGenesis(t, filepath.Join(dir, "genesis.json")).Producers(); !slices.Equal(got, want) {
				t.Fatalf("after --force the producers are %v, want the kept keys' %v", got, want)
			}
			if again := peerIDOf(t, filepath.Join(dir, "keys", "p2p.key")); again != id {
				t.Fatalf("--force replaced the identity key: %s, was %s", again, id)
			}
		})
	}
}

// Given key files: the first becomes this node's producer key, all are in
// genesis in the order given, none of the others is copied.
func TestInitDevGivenProducerKeys(t *testing.T) {
	src := t.TempDir()
	var files []string
	var want []koinos.Address
	for i := range 3 {
		f := filepath.Join(src, fmt.Sprintf("p%d.key", i))
		want = append(want, newKeyFile(t, f))
		files = append(files, f)
	}
	dir := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir, "--producer-keys", strings.Join(files, ",")); code != 0 {
		t.Fatal(stderr)
	}
	if got := readGenesis(t, filepath.Join(dir, "genesis.json")).Producers(); !slices.Equal(got, want) {
		t.Fatalf("genesis producers %v, want %v", got, want)
	}
	if got := keyAddress(t, filepath.Join(dir, "keys", "producer.key")); got != want[0] {
		t.Fatalf("keys/producer.key holds %s, want the first key %s", got, want[0])
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "keys", "producer-*")); len(left) != 0 {
		t.Fatalf("other producers' keys copied: %v", left)
	}
	// A re-init may not swap this node's key for another.
	files[0], files[1] = files[1], files[0]
	if _, stderr, code := ember(t, "init", "--dev", "--force", "--datadir", dir, "--producer-keys", strings.Join(files, ",")); code == 0 || !strings.Contains(stderr, "already holds another key") {
		t.Fatalf("init replaced keys/producer.key: %d %s", code, stderr)
	}
}

// Joining: the genesis is copied byte for byte, peers and listen addresses
// are configured, and the producer key decides whether the node produces.
func TestInitJoin(t *testing.T) {
	chain := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", chain, "--producers", "2"); code != 0 {
		t.Fatal(stderr)
	}
	gpath := filepath.Join(chain, "genesis.json")
	gb, _ := os.ReadFile(gpath)
	firstPeer := "/ip4/127.0.0.1/tcp/8888/p2p/" + peerIDOf(t, filepath.Join(chain, "keys", "p2p.key"))
	secondPeer := "/ip4/127.0.0.2/tcp/8889/p2p/12D3KooWNVmMSCx7bMPgJKVfLFC9Qgo7XoK1yPCPBvAc5WDjmkGz"
	stranger := filepath.Join(t.TempDir(), "stranger.key")
	newKeyFile(t, stranger)
	tests := []struct {
		name        string
		args        []string
		produce     bool
		key         string // key file expected in keys/producer.key, "" for none
		peers       []string
		rpc, admin  string
		listen      []string
		wantWarning bool
	}{
		{
			name: "follower", args: []string{"--peer", firstPeer, "--peer", secondPeer},
			peers: []string{firstPeer, secondPeer}, rpc: "127.0.0.1:8080", admin: "127.0.0.1:9090", listen: []string{"/ip4/127.0.0.1/tcp/8888"},
		},
		{
			name: "producer", args: []string{"--producer-key", filepath.Join(chain, "keys", "producer-2.key"), "--peer", firstPeer,
				"--p2p-listen", "/ip4/127.0.0.1/tcp/8889", "--rpc-addr", "127.0.0.1:8081", "--admin-addr", ""},
			produce: true, key: filepath.Join(chain, "keys", "producer-2.key"), peers: []string{firstPeer},
			rpc: "127.0.0.1:8081", admin: "", listen: []string{"/ip4/127.0.0.1/tcp/8889"},
		},
		{
			name: "not a producer", args: []string{"--producer-key", stranger},
			produce: true, key: stranger, rpc: "127.0.0.1:8080", admin: "127.0.0.1:9090", listen: []string{"/ip4/127.0.0.1/tcp/8888"}, wantWarning: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "node")
			stdout, stderr, code := ember(t, append([]string{"init", "--genesis", gpath, "--datadir", dir}, tc.args...)...)
			if code != 0 {
				t.Fatal(stderr)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, "genesis.json")); !bytes.Equal(got, gb) {
				t.Fatal("the genesis file was not copied as it is")
			}
			cfg := readConfig(t, dir)
			if cfg.Producer.Enabled != tc.produce {
				t.Errorf("producer.enabled = %v, want %v", cfg.Producer.Enabled, tc.produce)
			}
			if !slices.Equal(cfg.P2P.Peers, tc.peers) || !slices.Equal(cfg.P2P.Listen, tc.listen) {
				t.Errorf("p2p.peers %q, p2p.listen %q; want %q, %q", cfg.P2P.Peers, cfg.P2P.Listen, tc.peers, tc.listen)
			}
			if cfg.RPC.Listen != tc.rpc || cfg.Admin.Listen != tc.admin {
				t.Errorf("rpc.listen %q, admin.listen %q; want %q, %q", cfg.RPC.Listen, cfg.Admin.Listen, tc.rpc, tc.admin)
			}
			own := filepath.Join(dir, "keys", "producer.key")
			if tc.key == "" {
				if keyfile.Exists(own) {
					t.Error("a follower got a producer key")
				}
			} else if got, want := keyAddress(t, own), keyAddress(t, tc.key); got != want {
				t.Errorf("keys/producer.key holds %s, want %s", got, want)
			}
			if warned := strings.Contains(stderr, "not among the 2 producers"); warned != tc.wantWarning {
				t.Errorf("warning printed: %v, want %v: %q", warned, tc.wantWarning, stderr)
			}
			id := peerIDOf(t, filepath.Join(dir, "keys", "p2p.key"))
			if addr := tc.listen[0] + "/p2p/" + id; !strings.Contains(stdout, addr) {
				t.Errorf("init did not print the peer address %s:\n%s", addr, stdout)
			}
		})
	}
}

// Bad input is refused before anything is written, with a message naming
// the flag or file.
func TestInitRefusesBadInput(t *testing.T) {
	chain := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", chain); code != 0 {
		t.Fatal(stderr)
	}
	gpath := filepath.Join(chain, "genesis.json")
	src := t.TempDir()
	notJSON := filepath.Join(src, "not-json.json")
	os.WriteFile(notJSON, []byte("{ producers: 1"), 0o644)
	noProducers := filepath.Join(src, "no-producers.json")
	gb, _ := os.ReadFile(gpath)
	os.WriteFile(noProducers, bytes.Replace(gb, []byte(`"producers"`), []byte(`"producers_"`), 1), 0o644)
	openKey := filepath.Join(src, "open.key")
	newKeyFile(t, openKey)
	os.Chmod(openKey, 0o644)
	k1, k2 := filepath.Join(src, "k1.key"), filepath.Join(src, "k2.key")
	newKeyFile(t, k1)
	newKeyFile(t, k2)
	selfID := peerIDOf(t, filepath.Join(chain, "keys", "p2p.key"))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"peer without id", []string{"--genesis", gpath, "--peer", "/ip4/127.0.0.1/tcp/8888"}, `--peer "/ip4/127.0.0.1/tcp/8888": invalid p2p multiaddr`},
		{"peer not a multiaddr", []string{"--genesis", gpath, "--peer", "127.0.0.1:8888"}, `--peer "127.0.0.1:8888": failed to parse multiaddr`},
		{"peer with a bad id", []string{"--genesis", gpath, "--peer", "/ip4/127.0.0.1/tcp/8888/p2p/QmNotAnId"}, `--peer "/ip4/127.0.0.1/tcp/8888/p2p/QmNotAnId"`},
		{"peer without address", []string{"--genesis", gpath, "--peer", "/p2p/" + selfID}, "no address to dial"},
		{"missing genesis", []string{"--genesis", filepath.Join(src, "missing.json")}, "--genesis: open " + filepath.Join(src, "missing.json") + ": no such file"},
		{"genesis not JSON", []string{"--genesis", notJSON}, "--genesis " + notJSON + ": genesis: invalid JSON"},
		{"genesis without producers", []string{"--genesis", noProducers}, "--genesis " + noProducers + ": genesis:"},
		{"readable producer key", []string{"--genesis", gpath, "--producer-key", openKey}, "--producer-key: keyfile: key file is readable by group or others"},
		{"missing producer key", []string{"--genesis", gpath, "--producer-key", filepath.Join(src, "none.key")}, "--producer-key: keyfile:"},
		{"bad listen", []string{"--dev", "--p2p-listen", "/ip4/127.0.0.1"}, `--p2p-listen "/ip4/127.0.0.1": no /tcp/ or /udp/ port`},
		{"listen with id", []string{"--dev", "--p2p-listen", "/ip4/127.0.0.1/tcp/1/p2p/" + selfID}, "takes no /p2p/ part"},
		{"bad rpc address", []string{"--dev", "--rpc-addr", "8080"}, "--rpc-addr must be host:port"},
		{"bad admin address", []string{"--genesis", gpath, "--admin-addr", "localhost"}, "--admin-addr must be host:port"},
		{"no producers", []string{"--dev", "--producers", "0"}, "--producers must be 1 to 1024, got 0"},
		{"producers and keys disagree", []string{"--dev", "--producers", "3", "--producer-keys", k1 + "," + k2}, "--producers 3 but --producer-keys lists 2 files"},
		{"a key listed twice", []string{"--dev", "--producer-keys", k1 + "," + k2 + "," + k1}, "hold the same key"},
		{"readable key listed", []string{"--dev", "--producer-keys", k1 + "," + openKey}, "--producer-keys: keyfile: key file is readable by group or others"},
		{"both modes", []string{"--dev", "--genesis", gpath}, "--dev creates a chain and --genesis joins one"},
		{"no mode", nil, "pass --dev to create a development chain, or --genesis FILE"},
		{"peer on a new chain", []string{"--dev", "--peer", "/ip4/127.0.0.1/tcp/8888/p2p/" + selfID}, "--peer goes with --genesis, not --dev"},
		{"producers when joining", []string{"--genesis", gpath, "--producers", "2"}, "--producers goes with --dev, not --genesis"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "node")
			_, stderr, code := ember(t, append([]string{"init", "--datadir", dir}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want an error containing %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("%s was created for a refused init: %v", dir, err)
			}
		})
	}
	// A node listing itself as a peer is refused too, once its identity is known.
	dir := t.TempDir()
	if _, stderr, code := ember(t, "init", "--genesis", gpath, "--datadir", dir); code != 0 {
		t.Fatal(stderr)
	}
	self := "/ip4/127.0.0.1/tcp/8888/p2p/" + peerIDOf(t, filepath.Join(dir, "keys", "p2p.key"))
	if _, stderr, code := ember(t, "init", "--genesis", gpath, "--datadir", dir, "--force", "--peer", self); code == 0 || !strings.Contains(stderr, "is this node's own address") {
		t.Fatalf("own address accepted as a peer: %d %s", code, stderr)
	}
}
