package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/koinos"
)

// freePortRange returns the first of n consecutive free loopback ports,
// none of them in taken, and adds them to taken.
func freePortRange(t *testing.T, n int, taken map[int]bool) int {
	t.Helper()
	for range 200 {
		base, _ := strconv.Atoi(freePort(t)[len("127.0.0.1:"):])
		ok := base+n-1 <= 65535
		for p := base; ok && p < base+n; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			ok = err == nil && !taken[p]
			if err == nil {
				ln.Close()
			}
		}
		if ok {
			for p := base; p < base+n; p++ {
				taken[p] = true
			}
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// devnetPorts returns free --rpc-port, --p2p-port and --admin-port values
// for n nodes.
func devnetPorts(t *testing.T, n int) devnetOptions {
	taken := map[int]bool{}
	return devnetOptions{Nodes: n, BlockInterval: 200 * time.Millisecond,
		RPCPort: freePortRange(t, n, taken), P2PPort: freePortRange(t, n, taken), AdminPort: freePortRange(t, n, taken)}
}

// emberRun runs the CLI as a process, killed if it runs past timeout: a
// devnet that wrongly starts its nodes must not hang the test.
func emberRun(t *testing.T, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ember %s still running after %v:\n%s", strings.Join(args, " "), timeout, out)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// The devnet directory: one genesis, every node a producer with its own
// key, unique loopback ports, a full mesh of peers whose ids are the
// nodes' identity keys, and a manifest that says so.
func TestDevnetLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	o := devnetPorts(t, 3)
	m, err := createDevnet(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readDevnetManifest(dir); err != nil || !slices.Equal(got.Nodes, m.Nodes) || got.ChainID != m.ChainID {
		t.Fatalf("devnet.json reads back as %+v, %v; want %+v", got, err, m)
	}
	g0, _ := os.ReadFile(filepath.Join(dir, "node0", "genesis.json"))
	g := readGenesis(t, filepath.Join(dir, "node0", "genesis.json"))
	if encodeChainID(g) != m.ChainID || g.TokenID().String() != m.TokenContract {
		t.Fatalf("manifest chain %s token %s, genesis %s %s", m.ChainID, m.TokenContract, encodeChainID(g), g.TokenID())
	}
	dev := keyAddress(t, filepath.Join(dir, "dev.key"))
	auth, _ := koinos.ParseAddress(g.Params().Token.Authority)
	if bal := g.Balances(); len(bal) != 1 || !bytes.Equal(bal[0].Address, dev.Bytes()) || bal[0].Amount != devFunds || auth != dev || m.DevAddress != dev.String() {
		t.Fatalf("dev account %s: balances %v, token authority %s, manifest %s", dev, bal, auth, m.DevAddress)
	}
	ports := map[string]string{}
	claim := func(node, what, addr string) {
		t.Helper()
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("%s %s listens on %q, not on loopback", node, what, addr)
		}
		if other, ok := ports[addr]; ok {
			t.Fatalf("%s %s and %s both use %s", other, node, what, addr)
		}
		ports[addr] = node + " " + what
	}
	peerAddrs := make([]string, len(m.Nodes))
	for i := range m.Nodes {
		node := fmt.Sprintf("node%d", i)
		nodeDir := filepath.Join(dir, node)
		cfg := readConfig(t, nodeDir)
		if len(cfg.P2P.Listen) != 1 || !strings.HasPrefix(cfg.P2P.Listen[0], "/ip4/127.0.0.1/tcp/") {
			t.Fatalf("%s p2p.listen %q", node, cfg.P2P.Listen)
		}
		claim(node, "rpc", cfg.RPC.Listen)
		claim(node, "admin", cfg.Admin.Listen)
		claim(node, "p2p", "127.0.0.1:"+strings.TrimPrefix(cfg.P2P.Listen[0], "/ip4/127.0.0.1/tcp/"))
		if want := fmt.Sprintf("127.0.0.1:%d", o.RPCPort+i); cfg.RPC.Listen != want {
			t.Errorf("%s rpc.listen %s, want %s", node, cfg.RPC.Listen, want)
		}
		peerAddrs[i] = cfg.P2P.Listen[0] + "/p2p/" + peerIDOf(t, filepath.Join(nodeDir, "keys", "p2p.key"))
		if m.Nodes[i].PeerAddress != peerAddrs[i] {
			t.Errorf("manifest peer address %s, node's %s", m.Nodes[i].PeerAddress, peerAddrs[i])
		}
		if gb, _ := os.ReadFile(filepath.Join(nodeDir, "genesis.json")); !bytes.Equal(gb, g0) {
			t.Errorf("%s has another genesis than node0", node)
		}
		producer := keyAddress(t, filepath.Join(nodeDir, "keys", "producer.key"))
		if g.Producers()[i] != producer || m.Nodes[i].Producer != producer.String() || !cfg.Producer.Enabled {
			t.Errorf("%s producer key %s; genesis producer %d is %s, manifest %s, producer.enabled %v",
				node, producer, i, g.Producers()[i], m.Nodes[i].Producer, cfg.Producer.Enabled)
		}
	}
	if len(g.Producers()) != 3 {
		t.Fatalf("genesis has %d producers, want 3", len(g.Producers()))
	}
	for i := range m.Nodes {
		cfg := readConfig(t, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		var want []string
		for j, a := range peerAddrs {
			if j != i {
				want = append(want, a)
			}
		}
		if !slices.Equal(cfg.P2P.Peers, want) {
			t.Errorf("node%d p2p.peers %q, want every other node %q", i, cfg.P2P.Peers, want)
		}
	}
}

// Runs that must stop before starting a node, with the reason.
func TestDevnetRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	o := devnetPorts(t, 3)
	if _, err := createDevnet(dir, o); err != nil {
		t.Fatal(err)
	}
	notDevnet := t.TempDir()
	os.WriteFile(filepath.Join(notDevnet, "config.toml"), nil, 0o644)
	fresh := filepath.Join(t.TempDir(), "fresh")
	// A port of node1 taken by another program.
	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.RPCPort+1))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"other node count", []string{"--datadir", dir, "--nodes", "2"}, "is an existing devnet, and it has 3 nodes, not --nodes 2"},
		{"other block interval", []string{"--datadir", dir, "--block-interval", "1s"}, "its block interval is 200ms, not --block-interval 1s"},
		{"other port", []string{"--datadir", dir, "--admin-port", strconv.Itoa(o.AdminPort + 1)}, fmt.Sprintf("it was created with --admin-port %d", o.AdminPort)},
		{"port taken", []string{"--datadir", dir}, fmt.Sprintf("node1 rpc.listen 127.0.0.1:%d is taken", o.RPCPort+1)},
		{"not a devnet", []string{"--datadir", notDevnet}, "has no devnet.json: it is not a devnet directory"},
		{"too many nodes", []string{"--datadir", fresh, "--nodes", "65"}, "--nodes must be 1 to 64, got 65"},
		{"overlapping ports", []string{"--datadir", fresh, "--nodes", "4", "--rpc-port", "20000", "--p2p-port", "20002", "--admin-port", "30000"},
			"--rpc-port 20000 and --p2p-port 20002: with 4 nodes their ports overlap"},
		{"port beyond range", []string{"--datadir", fresh, "--nodes", "4", "--admin-port", "65534"}, "--admin-port 65534: the 4 nodes need ports 65534 to 65537"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code := emberRun(t, 10*time.Second, append([]string{"devnet"}, tc.args...)...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output %q; want exit 1 and %q", code, out, tc.want)
			}
		})
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("a refused devnet was created: %v", err)
	}
	if logs, _ := filepath.Glob(filepath.Join(dir, "node*", "node.log")); len(logs) != 0 {
		t.Fatalf("a refused devnet started nodes: %v", logs)
	}
}

// --create-only writes the devnet and exits without starting a node; a
// second call leaves the devnet as it is.
func TestDevnetCreateOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	o := devnetPorts(t, 2)
	args := []string{"devnet", "--create-only", "--nodes", "2", "--datadir", dir,
		"--rpc-port", fmt.Sprint(o.RPCPort), "--p2p-port", fmt.Sprint(o.P2PPort), "--admin-port", fmt.Sprint(o.AdminPort)}
	out, code := emberRun(t, 30*time.Second, args...)
	if code != 0 || !strings.Contains(out, "Created "+dir) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	m, err := readDevnetManifest(dir)
	if err != nil || len(m.Nodes) != 2 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node0", devnetNodeLog)); err == nil {
		t.Fatal("a node was started: node0 has a log")
	}
	out, code = emberRun(t, 30*time.Second, args...)
	if again, err := readDevnetManifest(dir); code != 0 || strings.Contains(out, "Created") || err != nil || again.ChainID != m.ChainID {
		t.Fatalf("second run: exit %d, chain %v (%v), want %s untouched:\n%s", code, again, err, m.ChainID, out)
	}
}
