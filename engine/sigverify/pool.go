package sigverify

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Errors of the Pool. They are the node's, not the transaction's: the
// transaction may be valid, and the caller may retry later.
var (
	// ErrOverloaded: every worker's queue is full.
	ErrOverloaded = errors.New("sigverify: overloaded: every verification queue is full, retry later")
	// ErrSourceLimit: the source already has its limit of transactions
	// queued or being verified.
	ErrSourceLimit = errors.New("sigverify: this source has too many transactions being verified, retry later")
	// ErrClosed: the pool was closed.
	ErrClosed = errors.New("sigverify: pool is closed")
)

// Defaults of PoolConfig.
const (
	DefaultQueueDepth       = 1024
	DefaultCacheSize        = 1 << 16
	DefaultSuspectThreshold = 8
	DefaultMaxSources       = 1 << 16
	// DefaultGatherWindow is a few requests' worth of HTTP and JSON work
	// at the rates where batches pay, and a small share of a 1 s slot.
	DefaultGatherWindow = 200 * time.Microsecond
)

// PoolConfig configures a Pool. Zero fields take the defaults stated;
// EnsureDefaults fills them in and Validate checks the result.
type PoolConfig struct {
	// Workers is the number of verification goroutines (default
	// runtime.GOMAXPROCS(0): one per core).
	Workers int
	// QueueDepth is the capacity of each of a worker's two queues (lanes):
	// submissions, one transaction an entry, and blocks, one chunk of up
	// to MaxBatch signatures an entry; default DefaultQueueDepth. A
	// submission that finds every queue full fails at once with
	// ErrOverloaded; a block waits for room.
	QueueDepth int
	// MaxBatch is the most signatures a worker takes from its queue to
	// verify together (default keys.MaxEd25519Batch).
	MaxBatch int
	// CacheSize is how many valid outcomes the verify-once cache keeps
	// (default DefaultCacheSize; negative: none, though identical
	// requests in flight are still verified once).
	CacheSize int
	// InvalidCacheSize is how many invalid outcomes it keeps, apart from
	// the valid ones (default CacheSize/4; negative: none).
	InvalidCacheSize int
	// KeyCacheSize is how many signer keys each worker keeps expanded
	// (default keys.DefaultKeyCacheSize; negative: none).
	KeyCacheSize int
	// MaxInFlightPerSource is how many of one source's transactions may
	// be queued or in verification at once (default: half of all
	// submission queue slots, Workers × QueueDepth / 2, and at least
	// 2 × Workers × MaxBatch). A suspect source gets an eighth of it.
	MaxInFlightPerSource int
	// SuspectThreshold is the invalid score at which a source becomes
	// suspect (default DefaultSuspectThreshold): each invalid transaction
	// adds one, each valid one halves it.
	SuspectThreshold int
	// MaxSources is how many sources are tracked before idle ones are
	// forgotten (default DefaultMaxSources).
	MaxSources int
	// GatherWindow is how long a worker under load waits for more
	// submissions when its batch is small (see gather; default
	// DefaultGatherWindow; negative: never).
	GatherWindow time.Duration
	// NewTimer makes the timers gather waits on: the engine reads no
	// clock of its own, the node passes real ones (nil: a worker never
	// waits, whatever GatherWindow says).
	NewTimer func(time.Duration) Timer
	// Limits are the stateless transaction limits (required).
	Limits *Limits

	// beforeVerify, when set (by tests), runs on a worker before each
	// batch.
	beforeVerify func()
}

// EnsureDefaults fills in zero fields.
func (c *PoolConfig) EnsureDefaults() {
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = keys.MaxEd25519Batch
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.InvalidCacheSize == 0 {
		c.InvalidCacheSize = max(c.CacheSize/4, 0)
		if c.CacheSize < 0 {
			c.InvalidCacheSize = -1
		}
	}
	if c.MaxInFlightPerSource == 0 {
		// Half of all submission slots: one busy source (an exchange, a
		// gateway, the bench) can keep every worker busy with room to
		// spare, and another source still finds the other half.
		c.MaxInFlightPerSource = max(2*c.Workers*c.MaxBatch, c.Workers*c.QueueDepth/2)
	}
	if c.GatherWindow == 0 {
		c.GatherWindow = DefaultGatherWindow
	}
	if c.SuspectThreshold == 0 {
		c.SuspectThreshold = DefaultSuspectThreshold
	}
	if c.MaxSources == 0 {
		c.MaxSources = DefaultMaxSources
	}
}

