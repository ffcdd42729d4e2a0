package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/atomicfile"
	"github.com/emberchain/ember/internal/childproc"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/node/keyfile"
)

const (
	devnetManifestFile = "devnet.json"
	devnetChainName    = "ember-devnet"
	devnetDevKey       = "dev.key"
	devnetNodeLog      = "node.log"
	// maxDevnetNodes bounds --nodes: every node is a process with its own
	// store, and all of them run on this machine.
	maxDevnetNodes = 64
	// devnetStopTimeout is how long the nodes get to stop after SIGTERM
	// (a node checkpoints its state and saves its pending transactions)
	// before they are killed.
	devnetStopTimeout = 30 * time.Second
)

// devnetOptions are the choices fixed when a devnet is created.
type devnetOptions struct {
	Nodes         int           `json:"nodes"`
	BlockInterval time.Duration `json:"-"`
	RPCPort       int           `json:"rpc_port"`   // node i serves JSON-RPC on RPCPort+i
	P2PPort       int           `json:"p2p_port"`   // and listens for peers on P2PPort+i
	AdminPort     int           `json:"admin_port"` // and serves metrics on AdminPort+i
}

// devnetManifest is DIR/devnet.json: the devnet as created, for people and
// tools. Paths are relative to DIR. The nodes run what their config.toml
// says, which an operator may have edited since.
type devnetManifest struct {
	ChainName       string         `json:"chain_name"`
	ChainID         string         `json:"chain_id"`
	TokenContract   string         `json:"token_contract"`
	BlockIntervalMs int64          `json:"block_interval_ms"`
	DevKey          string         `json:"dev_key"`
	DevAddress      string         `json:"dev_address"`
	Created         devnetOptions  `json:"created"`
	Nodes           []manifestNode `json:"nodes"`
}

type manifestNode struct {
	Name        string `json:"name"` // its directory under DIR
	Producer    string `json:"producer"`
	PeerID      string `json:"peer_id"`
	PeerAddress string `json:"peer_address"`
	RPCURL      string `json:"rpc_url"`
	AdminURL    string `json:"admin_url"`
	Log         string `json:"log"`
}

func devnetNodeName(i int) string { return fmt.Sprintf("node%d", i) }

func cmdDevnet(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("devnet", "devnet --nodes N --datadir DIR [--block-interval D] [--rpc-port P] [--p2p-port P] [--admin-port P] [--create-only]", stderr)
	var o devnetOptions
	flags.IntVar(&o.Nodes, "nodes", 4, "number of nodes, each a producer of the chain (fixed when DIR is created)")
	dir := flags.String("datadir", "./data/devnet", "devnet directory: created on the first run, reused after")
	flags.DurationVar(&o.BlockInterval, "block-interval", time.Second, "block interval of the new chain")
	flags.IntVar(&o.RPCPort, "rpc-port", 8080, "JSON-RPC port of node0; node i uses this + i (on 127.0.0.1)")
	flags.IntVar(&o.P2PPort, "p2p-port", 8888, "p2p port of node0; node i uses this + i (on 127.0.0.1)")
	flags.IntVar(&o.AdminPort, "admin-port", 9090, "admin (metrics, health) port of node0; node i uses this + i (on 127.0.0.1)")
	createOnly := flags.Bool("create-only", false, "create DIR and exit without running the nodes (for tools that run them, such as ember e2e)")
	if err := parse(flags, args); err != nil {
		return err
	}
	given := map[string]bool{}
	flags.Visit(func(f *flag.Flag) { given[f.Name] = true })
	log := slog.New(slog.NewTextHandler(stderr, nil))

	m, err := readDevnetManifest(*dir)
	switch {
	case err == nil:
		if err := m.checkSameOptions(o, given, *dir); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := o.check(); err != nil {
			return err
		}
		if err := checkDevnetDirUnused(*dir); err != nil {
			return err
		}
		planned := make([]devnetNode, o.Nodes)
		for i := range planned {
			planned[i] = devnetNode{name: devnetNodeName(i), cfg: o.nodeConfig(i, nil)}
		}
		if err := checkPortsFree(planned); err != nil {
			return err
		}
		if m, err = createDevnet(*dir, o); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Created %s: %d nodes of a new chain %q\n", *dir, o.Nodes, m.ChainName)
	default:
		return err
	}
	if *createOnly {
		// An existing devnet is left as it is: it was checked above to
		// be the one asked for.
		fmt.Fprintf(stdout, "Manifest: %s\n", filepath.Join(*dir, devnetManifestFile))
		return nil
	}
	nodes, err := loadDevnet(*dir, m)
	if err != nil {
		return err
	}
	// Again for a devnet created before: its nodes' config.toml may have
	// been edited, and other programs come and go.
	if err := checkPortsFree(nodes); err != nil {
		return err
	}
	return runDevnet(*dir, m, nodes, stdout, log)
}

