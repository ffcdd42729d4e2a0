package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// The indexer keeps the transaction index and account history as a
// consumer of the event log, outside the block's synced batch (doc.go,
// "Indexes"), as Koinos's transaction_store and account_history services
// follow block.accept. IndexStep writes the index entries of a run of log
// records and the indexer's cursor in one unsynced batch: after a crash
// the indexes and the cursor roll back together, and the records after
// the cursor are indexed again.

// IndexConsumer is the indexer's name among the log's consumers.
const IndexConsumer = "index"

// ErrIndexRebuilding is returned (wrapped) by IndexStep and the index
// reads of a store whose Reindex did not finish.
var ErrIndexRebuilding = errors.New("store: the indexes are being rebuilt")

// maxPendingTxs bounds the transactions of the committed blocks kept in
// memory for the indexer (decoding a transfer allocates about 2.4 KB, so
// about 160 MB); past it the indexer decodes the blocks from the store.
const maxPendingTxs = 1 << 16

// maxUnindexedScan bounds the blocks a transaction lookup reads because
// the index has not reached them; further behind, the lookup fails and
// says so.
const maxUnindexedScan = 256

// pendingRecord is a log record committed but not yet indexed, with the
// block it names while it is held in memory.
type pendingRecord struct {
	seq   uint64
	kind  LogKind
	id    koinos.Digest
	entry *chain.BlockEntry // nil when not kept (maxPendingTxs)
	at    time.Time         // when it was committed (zero: before the store opened)
}

// IndexReport says what one IndexStep did.
type IndexReport struct {
	Records int // log records indexed (0: caught up)
	// Lag is the longest any of them waited since its commit, for the
	// records committed since the store opened (index lag).
	Lag time.Duration
}

// indexState is the indexer's: only IndexStep and Reindex use it.
type indexState struct {
	sync.Mutex
	on             bool        // some index is kept
	rebuildingFlag atomic.Bool // cursor.flags has cursorRebuilding, for readers
	cursor         cursorValue
	broken         error
	batch          *pebble.Batch
	key, val       []byte
	counters       counterCache
	hist           histAgg
	txs            []txRef
}

// rebuilding reports whether a Reindex did not finish.
func (ix *indexState) rebuilding() bool { return ix.rebuildingFlag.Load() }

// pendingState holds the log records after the indexer's cursor: the
// commit path adds, the indexer removes, lookups read.
type pendingState struct {
	sync.Mutex
	recs []pendingRecord
	txs  int // transactions of the entries held
}

// openIndexer loads the indexer's cursor, creating it on a store that has
// none: at the log's end, with account history complete to the last
// irreversible block (a store from before the log kept both indexes in
// each block's batch, and a new store has no blocks), then lists the
// records it has yet to index.
func (s *Store) openIndexer() error {
	s.ix.on = !s.noTxIndex || !s.noHistory
	s.ix.counters = newCounterCache(s.maxHistoryCounters)
	if !s.ix.on {
		return nil
	}
	c, found, err := s.loadCursor(IndexConsumer)
	if err != nil {
		return err
	}
	if !found {
		st := s.state.Load()
		c = cursorValue{next: st.nextSeq, aux: st.meta.LIB.Height}
		if err := s.db.Set(cursorKey(IndexConsumer), encodeCursor(nil, c), pebble.Sync); err != nil {
			return fmt.Errorf("store: write the indexer's cursor: %w", err)
		}
	}
	s.ix.cursor = c
	s.elog.mu.Lock()
	s.elog.consumers[IndexConsumer] = c.next
	s.elog.mu.Unlock()
	if c.flags&cursorRebuilding != 0 {
		s.ix.rebuildingFlag.Store(true)
		s.log.Error("the indexes are incomplete: a reindex did not finish; stop the node and run ember reindex")
		return nil
	}
	// The records after the cursor, for lookups (no entries: the indexer
	// reads those blocks from the store).
	for from := c.next; from < s.state.Load().nextSeq; {
		recs, err := s.ReadLog(from, 1024)
		if err != nil {
			return fmt.Errorf("store: the indexer's records: %w", err)
		}
		for i := range recs {
			s.pending.recs = append(s.pending.recs, pendingRecord{seq: recs[i].Seq, kind: recs[i].Kind, id: recs[i].Block.ID})
		}
		from = recs[len(recs)-1].Next()
	}
	return nil
}