// Validate reports a configuration that cannot work.
func (c *PoolConfig) Validate() error {
	switch {
	case c.Limits == nil:
		return errors.New("sigverify: PoolConfig.Limits is required")
	case c.Workers < 1:
		return fmt.Errorf("sigverify: PoolConfig.Workers is %d, want at least 1", c.Workers)
	case c.QueueDepth < 1:
		return fmt.Errorf("sigverify: PoolConfig.QueueDepth is %d, want at least 1", c.QueueDepth)
	case c.MaxBatch < 1:
		return fmt.Errorf("sigverify: PoolConfig.MaxBatch is %d, want at least 1", c.MaxBatch)
	case c.MaxInFlightPerSource < 1:
		return fmt.Errorf("sigverify: PoolConfig.MaxInFlightPerSource is %d, want at least 1", c.MaxInFlightPerSource)
	case c.SuspectThreshold < 1:
		return fmt.Errorf("sigverify: PoolConfig.SuspectThreshold is %d, want at least 1", c.SuspectThreshold)
	case c.MaxSources < 1:
		return fmt.Errorf("sigverify: PoolConfig.MaxSources is %d, want at least 1", c.MaxSources)
	}
	return nil
}

// Timer is a resettable one-shot timer (a *time.Timer behind an
// interface, so the engine can be handed one).
type Timer interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// Pool is the signature verification stage: Workers goroutines, each with
// its own bounded queues, verifying transactions in batches, behind a
// verify-once cache and per-source admission limits. See doc.go. All
// methods are safe for concurrent use.
type Pool struct {
	cfg     PoolConfig
	lim     *Limits
	workers []*worker
	seq     atomic.Uint64
	cache   *txCache
	sources *sources
	quit    chan struct{}
	close   sync.Once
	wg      sync.WaitGroup

	rejectedPrecheck atomic.Uint64
	rejectedOverload atomic.Uint64
	rejectedSource   atomic.Uint64
	gaveUp           atomic.Uint64
}

// NewPool starts a pool. Close stops it.
func NewPool(cfg PoolConfig) (*Pool, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:     cfg,
		lim:     cfg.Limits,
		cache:   newTxCache(cfg.CacheSize, cfg.InvalidCacheSize),
		sources: newSources(cfg.MaxSources, cfg.MaxInFlightPerSource, cfg.SuspectThreshold),
		quit:    make(chan struct{}),
	}
	for i := 0; i < cfg.Workers; i++ {
		w := newWorker(p)
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go w.run()
	}
	return p, nil
}

// Config returns the configuration with defaults filled in.
func (p *Pool) Config() PoolConfig { return p.cfg }

// Close stops the workers. Requests waiting or arriving afterwards get
// ErrClosed. It returns once every worker has exited.
func (p *Pool) Close() {
	p.close.Do(func() { close(p.quit) })
	p.wg.Wait()
}

func (p *Pool) closed() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

// VerifyTx verifies a transaction from source (a peer id or client IP, for
// admission limits) and returns what Verify returns for it: the same
// *VerifiedTx contents, or the same error. It blocks until the
// transaction is verified, unless the answer is cached or the node is
// overloaded (ErrOverloaded, ErrSourceLimit: returned at once), the pool
// closes (ErrClosed) or ctx ends (ctx.Err()).
func (p *Pool) VerifyTx(ctx context.Context, tx *protocol.Transaction, source string) (*VerifiedTx, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if p.closed() {
		return nil, ErrClosed
	}
	src := p.sources.get(source)
	v, err := precheck(tx, p.lim)
	if err != nil {
		p.rejectedPrecheck.Add(1)
		src.strike()
		return nil, err
	}
	return p.resolve(ctx, v, src)
}