// check refuses options that cannot make a devnet.
func (o devnetOptions) check() error {
	if o.Nodes < 1 || o.Nodes > maxDevnetNodes {
		return fmt.Errorf("--nodes must be 1 to %d, got %d", maxDevnetNodes, o.Nodes)
	}
	if o.BlockInterval < 10*time.Millisecond || o.BlockInterval%time.Millisecond != 0 {
		return errors.New("--block-interval must be a whole number of milliseconds, at least 10ms")
	}
	ranges := []struct {
		flag string
		base int
	}{{"--rpc-port", o.RPCPort}, {"--p2p-port", o.P2PPort}, {"--admin-port", o.AdminPort}}
	for i, r := range ranges {
		if r.base < 1 || r.base+o.Nodes-1 > 65535 {
			return fmt.Errorf("%s %d: the %d nodes need ports %d to %d, and ports go from 1 to 65535", r.flag, r.base, o.Nodes, r.base, r.base+o.Nodes-1)
		}
		for _, s := range ranges[:i] {
			if r.base < s.base+o.Nodes && s.base < r.base+o.Nodes {
				return fmt.Errorf("%s %d and %s %d: with %d nodes their ports overlap (%d-%d and %d-%d)",
					s.flag, s.base, r.flag, r.base, o.Nodes, s.base, s.base+o.Nodes-1, r.base, r.base+o.Nodes-1)
			}
		}
	}
	return nil
}

// nodeConfig is node i's configuration: loopback listeners on the ports of
// its index, and the other nodes as static peers.
func (o devnetOptions) nodeConfig(i int, peers []string) config.Config {
	cfg := config.Default()
	cfg.RPC.Listen = fmt.Sprintf("127.0.0.1:%d", o.RPCPort+i)
	cfg.Admin.Listen = fmt.Sprintf("127.0.0.1:%d", o.AdminPort+i)
	cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", o.P2PPort+i)}
	cfg.P2P.Peers = peers
	return cfg
}

// checkSameOptions refuses flags that ask for another devnet than the one
// in dir: its chain and layout were fixed when it was created.
func (m *devnetManifest) checkSameOptions(o devnetOptions, given map[string]bool, dir string) error {
	created := m.Created
	created.BlockInterval = time.Duration(m.BlockIntervalMs) * time.Millisecond
	var differ []string
	if given["nodes"] && o.Nodes != len(m.Nodes) {
		differ = append(differ, fmt.Sprintf("it has %d nodes, not --nodes %d", len(m.Nodes), o.Nodes))
	}
	if given["block-interval"] && o.BlockInterval != created.BlockInterval {
		differ = append(differ, fmt.Sprintf("its block interval is %v, not --block-interval %v", created.BlockInterval, o.BlockInterval))
	}
	for _, p := range []struct {
		flag      string
		was, want int
	}{{"rpc-port", created.RPCPort, o.RPCPort}, {"p2p-port", created.P2PPort, o.P2PPort}, {"admin-port", created.AdminPort, o.AdminPort}} {
		if given[p.flag] && p.was != p.want {
			differ = append(differ, fmt.Sprintf("it was created with --%s %d, not %d", p.flag, p.was, p.want))
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("%s is an existing devnet, and %s; run it without those flags, or use another --datadir (or remove %s) for a new devnet",
			dir, strings.Join(differ, "; "), dir)
	}
	return nil
}

func readDevnetManifest(dir string) (*devnetManifest, error) {
	path := filepath.Join(dir, devnetManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m devnetManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.Nodes) < 1 || len(m.Nodes) > maxDevnetNodes {
		return nil, fmt.Errorf("%s: lists %d nodes, expected 1 to %d", path, len(m.Nodes), maxDevnetNodes)
	}
	for i, n := range m.Nodes {
		if n.Name != devnetNodeName(i) {
			return nil, fmt.Errorf("%s: nodes[%d] is named %q, expected %q", path, i, n.Name, devnetNodeName(i))
		}
	}
	return &m, nil
}

// checkDevnetDirUnused refuses to create a devnet over a directory that
// holds something else.
func checkDevnetDirUnused(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s exists and has no %s: it is not a devnet directory; choose another --datadir, or remove it", dir, devnetManifestFile)
	}
	return nil
}

