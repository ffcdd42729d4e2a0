package rpcgw

import (
	"bytes"
	"sync"

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
// answers allocate nothing, and the pool's memory is bounded and flat.
const (
	// largeBodyClass is the smallest pooled capacity; pooled capacities
	// are powers of two from it.
	largeBodyClass = 1 << 20
	// largeBodiesHeld bounds the bytes the pool keeps between answers.
	largeBodiesHeld = 64 << 20
)

// bodyPool keeps a few large response buffers for reuse, at most max bytes
// in all. Buffers larger than max are never kept.
type bodyPool struct {
	max  int
	mu   sync.Mutex
	free [][]byte
	held int
}

// bodyClass is the capacity a buffer for n bytes is given.
func bodyClass(n int) int {
	c := largeBodyClass
	for c < n && c < 1<<40 {
		c <<= 1
	}
	return c
}

// get returns an empty buffer with room for n bytes: the smallest pooled
// one that fits, or a new one of n's class.
func (p *bodyPool) get(n int) []byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		p.free[best] = p.free[len(p.free)-1]
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		p.held -= cap(b)
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
	for p.held+c > p.max && len(p.free) > 0 {
		small := 0
		for i := range p.free {
			if cap(p.free[i]) < cap(p.free[small]) {
				small = i
			}
		}
		p.held -= cap(p.free[small])
		p.free[small] = p.free[len(p.free)-1]
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
	}
	p.free = append(p.free, b[:0])
	p.held += c
}

// heldBytes reports what the pool keeps, for tests.
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
