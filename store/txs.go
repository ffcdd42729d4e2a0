package store

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// TxItem is a transaction and the stored blocks that include it, as
// transaction_store.get_transactions_by_id returns them.
type TxItem struct {
	// Tx is nil when no stored block includes the transaction.
	Tx *protocol.Transaction
	// ContainingBlocks are every stored block that includes it, on any
	// fork, live or dead, ascending by height.
	ContainingBlocks []koinos.Digest
}

// TransactionsByID looks transactions up by id, in the order asked.
// Unknown ids give an item with a nil Tx. A transaction is found as soon as
// the Commit of its block returned, whichever fork the block is on: the
// blocks the indexer has not reached yet are searched directly.
func (s *Store) TransactionsByID(ids []koinos.Digest) ([]TxItem, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if s.noTxIndex {
		return nil, fmt.Errorf("%w: this node keeps no transaction index (store.transaction_index = false)", ErrIndexOff)
	}
	if s.ix.rebuilding() {
		return nil, fmt.Errorf("%w: a reindex did not finish; the node's operator must run ember reindex", ErrIndexRebuilding)
	}
	// The unindexed blocks are listed before the index is read: a block
	// the indexer reaches in between is then found twice, never missed.
	unindexed, err := s.unindexedBlocks()
	if err != nil {
		return nil, err
	}
	var inBlocks map[koinos.Digest][]unindexedTx
	if len(unindexed) > 0 {
		if inBlocks, err = s.findInBlocks(unindexed, ids); err != nil {
			return nil, err
		}
	}
	out := make([]TxItem, len(ids))
	for i := range ids {
		if err := s.lookupTx(&ids[i], &out[i], inBlocks[ids[i]]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unindexedTx is a transaction of a block the index has not reached.
type unindexedTx struct {
	tx     *protocol.Transaction
	height uint64
	block  koinos.Digest
}

// findInBlocks finds the transactions ids asks for in blocks, by a scan:
// the map holds only the ids asked for, so a lookup while a large block
// waits for the indexer (koilib polls for its transaction) allocates
// nothing per transaction of the block.
func (s *Store) findInBlocks(blocks []pendingRecord, ids []koinos.Digest) (map[koinos.Digest][]unindexedTx, error) {
	found := make(map[koinos.Digest][]unindexedTx, len(ids))
	for _, id := range ids {
		found[id] = nil
	}
	for _, b := range blocks {
		e := b.entry
		if e == nil {
			var err error
			if e, err = s.entry(s.db, b.id, -1); err != nil {
				return nil, fmt.Errorf("store: block 0x%x: %w", b.id.Multihash(), err)
			}
		}
		for i, tx := range e.Block.Transactions {
			var id koinos.Digest
			if e.Txs != nil {
				id = e.Txs[i].ID()
			} else if len(tx.Id) == koinos.MultihashSize {
				copy(id[:], tx.Id[2:])
			} else {
				continue
			}
			if in, asked := found[id]; asked {
				found[id] = append(in, unindexedTx{tx, e.Height, e.ID})
			}
		}
	}
	return found, nil
}

type containing struct {
	height uint64
	id     koinos.Digest
}

func (s *Store) lookupTx(txID *koinos.Digest, out *TxItem, unindexed []unindexedTx) error {
	want := txID.Multihash()
	prefix := append([]byte{spaceTx}, txID[:txKeyIDLen]...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	var found []containing
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		idx, rest, ok := uvarint(v)
		if len(k) != txKeyLen || !ok || len(rest) != 0 {
			return corruptStore("transaction index entry of %d+%d bytes", len(k), len(v))
		}
		// The key holds a prefix of the block id: find every block with
		// it (almost always one) and check the transaction inside.
		err := s.blocksWithPrefix(k[1+txKeyIDLen:], func(id koinos.Digest, v []byte) error {
			tx, height, err := s.txInRecord(id, v, int(idx), want)
			if err != nil || height == 0 {
				return err
			}
			if out.Tx == nil {
				out.Tx = tx
			}
			found = append(found, containing{height, id})
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read transaction index: %w", err)
	}
	for _, u := range unindexed {
		if out.Tx == nil {
			out.Tx = u.tx
		}
		found = append(found, containing{u.height, u.block})
	}
	slices.SortFunc(found, func(a, b containing) int {
		return cmp.Or(cmp.Compare(a.height, b.height), bytes.Compare(a.id[:], b.id[:]))
	})
	found = slices.Compact(found) // a block both indexed and listed as unindexed
	for _, c := range found {
		out.ContainingBlocks = append(out.ContainingBlocks, c.id)
	}
	return nil
}

// blocksWithPrefix calls fn with each stored block whose id starts with
// prefix, and its record (valid only during fn).
func (s *Store) blocksWithPrefix(prefix []byte, fn func(koinos.Digest, []byte) error) error {
	lo := append([]byte{spaceBlock}, prefix...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != blockKeyLen {
			return corruptStore("block key of %d bytes", len(k))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: read block: %w", err)
		}
		if err := fn(koinos.Digest(k[1:]), v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read blocks: %w", err)
	}
	return nil
}

// txInRecord returns transaction idx of a block and the block's height if
// the transaction's id is want; height 0 if not (a truncated-key
// collision). A decoded block in the cache is used instead of the record.
func (s *Store) txInRecord(id koinos.Digest, v []byte, idx int, want []byte) (*protocol.Transaction, uint64, error) {
	if e := s.decoded.get(id); e != nil {
		return txOfEntry(e, idx, want)
	}
	r, err := parseRecord(v)
	if err != nil {
		return nil, 0, fmt.Errorf("store: block 0x%x: %w", id.Multihash(), err)
	}
	if idx >= r.ntx {
		return nil, 0, nil
	}
	it, err := r.txAt(s.dec, idx)
	if err != nil {
		return nil, 0, fmt.Errorf("store: block 0x%x: %w", id.Multihash(), err)
	}
	tx, err := it.decodeTx()
	if err != nil {
		return nil, 0, fmt.Errorf("store: block 0x%x: %w", id.Multihash(), err)
	}
	if !bytes.Equal(tx.Id, want) {
		return nil, 0, nil
	}
	return tx, r.height, nil
}

func txOfEntry(e *chain.BlockEntry, idx int, want []byte) (*protocol.Transaction, uint64, error) {
	txs := e.Block.Transactions
	if idx >= len(txs) || !bytes.Equal(txs[idx].Id, want) {
		return nil, 0, nil
	}
	return txs[idx], e.Height, nil
}