// VerifyTxs verifies several transactions from one source together and
// returns, per transaction, what VerifyTx returns for it. The signatures
// that need verifying go to the workers as one chunk per worker rather than
// one job at a time, so a group of submissions (a JSON-RPC batch) is
// verified in large batches even when nothing else is queued.
func (p *Pool) VerifyTxs(ctx context.Context, txs []*protocol.Transaction, source string) ([]*VerifiedTx, []error) {
	if ctx == nil {
		ctx = context.Background()
	}
	out, errs := make([]*VerifiedTx, len(txs)), make([]error, len(txs))
	if p.closed() {
		for i := range errs {
			errs[i] = ErrClosed
		}
		return out, errs
	}
	src := p.sources.get(source)
	type wait struct {
		i  int
		v  *VerifiedTx
		pd *pending
	}
	var waits []wait
	var jobs []*job
	for i, tx := range txs {
		v, err := precheck(tx, p.lim)
		if err != nil {
			p.rejectedPrecheck.Add(1)
			src.strike()
			errs[i] = err
			continue
		}
		key := cacheKeyOf(v.id, v.sigsDigest, v.tx.Signatures)
		o, found, pd, j := p.reserve(v, key, src)
		if found {
			out[i], errs[i] = v.withOutcome(o)
			continue
		}
		if j != nil {
			j.suspect = p.sources.isSuspect(src)
			if !p.sources.admit(src, j.suspect) {
				p.cache.abandon(key, pd, statusRetry)
				p.rejectedSource.Add(1)
				errs[i] = ErrSourceLimit
				continue
			}
			jobs = append(jobs, j)
		}
		waits = append(waits, wait{i, v, pd})
	}
	// Chunks of up to MaxBatch signatures. A group is not spread over the
	// workers: under load every worker has groups of its own, and a batch
	// of 100 costs a tenth less per signature than two of 50 (doc.go).
	for len(jobs) > 0 {
		n, sigs := 0, 0
		for n < len(jobs) && sigs+len(jobs[n].sigs) <= max(p.cfg.MaxBatch, len(jobs[0].sigs)) {
			sigs += len(jobs[n].sigs)
			n++
		}
		chunk := jobs[:n:n]
		jobs = jobs[n:]
		if !p.enqueueTx(chunk) {
			for _, j := range chunk {
				j.src.release()
				p.cache.abandon(j.key, j.pd, statusRetry)
				p.rejectedOverload.Add(1)
			}
		}
	}
	for _, w := range waits {
		o, st, err := p.await(ctx, w.pd)
		switch {
		case err != nil:
			errs[w.i] = err
		case st == statusDone:
			out[w.i], errs[w.i] = w.v.withOutcome(o)
		default: // abandoned (refused above, or by another owner): alone
			out[w.i], errs[w.i] = p.resolve(ctx, w.v, src)
		}
	}
	return out, errs
}

// resolve gets the outcome of a prechecked transaction and completes it.
func (p *Pool) resolve(ctx context.Context, v *VerifiedTx, src *source) (*VerifiedTx, error) {
	out, err := p.outcomeOf(ctx, v, src)
	if err != nil {
		return nil, err
	}
	return v.withOutcome(out)
}

// outcomeOf gets the outcome of a prechecked transaction: from the cache,
// by waiting on an identical verification in flight, or by queueing one.
// src is nil for a block's transactions, which use the block lanes and no
// source limit. The error is the pool's (overload, close, ctx); the
// transaction's own verdict is in the outcome.
func (p *Pool) outcomeOf(ctx context.Context, v *VerifiedTx, src *source) (outcome, error) {
	key := cacheKeyOf(v.id, v.sigsDigest, v.tx.Signatures)
	for attempt := 0; ; attempt++ {
		out, found, pd, err := p.submit(ctx, v, key, src)
		if err != nil || found {
			return out, err
		}
		out, st, err := p.await(ctx, pd)
		if err != nil || st == statusDone {
			return out, err
		}
		// statusRetry: the verification we waited on was abandoned before
		// it ran (its owner was refused, or nobody waited for it).
		if attempt == 3 {
			p.rejectedOverload.Add(1)
			return outcome{}, ErrOverloaded
		}
	}
}

