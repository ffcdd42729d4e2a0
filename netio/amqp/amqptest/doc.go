// Package amqptest gives tests a RabbitMQ broker and keeps them apart on it.
//
// URL finds the shared broker (EMBER_AMQP_URL or 127.0.0.1:5672): a test
// without one is skipped, or fails when CI=true, where .ci/run starts the
// broker. Prefix and netio/amqp.TestNames give each test its own exchange
// and queue names, and Cleanup deletes what it declared, so tests that
// share the broker do not see each other's messages. A test that must
// stop and restart the broker gets a node of its own from
// StartPrivateBroker (own ports on loopback, own data, removed at the
// end): Stop and Start keep its durable queues and persistent messages,
// as a broker restart does. WaitFor polls a condition with a deadline.
package amqptest
