package node

// apiDocGRPC closes docs/api.md (TestAPIDoc writes it after the JSON-RPC
// examples and checks the file holds it).
const apiDocGRPC = "## gRPC\n\n" +
	`Koinos's gRPC service, ` + "`koinos.services.koinos`" + ` (koinos-proto ` + "`koinos/rpc/services.proto`" + `), with its
package, service, method and message names unchanged, on ` + "`grpc.listen`" + ` (empty by default: off; Koinos's
gateway uses port 50051; keep it on loopback unless clients elsewhere need it). Clients generated from
Koinos's .proto files work unmodified; Ember's copy is ` + "`proto/koinos/services/services.proto`" + `. Each
method answers as its JSON-RPC twin above (` + "`get_head_info`" + ` as ` + "`chain.get_head_info`" + `, through the same
backend), with the message in protobuf instead of JSON. The server also offers server reflection (so
grpcurl and other generic clients need no .proto files) and the standard health service
` + "`grpc.health.v1.Health`" + ` (SERVING while the node is up, NOT_SERVING while it starts, has failed or shuts down).

**Beyond Koinos:** ` + "`ember.services.mempool`" + ` (` + "`proto/ember/services/mempool.proto`" + `) serves the mempool
methods Koinos's service leaves out, with Koinos's messages: ` + "`check_account_nonce`" + `,
` + "`get_reserved_account_rc`" + `, ` + "`get_pending_nonce`" + `, ` + "`get_pending_transaction_count`" + `,
` + "`get_pending_transactions_by_id`" + `. It is Ember's extension; a client written for Koinos does not know it.

**Errors**, as Koinos's gateway (koinos-grpc) maps them, and beyond:

| status | when |
|---|---|
| InvalidArgument | the node refused the call: the message is JSON-RPC's -32603 ` + "`message`" + `; its ` + "`data`" + ` (` + "`{\"code\": ..., \"logs\": [...]}`" + `) is in the trailer ` + "`koinos-error-data`" + ` (beyond Koinos). Also a request that does not decode as the method's message, with what was wrong |
| PermissionDenied | a refused internal method (` + "`submit_block`" + `, ` + "`invoke_system_call`" + `; ` + "`rpc.refused_methods`" + `) |
| Internal | the backend failed or answered another method (` + "`unexpected response type`" + `) |
| ResourceExhausted | a message over ` + "`rpc.max_body_bytes`" + ` or ` + "`rpc.max_response_bytes`" + `; overloaded: every worker busy and the queue full, or a wait past ` + "`rpc.queue_timeout`" + `; retry later |
| DeadlineExceeded | the call took longer than the client's deadline or ` + "`rpc.backend_timeout`" + ` |
| Unavailable | the node is shutting down, or a backend it forwards to cannot be reached |
| Unimplemented | a method the node does not serve |

**Limits** are JSON-RPC's (` + "`rpc.*`" + `): refused methods, message sizes, ` + "`rpc.workers`" + ` calls at once with
` + "`rpc.queue_size`" + ` waiting (a pool of its own, the same size), ` + "`rpc.backend_timeout`" + ` per call,
` + "`rpc.max_conns`" + ` connections, ` + "`rpc.max_conns_per_ip`" + ` from one client IP (one more is closed on accept and counted in
` + "`ember_grpc_refused_connections_total`" + `); plus ` + "`grpc.max_concurrent_streams`" + ` calls per connection and keepalive
enforcement: a client that pings more often than ` + "`grpc.keepalive_min_time`" + ` (10 s), or with no call
open, is sent GOAWAY ` + "`too_many_pings`" + ` and disconnected. Metrics: ` + "`ember_grpc_requests_total{method,code}`" + `,
` + "`ember_grpc_request_seconds`" + `, ` + "`ember_grpc_in_flight`" + `, ` + "`ember_grpc_queued`" + `, ` + "`ember_grpc_overload_total`" + `.

**grpcurl** (` + "`go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4`" + `), with ` + "`grpc.listen = \"127.0.0.1:50051\"`" + `.
grpcurl speaks protobuf's JSON mapping, not Koinos's: lowerCamelCase fields, bytes (ids and
addresses too) as standard base64, 64-bit integers as strings.

` + "```" + `
$ grpcurl -plaintext 127.0.0.1:50051 list
ember.services.mempool
grpc.health.v1.Health
grpc.reflection.v1.ServerReflection
grpc.reflection.v1alpha.ServerReflection
koinos.services.koinos

$ grpcurl -plaintext -d '{}' 127.0.0.1:50051 koinos.services.koinos/get_head_info
{
  "headTopology": {
    "id": "EiC+I91wCN8xphXpcJFo9HJy0ZjeMx8+ZOwQFvOIckaSzg==",
    "height": "2",
    "previous": "EiDNYFioMomutGO4Zr49Z3MP2LtTrZlkth05711EwPsRgg=="
  },
  "lastIrreversibleBlock": "2",
  "headStateMerkleRoot": "EiDjsMRCmPwcFJr79MiZb7kkJ65B5GSbk0yklZkbeFK4VQ==",
  "headBlockTime": "1796476371467"
}

$ grpcurl -plaintext -d @ 127.0.0.1:50051 koinos.services.koinos/submit_transaction < tx.json
` + "```" + `

where ` + "`tx.json`" + ` is ` + "`{\"transaction\": {...}, \"broadcast\": true}`" + ` with a signed transaction in the same JSON
mapping (` + "`node/grpcurl_test.go`" + ` submits one this way in ` + "`make test`" + `). A call the node refuses:

` + "```" + `
$ grpcurl -plaintext -d '{}' 127.0.0.1:50051 koinos.services.koinos/submit_block
ERROR:
  Code: PermissionDenied
  Message: chain.submit_block is not served on this endpoint
` + "```" + `
`
