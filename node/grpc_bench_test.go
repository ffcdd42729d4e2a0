package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	koinosservices "github.com/emberchain/ember/proto/koinos/services"
	"github.com/emberchain/ember/rpcgw/client"
)

// BenchmarkHeadInfoGRPC compares chain.get_head_info over JSON-RPC with
// koinos.services.koinos/get_head_info over gRPC, on one node in the same
// run, from GOMAXPROCS×16 concurrent callers over loopback: JSON-RPC
// callers share the client package's pool of HTTP/1.1 connections, gRPC
// callers one HTTP/2 connection (as a gRPC client does by default) or
// four.
//
//	go test -run '^$' -bench HeadInfoGRPC -benchtime 5s ./node
func BenchmarkHeadInfoGRPC(b *testing.B) {
	producer := keys.Ed25519FromSeed(seed("producer"))
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{producer.Address()}, BlockIntervalMs: 1000, Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	n, err := New(Config{DataDir: b.TempDir(), Genesis: g, ProducerKey: producer, RPCListen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-n.Started()

	run := func(b *testing.B, call func(i int) error) {
		b.SetParallelism(16)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(1)) // callers spread over the connections
			for pb.Next() {
				if err := call(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	}
	b.Run("json-rpc", func(b *testing.B) {
		cl, err := client.New("http://" + n.RPCAddr() + "/")
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		run(b, func(int) error {
			var r chainrpc.GetHeadInfoResponse
			return cl.Call(context.Background(), "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r)
		})
	})
	for _, conns := range []int{1, 4} {
		name := "grpc-1conn"
		if conns == 4 {
			name = "grpc-4conns"
		}
		b.Run(name, func(b *testing.B) {
			var cls []koinosservices.KoinosClient
			for range conns {
				cls = append(cls, koinosservices.NewKoinosClient(grpcConn(b, n)))
			}
			run(b, func(i int) error {
				_, err := cls[i%len(cls)].GetHeadInfo(context.Background(), &chainrpc.GetHeadInfoRequest{})
				return err
			})
		})
	}
}
