package rpcgw

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// A backend that cannot reach what serves the call (ErrUnavailable) makes
// the request HTTP 503 with Retry-After, like overload; a batch only when
// every call failed so.
func TestBackendUnavailable(t *testing.T) {
	fb := &fakeBackend{hook: func(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
		if service == "p2p" {
			return serveFixed(service, req)
		}
		return nil, fmt.Errorf("amqp: not connected to the broker: %w", ErrUnavailable)
	}}
	_, url := startServer(t, Config{}, fb)
	status, h, b := post(t, url, req("1", "chain.get_head_info", ""))
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
		t.Fatalf("HTTP %d Retry-After %q", status, h.Get("Retry-After"))
	}
	r := checkShape(t, b)
	if r.Error == nil || r.Error.Code != CodeOverloaded || r.Error.Message != msgUnavailable ||
		!strings.HasPrefix(deref(r.Error.Data), "rpc failed, amqp: not connected") {
		t.Fatalf("%+v %s", r.Error, deref(r.Error.Data))
	}
	both := "[" + req("1", "chain.get_head_info", "") + "," + req("2", "chain.get_chain_id", "") + "]"
	if status, _, _ := post(t, url, both); status != http.StatusServiceUnavailable {
		t.Fatalf("batch of unavailable calls: HTTP %d", status)
	}
	mixed := "[" + req("1", "chain.get_head_info", "") + "," + req("2", "p2p.get_gossip_status", "") + "]"
	if status, _, _ := post(t, url, mixed); status != http.StatusOK {
		t.Fatalf("batch with a served call: HTTP %d", status)
	}
}