// reserve looks key up. It returns a finished outcome (found), or a pending
// verification to await, which counts the caller as a waiter; when the
// caller created it, it also returns the job that the caller must queue or
// abandon.
func (p *Pool) reserve(v *VerifiedTx, key cacheKey, src *source) (outcome, bool, *pending, *job) {
	out, found, pd, owner := p.cache.lookup(key)
	if found {
		if src != nil {
			if out.err != nil {
				src.strike()
			} else {
				src.credit()
			}
		}
		return out, true, nil, nil
	}
	if !owner {
		return outcome{}, false, pd, nil
	}
	return outcome{}, false, pd, &job{key: key, pd: pd, digest: v.id, sigs: v.tx.Signatures, payer: v.payer, nonceAccount: v.NonceAccount(), src: src}
}

// submit is reserve followed, for the owner, by admission and queueing.
func (p *Pool) submit(ctx context.Context, v *VerifiedTx, key cacheKey, src *source) (outcome, bool, *pending, error) {
	out, found, pd, j := p.reserve(v, key, src)
	if found || j == nil {
		return out, found, pd, nil
	}
	if src == nil {
		if err := p.enqueueBlock(ctx, []*job{j}); err != nil {
			p.cache.abandon(key, pd, statusRetry)
			return outcome{}, false, nil, err
		}
		return outcome{}, false, pd, nil
	}
	j.suspect = p.sources.isSuspect(src)
	if !p.sources.admit(src, j.suspect) {
		p.cache.abandon(key, pd, statusRetry)
		p.rejectedSource.Add(1)
		return outcome{}, false, nil, ErrSourceLimit
	}
	if !p.enqueueTx([]*job{j}) {
		src.release()
		p.cache.abandon(key, pd, statusRetry)
		p.rejectedOverload.Add(1)
		return outcome{}, false, nil, ErrOverloaded
	}
	return outcome{}, false, pd, nil
}

// await waits for pd. Giving up (ctx, close) withdraws the caller as a
// waiter, so that a worker may skip the job if nobody else wants it.
func (p *Pool) await(ctx context.Context, pd *pending) (outcome, int, error) {
	select {
	case <-pd.done:
		if pd.status == statusShutdown {
			return outcome{}, 0, ErrClosed
		}
		return pd.out, pd.status, nil
	case <-ctx.Done():
		pd.waiters.Add(-1)
		p.gaveUp.Add(1)
		return outcome{}, 0, ctx.Err()
	case <-p.quit:
		pd.waiters.Add(-1)
		return outcome{}, 0, ErrClosed
	}
}

// withOutcome completes a prechecked transaction with its outcome.
func (v *VerifiedTx) withOutcome(out outcome) (*VerifiedTx, error) {
	if out.err != nil {
		return nil, out.err
	}
	v.signers = out.signers
	return v, nil
}

// enqueueTx puts a submission's job on worker seq % N's queue, or, when
// that is full, on the next one with room. It never blocks.
func (p *Pool) enqueueTx(js []*job) bool {
	n := uint64(len(p.workers))
	start := p.seq.Add(1)
	for i := uint64(0); i < n; i++ {
		select {
		case p.workers[(start+i)%n].txq <- js:
			return true
		default:
		}
	}
	return false
}

// enqueueBlock puts a chunk of a block's jobs on a worker's block lane,
// waiting for room when every lane is full: a block is admitted as a whole
// (its size is bounded by the chain's limits), and its transactions go
// ahead of submissions in every worker.
func (p *Pool) enqueueBlock(ctx context.Context, js []*job) error {
	n := uint64(len(p.workers))
	start := p.seq.Add(1)
	for i := uint64(0); i < n; i++ {
		select {
		case p.workers[(start+i)%n].blockq <- js:
			return nil
		default:
		}
	}
	select {
	case p.workers[start%n].blockq <- js:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.quit:
		return ErrClosed
	}
}

