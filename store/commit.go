package store

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// Commit makes r durable as one Pebble batch: its blocks, their
// transaction index entries, the canonical index and account history of
// the blocks that became irreversible, the state checkpoint and the
// metadata. Unless Options.NoSync, the batch is synced before Commit
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

// commitLocked builds and writes the batch of one Ready. It runs in two
// phases: everything that can fail on bad input (encoding, checks) comes
// first and leaves memory untouched; then account history, which moves
// in-memory counters, and the write itself. A failure in the second phase
// marks the store broken.
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
	var toIndex []*chain.BlockEntry
	for _, e := range r.Irreversible {
		if e.Height <= prev.meta.LIB.Height {
			continue // indexed by an earlier commit
		}
		s.mu.key = canonKey(s.mu.key[:0], e.Height)
		_ = b.Set(s.mu.key, e.ID[:], nil)
		toIndex = append(toIndex, e)
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

	// Phase two: from here on, failing leaves memory ahead of the disk.
	if err := s.indexHistoryLocked(b, toIndex); err != nil {
		s.mu.broken = err
		return err
	}
	if err := b.Commit(wo); err != nil {
		s.mu.broken = fmt.Errorf("store: commit: %w", err)
		return s.mu.broken
	}
	for _, f := range removed {
		delete(s.mu.forks, f.id)
	}
	for _, f := range added {
		s.mu.forks[f.id] = f.height
	}
	s.state.Store(next)
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

// addBlockLocked adds a block record and the transaction index entries of
// its transactions.
func (s *Store) addBlockLocked(b *pebble.Batch, e *chain.BlockEntry) error {
	v, err := s.mu.enc.encode(e)
	if err != nil {
		return err
	}
	s.mu.key = blockKey(s.mu.key[:0], e.ID)
	_ = b.Set(s.mu.key, v, nil)
	if s.noTxIndex {
		return nil
	}
	// Transaction index keys go into the batch in key order: Pebble's
	// memtable inserts of nearby keys share cache lines (doc.go).
	txs := s.mu.txs[:0]
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
	s.mu.txs = txs
	var id [txKeyIDLen]byte
	for _, t := range txs {
		binary.BigEndian.PutUint64(id[:], t.prefix)
		s.mu.key = txKey(s.mu.key[:0], id[:], e.ID)
		s.mu.val = binary.AppendUvarint(s.mu.val[:0], uint64(t.index))
		_ = b.Set(s.mu.key, s.mu.val, nil)
	}
	return nil
}

// txRef is a transaction index entry before it is written.
type txRef struct {
	prefix uint64 // the first 8 bytes of the transaction id
	index  uint32
}
