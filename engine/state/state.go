package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/emberchain/ember/engine/koinos"
)

// Storage is what Base reads from disk: a checkpointed value by serialized
// database_key. The store implements it; tests use a map.
type Storage interface {
	GetState(key []byte) (value []byte, found bool, err error)
	// SeekState returns the checkpointed key nearest after from (before
	// it, when reverse) among the keys that start with prefix.
	SeekState(prefix, from []byte, reverse bool) (key, value []byte, found bool, err error)
}

// Reader reads state at one point of the chain.
type Reader interface {
	// Account returns an account's record; found is false for an account
	// that never held tokens or used a nonce (its record is all zero).
	Account(a koinos.Address) (acct Account, found bool, err error)
	// Supply is the token's total supply.
	Supply() uint64
}

const numShards = 64

// DefaultMaxCached bounds the clean records Base keeps in memory.
const DefaultMaxCached = 4 << 20

// Base is the irreversible state.
type Base struct {
	store     Storage
	maxPerSh  int
	supply    atomic.Uint64
	supplyDty atomic.Bool
	shards    [numShards]shard
	objects   objectStore
}

type shard struct {
	mu sync.RWMutex
	m  map[koinos.Address]baseEntry
}

type baseEntry struct {
	acct   Account
	exists bool // false: a cached miss
	dirty  bool // changed since the last checkpoint
}

// NewBase opens the irreversible state over store. supply is the token
// supply as of the checkpoint. maxCached bounds clean cached records (0:
// DefaultMaxCached); changed records stay until the next checkpoint.
func NewBase(store Storage, supply uint64, maxCached int) *Base {
	if maxCached <= 0 {
		maxCached = DefaultMaxCached
	}
	b := &Base{store: store, maxPerSh: max(1, maxCached/numShards), objects: newObjectStore()}
	for i := range b.shards {
		b.shards[i].m = make(map[koinos.Address]baseEntry)
	}
	b.supply.Store(supply)
	return b
}

func (b *Base) shardOf(a koinos.Address) *shard {
	// The last bytes of an address are checksum bytes: uniformly spread.
	return &b.shards[a[24]%numShards]
}

// Account implements Reader.
func (b *Base) Account(a koinos.Address) (Account, bool, error) {
	sh := b.shardOf(a)
	sh.mu.RLock()
	e, ok := sh.m[a]
	sh.mu.RUnlock()
	if ok {
		return e.acct, e.exists, nil
	}
	v, found, err := b.store.GetState(AccountKey(a))
	if err != nil {
		return Account{}, false, fmt.Errorf("state: read account %s: %w", a, err)
	}
	if found {
		if e.acct, err = DecodeAccount(v); err != nil {
			return Account{}, false, fmt.Errorf("state: account %s: %w", a, err)
		}
		e.exists = true
	}
	sh.mu.Lock()
	if cur, ok := sh.m[a]; ok {
		e = cur // merged or loaded meanwhile: that value is newer
	} else {
		sh.evictLocked(b.maxPerSh)
		sh.m[a] = e
	}
	sh.mu.Unlock()
	return e.acct, e.exists, nil
}

// evictLocked drops clean entries once the shard is over its bound. Map
// iteration order is random enough to make this a random eviction.
func (sh *shard) evictLocked(limit int) {
	if len(sh.m) < limit {
		return
	}
	drop := len(sh.m) - limit*9/10
	for a, e := range sh.m {
		if drop <= 0 {
			return
		}
		if !e.dirty {
			delete(sh.m, a)
			drop--
		}
	}
}

// Supply implements Reader.
func (b *Base) Supply() uint64 { return b.supply.Load() }

// Merge folds a frozen delta into the base: its block became irreversible.
func (b *Base) Merge(d *Delta) {
	for a, acct := range d.accounts {
		sh := b.shardOf(a)
		sh.mu.Lock()
		sh.m[a] = baseEntry{acct: acct, exists: true, dirty: true}
		sh.mu.Unlock()
	}
	if d.supplySet {
		b.supply.Store(d.supply)
		b.supplyDty.Store(true)
	}
	b.mergeObjects(d)
}

// Set writes records straight into the base, for genesis.
func (b *Base) Set(a koinos.Address, acct Account) {
	sh := b.shardOf(a)
	sh.mu.Lock()
	sh.m[a] = baseEntry{acct: acct, exists: true, dirty: true}
	sh.mu.Unlock()
}

// SetSupply sets the supply straight into the base, for genesis.
func (b *Base) SetSupply(v uint64) {
	b.supply.Store(v)
	b.supplyDty.Store(true)
}

