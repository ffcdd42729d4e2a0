package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emberchain/ember/internal/supervisor"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/rpcgw/grpcgw"
)

// The gRPC gateway (rpcgw/grpcgw): Koinos's services.proto over gRPC,
// through the same backend as JSON-RPC.

// newGRPC builds the gRPC gateway when Config.GRPCListen is set.
func (n *Node) newGRPC() error {
	if n.cfg.GRPCListen == "" {
		return nil
	}
	gc := n.cfg.GRPC
	if gc.Services == nil {
		gc.Services = Services()
	}
	if gc.Logger == nil {
		gc.Logger = n.log
	}
	if gc.Healthy == nil {
		gc.Healthy = func() bool {
			h, _ := n.Health(n.now())
			return h != HealthDown
		}
	}
	srv, err := grpcgw.New(gc, &backend{n: n})
	if err != nil {
		return err
	}
	n.grpc = srv
	return nil
}

// grpcService runs the gateway under the supervisor, after the chain loop
// and stopped before it, as JSON-RPC.
func (n *Node) grpcService() supervisor.Service {
	return supervisor.Service{Name: "grpc", Start: n.listenGRPC, Run: n.serveGRPC}
}

func (n *Node) listenGRPC(context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.GRPCListen)
	if err != nil {
		return fmt.Errorf("listen for gRPC on %s: %w", n.cfg.GRPCListen, err)
	}
	n.grpcLn = ln
	n.log.Info("gRPC listening", "addr", ln.Addr().String())
	return nil
}

// serveGRPC serves until ctx ends, then drains: calls under way finish (for
// up to 5 s), new ones are refused.
func (n *Node) serveGRPC(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- n.grpc.Serve(n.grpcLn) }()
	select {
	case err := <-served:
		return fmt.Errorf("gRPC server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.grpc.Shutdown(sctx); err != nil {
		n.log.Warn("gRPC shutdown", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, rpcgw.ErrServerClosed) {
		return fmt.Errorf("gRPC server: %w", err)
	}
	return nil
}

// GRPCAddr is the bound gRPC address once Started; "" when gRPC is off.
func (n *Node) GRPCAddr() string {
	if n.grpcLn == nil {
		return ""
	}
	return n.grpcLn.Addr().String()
}

// GRPCStats is the gRPC gateway's snapshot; zero when it is off.
func (n *Node) GRPCStats() grpcgw.Stats {
	if n.grpc == nil {
		return grpcgw.Stats{}
	}
	return n.grpc.Stats()
}
