package grpcgw

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	koinosservices "github.com/emberchain/ember/proto/koinos/services"
)

// TestMaxConnsPerIP: with two connections from 127.0.0.1 open, a third is
// closed on accept and counted, so a client there cannot call; once one of
// the two closes, a client gets through.
func TestMaxConnsPerIP(t *testing.T) {
	s, _ := startServer(t, Config{MaxConnsPerIP: 2, ConnectionTimeout: time.Minute}, headBackend)
	addr := s.Addr().String()
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	head := func(timeout time.Duration) error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err = koinosservices.NewKoinosClient(conn).GetHeadInfo(ctx, &chainrpc.GetHeadInfoRequest{}, grpc.WaitForReady(true))
		return err
	}
	if err := head(time.Second); err == nil {
		t.Fatal("a third connection from one IP was served")
	}
	if n := s.Stats().RefusedConns; n == 0 {
		t.Fatal("no refused connection counted")
	}
	held[0].Close()
	if err := head(10 * time.Second); err != nil {
		t.Fatalf("after a connection closed: %v", err)
	}
}
