package crashtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/childproc"
	"github.com/emberchain/ember/internal/verdict"
	"github.com/emberchain/ember/node/keyfile"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

// Config configures a run. Zero fields take the defaults in brackets.
type Config struct {
	// Binary is the ember executable; Env is added to its environment
	// (tests run their own binary as ember with EMBER_TEST_MAIN=1).
	Binary string
	Env    []string
	// Dir is the work directory (the node's data directory, its log, the
	// store copies); "" makes and removes a temporary one. A failed run
	// keeps it (and says where).
	Dir string
	// Kills is how many times the node is killed [5].
	Kills int
	// MinUp and MaxUp bound the random time the node runs before each
	// kill, measured from when it answers again [1 s, 4 s].
	MinUp, MaxUp time.Duration
	// BlockInterval of the chain [250 ms]: short, so that many blocks
	// become irreversible between kills.
	BlockInterval time.Duration
	// Senders is the number of accounts sending transfers [4]; TxRate the
	// transfers per second they submit together [60].
	Senders int
	TxRate  float64
	// RestartTimeout bounds a restart: process start to a JSON-RPC answer
	// [60 s].
	RestartTimeout time.Duration
	// AfterKill, when set, runs after each kill, before the killed store
	// is inspected and the node restarted, with the node's data directory:
	// a fault the harness's own tests inject to see it reported.
	AfterKill func(dataDir string, kill int) error
	// Seed makes the kill moments repeatable (0: from the clock).
	Seed   uint64
	Logger *slog.Logger // progress; nil: discard
}

