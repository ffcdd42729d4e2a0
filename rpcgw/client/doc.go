// Package client is a JSON-RPC 2.0 client for Ember and Koinos nodes, used
// by the CLI and the bench harness.
//
// Params and results are protobuf messages in the Koinos JSON form (package
// kjson), so a call reads like the Koinos service it names:
//
//	c, _ := client.New("http://127.0.0.1:8080/")
//	var head chainrpc.GetHeadInfoResponse
//	err := c.Call(ctx, "chain.get_head_info", nil, &head)
//
// A Client keeps its connections alive and is safe for many goroutines: it
// is built on fasthttp.HostClient, and request and response buffers come
// from pools, so a call costs little more than the round trip. Errors
// returned by the node are *Error, carrying the JSON-RPC code, message and
// data; ChainCode reads the Koinos chain error code out of the data.
package client
