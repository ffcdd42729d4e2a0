package sigverify

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/churnmap"
)

// cacheKey names what signature verification of a transaction depends on:
// sha256(id ‖ sha256(signatures concatenated) ‖ uvarint length of each
// signature). The id fixes the header (payer, payee, chain id, operation
// merkle root); the rest fixes the signature list exactly. The lengths
// matter: the merkle leaf sha256(concatenated signatures) does not
// separate signatures, so [65-byte, 97-byte] and [97-byte, 65-byte] lists
// with the same bytes share it — one valid and one not (see doc.go and
// TestCachePoisoning). Everything after precheck is a function of this
// key, so its outcome, valid or not, can be reused for any transaction
// with the same key.
type cacheKey [sha256.Size]byte

func cacheKeyOf(id, sigsDigest koinos.Digest, sigs [][]byte) cacheKey {
	var buf [2*sha256.Size + 64]byte
	b := append(buf[:0], id[:]...)
	b = append(b, sigsDigest[:]...)
	for _, s := range sigs {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	return sha256.Sum256(b)
}

// outcome is the result of verifying the signatures of a transaction and
// checking that the right accounts signed: the signers, or the error
// Verify returns.
type outcome struct {
	signers []koinos.Address
	err     error
}

// Status of a pending verification once its done channel is closed.
const (
	statusDone     = iota + 1 // out holds the outcome
	statusRetry               // abandoned before verification (overload, no waiters): look up again
	statusShutdown            // the pool closed
)

// pending is one verification in flight. Its owner (the request that
// created it) queues a job; identical requests that arrive meanwhile wait
// on the same done channel instead of queueing their own. The worker sets
// out and status, then closes done; readers read them only after done.
type pending struct {
	done    chan struct{}
	waiters atomic.Int32 // requests still waiting; 0 lets the worker skip it
	out     outcome
	status  int
}

// slot is a map entry: in flight (p set) or finished (out).
type slot struct {
	p   *pending
	out outcome
}

const cacheShards = 64

// txCache remembers outcomes by cacheKey and tracks verifications in
// flight, in cacheShards independently locked shards (chosen by the key's
// first byte, which is a hash), so concurrent requests for different
// transactions rarely meet on a lock. Valid and invalid outcomes are
// bounded separately, each evicted oldest first, so a flood of distinct
// invalid transactions cannot push out the valid ones a block will need.
type txCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu struct {
		sync.Mutex
		// m is replaced at the rate transactions arrive: a Go map
		// under that churn keeps growing (churnmap's doc).
		m       churnmap.Map[cacheKey, slot]
		valid   ring
		invalid ring
		// counters, read by Stats
		hits, invalidHits, misses, joins uint64
	}
	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// ring is a FIFO of keys of finished outcomes of one kind; its capacity
// bounds them. Each finished outcome in the map has exactly one ring slot.
type ring struct {
	keys []cacheKey
	next int
	full bool
}

func newTxCache(validSize, invalidSize int) *txCache {
	c := &txCache{}
	per := func(n int) int {
		if n <= 0 {
			return 0
		}
		return (n + cacheShards - 1) / cacheShards
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.valid.keys = make([]cacheKey, per(validSize))
		sh.mu.invalid.keys = make([]cacheKey, per(invalidSize))
	}
	return c
}

func (c *txCache) shard(k *cacheKey) *cacheShard { return &c.shards[k[0]%cacheShards] }

// lookup returns a finished outcome (found), or a pending verification to
// wait on; owner reports that the caller created it and must queue it (or
// abandon it). Either way a returned pending counts the caller as a
// waiter.
func (c *txCache) lookup(k cacheKey) (out outcome, found bool, p *pending, owner bool) {
	sh := c.shard(&k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s, ok := sh.mu.m.Get(k); ok {
		if s.p == nil {
			if s.out.err != nil {
				sh.mu.invalidHits++
			} else {
				sh.mu.hits++
			}
			return s.out, true, nil, false
		}
		s.p.waiters.Add(1)
		sh.mu.joins++
		return outcome{}, false, s.p, false
	}
	sh.mu.misses++
	p = &pending{done: make(chan struct{})}
	p.waiters.Store(1)
	sh.mu.m.Set(k, slot{p: p})
	return outcome{}, false, p, true
}

// finish records the outcome of p and wakes its waiters.
func (c *txCache) finish(k cacheKey, p *pending, out outcome) {
	sh := c.shard(&k)
	sh.mu.Lock()
	r := &sh.mu.valid
	if out.err != nil {
		r = &sh.mu.invalid
	}
	if len(r.keys) == 0 {
		sh.mu.m.Delete(k)
	} else {
		if r.full {
			sh.mu.m.Delete(r.keys[r.next])
		}
		r.keys[r.next] = k
		if r.next++; r.next == len(r.keys) {
			r.next, r.full = 0, true
		}
		sh.mu.m.Set(k, slot{out: out})
	}
	sh.mu.Unlock()
	p.out, p.status = out, statusDone
	close(p.done)
}

// abandon removes p unverified and wakes its waiters with status.
func (c *txCache) abandon(k cacheKey, p *pending, status int) {
	sh := c.shard(&k)
	sh.mu.Lock()
	if s, ok := sh.mu.m.Get(k); ok && s.p == p {
		sh.mu.m.Delete(k)
	}
	sh.mu.Unlock()
	p.status = status
	close(p.done)
}

// cancelIfUnwanted abandons p if nobody waits for it any more, and reports
// whether it did. Joining happens under the shard lock, so no request can
// join between the check and the removal.
func (c *txCache) cancelIfUnwanted(k cacheKey, p *pending) bool {
	if p.waiters.Load() > 0 {
		return false
	}
	sh := c.shard(&k)
	sh.mu.Lock()
	if p.waiters.Load() > 0 {
		sh.mu.Unlock()
		return false
	}
	if s, ok := sh.mu.m.Get(k); ok && s.p == p {
		sh.mu.m.Delete(k)
	}
	sh.mu.Unlock()
	p.status = statusRetry
	close(p.done)
	return true
}

// cacheStats are the cache's counters and sizes.
type cacheStats struct {
	hits, invalidHits, misses, joins uint64
	valid, invalid                   int
}

func (c *txCache) stats() cacheStats {
	var st cacheStats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		st.hits += sh.mu.hits
		st.invalidHits += sh.mu.invalidHits
		st.misses += sh.mu.misses
		st.joins += sh.mu.joins
		st.valid += sh.mu.valid.len()
		st.invalid += sh.mu.invalid.len()
		sh.mu.Unlock()
	}
	return st
}

func (r *ring) len() int {
	if r.full {
		return len(r.keys)
	}
	return r.next
}
