package replay

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/store"
)

// Result is what a replay reached.
type Result struct {
	// Head is the head of the replayed chain, with its state root; it
	// equals the stored head when Run returns no error.
	Head      chain.Topology
	StateRoot koinos.Digest
	// LIB is the replayed chain's last irreversible block.
	LIB chain.Topology
	// Blocks counts the blocks applied: the irreversible chain, then the
	// stored blocks above it (every fork).
	Blocks   int
	Txs      int
	Duration time.Duration
}

// Options configure Run.
type Options struct {
	// ScratchDir is where the fresh chain's store is written (synced
	// never, removed at the end); "" means a directory in os.TempDir.
	ScratchDir string
	Logger     *slog.Logger // nil: discard
	// Progress, when set, is called after each irreversible block.
	Progress func(height, lib uint64)
}

// Run replays every block of src, a stopped node's store, from genesis g.
// It fails at the first block that does not verify, does not apply, or
// applies to another state root than its stored receipt says, and when the
// replay's head or its state root differs from the stored head's.
func Run(src *store.Store, g *genesis.Genesis, o Options) (Result, error) {
	start := time.Now()
	var res Result
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	meta, found, err := src.LoadMeta()
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	if !found {
		return res, errors.New("replay: the store holds no chain (no metadata)")
	}
	if meta.ChainID != g.ChainID() {
		return res, fmt.Errorf("replay: the store holds chain 0x%x, the genesis is for chain 0x%x", meta.ChainID.Multihash(), g.ChainID().Multihash())
	}
	scratch, err := os.MkdirTemp(o.ScratchDir, "ember-replay-")
	if err != nil {
		return res, fmt.Errorf("replay: scratch store: %w", err)
	}
	defer os.RemoveAll(scratch)
	// The scratch store needs no durability and no indexes: only the
	// state and the blocks the engine reads back.
	dst, err := store.Open(scratch, store.Options{NoSync: true, NoTransactionIndex: true, NoAccountHistory: true, Logger: log})
	if err != nil {
		return res, fmt.Errorf("replay: scratch store: %w", err)
	}
	defer dst.Close()
	c, r, err := chain.Open(chain.Config{Genesis: g, Storage: dst, Log: log})
	if err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	if err := dst.Commit(r); err != nil {
		return res, fmt.Errorf("replay: %w", err)
	}
	c.Advance(r)

	apply := func(e *chain.BlockEntry) error {
		vb, err := sigverify.VerifyBlock(e.Block, c.Limits(), c.MaxBlockTransactions())
		if err != nil {
			return fmt.Errorf("replay: block %d (0x%x) does not verify: %w", e.Height, e.ID.Multihash(), err)
		}
		if vb.ID != e.ID {
			return fmt.Errorf("replay: block stored as 0x%x at height %d hashes to 0x%x", e.ID.Multihash(), e.Height, vb.ID.Multihash())
		}
		// math.MaxUint64: no clock, as the engine's own restart replay:
		// a block is not from the future when it is read back.
		r, err := c.AcceptBlock(vb, math.MaxUint64)
		if errors.Is(err, chain.ErrKnownBlock) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: block %d (0x%x): %w", e.Height, e.ID.Multihash(), err)
		}
		if len(r.Accepted) != 1 || r.Accepted[0].ID != e.ID {
			return fmt.Errorf("replay: block %d (0x%x) was not accepted as one new block", e.Height, e.ID.Multihash())
		}
		// The receipt the engine made before the Ready is committed:
		// Commit may keep it, but nothing here reads it after.
		root := r.Accepted[0].Receipt.GetStateMerkleRoot()
		if err := dst.Commit(r); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		c.Advance(r)
		if !bytes.Equal(root, e.Receipt.GetStateMerkleRoot()) {
			return fmt.Errorf("replay: block %d (0x%x) applies to state root %x, but the node stored %x", e.Height, e.ID.Multihash(), root, e.Receipt.GetStateMerkleRoot())
		}
		res.Blocks++
		res.Txs += len(e.Block.GetTransactions())
		return nil
	}
	err = src.CanonicalBlocks(1, meta.LIB.Height, func(e *chain.BlockEntry) error {
		if err := apply(e); err != nil {
			return err
		}
		if o.Progress != nil {
			o.Progress(e.Height, meta.LIB.Height)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	err = src.ForkBlocks(meta.LIB.Height, func(e *chain.BlockEntry) error {
		if c.Block(e.Previous) == nil {
			// As the engine's restart does: a block whose parent the node
			// dropped is not part of its chain.
			log.Warn("replay: skipping a stored block whose parent is gone", "height", e.Height)
			return nil
		}
		return apply(e)
	})
	if err != nil {
		return res, err
	}
	v := c.View()
	res.Head, res.StateRoot, res.LIB, res.Duration = v.Head, v.HeadStateRoot, v.LIB, time.Since(start)
	if v.Head != meta.Head {
		return res, fmt.Errorf("replay: the replayed head is block %d (0x%x), the node's stored head is block %d (0x%x)",
			v.Head.Height, v.Head.ID.Multihash(), meta.Head.Height, meta.Head.ID.Multihash())
	}
	if v.LIB.Height < meta.LIB.Height {
		return res, fmt.Errorf("replay: the replayed last irreversible block is %d, the node's is %d", v.LIB.Height, meta.LIB.Height)
	}
	if meta.Head.Height > 0 {
		stored, err := src.BlockByID(meta.Head.ID)
		if err != nil {
			return res, fmt.Errorf("replay: the stored head: %w", err)
		}
		if !bytes.Equal(stored.Receipt.GetStateMerkleRoot(), v.HeadStateRoot.Multihash()) {
			return res, fmt.Errorf("replay: the head's state root is %x after replay, the node stored %x", v.HeadStateRoot.Multihash(), stored.Receipt.GetStateMerkleRoot())
		}
	}
	return res, nil
}