// TakeDirty returns every record changed since the last call, as state
// writes for a checkpoint, and marks them clean. The caller must persist
// them (or stop the node): they are no longer tracked.
func (b *Base) TakeDirty() []koinos.DeltaEntry {
	var out []koinos.DeltaEntry
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for a, e := range sh.m {
			if e.dirty {
				out = append(out, koinos.DeltaEntry{DatabaseKey: AccountKey(a), Value: e.acct.Encode(nil)})
				e.dirty = false
				sh.m[a] = e
			}
		}
		sh.mu.Unlock()
	}
	if b.supplyDty.Swap(false) {
		out = append(out, koinos.DeltaEntry{DatabaseKey: SupplyKey(), Value: EncodeSupply(b.supply.Load())})
	}
	return b.takeDirtyObjects(out)
}

// Cached reports how many records the base holds in memory.
func (b *Base) Cached() int {
	n := 0
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Delta is one block's state changes over its parent.
type Delta struct {
	parent    atomic.Pointer[Delta] // nil: directly over base
	base      *Base
	accounts  map[koinos.Address]Account
	supply    uint64
	supplySet bool
	// objects are the block's object writes by serialized database key;
	// nil until the first (a block of native transfers has none).
	objects map[string]objectValue
	journal []undo
	// objJournal holds the undo of each object write, in the order of the
	// journal's isObject entries: kept apart so that an account write's
	// undo (every transfer's) stays small.
	objJournal []objectUndo
	frozen     bool
}

type undo struct {
	addr      koinos.Address
	prev      Account
	had       bool // addr was in this delta before the write
	isSupply  bool
	prevSSet  bool
	prevSuppl uint64
	isObject  bool // the undo is objJournal's last entry
}

type objectUndo struct {
	key  string
	prev objectValue
	had  bool
}

// NewDelta starts a delta over parent (nil: over base).
func NewDelta(base *Base, parent *Delta, sizeHint int) *Delta {
	// The map is sized for the block, up to a bound (many transactions
	// touch the same accounts); the journal only ever holds the current
	// transaction's writes (Settle), a few entries.
	d := &Delta{base: base, accounts: make(map[koinos.Address]Account, min(sizeHint, 1<<14)), journal: make([]undo, 0, 16)}
	if parent != nil {
		d.parent.Store(parent)
	}
	return d
}

// scratchPool recycles the small deltas used to check one transaction off
// the head (mempool admission), one per submission.
var scratchPool = sync.Pool{New: func() any {
	return &Delta{accounts: make(map[koinos.Address]Account, 4), journal: make([]undo, 0, 16)}
}}

// Scratch returns an empty delta over parent (nil: over base) for a
// throwaway computation; give it back with Release when done. It holds
// account values, not references, so nothing read from it is affected.
func Scratch(base *Base, parent *Delta) *Delta {
	d := scratchPool.Get().(*Delta)
	d.base = base
	d.parent.Store(parent)
	return d
}

// Release returns a Scratch delta to the pool.
func (d *Delta) Release() {
	clear(d.accounts)
	d.objects = nil
	d.journal = d.journal[:0]
	d.objJournal = d.objJournal[:0]
	d.supplySet, d.supply, d.frozen = false, 0, false
	d.parent.Store(nil)
	d.base = nil
	scratchPool.Put(d)
}

// Parent returns the delta below d, or nil when d lies on the base.
func (d *Delta) Parent() *Delta { return d.parent.Load() }

// Detach puts d directly on the base: its parent was merged.
func (d *Delta) Detach() { d.parent.Store(nil) }

// Account implements Reader.
func (d *Delta) Account(a koinos.Address) (Account, bool, error) {
	for cur := d; cur != nil; cur = cur.parent.Load() {
		if acct, ok := cur.accounts[a]; ok {
			return acct, true, nil
		}
	}
	return d.base.Account(a)
}

// Supply implements Reader.
func (d *Delta) Supply() uint64 {
	for cur := d; cur != nil; cur = cur.parent.Load() {
		if cur.supplySet {
			return cur.supply
		}
	}
	return d.base.Supply()
}

var errFrozen = errors.New("state: write to a frozen delta")

// SetAccount writes an account record.
func (d *Delta) SetAccount(a koinos.Address, acct Account) {
	if d.frozen {
		panic(errFrozen) // a bug in the engine, never input-driven
	}
	prev, had := d.accounts[a]
	d.journal = append(d.journal, undo{addr: a, prev: prev, had: had})
	d.accounts[a] = acct
}

// SetSupply writes the token supply.
func (d *Delta) SetSupply(v uint64) {
	if d.frozen {
		panic(errFrozen)
	}
	d.journal = append(d.journal, undo{isSupply: true, prevSSet: d.supplySet, prevSuppl: d.supply})
	d.supply, d.supplySet = v, true
}

// Mark returns a point to Revert to.
func (d *Delta) Mark() int { return len(d.journal) }

// Settle forgets the journal: the writes so far are final and can no
// longer be reverted. A block settles between transactions, so the journal
// never holds more than one transaction's writes.
func (d *Delta) Settle() {
	d.journal = d.journal[:0]
	d.objJournal = d.objJournal[:0]
}

// Revert undoes every write since mark.
func (d *Delta) Revert(mark int) {
	for i := len(d.journal) - 1; i >= mark; i-- {
		u := d.journal[i]
		switch {
		case u.isSupply:
			d.supply, d.supplySet = u.prevSuppl, u.prevSSet
		case u.isObject:
			o := d.objJournal[len(d.objJournal)-1]
			d.objJournal = d.objJournal[:len(d.objJournal)-1]
			if o.had {
				d.objects[o.key] = o.prev
			} else {
				delete(d.objects, o.key)
			}
		case u.had:
			d.accounts[u.addr] = u.prev
		default:
			delete(d.accounts, u.addr)
		}
	}
	d.journal = d.journal[:mark]
}

// Freeze ends writing: the delta may now be read from any goroutine.
func (d *Delta) Freeze() {
	d.frozen = true
	d.journal = nil
	d.objJournal = nil
}

// Len is the number of records the delta changes.
func (d *Delta) Len() int {
	n := len(d.accounts) + len(d.objects)
	if d.supplySet {
		n++
	}
	return n
}

// Entries returns the delta as serialized state writes, unsorted.
func (d *Delta) Entries() []koinos.DeltaEntry {
	out := make([]koinos.DeltaEntry, 0, d.Len())
	for a, acct := range d.accounts {
		out = append(out, koinos.DeltaEntry{DatabaseKey: AccountKey(a), Value: acct.Encode(nil)})
	}
	if d.supplySet {
		out = append(out, koinos.DeltaEntry{DatabaseKey: SupplyKey(), Value: EncodeSupply(d.supply)})
	}
	for k, v := range d.objects {
		out = append(out, koinos.DeltaEntry{DatabaseKey: []byte(k), Value: v.value, Removed: v.removed})
	}
	return out
}

// MerkleRoot is the Koinos state merkle root of the delta, equal to
// koinos.StateMerkleRoot(d.Entries()) (TestDeltaMerkleRoot) but computed
// without building the entries: it runs once per block over every account
// the block changed, and the entries cost an allocation per key and per
// value and a sort of byte slices. Every account key is accountKeyPrefix
// followed by the fixed-size address, so account keys sort as their
// addresses do, and the supply key, the only other one, is placed among
// them by comparison.
func (d *Delta) MerkleRoot() koinos.Digest {
	if len(d.objects) > 0 {
		// Contract storage: keys of every shape, so the general sort.
		return koinos.StateMerkleRoot(d.Entries())
	}
	ents := make([]deltaAccount, 0, len(d.accounts))
	order := make([]uint64, 0, len(d.accounts))
	for a, acct := range d.accounts {
		order = append(order, uint64(binary.BigEndian.Uint32(a[:4]))<<32|uint64(len(ents)))
		ents = append(ents, deltaAccount{a, acct})
	}
	// Each entry sorts as its address's first four bytes above its index,
	// so that the sort compares integers without a comparison function
	// (the whole root 10% faster for 1,000 accounts, BenchmarkDeltaMerkleRoot);
	// entries whose first four bytes tie (the first byte is the version,
	// so a few per block at most) are then ordered by the whole address.
	slices.Sort(order)
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && order[j]>>32 == order[i]>>32 {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(order[i:j], func(x, y uint64) int {
				return bytes.Compare(ents[uint32(x)].addr[4:], ents[uint32(y)].addr[4:])
			})
		}
		i = j
	}
	supplyAt := -1
	var supplyLeaves [2]koinos.Digest
	if d.supplySet {
		supplyAt, _ = slices.BinarySearchFunc(order, supplyKey, func(o uint64, k []byte) int {
			var buf [accountKeyMax]byte
			return bytes.Compare(appendAccountKey(buf[:0], ents[uint32(o)].addr), k)
		})
		supplyLeaves = [2]koinos.Digest{sha256.Sum256(supplyKey), sha256.Sum256(EncodeSupply(d.supply))}
	}
	lp := leavesPool.Get().(*[]koinos.Digest)
	leaves := (*lp)[:0]
	var key [accountKeyMax]byte
	var val [4 * (1 + binary.MaxVarintLen64)]byte
	for i, o := range order {
		if i == supplyAt {
			leaves = append(leaves, supplyLeaves[:]...)
		}
		e := &ents[uint32(o)]
		leaves = append(leaves, sha256.Sum256(appendAccountKey(key[:0], e.addr)), sha256.Sum256(e.acct.Encode(val[:0])))
	}
	if supplyAt == len(order) {
		leaves = append(leaves, supplyLeaves[:]...)
	}
	root := koinos.MerkleRoot(leaves)
	*lp = leaves[:0]
	leavesPool.Put(lp)
	return root
}

// deltaAccount is one changed account, for MerkleRoot.
type deltaAccount struct {
	addr koinos.Address
	acct Account
}

var (
	supplyKey  = SupplyKey()
	leavesPool = sync.Pool{New: func() any { return new([]koinos.Digest) }}
)

// accountKeyMax bounds an account key, for buffers on the stack.
const accountKeyMax = 64
