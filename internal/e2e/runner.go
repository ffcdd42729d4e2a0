package e2e

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

	"github.com/mr-tron/base58"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/internal/childproc"
	"github.com/emberchain/ember/internal/verdict"
	"github.com/emberchain/ember/node/keyfile"
	blockrpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

// Config configures a run of one scenario.
type Config struct {
	// Binary is the ember executable; Env is added to its environment
	// (tests run their own binary as ember with EMBER_TEST_MAIN=1).
	Binary string
	Env    []string
	// Dir is the work directory (the devnet, its logs); "" makes a
	// temporary one, removed after a run that passed.
	Dir    string
	Logger *slog.Logger // progress; nil: discard
	// NodeSets are more --set flags for a node at each of its starts: a
	// fault the harness's own tests inject to see it reported (a
	// producer that never produces).
	NodeSets map[int][]string
}

// Result is what a run did and found.
type Result struct {
	Scenario     string        `json:"scenario"`
	Seed         uint64        `json:"seed,omitempty"`
	Timeline     []string      `json:"timeline"` // the steps as played, with their times
	Duration     time.Duration `json:"duration_ns"`
	Irreversible uint64        `json:"irreversible"` // the lowest final LIB: blocks compared on every node
	Tx           TxFigures     `json:"transactions"`
	// Resubmitted counts transactions sent again after the chain's nonce
	// stalled; LostAfterAck those of them acknowledged before that a
	// node accepted again (no node had them: a killed node's mempool).
	Resubmitted  int           `json:"resubmitted"`
	LostAfterAck int           `json:"lost_after_ack"`
	Resume       ResumeFigures `json:"resume"`
	// FinalityAfterHeal is how long after the final heal every node's
	// LIB passed the highest head at the heal.
	FinalityAfterHeal  time.Duration `json:"finality_after_heal_ns"`
	Violations         []string      `json:"violations,omitempty"`
	ViolatedInvariants []string      `json:"violated_invariants,omitempty"`
	KnownFailure       string        `json:"known_failure,omitempty"`
	Dir                string        `json:"dir,omitempty"` // kept after a failure
}

// Passed reports whether no invariant broke.
func (r *Result) Passed() bool { return len(r.Violations) == 0 }

