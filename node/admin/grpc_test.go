package admin

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/emberchain/ember/node"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/rpcgw/grpcgw"
)

// TestGRPCMetrics: calls observed per method and status code, and the
// gateway's snapshot as gauges and counters.
func TestGRPCMetrics(t *testing.T) {
	m := NewMetrics()
	m.ObserveGRPC("chain.get_head_info", codes.OK, time.Millisecond)
	m.ObserveGRPC("chain.get_head_info", codes.OK, time.Millisecond)
	m.ObserveGRPC("chain.submit_block", codes.PermissionDenied, time.Microsecond)
	got := scrapeWith(t, fakeSource{node.Stats{HeadTime: time.Now(), GRPC: grpcgw.Stats{Running: 3, Queued: 2, Rejected: 5, QueueExpiry: 7, RefusedConns: 4}}}, m)
	for series, want := range map[string]float64{
		`ember_grpc_requests_total{code="OK",method="chain.get_head_info"}`:              2,
		`ember_grpc_requests_total{code="PermissionDenied",method="chain.submit_block"}`: 1,
		`ember_grpc_request_seconds_count{method="chain.get_head_info"}`:                 2,
		"ember_grpc_in_flight":                        3,
		"ember_grpc_queued":                           2,
		`ember_grpc_overload_total{reason="full"}`:    5,
		`ember_grpc_overload_total{reason="timeout"}`: 7,
		`ember_grpc_refused_connections_total`:        4,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (scraped: %v), want %v", series, v, ok, want)
		}
	}
}

// TestRPCGatewayMetrics: the JSON-RPC gateway's snapshot as gauges and
// counters, the answer buffers it keeps among them.
func TestRPCGatewayMetrics(t *testing.T) {
	got := scrape(t, fakeSource{node.Stats{HeadTime: time.Now(), RPC: rpcgw.Stats{Running: 3, Queued: 2, Rejected: 5, QueueExpiry: 7, AnswerBuffers: 48 << 20}}})
	for series, want := range map[string]float64{
		"ember_rpc_in_flight":                    3,
		"ember_rpc_queued":                       2,
		"ember_rpc_answer_buffer_bytes":          48 << 20,
		`ember_rpc_overload_total{status="503"}`: 5,
		`ember_rpc_overload_total{status="504"}`: 7,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (scraped: %v), want %v", series, v, ok, want)
		}
	}
}
