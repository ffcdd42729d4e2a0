package sigverify

import (
	"math/bits"
	"runtime"
	"sync/atomic"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
)

// worker owns two queues (lanes), a keys.Verifier with its key caches, and
// scratch slices; nothing else touches them, so its hot loop takes no
// lock. Requesters own a job until it is on a queue; the worker owns it
// from the moment it takes it off until it closes the job's done channel.
type worker struct {
	p      *Pool
	blockq chan []*job // chunks of block transactions: always taken first
	txq    chan []*job // submissions, one job an entry
	ver    *keys.Verifier
	jobs   []*job
	items  []keys.Item
	st     workerStats

	natural float64 // moving average of batch sizes before gather
	timer   Timer   // gather's, reused
}

// workerStats are written by the worker alone and read by Pool.Stats.
type workerStats struct {
	verified, invalid, signatures, skipped atomic.Uint64
	batches                                atomic.Uint64
	batchSizes                             [8]atomic.Uint64
	edBatchFails, keyHits, keyMisses       atomic.Uint64
	_                                      [64]byte // no false sharing with the next worker's
}

func newWorker(p *Pool) *worker {
	return &worker{
		p:      p,
		blockq: make(chan []*job, p.cfg.QueueDepth),
		txq:    make(chan []*job, p.cfg.QueueDepth),
		ver:    keys.NewVerifier(p.cfg.KeyCacheSize),
		jobs:   make([]*job, 0, p.cfg.MaxBatch),
		items:  make([]keys.Item, 0, 2*p.cfg.MaxBatch),
	}
}

// run takes a queue entry (waiting if there is none), then whatever else
// is queued without waiting, block lane first, until the batch holds
// MaxBatch signatures, and verifies them together. Under load batches fill
// up; when idle a lone transaction is verified at once, so batching adds
// no latency.
func (w *worker) run() {
	defer w.p.wg.Done()
	maxBatch := w.p.cfg.MaxBatch
	for {
		var js []*job
		select {
		case js = <-w.blockq:
		default:
			select {
			case js = <-w.blockq:
			case js = <-w.txq:
			case <-w.p.quit:
				w.drain()
				return
			}
		}
		w.jobs = append(w.jobs[:0], js...)
		n := sigCount(js)
		if n < maxBatch && len(w.blockq) == 0 && len(w.txq) == 0 {
			// Let the goroutines that are ready to submit run first. The
			// send that woke this worker also put it next in line on its
			// P (Go's runnext), ahead of them: without this yield, a
			// worker sharing a core with its submitters (GOMAXPROCS=1, or
			// more submitters than cores) would verify one transaction
			// per wake-up and never batch. When nothing else is ready the
			// yield returns at once, so an idle pool adds no latency.
			runtime.Gosched()
		}
	fill:
		for n < maxBatch {
			select {
			case js = <-w.blockq:
			default:
				select {
				case js = <-w.txq:
				default:
					break fill
				}
			}
			w.jobs = append(w.jobs, js...)
			n += sigCount(js)
		}
		w.gather(n)
		if w.p.cfg.beforeVerify != nil {
			w.p.cfg.beforeVerify()
		}
		w.verify()
	}
}

// gatherTarget is the batch size a worker waits for, under load, before
// it verifies what it holds: an Ed25519 batch of 8 or more costs about
// half as much per signature as one of 1 or 2 (keys'
// BenchmarkVerifyEd25519), and wallets' one-transaction requests reach the
// pool one by one.
const gatherTarget = 16

// gather tops up a batch of n signatures that is smaller than
// gatherTarget when the worker is under load: it waits up to GatherWindow
// for more submissions. Under load means that batches have held more than
// one transaction without waiting (a moving average over the last few):
// an idle pool, or a lone client, is never made to wait. A batch with a
// block's transactions goes at once: the block is all there, and its
// caller waits for it. It returns the new count.
func (w *worker) gather(n int) int {
	w.natural = (3*w.natural + float64(n)) / 4
	maxBatch := w.p.cfg.MaxBatch
	window := w.p.cfg.GatherWindow
	if n >= gatherTarget || n >= maxBatch || w.natural < 2 || window < 0 || w.p.cfg.NewTimer == nil {
		return n
	}
	for _, j := range w.jobs {
		if j.src == nil { // a block's
			return n
		}
	}
	if w.timer == nil {
		w.timer = w.p.cfg.NewTimer(window)
	} else {
		w.timer.Reset(window)
	}
	defer w.timer.Stop()
	for n < gatherTarget && n < maxBatch {
		var js []*job
		select {
		case js = <-w.blockq:
		case js = <-w.txq:
		case <-w.timer.C():
			return n
		case <-w.p.quit:
			return n
		}
		w.jobs = append(w.jobs, js...)
		n += sigCount(js)
	}
	return n
}

