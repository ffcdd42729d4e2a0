package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// LoadSpec is how one run offers its transactions.
type LoadSpec struct {
	// Txs is the number of transactions (with Rate, 0 means Rate ×
	// Duration).
	Txs int
	// Rate, when above 0, offers transaction i at i/Rate seconds after
	// the start (open loop); 0 sends as fast as answers come (closed
	// loop).
	Rate float64
	// Duration sizes a rated run when Txs is 0. In a closed-loop run it
	// caps the submission time: transactions not sent by then are not
	// offered, and count neither as sent nor as errors.
	Duration time.Duration
	// Concurrency is the number of workers, each with at most one request
	// in flight.
	Concurrency int
	// Batch is the most transactions in one JSON-RPC batch (1: single
	// requests).
	Batch int
	// SignLive signs the transactions while the run goes, a bounded
	// distance ahead of the sender, instead of all of them before the
	// clock starts, and keeps figures only for the transactions in flight
	// plus fixed-size samples (live.go): memory stays flat however long
	// the run. The signing then shares the machine with the node.
	SignLive bool
	// SignAhead is how many transactions SignLive keeps signed ahead of
	// the sender (default DefaultSignAhead(Rate)).
	SignAhead int
}

// Defaults of LoadSpec.
const (
	DefaultConcurrency = 32
	DefaultBatch       = 20
)

func (s *LoadSpec) ensureDefaults() {
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.Txs == 0 && s.Rate > 0 && s.Duration > 0 {
		s.Txs = int(s.Rate * s.Duration.Seconds())
	}
}

// Validate reports a spec that cannot run against accounts accounts,
// after defaults; it lets a command refuse bad flags before starting a
// node.
func (s LoadSpec) Validate(accounts int) error {
	s.ensureDefaults()
	return s.validate(accounts)
}

func (s *LoadSpec) validate(accounts int) error {
	switch {
	case s.Txs < 1:
		return fmt.Errorf("bench: the run needs at least one transaction (--txs, or --rate with --duration); got %d", s.Txs)
	case s.Txs > maxRunTxs:
		return fmt.Errorf("bench: at most %d transactions per run, got %d", maxRunTxs, s.Txs)
	case s.SignAhead < 0:
		return fmt.Errorf("bench: --sign-ahead must not be negative, got %d", s.SignAhead)
	case s.Rate < 0:
		return fmt.Errorf("bench: --rate must not be negative, got %v", s.Rate)
	case s.Concurrency < 1:
		return fmt.Errorf("bench: --concurrency must be at least 1, got %d", s.Concurrency)
	case s.Batch < 1:
		return fmt.Errorf("bench: --batch must be at least 1, got %d", s.Batch)
	case s.Concurrency > accounts:
		return fmt.Errorf("bench: --concurrency %d is more than --accounts %d: each worker needs accounts of its own to keep their nonces in order", s.Concurrency, accounts)
	case s.Batch > accounts/s.Concurrency:
		return fmt.Errorf("bench: --batch %d is more than accounts per worker (%d accounts / %d workers = %d): a batch may hold one transaction per account, so its nonces cannot arrive out of order; raise --accounts or lower --batch or --concurrency",
			s.Batch, accounts, s.Concurrency, accounts/s.Concurrency)
	}
	return nil
}

// Transaction outcomes of the submit side.
const (
	stNotSent   uint8 = iota // not offered: a closed-loop run's time cap came first
	stAcked                  // the node admitted it
	stRejected               // the node refused it for itself (not for load)
	stTransport              // no answer: the node may or may not have it
	stSkipped                // not sent: an earlier transaction of its account was refused
)

// submitter sends a plan's transactions.
//
// Nonce order: the node refuses a nonce gap, and requests on different
// connections are served in no set order, so each account's transactions
// must never be in flight together. Each account belongs to one worker
// (account mod Concurrency), a worker has one request in flight, and a
// batch holds at most one transaction per account. A transaction refused
// for load (overloaded, mempool full) is sent again, alone, before the
// worker goes on; one refused for itself ends its account's run (the rest
// would all fail on the nonce gap), and the rest are counted as skipped.
//
// With several nodes, worker w sends to node w mod N, so an account's
// transactions always go to one node, in nonce order.
type submitter struct {
	cs   []*conn
	p    *plan     // pre-signed: every transaction of the run
	live *liveBook // signed live: the transactions in flight (p is nil)
	spec LoadSpec
	t0   time.Time

	// Pre-signed runs only, per transaction (a live run keeps these in
	// its liveBook).
	submitNs []int64 // since t0: first send
	ackNs    []int64 // since t0: the answer that admitted it
	status   []uint8

	sent, acked, failed, retries atomic.Int64
	transportErrs                atomic.Int64
	respBytes                    atomic.Int64

	// checkReverts (the WASM token) reads each admitting answer's receipt:
	// a contract call can revert and still be admitted and committed,
	// having moved nothing. A native transfer that fails is refused
	// instead, so native runs skip the look.
	checkReverts bool
	reverted     atomic.Int64

	mu     sync.Mutex
	errors map[string]int // first error texts, by count
}

