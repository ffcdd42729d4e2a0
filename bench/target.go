package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/internal/childproc"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node"
	"github.com/emberchain/ember/node/keyfile"
	"github.com/emberchain/ember/rpcgw"
)

// Node modes: where the node under load runs.
const (
	// NodeProcess runs `ember node` as a child process on a throwaway data
	// directory, so its CPU time and memory can be read from /proc apart
	// from the bench's own.
	NodeProcess = "process"
	// NodeInProcess runs node.Node inside the bench: for tests, and for
	// CPU profiles that see the node and the load generator together.
	NodeInProcess = "in-process"
	// NodeExternal loads a node someone else started (--rpc URL).
	NodeExternal = "external"
)

// NodeOptions say which node to load and how to start it.
type NodeOptions struct {
	// Mode is NodeProcess (default), NodeInProcess or NodeExternal.
	Mode string
	// Binary is the ember executable for NodeProcess (default: this
	// executable).
	Binary string
	// URL is the JSON-RPC endpoint for NodeExternal.
	URL string
	// Dir is where the throwaway data directory is made (default the
	// system temp directory); Keep leaves it behind.
	Dir  string
	Keep bool
	// Set are extra node configuration keys for NodeProcess, applied
	// after the bench's own (--set key=value).
	Set map[string]string
	// Pprof serves the child's pprof on its admin listener, so a CPU
	// profile of the node can be taken over the measured window.
	Pprof bool
	// LogPath receives the child's log (default: discarded after parsing).
	LogPath string
}

// Limits the bench's own node is started with, sized to the load: a
// mempool that holds every transaction of the largest run, and RPC limits
// that pass the largest batch and the largest block.
type nodeLimits struct {
	maxTxs        int // transactions in the largest run
	accounts      int
	batch         int
	responseBytes int
}

func (l nodeLimits) mempool() (maxTxs, perAccount int, maxBytes int64) {
	maxTxs = max(mempool.DefaultMaxTransactions, l.maxTxs+10_000)
	perAccount = max(mempool.DefaultMaxPerAccount, (l.maxTxs+l.accounts-1)/l.accounts+64)
	maxBytes = max(int64(mempool.DefaultMaxBytes), int64(l.maxTxs)*1024)
	return
}

func (l nodeLimits) rpc() (maxBatch, maxBody, maxResp int) {
	return max(rpcgw.DefaultMaxBatch, l.batch), max(4<<20, l.batch*4096), max(16<<20, l.responseBytes)
}

// nodeSpec says how to start one of the bench's own nodes.
type nodeSpec struct {
	// name labels the node in errors ("node 2", "source").
	name    string
	genesis *genesis.Genesis
	// producer signs blocks in its slots; nil: producer.enabled=false.
	producer keys.Signer
	// dir, when set, is the node's data directory, already made (the sync
	// source's, built by the bench); otherwise one is made under
	// NodeOptions.Dir. Either is removed by close unless Keep.
	dir string
	// identity, when set, runs the network on 127.0.0.1:p2pPort with
	// static peers (full multiaddrs, …/p2p/<id>); nil: no network, a
	// single-node chain (p2p.listen empty).
	identity crypto.PrivKey
	p2pPort  int
	peers    []string
	lim      nodeLimits
	// logPath receives the node's log (default NodeOptions.LogPath).
	logPath string
}

// target is one node the bench started (or, for NodeExternal, none).
type target struct {
	name     string
	mode     string
	url      string
	pid      int // the child's, NodeProcess only
	adminURL string
	p2pPort  int

	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	logFile *os.File
	started time.Time // when the process was started (or node.New returned)

	inproc  *node.Node
	cancel  context.CancelFunc
	done    chan error
	logPipe *io.PipeWriter // the in-process node's JSON log, read by readLog
	logDone chan struct{}

	dir  string // throwaway data directory, removed by close unless keep
	keep bool

	mu     sync.Mutex
	blocks map[uint64]nodeBlock // from the node's "produced block" log lines
	events []blockEvent         // "produced block" and "accepted block", in log order
	peers  map[string]time.Time // "peer connected": peer id → first handshake
	syncs  []syncRound          // "sync round done"
	tail   []string             // last log lines, for errors
}

