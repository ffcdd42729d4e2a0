package chain

import (
	"github.com/emberchain/ember/engine/koinos"
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

// BlockEntry is a block with its receipt, as stored.
type BlockEntry struct {
	Topology
	Block   *protocol.Block
	Receipt *protocol.BlockReceipt
}

// StateWrite is one entry of a state checkpoint: a serialized
// koinos.chain.database_key and its value, or Removed.
type StateWrite struct {
	Key     []byte
	Value   []byte
	Removed bool
}

// Checkpoint is the irreversible state written since the last checkpoint,
// as of block Height. Storing it lets a restart replay from Height instead
// of from genesis; nothing else depends on it being recent.
type Checkpoint struct {
	Height uint64
	ID     koinos.Digest
	Writes []StateWrite
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
// anything that depends on it leaves the node (the etcd-raft contract):
// the caller persists it as one batch (Storage.Commit in store), then calls
// Chain.Advance, and only then publishes events or gossips the block.
type Ready struct {
	// Accepted are blocks new to the fork database, to be stored. Usually
	// one; none for an init or flush step.
	Accepted []*BlockEntry
	// Meta is the chain metadata after this step.
	Meta Meta
	// HeadChanged reports whether Meta.Head differs from before the step.
	HeadChanged bool
	// Irreversible are the blocks that became irreversible in this step,
	// oldest first: the store indexes them by height and feeds its
	// transaction and account-history indexers.
	Irreversible []*BlockEntry
	// Checkpoint, when set, is state to write so that a restart can resume
	// from Meta.Checkpoint.
	Checkpoint *Checkpoint
	// Reorg lists the blocks that left and joined the head chain, for the
	// mempool: transactions of removed blocks go back to it, those of added
	// blocks leave it.
	Reorg Reorg

	advance func()
}

// Reorg describes how the head chain changed in one step.
type Reorg struct {
	Removed []*BlockEntry // newest first
	Added   []*BlockEntry // oldest first
}
