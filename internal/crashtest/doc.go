// Package crashtest is the crash-consistency harness of issue 14: it runs
// an Ember node as a child process under a transfer load, kills it with
// SIGKILL at random moments, restarts it each time, and checks that
//
//   - the node always restarts (JSON-RPC answers within a bound);
//   - no block reported irreversible is lost or changed, and every
//     transaction of such a block is still found in it;
//   - the head never falls below the last irreversible block, which never
//     goes back;
//   - the sign guard never lets the node sign two blocks for one slot;
//   - the durable event log and the indexes resume with no gap: a copy of
//     each killed store reads back a gapless log whose irreversible records
//     reach its last irreversible block and whose end is not before what
//     the node reported, and each account's history holds exactly the
//     transfers of the irreversible blocks, in order, with consecutive
//     sequence numbers;
//   - a replay from genesis of the final store (ember replay) reaches the
//     head and state root the live node serves.
//
// The invariants are pure functions (check.go) of what the runner observed
// over JSON-RPC and the admin metrics (observe.go) and from offline copies
// of the killed stores (snapshot.go), so tests can feed them fabricated
// histories and see each violation reported.
//
// What a SIGKILL cannot test: the loss of written but unsynced data in a
// machine crash or power cut. store's crash tests cover that with Pebble's
// crash-cloned in-memory filesystem. docs/reliability.md has the figures.
package crashtest