func (c *Config) ensureDefaults() error {
	if c.Binary == "" {
		return errors.New("crashtest: Config.Binary is required")
	}
	if c.Kills <= 0 {
		c.Kills = 5
	}
	if c.MinUp <= 0 {
		c.MinUp = time.Second
	}
	if c.MaxUp < c.MinUp {
		c.MaxUp = max(c.MinUp, 4*time.Second)
	}
	if c.BlockInterval <= 0 {
		c.BlockInterval = 250 * time.Millisecond
	}
	if c.Senders <= 0 {
		c.Senders = 4
	}
	if c.Senders < 2 {
		return errors.New("crashtest: at least 2 senders: each sends to the next")
	}
	if c.TxRate <= 0 {
		c.TxRate = 60
	}
	if c.RestartTimeout <= 0 {
		c.RestartTimeout = 60 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Summary is what a run did and found.
type Summary struct {
	Seed               uint64        `json:"seed"`
	Kills              int           `json:"kills"`            // SIGKILLs sent
	Restarts           int           `json:"restarts"`         // restarts that answered
	MaxRestart         time.Duration `json:"max_restart_ns"`   // slowest: start to first answer
	MeanRestart        time.Duration `json:"mean_restart_ns"`  // average of the same
	IrreversibleBlocks uint64        `json:"irreversible"`     // blocks reported irreversible, each checked after every kill
	TxsSubmitted       int           `json:"txs_submitted"`    // transfers sent
	TxsAcked           int           `json:"txs_acked"`        // acknowledged by chain.submit_transaction
	TxsIrreversible    int           `json:"txs_irreversible"` // in blocks reported irreversible
	TxLookups          int           `json:"tx_lookups"`       // transaction_store lookups checked
	HistoryEntries     int           `json:"history_entries"`  // account history entries checked
	GuardChecks        int           `json:"guard_checks"`     // kills after which the sign guard was judged on a new block
	// GuardAhead counts the kills that fell between the guard's record of
	// a slot and the commit of its block (the guard's slot is after the
	// stored head's): the moments the guard exists for.
	GuardAhead         int           `json:"guard_ahead"`
	StoreCopiesChecked int           `json:"store_copies"`     // killed stores opened offline and checked
	EventLogRecords    int           `json:"eventlog_records"` // records read back from those copies
	ReplayBlocks       int           `json:"replay_blocks"`    // blocks the final replay from genesis re-applied
	ReplayStateRoot    string        `json:"replay_state_root"`
	Duration           time.Duration `json:"duration_ns"`
	Violations         []string      `json:"violations,omitempty"`
	ViolatedInvariants []string      `json:"violated_invariants,omitempty"`
	Dir                string        `json:"dir,omitempty"` // kept after a failure
}

// String is the summary printed at the end of a run.
func (s *Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crash test: %d kills, %d restarts survived (slowest %s, mean %s), %s\n", s.Kills, s.Restarts,
		s.MaxRestart.Round(time.Millisecond), s.MeanRestart.Round(time.Millisecond), s.Duration.Round(time.Second))
	fmt.Fprintf(&b, "  irreversible blocks checked after every kill: %d\n", s.IrreversibleBlocks)
	fmt.Fprintf(&b, "  transfers: %d submitted, %d acknowledged, %d in irreversible blocks; %d lookups checked\n", s.TxsSubmitted, s.TxsAcked, s.TxsIrreversible, s.TxLookups)
	fmt.Fprintf(&b, "  account history entries checked: %d\n", s.HistoryEntries)
	fmt.Fprintf(&b, "  killed stores opened offline: %d (%d event log records read)\n", s.StoreCopiesChecked, s.EventLogRecords)
	fmt.Fprintf(&b, "  sign guard judged on %d restarts; %d kills fell between a slot's guard record and its block's commit\n", s.GuardChecks, s.GuardAhead)
	fmt.Fprintf(&b, "  replay from genesis: %d blocks re-applied, each to its stored state root; head state root %s, as the live node serves\n", s.ReplayBlocks, s.ReplayStateRoot)
	b.WriteString(verdict.Describe(s.Violations, s.ViolatedInvariants))
	if s.Dir != "" {
		fmt.Fprintf(&b, "  work directory kept: %s\n", s.Dir)
	}
	return b.String()
}

// ErrViolations is returned (wrapped) by Run when an invariant broke.
var ErrViolations = errors.New("crashtest: invariants broken")

// Run initializes a dev chain, runs its node under load, kills it with
// SIGKILL cfg.Kills times at random moments, restarting it each time, and
// checks the invariants (check.go) after every kill and at the end.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	h := &harness{cfg: cfg, log: cfg.Logger, ledger: NewLedger(), txs: map[string]txInfo{},
		rng: rand.New(rand.NewPCG(cfg.Seed, 0x6372617368))}
	h.sum.Seed = cfg.Seed
	h.invariantsSeen = map[string]bool{}
	h.historyCheckedUntil = map[int]int{}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ember-crashtest-")
		if err != nil {
			return nil, fmt.Errorf("crashtest: %w", err)
		}
		dir = d
	}
	h.dir, h.datadir = dir, filepath.Join(dir, "node")
	err := h.run(ctx)
	h.sum.Duration = time.Since(start)
	if h.restarts > 0 {
		h.sum.MeanRestart = h.restartTotal / time.Duration(h.restarts)
	}
	if invariantOf(err) != "" {
		// A violation that ended the run (the node did not come back)
		// is reported like the others.
		h.fail(err)
		err = nil
	}
	if err == nil && h.violations > 0 {
		err = fmt.Errorf("%w: %d violations (%s)", ErrViolations, h.violations, strings.Join(h.sum.ViolatedInvariants, ", "))
	}
	if err != nil || cfg.Dir != "" {
		h.sum.Dir = dir
	} else {
		os.RemoveAll(dir)
	}
	return &h.sum, err
}

// harness is one run's state.
type harness struct {
	cfg               Config
	log               *slog.Logger
	dir, datadir      string
	rpcAddr, admin    string
	rpc               *client.Client
	ledger            *Ledger
	rng               *rand.Rand
	genesisMs, slotMs uint64
	producer          string // 0x address of the chain's producer
	accounts          []keys.Signer
	token             koinos.Address
	chainID           []byte

	mu         sync.Mutex
	txs        map[string]txInfo // every transfer built, by id
	submitted  int
	acked      int
	violations int

	// obsMu is held by each observation; the kill path takes it to see
	// the observer's last figures once the node is dead.
	obsMu      sync.Mutex
	maxNextSeq uint64 // highest ember_eventlog_next_seq scraped

	node    *exec.Cmd
	exited  chan struct{}
	logFile *os.File
	sum     Summary
	// Bookkeeping behind the summary.
	restartTotal        time.Duration
	restarts            int
	invariantsSeen      map[string]bool
	txsCheckedUpTo      uint64      // blocks whose transactions were looked up
	historyCheckedUntil map[int]int // per account: entries checked
}

