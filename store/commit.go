package store

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// Commit makes r durable as one Pebble batch: its blocks, the canonical
// index of the blocks that became irreversible, the state checkpoint, the
// step's event log records and the metadata. Unless Options.NoSync, the batch is synced before Commit
// returns, so the caller may then Advance the chain and publish.
func (s *Store) Commit(r *chain.Ready) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	return s.commitLocked(r, s.wopts)
}

// CommitGroup commits several Readies, in order, with one sync at the end:
// the way to persist blocks during sync, where an fsync per block would
// cost more than the blocks. Each Ready is still its own batch, so a crash
// keeps a prefix of the group, each Ready whole (the WAL replays batches in
// order and stops at the first incomplete one). Batches rather than one
// merged batch: each stays the size of a block, under Pebble's large-batch
// threshold, and the account history counters of a Ready see the Readies
// before it. Nothing in the group is durable until CommitGroup returns.
func (s *Store) CommitGroup(rs []*chain.Ready) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	for i, r := range rs {
		wo := pebble.NoSync
		if i == len(rs)-1 {
			wo = s.wopts
		}
		if err := s.commitLocked(r, wo); err != nil {
			return fmt.Errorf("%w (Ready %d of %d; the ones before it are written but may not be synced)", err, i+1, len(rs))
		}
	}
	return nil
}

func (s *Store) usableLocked() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.mu.broken != nil {
		return fmt.Errorf("store: a previous commit failed, reopen the store: %w", s.mu.broken)
	}
	return nil
}

// forkChange is a fork marker added or removed by a commit, applied to
// the in-memory set once the batch is written.
type forkChange struct {
	id     koinos.Digest
	height uint64
}

// commitLocked builds and writes the batch of one Ready: its blocks, the
// canonical index, fork markers, checkpoint, the step's event log records
// and the metadata. Everything that can fail on bad input (encoding,
// checks) comes before the write and leaves memory untouched. The
// transaction index and account history are not in this batch: the
// indexer (indexer.go) follows the event log and writes them.
func (s *Store) commitLocked(r *chain.Ready, wo *pebble.WriteOptions) error {
	prev := s.state.Load()
	if prev.found {
		if r.Meta.ChainID != prev.meta.ChainID {
			return fmt.Errorf("store: Ready for chain 0x%x, but the store holds chain 0x%x", r.Meta.ChainID.Multihash(), prev.meta.ChainID.Multihash())
		}
		if r.Meta.LIB.Height < prev.meta.LIB.Height {
			return fmt.Errorf("store: Ready moves the last irreversible block back from %d to %d", prev.meta.LIB.Height, r.Meta.LIB.Height)
		}
	}
	next := &metaState{found: true, meta: r.Meta, highest: prev.highest}
	b := s.batchLocked()
	var added, removed []forkChange

	for _, e := range r.Accepted {
		if err := s.addBlockLocked(b, e); err != nil {
			return err
		}
		if e.Height > next.highest.Height {
			next.highest = e.Topology
		}
		if e.Height > r.Meta.LIB.Height {
			s.mu.key = forkKey(s.mu.key[:0], e.Height, e.ID)
			_ = b.Set(s.mu.key, nil, nil)
			added = append(added, forkChange{e.ID, e.Height})
		}
	}
	for _, e := range r.Irreversible {
		if e.Height <= prev.meta.LIB.Height {
			continue // written by an earlier commit
		}
		s.mu.key = canonKey(s.mu.key[:0], e.Height)
		_ = b.Set(s.mu.key, e.ID[:], nil)
	}
	// The step's events, in the same batch as what they report, after
	// the admissions queued before it.
	recs, seq, err := s.queuedRecordsLocked(prev.nextSeq, s.mu.recs[:0])
	s.mu.recs = recs
	if err != nil {
		return err
	}
	s.mu.recs, next.nextSeq = logRecordsOf(r, seq, prev.meta.LIB.Height, uint64(time.Now().UnixMilli()), s.mu.recs)
	for i := range s.mu.recs {
		s.mu.key = logKey(s.mu.key[:0], s.mu.recs[i].Seq)
		s.mu.val = appendLogValue(s.mu.val[:0], &s.mu.recs[i])
		_ = b.Set(s.mu.key, s.mu.val, nil)
	}
	if r.Meta.LIB.Height > prev.meta.LIB.Height {
		// Blocks at or below the LIB are irreversible or on dead forks:
		// either way no longer fork blocks.
		for id, h := range s.mu.forks {
			if h <= r.Meta.LIB.Height {
				s.mu.key = forkKey(s.mu.key[:0], h, id)
				_ = b.Delete(s.mu.key, nil)
				removed = append(removed, forkChange{id, h})
			}
		}
	}
	if ck := r.Checkpoint; ck != nil {
		for _, w := range ck.Writes {
			s.mu.key = stateKey(s.mu.key[:0], w.DatabaseKey)
			if w.Removed {
				_ = b.Delete(s.mu.key, nil)
			} else {
				_ = b.Set(s.mu.key, w.Value, nil)
			}
		}
	}
	s.mu.val = encodeMeta(s.mu.val[:0], next)
	_ = b.Set(keyMeta, s.mu.val, nil)

	if err := commitBatch(b, wo); err != nil {
		s.mu.broken = commitFailed(err)
		return s.mu.broken
	}
	for _, f := range removed {
		delete(s.mu.forks, f.id)
	}
	for _, f := range added {
		s.mu.forks[f.id] = f.height
	}
	s.state.Store(next)
	s.unindexedAccepted(s.mu.recs, r)
	s.elog.appended(len(s.mu.recs))
	return nil
}

// batchLocked returns the store's batch, emptied. One batch is reused so
// that its buffer (several MB for a large block) is allocated once. It is
// not indexed, so its Set and Delete cannot fail (Pebble returns errors
// from them only when maintaining an index): their results are ignored.
func (s *Store) batchLocked() *pebble.Batch {
	if s.mu.batch == nil {
		s.mu.batch = s.db.NewBatch(pebble.WithMaxRetainedSizeBytes(64 << 20))
	} else {
		s.mu.batch.Reset()
	}
	return s.mu.batch
}

// addBlockLocked adds a block record.
func (s *Store) addBlockLocked(b *pebble.Batch, e *chain.BlockEntry) error {
	v, err := s.mu.enc.encode(e)
	if err != nil {
		return err
	}
	s.mu.key = blockKey(s.mu.key[:0], e.ID)
	_ = b.Set(s.mu.key, v, nil)
	return nil
}
