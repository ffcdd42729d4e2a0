package store

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// ReindexProgress reports a Reindex's progress: the stage ("transactions"
// or "history"), blocks done and the stage's total.
type ReindexProgress func(stage string, done, total uint64)

// reindexBatchKeys is how many index keys a Reindex writes per batch.
const reindexBatchKeys = 64 << 10

// Reindex rebuilds the transaction index and account history from the
// stored blocks: every block on every fork for the transaction index, the
// irreversible chain for account history. It is for a stopped node (ember
// reindex): no commit may run meanwhile. The indexer's cursor is marked
// rebuilding first, so an interrupted Reindex leaves a store whose index
// reads fail and whose indexer refuses to run until Reindex completes.
func (s *Store) Reindex(progress ReindexProgress) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if progress == nil {
		progress = func(string, uint64, uint64) {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ix := &s.ix
	ix.Lock()
	defer ix.Unlock()
	if !ix.on {
		return fmt.Errorf("%w: this store keeps neither index (store.transaction_index and store.account_history are off)", ErrIndexOff)
	}
	st := s.state.Load()
	mark := ix.cursor
	mark.flags |= cursorRebuilding
	if err := s.db.Set(cursorKey(IndexConsumer), encodeCursor(nil, mark), pebble.Sync); err != nil {
		return fmt.Errorf("store: reindex: %w", err)
	}
	ix.cursor = mark
	ix.rebuildingFlag.Store(true)
	for _, space := range []byte{spaceTx, spaceHistory} {
		if err := s.db.DeleteRange([]byte{space}, []byte{space + 1}, pebble.NoSync); err != nil {
			return fmt.Errorf("store: reindex: clear index %c: %w", space, err)
		}
	}
	ix.counters = newCounterCache(s.maxHistoryCounters)
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	flush := func(force bool) error {
		if b.Count() == 0 || (!force && b.Count() < reindexBatchKeys) {
			return nil
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("store: reindex: %w", err)
		}
		b.Reset()
		return nil
	}

	if !s.noTxIndex {
		ids, err := s.allBlockIDs()
		if err != nil {
			return err
		}
		for i, id := range ids {
			e, err := s.decodeBlock(s.db, id, -1)
			if err != nil {
				return fmt.Errorf("store: reindex: %w", err)
			}
			if err := ix.addTxs(b, e); err != nil {
				return err
			}
			if err := flush(false); err != nil {
				return err
			}
			progress("transactions", uint64(i+1), uint64(len(ids)))
		}
		if err := flush(true); err != nil {
			return err
		}
	}
	if !s.noHistory && st.meta.LIB.Height > 0 {
		total := st.meta.LIB.Height
		err := s.CanonicalBlocks(1, total, func(e *chain.BlockEntry) error {
			// indexHistory may evict counters when the cache is full,
			// and an evicted counter is reloaded from the database:
			// the batch must be written first.
			if len(ix.counters.m) >= ix.counters.max {
				if err := flush(true); err != nil {
					return err
				}
			}
			if err := s.indexHistory(b, []*chain.BlockEntry{e}); err != nil {
				return err
			}
			if err := flush(false); err != nil {
				return err
			}
			progress("history", e.Height, total)
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: reindex: %w", err)
		}
		if err := flush(true); err != nil {
			return err
		}
	}
	done := cursorValue{next: st.nextSeq, aux: st.meta.LIB.Height}
	if err := s.db.Set(cursorKey(IndexConsumer), encodeCursor(nil, done), pebble.Sync); err != nil {
		return fmt.Errorf("store: reindex: %w", err)
	}
	ix.cursor = done
	ix.broken = nil
	ix.rebuildingFlag.Store(false)
	s.elog.mu.Lock()
	s.elog.consumers[IndexConsumer] = done.next
	s.elog.mu.Unlock()
	s.pending.Lock()
	s.pending.recs, s.pending.txs = nil, 0
	s.pending.Unlock()
	return nil
}

// allBlockIDs lists every stored block.
func (s *Store) allBlockIDs() ([]koinos.Digest, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceBlock}, UpperBound: []byte{spaceBlock + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	var ids []koinos.Digest
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != blockKeyLen {
			return nil, corruptStore("block key of %d bytes", len(k))
		}
		ids = append(ids, koinos.Digest(k[1:]))
	}
	return ids, it.Error()
}
