package rpcgw

import (
	"bytes"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
)

// Large answers (a block of 14,000 transfers is ~17 MB of JSON) used to be
// encoded into a buffer grown by doubling from the connection's kept one:
// each such answer allocated 512 KB, 1 MB, ... 32 MB, and each new record
// size needed contiguous pages the fragmented heap did not have, so the Go
// runtime mapped more (its sys stepped by ~30 MB at each backlog of a
// secp256k1 soak while the live heap stayed flat; docs/reliability.md,
// Soak). Now, for a method whose last answer was large, the result's size
// is estimated before it is encoded (small-answer methods skip the
// estimate, which would cost them ~4 %), the buffer comes from a small
// pool of large buffers in power-of-two classes, and every large buffer
// returns there once fasthttp has written it: in steady state large
// answers allocate nothing, and the pool's memory is bounded (and let go
// when idle, below).
const (
	// largeBodyClass is the smallest pooled capacity; pooled capacities
	// are powers of two from it.
	largeBodyClass = 1 << 20
	// largeBodiesHeld bounds the bytes the pool keeps between answers.
	largeBodiesHeld = 64 << 20
	// largeBodyIdle is how long a pooled buffer may wait unused before
	// the pool lets it go. A bound alone was not enough: a rare answer in
	// a larger class (one 27 MB block among 15 MB ones) left a 32 MiB
	// buffer that later answers never picked (they take the smallest that
	// fits), and an hour's soak read the step as RSS growth
	// (docs/reliability.md, Soak). Buffers in steady use are taken again
	// within a block interval or two; a node that serves large answers
	// rarely keeps nothing for them.
	largeBodyIdle = 10 * time.Second
)

// bodyPool keeps a few large response buffers for reuse, at most max bytes
// in all; a buffer not taken again within idle is released (on the next
// put, or by a timer within two idle periods; idle 0: kept until room is
// needed). Buffers larger than max are never kept. The zero value with max
// set is ready to use.
type bodyPool struct {
	max  int
	idle time.Duration
	now  func() time.Time // the clock; nil means time.Now (tests set it)

	mu     sync.Mutex
	free   []pooledBuffer
	held   int
	timer  *time.Timer // pending release of idle buffers; nil when none is armed
	closed bool        // after close, nothing is kept
}

// pooledBuffer is a kept buffer and when it came back.
type pooledBuffer struct {
	b    []byte
	back time.Time
}

// bodyClass is the capacity a buffer for n bytes is given.
func bodyClass(n int) int {
	c := largeBodyClass
	for c < n && c < 1<<40 {
		c <<= 1
	}
	return c
}

func (p *bodyPool) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// get returns an empty buffer with room for n bytes: the smallest pooled
// one that fits, or a new one of n's class.
func (p *bodyPool) get(n int) []byte {
	p.mu.Lock()
	best := -1
	for i, f := range p.free {
		if cap(f.b) >= n && (best < 0 || cap(f.b) < cap(p.free[best].b)) {
			best = i
		}
	}
	if best >= 0 {
		b := p.removeLocked(best)
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, bodyClass(n))
}

// put offers b back. A buffer no larger than a connection keeps, or larger
// than the pool may hold, is left to the collector; to make room for b the
// pool drops its smallest buffers.
func (p *bodyPool) put(b []byte) {
	c := cap(b)
	if c <= keptBodyBuffer || c > p.max {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := p.clock()
	p.releaseIdleLocked(now)
	for p.held+c > p.max && len(p.free) > 0 {
		small := 0
		for i := range p.free {
			if cap(p.free[i].b) < cap(p.free[small].b) {
				small = i
			}
		}
		p.removeLocked(small)
	}
	p.free = append(p.free, pooledBuffer{b: b[:0], back: now})
	p.held += c
	if p.idle > 0 && p.timer == nil {
		p.timer = time.AfterFunc(p.idle, p.releaseIdle)
	}
}

// removeLocked takes the i-th kept buffer out of the pool.
func (p *bodyPool) removeLocked(i int) []byte {
	b := p.free[i].b
	last := len(p.free) - 1
	p.free[i] = p.free[last]
	p.free[last] = pooledBuffer{}
	p.free = p.free[:last]
	p.held -= cap(b)
	return b
}

// releaseIdleLocked lets go of the buffers unused for idle or longer.
func (p *bodyPool) releaseIdleLocked(now time.Time) {
	if p.idle <= 0 {
		return
	}
	for i := 0; i < len(p.free); {
		if now.Sub(p.free[i].back) >= p.idle {
			p.removeLocked(i)
			continue
		}
		i++
	}
}

// releaseIdle runs on the pool's timer: it releases the idle buffers and,
// while any are left, runs again an idle period later, so an unused
// buffer goes within two idle periods even if no answer comes to trigger
// it.
func (p *bodyPool) releaseIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseIdleLocked(p.clock())
	if len(p.free) == 0 || p.closed || p.timer == nil {
		p.timer = nil
		return
	}
	p.timer.Reset(p.idle)
}

// close releases every kept buffer and keeps none after (the server shut
// down).
func (p *bodyPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for len(p.free) > 0 {
		p.removeLocked(len(p.free) - 1)
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// heldBytes reports what the pool keeps (Stats, tests).
func (p *bodyPool) heldBytes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// roomFor returns dst with room for msg's JSON: if the estimate takes the
// body past what a connection keeps, dst's bytes move into a pooled
// buffer. The estimate, 2.5 times the protobuf size, is a hint (a block of
// transfers with its receipts is 2.0 times: hex ids, base58 addresses,
// base64 bytes, field names; TestRoomForCoversABlock); the encoder still
// grows the buffer if it is short.
func (p *bodyPool) roomFor(dst []byte, msg proto.Message) []byte {
	need := len(dst) + proto.Size(msg)*5/2 + 1024
	if need <= keptBodyBuffer || need <= cap(dst) {
		return dst
	}
	return append(p.get(need), dst...)
}

// pooledBody is a response body fasthttp streams from a pooled buffer; it
// closes the stream once written (or when the response is reset unsent),
// which hands the buffer back.
type pooledBody struct {
	bytes.Reader
	buf  []byte
	pool *bodyPool
}

func (b *pooledBody) Close() error {
	if b.buf != nil {
		b.pool.put(b.buf)
		b.buf = nil
	}
	return nil
}
