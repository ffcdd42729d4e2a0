package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/proccpu"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

// BenchmarkHeadInfoJSONRPC compares chain.get_head_info over JSON-RPC
// straight to a node with the same call through one and through two remote
// gateways over the bus, in the same run, from GOMAXPROCS×16 concurrent
// HTTP callers (spread over the gateways).
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
	gw2 := startGateway(b, url, names)
	gw2.waitReady(b)
	for _, c := range []struct {
		name string
		urls []string
	}{{"direct", []string{"http://" + n.RPCAddr() + "/"}}, {"gateway", []string{gw.url}}, {"two-gateways", []string{gw.url, gw2.url}}} {
		b.Run(c.name, func(b *testing.B) {
			var cls []*client.Client
			for _, u := range c.urls {
				cl, err := client.New(u)
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				cls = append(cls, cl)
			}
			var next atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			cpu0, broker0 := proccpu.Self(), brokerCPU()
			b.RunParallel(func(pb *testing.PB) {
				cl := cls[int(next.Add(1))%len(cls)] // callers spread over the gateways
				for pb.Next() {
					var r chainrpc.GetHeadInfoResponse
					if err := cl.Call(context.Background(), "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
			// CPU per call: throughput on two shared cores moves with
			// whatever else runs; the cost of a call moves much less.
			b.ReportMetric(float64((proccpu.Self()-cpu0).Microseconds())/float64(b.N), "go-µs/call")
			if broker0 >= 0 {
				b.ReportMetric(float64((brokerCPU()-broker0).Microseconds())/float64(b.N), "broker-µs/call")
			}
		})
	}
}