// VerifyBlock checks a block as VerifyBlock does, with the same result and
// the same error, skipping transactions verified before. It blocks until
// done, ctx ends or the pool closes.
//
// The transactions are split into one contiguous part per worker, each
// handled by its own goroutine in two phases. First every part prechecks
// its transactions and hashes them into the roots of its merkle chunks,
// while the caller checks the producer's signature (when the caller also
// took a part, the other parts waited for its signature check at every
// block: 2-core block throughput 1.70-1.76x instead of 1.76-1.90x); then
// the caller checks the transaction merkle root. Only if both hold do the
// parts queue their signatures, as chunks of about signatures/Workers (at
// most MaxBatch). So a block with a forged header costs its signature and
// the hashing the other parts did meanwhile, and a genuine header with
// transactions it does not commit to costs hashing alone: neither gets a
// transaction signature checked. Prechecking on one goroutine while the
// workers wait, or queueing the jobs one by one so that a worker woken by
// the first starts on a small batch, each wasted a good part of the second
// core (doc.go, "Tried and rejected").
func (p *Pool) VerifyBlock(ctx context.Context, b *protocol.Block, maxTxs int) (*VerifiedBlock, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if p.closed() {
		return nil, ErrClosed
	}
	if err := checkBlockForm(b, maxTxs); err != nil {
		return nil, err
	}
	n := len(b.Transactions)
	workers := len(p.workers)
	bv := &blockVerify{
		p: p, ctx: ctx, b: b,
		txs:        make([]*VerifiedTx, n),
		waits:      make([]*pending, n),
		chunkRoots: make([]koinos.Digest, (n+merkleChunkTxs-1)/merkleChunkTxs),
		gate:       make(chan struct{}),
	}
	nsigs := 0
	for _, tx := range b.Transactions {
		nsigs += len(tx.GetSignatures())
	}
	bv.chunkSigs = min(p.cfg.MaxBatch, max(1, (nsigs+workers-1)/workers))
	parts := min(workers, max(1, n/minBlockPart))
	bv.bounds = partBounds(n, parts)
	res := make([]partResult, parts)
	var prechecked, done sync.WaitGroup
	for k := 0; k < parts; k++ {
		prechecked.Add(1)
		done.Add(1)
		go func(k int) {
			defer done.Done()
			bv.precheckPart(k, &res[k])
			prechecked.Done()
			<-bv.gate
			if bv.proceed {
				bv.queuePart(k, &res[k])
			}
		}(k)
	}
	hdr, err := VerifyBlockHeader(b)
	if err != nil {
		bv.stop.Store(true) // the parts may stop prechecking
	}
	prechecked.Wait()
	if err == nil {
		err = bv.checkPrechecked(res)
	}
	bv.proceed = err == nil // closing the gate publishes it
	close(bv.gate)
	done.Wait()
	if err != nil {
		return nil, err
	}
	// The verdict is now the first transaction that is cached invalid or
	// fails its signatures.
	first, firstErr := n, error(nil)
	for _, r := range res {
		if r.err != nil {
			return bv.fail(r.err)
		}
		if r.firstErr != nil && r.first < first {
			first, firstErr = r.first, r.firstErr
		}
	}
	for i := 0; i < first; i++ {
		pd := bv.waits[i]
		if pd == nil {
			continue
		}
		out, st, err := p.await(ctx, pd)
		bv.waits[i] = nil
		if err == nil && st == statusRetry {
			out, err = p.outcomeOf(ctx, bv.txs[i], nil)
		}
		if err != nil {
			return bv.fail(err)
		}
		if out.err != nil {
			return bv.fail(wrapTxErr(i, out.err))
		}
		bv.txs[i].signers = out.signers
	}
	if firstErr != nil {
		return bv.fail(wrapTxErr(first, firstErr))
	}
	return &VerifiedBlock{Block: b, VerifiedBlockHeader: hdr, Txs: bv.txs}, nil
}

