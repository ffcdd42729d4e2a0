package p2p

import (
	"encoding/binary"
	"sync"

	"github.com/emberchain/ember/internal/churnmap"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// shortIDLen is the size of a transaction's short id in a compact block:
// the first 8 bytes of its id's digest. Finding a second transaction with a
// given short id takes 2^64 hashes; two of one's own that collide, 2^32.
// A collision only makes the receiver fetch the transaction (or the block),
// because the rebuilt block must match the header's transaction merkle
// root, which commits to full ids and signatures.
const shortIDLen = 8

// shortID returns the short id of a transaction id (a sha2-256 multihash:
// two prefix bytes, then the digest). ok is false for an id of another
// form.
func shortID(id []byte) (uint64, bool) {
	if len(id) != 34 || id[0] != 0x12 || id[1] != 0x20 {
		return 0, false
	}
	return binary.BigEndian.Uint64(id[2:10]), true
}

// txIndex remembers recently seen transactions by short id, so a compact
// block can be rebuilt without fetching them: those admitted to the
// mempool (from the API or gossip). It is bounded: the oldest are forgotten
// first. Shards keep concurrent admissions from contending on one lock.
type txIndex struct {
	shards [txIndexShards]txIndexShard
}

const txIndexShards = 16

type txIndexShard struct {
	mu sync.Mutex
	// byID holds each short id's transaction, or nil when two share it
	// (ambiguous: the receiver fetches it). Its keys are replaced at the
	// rate transactions arrive: a Go map under that churn keeps growing
	// (churnmap's doc).
	byID churnmap.Map[uint64, *protocol.Transaction]
	ring []uint64 // short ids in insertion order, for eviction
	next int
	full bool // the ring has wrapped: each insertion evicts the oldest
}

func newTxIndex(capacity int) *txIndex {
	per := max(capacity/txIndexShards, 1)
	x := &txIndex{}
	for i := range x.shards {
		x.shards[i] = txIndexShard{ring: make([]uint64, per)}
	}
	return x
}

func (x *txIndex) shard(sid uint64) *txIndexShard { return &x.shards[sid%txIndexShards] }

// add remembers transactions.
func (x *txIndex) add(txs ...*protocol.Transaction) {
	for _, tx := range txs {
		sid, ok := shortID(tx.Id)
		if !ok {
			continue
		}
		sh := x.shard(sid)
		sh.mu.Lock()
		if known, found := sh.byID.Get(sid); found {
			if known != nil && string(known.Id) != string(tx.Id) {
				sh.byID.Set(sid, nil)
			}
			sh.mu.Unlock()
			continue
		}
		if sh.full {
			sh.byID.Delete(sh.ring[sh.next])
		}
		sh.ring[sh.next] = sid
		sh.next++
		if sh.next == len(sh.ring) {
			sh.next, sh.full = 0, true
		}
		sh.byID.Set(sid, tx)
		sh.mu.Unlock()
	}
}

// get returns the transaction with a short id, or nil when unknown or
// ambiguous.
func (x *txIndex) get(sid uint64) *protocol.Transaction {
	sh := x.shard(sid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tx, _ := sh.byID.Get(sid)
	return tx
}