// nodeBlock is what the node logs about a block it produced.
type nodeBlock struct {
	Txs     int   `json:"txs"`
	Failed  int   `json:"failed"`
	Pending int   `json:"pending"`
	BuildMs int64 `json:"build_ms"`
	TotalMs int64 `json:"total_ms"`
}

// blockEvent is a block this node produced or accepted live (gossip), as
// its log says: the log line's time is the node's wall clock when the block
// was stored (and, when produced, handed to the network).
type blockEvent struct {
	produced bool
	height   uint64
	id       string
	at       time.Time
	txs      int
}

// syncRound is one "sync round done" log line.
type syncRound struct {
	at      time.Time
	applied int
	took    time.Duration
}

// startNode starts one of the bench's own nodes (NodeProcess or
// NodeInProcess).
func startNode(ctx context.Context, o NodeOptions, spec nodeSpec) (*target, error) {
	dir := spec.dir
	if dir == "" {
		d, err := os.MkdirTemp(o.Dir, "ember-bench-node-")
		if err != nil {
			return nil, fmt.Errorf("bench: node data directory: %w", err)
		}
		dir = d
	}
	if spec.logPath == "" {
		spec.logPath = o.LogPath
	}
	if spec.name == "" {
		spec.name = "the node"
	}
	t := &target{name: spec.name, mode: o.Mode, dir: dir, keep: o.Keep, p2pPort: spec.p2pPort,
		blocks: map[uint64]nodeBlock{}, peers: map[string]time.Time{}}
	var err error
	if spec.logPath != "" {
		if t.logFile, err = os.Create(spec.logPath); err != nil {
			t.close()
			return nil, fmt.Errorf("bench: node log: %w", err)
		}
	}
	switch o.Mode {
	case NodeInProcess:
		err = t.startInProcess(spec)
	case NodeProcess, "":
		t.mode = NodeProcess
		err = t.startProcess(ctx, o, spec)
	default:
		err = fmt.Errorf("bench: unknown node mode %q", o.Mode)
	}
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// p2pListen is the node's p2p listen address, or "" for no network.
func (s nodeSpec) p2pListen() string {
	if s.identity == nil {
		return ""
	}
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", s.p2pPort)
}

func (t *target) startInProcess(spec nodeSpec) error {
	maxTxs, perAccount, maxBytes := spec.lim.mempool()
	maxBatch, maxBody, maxResp := spec.lim.rpc()
	// The node logs JSON into a pipe that the same reader as a child's
	// log parses, so both modes see the same blocks and events.
	pr, pw := io.Pipe()
	t.logPipe, t.logDone = pw, make(chan struct{})
	go func() {
		defer close(t.logDone)
		t.readLog(pr, func() {})
		io.Copy(io.Discard, pr)
	}()
	cfg := node.Config{
		DataDir: filepath.Join(t.dir, "data"), Genesis: spec.genesis, ProducerKey: spec.producer, RPCListen: "127.0.0.1:0",
		RPC:     rpcgw.Config{MaxBatch: maxBatch, MaxBodyBytes: maxBody, MaxResponseBytes: maxResp},
		Mempool: mempool.Config{MaxTransactions: maxTxs, MaxPerAccount: perAccount, MaxBytes: maxBytes, ExpiryMs: 600_000},
		Logger:  slog.New(slog.NewJSONHandler(pw, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if spec.identity != nil {
		cfg.P2P = &p2p.Config{Identity: spec.identity, Listen: []string{spec.p2pListen()}, Peers: spec.peers}
	}
	n, err := node.New(cfg)
	if err != nil {
		return fmt.Errorf("bench: in-process %s: %w", t.name, err)
	}
	t.started = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	t.inproc, t.cancel, t.done = n, cancel, make(chan error, 1)
	go func() { t.done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-t.done:
		t.inproc = nil
		return fmt.Errorf("bench: in-process %s stopped at start: %v", t.name, err)
	}
	t.mu.Lock()
	t.url = "http://" + n.RPCAddr() + "/"
	t.mu.Unlock()
	return nil
}

func (t *target) startProcess(ctx context.Context, o NodeOptions, spec nodeSpec) error {
	bin := o.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: cannot find this executable to run the node (pass --node-binary): %w", err)
		}
		bin = exe
	}
	gb, err := spec.genesis.Encode()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(t.dir, "genesis.json"), gb, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if spec.producer != nil {
		if err := keyfile.Write(filepath.Join(t.dir, "keys", "producer.key"), spec.producer, true); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if spec.identity != nil {
		if err := p2p.SaveIdentity(filepath.Join(t.dir, "keys", "p2p.key"), spec.identity); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	maxTxs, perAccount, maxBytes := spec.lim.mempool()
	maxBatch, maxBody, maxResp := spec.lim.rpc()
	set := map[string]string{
		"mempool.max_transactions": strconv.Itoa(maxTxs),
		"mempool.max_per_account":  strconv.Itoa(perAccount),
		"mempool.max_bytes":        strconv.FormatInt(maxBytes, 10),
		"rpc.max_batch":            strconv.Itoa(maxBatch),
		"rpc.max_body_bytes":       strconv.Itoa(maxBody),
		"rpc.max_response_bytes":   strconv.Itoa(maxResp),
		"admin.listen":             "127.0.0.1:0", // metrics on, as operators run it, on a free port
		"admin.pprof":              strconv.FormatBool(o.Pprof),
		"log.format":               "json",
		"log.level":                "info",
		"rpc.listen":               "127.0.0.1:0",
		// A backlog may wait longer than the default two minutes when
		// the load is above saturation; expiring it would count as lost.
		"mempool.expiry": "600s",
		// No network for a single node (not the default port 8888, which
		// another node on this machine may hold); a network's nodes on
		// the free ports the bench chose, with full-mesh static peers.
		"p2p.listen":       spec.p2pListen(),
		"p2p.peers":        strings.Join(spec.peers, ","),
		"p2p.key":          "p2p.key",
		"producer.enabled": strconv.FormatBool(spec.producer != nil),
	}
	for k, v := range o.Set {
		set[k] = v
	}
	names := make([]string, 0, len(set))
	for k := range set {
		names = append(names, k)
	}
	sort.Strings(names)
	args := []string{"node", "--datadir", t.dir}
	for _, k := range names {
		args = append(args, "--set", k+"="+set[k])
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	childproc.SetDeathSignal(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: start %s node: %w", bin, err)
	}
	t.started = time.Now()
	t.cmd, t.pid, t.exited = cmd, cmd.Process.Pid, make(chan struct{})
	ready := make(chan struct{})
	var once sync.Once
	go t.readLog(stderr, func() { once.Do(func() { close(ready) }) })
	go func() {
		t.exitErr = cmd.Wait()
		close(t.exited)
	}()
	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case <-t.exited:
		return fmt.Errorf("bench: %s exited at start (%v):\n%s", t.name, t.exitErr, t.logTail())
	case <-timer.C:
		return fmt.Errorf("bench: %s did not serve JSON-RPC within 60s:\n%s", t.name, t.logTail())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// childEnv is the environment without EMBER_ configuration variables: the
// bench sets the node's configuration itself, and an operator's
// EMBER_RPC_LISTEN would move the node onto a port the bench does not know.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EMBER_") {
			out = append(out, kv)
		}
	}
	return out
}

// readLog copies the node's log and picks out the addresses it listens
// on, the blocks it produced and accepted, its peers and its sync rounds;
// ready is called once JSON-RPC serves.
func (t *target) readLog(r io.Reader, ready func()) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if t.logFile != nil {
			t.logFile.Write(line)
			t.logFile.Write([]byte{'\n'})
		}
		var m struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Addr    string    `json:"addr"`
			Height  uint64    `json:"height"`
			ID      string    `json:"id"`
			Peer    string    `json:"peer"`
			Applied int       `json:"applied"`
			// A duration: nanoseconds from slog's JSON handler, or text.
			Took json.RawMessage `json:"took"`
			nodeBlock
		}
		if json.Unmarshal(line, &m) != nil {
			t.remember(string(line))
			continue
		}
		switch m.Msg {
		case "produced block", "accepted block":
			t.mu.Lock()
			if m.Msg == "produced block" {
				t.blocks[m.Height] = m.nodeBlock
			}
			t.events = append(t.events, blockEvent{produced: m.Msg == "produced block", height: m.Height, id: m.ID, at: m.Time, txs: m.Txs})
			t.mu.Unlock()
			continue
		case "JSON-RPC listening":
			t.mu.Lock()
			t.url = "http://" + m.Addr + "/"
			t.mu.Unlock()
			ready()
		case "admin listening":
			t.mu.Lock()
			t.adminURL = "http://" + m.Addr
			t.mu.Unlock()
		case "peer connected":
			t.mu.Lock()
			if _, ok := t.peers[m.Peer]; !ok {
				t.peers[m.Peer] = m.Time
			}
			t.mu.Unlock()
		case "sync round done":
			var took time.Duration
			if ns, err := strconv.ParseInt(string(m.Took), 10, 64); err == nil {
				took = time.Duration(ns)
			} else if t, err := strconv.Unquote(string(m.Took)); err == nil {
				took, _ = time.ParseDuration(t)
			}
			t.mu.Lock()
			t.syncs = append(t.syncs, syncRound{at: m.Time, applied: m.Applied, took: took})
			t.mu.Unlock()
		}
		t.remember(string(line))
	}
}

