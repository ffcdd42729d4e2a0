package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/internal/childproc"
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

// target is the node under load.
type target struct {
	mode     string
	url      string
	pid      int // the child's, NodeProcess only
	adminURL string

	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	logFile *os.File

	inproc *node.Node
	cancel context.CancelFunc
	done   chan error

	dir  string // throwaway data directory, removed by close unless keep
	keep bool

	mu     sync.Mutex
	blocks map[uint64]nodeBlock // from the child's "produced block" log lines
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

// startNode starts the bench's own node (NodeProcess or NodeInProcess) for
// genesis g with producer key prod.
func startNode(ctx context.Context, o NodeOptions, g *genesis.Genesis, prod keys.Signer, lim nodeLimits) (*target, error) {
	dir, err := os.MkdirTemp(o.Dir, "ember-bench-node-")
	if err != nil {
		return nil, fmt.Errorf("bench: node data directory: %w", err)
	}
	t := &target{mode: o.Mode, dir: dir, keep: o.Keep, blocks: map[uint64]nodeBlock{}}
	switch o.Mode {
	case NodeInProcess:
		err = t.startInProcess(g, prod, lim)
	case NodeProcess, "":
		t.mode = NodeProcess
		err = t.startProcess(ctx, o, g, prod, lim)
	default:
		err = fmt.Errorf("bench: unknown node mode %q", o.Mode)
	}
	if err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

func (t *target) startInProcess(g *genesis.Genesis, prod keys.Signer, lim nodeLimits) error {
	maxTxs, perAccount, maxBytes := lim.mempool()
	maxBatch, maxBody, maxResp := lim.rpc()
	n, err := node.New(node.Config{
		DataDir: filepath.Join(t.dir, "data"), Genesis: g, ProducerKey: prod, RPCListen: "127.0.0.1:0",
		RPC:     rpcgw.Config{MaxBatch: maxBatch, MaxBodyBytes: maxBody, MaxResponseBytes: maxResp},
		Mempool: mempool.Config{MaxTransactions: maxTxs, MaxPerAccount: perAccount, MaxBytes: maxBytes},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("bench: in-process node: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.inproc, t.cancel, t.done = n, cancel, make(chan error, 1)
	go func() { t.done <- n.Run(ctx) }()
	select {
	case <-n.Started():
	case err := <-t.done:
		t.inproc = nil
		return fmt.Errorf("bench: in-process node stopped at start: %v", err)
	}
	t.url = "http://" + n.RPCAddr() + "/"
	return nil
}

func (t *target) startProcess(ctx context.Context, o NodeOptions, g *genesis.Genesis, prod keys.Signer, lim nodeLimits) error {
	bin := o.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: cannot find this executable to run the node (pass --node-binary): %w", err)
		}
		bin = exe
	}
	gb, err := g.Encode()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(t.dir, "genesis.json"), gb, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := keyfile.Write(filepath.Join(t.dir, "keys", "producer.key"), prod, true); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	maxTxs, perAccount, maxBytes := lim.mempool()
	maxBatch, maxBody, maxResp := lim.rpc()
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
	if o.LogPath != "" {
		if t.logFile, err = os.Create(o.LogPath); err != nil {
			return fmt.Errorf("bench: node log: %w", err)
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bench: start %s node: %w", bin, err)
	}
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
		return fmt.Errorf("bench: the node exited at start (%v):\n%s", t.exitErr, t.logTail())
	case <-timer.C:
		return fmt.Errorf("bench: the node did not serve JSON-RPC within 60s:\n%s", t.logTail())
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

// readLog copies the child's log and picks out the addresses it listens
// on and the blocks it produced; ready is called once JSON-RPC serves.
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
			Msg    string `json:"msg"`
			Addr   string `json:"addr"`
			Height uint64 `json:"height"`
			nodeBlock
		}
		if json.Unmarshal(line, &m) != nil {
			t.remember(string(line))
			continue
		}
		switch m.Msg {
		case "produced block":
			t.mu.Lock()
			t.blocks[m.Height] = m.nodeBlock
			t.mu.Unlock()
		case "JSON-RPC listening":
			t.mu.Lock()
			t.url = "http://" + m.Addr + "/"
			t.mu.Unlock()
			ready()
		case "admin listening":
			t.mu.Lock()
			t.adminURL = "http://" + m.Addr
			t.mu.Unlock()
		default:
			t.remember(string(line))
		}
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
		return fmt.Errorf("bench: the node exited during the run (%v):\n%s", t.exitErr, t.logTail())
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
				err = errors.New("bench: the node did not stop within 30s of SIGTERM and was killed")
			}
		}
	}
	if t.inproc != nil {
		t.cancel()
		if e := <-t.done; e != nil {
			err = fmt.Errorf("bench: in-process node: %w", e)
		}
		t.inproc = nil
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
