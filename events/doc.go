// Package events is the node's lossless in-process event stream: every
// transaction admitted to the mempool, every block accepted, every head
// change and every advance of irreversibility, in one order, numbered.
//
// The chain loop and the admission path publish; consumers (the p2p
// gossip, RPC waiters, later the AMQP bridge) each read from their own
// cursor. Nothing is dropped silently. The stream keeps the newest events in
// a ring of fixed capacity, and a subscriber is one of two kinds:
//
//   - Blocking: the publisher waits while this subscriber is a whole ring
//     behind (backpressure). Admission then slows to the consumer's pace
//     instead of the consumer losing events. A blocking subscriber that
//     does not move for StallTimeout is demoted to lagging, so one stuck
//     consumer cannot stop the chain loop for good; the demotion is logged
//     and counted.
//   - Lagging: the publisher never waits for it. If it falls a whole ring
//     behind, its next read returns a *LagError naming the sequence numbers
//     it missed, and reading goes on from the oldest event still held. The
//     consumer then resyncs from the store (the blocks are durable before
//     their events are published) rather than guessing.
//
// Events are published after the state they describe is durable (a block's
// events after its store batch is synced), so a consumer never acts on a
// block that a crash could take back.
package events
