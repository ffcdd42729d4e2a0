// Package replay re-applies a stopped node's stored blocks from genesis in
// a fresh chain and compares the result with what the node stored: the
// check that a store which went through crashes and restarts (each of
// which replays only from the last state checkpoint) still holds a chain
// whose state anyone can rebuild from its blocks alone. `ember replay`
// and the crash harness (internal/crashtest) run it.
//
// Data flow: Run reads the node's blocks from its store (the node stopped):
// the irreversible chain in height order, then the stored blocks above it. Nothing read
// is trusted: each block's signatures are verified again
// (sigverify.VerifyBlock, not the signers the store saved), and a fresh
// engine/chain, opened on the genesis over a scratch store, applies it
// with the engine's full rules. The state root each block reaches is
// compared with the receipt the node stored (and served), and at the end
// the fresh chain's head and last irreversible block with the node's. The
// first block that does not verify or apply, or reaches another root, ends
// the replay with an error naming it; a Result without an error says how
// far the replay got (head, state root, blocks, transactions, time).
package replay
