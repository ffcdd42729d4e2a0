package main

import (
	"github.com/emberchain/ember/node/config"
	"github.com/emberchain/ember/rpcgw/grpcgw"
)

// grpcConfig is the gRPC gateway's configuration: [grpc] for what is its
// own, [rpc] for the limits it shares with JSON-RPC.
func grpcConfig(cfg config.Config) grpcgw.Config {
	return grpcgw.Config{
		RefusedMethods: cfg.RPC.RefusedMethods,
		MaxRecvBytes:   cfg.RPC.MaxBodyBytes, MaxSendBytes: cfg.RPC.MaxResponseBytes,
		Workers: cfg.RPC.Workers, QueueSize: cfg.RPC.QueueSize, QueueTimeout: cfg.RPC.QueueTimeout, BackendTimeout: cfg.RPC.BackendTimeout,
		ConnectionTimeout: cfg.RPC.ReadTimeout, IdleTimeout: cfg.RPC.IdleTimeout, MaxConns: cfg.RPC.MaxConns,
		MaxConnsPerIP:        cfg.RPC.MaxConnsPerIP,
		MaxConcurrentStreams: cfg.GRPC.MaxConcurrentStreams,
		KeepaliveMinTime:     cfg.GRPC.KeepaliveMinTime, KeepaliveTime: cfg.GRPC.KeepaliveTime, KeepaliveTimeout: cfg.GRPC.KeepaliveTimeout,
	}
}