// createDevnet writes a new devnet into dir: the dev key, one genesis with
// every node a producer, and per node a data directory whose config dials
// every other node. It builds it in a temporary directory beside dir and
// renames that into place, so a failed creation leaves nothing that a
// later run would take for a devnet.
func createDevnet(dir string, o devnetOptions) (*devnetManifest, error) {
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, ".devnet-*")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	dev, err := keys.Generate(keys.SchemeSecp256k1)
	if err != nil {
		return nil, err
	}
	if err := keyfile.Write(filepath.Join(tmp, devnetDevKey), dev, false); err != nil {
		return nil, err
	}
	m := &devnetManifest{ChainName: devnetChainName, DevKey: devnetDevKey, DevAddress: dev.Address().String(), Created: o}
	producers := make([]koinos.Address, o.Nodes)
	cfg := config.Default()
	for i := range o.Nodes {
		nodeDir := filepath.Join(tmp, devnetNodeName(i))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		keyDir := filepath.Join(nodeDir, cfg.Node.Keys)
		k, err := keys.Generate(keys.SchemeSecp256k1)
		if err != nil {
			return nil, err
		}
		if err := keyfile.Write(filepath.Join(keyDir, cfg.Producer.Key), k, false); err != nil {
			return nil, err
		}
		id, err := loadIdentity(filepath.Join(keyDir, cfg.P2P.Key))
		if err != nil {
			return nil, err
		}
		producers[i] = k.Address()
		peer, _ := peerAddress(o.nodeConfig(i, nil).P2P.Listen[0], id)
		m.Nodes = append(m.Nodes, manifestNode{
			Name:        devnetNodeName(i),
			Producer:    k.Address().String(),
			PeerID:      id.String(),
			PeerAddress: peer,
			RPCURL:      fmt.Sprintf("http://127.0.0.1:%d/", o.RPCPort+i),
			AdminURL:    fmt.Sprintf("http://127.0.0.1:%d/", o.AdminPort+i),
			Log:         filepath.Join(devnetNodeName(i), devnetNodeLog),
		})
	}
	g, gb, err := devGenesis(devnetChainName, producers, dev.Address(), o.BlockInterval)
	if err != nil {
		return nil, err
	}
	m.ChainID, m.TokenContract, m.BlockIntervalMs = encodeChainID(g), g.TokenID().String(), o.BlockInterval.Milliseconds()
	for i := range o.Nodes {
		var peers []string
		for j, other := range m.Nodes {
			if j != i {
				peers = append(peers, other.PeerAddress)
			}
		}
		if err := writeDataDir(filepath.Join(tmp, devnetNodeName(i)), o.nodeConfig(i, peers), gb); err != nil {
			return nil, err
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(tmp, devnetManifestFile), append(mb, '\n'), 0o644); err != nil {
		return nil, err
	}
	// Renaming over an empty directory replaces it; checkDevnetDirUnused
	// refused a non-empty one.
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	done = true
	return m, nil
}

// devnetNode is one node as it will run: its configuration as loaded from
// its config.toml, and its peer id.
type devnetNode struct {
	name   string
	dir    string
	cfg    config.Config
	peerID string
}

// loadDevnet reads every node's configuration and identity, and checks all
// nodes have the genesis of the manifest's chain.
func loadDevnet(dir string, m *devnetManifest) ([]devnetNode, error) {
	nodes := make([]devnetNode, len(m.Nodes))
	for i := range nodes {
		n := &nodes[i]
		n.name, n.dir = devnetNodeName(i), filepath.Join(dir, devnetNodeName(i))
		var err error
		// Without the environment: runDevnet does not pass EMBER_
		// variables to the nodes either.
		if n.cfg, err = config.Load(config.Sources{File: filepath.Join(n.dir, "config.toml")}); err != nil {
			return nil, fmt.Errorf("%s: %w", n.name, err)
		}
		gpath := under(n.dir, n.cfg.Node.Genesis)
		gb, err := os.ReadFile(gpath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.name, err)
		}
		g, err := genesis.Parse(gb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", gpath, err)
		}
		if id := encodeChainID(g); id != m.ChainID {
			return nil, fmt.Errorf("%s is for chain %s, but the devnet's chain is %s (%s)", gpath, id, m.ChainID, devnetManifestFile)
		}
		idPath := under(under(n.dir, n.cfg.Node.Keys), n.cfg.P2P.Key)
		k, err := p2p.LoadIdentity(idPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (the other nodes' p2p.peers name its peer id %s: restore the key, or create a new devnet)", n.name, err, m.Nodes[i].PeerID)
		}
		id, err := p2p.PeerID(k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", idPath, err)
		}
		n.peerID = id.String()
	}
	return nodes, nil
}

