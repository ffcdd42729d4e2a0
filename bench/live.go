package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
)

// maxRunTxs is the most transactions in one run: their indexes are int32
// (JSON-RPC ids, per-worker queues). At 8,000 tx/s that is three days.
const maxRunTxs = 1<<31 - 1

// DefaultSignAhead is how many transactions a live run keeps signed ahead
// of the sender: two seconds at rate (closed loop: 4,096), so a hiccup of
// the signers (the node taking both cores for a block) does not make the
// sender late, and at most 16,384 plus a second of the rate, so memory
// stays a few megabytes.
func DefaultSignAhead(rate float64) int {
	return max(4096, min(16384, int(2*rate))+int(rate))
}

// SignLiveAbove is the run size above which `ember bench rpc` signs live
// unless told (--sign-live=false): a million pre-signed transactions are
// about a gigabyte of request bodies, ids and per-transaction arrays, and
// a minute of both cores before the clock starts.
const SignLiveAbove = 1_000_000

// NeedsSignLive reports whether spec is too large to pre-sign (more than
// SignLiveAbove transactions, counting rate × duration).
func NeedsSignLive(spec LoadSpec) bool {
	n := spec.Txs
	if spec.Rate > 0 && spec.Duration > 0 && n == 0 {
		n = int(spec.Rate * spec.Duration.Seconds())
	}
	return n > SignLiveAbove
}

// LiveMempoolTxs sizes the bench's own node for a live run: the mempool
// must hold what is admitted and not yet in a block, not the whole run;
// a minute of the rate (200,000 at least, the pre-signed default) is far
// more than a node keeping up ever holds, and a node falling behind
// should meet its cap and answer busy, as it would in service.
func LiveMempoolTxs(spec LoadSpec) int {
	n := max(200_000, int(60*spec.Rate))
	if spec.Txs > 0 {
		n = min(n, spec.Txs)
	}
	return n
}

// liveTx is one transaction of a live run, from its signing until it is
// done: answered and, when it can be, seen in a block.
type liveTx struct {
	idx      int32
	acct     int32
	id       koinos.Digest
	body     []byte // dropped once answered
	submitNs int64  // since t0: first send
	status   uint8  // stNotSent until answered
	included bool
}

// liveBook keeps a live run's transactions while they are in flight, and
// its figures as counts, extremes, per-bin counts and fixed-size samples,
// so its memory depends on the rate and the inclusion latency, not on the
// run's length.
//
// Signers (a pool, signLoop) sign transactions in chunks of consecutive
// indexes, at most ahead of them signed and not yet handed to a worker; a
// dispatcher hands them to their workers' queues in index order (each
// account's nonces in order, as in a pre-signed run). A transaction is in
// txs from dispatch to its answer, in byID from its send to its block.
type liveBook struct {
	queues []chan int32 // per worker

	mu   sync.Mutex
	txs  map[int32]*liveTx
	byID map[koinos.Digest]*liveTx
	fig  liveFigures

	rate   float64 // for due times (0: closed loop)
	t0Wall float64 // Unix ms of t0, for block timestamps

	dispatched   atomic.Int64
	signBusyNs   atomic.Int64 // time the signers spent signing
	requestBytes atomic.Int64
	signErr      error         // first signing failure (under mu)
	signEnded    chan struct{} // closed when signLoop returns
}

// liveFigures are a live run's figures so far (under liveBook.mu).
type liveFigures struct {
	sent, acked, included, rejected, transport, skipped, lost int
	firstSubmit, lastSubmit, lastAck, lastSeen                int64
	inclusion, blockTime, ack, lag, fromDue                   reservoir
	admitBins                                                 []int // acks per admitBin since the first submission
}

// liveSampleSize is how many values each latency sample keeps: a uniform
// sample of 100,000 puts the nearest-rank p99 within ±0.07 percentile
// points of the whole run's (binomial standard error at p = 0.99), for
// 800 kB per distribution.
const liveSampleSize = 100_000

func newLiveBook(workers, queueLen int, rate float64) *liveBook {
	b := &liveBook{queues: make([]chan int32, workers), txs: map[int32]*liveTx{}, byID: map[koinos.Digest]*liveTx{}, rate: rate, signEnded: make(chan struct{})}
	for w := range b.queues {
		b.queues[w] = make(chan int32, queueLen)
	}
	for k, r := range []*reservoir{&b.fig.inclusion, &b.fig.blockTime, &b.fig.ack, &b.fig.lag, &b.fig.fromDue} {
		*r = newReservoir(liveSampleSize, uint64(k))
	}
	b.fig.firstSubmit = math.MaxInt64
	return b
}

