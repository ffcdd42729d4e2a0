package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/internal/childproc"
	"github.com/emberchain/ember/rpcgw/client"
)

// proc is a running (or killed) node process.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	skewed bool // runs with node.clock_offset
}

func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// create makes the devnet with ember devnet --create-only on free ports
// and reads what the run needs from it.
func (n *network) create(ctx context.Context) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	n.devnet = filepath.Join(n.dir, "devnet")
	ports, err := freePortRanges(3, Nodes)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, n.cfg.Binary, "devnet", "--create-only", "--nodes", fmt.Sprint(Nodes), "--datadir", n.devnet,
		"--block-interval", n.sc.BlockInterval.String(), "--rpc-port", fmt.Sprint(ports[0]), "--p2p-port", fmt.Sprint(ports[1]), "--admin-port", fmt.Sprint(ports[2]))
	cmd.Env = n.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("e2e: ember devnet --create-only: %w\n%s", err, out)
	}
	mb, err := os.ReadFile(filepath.Join(n.devnet, "devnet.json"))
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	var m struct {
		Nodes []struct {
			PeerID   string `json:"peer_id"`
			RPCURL   string `json:"rpc_url"`
			AdminURL string `json:"admin_url"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(mb, &m); err != nil || len(m.Nodes) != Nodes {
		return fmt.Errorf("e2e: devnet.json: %d nodes (%v), want %d", len(m.Nodes), err, Nodes)
	}
	for i, nd := range m.Nodes {
		n.peerIDs[i], n.adminURLs[i] = nd.PeerID, strings.TrimSuffix(nd.AdminURL, "/")
		if n.clients[i], err = client.New(nd.RPCURL, client.WithTimeout(5*time.Second)); err != nil {
			return fmt.Errorf("e2e: %w", err)
		}
	}
	gb, err := os.ReadFile(filepath.Join(n.devnet, "node0", "genesis.json"))
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	g, err := genesis.Parse(gb)
	if err != nil {
		return fmt.Errorf("e2e: genesis: %w", err)
	}
	n.genesisMs, n.slotMs = g.Params().GenesisTimeMs, g.Params().BlockIntervalMs
	n.chainID, n.token = g.ChainID().Multihash(), g.TokenID()
	for _, p := range g.Producers() {
		n.producers = append(n.producers, p.String())
	}
	return nil
}

// env is the nodes' environment: this process's without EMBER_ variables
// (they would configure all four nodes alike), plus Config.Env.
func (n *network) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EMBER_") {
			env = append(env, kv)
		}
	}
	return append(env, n.cfg.Env...)
}

// freePortRanges finds k ranges of size consecutive loopback ports that
// are free now.
func freePortRanges(k, size int) ([]int, error) {
	var out []int
	taken := map[int]bool{}
	for tries := 0; len(out) < k && tries < 200; tries++ {
		base := 20000 + rand.IntN(40000)
		ok := true
		for p := base; p < base+size && ok; p++ {
			if taken[p] {
				ok = false
				break
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			for p := base; p < base+size; p++ {
				taken[p] = true
			}
			out = append(out, base)
		}
	}
	if len(out) < k {
		return nil, errors.New("e2e: no free ranges of loopback ports")
	}
	return out, nil
}

// start runs node i's process on its data directory, its output appended
// to its node.log.
func (n *network) start(i int, sets ...string) error {
	nodeDir := filepath.Join(n.devnet, fmt.Sprintf("node%d", i))
	f, err := os.OpenFile(filepath.Join(nodeDir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	fmt.Fprintf(f, "--- ember e2e: starting node%d at %s\n", i, time.Now().UTC().Format(time.RFC3339Nano))
	args := []string{"node", "--datadir", nodeDir}
	for _, kv := range append(n.cfg.NodeSets[i], sets...) {
		args = append(args, "--set", kv)
	}
	cmd := exec.Command(n.cfg.Binary, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = n.env(), f, f
	// A runner killed itself must not leave its nodes running.
	childproc.SetDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("e2e: start node%d: %w", i, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.exited) }()
	n.procs[i] = p
	n.starts[i]++
	return nil
}

// waitAnswer waits until node i answers JSON-RPC.
func (n *network) waitAnswer(ctx context.Context, i int) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := n.headInfo(ctx, i); err == nil {
			return nil
		}
		select {
		case <-n.procs[i].exited:
			return fmt.Errorf("e2e: node%d exited before it answered (%v): %s", i, n.procs[i].cmd.ProcessState, n.logTail(i))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: node%d did not answer JSON-RPC within %s: %s", i, startTimeout, n.logTail(i))
		}
	}
}

func (n *network) logTail(i int) string {
	b, _ := os.ReadFile(filepath.Join(n.devnet, fmt.Sprintf("node%d", i), "node.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}

// stopAll stops every node with SIGTERM; each must exit 0.
func (n *network) stopAll() {
	for i, p := range n.procs {
		if !p.running() {
			continue
		}
		if p.paused {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if st := p.cmd.ProcessState; st == nil || !st.Success() {
				n.fail(violation(InvCleanStop, "node%d stopped with %v after SIGTERM: %s", i, st, n.logTail(i)))
			}
		case <-time.After(stopTimeout):
			n.fail(violation(InvCleanStop, "node%d still running %s after SIGTERM", i, stopTimeout))
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

// killAll ends every node still running (a run that failed midway), and
// the byzantine peer.
func (n *network) killAll() {
	if n.byz != nil && n.byz.p.running() {
		_ = n.byz.p.cmd.Process.Kill()
		<-n.byz.p.exited
	}
	for _, p := range n.procs {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}
