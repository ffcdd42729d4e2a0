// Package grpcgw is the gRPC gateway: Koinos's koinos.services.koinos
// service (koinos-proto koinos/rpc/services.proto) with its exact package,
// service, method and message names, and ember.services.mempool, Ember's
// extension with the mempool methods Koinos's service leaves out. It
// serves them through the same rpcgw.Backend as the JSON-RPC gateway, so
// each method answers as its JSON-RPC twin ("chain.get_head_info") does.
//
// Each call's request message is wrapped in its service's envelope
// (koinos.rpc.chain.chain_request), handed to the backend, and the answer
// unwrapped from the response envelope. Errors map to status codes as
// Koinos's gateway (koinos-grpc) maps them: the backend's
// koinos.rpc.error_status is InvalidArgument with its message (its data,
// the chain's error code and logs, goes in the koinos-error-data trailer),
// an unexpected answer is Internal, a refused method PermissionDenied.
// Beyond Koinos: a request that does not decode is InvalidArgument (grpc-go
// alone would say Internal; see rawRequest), overload ResourceExhausted, an
// unreachable backend Unavailable, a call past its deadline
// DeadlineExceeded.
//
// The limits are the JSON-RPC gateway's: refused internal methods, message
// sizes, a worker pool with a bounded queue (rpcgw.Admission), a deadline
// per backend call, a bound on connections; plus a bound on calls per
// connection and keepalive enforcement. It also serves server reflection
// and the standard health service (grpc.health.v1).
package grpcgw
