package amqp

import (
	"context"
	"testing"
	"time"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// BenchmarkRoundTrip measures get_head_info round trips over the broker:
// Client -> koinos.rpc -> Server -> backend -> reply queue -> Client, with
// a backend that answers at once, from GOMAXPROCS×8 concurrent callers,
// with the default consumers and prefetch.
//
//	go test -run '^$' -bench RoundTrip -benchtime 5s ./netio/amqp
func BenchmarkRoundTrip(b *testing.B) {
	url := requireBroker(b)
	n := testNames(b, url)
	startServer(b, ServerConfig{URL: url, Names: n}, &fakeBackend{height: 1})
	c := startClient(b, ClientConfig{URL: url, Names: n, ProbeInterval: 50 * time.Millisecond})
	req := &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}}
	waitFor(b, "a first answer", func() bool { _, err := c.Serve(context.Background(), "chain", req); return err == nil })
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Serve(context.Background(), "chain", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