const (
	// minBlockPart is the fewest transactions worth a goroutine of their
	// own in VerifyBlock.
	minBlockPart = 16
	// merkleChunkTxs is how many transactions (twice as many leaves, a
	// power of two) make one merkle chunk: a whole subtree, hashed by the
	// part that holds it (koinos.MerkleRoot). Parts start at multiples
	// of it.
	merkleChunkTxs = 16
)

// partBounds splits n transactions into parts contiguous ranges, part k
// being [bounds[k], bounds[k+1]), each starting at a multiple of
// merkleChunkTxs. parts is at most n/minBlockPart (or 1), so no range is
// empty.
func partBounds(n, parts int) []int {
	bounds := make([]int, parts+1)
	for k := 1; k < parts; k++ {
		bounds[k] = k * n / parts / merkleChunkTxs * merkleChunkTxs
	}
	bounds[parts] = n
	return bounds
}

// blockVerify is one VerifyBlock in progress. The parts fill disjoint
// ranges of txs, waits and chunkRoots from several goroutines; the rest is
// read after they join.
type blockVerify struct {
	p          *Pool
	ctx        context.Context
	b          *protocol.Block
	bounds     []int
	txs        []*VerifiedTx // prechecked; signers set once verified
	waits      []*pending    // verifications to wait for
	chunkRoots []koinos.Digest
	chunkSigs  int
	stop       atomic.Bool   // the header failed: stop prechecking
	gate       chan struct{} // closed when the parts may go on to queueing
	proceed    bool          // whether they may; written before gate closes
}

type partResult struct {
	first    int   // index of the first transaction that failed precheck or is cached invalid
	firstErr error // its error, or nil
	err      error // the pool's error (ctx, close)
}

// precheckPart prechecks part k's transactions, stopping at the first
// failure (nothing after it matters), and hashes its merkle chunks.
func (bv *blockVerify) precheckPart(k int, r *partResult) {
	from, to := bv.bounds[k], bv.bounds[k+1]
	for i := from; i < to; i++ {
		if bv.stop.Load() {
			return
		}
		v, err := precheck(bv.b.Transactions[i], bv.p.lim)
		if err != nil {
			r.first, r.firstErr = i, err
			return
		}
		bv.txs[i] = v
	}
	var leaves [2 * merkleChunkTxs]koinos.Digest
	for c := from; c < to; c += merkleChunkTxs {
		l := leaves[:0]
		for _, v := range bv.txs[c:min(c+merkleChunkTxs, to)] {
			l = append(l, v.id, v.sigsDigest)
		}
		bv.chunkRoots[c/merkleChunkTxs] = koinos.MerkleRoot(l)
	}
}

// checkPrechecked returns the first precheck failure of the block, or a
// transaction merkle root that does not match.
func (bv *blockVerify) checkPrechecked(res []partResult) error {
	for _, r := range res { // parts in order: the first failure is the block's
		if r.firstErr != nil {
			return wrapTxErr(r.first, r.firstErr)
		}
	}
	return checkTransactionMerkleRoot(bv.b.Header, koinos.MerkleRoot(bv.chunkRoots))
}

// queuePart takes cached outcomes for part k's transactions and queues the
// rest in chunks. It stops at the first transaction known invalid: Verify
// would stop there, so nothing after it matters, but everything before it
// is queued.
func (bv *blockVerify) queuePart(k int, r *partResult) {
	var chunk []*job
	sigs := 0
	flush := func() {
		if len(chunk) == 0 || r.err != nil {
			return
		}
		if r.err = bv.p.enqueueBlock(bv.ctx, chunk); r.err != nil {
			for _, j := range chunk {
				bv.p.cache.abandon(j.key, j.pd, statusRetry)
			}
		}
		chunk, sigs = nil, 0
	}
	for i := bv.bounds[k]; i < bv.bounds[k+1] && r.err == nil; i++ {
		v := bv.txs[i]
		out, found, pd, j := bv.p.reserve(v, cacheKeyOf(v.id, v.sigsDigest, v.tx.Signatures), nil)
		if found && out.err != nil {
			r.first, r.firstErr = i, out.err
			break
		}
		if found {
			v.signers = out.signers
			continue
		}
		bv.waits[i] = pd
		if j != nil {
			chunk = append(chunk, j)
			if sigs += len(j.sigs); sigs >= bv.chunkSigs {
				flush()
			}
		}
	}
	flush()
}