// liveSigning is what the signers need.
type liveSigning struct {
	keys    []keys.Signer
	next    []uint64 // each account's first nonce of the run
	n       int      // transactions in the run
	ci      chainInfo
	rcLimit uint64
	ahead   int // signed, not yet dispatched
	signers int
}

// liveQueueLen is the capacity of each worker's queue: the most of the
// run's first filled transactions that any one queue is handed, plus
// batch. Transaction i goes to the queue of its account (i mod accounts,
// mod workers), so when the accounts are not a multiple of the workers
// the queues' shares differ; and waitFilled waits for those first
// transactions before the clock starts, when no worker drains a queue.
// A capacity of filled/workers + batch left the largest share's queue
// full short of it and the run waiting for good (a soak at 12,890 tx/s:
// 29,274 ahead, 1,000 accounts, 32 workers, the first queue's share 937
// against a capacity of 934).
func liveQueueLen(filled, accounts, workers, batch int) int {
	if accounts <= 0 || workers <= 0 {
		return batch
	}
	// Account a gets the transactions a, a+accounts, ... below filled.
	share := make([]int, workers)
	for a := 0; a < min(accounts, filled); a++ {
		share[a%workers] += (filled-a-1)/accounts + 1
	}
	return slices.Max(share) + batch
}

// liveChunk is how many consecutive transactions a signer signs at once.
const liveChunk = 64

type signedChunk struct {
	k   int // chunk number: transactions k×liveChunk onwards
	txs []*liveTx
}

// signLoop signs the run's transactions and hands them to the workers'
// queues in index order, until all are handed or ctx ends; then it closes
// the queues and signEnded. A signing failure is kept for signError.
func (b *liveBook) signLoop(ctx context.Context, sg liveSigning) {
	defer close(b.signEnded)
	defer func() {
		for _, q := range b.queues {
			close(q)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := (sg.n + liveChunk - 1) / liveChunk
	slots := make(chan struct{}, max(sg.ahead/liveChunk, 2*sg.signers))
	signed := make(chan signedChunk, cap(slots))
	var nextChunk atomic.Int64
	var wg sync.WaitGroup
	sink := sinkAddress()
	for range sg.signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				k := int(nextChunk.Add(1) - 1)
				if k >= chunks {
					return
				}
				start := time.Now()
				ch := signedChunk{k: k}
				for i := k * liveChunk; i < min(sg.n, (k+1)*liveChunk); i++ {
					a := i % len(sg.keys)
					body, id, err := signTransfer(sg.keys, sink, int32(i), sg.next[a]+uint64(i/len(sg.keys)), sg.ci, sg.rcLimit)
					if err != nil {
						b.mu.Lock()
						if b.signErr == nil {
							b.signErr = fmt.Errorf("bench: sign transaction %d: %w", i, err)
						}
						b.mu.Unlock()
						cancel()
						return
					}
					b.requestBytes.Add(int64(len(body)))
					ch.txs = append(ch.txs, &liveTx{idx: int32(i), acct: int32(a), id: id, body: body})
				}
				b.signBusyNs.Add(time.Since(start).Nanoseconds())
				select {
				case signed <- ch:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(signed)
	}()
	// Chunks finish out of order; hand them on in order. At most cap(slots)
	// are signed and not yet handed on.
	waiting := map[int]signedChunk{}
	for want := 0; want < chunks; {
		ch, ok := <-signed
		if !ok {
			break
		}
		waiting[ch.k] = ch
		for ; want < chunks; want++ {
			ch, ok := waiting[want]
			if !ok {
				break
			}
			delete(waiting, want)
			for _, tx := range ch.txs {
				b.mu.Lock()
				b.txs[tx.idx] = tx
				b.mu.Unlock()
				select {
				case b.queues[int(tx.acct)%len(b.queues)] <- tx.idx:
				case <-ctx.Done():
					return
				}
				b.dispatched.Add(1)
			}
			<-slots
		}
	}
}

func (b *liveBook) signError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.signErr
}

// waitFilled waits until n transactions are in the workers' queues (the
// run's first ones, or all of them), so the clock starts with the sender
// ahead of the signers.
func (b *liveBook) waitFilled(ctx context.Context, n int) error {
	for b.dispatched.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.signEnded:
			if b.dispatched.Load() >= int64(n) {
				return nil
			}
			if err := b.signError(); err != nil {
				return err
			}
			return fmt.Errorf("bench: the signers stopped after %d transactions", b.dispatched.Load())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (b *liveBook) body(i int32) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.txs[i].body
}

func (b *liveBook) account(i int32) int32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.txs[i].acct
}

