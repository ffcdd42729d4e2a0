package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	emberrpc "github.com/emberchain/ember/proto/ember/rpc"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
	"github.com/emberchain/ember/rpcgw/client"
)

// Options configure an rpc session: the accounts, the node and how the
// bench watches it. Zero fields take the defaults stated.
type Options struct {
	// Scheme signs the transactions (default secp256k1, what koilib
	// wallets use). With KeysDir it comes from the key files.
	Scheme keys.Scheme
	// Accounts is how many funded accounts send (default 1000).
	Accounts int
	// Seed derives the accounts' keys (default "ember-bench").
	Seed string
	// BlockInterval of the bench's own chain (default 1 s).
	BlockInterval time.Duration
	// Poll is how often the head is polled (default 10 ms).
	Poll time.Duration
	// Drain ends a run once no new transaction was included for this
	// long after the last submission (default max(5 s, 10 intervals)).
	Drain time.Duration
	// Warmup is left out of the steady-state window at its start
	// (default max(2 intervals, 10% of the submission time)).
	Warmup time.Duration
	// RCLimit is each transaction's rc_limit (default DefaultRCLimit).
	RCLimit uint64
	// Node is the node under load.
	Node NodeOptions
	// KeysDir holds funded key files for NodeExternal.
	KeysDir string
	// CeilingTime is how long each signature-ceiling figure is measured
	// before the run (default 1 s; negative: not measured).
	CeilingTime time.Duration
	// MaxTxs and MaxBatch size the bench's own node (its mempool must hold
	// the largest run, its gateway pass the largest batch).
	MaxTxs, MaxBatch int
	// Progress receives a progress bar (nil: none).
	Progress io.Writer
	// Commit names the code under test, reported as is.
	Commit string
	// CPUProfile, when set, receives a CPU profile of this process over
	// each run's measured window (with an in-process node: node and bench
	// together; the bench's goroutines carry the pprof label bench=submit
	// or bench=follow, so `go tool pprof -tagignore bench=.` shows the
	// node alone).
	CPUProfile io.Writer
	// Observe is when block bodies are read: ObserveLive (default) as
	// each block appears, so the node serves them while loaded, as it
	// would serve an explorer; ObserveDeferred after the last submission,
	// so the measured window holds no block serving. Inclusion times are
	// the same either way: they come from head polls.
	Observe string
	// NodeProfile, when set with a child node (NodeProcess with
	// Node.Pprof), receives the node's own CPU profile over the submission
	// time, fetched from its admin listener's /debug/pprof/profile. The
	// run must have a known submission time (a rate, or a duration cap).
	// With several nodes it is node 0's.
	NodeProfile io.Writer
	// Nodes is how many nodes the bench starts (default 1). Above 1 they
	// form a network: one genesis with Nodes producers (NetProducerKeys),
	// each node producing in its slots, on loopback with full-mesh static
	// peers. Worker w sends to node w mod Nodes; the follower reads node 0.
	Nodes int
	// Workload is what the transfers move: WorkloadNative (default) or
	// WorkloadWasmToken, the token contract Contract (its wasm bytecode)
	// deployed and minted to every account by NewSession (deployWasmToken).
	Workload string
	Contract []byte
}

// Observation modes (Options.Observe).
const (
	ObserveLive     = "live"
	ObserveDeferred = "deferred"
)

// Defaults of Options.
const (
	DefaultAccounts = 1000
	DefaultSeed     = "ember-bench"
	DefaultPoll     = 10 * time.Millisecond
)