// txInfo is a transfer the load built: sender and recipient account
// indexes.
type txInfo struct{ from, to int }

func (h *harness) run(ctx context.Context) error {
	if err := h.setup(ctx); err != nil {
		return err
	}
	defer h.logFile.Close()
	if err := h.start(ctx); err != nil {
		return err
	}
	defer h.stopNode()
	if err := h.loadChainInfo(ctx); err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range h.accounts {
		wg.Add(1)
		go func() { defer wg.Done(); h.send(loadCtx, i) }()
	}
	obsCtx, stopObs := context.WithCancel(ctx)
	var obsWG sync.WaitGroup
	obsWG.Add(1)
	go func() { defer obsWG.Done(); h.observe(obsCtx) }()
	defer func() {
		stopLoad()
		wg.Wait()
		stopObs()
		obsWG.Wait()
	}()

	for k := 1; k <= h.cfg.Kills; k++ {
		up := h.cfg.MinUp + time.Duration(h.rng.Int64N(int64(h.cfg.MaxUp-h.cfg.MinUp)+1))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(up):
		}
		if k%2 == 0 {
			// Every other kill is aimed at the producer's busy moment:
			// just after it records a slot in its sign guard, while it
			// signs, applies and commits that slot's block. A kill at a
			// random moment mostly finds the node idle between blocks.
			h.waitGuardWrite(ctx)
		}
		if err := h.killAndCheck(ctx, k); err != nil {
			return err
		}
	}
	stopLoad()
	wg.Wait()
	if err := h.final(ctx); err != nil {
		return err
	}
	stopObs()
	obsWG.Wait()
	return h.stopAndReplay(ctx)
}

// waitGuardWrite returns as soon as the sign guard file is replaced (the
// producer recorded a new slot), or after two block intervals. It polls:
// the window between the guard's write and the block's commit is a few
// milliseconds.
func (h *harness) waitGuardWrite(ctx context.Context) {
	path := filepath.Join(h.datadir, "data", "sign-guard")
	before, _ := os.Stat(path)
	deadline := time.Now().Add(2 * h.cfg.BlockInterval)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		now, err := os.Stat(path)
		if err == nil && (before == nil || !os.SameFile(before, now) || !now.ModTime().Equal(before.ModTime())) {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// setup creates the chain (ember bench init: a single-producer dev chain
// funding the senders) and reads what the run needs from it.
func (h *harness) setup(ctx context.Context) error {
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return fmt.Errorf("crashtest: %w", err)
	}
	out, err := h.ember(ctx, "bench", "init", "--datadir", h.datadir, "--scheme", "ed25519",
		"--accounts", fmt.Sprint(h.cfg.Senders), "--seed", "crashtest", "--block-interval", h.cfg.BlockInterval.String())
	if err != nil {
		return fmt.Errorf("crashtest: ember bench init: %w\n%s", err, out)
	}
	names, _ := filepath.Glob(filepath.Join(h.datadir, "bench-keys", "*.key"))
	if len(names) != h.cfg.Senders {
		return fmt.Errorf("crashtest: %d keys in %s/bench-keys, want %d", len(names), h.datadir, h.cfg.Senders)
	}
	for _, n := range names {
		k, err := keyfile.Read(n)
		if err != nil {
			return fmt.Errorf("crashtest: %w", err)
		}
		h.accounts = append(h.accounts, k)
	}
	pk, err := keyfile.Read(filepath.Join(h.datadir, "keys", "producer.key"))
	if err != nil {
		return fmt.Errorf("crashtest: %w", err)
	}
	h.producer = addrString(pk.Address().Bytes())
	gb, err := os.ReadFile(filepath.Join(h.datadir, "genesis.json"))
	if err != nil {
		return fmt.Errorf("crashtest: %w", err)
	}
	g, err := genesis.Parse(gb)
	if err != nil {
		return fmt.Errorf("crashtest: genesis: %w", err)
	}
	h.genesisMs, h.slotMs = g.Params().GenesisTimeMs, g.Params().BlockIntervalMs
	if h.slotMs == 0 {
		return errors.New("crashtest: genesis has a zero block interval")
	}
	if h.rpcAddr, err = freePort(); err != nil {
		return err
	}
	if h.admin, err = freePort(); err != nil {
		return err
	}
	if h.rpc, err = client.New("http://"+h.rpcAddr+"/", client.WithTimeout(5*time.Second)); err != nil {
		return fmt.Errorf("crashtest: %w", err)
	}
	h.logFile, err = os.OpenFile(filepath.Join(h.dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("crashtest: %w", err)
	}
	return nil
}

// ember runs an ember command to completion and returns its output.
func (h *harness) ember(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, h.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), h.cfg.Env...)
	childproc.SetDeathSignal(cmd)
	return cmd.CombinedOutput()
}