func (t *target) remember(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tail = append(t.tail, line)
	if len(t.tail) > 20 {
		t.tail = t.tail[len(t.tail)-20:]
	}
}

func (t *target) logTail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.tail, "\n")
}

// rpcURL returns the JSON-RPC endpoint.
func (t *target) rpcURL() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.url
}

func (t *target) admin() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.adminURL
}

// producedBlock returns the node's log record of the block at height h.
func (t *target) producedBlock(h uint64) (nodeBlock, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.blocks[h]
	return b, ok
}

// blockEvents returns a copy of the blocks the node produced and accepted
// live so far.
func (t *target) blockEvents() []blockEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]blockEvent(nil), t.events...)
}

// peerCount is how many distinct peers the node has shaken hands with, and
// when the first was.
func (t *target) peerCount() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first time.Time
	for _, at := range t.peers {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return len(t.peers), first
}

// syncRounds returns the node's "sync round done" lines so far.
func (t *target) syncRounds() []syncRound {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]syncRound(nil), t.syncs...)
}

// stats reads the child's /proc figures; ok is false for other modes.
func (t *target) stats() (procStats, bool) {
	if t.mode != NodeProcess || t.pid == 0 {
		return procStats{}, false
	}
	s, err := readProc(strconv.Itoa(t.pid))
	return s, err == nil
}