// String is the summary printed after a run.
func (r *Result) String() string {
	var b strings.Builder
	outcome := "passed"
	if !r.Passed() {
		outcome = "FAILED"
		if r.KnownFailure != "" {
			outcome = "failed (known: " + r.KnownFailure + ")"
		}
	}
	fmt.Fprintf(&b, "scenario %s: %s in %s", r.Scenario, outcome, r.Duration.Round(time.Second))
	if r.Seed != 0 {
		fmt.Fprintf(&b, " (seed %d)", r.Seed)
	}
	b.WriteString("\n")
	for _, s := range r.Timeline {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	fmt.Fprintf(&b, "  irreversible blocks identical on all 4 nodes: %d\n", r.Irreversible)
	fmt.Fprintf(&b, "  transfers: %d sent, %d acknowledged, %d included (%d of the acknowledged); %d resubmitted after a stall, %d of them lost after their acknowledgement\n",
		r.Tx.Sent, r.Tx.Acked, r.Tx.Included, r.Tx.AckedIncluded, r.Resubmitted, r.LostAfterAck)
	fmt.Fprintf(&b, "  after the final heal: first block %d slots later, every producer within %d ms, every node's LIB past the heal's heads within %s\n",
		r.Resume.FirstSlots, r.Resume.AllProducersMs, r.FinalityAfterHeal.Round(100*time.Millisecond))
	b.WriteString(verdict.Describe(r.Violations, r.ViolatedInvariants))
	if r.Dir != "" {
		fmt.Fprintf(&b, "  work directory kept: %s\n", r.Dir)
	}
	return b.String()
}

// ErrViolations is returned (wrapped) by Run when an invariant broke.
var ErrViolations = errors.New("e2e: invariants broken")

// Timeouts of the run's phases: generous, for a shared 2-core machine.
const (
	startTimeout   = 60 * time.Second // a node process to its first JSON-RPC answer
	readyTimeout   = 60 * time.Second // the first irreversible blocks on every node
	drainTimeout   = 60 * time.Second // after the load stops: every sent transfer on the chain
	finalTimeout   = 90 * time.Second // every node's LIB past the heal's heads and the drain's
	stopTimeout    = 30 * time.Second // SIGTERM to exit
	rpcCallTimeout = 2 * time.Second
)

// Run creates a 4-producer devnet (ember devnet --create-only), runs its
// nodes as child processes under the honest load, plays the scenario's
// timeline, heals everything, and judges the invariants (check.go).
func Run(ctx context.Context, cfg Config, sc *Scenario) (*Result, error) {
	if cfg.Binary == "" {
		return nil, errors.New("e2e: Config.Binary is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "ember-e2e-"+sc.Name+"-")
		if err != nil {
			return nil, fmt.Errorf("e2e: %w", err)
		}
		dir = d
	}
	n := &network{cfg: cfg, sc: sc, log: cfg.Logger.With("scenario", sc.Name), dir: dir, ledger: NewLedger(), cut: map[[2]int]bool{}}
	n.res.Scenario, n.res.KnownFailure = sc.Name, sc.KnownFailure
	if sc.Mixed != nil {
		n.res.Seed = sc.Seed
	}
	err := n.run(ctx)
	n.res.Duration = time.Since(start)
	res := &n.res
	if err == nil && !res.Passed() {
		err = fmt.Errorf("%w: %s: %d violations (%s)", ErrViolations, sc.Name, len(res.Violations), strings.Join(res.ViolatedInvariants, ", "))
	}
	if err != nil || cfg.Dir != "" {
		res.Dir = dir
	} else {
		os.RemoveAll(dir)
	}
	return res, err
}

// network is one run: the devnet's nodes and what was seen of them.
type network struct {
	cfg    Config
	sc     *Scenario
	log    *slog.Logger
	dir    string
	devnet string // the devnet directory under dir
	ledger *Ledger

	peerIDs   [Nodes]string
	adminURLs [Nodes]string
	clients   [Nodes]*client.Client
	procs     [Nodes]*proc
	genesisMs uint64
	slotMs    uint64
	chainID   []byte
	token     koinos.Address
	producers []string
	senders   []*sender

	cut map[[2]int]bool // links cut by bans, lower node first
	t0  time.Time       // the timeline's start

	mu  sync.Mutex
	res Result
	// seenInvariants orders ViolatedInvariants by first occurrence.
	seenInvariants map[string]bool
}

func (n *network) client(i int) *client.Client { return n.clients[i] }

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

// fail records violations (a *Violation, or another error the judging
// met) and goes on.
func (n *network) fail(errs ...error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seenInvariants == nil {
		n.seenInvariants = map[string]bool{}
	}
	for _, err := range errs {
		inv := verdict.InvariantOf(err)
		if inv == "" {
			inv = "harness"
		}
		if len(n.res.Violations) < 50 {
			n.res.Violations = append(n.res.Violations, err.Error())
		}
		if !n.seenInvariants[inv] {
			n.seenInvariants[inv] = true
			n.res.ViolatedInvariants = append(n.res.ViolatedInvariants, inv)
		}
		n.log.Error("e2e violation", "err", err)
	}
}

func (n *network) run(ctx context.Context) error {
	if err := n.create(ctx); err != nil {
		return err
	}
	defer n.killAll()
	for i := range Nodes {
		if err := n.start(i); err != nil {
			return err
		}
	}
	for i := range Nodes {
		if err := n.waitAnswer(ctx, i); err != nil {
			return err
		}
	}
	if err := n.waitFor(ctx, readyTimeout, "the first irreversible blocks on every node", func() bool {
		libs, ok := n.libs(ctx)
		return ok && minOf(libs) >= 2
	}); err != nil {
		return err
	}
	if err := n.fund(ctx); err != nil {
		return err
	}

	obsCtx, stopObs := context.WithCancel(ctx)
	var obsWG sync.WaitGroup
	for i := range Nodes {
		obsWG.Add(1)
		go func() { defer obsWG.Done(); n.observe(obsCtx, i) }()
	}
	defer func() { stopObs(); obsWG.Wait() }()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var loadWG sync.WaitGroup
	for _, s := range n.senders {
		loadWG.Add(1)
		go func() { defer loadWG.Done(); s.run(loadCtx, n.sc.TxRate/float64(len(n.senders))) }()
	}
	defer func() { stopLoad(); loadWG.Wait() }()

	n.log.Info("e2e: warm-up under load", "for", n.sc.Warmup)
	if err := sleep(ctx, n.sc.Warmup); err != nil {
		return err
	}
	if err := n.play(ctx); err != nil {
		return err
	}
	healed, err := n.healAll(ctx)
	if err != nil {
		return err
	}
	headAtHeal, libAtHeal := uint64(0), uint64(1<<63)
	for i := range Nodes {
		if hi, err := n.headInfo(ctx, i); err == nil {
			headAtHeal = max(headAtHeal, hi.HeadTopology.GetHeight())
			libAtHeal = min(libAtHeal, hi.LastIrreversibleBlock)
		}
	}
	// Load goes on while the healed network settles: the producers must
	// all be back within ProducersWithin.
	finalityDone := make(chan time.Duration, 1)
	go func() {
		err := n.waitFor(ctx, finalTimeout, "irreversibility past the heal's heads", func() bool {
			libs, ok := n.libs(ctx)
			return ok && minOf(libs) > headAtHeal
		})
		if err != nil {
			finalityDone <- 0
			return
		}
		finalityDone <- time.Since(healed)
	}()
	n.waitProducers(ctx, healed, libAtHeal)
	stopLoad()
	loadWG.Wait()
	n.drain(ctx)
	n.res.FinalityAfterHeal = <-finalityDone
	if n.res.FinalityAfterHeal == 0 {
		n.fail(violation(InvFinality, "irreversibility did not pass block %d, the highest head at the heal, within %s", headAtHeal, finalTimeout))
	}
	// Every node's LIB past the drain's heads: the judged chain holds
	// every transfer's block.
	top := uint64(0)
	for i := range Nodes {
		if hi, err := n.headInfo(ctx, i); err == nil {
			top = max(top, hi.HeadTopology.GetHeight())
		}
	}
	if err := n.waitFor(ctx, finalTimeout, "irreversibility past the drain's heads", func() bool {
		libs, ok := n.libs(ctx)
		return ok && minOf(libs) >= top
	}); err != nil {
		n.fail(violation(InvFinality, "%v", err))
	}
	stopObs()
	obsWG.Wait()
	n.judge(ctx, headAtHeal, uint64(healed.UnixMilli()))
	n.stopAll()
	return nil
}

// waitProducers returns once node0's head chain has a block from every
// producer after the heal, or ProducersWithin after it: the load goes on
// meanwhile. The verdict is CheckResumed's, on the final chain.
func (n *network) waitProducers(ctx context.Context, healed time.Time, libAtHeal uint64) {
	deadline := healed.Add(n.sc.ProducersWithin + 2*n.sc.BlockInterval)
	healMs := uint64(healed.UnixMilli())
	for time.Now().Before(deadline) {
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return
		}
		hi, err := n.headInfo(ctx, 0)
		if err != nil || hi.HeadTopology.GetHeight() <= libAtHeal {
			continue
		}
		from := libAtHeal + 1
		bs, err := n.blocks(ctx, 0, hi.HeadTopology.GetId(), from, min(hi.HeadTopology.GetHeight()-from+1, 500), true)
		if err != nil {
			continue
		}
		signed := map[string]bool{}
		for _, b := range bs {
			if b.TimestampMs > healMs {
				signed[b.Signer] = true
			}
		}
		if len(signed) == len(n.producers) {
			return
		}
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

func (n *network) headInfo(ctx context.Context, i int) (*chainrpc.GetHeadInfoResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, rpcCallTimeout)
	defer cancel()
	var r chainrpc.GetHeadInfoResponse
	if err := n.clients[i].Call(cctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// libs is every node's last irreversible block; ok is false if one did
// not answer.
func (n *network) libs(ctx context.Context) ([]uint64, bool) {
	out := make([]uint64, Nodes)
	for i := range Nodes {
		hi, err := n.headInfo(ctx, i)
		if err != nil {
			return nil, false
		}
		out[i] = hi.LastIrreversibleBlock
	}
	return out, true
}

func minOf(v []uint64) uint64 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}

func (n *network) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("e2e: timed out after %s waiting for %s", timeout, what)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fund sends each sender its funds from the dev key through node0 and
// waits for them on the chain.
func (n *network) fund(ctx context.Context) error {
	dev, err := keyfile.Read(filepath.Join(n.devnet, "dev.key"))
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	accounts := make([]keys.Signer, Nodes)
	for i := range accounts {
		accounts[i] = keys.Ed25519FromSeed(koinos.Sum256([]byte(fmt.Sprint("ember-e2e-sender-", i))).Multihash()[2:])
	}
	for i, a := range accounts {
		tx, err := txbuilder.Transfer(dev, n.token, a.Address(), senderFunding, txbuilder.Header{ChainID: n.chainID, Nonce: uint64(i + 1), RcLimit: 100_000_000})
		if err != nil {
			return fmt.Errorf("e2e: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var r chainrpc.SubmitTransactionResponse
		err = n.clients[0].Call(cctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r)
		cancel()
		if err != nil {
			return fmt.Errorf("e2e: fund sender %d: %w", i, err)
		}
		n.senders = append(n.senders, newSender(i, a, accounts[(i+1)%Nodes].Address(), n, n.token, n.chainID))
	}
	return n.waitFor(ctx, 30*time.Second, "the senders' funding on every node", func() bool {
		for i := range Nodes {
			cctx, cancel := context.WithTimeout(ctx, rpcCallTimeout)
			var r chainrpc.GetAccountNonceResponse
			err := n.clients[i].Call(cctx, "chain.get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: dev.Address().Bytes()}, &r)
			cancel()
			if err != nil {
				return false
			}
			if nonce, err := koinos.DecodeNonce(r.Nonce); err != nil || nonce < Nodes {
				return false
			}
		}
		return true
	})
}

// observe polls node i twice a block interval until ctx ends: its LIB
// must never go back, and each block at or below it is recorded in the
// ledger, which every node must agree with. Failures while the node is
// down or paused are expected and ignored.
func (n *network) observe(ctx context.Context, i int) {
	t := time.NewTicker(n.sc.BlockInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hi, err := n.headInfo(ctx, i)
		if err != nil {
			continue
		}
		lib := hi.LastIrreversibleBlock
		if err := n.ledger.ReportLIB(i, lib); err != nil {
			n.fail(err)
		}
		for from := n.ledger.RecordedUpTo(i) + 1; from <= lib; {
			ids, err := n.blockIDs(ctx, i, hi.HeadTopology.GetId(), from, min(lib-from+1, 500))
			if err != nil || len(ids) == 0 {
				break
			}
			for k, id := range ids {
				if err := n.ledger.Irreversible(i, from+uint64(k), id); err != nil {
					n.fail(err)
				}
			}
			from += uint64(len(ids))
		}
	}
}

// blocks reads up to count blocks from height from on node i's chain
// ending at head.
func (n *network) blocks(ctx context.Context, i int, head []byte, from, count uint64, bodies bool) ([]Block, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var r blockrpc.GetBlocksByHeightResponse
	if err := n.clients[i].Call(cctx, "block_store.get_blocks_by_height", &blockrpc.GetBlocksByHeightRequest{
		HeadBlockId: head, AncestorStartHeight: from, NumBlocks: uint32(count), ReturnBlock: bodies,
	}, &r); err != nil {
		return nil, err
	}
	out := make([]Block, 0, len(r.BlockItems))
	for k, it := range r.BlockItems {
		if it.BlockHeight != from+uint64(k) {
			return nil, fmt.Errorf("e2e: node%d: get_blocks_by_height from %d returned height %d at position %d", i, from, it.BlockHeight, k)
		}
		b := Block{Height: it.BlockHeight, ID: hexID(it.BlockId)}
		if bodies {
			hdr := it.Block.GetHeader()
			b.TimestampMs = hdr.GetTimestamp()
			b.Signer = base58.Encode(hdr.GetSigner()) // as koinos.Address.String
			for _, tx := range it.Block.GetTransactions() {
				b.Txs = append(b.Txs, hexID(tx.GetId()))
			}
		}
		out = append(out, b)
	}
	return out, nil
}

func (n *network) blockIDs(ctx context.Context, i int, head []byte, from, count uint64) ([]string, error) {
	bs, err := n.blocks(ctx, i, head, from, count, false)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(bs))
	for k, b := range bs {
		ids[k] = b.ID
	}
	return ids, nil
}

// chainUpTo reads node i's chain from height 1 to top.
func (n *network) chainUpTo(ctx context.Context, i int, head []byte, top uint64, bodies bool) ([]Block, error) {
	var out []Block
	for from := uint64(1); from <= top; {
		bs, err := n.blocks(ctx, i, head, from, min(top-from+1, 200), bodies)
		if err != nil {
			return nil, err
		}
		if len(bs) == 0 {
			return nil, fmt.Errorf("e2e: node%d has no block at height %d below %d", i, from, top)
		}
		out = append(out, bs...)
		from += uint64(len(bs))
	}
	return out, nil
}

// drain waits, the load stopped, until every sender's transfers are on
// the chain, resubmitting after stalls.
func (n *network) drain(ctx context.Context) {
	deadline := time.Now().Add(drainTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, s := range n.senders {
			s.step(ctx, false)
			done = done && s.drained()
		}
		if done {
			return
		}
		_ = sleep(ctx, n.sc.BlockInterval)
	}
	n.log.Warn("e2e: not every transfer reached the chain after the load stopped", "within", drainTimeout)
}

// judge reads every node's final chain and checks the invariants.
func (n *network) judge(ctx context.Context, headAtHeal, healMs uint64) {
	heads := make([]*chainrpc.GetHeadInfoResponse, Nodes)
	libs := make([]uint64, Nodes)
	for i := range Nodes {
		hi, err := n.headInfo(ctx, i)
		if err != nil {
			n.fail(fmt.Errorf("e2e: node%d's head at the end: %w", i, err))
			return
		}
		if err := n.ledger.ReportLIB(i, hi.LastIrreversibleBlock); err != nil {
			n.fail(err)
		}
		heads[i], libs[i] = hi, hi.LastIrreversibleBlock
	}
	recorded := n.ledger.Snapshot()
	chains := make([][]string, Nodes)
	var bodies []Block
	for i := range Nodes {
		bs, err := n.chainUpTo(ctx, i, heads[i].HeadTopology.GetId(), libs[i], i == 0)
		if err != nil {
			n.fail(err)
			return
		}
		if i == 0 {
			bodies = bs
		}
		for _, b := range bs {
			chains[i] = append(chains[i], b.ID)
		}
		n.fail(CheckKept(i, recorded, chains[i])...)
	}
	n.fail(CheckSameChains(chains)...)
	n.res.Irreversible = minOf(libs)
	var txs []TxRecord
	for _, s := range n.senders {
		txs = append(txs, s.records()...)
		r, l := s.counts()
		n.res.Resubmitted += r
		n.res.LostAfterAck += l
	}
	var errs []error
	n.res.Tx, errs = CheckTxs(bodies, txs)
	n.fail(errs...)
	n.res.Resume, errs = CheckResumed(bodies, healMs, ResumeParams{
		GenesisMs: n.genesisMs, SlotMs: n.slotMs, Producers: n.producers,
		ResumeSlots: n.sc.ResumeSlots, ProducersWithinMs: uint64(n.sc.ProducersWithin.Milliseconds()),
	})
	n.fail(errs...)
	n.fail(CheckFinality(headAtHeal, libs)...)
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

// killAll ends every node still running (a run that failed midway).
func (n *network) killAll() {
	for _, p := range n.procs {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}