// listener is one address a node will listen on.
type listener struct {
	node, key string // node0, rpc.listen
	network   string // tcp or udp
	addr      string // host:port
}

func (n devnetNode) listeners() []listener {
	var out []listener
	if n.cfg.RPC.Listen != "" {
		out = append(out, listener{n.name, "rpc.listen", "tcp", n.cfg.RPC.Listen})
	}
	if n.cfg.Admin.Listen != "" {
		out = append(out, listener{n.name, "admin.listen", "tcp", n.cfg.Admin.Listen})
	}
	for _, s := range n.cfg.P2P.Listen {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			continue // the node refuses it at start, naming the key
		}
		if a, err := manet.ToNetAddr(m); err == nil {
			out = append(out, listener{n.name, "p2p.listen", a.Network(), a.String()})
		}
	}
	return out
}

// checkPortsFree binds and releases every address the nodes will listen
// on, and names each one that is taken or claimed by two nodes.
func checkPortsFree(nodes []devnetNode) error {
	var problems []string
	claimed := map[string]listener{}
	for _, n := range nodes {
		for _, l := range n.listeners() {
			if strings.HasSuffix(l.addr, ":0") {
				continue // any free port, picked at start
			}
			id := l.network + " " + l.addr
			if first, ok := claimed[id]; ok {
				problems = append(problems, fmt.Sprintf("%s %s and %s %s are both %s", first.node, first.key, l.node, l.key, l.addr))
				continue
			}
			claimed[id] = l
			var err error
			if l.network == "udp" {
				var pc net.PacketConn
				if pc, err = net.ListenPacket("udp", l.addr); err == nil {
					pc.Close()
				}
			} else {
				var ln net.Listener
				if ln, err = net.Listen("tcp", l.addr); err == nil {
					ln.Close()
				}
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s %s %s is taken (%v)", l.node, l.key, l.addr, err))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("cannot start the devnet:\n  %s\nstop what holds these ports, or use another --datadir with other --rpc-port, --p2p-port, --admin-port", strings.Join(problems, "\n  "))
	}
	return nil
}

// devnetChild is a running node process.
type devnetChild struct {
	node    devnetNode
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	err     error // cmd.Wait's result, set before the child is sent on exited
	exited  bool  // seen on exited; only runDevnet's goroutine reads and writes it
}

// runDevnet runs one node process per node until SIGINT or SIGTERM, then
// stops them all.
func runDevnet(dir string, m *devnetManifest, nodes []devnetNode, stdout io.Writer, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the ember binary to run the nodes: %w", err)
	}
	env, dropped := devnetChildEnv(os.Environ())
	if len(dropped) > 0 {
		log.Warn("not passed to the nodes: each node's config.toml configures it", "variables", strings.Join(dropped, ","))
	}
	// Signals are caught before the first node starts, so none is left
	// behind by an early Ctrl-C.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	exited := make(chan *devnetChild, len(nodes))
	children := make([]*devnetChild, 0, len(nodes))
	for _, n := range nodes {
		c, err := startDevnetNode(exe, env, n)
		if err != nil {
			log.Error("a node did not start: stopping the others", "node", n.name, "err", err)
			stopDevnet(children, exited, sigs, log)
			return err
		}
		go func() {
			c.err = c.cmd.Wait()
			c.log.Close()
			exited <- c
		}()
		children = append(children, c)
	}
	printDevnet(stdout, dir, m, children)

	running := len(children)
	for {
		select {
		case c := <-exited:
			c.exited = true
			running--
			log.Warn("node exited on its own; the others keep running", "node", c.node.name, "status", exitStatus(c.err), "log", c.logPath)
			if running == 0 {
				return errors.New("every node has exited: see their logs")
			}
		case sig := <-sigs:
			log.Info("stopping the nodes", "signal", sig.String(), "nodes", running, "timeout", devnetStopTimeout.String())
			return stopDevnet(children, exited, sigs, log)
		}
	}
}

// startDevnetNode starts `ember node` for n, its output appended to its
// node.log.
func startDevnetNode(exe string, env []string, n devnetNode) (*devnetChild, error) {
	logPath := filepath.Join(n.dir, devnetNodeLog)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "--- ember devnet: starting %s at %s\n", n.name, time.Now().Format(time.RFC3339))
	cmd := exec.Command(exe, "node", "--datadir", n.dir)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, f, f
	childproc.SetDeathSignal(cmd)
	// The devnet stops its nodes itself, in order and with a deadline:
	// a Ctrl-C at the terminal must not reach them first.
	childproc.SetOwnProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", n.name, err)
	}
	return &devnetChild{node: n, cmd: cmd, logPath: logPath, log: f}, nil
}