func newSubmitter(cs []*conn, p *plan, spec LoadSpec, t0 time.Time) *submitter {
	n := len(p.body)
	return &submitter{cs: cs, p: p, spec: spec, t0: t0,
		submitNs: make([]int64, n), ackNs: make([]int64, n), status: make([]uint8, n), errors: map[string]int{}}
}

// newLiveSubmitter sends the transactions book's signers hand it.
func newLiveSubmitter(cs []*conn, book *liveBook, spec LoadSpec, t0 time.Time) *submitter {
	return &submitter{cs: cs, live: book, spec: spec, t0: t0, errors: map[string]int{}}
}

// maxRetryFor bounds how long one transaction is retried for load.
const maxRetryFor = 60 * time.Second

// run sends everything and returns when every worker is done or ctx ends.
func (s *submitter) run(ctx context.Context) {
	c := s.spec.Concurrency
	queues := make([]*workQueue, c)
	if s.live != nil {
		for w := range queues {
			queues[w] = &workQueue{ch: s.live.queues[w]}
		}
	} else {
		for w := range queues {
			queues[w] = &workQueue{}
		}
		for i := range s.p.body {
			w := int(s.p.acct[i]) % c
			queues[w].items = append(queues[w].items, int32(i))
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx, s.cs[w%len(s.cs)], queues[w])
		}()
	}
	wg.Wait()
}

// workQueue is one worker's transactions in order: a slice of a
// pre-signed plan, or a channel the live signers fill.
type workQueue struct {
	items []int32
	ch    <-chan int32
	head  int32 // from ch, not yet taken
	has   bool
}

// peek returns the next transaction without taking it; wait says whether
// to wait for the signers when none is ready. ok is false when there is
// none (the run's end, ctx's end, or none ready without wait).
func (q *workQueue) peek(ctx context.Context, wait bool) (i int32, ok bool) {
	if q.ch == nil {
		if len(q.items) == 0 {
			return 0, false
		}
		return q.items[0], true
	}
	if q.has {
		return q.head, true
	}
	if !wait {
		select {
		case i, ok := <-q.ch:
			q.head, q.has = i, ok
			return i, ok
		default:
			return 0, false
		}
	}
	select {
	case i, ok := <-q.ch:
		q.head, q.has = i, ok
		return i, ok
	case <-ctx.Done():
		return 0, false
	}
}

// pop takes the transaction peek returned.
func (q *workQueue) pop() {
	if q.ch == nil {
		q.items = q.items[1:]
		return
	}
	q.has = false
}

// The transactions' data and outcomes, kept per transaction for a
// pre-signed run and in the liveBook for a live one.

func (s *submitter) body(i int32) []byte {
	if s.live != nil {
		return s.live.body(i)
	}
	return s.p.body[i]
}

func (s *submitter) account(i int32) int32 {
	if s.live != nil {
		return s.live.account(i)
	}
	return s.p.acct[i]
}

// sending records the first send of i, ns since t0.
func (s *submitter) sending(i int32, ns int64) {
	if s.live != nil {
		s.live.sending(i, ns, s.lagNs(i, ns))
		return
	}
	s.submitNs[i] = ns
}

// settle records i's outcome; ackNs is the admitting answer's time for
// stAcked.
func (s *submitter) settle(i int32, st uint8, ackNs int64) {
	if s.live != nil {
		s.live.settle(i, st, ackNs)
		return
	}
	s.status[i] = st
	if st == stAcked {
		s.ackNs[i] = ackNs
	}
}

// lagNs is how late a rated run sent i (-1 for a closed loop).
func (s *submitter) lagNs(i int32, sentNs int64) int64 {
	if s.spec.Rate <= 0 {
		return -1
	}
	return sentNs - s.schedNs(i)
}

// schedNs is when transaction i is due in a rated run, since t0.
func (s *submitter) schedNs(i int32) int64 {
	return int64(float64(i) * 1e9 / s.spec.Rate)
}

func (s *submitter) worker(ctx context.Context, c *conn, q *workQueue) {
	dead := map[int32]bool{}
	var parser fastjson.Parser
	batch := make([]int32, 0, s.spec.Batch)
	var buf []byte
	for {
		if ctx.Err() != nil {
			return
		}
		if s.spec.Rate == 0 && s.spec.Duration > 0 && time.Since(s.t0) >= s.spec.Duration {
			return
		}
		next, ok := q.peek(ctx, true)
		if !ok {
			return
		}
		if s.spec.Rate > 0 {
			// Open loop: wait for the next transaction's time, then take
			// every one already due, up to a batch. A worker still busy
			// with its last request sends late; the lag is reported.
			if wait := s.schedNs(next) - time.Since(s.t0).Nanoseconds(); wait > 0 {
				if !sleepCtx(ctx, time.Duration(wait)) {
					return
				}
			}
		}
		batch = batch[:0]
		now := time.Since(s.t0).Nanoseconds()
		for len(batch) < s.spec.Batch {
			// The first is there already; a live run does not wait for
			// the signers to fill a batch.
			i, ok := q.peek(ctx, false)
			if !ok || (s.spec.Rate > 0 && len(batch) > 0 && s.schedNs(i) > now) {
				break
			}
			q.pop()
			if dead[s.account(i)] {
				s.settle(i, stSkipped, 0)
				s.failed.Add(1)
				continue
			}
			batch = append(batch, i)
		}
		if len(batch) == 0 {
			continue
		}
		for _, i := range batch {
			s.sending(i, now)
		}
		s.sent.Add(int64(len(batch)))
		buf = s.send(ctx, c, &parser, batch, buf, dead)
	}
}