// alive reports an error when the child has exited.
func (t *target) alive() error {
	if t.exited == nil {
		return nil
	}
	select {
	case <-t.exited:
		return fmt.Errorf("bench: %s exited during the run (%v):\n%s", t.name, t.exitErr, t.logTail())
	default:
		return nil
	}
}

// close stops the node gracefully (SIGTERM, then SIGKILL after 30 s) and
// removes the throwaway data directory unless keep is set.
func (t *target) close() error {
	var err error
	if t.cmd != nil && t.cmd.Process != nil {
		select {
		case <-t.exited:
		default:
			_ = t.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-t.exited:
			case <-time.After(30 * time.Second):
				_ = t.cmd.Process.Kill()
				<-t.exited
				err = fmt.Errorf("bench: %s did not stop within 30s of SIGTERM and was killed", t.name)
			}
		}
	}
	if t.inproc != nil {
		t.cancel()
		if e := <-t.done; e != nil {
			err = fmt.Errorf("bench: in-process %s: %w", t.name, e)
		}
		t.inproc = nil
	}
	if t.logPipe != nil {
		t.logPipe.Close()
		<-t.logDone
		t.logPipe = nil
	}
	if t.logFile != nil {
		t.logFile.Close()
		t.logFile = nil
	}
	if t.dir != "" && !t.keep {
		os.RemoveAll(t.dir)
	}
	return err
}
