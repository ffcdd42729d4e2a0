package store

import (
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// MaxHistoryLimit caps HistoryQuery.Limit, as Koinos's account_history
// does.
const MaxHistoryLimit = 500

// HistoryQuery selects part of an account's history.
type HistoryQuery struct {
	// Seq is where to start; nil: the first record ascending, the latest
	// descending.
	Seq *uint64
	// Limit is the most records returned, capped at MaxHistoryLimit.
	Limit int
	// Ascending walks toward newer records.
	Ascending bool
	// Irreversible restricts the history to irreversible blocks; otherwise
	// it also holds the head chain's blocks above the LIB.
	Irreversible bool
}

// HistoryEntry is one record of an account's history: a transaction with
// its receipt, or a block header with the block's receipt. The messages
// are shared with the store's cache: do not modify them.
type HistoryEntry struct {
	Seq          uint64
	Tx           *protocol.Transaction
	TxReceipt    *protocol.TransactionReceipt
	BlockHeader  *protocol.BlockHeader
	BlockReceipt *protocol.BlockReceipt
}

// AccountHistory returns records of addr's history with Koinos's
// semantics: seq numbers count an address's records from 0, in chain
// order (within a block, the block record first, then its transactions).
// Records of irreversible blocks come from the index; unless
// q.Irreversible, those of the head chain above the LIB follow, numbered
// on from the indexed ones, found by reading those blocks. A start past
// the last record gives no records. All reads see one snapshot, so the
// index and the head agree even while blocks are committed. Block records
// carry their whole block receipt, so a query stops early (fewer records
// than Limit; page on by seq) once its block records would decode more
// than Options.MaxReadTransactions transactions; the first is always read.
func (s *Store) AccountHistory(addr koinos.Address, q HistoryQuery) ([]HistoryEntry, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if s.noHistory {
		return nil, fmt.Errorf("%w: this node keeps no account history (store.account_history = false)", ErrIndexOff)
	}
	limit := min(q.Limit, MaxHistoryLimit)
	if limit <= 0 {
		return nil, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	hq := &historyQuery{s: s, r: snap, addr: addr, budget: s.newReadBudget()}
	defer hq.close()
	var err error
	if hq.st, err = metaAt(snap); err != nil || !hq.st.found {
		return nil, err
	}
	if hq.histHeight, err = historyHeightAt(snap); err != nil {
		return nil, err
	}
	if err := hq.open(); err != nil {
		return nil, err
	}

	var out []HistoryEntry
	emit := func(seq uint64) (bool, error) {
		e, ok, err := hq.at(seq, q.Irreversible)
		if errors.Is(err, errReadBudget) {
			return false, nil // fewer records; the caller pages on by seq
		}
		if err != nil || !ok {
			return false, err
		}
		e.Seq = seq
		out = append(out, e)
		return true, nil
	}
	if q.Ascending {
		seq := uint64(0)
		if q.Seq != nil {
			seq = *q.Seq
		}
		for len(out) < limit {
			ok, err := emit(seq)
			if err != nil {
				return nil, err
			}
			if !ok || seq == math.MaxUint64 {
				break
			}
			seq++
		}
		return out, nil
	}
	var seq uint64
	if q.Seq != nil {
		seq = *q.Seq
	} else {
		total, err := hq.total(q.Irreversible)
		if err != nil || total == 0 {
			return nil, err
		}
		seq = total - 1
	}
	for len(out) < limit {
		ok, err := emit(seq)
		if err != nil {
			return nil, err
		}
		if !ok || seq == 0 {
			break
		}
		seq--
	}
	return out, nil
}

func metaAt(r reader) (metaState, error) {
	var st metaState
	err := with(r, keyMeta, func(v []byte) error {
		var err error
		st, err = decodeMeta(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return metaState{}, nil
	}
	if err != nil {
		return st, fmt.Errorf("store: %w", err)
	}
	return st, nil
}

// historyQuery serves one AccountHistory call.
type historyQuery struct {
	s    *Store
	r    reader
	addr koinos.Address
	st   metaState

	it      *pebble.Iterator
	indexed uint64 // records in the index

	// The current index key.
	cur      historyValue
	curFirst uint64
	curValid bool

	// histHeight is the height the indexer has written account history
	// to; records of the head chain above it are found by reading those
	// blocks, loaded on first need. The first headIrr of them are in
	// irreversible blocks.
	histHeight uint64
	head       []headRecord
	headIrr    int
	headLoaded bool

	// What the query may still decode for block records (whole blocks
	// with their receipts).
	budget readBudget

	// The last block and frame read, since neighbouring records usually
	// share them.
	canonHeight uint64
	canonID     koinos.Digest
	frameBlock  koinos.Digest
	frameIdx    int
	frameTxs    int
	frameItems  []item
}

type headRecord struct {
	e     *chain.BlockEntry
	entry int
}

func (q *historyQuery) open() error {
	prefix := append([]byte{spaceHistory}, q.addr[:]...)
	var err error
	if q.it, err = q.r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)}); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if q.it.Last() {
		first, hv, err := decodeHistory(q.it.Key(), q.it.Value())
		if err != nil {
			return fmt.Errorf("store: account history of %s: %w", q.addr, err)
		}
		q.indexed = first + uint64(len(hv.entries))
	} else if err := q.it.Error(); err != nil {
		return fmt.Errorf("store: account history of %s: %w", q.addr, err)
	}
	return nil
}

func (q *historyQuery) close() {
	if q.it != nil {
		_ = q.it.Close()
	}
}

// total is the number of records visible to the query.
func (q *historyQuery) total(irreversible bool) (uint64, error) {
	if err := q.loadHead(); err != nil {
		return 0, err
	}
	if irreversible {
		return q.indexed + uint64(q.headIrr), nil
	}
	return q.indexed + uint64(len(q.head)), nil
}

// at returns record seq, or ok=false past the last one.
func (q *historyQuery) at(seq uint64, irreversible bool) (HistoryEntry, bool, error) {
	if seq < q.indexed {
		height, entry, err := q.indexedAt(seq)
		if err != nil {
			return HistoryEntry{}, false, err
		}
		e, err := q.resolve(height, entry)
		return e, err == nil, err
	}
	if err := q.loadHead(); err != nil {
		return HistoryEntry{}, false, err
	}
	j, n := seq-q.indexed, len(q.head)
	if irreversible {
		n = q.headIrr
	}
	if j >= uint64(n) {
		return HistoryEntry{}, false, nil
	}
	return recordOf(q.head[j].e, q.head[j].entry), true, nil
}

func recordOf(e *chain.BlockEntry, entry int) HistoryEntry {
	if entry == entryBlock {
		return HistoryEntry{BlockHeader: e.Block.Header, BlockReceipt: e.Receipt}
	}
	return HistoryEntry{Tx: e.Block.Transactions[entry-1], TxReceipt: e.Receipt.TransactionReceipts[entry-1]}
}

// indexedAt finds the block height and entry of an indexed record.
func (q *historyQuery) indexedAt(seq uint64) (uint64, uint32, error) {
	if !q.curValid || seq < q.curFirst || seq >= q.curFirst+uint64(len(q.cur.entries)) {
		k := historyKey(nil, &q.addr, seq+1) // seq < indexed, so no overflow
		if !q.it.SeekLT(k) {
			if err := q.it.Error(); err != nil {
				return 0, 0, fmt.Errorf("store: account history of %s: %w", q.addr, err)
			}
			return 0, 0, corruptStore("account history of %s has no key for record %d", q.addr, seq)
		}
		first, hv, err := decodeHistory(q.it.Key(), q.it.Value())
		if err != nil {
			return 0, 0, fmt.Errorf("store: account history of %s: %w", q.addr, err)
		}
		if seq >= first+uint64(len(hv.entries)) {
			return 0, 0, corruptStore("account history of %s has a gap at record %d", q.addr, seq)
		}
		q.cur, q.curFirst, q.curValid = hv, first, true
	}
	return q.cur.height, q.cur.entries[seq-q.curFirst], nil
}

// resolve reads an indexed record from its irreversible block: the whole
// block for a block record (its receipt holds every transaction's), one
// frame for a transaction.
func (q *historyQuery) resolve(height uint64, entry uint32) (HistoryEntry, error) {
	if !(q.canonHeight == height && height != 0) {
		id, err := canonID(q.r, height)
		if err != nil {
			return HistoryEntry{}, fmt.Errorf("store: account history of %s names block %d: %w", q.addr, height, err)
		}
		q.canonHeight, q.canonID = height, id
	}
	id := q.canonID
	if entry == entryBlock {
		e, err := q.s.entry(q.r, id, q.budget.limit())
		if err != nil {
			return HistoryEntry{}, err
		}
		q.budget.spend(e)
		return recordOf(e, entryBlock), nil
	}
	i := int(entry) - 1
	if e := q.s.decoded.get(id); e != nil {
		if i >= len(e.Block.Transactions) {
			return HistoryEntry{}, corruptStore("account history names transaction %d of block %d, which has %d", i, height, len(e.Block.Transactions))
		}
		return recordOf(e, int(entry)), nil
	}
	it, err := q.itemAt(id, height, i)
	if err != nil {
		return HistoryEntry{}, err
	}
	tx, err := it.decodeTx()
	if err != nil {
		return HistoryEntry{}, fmt.Errorf("store: block %d: %w", height, err)
	}
	rc, err := it.decodeReceipt()
	if err != nil {
		return HistoryEntry{}, fmt.Errorf("store: block %d: %w", height, err)
	}
	return HistoryEntry{Tx: tx, TxReceipt: rc}, nil
}

// itemAt returns transaction i of a block, decompressing its frame unless
// it is the frame read last.
func (q *historyQuery) itemAt(id koinos.Digest, height uint64, i int) (item, error) {
	if q.frameItems != nil && q.frameBlock == id && i/q.frameTxs == q.frameIdx {
		return q.frameItems[i%q.frameTxs], nil
	}
	err := with(q.r, blockKey(nil, id), func(v []byte) error {
		r, err := parseRecord(v)
		if err != nil {
			return err
		}
		if i >= r.ntx {
			return corrupt("account history names transaction %d of block %d, which has %d", i, height, r.ntx)
		}
		f := i / r.frameTxs
		raw, err := r.frame(q.s.dec, f)
		if err != nil {
			return err
		}
		// The items point into raw, which the query owns: they outlive
		// the Pebble value.
		items := make([]item, r.frameTxCount(f))
		for k := range items {
			if items[k], raw, err = nextItem(raw); err != nil {
				return err
			}
		}
		q.frameBlock, q.frameIdx, q.frameTxs, q.frameItems = id, f, r.frameTxs, items
		return nil
	})
	if err != nil {
		return item{}, fmt.Errorf("store: block %d: %w", height, err)
	}
	return q.frameItems[i%q.frameTxs], nil
}

// loadHead finds the records of the head chain above the height the
// indexer has reached by reading those blocks: the indexer writes account
// history once blocks are irreversible, some time after their commit.
func (q *historyQuery) loadHead() error {
	if q.headLoaded {
		return nil
	}
	q.headLoaded = true
	lib, head := q.st.meta.LIB, q.st.meta.Head
	if q.histHeight > lib.Height {
		return corruptStore("account history is indexed to block %d, above the last irreversible block %d", q.histHeight, lib.Height)
	}
	if head.Height <= q.histHeight {
		return nil
	}
	if head.Height-q.histHeight > maxUnindexedScan {
		return fmt.Errorf("store: account history is indexed to block %d, %d blocks behind the head (catching up); retry shortly", q.histHeight, head.Height-q.histHeight)
	}
	chainUp := make([]*chain.BlockEntry, head.Height-q.histHeight)
	id := head.ID
	for i := len(chainUp) - 1; i >= 0; i-- {
		e, err := q.s.entry(q.r, id, -1) // errors say which block
		if err != nil {
			return err
		}
		if e.Height == lib.Height && e.ID != lib.ID {
			return corruptStore("the head chain does not lead to the last irreversible block")
		}
		chainUp[i] = e
		id = e.Previous
	}
	for _, e := range chainUp {
		for k := 0; k <= len(e.Block.Transactions); k++ {
			if matches(&q.addr, e.Block, e.Receipt, k) {
				q.head = append(q.head, headRecord{e, k})
				if e.Height <= lib.Height {
					q.headIrr++
				}
			}
		}
	}
	return nil
}

// historyHeightAt reads the height the indexer has written account
// history to, in r.
func historyHeightAt(r reader) (uint64, error) {
	var h uint64
	err := with(r, cursorKey(IndexConsumer), func(v []byte) error {
		c, err := decodeCursor(v)
		h = c.aux
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: the indexer's cursor: %w", err)
	}
	return h, nil
}
