package node

import (
	"context"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

// BenchmarkHeadInfoJSONRPC compares chain.get_head_info over JSON-RPC
// straight to a node with the same call through one remote gateway over the
// bus, in the same run, from GOMAXPROCS×16 concurrent HTTP callers.
//
//	go test -run '^$' -bench HeadInfoJSONRPC -benchtime 5s ./node
func BenchmarkHeadInfoJSONRPC(b *testing.B) {
	url := amqptest.URL(b)
	names := busNames(b, url)
	producer := keys.Ed25519FromSeed(seed("producer"))
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{producer.Address()}, BlockIntervalMs: 1000, Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	n, err := New(Config{DataDir: b.TempDir(), Genesis: g, ProducerKey: producer, RPCListen: "127.0.0.1:0",
		AMQP: &AMQPConfig{ServerConfig: amqp.ServerConfig{URL: url, Names: names}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-n.Started()
	gw := startGateway(b, url, names)
	gw.waitReady(b)
	for _, c := range []struct{ name, url string }{{"direct", "http://" + n.RPCAddr() + "/"}, {"gateway", gw.url}} {
		b.Run(c.name, func(b *testing.B) {
			cl, err := client.New(c.url)
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var r chainrpc.GetHeadInfoResponse
					if err := cl.Call(context.Background(), "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
