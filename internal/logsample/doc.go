// Package logsample rate-limits warnings, so that a flood of bad requests
// or a flapping dependency cannot flood the log.
//
// A Sampler sits beside the code that would warn: each call to Allow (or
// Warn) lets one message a second through and counts the ones it drops;
// the next message let through carries that count ("suppressed"),
// so nothing is hidden, only summarized. It is safe for concurrent use
// and costs two atomic operations per call. Users: the JSON-RPC gateway
// (rpcgw) for its warnings, the AMQP bridge (netio/amqp) for
// malformed deliveries and reconnection attempts, and the store for
// Pebble's background errors, which Pebble retries without pause.
package logsample
