// Package eventtest is a subscriber to the node's events on koinos.event,
// for tests of the event publisher (netio/amqp, node, cmd/ember).
//
// Subscribe binds a queue to routing keys and consumes it with manual
// acks, as a subscriber that must lose nothing does (docs/bus.md). A
// Tracker takes the deliveries in order (Until reads and acks them until
// a condition holds) and fails the test on anything a subscriber could
// not trust: a sequence number going back, a repeat whose bytes differ, a
// block height skipped in koinos.block.accept or koinos.block.irreversible
// (one producer), a payload that does not decode, a contract event under
// the wrong routing key. It counts what it saw, so a test asserts on
// heights, repeats and transactions. It is separate from amqptest because
// it imports netio/amqp, whose own tests import amqptest.
package eventtest
