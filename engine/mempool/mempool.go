package mempool

import (
	"container/heap"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/internal/churnmap"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// StateReader is the head state the pool checks nonces and mana against.
// chain.View implements it.
type StateReader interface {
	// Nonce is the last nonce the account used at the head.
	Nonce(a koinos.Address) (uint64, error)
	// RC is the account's mana at the head.
	RC(a koinos.Address) (uint64, error)
}

// Defaults of Config.
const (
	DefaultMaxTransactions = 200_000
	DefaultMaxBytes        = 256 << 20
	DefaultMaxPerAccount   = 1024
	DefaultExpiryMs        = 120_000
	DefaultShards          = 256
)

// Config bounds the pool. Zero fields take the defaults.
type Config struct {
	MaxTransactions int   // whole pool
	MaxBytes        int64 // whole pool, serialized transaction bytes
	MaxPerAccount   int   // one nonce account's queue
	ExpiryMs        uint64
	Shards          int
}

func (c *Config) ensureDefaults() {
	if c.MaxTransactions <= 0 {
		c.MaxTransactions = DefaultMaxTransactions
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxPerAccount <= 0 {
		c.MaxPerAccount = DefaultMaxPerAccount
	}
	if c.ExpiryMs == 0 {
		c.ExpiryMs = DefaultExpiryMs
	}
	if c.Shards <= 0 {
		c.Shards = DefaultShards
	}
}

// Usage is what the transaction used when it was checked on admission;
// get_pending_transactions reports it.
type Usage struct {
	Disk, Network, Compute uint64
}

// Entry is a pending transaction.
type Entry struct {
	Tx      *sigverify.VerifiedTx
	Seq     uint64 // arrival order
	AddedMs uint64
	Usage   Usage
}

// Reasons a transaction is refused, as counted in Stats.
const (
	ReasonFull        = "pool_full"
	ReasonAccountFull = "account_full"
	ReasonNonce       = "nonce"
	ReasonDuplicate   = "duplicate"
	ReasonRC          = "rc"
	ReasonState       = "state"
	numReasons        = 6
)

var reasonIndex = map[string]int{ReasonFull: 0, ReasonAccountFull: 1, ReasonNonce: 2, ReasonDuplicate: 3, ReasonRC: 4, ReasonState: 5}

// Mempool is the pool of pending transactions. All methods are safe for
// concurrent use.
type Mempool struct {
	cfg    Config
	shards []shard
	seq    atomic.Uint64
	count  atomic.Int64
	bytes  atomic.Int64
	// rejected counts refusals by reason (indexes of reasonIndex).
	rejected [numReasons]atomic.Uint64
	expired  atomic.Uint64
}

type shard struct {
	mu sync.Mutex
	// The maps gain and lose entries as transactions and accounts come
	// and go: Go maps under that churn keep growing (churnmap's doc).
	queues   churnmap.Map[koinos.Address, *queue] // by nonce account
	reserved churnmap.Map[koinos.Address, uint64] // rc reserved, by payer
	byID     churnmap.Map[koinos.Digest, *Entry]
	_        [40]byte // keep shards on separate cache lines
}

// queue is one nonce account's pending transactions, consecutive nonces.
type queue struct {
	txs []*Entry
}

func (q *queue) last() uint64 { return q.txs[len(q.txs)-1].Tx.Nonce() }

// New returns an empty pool.
func New(cfg Config) *Mempool {
	cfg.ensureDefaults()
	m := &Mempool{cfg: cfg, shards: make([]shard, cfg.Shards)}
	return m
}

// Config returns the pool's limits.
func (m *Mempool) Config() Config { return m.cfg }

func (m *Mempool) shardOf(a koinos.Address) *shard {
	// The last address bytes are checksum bytes, uniformly spread.
	return &m.shards[(uint(a[23])<<8|uint(a[24]))%uint(len(m.shards))]
}

func (m *Mempool) reject(reason string, code chainpb.ErrorCode, format string, args ...any) error {
	m.rejected[reasonIndex[reason]].Add(1)
	return koinos.Errorf(code, "mempool: "+format, args...)
}

// PendingNonce is the nonce the next transaction of account a must carry:
// its last pending nonce + 1, or its head nonce + 1 when none is pending.
func (m *Mempool) PendingNonce(a koinos.Address, head StateReader) (uint64, error) {
	sh := m.shardOf(a)
	sh.mu.Lock()
	q, _ := sh.queues.Get(a)
	if q != nil && len(q.txs) > 0 {
		n := q.last() + 1
		sh.mu.Unlock()
		return n, nil
	}
	sh.mu.Unlock()
	n, err := head.Nonce(a)
	return n + 1, err
}

// Add admits a verified transaction that was checked against head (its
// usage u comes from that check). It is refused if the pool or the account
// is full, its nonce is not the account's pending nonce + 1, or its payer's
// pending rc_limits would exceed its mana.
func (m *Mempool) Add(v *sigverify.VerifiedTx, head StateReader, nowMs uint64, u Usage) error {
	size := int64(v.Size())
	if !addWithin(&m.count, 1, int64(m.cfg.MaxTransactions)) {
		return m.reject(ReasonFull, chainpb.ErrorCode_pending_transaction_limit_exceeded, "the pool is full (%d transactions); retry later", m.cfg.MaxTransactions)
	}
	if !addWithin(&m.bytes, size, m.cfg.MaxBytes) {
		m.count.Add(-1)
		return m.reject(ReasonFull, chainpb.ErrorCode_pending_transaction_limit_exceeded, "the pool is full (%d bytes); retry later", m.cfg.MaxBytes)
	}
	release := func() {
		m.count.Add(-1)
		m.bytes.Add(-size)
	}
	if err := m.reserve(v, head); err != nil {
		release()
		return err
	}
	if err := m.append(v, head, nowMs, u); err != nil {
		m.unreserve(v.Payer(), v.RcLimit())
		release()
		return err
	}
	return nil
}

// addWithin adds delta to c unless that takes it over limit. A plain Add
// followed by a check and an undo let concurrent submissions push the
// count over its cap for a moment (Len reported 65 in a pool of 64 under
// a flood: TestOverloadRefusesAndRecovers), which metrics and anyone
// reading Len saw.
func addWithin(c *atomic.Int64, delta, limit int64) bool {
	for {
		n := c.Load()
		if n+delta > limit {
			return false
		}
		if c.CompareAndSwap(n, n+delta) {
			return true
		}
	}
}

func (m *Mempool) reserve(v *sigverify.VerifiedTx, head StateReader) error {
	payer := v.Payer()
	mana, err := head.RC(payer)
	if err != nil {
		return m.reject(ReasonState, chainpb.ErrorCode_internal_error, "read mana of %s: %v", payer, err)
	}
	sh := m.shardOf(payer)
	sh.mu.Lock()
	r, _ := sh.reserved.Get(payer)
	sum, carry := bits.Add64(r, v.RcLimit(), 0)
	if carry != 0 || sum > mana {
		sh.mu.Unlock()
		return m.reject(ReasonRC, chainpb.ErrorCode_insufficient_rc,
			"payer %s has %d mana and its pending transactions reserve %d: an rc_limit of %d does not fit; wait for them to be included or lower rc_limit", payer, mana, r, v.RcLimit())
	}
	sh.reserved.Set(payer, sum)
	sh.mu.Unlock()
	return nil
}

func (m *Mempool) unreserve(payer koinos.Address, rc uint64) {
	sh := m.shardOf(payer)
	sh.mu.Lock()
	sh.unreserveLocked(payer, rc)
	sh.mu.Unlock()
}

func (sh *shard) unreserveLocked(payer koinos.Address, rc uint64) {
	if r, _ := sh.reserved.Get(payer); r > rc {
		sh.reserved.Set(payer, r-rc)
	} else {
		sh.reserved.Delete(payer)
	}
}

func (m *Mempool) append(v *sigverify.VerifiedTx, head StateReader, nowMs uint64, u Usage) error {
	na := v.NonceAccount()
	headNonce, err := head.Nonce(na)
	if err != nil {
		return m.reject(ReasonState, chainpb.ErrorCode_internal_error, "read nonce of %s: %v", na, err)
	}
	sh := m.shardOf(na)
	sh.mu.Lock()
	if _, dup := sh.byID.Get(v.ID()); dup {
		sh.mu.Unlock()
		return m.reject(ReasonDuplicate, chainpb.ErrorCode_invalid_nonce, "transaction 0x%x is already pending", v.ID().Multihash())
	}
	q, _ := sh.queues.Get(na)
	want := headNonce + 1
	if q != nil && len(q.txs) > 0 {
		want = q.last() + 1
	}
	if v.Nonce() != want {
		sh.mu.Unlock()
		return m.reject(ReasonNonce, chainpb.ErrorCode_invalid_nonce, "nonce %d of account %s is not the next one: expected %d (head nonce %d, %d pending)", v.Nonce(), na, want, headNonce, want-headNonce-1)
	}
	if q == nil {
		q = &queue{}
		sh.queues.Set(na, q)
	}
	if len(q.txs) >= m.cfg.MaxPerAccount {
		sh.mu.Unlock()
		return m.reject(ReasonAccountFull, chainpb.ErrorCode_pending_transaction_limit_exceeded, "account %s already has %d pending transactions, the most allowed; wait for some to be included", na, len(q.txs))
	}
	e := &Entry{Tx: v, Seq: m.seq.Add(1), AddedMs: nowMs, Usage: u}
	q.txs = append(q.txs, e)
	sh.byID.Set(v.ID(), e)
	sh.mu.Unlock()
	return nil
}

// cutPassedLocked removes from q the entries whose nonce the head has
// reached (a prefix: a queue holds consecutive nonces) and returns them. A
// queue that starts past headNonce+1 cannot follow the head (a reorg
// lowered it) and goes whole, as Update's rebuild would drop it.
func (sh *shard) cutPassedLocked(na koinos.Address, q *queue, headNonce uint64) dropped {
	if len(q.txs) == 0 {
		return nil
	}
	n := len(q.txs)
	if first := q.txs[0].Tx.Nonce(); first <= headNonce+1 {
		n = int(min(uint64(n), headNonce+1-first))
	}
	if n == 0 {
		return nil
	}
	out := slices.Clone(q.txs[:n])
	for j := range n {
		sh.byID.Delete(q.txs[j].Tx.ID())
		q.txs[j] = nil
	}
	q.txs = q.txs[n:]
	if len(q.txs) == 0 {
		sh.queues.Delete(na)
	}
	return out
}

// dropped is what must be released after entries leave a queue.
type dropped []*Entry

// cutLocked removes q.txs[i:] from sh and returns them.
func (sh *shard) cutLocked(na koinos.Address, q *queue, i int) dropped {
	out := slices.Clone(q.txs[i:])
	for j := i; j < len(q.txs); j++ {
		sh.byID.Delete(q.txs[j].Tx.ID())
		q.txs[j] = nil
	}
	q.txs = q.txs[:i]
	if len(q.txs) == 0 {
		sh.queues.Delete(na)
	}
	return out
}

// release gives back the counters and reservations of entries that left.
func (m *Mempool) release(ds dropped) {
	for _, e := range ds {
		m.count.Add(-1)
		m.bytes.Add(-int64(e.Tx.Size()))
		m.unreserve(e.Tx.Payer(), e.Tx.RcLimit())
	}
}

// Remove drops transactions (the producer found them failing) and every
// later nonce of their accounts, which cannot be included without them.
func (m *Mempool) Remove(txs ...*sigverify.VerifiedTx) {
	var ds dropped
	for _, v := range txs {
		na := v.NonceAccount()
		sh := m.shardOf(na)
		sh.mu.Lock()
		if q, _ := sh.queues.Get(na); q != nil {
			if i := slices.IndexFunc(q.txs, func(e *Entry) bool { return e.Tx.ID() == v.ID() }); i >= 0 {
				ds = append(ds, sh.cutLocked(na, q, i)...)
			}
		}
		sh.mu.Unlock()
	}
	m.release(ds)
}

// Update brings the pool to a new head: the transactions of blocks that
// joined the head chain leave it, those of blocks that left it (a reorg)
// come back, and every queue touched is rebuilt from the head nonce. added
// and removed hold the blocks' transactions, oldest block first. Returning
// transactions get new arrival numbers in their block order.
func (m *Mempool) Update(head StateReader, added, removed [][]*sigverify.VerifiedTx, nowMs uint64) error {
	back := map[koinos.Address][]*sigverify.VerifiedTx{}
	seqOf := map[koinos.Digest]uint64{}
	var touched []koinos.Address
	seen := map[koinos.Address]bool{}
	touch := func(a koinos.Address) {
		if !seen[a] {
			seen[a] = true
			touched = append(touched, a)
		}
	}
	for _, b := range removed {
		for _, v := range b {
			na := v.NonceAccount()
			back[na] = append(back[na], v)
			seqOf[v.ID()] = m.seq.Add(1)
			touch(na)
		}
	}
	for _, b := range added {
		for _, v := range b {
			touch(v.NonceAccount())
		}
	}
	var ds dropped
	type reserve struct {
		payer koinos.Address
		rc    uint64
	}
	var reserves []reserve
	for _, na := range touched {
		headNonce, err := head.Nonce(na)
		if err != nil {
			return fmt.Errorf("mempool: read nonce of %s: %w", na, err)
		}
		sh := m.shardOf(na)
		sh.mu.Lock()
		q, _ := sh.queues.Get(na)
		if len(back[na]) == 0 {
			// Nothing of this account came back (no reorg touched it):
			// its queue only loses the nonces the head has passed. Cutting
			// them costs what leaves; the rebuild below costs the whole
			// queue, every block, which a backlog cannot afford (a node
			// behind by 100,000 transactions spent half its time here).
			if q != nil {
				ds = append(ds, sh.cutPassedLocked(na, q, headNonce)...)
			}
			sh.mu.Unlock()
			continue
		}
		var old []*Entry
		if q != nil {
			old = q.txs
		}
		// Candidates by nonce: those pending keep their place; returning
		// transactions (their block left the head chain) fill the gaps.
		byNonce := map[uint64]*Entry{}
		for _, e := range old {
			if e.Tx.Nonce() > headNonce {
				byNonce[e.Tx.Nonce()] = e
			}
		}
		for _, v := range back[na] {
			if _, ok := byNonce[v.Nonce()]; !ok && v.Nonce() > headNonce {
				byNonce[v.Nonce()] = &Entry{Tx: v, AddedMs: nowMs}
			}
		}
		keep := map[*Entry]bool{}
		var next []*Entry
		for n := headNonce + 1; len(next) < m.cfg.MaxPerAccount; n++ {
			e, ok := byNonce[n]
			if !ok {
				break
			}
			next = append(next, e)
			keep[e] = true
		}
		for _, e := range old {
			if !keep[e] {
				sh.byID.Delete(e.Tx.ID())
				ds = append(ds, e)
			}
		}
		for _, e := range next {
			if e.Seq == 0 { // returning transaction
				e.Seq = seqOf[e.Tx.ID()]
				m.count.Add(1)
				m.bytes.Add(int64(e.Tx.Size()))
				reserves = append(reserves, reserve{e.Tx.Payer(), e.Tx.RcLimit()})
			}
			sh.byID.Set(e.Tx.ID(), e)
		}
		if len(next) == 0 {
			sh.queues.Delete(na)
		} else {
			if q == nil {
				q = &queue{}
				sh.queues.Set(na, q)
			}
			q.txs = next
		}
		sh.mu.Unlock()
	}
	m.release(ds)
	// Returning transactions reserve without a mana check: the pool had
	// promised them once; a block that cannot pay leaves them out and the
	// producer removes them.
	for _, r := range reserves {
		sh := m.shardOf(r.payer)
		sh.mu.Lock()
		have, _ := sh.reserved.Get(r.payer)
		sum, carry := bits.Add64(have, r.rc, 0)
		if carry != 0 {
			sum = ^uint64(0)
		}
		sh.reserved.Set(r.payer, sum)
		sh.mu.Unlock()
	}
	return nil
}

// Expire drops transactions that have waited longer than the expiry, with
// the later nonces of their accounts.
func (m *Mempool) Expire(nowMs uint64) int {
	var ds dropped
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for na, q := range sh.queues.All() {
			if j := slices.IndexFunc(q.txs, func(e *Entry) bool { return e.AddedMs+m.cfg.ExpiryMs <= nowMs }); j >= 0 {
				ds = append(ds, sh.cutLocked(na, q, j)...)
			}
		}
		sh.mu.Unlock()
	}
	m.release(ds)
	m.expired.Add(uint64(len(ds)))
	return len(ds)
}

// Best returns up to n pending transactions in arrival order, never a
// nonce before its predecessor: what the producer should try next.
func (m *Mempool) Best(n int) []*Entry {
	if n <= 0 {
		return nil
	}
	var h queueHeap
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, q := range sh.queues.All() {
			if len(q.txs) > 0 {
				h = append(h, slices.Clone(q.txs))
			}
		}
		sh.mu.Unlock()
	}
	heap.Init(&h)
	out := make([]*Entry, 0, min(n, int(m.count.Load())+1))
	for len(h) > 0 && len(out) < n {
		q := h[0]
		out = append(out, q[0])
		if len(q) == 1 {
			heap.Pop(&h)
		} else {
			h[0] = q[1:]
			heap.Fix(&h, 0)
		}
	}
	return out
}