// send posts batch, retrying the transactions refused for load, and
// records each outcome.
func (s *submitter) send(ctx context.Context, c *conn, parser *fastjson.Parser, batch []int32, buf []byte, dead map[int32]bool) []byte {
	backoff := 5 * time.Millisecond
	start := time.Now()
	for len(batch) > 0 {
		var body []byte
		if len(batch) == 1 {
			body = s.body(batch[0])
		} else {
			buf = append(buf[:0], '[')
			for k, i := range batch {
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, s.body(i)...)
			}
			body = append(buf, ']')
		}
		var retry []int32
		err := c.post(body, 2*time.Minute, func(status int, resp []byte) error {
			s.respBytes.Add(int64(len(resp)))
			retry = s.answer(parser, batch, status, resp, dead)
			return nil
		})
		if err != nil {
			// No answer: the node may have admitted these or not. Go on;
			// if it had, the follower will find them in a block.
			s.transportErrs.Add(1)
			s.noteError(err.Error())
			for _, i := range batch {
				s.settle(i, stTransport, 0)
			}
			s.failed.Add(int64(len(batch)))
			return buf
		}
		if len(retry) == 0 {
			return buf
		}
		if time.Since(start) > maxRetryFor || !sleepCtx(ctx, backoff) {
			for _, i := range retry {
				s.settle(i, stRejected, 0)
				dead[s.account(i)] = true
			}
			s.failed.Add(int64(len(retry)))
			s.noteError(fmt.Sprintf("still refused for load after %v of retries", maxRetryFor))
			return buf
		}
		s.retries.Add(int64(len(retry)))
		backoff = min(2*backoff, 200*time.Millisecond)
		batch = append(batch[:0], retry...)
	}
	return buf
}

// answer reads a response to batch and returns the transactions to retry.
func (s *submitter) answer(parser *fastjson.Parser, batch []int32, status int, resp []byte, dead map[int32]bool) []int32 {
	now := time.Since(s.t0).Nanoseconds()
	v, err := parser.ParseBytes(resp)
	if err != nil {
		if status == 503 || status == 504 {
			return batch
		}
		s.reject(batch, fmt.Sprintf("HTTP %d with a body that is not JSON-RPC: %.120q", status, resp), dead)
		return nil
	}
	elems := []*fastjson.Value{v}
	if v.Type() == fastjson.TypeArray {
		elems, _ = v.Array()
	} else if len(batch) > 1 {
		// One error object for the whole batch: overloaded, too large.
		e := errorOf(v, status)
		if e != nil && e.retryable() {
			return batch
		}
		msg := fmt.Sprintf("HTTP %d: the batch was answered with one object", status)
		if e != nil {
			msg = e.Error()
		}
		s.reject(batch, msg, dead)
		return nil
	}
	answered := make(map[int32]*fastjson.Value, len(elems))
	for _, e := range elems {
		id, err := e.Get("id").Int()
		if err != nil && len(batch) == 1 {
			id = int(batch[0]) // an error answered with a null id
		}
		answered[int32(id)] = e
	}
	var retry []int32
	for _, i := range batch {
		e, ok := answered[i]
		if !ok {
			s.reject([]int32{i}, "the batch answer has nothing for this transaction", dead)
			continue
		}
		if re := errorOf(e, status); re != nil {
			if re.retryable() {
				retry = append(retry, i)
				continue
			}
			s.reject([]int32{i}, re.Error(), dead)
			continue
		}
		s.settle(i, stAcked, now)
		s.acked.Add(1)
		if s.checkReverts {
			s.noteReverted(e)
		}
	}
	return retry
}

// noteReverted counts an admitted transaction whose receipt says it
// reverted, with the chain's reason among the error texts.
func (s *submitter) noteReverted(answer *fastjson.Value) {
	rec := answer.Get("result", "receipt")
	if rec == nil || !rec.GetBool("reverted") {
		return
	}
	s.reverted.Add(1)
	var logs []string
	for _, l := range rec.GetArray("logs") {
		logs = append(logs, string(l.GetStringBytes()))
	}
	s.noteError("admitted but reverted: " + strings.Join(logs, "; "))
}

func (s *submitter) reject(is []int32, msg string, dead map[int32]bool) {
	for _, i := range is {
		s.settle(i, stRejected, 0)
		dead[s.account(i)] = true
	}
	s.failed.Add(int64(len(is)))
	s.noteError(msg)
}

// noteError counts an error text; the first 20 distinct texts are kept.
func (s *submitter) noteError(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.errors[msg]; ok || len(s.errors) < 20 {
		s.errors[msg]++
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