// unindexedAccepted queues a commit's records for the indexer, with the
// blocks they name (recs and r are those of the commit just written).
func (s *Store) unindexedAccepted(recs []LogRecord, r *chain.Ready) {
	if !s.ix.on || len(recs) == 0 {
		return
	}
	p := &s.pending
	p.Lock()
	defer p.Unlock()
	acc, irr := r.Accepted, r.Irreversible
	now := time.Now()
	for i := range recs {
		pr := pendingRecord{seq: recs[i].Seq, kind: recs[i].Kind, id: recs[i].Block.ID, at: now}
		switch pr.kind {
		case LogBlockAccepted:
			pr.entry, acc = acc[0], acc[1:]
		case LogIrreversible:
			for len(irr) > 0 && irr[0].ID != pr.id {
				irr = irr[1:] // already irreversible before this commit
			}
			if len(irr) > 0 {
				pr.entry, irr = irr[0], irr[1:]
			}
		}
		if pr.entry != nil {
			// A block is kept when none is, whatever its size: the
			// indexer is usually one block behind.
			if n := len(pr.entry.Block.Transactions); p.txs+n > maxPendingTxs && p.txs > 0 {
				pr.entry = nil
			} else {
				p.txs += n
			}
		}
		p.recs = append(p.recs, pr)
	}
}

// IndexLag is how far the indexer is behind the log: records and sequence
// numbers.
func (s *Store) IndexLag() (records int, seqs uint64) {
	s.pending.Lock()
	records = len(s.pending.recs)
	s.pending.Unlock()
	s.elog.mu.Lock()
	c, ok := s.elog.consumers[IndexConsumer]
	s.elog.mu.Unlock()
	if ok {
		seqs = s.state.Load().nextSeq - c
	}
	return records, seqs
}

// IndexStep indexes up to max log records after the indexer's cursor and
// reports how many it indexed (0: caught up). One goroutine calls it (the
// node's indexer service).
func (s *Store) IndexStep(max int) (IndexReport, error) {
	if err := s.checkOpen(); err != nil {
		return IndexReport{}, err
	}
	var rep IndexReport
	n, oldest, err := s.indexStep(max)
	if err == nil && n > 0 {
		rep.Records = n
		if !oldest.IsZero() {
			rep.Lag = time.Since(oldest)
		}
	}
	return rep, err
}

