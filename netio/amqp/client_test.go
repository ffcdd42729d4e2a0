package amqp

import (
	"context"
	"testing"
	"time"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// A client whose publishing channel closes under a live connection (a
// broker refusal closes only the channel) starts a new session instead of
// failing every call from then on.
func TestClientChannelLost(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	startServer(t, ServerConfig{URL: url, Names: n}, &fakeBackend{height: 4})
	req := &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}}
	c := startClient(t, ClientConfig{URL: url, Names: n, ProbeInterval: 50 * time.Millisecond,
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	waitFor(t, "a first answer", func() bool { _, err := c.Serve(context.Background(), "chain", req); return err == nil })
	c.cur.Load().pub.Close()
	waitFor(t, "a new session", func() bool { return c.Stats().Reconnects > 0 })
	waitFor(t, "answers again", func() bool { _, err := c.Serve(context.Background(), "chain", req); return err == nil })
}