// freePort returns a loopback address no one listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("crashtest: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs the node and waits until it answers JSON-RPC. extra are
// more --set flags.
func (h *harness) start(ctx context.Context, extra ...string) error {
	args := []string{"node", "--datadir", h.datadir, "--rpc-addr", h.rpcAddr,
		"--set", "admin.listen=" + h.admin, "--set", "p2p.listen="}
	for _, e := range extra {
		args = append(args, "--set", e)
	}
	fmt.Fprintf(h.logFile, "\n=== crashtest: %s start %s\n", time.Now().UTC().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(h.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), h.cfg.Env...)
	cmd.Stdout, cmd.Stderr = h.logFile, h.logFile
	// A harness killed itself must not leave the node running.
	childproc.SetDeathSignal(cmd)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("crashtest: start the node: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	h.node, h.exited = cmd, exited
	deadline := time.Now().Add(h.cfg.RestartTimeout)
	for {
		var r chainrpc.GetHeadInfoResponse
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := h.rpc.Call(cctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-exited:
			return violation(InvRestart, "the node exited before it answered (%v); log: %s", cmd.ProcessState, h.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return violation(InvRestart, "the node did not answer JSON-RPC within %s; log: %s", h.cfg.RestartTimeout, h.logTail())
		}
	}
	d := time.Since(began)
	h.sum.MaxRestart = max(h.sum.MaxRestart, d)
	h.restartTotal += d
	h.restarts++
	return nil
}

// stopNode ends the node if it still runs (a run that failed midway).
func (h *harness) stopNode() {
	if h.node == nil {
		return
	}
	select {
	case <-h.exited:
	default:
		_ = h.node.Process.Kill()
		<-h.exited
	}
}

// logTail returns the end of the node's log.
func (h *harness) logTail() string {
	b, _ := os.ReadFile(h.logFile.Name())
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return "\n" + string(b)
}

// fail records a violation (or the harness error err is) and goes on.
func (h *harness) fail(err error) {
	inv := invariantOf(err)
	if inv == "" {
		inv = "harness"
	}
	h.mu.Lock()
	h.violations++
	if len(h.sum.Violations) < 50 {
		h.sum.Violations = append(h.sum.Violations, err.Error())
	}
	if !h.invariantsSeen[inv] {
		h.invariantsSeen[inv] = true
		h.sum.ViolatedInvariants = append(h.sum.ViolatedInvariants, inv)
	}
	h.mu.Unlock()
	h.log.Error("crash test violation", "err", err)
}

// killAndCheck kills the node, checks a copy of its store, restarts it
// and checks what it serves.
func (h *harness) killAndCheck(ctx context.Context, k int) error {
	if err := h.node.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("crashtest: kill: %w", err)
	}
	<-h.exited
	h.sum.Kills++
	// Wait for an observation in flight: what it reports was reported
	// before the kill.
	h.obsMu.Lock()
	nextBefore := h.maxNextSeq
	h.obsMu.Unlock()
	fmt.Fprintf(h.logFile, "=== crashtest: %s SIGKILL %d\n", time.Now().UTC().Format(time.RFC3339Nano), k)
	if h.cfg.AfterKill != nil {
		if err := h.cfg.AfterKill(filepath.Join(h.datadir, "data"), k); err != nil {
			return fmt.Errorf("crashtest: AfterKill: %w", err)
		}
	}

	snap, err := h.inspectStore(k, nextBefore)
	if err != nil {
		h.fail(err)
	}
	if err := h.start(ctx); err != nil {
		return err // the node does not come back: nothing more to check
	}
	h.sum.Restarts++
	h.checkServing(ctx, snap)
	h.log.Info("crash test: survived a kill", "kill", k, "of", h.cfg.Kills, "irreversible", h.ledger.Height(), "acked_txs", h.ackedCount())
	return nil
}

func (h *harness) ackedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acked
}

