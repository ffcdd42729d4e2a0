// Package rpcgw is Ember's public JSON-RPC 2.0 gateway: the HTTP endpoint
// wallets (koilib) and apps call to read the chain and submit transactions.
// It speaks the Koinos JSON-RPC exactly (reference/KOINOS.md §2) and adds
// what a public endpoint needs and koinos-jsonrpc lacks: batches, limits,
// backpressure, timeouts and a closed-by-default CORS policy.
//
// # Translation
//
// The gateway knows no method by name. Like koinos-jsonrpc, it translates
// generically between JSON-RPC and Koinos service envelopes:
//
//   - The method "chain.get_head_info" (or the qualified
//     "koinos.rpc.chain.get_head_info") names service chain and the member
//     get_head_info of the oneof in koinos.rpc.chain.chain_request.
//   - params (a JSON object; absent or null means empty) is decoded with
//     kjson, the Koinos JSON codec (snake_case or lowerCamel names, 64-bit
//     integers as strings or numbers, bytes by btype, unknown fields
//     ignored), into that member's message, which is set into a new
//     chain_request.
//   - The Backend serves the envelope. A node runs a local Backend; a remote
//     gateway forwards the same envelopes over AMQP (koinos.rpc.<service>).
//   - From the chain_response, the member of the same name becomes the
//     result (kjson-encoded); a set error member (koinos.rpc.error_status)
//     becomes a JSON-RPC error.
//
// The tables behind this are read from the envelopes' descriptors once, in
// New (registry.go): a method added to a .proto is served with no change
// here, and a service is one line in KoinosServices. On the request path a
// method is one map lookup on the name's bytes.
//
// # Errors
//
// Codes and messages are koinos-jsonrpc's, because tools match on them; the
// data says what was wrong and what was expected (a kjson field path and
// reason, the served methods, the limit that was hit). HTTP status is 200
// for every JSON-RPC error except those of the transport rows below, and
// every response body, whatever the status, is a JSON-RPC response, because
// koilib parses the body before it looks at anything else.
//
//	code    message                           when                                         HTTP
//	-32700  Unable to parse request           the body is not JSON; malformed HTTP           200; 400
//	-32600  Invalid request                   not an object or batch, empty batch,           200
//	                                          jsonrpc != "2.0", id missing or not an
//	                                          integer/string/null (id null in the
//	                                          response), method not a string
//	-32600  Invalid request                   wrong path, method not POST/OPTIONS,           404, 405,
//	                                          headers too large, body read timed out         431, 408
//	-32601  Unable to translate request       malformed "service.method", unknown service    200
//	                                          or method, refused method, and params that
//	                                          are not an object or do not decode (Koinos
//	                                          uses -32601 for these, not -32602)
//	-32602  Request too large                 batch longer than MaxBatch                     200
//	-32602  Request too large                 body longer than MaxBodyBytes                  413
//	-32603  An internal server error ...      backend error, timeout, panic, wrong reply;    200
//	                                          data "rpc failed, ..."; a timeout's starts
//	                                          with Koinos's exact "rpc failed, context
//	                                          deadline exceeded", which koilib's
//	                                          sendTransaction looks for
//	-32603  error_status.message              the service answered error_status; data is     200
//	                                          error_status.data verbatim, a JSON document
//	                                          such as {"code":-201,"logs":[...]} that
//	                                          koilib JSON.parses (details are dropped, as
//	                                          Koinos drops them)
//	-32603  Response too large                a result would take the body over              200
//	                                          MaxResponseBytes
//	-32005  Server overloaded                 workers and queue full / waited past           503; 504
//	                                          QueueTimeout / shutting down
//
// A panic anywhere on the request path is recovered (HTTP 500, -32603) and
// counted in Stats.Panics: the gateway runs inside the node, and one bad
// request must not stop the chain. FuzzServe checks that no input gets
// there.
//
// # Limits and overload
//
// Every resource a client can consume is bounded; the defaults (Config):
//
//	MaxBodyBytes      4 MiB   request body; checked by fasthttp before the body is read
//	MaxBatch          100     calls per batch
//	MaxResponseBytes  16 MiB  response body; checked after each result is encoded
//	Workers           64      requests being served at once (a batch is one request)
//	QueueSize         1024    requests waiting for a worker; more are answered 503 at once
//	QueueTimeout      2 s     longest wait for a worker; then 504
//	BackendTimeout    10 s    each backend call; then -32603
//	ReadTimeout       10 s    reading a request (slow-body clients)
//	WriteTimeout      10 s    writing a response
//	IdleTimeout       60 s    idle keep-alive connections
//	MaxConns          10000   open connections (fasthttp Concurrency)
//
// The pool (admission.go) bounds work, not goroutines: fasthttp already
// serves each connection on its own goroutine, and a worker is a token that
// goroutine holds while it parses, calls the backend and encodes. Requests
// beyond the workers wait in FIFO order up to QueueSize and QueueTimeout, so
// under overload the gateway answers quickly with 503/504 (Retry-After on
// 503) instead of letting latency grow without bound; clients can tell this
// from a backend failure by code -32005. The elements of a batch run one
// after another on the batch's worker: running them in parallel would let
// one request take every worker, and MaxBatch bounds how long it holds one.
//
// Each backend call gets a context that ends at BackendTimeout or when
// Shutdown's drain deadline passes (callctx.go; its timer is created only
// if the backend waits on it). Koinos's gateway effectively times out after
// 1 s, which fails slow but healthy calls such as a large
// get_blocks_by_height under load; 10 s is the default here.
//
// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish (every response after Shutdown carries Connection: close)
// and, if its context ends first, cancels the backend calls still running.
//
// # HTTP surface
//
// POST at Config.Path (default "/"); the query string is ignored and no
// Content-Type is required (koilib's fetch sends a string body with none).
// OPTIONS is answered 204. CORS is off by default: no Access-Control headers,
// so browsers cannot read answers from other origins. With CORSOrigins set,
// a listed Origin is echoed (with Vary: Origin), or "*" allows any; the
// preflight allows POST and the Content-Type header for ten minutes. The
// default listen address is loopback, 127.0.0.1:8080.
//
// # Differences from koinos-jsonrpc, and why
//
//   - Batches (JSON arrays) are served, each element independently; Koinos
//     answers them -32700. An empty batch is -32600, as the specification
//     says. Valid JSON that is neither object nor array is -32600 (Koinos:
//     -32700).
//   - Bodies are bounded (Koinos reads them whole with io.ReadAll and only
//     refuses a translated request over 512 MiB), as are batches and
//     responses.
//   - Overload is answered 503/504 with a JSON-RPC body and code -32005;
//     Koinos answers 504 after 3 s waiting to enqueue, without a JSON body.
//   - The backend timeout is 10 s, not 1 s (above).
//   - CORS is off by default; Koinos v1.2 allows every origin.
//   - chain.invoke_system_call is refused by default besides Koinos's
//     blacklist (submit_block, propose_block, add_block): it runs any system
//     call, with caller data chosen by the caller, at the node's expense.
//     The cost: koilib's Provider.invokeSystemCall and
//     invokeGetContractMetadata do not work against a default public
//     listener. The list is configurable and matches prefixes of
//     koinos.rpc.<service>.<method>, as Koinos's does. There is no whitelist.
//   - Services are compiled in (Config.Services) rather than loaded from
//     descriptor files at run time: the node ships the .proto it implements.
//   - Requests without an id (notifications) are refused, as Koinos refuses
//     them: every method returns a value, and a silently dropped
//     submit_transaction answer helps nobody.
//   - Error data is specific ("field \"account\": invalid base58 ...")
//     where Koinos says "parameters could not be parsed".
//
// # Hot path
//
// Per call the gateway parses with a pooled fastjson parser, looks the
// method up without allocating, builds the envelope (three allocations, the
// price of protobuf reflection), gives the call a context (one allocation;
// no timer unless the backend waits), and appends the response with kjson
// straight into the fasthttp response's own pooled body buffer
// (Response.SwapBody: no copy; a buffer grown past 256 KiB, by a block
// read say, is written once and not kept by the connection, see
// keptBodyBuffer). Four allocations in all for a call without
// params, plus what the backend's reply and kjson's decoding of the params
// allocate. BenchmarkServeGetHeadInfo and BenchmarkServeSubmitTransaction
// measure it in-process; for a transaction about half the time is kjson
// decoding the params. Pooling the envelopes was considered and left out:
// it saves three small allocations next to a backend reply that makes more,
// and it would turn a backend that keeps req into a data race.
//
// Known limit: when a body over MaxBodyBytes is still being sent, fasthttp
// closes the connection after writing the 413 and a client that has not
// finished sending may see a reset instead of the answer (fasthttp issue
// #1348). A client that announces the length and waits, or sends
// Expect: 100-continue, sees the 413.
package rpcgw