// sending records i's first send at ns (lagNs behind its due time, -1 in
// a closed loop); from now a block may hold it.
func (b *liveBook) sending(i int32, ns, lagNs int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tx := b.txs[i]
	tx.submitNs = ns
	b.byID[tx.id] = tx
	f := &b.fig
	f.sent++
	f.firstSubmit, f.lastSubmit = min(f.firstSubmit, ns), max(f.lastSubmit, ns)
	if b.rate > 0 {
		f.lag.add(float64(lagNs) / 1e6)
	}
}

// settle records i's outcome (ackNs for stAcked); the worker is done with
// it.
func (b *liveBook) settle(i int32, st uint8, ackNs int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tx := b.txs[i]
	delete(b.txs, i)
	tx.body, tx.status = nil, st
	f := &b.fig
	switch st {
	case stAcked:
		f.acked++
		f.lastAck = max(f.lastAck, ackNs)
		f.ack.add(float64(ackNs-tx.submitNs) / 1e6)
		if k := int(time.Duration(ackNs-f.firstSubmit) / admitBin); k >= 0 {
			for len(f.admitBins) <= k {
				f.admitBins = append(f.admitBins, 0)
			}
			f.admitBins[k]++
		}
	case stRejected:
		// Refused for itself: no block will hold it.
		if !tx.included {
			delete(b.byID, tx.id)
			f.rejected++
		}
	case stSkipped:
		f.skipped++
	}
	// stTransport stays in byID: the node may have it.
}

// include marks the transaction with id, if it is one of the run's in
// flight, as held by block blk; it reports whether it was.
func (b *liveBook) include(id koinos.Digest, blk *blockObs) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	tx, ok := b.byID[id]
	if !ok {
		return false
	}
	delete(b.byID, id)
	tx.included = true
	blk.live = append(blk.live, tx)
	return true
}

// unwind puts back the transactions of a block a reorganization replaced.
func (b *liveBook) unwind(blk *blockObs) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tx := range blk.live {
		tx.included = false
		b.byID[tx.id] = tx
	}
	blk.live = nil
}

// fold counts blk's transactions into the figures and forgets them. The
// follower folds a block once it is irreversible (no reorganization can
// take it back), or at the end.
func (b *liveBook) fold(blk *blockObs) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f := &b.fig
	for _, tx := range blk.live {
		f.included++
		f.lastSeen = max(f.lastSeen, blk.SeenNs)
		f.inclusion.add(float64(blk.SeenNs-tx.submitNs) / 1e6)
		f.blockTime.add(float64(blk.TsMs) - b.t0Wall - float64(tx.submitNs)/1e6)
		if b.rate > 0 {
			f.fromDue.add(float64(blk.SeenNs)/1e6 - float64(tx.idx)*1e3/b.rate)
		}
	}
	blk.live = nil
}

// pendingAcked is how many admitted transactions no block holds yet.
func (b *liveBook) pendingAcked() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, tx := range b.byID {
		if tx.status == stAcked {
			n++
		}
	}
	return n
}

// finish counts what is still in flight once the run is over: admitted
// and in no block (lost), or without an answer (transport), and returns
// the figures.
func (b *liveBook) finish() liveFigures {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, tx := range b.byID {
		switch tx.status {
		case stAcked:
			b.fig.lost++
		default:
			b.fig.transport++
		}
	}
	b.byID = map[koinos.Digest]*liveTx{}
	return b.fig
}

// reservoir is a uniform sample of a stream of values (Vitter's
// algorithm R) with the stream's exact count, minimum, maximum and mean.
type reservoir struct {
	size          int
	seen          int64
	sample        []float64
	min, max, sum float64
	rng           *rand.Rand
}

func newReservoir(size int, seed uint64) reservoir {
	return reservoir{size: size, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

func (r *reservoir) add(v float64) {
	r.seen++
	if r.seen == 1 {
		r.min, r.max = v, v
	}
	r.min, r.max, r.sum = min(r.min, v), max(r.max, v), r.sum+v
	if len(r.sample) < r.size {
		r.sample = append(r.sample, v)
		return
	}
	if k := r.rng.Int64N(r.seen); k < int64(r.size) {
		r.sample[k] = v
	}
}

// dist summarizes the stream: percentiles and spread from the sample
// (sorted in place), count, minimum, maximum and mean exact.
func (r *reservoir) dist() Dist {
	d := Summarize(r.sample)
	if r.seen > 0 {
		d.N, d.Min, d.Max, d.Mean = int(r.seen), r.min, r.max, round3(r.sum/float64(r.seen))
	}
	return d
}

// liveSigners is how many goroutines sign: every core (signing is the
// bench's main cost, and its CPU is reported).
func liveSigners() int { return runtime.GOMAXPROCS(0) }
