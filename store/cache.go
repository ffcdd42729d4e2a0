package store

import (
	"container/list"
	"sync"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// entryCache keeps recently decoded blocks for the read path. koilib
// polls a new transaction's block a few times right after inclusion, and
// account history reads the same blocks again and again; decoding a
// 5,000-transaction block costs milliseconds. Entries are shared: callers
// must not modify them (BlockEntry's contract). The engine's replay reads
// (CanonicalBlocks, ForkBlocks) bypass the cache, since the engine sets
// Txs on the entries it is given.
type entryCache struct {
	mu     sync.Mutex
	max    int // entries
	maxTxs int // transactions in them, the newest entry aside
	txs    int
	ll     *list.List // front: most recent
	m      map[koinos.Digest]*list.Element
}

func newEntryCache(max, maxTxs int) *entryCache {
	return &entryCache{max: max, maxTxs: maxTxs, ll: list.New(), m: make(map[koinos.Digest]*list.Element)}
}

func (c *entryCache) get(id koinos.Digest) *chain.BlockEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[id]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*chain.BlockEntry)
	}
	return nil
}

func (c *entryCache) put(e *chain.BlockEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[e.ID]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.m[e.ID] = c.ll.PushFront(e)
	c.txs += len(e.Block.Transactions)
	for c.ll.Len() > 1 && (c.ll.Len() > c.max || c.txs > c.maxTxs) {
		old := c.ll.Remove(c.ll.Back()).(*chain.BlockEntry)
		delete(c.m, old.ID)
		c.txs -= len(old.Block.Transactions)
	}
}