func (o *Options) ensureDefaults() {
	if o.Scheme == keys.SchemeUnknown && o.KeysDir == "" {
		o.Scheme = keys.SchemeSecp256k1
	}
	if o.Accounts == 0 {
		o.Accounts = DefaultAccounts
	}
	if o.Seed == "" {
		o.Seed = DefaultSeed
	}
	if o.BlockInterval == 0 {
		o.BlockInterval = time.Second
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	if o.Workload == "" {
		o.Workload = WorkloadNative
	}
	// A WASM transfer's rc_limit is measured once the token is deployed.
	if o.RCLimit == 0 && o.Workload == WorkloadNative {
		o.RCLimit = DefaultRCLimit
	}
	if o.CeilingTime == 0 {
		o.CeilingTime = time.Second
	}
	if o.MaxTxs == 0 {
		o.MaxTxs = 200_000
	}
	if o.Observe == "" {
		o.Observe = ObserveLive
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.Node.Mode == "" {
		o.Node.Mode = NodeProcess
		if o.Node.URL != "" {
			o.Node.Mode = NodeExternal
		}
	}
}

func (o *Options) validate() error {
	if err := checkWorkload(o.Workload, o.Contract); err != nil {
		return err
	}
	switch {
	case o.Accounts < 1 || o.Accounts > MaxAccounts:
		return fmt.Errorf("bench: --accounts must be between 1 and %d, got %d", MaxAccounts, o.Accounts)
	case o.Observe != ObserveLive && o.Observe != ObserveDeferred:
		return fmt.Errorf("bench: --observe must be live or deferred, got %q", o.Observe)
	case o.Poll < time.Millisecond:
		return fmt.Errorf("bench: --poll must be at least 1ms, got %v", o.Poll)
	case o.Drain < 0 || o.Warmup < 0:
		return errors.New("bench: --drain and --warmup must not be negative")
	case o.Node.Mode == NodeExternal && (o.Node.URL == "" || o.KeysDir == ""):
		return errors.New("bench: a run against an existing node needs both --rpc URL and --keys DIR (funded key files)")
	case o.Node.Mode != NodeExternal && o.KeysDir != "":
		return errors.New("bench: --keys needs --rpc: the bench's own node funds accounts derived from --seed")
	case o.Node.Mode != NodeExternal && o.Node.Mode != NodeProcess && o.Node.Mode != NodeInProcess:
		return fmt.Errorf("bench: unknown node mode %q (want process, in-process or external)", o.Node.Mode)
	case o.Nodes < 1 || o.Nodes > MaxNodes:
		return fmt.Errorf("bench: --nodes must be between 1 and %d, got %d", MaxNodes, o.Nodes)
	case o.Nodes > 1 && o.Node.Mode == NodeExternal:
		return errors.New("bench: a network of the bench's own nodes cannot be loaded through --rpc")
	}
	return nil
}

// Session is a node (or a network of nodes) under load and the accounts
// that load it. Runs on one session share the nodes and continue each
// account's nonces.
type Session struct {
	opts    Options
	keys    []keys.Signer
	tgts    []*target // one per node; nil for NodeExternal
	urls    []string  // JSON-RPC endpoint per node
	conns   []*conn   // one per node: worker w sends to conns[w mod len]
	url     string    // urls[0]: the node the follower reads
	conn    *conn     // conns[0]
	client  *client.Client
	info    chainInfo
	next    []uint64 // next nonce per account
	ceiling *VerifyResult
	machine Machine
	netNote string // how the network formed, when not as planned
	// workload is what the runs' transfers move (deployWasmToken fills it
	// for the WASM token).
	workload WorkloadInfo
	maxOps   uint32 // the chain's operations per transaction
	// onRun, when set, is told each run's submitter and follower as the
	// clock starts (the soak's sampler counts their progress).
	onRun func(*submitter, *follower)
}

// NewSession prepares the accounts, measures the signature ceiling (before
// any node runs, so the node does not compete with it), then starts or
// connects to the node and reads the chain.
func NewSession(ctx context.Context, o Options) (*Session, error) {
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Session{opts: o, machine: thisMachine(), workload: WorkloadInfo{Name: o.Workload}}
	s.machine.Secp256k1 = keys.Secp256k1Implementation()
	var err error
	if o.Node.Mode == NodeExternal {
		if s.keys, s.opts.Scheme, err = ReadKeys(o.KeysDir); err != nil {
			return nil, err
		}
		s.opts.Accounts = len(s.keys)
	} else if s.keys, err = DeriveKeys(o.Scheme, o.Seed, o.Accounts); err != nil {
		return nil, err
	}
	if o.CeilingTime > 0 {
		s.ceiling, err = RunVerify(ctx, VerifyOptions{
			Schemes: []keys.Scheme{s.opts.Scheme}, Duration: o.CeilingTime, Signers: min(len(s.keys), 1000),
			Threads: []int{runtime.GOMAXPROCS(0)}, Paths: []string{PathSingle, PathBatch},
		})
		if err != nil {
			return nil, err
		}
	}
	s.url = o.Node.URL
	if o.Node.Mode != NodeExternal {
		lim := nodeLimits{maxTxs: max(o.MaxTxs, 1), accounts: len(s.keys), batch: max(o.MaxBatch, 1), responseBytes: 1 << 30}
		if s.tgts, s.netNote, err = startNodes(ctx, s.opts, s.keys, lim); err != nil {
			return nil, err
		}
		if s.netNote != "" && o.Progress != nil {
			fmt.Fprintln(o.Progress, "bench: "+s.netNote)
		}
		for _, t := range s.tgts {
			s.urls = append(s.urls, t.rpcURL())
		}
		s.url = s.urls[0]
	} else {
		s.urls = []string{s.url}
	}
	if err := s.connect(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if o.Workload == WorkloadWasmToken {
		if err := s.deployWasmToken(ctx, s.maxOps); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.workload.RCLimit = s.opts.RCLimit
	return s, nil
}

// connect reads the chain id, token and block interval, and every
// account's next nonce.
func (s *Session) connect(ctx context.Context) error {
	var err error
	if s.client, err = client.New(s.url, client.WithTimeout(30*time.Second)); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	for _, u := range s.urls {
		c, err := newConn(u, 4096)
		if err != nil {
			return err
		}
		s.conns = append(s.conns, c)
	}
	s.conn = s.conns[0]
	var ci emberrpc.GetChainInfoResponse
	if err := s.client.Call(ctx, "ember.get_chain_info", &emberrpc.GetChainInfoRequest{}, &ci); err != nil {
		return fmt.Errorf("bench: ember.get_chain_info at %s (the bench needs an Ember node): %w", s.url, err)
	}
	p := ci.GetParameters()
	token, err := koinos.ParseAddress(p.GetToken().GetContractId())
	if err != nil {
		return fmt.Errorf("bench: the node reports no token contract: %w", err)
	}
	s.info = chainInfo{chainID: ci.GetChainId(), token: token, intervalMs: int64(p.GetBlockIntervalMs())}
	s.maxOps = p.GetLimits().GetMaxOperationsPerTransaction()
	if s.info.intervalMs <= 0 {
		return errors.New("bench: the node reports no block interval")
	}
	return s.syncNonces(ctx)
}

// syncNonces reads each account's next nonce: one past the last used on
// the chain, or past the last pending in the mempool.
func (s *Session) syncNonces(ctx context.Context) error {
	s.next = make([]uint64, len(s.keys))
	const chunk = 50
	for from := 0; from < len(s.keys); from += chunk {
		to := min(from+chunk, len(s.keys))
		calls := make([]client.BatchCall, 0, 2*(to-from))
		for _, k := range s.keys[from:to] {
			a := k.Address().Bytes()
			calls = append(calls,
				client.BatchCall{Method: "chain.get_account_nonce", Params: &chainrpc.GetAccountNonceRequest{Account: a}, Result: &chainrpc.GetAccountNonceResponse{}},
				client.BatchCall{Method: "mempool.get_pending_nonce", Params: &mempoolrpc.GetPendingNonceRequest{Payee: a}, Result: &mempoolrpc.GetPendingNonceResponse{}})
		}
		if err := s.client.CallBatch(ctx, calls); err != nil {
			return fmt.Errorf("bench: reading nonces: %w", err)
		}
		for k := 0; k < to-from; k++ {
			if err := calls[2*k].Err; err != nil {
				return fmt.Errorf("bench: chain.get_account_nonce %s: %w", s.keys[from+k].Address(), err)
			}
			last, err := koinos.DecodeNonce(calls[2*k].Result.(*chainrpc.GetAccountNonceResponse).GetNonce())
			if err != nil {
				return fmt.Errorf("bench: nonce of %s: %w", s.keys[from+k].Address(), err)
			}
			// The pending nonce is optional (Koinos answers it only with
			// pending transactions); use it when there is one.
			if calls[2*k+1].Err == nil {
				if pb := calls[2*k+1].Result.(*mempoolrpc.GetPendingNonceResponse).GetNonce(); len(pb) > 0 {
					if pn, err := koinos.DecodeNonce(pb); err == nil {
						last = max(last, pn)
					}
				}
			}
			s.next[from+k] = last + 1
		}
	}
	return nil
}

// Close stops the bench's own nodes.
func (s *Session) Close() error {
	for _, c := range s.conns {
		c.close()
	}
	s.conns, s.conn = nil, nil
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	err := closeTargets(s.tgts)
	s.tgts = nil
	return err
}

// closeTargets stops nodes together (each may take a graceful shutdown's
// time) and returns their errors.
func closeTargets(ts []*target) error {
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		if t == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.close()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// URLs are the JSON-RPC endpoints of the session's nodes.
func (s *Session) URLs() []string { return append([]string(nil), s.urls...) }

// Ceiling is the signature ceiling measured at the start, or nil.
func (s *Session) Ceiling() *VerifyResult { return s.ceiling }

// IntervalMs is the chain's block interval.
func (s *Session) IntervalMs() int64 { return s.info.intervalMs }

// nodeBlock returns the producing node's record of the block at height h
// (from its log), whichever node produced it.
func (s *Session) nodeBlock(h uint64) (nodeBlock, bool) {
	for _, t := range s.tgts {
		if b, ok := t.producedBlock(h); ok {
			return b, true
		}
	}
	return nodeBlock{}, false
}

// Run signs spec.Txs transfers, then submits them as spec says and
// follows the chain until every admitted one is in a block or the drain
// time passes without progress, and reports.
func (s *Session) Run(ctx context.Context, spec LoadSpec, label string) (*Report, error) {
	spec.ensureDefaults()
	if err := spec.validate(len(s.keys)); err != nil {
		return nil, err
	}
	if spec.Txs > s.opts.MaxTxs && len(s.tgts) > 0 && !spec.SignLive {
		// The mempool was sized for MaxTxs; a bigger run could be refused
		// for a full pool, which is the bench's fault, not the node's.
		return nil, fmt.Errorf("bench: this run has %d transactions but the node was started for at most %d", spec.Txs, s.opts.MaxTxs)
	}
	pr := newProgress(s.opts.Progress, label)
	var (
		p         *plan
		book      *liveBook
		fol       *follower
		signSecs  float64
		stopSigns context.CancelFunc = func() {}
		ahead                        = spec.SignAhead
	)
	if spec.SignLive {
		// Signers run until the last transaction is handed to a worker or
		// the submission ends; the clock starts once they are ahead.
		if ahead == 0 {
			ahead = DefaultSignAhead(spec.Rate)
		}
		filled := min(spec.Txs, ahead)
		book = newLiveBook(spec.Concurrency, liveQueueLen(filled, len(s.keys), spec.Concurrency, spec.Batch), spec.Rate)
		var sctx context.Context
		sctx, stopSigns = context.WithCancel(ctx)
		sg := liveSigning{keys: s.keys, next: s.next, n: spec.Txs, ci: s.info, rcLimit: s.opts.RCLimit, ahead: ahead, signers: liveSigners()}
		go pprof.Do(sctx, pprof.Labels("bench", "sign"), func(sctx context.Context) { book.signLoop(sctx, sg) })
		defer stopSigns()
		if err := book.waitFilled(ctx, filled); err != nil {
			return nil, err
		}
		fol = newLiveFollower(s.conn, book, s.opts.Poll)
	} else {
		var signed atomic.Int64
		pr.startSigning(spec.Txs, &signed)
		signStart := time.Now()
		var err error
		p, err = buildPlan(ctx, s.keys, s.next, spec.Txs, s.info, s.opts.RCLimit, &signed)
		pr.stop()
		if err != nil {
			return nil, err
		}
		signSecs = time.Since(signStart).Seconds()
		fol = newFollower(s.conn, p, time.Time{}, s.opts.Poll)
	}
	fol.deferBodies = s.opts.Observe == ObserveDeferred
	if err := fol.start(); err != nil {
		return nil, err
	}
	machine := s.machine
	machine.LoadBefore = loadAverage()
	node0, nodeOK := statsOf(s.tgts)
	metrics0 := s.metrics()
	self0, _ := readProc("self")
	t0 := time.Now()
	fol.t0 = t0
	var sub *submitter
	if book != nil {
		book.t0Wall = float64(t0.UnixNano()) / 1e6
		sub = newLiveSubmitter(s.conns, book, spec, t0)
	} else {
		sub = newSubmitter(s.conns, p, spec, t0)
	}
	sub.checkReverts = s.workload.Name == WorkloadWasmToken
	var err error

	if s.opts.CPUProfile != nil {
		if err := pprof.StartCPUProfile(s.opts.CPUProfile); err != nil {
			return nil, fmt.Errorf("bench: CPU profile: %w", err)
		}
	}
	var nodeProf chan error
	if s.opts.NodeProfile != nil {
		if nodeProf, err = s.startNodeProfile(ctx, spec); err != nil {
			return nil, err
		}
	}
	fctx, stopFollower := context.WithCancel(ctx)
	folDone := make(chan struct{})
	go pprof.Do(fctx, pprof.Labels("bench", "follow"), func(fctx context.Context) {
		defer close(folDone)
		fol.run(fctx)
	})
	if s.onRun != nil {
		s.onRun(sub, fol)
	}
	pr.startRun(spec.Txs, sub, fol)
	pprof.Do(ctx, pprof.Labels("bench", "submit"), sub.run)
	stopSigns()
	fol.catchUp.Store(true)
	runErr := s.drain(ctx, sub, fol, folDone)
	end := time.Now()
	node1, node1OK := statsOf(s.tgts)
	metrics1 := s.metrics()
	self1, _ := readProc("self")
	if runErr == nil {
		// Until the blocks of the run are irreversible on the followed
		// node (at once for one producer; two blocks later for four), so
		// every one has its irreversibility time.
		runErr = s.waitIrreversible(ctx, fol, folDone)
	}
	stopFollower()
	<-folDone
	if book != nil {
		// The signers stop at the last submission: a failure is theirs,
		// their being stopped is not.
		<-book.signEnded
		if err := book.signError(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if s.opts.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	pr.stop()
	if nodeProf != nil {
		if err := <-nodeProf; err != nil && runErr == nil {
			runErr = err
		}
	}
	machine.LoadAfter = loadAverage()
	if runErr == nil && fol.err != nil {
		runErr = fol.err
	}
	if runErr == nil {
		runErr = ctx.Err()
	}
	if runErr != nil {
		return nil, runErr
	}
	// Refused or lost transactions leave gaps: ask the chain where each
	// account stands before the next run.
	if err := s.syncNonces(ctx); err != nil {
		return nil, err
	}

	var fig txFigures
	if book != nil {
		fol.foldIrreversible(true)
		fig = figuresOfLive(book.finish(), book.requestBytes.Load())
	} else {
		fig = presignedFigures(p, sub, fol, spec.Rate > 0, float64(t0.UnixNano())/1e6)
	}
	r := s.report(fig, s.keys[0].Scheme(), len(s.keys), sub, fol, spec, t0)
	r.Label = label
	r.Machine = machine
	r.Load.SignSeconds = round3(signSecs)
	if book != nil {
		r.Load.SignLive, r.Load.SignAhead = true, ahead
		r.Load.SignBusyS = round3(float64(book.signBusyNs.Load()) / 1e9)
	}
	r.NodeCPUSeconds, r.NodeRSSMB = -1, -1
	if nodeOK && node1OK {
		// Over every node: CPU summed, the largest peak.
		var cpu, peak, endRSS float64
		for i := range node1 {
			u := NodeUsage{Node: i, URL: s.urls[i], CPUSeconds: round3(node1[i].CPUSeconds - node0[i].CPUSeconds), PeakRSSMB: node1[i].PeakRSSMB, EndRSSMB: node1[i].RSSMB}
			r.Node.PerNode = append(r.Node.PerNode, u)
			cpu += u.CPUSeconds
			peak, endRSS = max(peak, u.PeakRSSMB), max(endRSS, u.EndRSSMB)
		}
		r.NodeCPUSeconds, r.NodeRSSMB = round3(cpu), peak
		r.Node.PeakRSSMB, r.Node.EndRSSMB = peak, endRSS
		if len(node1) == 1 {
			r.Node.PerNode = nil
		}
		if r.WindowFull.Seconds > 0 {
			r.Node.CPUPercent = round1(100 * r.NodeCPUSeconds / end.Sub(t0).Seconds())
		}
	}
	if len(s.tgts) > 1 {
		r.Propagation = propagation(s.tgts, fol, t0, end, s.info.intervalMs)
		r.Propagation.Note = s.netNote
		for _, t := range s.tgts {
			n, _ := t.peerCount()
			r.Propagation.Handshakes = append(r.Propagation.Handshakes, n)
		}
	}
	r.Node.BenchCPUS = round3(self1.CPUSeconds - self0.CPUSeconds)
	if secs := end.Sub(t0).Seconds(); secs > 0 {
		r.Node.BenchCPUPercent = round1(100 * r.Node.BenchCPUS / secs)
	}
	if metrics0 != nil && metrics1 != nil {
		r.Node.Metrics = metricsDelta(metrics0, metrics1)
		if sigs := r.Node.Metrics["ember_sigverify_signatures_total"]; sigs > 0 && r.Included > 0 {
			r.Node.SigsPerTx = round3(sigs / float64(r.Included))
		}
	}
	return r, nil
}

// statsOf reads every node's /proc figures; ok is false unless all are
// child processes.
func statsOf(ts []*target) ([]procStats, bool) {
	if len(ts) == 0 {
		return nil, false
	}
	out := make([]procStats, len(ts))
	for i, t := range ts {
		st, ok := t.stats()
		if !ok {
			return nil, false
		}
		out[i] = st
	}
	return out, true
}

// waitIrreversible keeps the follower polling after the drain until the
// followed node's last irreversible block reaches the head it had then,
// for at most 10 block intervals (at least 3 s).
func (s *Session) waitIrreversible(ctx context.Context, fol *follower, folDone <-chan struct{}) error {
	target := fol.headHeight.Load()
	deadline := time.Now().Add(max(3*time.Second, 10*time.Duration(s.info.intervalMs)*time.Millisecond))
	for fol.libHeight.Load() < target && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-folDone:
			return fol.err
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// drain waits after the last submission until every admitted transaction
// is in a block, or no new one was included for the drain time.
func (s *Session) drain(ctx context.Context, sub *submitter, fol *follower, folDone <-chan struct{}) error {
	d := s.opts.Drain
	if d == 0 {
		d = max(5*time.Second, 10*time.Duration(s.info.intervalMs)*time.Millisecond)
	}
	last, lastChange := fol.included.Load(), time.Now()
	lastScan := time.Time{}
	for {
		inc := fol.included.Load()
		if inc != last {
			last, lastChange = inc, time.Now()
		}
		// Cheap test first; the exact one scans, so at most twice a second.
		if inc >= sub.acked.Load() && time.Since(lastScan) > 500*time.Millisecond {
			lastScan = time.Now()
			if sub.allAckedIncluded(fol) {
				return nil
			}
		}
		if time.Since(lastChange) > d {
			return nil
		}
		for _, t := range s.tgts {
			if err := t.alive(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-folDone:
			return fol.err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// allAckedIncluded reports whether every admitted transaction is in a
// block. The follower writes blockOf concurrently; a stale read only
// delays the answer by one scan, since entries only go from -1 to an
// index (a reorganization is the exception, and is re-checked next scan).
func (sub *submitter) allAckedIncluded(fol *follower) bool {
	if sub.live != nil {
		return sub.live.pendingAcked() == 0
	}
	for i, st := range sub.status {
		if st == stAcked && atomic.LoadInt32(&fol.blockOf[i]) < 0 {
			return false
		}
	}
	return true
}

// startNodeProfile asks the child node for a CPU profile covering the
// submission time; the channel reports when it is written.
func (s *Session) startNodeProfile(ctx context.Context, spec LoadSpec) (chan error, error) {
	if len(s.tgts) == 0 || s.tgts[0].admin() == "" {
		return nil, errors.New("bench: a node profile needs the bench's own node as a child process (--node process) with --node-pprof")
	}
	secs := spec.Duration.Seconds()
	if spec.Rate > 0 {
		secs = float64(spec.Txs) / spec.Rate
	}
	if secs < 1 {
		return nil, errors.New("bench: a node profile needs a submission time of at least 1s: give --duration (with or without --rate)")
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.tgts[0].admin(), int(math.Ceil(secs)))
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- fmt.Errorf("bench: node profile: %w", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fmt.Errorf("bench: node profile: %w", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("bench: node profile: %s answered %s (is admin.pprof on?)", url, resp.Status)
			return
		}
		if _, err := io.Copy(s.opts.NodeProfile, resp.Body); err != nil {
			done <- fmt.Errorf("bench: node profile: %w", err)
			return
		}
		done <- nil
	}()
	return done, nil
}

// metrics scrapes the child nodes' counters, summed over the nodes, or
// returns nil.
func (s *Session) metrics() map[string]float64 {
	if len(s.tgts) == 0 {
		return nil
	}
	sum := map[string]float64{}
	for _, t := range s.tgts {
		if t.admin() == "" {
			return nil
		}
		m, err := scrapeMetrics(t.admin() + "/metrics")
		if err != nil {
			return nil
		}
		for k, v := range m {
			sum[k] += v
		}
	}
	return sum
}
