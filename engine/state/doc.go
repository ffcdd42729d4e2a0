// Package state holds chain state as Ember keeps it in memory: the
// irreversible Base (a cache over the store's last checkpoint plus every
// irreversible change since) and one Delta per block above it, each a
// layer over its parent's. Reading a key walks the deltas down to the
// base; applying a block writes only its own Delta.
//
// Ownership: one goroutine (the chain loop) writes. A Delta is written
// while its block is applied, then frozen; frozen deltas are immutable, so
// readers on any goroutine may walk them. Base is shared and guarded by
// sharded locks. When a block becomes irreversible its Delta is merged into
// Base and its children are re-parented onto Base; a reader still walking
// the merged Delta sees the same values in it as in Base, so no reader
// sees a torn state.
//
// Besides the account records it holds objects (objects.go): contract
// storage and uploaded contracts, by serialized Koinos database key, in
// the same layers, ordered within a space for next/previous lookups that
// merge the layers with the store (Storage.SeekState).
//
// Durability: Base tracks which records changed since the last checkpoint
// (TakeDirty). The store writes them at checkpoints only; after a crash the
// node replays the irreversible blocks since the checkpoint, so state is
// never rewritten per block (the budget in docs/benchmarks.md).
package state
