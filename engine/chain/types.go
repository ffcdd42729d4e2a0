package chain

import (
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	koinospb "github.com/emberchain/ember/proto/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Topology identifies a block: its id, height and parent. The genesis state
// is height 0 with the zero id.
type Topology struct {
	ID       koinos.Digest
	Height   uint64
	Previous koinos.Digest
}

// Proto returns t as a koinos.block_topology.
func (t Topology) Proto() *koinospb.BlockTopology {
	return &koinospb.BlockTopology{Id: t.ID.Multihash(), Height: t.Height, Previous: t.Previous.Multihash()}
}

// BlockEntry is a block with its receipt, as stored. Nothing in it may be
// modified once the entry exists: readers share it.
type BlockEntry struct {
	Topology
	Block   *protocol.Block
	Receipt *protocol.BlockReceipt
	// Txs are the block's verified transactions, when the engine made the
	// entry; nil for entries read back from the store.
	Txs []*sigverify.VerifiedTx
	// Signers are, per transaction, the accounts its signatures stand for,
	// when the store made the entry (it saves them so that replay after a
	// restart need not recover secp256k1 keys again).
	Signers [][]koinos.Address
}

// TxSigners returns the signers of each transaction.
func (e *BlockEntry) TxSigners() [][]koinos.Address {
	if e.Txs == nil {
		return e.Signers
	}
	out := make([][]koinos.Address, len(e.Txs))
	for i, v := range e.Txs {
		out[i] = v.Signers()
	}
	return out
}

// Checkpoint is the irreversible state written since the last checkpoint,
// as of block Height. Storing it lets a restart replay from Height instead
// of from genesis; nothing else depends on it being recent.
type Checkpoint struct {
	Topology
	Writes []koinos.DeltaEntry
}

// Meta is what the store keeps about the chain as a whole. It is written in
// the same batch as the blocks it describes.
type Meta struct {
	ChainID    koinos.Digest
	Head       Topology
	LIB        Topology
	Checkpoint Topology // the block whose state the stored state is
}

// Ready is the outcome of one engine step, to be made durable before
// anything that depends on it leaves the node (the etcd-raft contract): the
// caller persists it as one batch (store.Commit), then calls Chain.Advance,
// and only then publishes events or gossips the block.
type Ready struct {
	// Accepted are blocks new to the fork database, to be stored.
	Accepted []*BlockEntry
	// Meta is the chain metadata after this step.
	Meta Meta
	// HeadChanged reports whether Meta.Head differs from before the step.
	HeadChanged bool
	// Irreversible are the blocks that became irreversible in this step,
	// oldest first: the store indexes them by height and account.
	Irreversible []*BlockEntry
	// Checkpoint, when set, is state to write so that a restart can resume
	// from Meta.Checkpoint.
	Checkpoint *Checkpoint
	// Reorg lists the blocks that left and joined the head chain, for the
	// mempool: transactions of removed blocks go back to it, those of added
	// blocks leave it.
	Reorg Reorg

	view *View // published by Advance
}

// ForkHeads are the heads of every fork after this step, best first (nil
// for a Ready not made by the engine): the store logs them as the step's
// fork-heads event.
func (r *Ready) ForkHeads() []Topology {
	if r.view == nil {
		return nil
	}
	return r.view.ForkHeads
}

// Reorg describes how the head chain changed in one step.
type Reorg struct {
	Removed []*BlockEntry // newest first
	Added   []*BlockEntry // oldest first
}

// Storage is what the engine needs from disk. The store package implements
// it over Pebble; tests use memStorage. Reads may come from any goroutine.
type Storage interface {
	// GetState returns the checkpointed value of a state key (a serialized
	// koinos.chain.database_key), or found=false.
	GetState(key []byte) (value []byte, found bool, err error)
	// SeekState returns the checkpointed state key nearest after from
	// (before it, when reverse) among those that start with prefix.
	SeekState(prefix, from []byte, reverse bool) (key, value []byte, found bool, err error)
	// LoadMeta returns the chain metadata, or found=false on a new store.
	LoadMeta() (meta Meta, found bool, err error)
	// CanonicalBlocks calls fn for each irreversible block with a height in
	// [from, to], in ascending order, until fn returns an error.
	CanonicalBlocks(from, to uint64, fn func(*BlockEntry) error) error
	// ForkBlocks calls fn for every stored block above height h that is not
	// yet irreversible, on every fork, in ascending height order.
	ForkBlocks(h uint64, fn func(*BlockEntry) error) error
}