func sigCount(js []*job) (n int) {
	for _, j := range js {
		n += len(j.sigs)
	}
	return n
}

// drain abandons every queued job when the pool closes.
func (w *worker) drain() {
	for {
		var js []*job
		select {
		case js = <-w.blockq:
		case js = <-w.txq:
		default:
			return
		}
		for _, j := range js {
			if j.src != nil {
				j.src.release()
			}
			w.p.cache.abandon(j.key, j.pd, statusShutdown)
		}
	}
}

// verify checks the signatures of w.jobs and publishes each outcome. Jobs
// nobody waits for any more are dropped; jobs from suspect sources are
// checked one signature at a time, after the others' batch, so that their
// likely-invalid signatures cannot send it down the serial path.
func (w *worker) verify() {
	live := w.jobs[:0]
	for _, j := range w.jobs {
		if w.p.cache.cancelIfUnwanted(j.key, j.pd) {
			if j.src != nil {
				j.src.release()
			}
			w.st.skipped.Add(1)
			continue
		}
		live = append(live, j)
	}
	items := w.items[:0]
	for pass := 0; pass < 2; pass++ {
		suspect := pass == 1
		start := len(items)
		for _, j := range live {
			if j.suspect != suspect {
				continue
			}
			for _, s := range j.sigs {
				items = append(items, keys.Item{Sig: s, Digest: j.digest})
			}
		}
		if len(items) == start {
			continue
		}
		if !suspect {
			w.ver.VerifyBatch(items[start:])
			w.countBatch(len(items) - start)
			continue
		}
		for i := start; i < len(items); i++ {
			w.ver.VerifyBatch(items[i : i+1])
			w.countBatch(1)
		}
	}
	// Hand out the results in the same order the items were laid out.
	at := 0
	for pass := 0; pass < 2; pass++ {
		for _, j := range live {
			if j.suspect != (pass == 1) {
				continue
			}
			w.publish(j, items[at:at+len(j.sigs)])
			at += len(j.sigs)
		}
	}
	clear(items) // drop references to the transactions' signatures
	w.items = items[:0]
	vs := w.ver.Stats()
	w.st.edBatchFails.Store(vs.Ed25519BatchFails)
	w.st.keyHits.Store(vs.KeyCacheHits)
	w.st.keyMisses.Store(vs.KeyCacheMisses)
	clear(w.jobs)
}

func (w *worker) countBatch(sigs int) {
	w.st.batches.Add(1)
	w.st.signatures.Add(uint64(sigs))
	w.st.batchSizes[min(bits.Len(uint(sigs))-1, len(w.st.batchSizes)-1)].Add(1)
}

// publish turns one job's signature results into its outcome — the error
// of the first failing signature, as Verify reports it, or the signers if
// they authorize the transaction — and wakes whoever waits for it.
func (w *worker) publish(j *job, items []keys.Item) {
	out := outcomeOf(j, items)
	if out.err != nil {
		w.st.invalid.Add(1)
	} else {
		w.st.verified.Add(1)
	}
	if j.src != nil {
		if out.err != nil {
			j.src.strike()
		} else {
			j.src.credit()
		}
		j.src.release()
	}
	w.p.cache.finish(j.key, j.pd, out)
}

func outcomeOf(j *job, items []keys.Item) outcome {
	signers := make([]koinos.Address, len(items))
	for i := range items {
		if items[i].Err != nil {
			return outcome{err: signatureError(i, items[i].Err)}
		}
		signers[i] = items[i].Addr
	}
	if err := authorizeSigners(j.payer, j.nonceAccount, signers); err != nil {
		return outcome{err: err}
	}
	return outcome{signers: signers}
}
