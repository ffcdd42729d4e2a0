package amqp

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/netio/amqp/amqptest"
	koinospb "github.com/emberchain/ember/proto/koinos"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw"
)

func requireBroker(t testing.TB) string { return amqptest.URL(t) }

// testNames returns names no other test run uses, deleted from the broker
// when the test ends.
func testNames(t testing.TB, url string) Names {
	n := TestNames(amqptest.Prefix(t))
	var queues []string
	for _, s := range append(rpcgw.KoinosServices(), rpcgw.Service{Name: "ember"}) {
		queues = append(queues, n.QueuePrefix+s.Name)
	}
	amqptest.Cleanup(t, url, queues, []string{n.RPCExchange, n.EventExchange})
	return n
}

// fakeBackend answers every service's reserved member and chain's
// get_head_info with a height of its own; gate, when set, holds calls.
type fakeBackend struct {
	height uint64
	calls  atomic.Int64
	gate   chan struct{}
}

func (f *fakeBackend) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r, ok := req.(*chainrpc.ChainRequest); ok {
		switch r.Request.(type) {
		case *chainrpc.ChainRequest_GetHeadInfo:
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoResponse{
				HeadTopology: &koinospb.BlockTopology{Height: f.height}}}}, nil
		case *chainrpc.ChainRequest_GetChainId:
			return nil, fmt.Errorf("fake failure")
		}
	}
	// Every other request: the reserved member of its response envelope.
	for _, s := range append(rpcgw.KoinosServices(), rpcgw.Service{}) {
		if s.Request != nil && s.Request.ProtoReflect().Descriptor().FullName() == req.ProtoReflect().Descriptor().FullName() {
			m := s.Response.ProtoReflect().Type().New()
			fd := m.Descriptor().Fields().ByName("reserved")
			m.Set(fd, m.NewField(fd))
			return m.Interface(), nil
		}
	}
	return nil, fmt.Errorf("fake: no service %s", service)
}

// startServer runs a Server until the test ends and waits until it
// consumes.
func startServer(t testing.TB, cfg ServerConfig, b rpcgw.Backend) *Server {
	t.Helper()
	s, err := NewServer(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	waitFor(t, "the server to consume", func() bool { return s.Stats().Connected })
	return s
}

// startClient runs a Client until the test ends and waits until it is
// connected and sees a consumer of every service (when want is set).
func startClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	amqptest.WaitFor(t, what, cond)
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}