// queueHeap orders account queues by the arrival of their next entry.
type queueHeap [][]*Entry

func (h queueHeap) Len() int           { return len(h) }
func (h queueHeap) Less(i, j int) bool { return h[i][0].Seq < h[j][0].Seq }
func (h queueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *queueHeap) Push(x any)        { *h = append(*h, x.([]*Entry)) }
func (h *queueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Get returns the pending entries with the given ids (nil where unknown).
func (m *Mempool) Get(ids []koinos.Digest) []*Entry {
	out := make([]*Entry, len(ids))
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for j, id := range ids {
			if e, ok := sh.byID.Get(id); ok {
				out[j] = e
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// Count is the number of pending transactions of a nonce account.
func (m *Mempool) Count(a koinos.Address) int {
	sh := m.shardOf(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if q, _ := sh.queues.Get(a); q != nil {
		return len(q.txs)
	}
	return 0
}

// HasNonce reports whether account a has a pending transaction with nonce n.
func (m *Mempool) HasNonce(a koinos.Address, n uint64) bool {
	sh := m.shardOf(a)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	q, _ := sh.queues.Get(a)
	return q != nil && slices.ContainsFunc(q.txs, func(e *Entry) bool { return e.Tx.Nonce() == n })
}

// Reserved is the rc reserved by a payer's pending transactions.
func (m *Mempool) Reserved(payer koinos.Address) uint64 {
	sh := m.shardOf(payer)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, _ := sh.reserved.Get(payer)
	return r
}

// Stats is a snapshot of the pool for metrics.
type Stats struct {
	Transactions int64
	Bytes        int64
	Rejected     map[string]uint64 // by reason
	Expired      uint64
}

// Stats returns a snapshot.
func (m *Mempool) Stats() Stats {
	s := Stats{Transactions: m.count.Load(), Bytes: m.bytes.Load(), Rejected: map[string]uint64{}, Expired: m.expired.Load()}
	for r, i := range reasonIndex {
		s.Rejected[r] = m.rejected[i].Load()
	}
	return s
}

// Len is the number of pending transactions.
func (m *Mempool) Len() int { return int(m.count.Load()) }
