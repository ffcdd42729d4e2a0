package grpcgw

import (
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/emberchain/ember/rpcgw"
)

// Defaults of the gRPC-only settings. The limits it shares with JSON-RPC
// default to rpcgw's values.
const (
	DefaultMaxConcurrentStreams = 128
	DefaultKeepaliveMinTime     = 10 * time.Second
	DefaultKeepaliveTime        = 60 * time.Second
	DefaultKeepaliveTimeout     = 20 * time.Second
)

// Observer receives one observation per call: method is the Koinos name
// ("chain.get_head_info"), code the gRPC status code. Calls of methods the
// server does not serve are answered by grpc-go itself (Unimplemented) and
// not observed, so clients cannot create label values. It is called on the
// request path and must not block.
type Observer interface {
	ObserveGRPC(method string, code codes.Code, d time.Duration)
}

// Config configures a Server. The zero value serves koinos.services.koinos
// and the mempool extension with the same limits as the JSON-RPC gateway's
// defaults.
type Config struct {
	// Services are the envelopes of the Koinos services the backend
	// answers; each gRPC method is routed to the service whose envelope
	// holds its request message. Default rpcgw.KoinosServices().
	Services []rpcgw.Service
	// RefusedMethods are prefixes of methods refused with
	// PermissionDenied, as rpcgw.Config.RefusedMethods (koinos.rpc. is
	// implied). nil: rpcgw.DefaultRefusedMethods; empty non-nil: none.
	RefusedMethods []string

	// MaxRecvBytes bounds a request message (rpc.max_body_bytes).
	MaxRecvBytes int
	// MaxSendBytes bounds a response message (rpc.max_response_bytes).
	MaxSendBytes int
	// Workers, QueueSize and QueueTimeout bound the calls in the backend
	// as rpcgw's do (a pool of their own, of the same size).
	Workers      int
	QueueSize    int
	QueueTimeout time.Duration
	// BackendTimeout bounds each call inside the node; a client's shorter
	// deadline wins.
	BackendTimeout time.Duration
	// ConnectionTimeout bounds a new connection's handshake
	// (rpc.read_timeout).
	ConnectionTimeout time.Duration
	// MaxConns bounds open connections; more wait to be accepted.
	MaxConns int
	// MaxConnsPerIP bounds open connections from one client IP; one past
	// it is closed on accept (rpc.max_conns_per_ip). 0: no bound.
	MaxConnsPerIP int
	// MaxConcurrentStreams bounds the calls in flight on one connection.
	MaxConcurrentStreams int

	// KeepaliveMinTime is the shortest interval between a client's pings
	// the server tolerates; a client pinging more often, or pinging with
	// no call open, is sent GOAWAY (too_many_pings) and disconnected.
	KeepaliveMinTime time.Duration
	// KeepaliveTime is how long a connection may be idle before the
	// server pings it, and KeepaliveTimeout how long it waits for the
	// answer before closing it.
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// IdleTimeout closes connections with no call for this long
	// (rpc.idle_timeout).
	IdleTimeout time.Duration

	// Healthy, if set, is asked every second whether the node is fit to
	// serve; the health service answers SERVING or NOT_SERVING from it.
	// nil: SERVING while the server runs.
	Healthy func() bool

	Logger   *slog.Logger
	Observer Observer
}

// jsonRPC is c's share of the JSON-RPC gateway's settings: the limits both
// gateways have take rpcgw's defaults and checks from it.
func (c Config) jsonRPC() rpcgw.Config {
	return rpcgw.Config{
		Services: c.Services, RefusedMethods: c.RefusedMethods,
		MaxBodyBytes: c.MaxRecvBytes, MaxResponseBytes: c.MaxSendBytes,
		Workers: c.Workers, QueueSize: c.QueueSize, QueueTimeout: c.QueueTimeout, BackendTimeout: c.BackendTimeout,
		ReadTimeout: c.ConnectionTimeout, IdleTimeout: c.IdleTimeout, MaxConns: c.MaxConns, MaxConnsPerIP: c.MaxConnsPerIP, Logger: c.Logger,
	}
}

// EnsureDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	r := c.jsonRPC().EnsureDefaults()
	c.Services, c.RefusedMethods = r.Services, r.RefusedMethods
	c.MaxRecvBytes, c.MaxSendBytes = r.MaxBodyBytes, r.MaxResponseBytes
	c.Workers, c.QueueSize, c.QueueTimeout, c.BackendTimeout = r.Workers, r.QueueSize, r.QueueTimeout, r.BackendTimeout
	c.ConnectionTimeout, c.IdleTimeout, c.MaxConns, c.Logger = r.ReadTimeout, r.IdleTimeout, r.MaxConns, r.Logger
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&c.KeepaliveMinTime, DefaultKeepaliveMinTime}, {&c.KeepaliveTime, DefaultKeepaliveTime}, {&c.KeepaliveTimeout, DefaultKeepaliveTimeout}} {
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	return c
}

// Validate reports the first problem with c after defaults are applied.
func (c Config) Validate() error {
	if err := c.jsonRPC().Validate(); err != nil {
		return fmt.Errorf("grpcgw: %w", err)
	}
	c = c.EnsureDefaults()
	if c.MaxConcurrentStreams < 0 {
		return fmt.Errorf("grpcgw: MaxConcurrentStreams is %d; it must be positive (0 selects the default)", c.MaxConcurrentStreams)
	}
	if c.KeepaliveMinTime < 0 || c.KeepaliveTime < 0 || c.KeepaliveTimeout < 0 {
		return fmt.Errorf("grpcgw: the keepalive times (%v, %v, %v) must be positive (0 selects the default)",
			c.KeepaliveMinTime, c.KeepaliveTime, c.KeepaliveTimeout)
	}
	_, err := buildMethods(c.Services, c.RefusedMethods)
	return err
}
