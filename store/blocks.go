package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// MaxBlocksByHeight caps BlocksByHeight, as Koinos's block_store does.
const MaxBlocksByHeight = 1000

// GetState implements chain.Storage: the checkpointed value of a state key.
func (s *Store) GetState(key []byte) ([]byte, bool, error) {
	if err := s.checkOpen(); err != nil {
		return nil, false, err
	}
	v, err := s.get(stateKey(make([]byte, 0, 1+len(key)), key))
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// SeekState implements chain.Storage: the checkpointed state key nearest
// after from (before it, when reverse) among those starting with prefix,
// for next_object and previous_object.
func (s *Store) SeekState(prefix, from []byte, reverse bool) (key, value []byte, found bool, err error) {
	if err := s.checkOpen(); err != nil {
		return nil, nil, false, err
	}
	lo := stateKey(make([]byte, 0, 1+len(prefix)), prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, nil, false, fmt.Errorf("store: seek state: %w", err)
	}
	at := stateKey(make([]byte, 0, 1+len(from)), from)
	var ok bool
	if reverse {
		ok = it.SeekLT(at)
	} else if ok = it.SeekGE(at); ok && bytes.Equal(it.Key(), at) {
		ok = it.Next()
	}
	if ok {
		key, value = bytes.Clone(it.Key()[1:]), bytes.Clone(it.Value())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, nil, false, fmt.Errorf("store: seek state: %w", err)
	}
	return key, value, ok, nil
}

// LoadMeta implements chain.Storage.
func (s *Store) LoadMeta() (chain.Meta, bool, error) {
	st := s.state.Load()
	return st.meta, st.found, nil
}

// CanonicalBlocks implements chain.Storage: the irreversible blocks with
// heights in [from, to], ascending. A missing height is an error: the
// engine asks only for heights at or below the LIB it stored.
func (s *Store) CanonicalBlocks(from, to uint64, fn func(*chain.BlockEntry) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if from > to {
		return nil
	}
	lo := canonKey(nil, from)
	var hi []byte
	if to < math.MaxUint64 {
		hi = canonKey(nil, to+1)
	} else {
		hi = []byte{spaceCanon + 1}
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	want := from
	for it.First(); it.Valid(); it.Next() {
		h, id, err := decodeCanon(it.Key(), it.Value())
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if h != want {
			return fmt.Errorf("store: no irreversible block at height %d", want)
		}
		e, err := s.decodeBlock(s.db, id, -1)
		if err != nil {
			return err
		}
		if e.Height != h {
			return corruptStore("canonical index says block 0x%x is at height %d, its record says %d", id.Multihash(), h, e.Height)
		}
		if err := fn(e); err != nil {
			return err
		}
		if h == to {
			return nil
		}
		want++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read canonical index: %w", err)
	}
	return fmt.Errorf("store: no irreversible block at height %d", want)
}

// ForkBlocks implements chain.Storage: every stored block above height h
// that is not irreversible, on any fork, ascending by height.
func (s *Store) ForkBlocks(h uint64, fn func(*chain.BlockEntry) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if h == math.MaxUint64 {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: forkKey(nil, h+1, koinos.Digest{}), UpperBound: []byte{spaceFork + 1}})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != forkKeyLen {
			return corruptStore("fork marker key of %d bytes", len(k))
		}
		height, id := decodeForkKey(k)
		e, err := s.decodeBlock(s.db, id, -1)
		if err != nil {
			return err
		}
		if e.Height != height {
			return corruptStore("fork marker says block 0x%x is at height %d, its record says %d", id.Multihash(), height, e.Height)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read fork markers: %w", err)
	}
	return nil
}

func decodeCanon(k, v []byte) (uint64, koinos.Digest, error) {
	var id koinos.Digest
	if len(k) != canonKeyLen || len(v) != koinos.DigestSize {
		return 0, id, corrupt("canonical index entry of %d+%d bytes", len(k), len(v))
	}
	copy(id[:], v)
	return binary.BigEndian.Uint64(k[1:]), id, nil
}

// decodeBlock reads and decodes a block, bypassing the cache: the caller
// gets an entry of its own. With maxTxs ≥ 0, a block holding more
// transactions fails with errReadBudget before it is decoded.
func (s *Store) decodeBlock(r reader, id koinos.Digest, maxTxs int) (*chain.BlockEntry, error) {
	var e *chain.BlockEntry
	err := with(r, blockKey(make([]byte, 0, blockKeyLen), id), func(v []byte) error {
		rec, err := parseRecord(v)
		if err != nil {
			return err
		}
		if maxTxs >= 0 && rec.ntx > maxTxs {
			return errReadBudget
		}
		e, err = rec.entry(s.dec, id)
		return err
	})
	switch {
	case errors.Is(err, errReadBudget):
		return nil, err
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: block 0x%x", ErrNotFound, id.Multihash())
	case err != nil:
		return nil, fmt.Errorf("store: block 0x%x: %w", id.Multihash(), err)
	}
	return e, nil
}

// errReadBudget: the block holds more transactions than the read has left.
var errReadBudget = errors.New("store: read budget exceeded")

// readBudget is what one multi-block read may still decode, in
// transactions (Options.MaxReadTransactions); its first block is read
// whatever its size.
type readBudget struct {
	left int
	read bool // a block was read
}

func (s *Store) newReadBudget() readBudget { return readBudget{left: s.maxReadTxs} }

// limit is the maxTxs to pass to entry for the next block.
func (b *readBudget) limit() int {
	if !b.read {
		return -1 // the first block whatever its size
	}
	return max(b.left, 0) // -1 would mean no limit
}

// spend counts a block read.
func (b *readBudget) spend(e *chain.BlockEntry) {
	b.read = true
	b.left -= len(e.Block.Transactions)
}

// entry returns a block through the decoded-block cache. The entry is
// shared and must not be modified. With maxTxs ≥ 0, a block holding more
// transactions fails with errReadBudget (and is not decoded).
func (s *Store) entry(r reader, id koinos.Digest, maxTxs int) (*chain.BlockEntry, error) {
	if e := s.decoded.get(id); e != nil {
		if maxTxs >= 0 && len(e.Block.Transactions) > maxTxs {
			return nil, errReadBudget
		}
		return e, nil
	}
	e, err := s.decodeBlock(r, id, maxTxs)
	if err != nil {
		return nil, err
	}
	s.decoded.put(e)
	return e, nil
}

// BlockByID returns a stored block, on any fork, or ErrNotFound. The entry
// has Signers set and Txs nil, and is shared: do not modify it.
func (s *Store) BlockByID(id koinos.Digest) (*chain.BlockEntry, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return s.entry(s.db, id, -1)
}

// Highest returns the highest block stored on any fork (the first one
// stored at that height); the zero topology on an empty store.
func (s *Store) Highest() (chain.Topology, error) {
	return s.state.Load().highest, nil
}

// topology returns a stored block's height and parent without decoding it.
func topology(r reader, id koinos.Digest) (height uint64, previous koinos.Digest, err error) {
	err = with(r, blockKey(make([]byte, 0, blockKeyLen), id), func(v []byte) error {
		height, previous, err = parseTopology(v)
		return err
	})
	return height, previous, err
}

// canonID returns the irreversible block at height h, or ErrNotFound.
func canonID(r reader, h uint64) (koinos.Digest, error) {
	var id koinos.Digest
	err := with(r, canonKey(make([]byte, 0, canonKeyLen), h), func(v []byte) error {
		var err error
		_, id, err = decodeCanon(canonKey(make([]byte, 0, canonKeyLen), h), v)
		return err
	})
	return id, err
}

// BlocksByHeight returns up to n blocks (at most MaxBlocksByHeight) from
// height start upward on the fork that ends at head, stopping at head's
// height; ErrNotFound if head is not stored. Like Koinos's block_store,
// head may be any stored block, on any fork. It also stops before the
// block that would take the transactions read past
// Options.MaxReadTransactions (the first block is always read): callers
// page on from the last block returned, as they do at head.
func (s *Store) BlocksByHeight(head koinos.Digest, start uint64, n int) ([]*chain.BlockEntry, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ids, err := s.idsByHeight(s.db, head, start, n)
	if err != nil {
		return nil, err
	}
	out := make([]*chain.BlockEntry, 0, len(ids))
	budget := s.newReadBudget()
	for _, id := range ids {
		e, err := s.entry(s.db, id, budget.limit())
		if errors.Is(err, errReadBudget) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		budget.spend(e)
	}
	return out, nil
}

// ErrReadTooLarge is returned (wrapped) by BlocksByID when the blocks
// asked for hold more transactions than Options.MaxReadTransactions.
var ErrReadTooLarge = errors.New("store: the blocks asked for hold too many transactions for one read")

// BlocksByID returns the stored blocks with the given ids, in order, with
// nil for an id not stored (on any fork). The entries are shared: do not
// modify them. Past Options.MaxReadTransactions transactions in all, it
// fails with ErrReadTooLarge before decoding the block that crosses it
// (the first block found is always read).
func (s *Store) BlocksByID(ids []koinos.Digest) ([]*chain.BlockEntry, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	out := make([]*chain.BlockEntry, len(ids))
	budget := s.newReadBudget()
	for i, id := range ids {
		e, err := s.entry(s.db, id, budget.limit())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if errors.Is(err, errReadBudget) {
			return nil, fmt.Errorf("%w: more than %d transactions in blocks 1 to %d of %d; ask for fewer", ErrReadTooLarge, s.maxReadTxs, i+1, len(ids))
		}
		if err != nil {
			return nil, err
		}
		out[i] = e
		budget.spend(e)
	}
	return out, nil
}

// idsByHeight finds the ids of BlocksByHeight. It walks parent links down
// from head until it meets the canonical chain, then reads the canonical
// index: above the LIB, or on a dead fork, ids come from the walk; below
// the meeting point, from the index.
func (s *Store) idsByHeight(r reader, head koinos.Digest, start uint64, n int) ([]koinos.Digest, error) {
	n = min(n, MaxBlocksByHeight)
	if n <= 0 {
		return nil, nil
	}
	start = max(start, 1) // height 0 is the genesis state, not a block
	h, prev, err := topology(r, head)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: head block 0x%x", ErrNotFound, head.Multihash())
	}
	if err != nil {
		return nil, fmt.Errorf("store: head block 0x%x: %w", head.Multihash(), err)
	}
	if start > h {
		return nil, nil
	}
	end := min(start+uint64(n)-1, h)
	ids := make([]koinos.Digest, end-start+1)
	lib := s.state.Load().meta.LIB.Height
	lowest := end + 1 // lowest height filled by the walk
	id := head
	for {
		if h <= lib {
			c, err := canonID(r, h)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("store: irreversible block at height %d: %w", h, err)
			}
			if err == nil && c == id {
				break // the rest is canonical
			}
		}
		if h <= end {
			ids[h-start] = id
			lowest = h
		}
		if h == start {
			break
		}
		ph, pprev, err := topology(r, prev)
		if err != nil {
			return nil, fmt.Errorf("store: parent 0x%x of block %d: %w", prev.Multihash(), h, err)
		}
		if ph != h-1 {
			return nil, corruptStore("block 0x%x at height %d has parent at height %d", id.Multihash(), h, ph)
		}
		id, h, prev = prev, ph, pprev
	}
	for height := start; height < lowest; height++ {
		c, err := canonID(r, height)
		if err != nil {
			return nil, fmt.Errorf("store: irreversible block at height %d: %w", height, err)
		}
		ids[height-start] = c
	}
	return ids, nil
}

// HasBlock reports whether a block is stored, on any fork.
func (s *Store) HasBlock(id koinos.Digest) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	_, _, err := topology(s.db, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// BlockIDAt returns the id of the block at height on the chain that ends
// at head (head itself when height is its height), reading topology only;
// ErrNotFound when head is not stored or is below height.
func (s *Store) BlockIDAt(head koinos.Digest, height uint64) (koinos.Digest, error) {
	if err := s.checkOpen(); err != nil {
		return koinos.Digest{}, err
	}
	ids, err := s.idsByHeight(s.db, head, height, 1)
	if err != nil {
		return koinos.Digest{}, err
	}
	if len(ids) == 0 {
		return koinos.Digest{}, fmt.Errorf("%w: block 0x%x is below height %d", ErrNotFound, head.Multihash(), height)
	}
	return ids[0], nil
}
