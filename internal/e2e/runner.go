package e2e

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/internal/verdict"
	"github.com/emberchain/ember/node/keyfile"
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
	FinalityAfterHeal  time.Duration      `json:"finality_after_heal_ns"`
	Byzantine          []ByzantineFigures `json:"byzantine,omitempty"`
	Violations         []string           `json:"violations,omitempty"`
	ViolatedInvariants []string           `json:"violated_invariants,omitempty"`
	KnownFailure       string             `json:"known_failure,omitempty"`
	Dir                string             `json:"dir,omitempty"` // kept after a failure
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
	for _, f := range r.Byzantine {
		b.WriteString(f.String())
	}
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
	// starts counts each node's process starts; byz is the byzantine
	// peer while it runs, byzRuns how many were started, byzWindows
	// what each saw (under mu).
	starts     [Nodes]int
	byz        *byzRun
	byzRuns    int
	byzWindows []ByzantineWindow
	t0         time.Time // the timeline's start

	mu  sync.Mutex
	res Result
	// seenInvariants orders ViolatedInvariants by first occurrence.
	seenInvariants map[string]bool
}

func (n *network) client(i int) *client.Client { return n.clients[i] }

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
	n.mu.Lock()
	windows := n.byzWindows
	n.mu.Unlock()
	for _, w := range windows {
		n.fail(CheckBanned(w)...)
		gap, errs := CheckNoStall(bodies, w, n.genesisMs, n.slotMs, n.sc.StallSlots)
		n.fail(errs...)
		n.res.Byzantine = append(n.res.Byzantine, byzantineFigures(w, gap))
	}
}