func (s *Store) indexStep(max int) (int, time.Time, error) {
	var oldest time.Time
	ix := &s.ix
	ix.Lock()
	defer ix.Unlock()
	if !ix.on {
		return 0, oldest, nil
	}
	if ix.broken != nil {
		return 0, oldest, fmt.Errorf("store: a previous index step failed, reopen the store: %w", ix.broken)
	}
	if ix.cursor.flags&cursorRebuilding != 0 {
		return 0, oldest, fmt.Errorf("%w: a reindex did not finish; stop the node and run ember reindex", ErrIndexRebuilding)
	}
	recs, err := s.ReadLog(ix.cursor.next, max)
	var gap *LogGapError
	if errors.As(err, &gap) {
		// The log's cap dropped records the indexer had not reached: the
		// indexes miss those blocks for good. Say so on every read until
		// they are rebuilt, rather than stop the node.
		mark := ix.cursor
		mark.flags |= cursorRebuilding
		if werr := s.db.Set(cursorKey(IndexConsumer), encodeCursor(nil, mark), pebble.Sync); werr != nil {
			return 0, oldest, fmt.Errorf("store: mark the indexes incomplete: %w", werr)
		}
		ix.cursor = mark
		ix.rebuildingFlag.Store(true)
		s.log.Error("the indexes are incomplete: the event log dropped records the indexer had not reached; stop the node and run ember reindex", "err", err)
		return 0, oldest, fmt.Errorf("%w (run ember reindex): %w", ErrIndexRebuilding, err)
	}
	if err != nil || len(recs) == 0 {
		return 0, oldest, err
	}
	// The blocks, from memory when the commit left them there.
	entries := make([]*chain.BlockEntry, len(recs))
	s.pending.Lock()
	for i, j := 0, 0; i < len(recs) && j < len(s.pending.recs); j++ {
		if pr := &s.pending.recs[j]; pr.seq == recs[i].Seq {
			entries[i] = pr.entry
			if oldest.IsZero() || !pr.at.IsZero() && pr.at.Before(oldest) {
				oldest = pr.at
			}
			i++
		}
	}
	s.pending.Unlock()
	if ix.batch == nil {
		ix.batch = s.db.NewBatch(pebble.WithMaxRetainedSizeBytes(16 << 20))
	} else {
		ix.batch.Reset()
	}
	b := ix.batch
	next := ix.cursor
	var irreversible []*chain.BlockEntry
	for i := range recs {
		r := &recs[i]
		want := r.Kind == LogBlockAccepted && !s.noTxIndex || r.Kind == LogIrreversible && !s.noHistory
		if want && entries[i] == nil {
			if entries[i], err = s.entry(s.db, r.Block.ID, -1); err != nil {
				return 0, oldest, fmt.Errorf("store: index block %d (0x%x): %w", r.Block.Height, r.Block.ID.Multihash(), err)
			}
		}
		switch {
		case !want:
		case r.Kind == LogBlockAccepted:
			if err := ix.addTxs(b, entries[i]); err != nil {
				return 0, oldest, err
			}
		case r.Kind == LogIrreversible:
			irreversible = append(irreversible, entries[i])
			next.aux = r.Block.Height
		}
		next.next = r.Next()
	}
	// From here on, failing leaves the history counters ahead of the disk.
	if err := s.indexHistory(b, irreversible); err != nil {
		ix.broken = err
		return 0, oldest, err
	}
	ix.key = cursorKey(IndexConsumer)
	ix.val = encodeCursor(ix.val[:0], next)
	_ = b.Set(ix.key, ix.val, nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		ix.broken = fmt.Errorf("store: index: %w", err)
		return 0, oldest, ix.broken
	}
	ix.cursor = next
	s.elog.mu.Lock()
	s.elog.consumers[IndexConsumer] = next.next
	s.elog.mu.Unlock()
	s.pending.Lock()
	k := 0
	for k < len(s.pending.recs) && s.pending.recs[k].seq < next.next {
		if e := s.pending.recs[k].entry; e != nil {
			s.pending.txs -= len(e.Block.Transactions)
		}
		k++
	}
	s.pending.recs = append(s.pending.recs[:0], s.pending.recs[k:]...)
	s.pending.Unlock()
	return len(recs), oldest, nil
}

// addTxs adds the transaction index entries of a block, in key order:
// Pebble's memtable inserts of nearby keys share cache lines (doc.go).
func (ix *indexState) addTxs(b *pebble.Batch, e *chain.BlockEntry) error {
	txs := ix.txs[:0]
	for i, tx := range e.Block.Transactions {
		var prefix uint64
		if e.Txs != nil {
			d := e.Txs[i].ID()
			prefix = binary.BigEndian.Uint64(d[:])
		} else if len(tx.Id) == koinos.MultihashSize {
			prefix = binary.BigEndian.Uint64(tx.Id[2:])
		} else {
			return fmt.Errorf("store: block %d transaction %d has an id of %d bytes", e.Height, i, len(tx.Id))
		}
		txs = append(txs, txRef{prefix, uint32(i)})
	}
	slices.SortFunc(txs, func(a, b txRef) int { return cmp.Compare(a.prefix, b.prefix) })
	ix.txs = txs
	var id [txKeyIDLen]byte
	for _, t := range txs {
		binary.BigEndian.PutUint64(id[:], t.prefix)
		ix.key = txKey(ix.key[:0], id[:], e.ID)
		ix.val = binary.AppendUvarint(ix.val[:0], uint64(t.index))
		_ = b.Set(ix.key, ix.val, nil)
	}
	return nil
}

// txRef is a transaction index entry before it is written.
type txRef struct {
	prefix uint64 // the first 8 bytes of the transaction id
	index  uint32
}

// unindexedBlocks returns the accepted blocks the transaction index has not
// reached, oldest first, with their entries where memory holds them.
func (s *Store) unindexedBlocks() ([]pendingRecord, error) {
	s.pending.Lock()
	var out []pendingRecord
	for _, r := range s.pending.recs {
		if r.kind == LogBlockAccepted {
			out = append(out, r)
		}
	}
	s.pending.Unlock()
	if len(out) > maxUnindexedScan {
		return nil, fmt.Errorf("store: the transaction index is %d blocks behind the chain (catching up); retry shortly", len(out))
	}
	return out, nil
}
