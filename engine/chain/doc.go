// Package chain is Ember's consensus core: a state machine over the fork
// database. It applies blocks and transactions, chooses the head, tracks
// irreversibility and hands the caller what to persist. It opens no
// sockets or files and reads no clock: the node passes the time in, and
// reads go through the Storage interface declared here.
//
// The cycle is etcd-raft's: a step (AcceptBlock, Build then Commit, or
// Checkpoint) returns a Ready — the accepted blocks, the metadata, the
// blocks that became irreversible, a state checkpoint when one is due and
// the head reorg for the mempool. The caller writes it as one store batch,
// calls Advance, and only then publishes events or gossips the block; the
// next step is refused until Advance. Readers on other goroutines use
// View, which Advance publishes, so they never see a head that is not
// durable.
//
// Consensus lives in this package and nowhere else: the slot schedule and
// the production decision (schedule.go: NextSlot, Late), the header rules
// that enforce the schedule (checkHeader), fork choice, double production
// and irreversibility (forkdb.go). The producer package only builds and
// signs what NextSlot decides; the node's loop only keeps time and asks.
//
// Rules (docs/protocol.md has them in full):
//   - a transaction pays rc against its payer's mana; the nonce must be the
//     next one; operations revert atomically and rc is charged anyway;
//   - a block must be the next height on a known parent, in a later slot
//     than the parent, from that slot's producer, within the clock drift,
//     with the parent's state root and every transaction valid; resources
//     within the block limits (its transactions' merkle root is checked
//     before that, with the signatures: a sigverify.VerifiedBlock's
//     transactions are the ones its header commits to);
//   - fork choice: the branch with the higher irreversible block, then
//     higher, then earlier timestamp, then lower id; a
//     producer that signs two blocks at one height loses both branches;
//   - a block is irreversible once more than two thirds of the producers
//     signed it or a block above it; its state delta then merges into the
//     base and other forks below it are dropped; a producer does not extend
//     a branch it signed past productionDepth without irreversibility.
//
// Contracts (wasm.go): operations reach the native token (engine/contracts)
// or, for uploaded Koinos WebAssembly contracts, engine/vm; exec is the
// vm.Host through which a contract reads and writes its object spaces in
// the block's state.Delta, calls other contracts and checks authority.
// Compute is fuel, bounded by the transaction's rc_limit, the genesis's
// per-transaction cap and what the block has left.
package chain