// fail withdraws from every verification still awaited, so that workers
// may skip those nobody else wants, and returns err.
func (bv *blockVerify) fail(err error) (*VerifiedBlock, error) {
	for _, pd := range bv.waits {
		if pd != nil {
			pd.waiters.Add(-1)
		}
	}
	return nil, err
}

// Stats is a snapshot of the pool's counters (monotonic since NewPool) and
// gauges, for metrics at the edge: a Prometheus exporter turns the
// counters into rates.
type Stats struct {
	Workers       int
	QueueCapacity int   // per worker and lane
	TxQueue       []int // per worker: submissions queued
	BlockQueue    []int // per worker: block transactions queued

	Verified   uint64 // transactions verified by workers and valid
	Invalid    uint64 // transactions verified by workers and invalid
	Signatures uint64 // signatures checked by workers
	Skipped    uint64 // jobs dropped unverified because every requester had given up

	Batches    uint64    // batches run by workers
	BatchSizes [8]uint64 // batches by signatures: 1, 2–3, 4–7, 8–15, 16–31, 32–63, 64–127, 128+

	CacheHits        uint64 // answered from the cache, valid
	CacheInvalidHits uint64 // answered from the cache, invalid
	CacheMisses      uint64 // queued for verification
	CacheJoins       uint64 // waited on an identical verification in flight
	CachedValid      int    // valid outcomes held
	CachedInvalid    int    // invalid outcomes held

	RejectedPrecheck uint64 // submissions refused by the stateless checks
	RejectedOverload uint64 // ErrOverloaded
	RejectedSource   uint64 // ErrSourceLimit
	GaveUp           uint64 // requests whose ctx ended while waiting
	Sources          int    // sources tracked

	Ed25519BatchFails uint64 // batches with an invalid signature (checked again one by one)
	KeyCacheHits      uint64
	KeyCacheMisses    uint64
}

// Stats returns a snapshot.
func (p *Pool) Stats() Stats {
	st := Stats{
		Workers:          len(p.workers),
		QueueCapacity:    p.cfg.QueueDepth,
		RejectedPrecheck: p.rejectedPrecheck.Load(),
		RejectedOverload: p.rejectedOverload.Load(),
		RejectedSource:   p.rejectedSource.Load(),
		GaveUp:           p.gaveUp.Load(),
		Sources:          int(p.sources.n.Load()),
	}
	for _, w := range p.workers {
		st.TxQueue = append(st.TxQueue, len(w.txq))
		st.BlockQueue = append(st.BlockQueue, len(w.blockq))
		st.Verified += w.st.verified.Load()
		st.Invalid += w.st.invalid.Load()
		st.Signatures += w.st.signatures.Load()
		st.Skipped += w.st.skipped.Load()
		st.Batches += w.st.batches.Load()
		for i := range st.BatchSizes {
			st.BatchSizes[i] += w.st.batchSizes[i].Load()
		}
		st.Ed25519BatchFails += w.st.edBatchFails.Load()
		st.KeyCacheHits += w.st.keyHits.Load()
		st.KeyCacheMisses += w.st.keyMisses.Load()
	}
	cs := p.cache.stats()
	st.CacheHits, st.CacheInvalidHits, st.CacheMisses, st.CacheJoins = cs.hits, cs.invalidHits, cs.misses, cs.joins
	st.CachedValid, st.CachedInvalid = cs.valid, cs.invalid
	return st
}

// job is one transaction's signatures for a worker.
type job struct {
	key          cacheKey
	pd           *pending
	digest       koinos.Digest
	sigs         [][]byte
	payer        koinos.Address
	nonceAccount koinos.Address
	src          *source // nil for a block's transaction
	suspect      bool
}
