// Package amqp is the RPC half of Ember's bridge to the Koinos bus
// (RabbitMQ, AMQP 0-9-1), on github.com/rabbitmq/amqp091-go.
//
// Wire conventions are Koinos's (koinos-mq-golang, koinos-mq-cpp;
// docs/bus.md):
//
//   - exchange koinos.rpc: direct, durable, not auto-delete, not internal;
//     exchange koinos.event: topic, durable (declared so that both exist,
//     as every Koinos service declares both);
//   - one durable, non-exclusive, non-auto-delete queue koinos.rpc.<service>
//     per service, bound to koinos.rpc with the queue's own name as binding
//     key; requests are published to koinos.rpc with routing key
//     koinos.rpc.<service>;
//   - a request carries content type application/octet-stream, a
//     correlation id, reply_to (the caller's reply queue, bound to
//     koinos.rpc under its own name) and an expiration in milliseconds;
//     its body is the koinos.rpc.<service>.<service>_request envelope;
//   - the reply, the <service>_response envelope, is published to
//     koinos.rpc with routing key = reply_to and the request's correlation
//     id; failures travel in the envelope's error member
//     (koinos.rpc.error_status).
//
// Beyond Koinos, the Server acknowledges a request only after its reply is
// published (Koinos consumes with auto-ack), bounds unacknowledged requests
// per consumer with basic.qos, rejects malformed requests without requeue
// (dead-lettered where the operator set a DLX on the queue), drops requests
// known to have expired, and stops publishing replies while the broker
// blocks the connection. The Client is an rpcgw.Backend: a JSON-RPC gateway
// serving through it forwards every call over koinos.rpc.
package amqp
