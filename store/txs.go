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
// the Commit of its block returned, whichever fork the block is on.
func (s *Store) TransactionsByID(ids []koinos.Digest) ([]TxItem, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if s.noTxIndex {
		return nil, fmt.Errorf("%w: this node keeps no transaction index (store.transaction_index = false)", ErrIndexOff)
	}
	out := make([]TxItem, len(ids))
	for i := range ids {
		if err := s.lookupTx(&ids[i], &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type containing struct {
	height uint64
	id     koinos.Digest
}

func (s *Store) lookupTx(txID *koinos.Digest, out *TxItem) error {
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
	slices.SortFunc(found, func(a, b containing) int {
		return cmp.Or(cmp.Compare(a.height, b.height), bytes.Compare(a.id[:], b.id[:]))
	})
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