// devnetChildEnv is the environment without EMBER_ variables, which would
// configure every node alike (EMBER_RPC_LISTEN would put all of them on
// one port). EMBER_TEST_MAIN stays: it makes cmd/ember's test binary act
// as ember, and the tests run devnets with it.
func devnetChildEnv(environ []string) (env, dropped []string) {
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "EMBER_") && name != "EMBER_TEST_MAIN" {
			dropped = append(dropped, name)
			continue
		}
		env = append(env, kv)
	}
	return env, dropped
}

// stopDevnet sends SIGTERM to every running node and waits for them; a
// node still running after devnetStopTimeout, or after a second signal,
// is killed. It fails if any node did not stop cleanly.
func stopDevnet(children []*devnetChild, exited <-chan *devnetChild, sigs <-chan os.Signal, log *slog.Logger) error {
	running := 0
	for _, c := range children {
		if c.exited {
			continue
		}
		running++
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			c.cmd.Process.Kill() // no SIGTERM on this system
		}
	}
	killAll := func(reason string) {
		for _, c := range children {
			if !c.exited {
				log.Warn("killing a node", "node", c.node.name, "reason", reason)
				c.cmd.Process.Kill()
			}
		}
	}
	timer := time.NewTimer(devnetStopTimeout)
	defer timer.Stop()
	var unclean []string
	for running > 0 {
		select {
		case c := <-exited:
			c.exited = true
			running--
			if c.err != nil {
				unclean = append(unclean, fmt.Sprintf("%s: %s", c.node.name, exitStatus(c.err)))
				log.Error("node stopped with an error", "node", c.node.name, "status", exitStatus(c.err), "log", c.logPath)
			} else {
				log.Info("node stopped", "node", c.node.name)
			}
		case <-timer.C:
			killAll(fmt.Sprintf("still running %v after SIGTERM", devnetStopTimeout))
		case sig := <-sigs:
			killAll("second " + sig.String())
		}
	}
	if len(unclean) > 0 {
		return fmt.Errorf("not every node stopped cleanly (%s): see their logs", strings.Join(unclean, "; "))
	}
	return nil
}

// exitStatus describes how a process ended: "exit status 1", "signal: killed".
func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

func printDevnet(w io.Writer, dir string, m *devnetManifest, children []*devnetChild) {
	fmt.Fprintf(w, "Devnet %s: %d nodes of chain %q (chain id %s), a block every %v\n\n",
		dir, len(children), m.ChainName, m.ChainID, time.Duration(m.BlockIntervalMs)*time.Millisecond)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tpid\tJSON-RPC\tadmin\tpeer id\tlog")
	for _, c := range children {
		cfg := c.node.cfg
		rpc, admin := "off", "off"
		if cfg.RPC.Listen != "" {
			rpc = "http://" + cfg.RPC.Listen + cfg.RPC.Path
		}
		if cfg.Admin.Listen != "" {
			admin = "http://" + cfg.Admin.Listen + "/"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", c.node.name, c.cmd.Process.Pid, rpc, admin, c.node.peerID, c.logPath)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n  dev key:         %s (account %s, 100000000 EMB)\n", filepath.Join(dir, m.DevKey), m.DevAddress)
	fmt.Fprintf(w, "  token contract:  %s\n", m.TokenContract)
	fmt.Fprintf(w, "  manifest:        %s\n", filepath.Join(dir, devnetManifestFile))
	fmt.Fprintf(w, "Ctrl-C stops every node.\n")
}