// stopAndReplay stops the node gracefully, replays its store from genesis
// (ember replay), then restarts it without producing and compares the
// head and state root it serves with the replay's.
func (h *harness) stopAndReplay(ctx context.Context) error {
	if err := h.stopGracefully(); err != nil {
		h.fail(err)
		return nil
	}
	out, err := h.ember(ctx, "replay", "--datadir", h.datadir, "--json")
	if err != nil {
		h.fail(violation(InvReplay, "ember replay: %v\n%s", err, out))
		return nil
	}
	var rep struct {
		HeadHeight uint64 `json:"head_height"`
		HeadID     string `json:"head_id"`
		StateRoot  string `json:"state_root"`
		Blocks     int    `json:"blocks"`
	}
	line := out
	if i := strings.IndexByte(string(out), '{'); i >= 0 {
		line = out[i:]
		if j := strings.IndexByte(string(line), '\n'); j >= 0 {
			line = line[:j]
		}
	}
	if err := json.Unmarshal(line, &rep); err != nil {
		return fmt.Errorf("crashtest: ember replay printed no result: %v\n%s", err, out)
	}
	h.sum.ReplayBlocks, h.sum.ReplayStateRoot = rep.Blocks, rep.StateRoot
	if err := h.start(ctx, "producer.enabled=false"); err != nil {
		return err
	}
	hi, err := h.headInfo(ctx)
	if err != nil {
		return fmt.Errorf("crashtest: head after the replay: %w", err)
	}
	live := fmt.Sprintf("0x%x", hi.HeadStateMerkleRoot)
	liveID := fmt.Sprintf("0x%x", hi.HeadTopology.GetId())
	if hi.HeadTopology.GetHeight() != rep.HeadHeight || liveID != rep.HeadID || live != rep.StateRoot {
		h.fail(violation(InvReplay, "the node serves head %d %s with state root %s; the replay from genesis reached %d %s with %s",
			hi.HeadTopology.GetHeight(), liveID, live, rep.HeadHeight, rep.HeadID, rep.StateRoot))
	}
	if rep.HeadHeight < h.ledger.Height() {
		h.fail(violation(InvReplay, "the replay reached block %d, below the %d reported irreversible", rep.HeadHeight, h.ledger.Height()))
	}
	if err := h.stopGracefully(); err != nil {
		h.fail(err)
	}
	return nil
}

// stopGracefully sends SIGTERM and waits for a clean exit.
func (h *harness) stopGracefully() error {
	if err := h.node.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("crashtest: stop: %w", err)
	}
	select {
	case <-h.exited:
	case <-time.After(2 * time.Minute):
		_ = h.node.Process.Kill()
		<-h.exited
		return violation(InvRestart, "the node did not stop within 2 minutes of SIGTERM")
	}
	if st := h.node.ProcessState; st == nil || !st.Success() {
		return violation(InvRestart, "the node stopped with %v after SIGTERM; log: %s", st, h.logTail())
	}
	return nil
}
