package rpcgw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	acchistrpc "github.com/emberchain/ember/proto/koinos/rpc/account_history"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	contractmetarpc "github.com/emberchain/ember/proto/koinos/rpc/contract_meta_store"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
)

// Defaults. Each Config field names the default it takes when left zero.
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultPath             = "/"
	DefaultMaxBodyBytes     = 4 << 20
	DefaultMaxBatch         = 100
	DefaultMaxResponseBytes = 16 << 20
	DefaultWorkers          = 64
	DefaultQueueSize        = 1024
	DefaultQueueTimeout     = 2 * time.Second
	DefaultBackendTimeout   = 10 * time.Second
	DefaultReadTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultMaxConns         = 10000
)

// DefaultRefusedMethods are the methods the public listener refuses: they
// let a caller inject blocks or run privileged system calls. Koinos's default
// config blacklists the first three; invoke_system_call is added because it
// can run any system call with caller data of the caller's choosing.
var DefaultRefusedMethods = []string{
	"chain.submit_block",
	"chain.propose_block",
	"block_store.add_block",
	"chain.invoke_system_call",
}

// BatchPreparer is an optional extension of Backend. Before serving a
// JSON-RPC batch call by call, in order, the gateway passes every decoded
// call of the batch to Prepare, so the backend can start work the calls
// share — the node verifies all of a batch's transactions in one go, so the
// verifier gets full batches. Prepare must not change what Serve answers:
// it only warms what Serve would compute anyway. It runs under the same
// backend timeout as a call, and must not keep the requests.
type BatchPreparer interface {
	Prepare(ctx context.Context, calls []PreparedCall)
}

// PreparedCall is one decoded call of a batch.
type PreparedCall struct {
	Service string        // "chain"
	Request proto.Message // the request envelope, as Serve will receive it
}

// Service names a Koinos service and its request and response envelopes
// (koinos.rpc.<name>.<name>_request / _response). The gateway learns the
// methods from the envelopes' oneofs, so a method added to the .proto is
// served without a change here.
type Service struct {
	Name     string        // "chain"; the method prefix and the Backend's service argument
	Request  proto.Message // e.g. (*chainrpc.ChainRequest)(nil)
	Response proto.Message // e.g. (*chainrpc.ChainResponse)(nil)
}

// KoinosServices returns the seven Koinos services the node serves.
func KoinosServices() []Service {
	return []Service{
		{"chain", (*chainrpc.ChainRequest)(nil), (*chainrpc.ChainResponse)(nil)},
		{"block_store", (*blockstorerpc.BlockStoreRequest)(nil), (*blockstorerpc.BlockStoreResponse)(nil)},
		{"mempool", (*mempoolrpc.MempoolRequest)(nil), (*mempoolrpc.MempoolResponse)(nil)},
		{"transaction_store", (*txstorerpc.TransactionStoreRequest)(nil), (*txstorerpc.TransactionStoreResponse)(nil)},
		{"account_history", (*acchistrpc.AccountHistoryRequest)(nil), (*acchistrpc.AccountHistoryResponse)(nil)},
		{"contract_meta_store", (*contractmetarpc.ContractMetaStoreRequest)(nil), (*contractmetarpc.ContractMetaStoreResponse)(nil)},
		{"p2p", (*p2prpc.P2PRequest)(nil), (*p2prpc.P2PResponse)(nil)},
	}
}

// Observer receives one observation per JSON-RPC call (each batch element
// counts as one call) and per request rejected before it was parsed.
// method is the canonical "service.method", or "" when the request named no
// served method (so that a metrics label cannot be inflated by clients);
// code is 0 on success, else the JSON-RPC error code. It is called on the
// request path and must not block.
type Observer interface {
	ObserveRequest(method string, code int, d time.Duration)
}

// Config configures a Server. The zero value serves the Koinos services on
// DefaultAddr with every default below.
type Config struct {
	// Addr is the TCP address ListenAndServe binds. Default DefaultAddr
	// (loopback: exposing the API beyond the host is an operator decision).
	Addr string
	// Path is the only URL path served. Default "/", as Koinos.
	Path string

	// Services lists the services served. Default KoinosServices().
	Services []Service
	// RefusedMethods are prefixes of methods refused with -32601, matched
	// against the qualified name koinos.rpc.<service>.<method>; an entry
	// without the "koinos.rpc." prefix gets it, as in Koinos's blacklist.
	// nil means DefaultRefusedMethods; an empty non-nil slice refuses none.
	RefusedMethods []string

	// MaxBodyBytes bounds an HTTP request body. Default 4 MiB.
	MaxBodyBytes int
	// MaxBatch bounds the number of calls in one batch. Default 100.
	MaxBatch int
	// MaxResponseBytes bounds a response body; a result that would push it
	// over is replaced by an error. Default 16 MiB.
	MaxResponseBytes int

	// Workers bounds the HTTP requests being served at once (a batch is one
	// request). Default 64.
	Workers int
	// QueueSize bounds the requests waiting for a worker; beyond it requests
	// are answered 503 at once. Default 1024; -1 means no waiting at all.
	QueueSize int
	// QueueTimeout bounds the wait for a worker; past it the request is
	// answered 504. Default 2 s.
	QueueTimeout time.Duration
	// BackendTimeout bounds each backend call. Default 10 s.
	BackendTimeout time.Duration

	// ReadTimeout bounds reading a whole request. Default 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 10 s.
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Default 60 s, longer
	// than the client package's idle period so that clients, not the server,
	// close idle connections (a POST on a connection the server is closing
	// fails and cannot be retried safely).
	IdleTimeout time.Duration
	// MaxConns bounds open connections. Default 10000.
	MaxConns int
	// MaxConnsPerIP bounds open connections per client IP. Default 0: no bound.
	MaxConnsPerIP int

	// CORSOrigins lists the origins browsers may call from
	// ("https://app.example"), or "*" for any. Default none: CORS off.
	CORSOrigins []string

	// Logger receives the gateway's logs. Default: discarded.
	Logger *slog.Logger
	// Observer, if set, receives per-call observations for metrics.
	Observer Observer
}

// EnsureDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.Services == nil {
		c.Services = KoinosServices()
	}
	if c.RefusedMethods == nil {
		c.RefusedMethods = DefaultRefusedMethods
	}
	setInt(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setInt(&c.MaxBatch, DefaultMaxBatch)
	setInt(&c.MaxResponseBytes, DefaultMaxResponseBytes)
	setInt(&c.Workers, DefaultWorkers)
	setInt(&c.QueueSize, DefaultQueueSize)
	setInt(&c.MaxConns, DefaultMaxConns)
	setDur(&c.QueueTimeout, DefaultQueueTimeout)
	setDur(&c.BackendTimeout, DefaultBackendTimeout)
	setDur(&c.ReadTimeout, DefaultReadTimeout)
	setDur(&c.WriteTimeout, DefaultWriteTimeout)
	setDur(&c.IdleTimeout, DefaultIdleTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Validate reports the first problem with c after defaults are applied.
func (c Config) Validate() error {
	c = c.EnsureDefaults()
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("rpcgw: path %q must start with /", c.Path)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxBodyBytes", c.MaxBodyBytes}, {"MaxBatch", c.MaxBatch},
		{"MaxResponseBytes", c.MaxResponseBytes}, {"Workers", c.Workers},
		{"MaxConns", c.MaxConns},
	} {
		if f.v < 0 {
			return fmt.Errorf("rpcgw: %s is %d; it must be positive (0 selects the default)", f.name, f.v)
		}
	}
	if c.MaxConnsPerIP < 0 {
		return fmt.Errorf("rpcgw: MaxConnsPerIP is %d; it must be 0 (no bound) or positive", c.MaxConnsPerIP)
	}
	if c.QueueSize < -1 {
		return fmt.Errorf("rpcgw: QueueSize is %d; it must be -1 (no queue), 0 (default) or positive", c.QueueSize)
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"QueueTimeout", c.QueueTimeout}, {"BackendTimeout", c.BackendTimeout},
		{"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout},
		{"IdleTimeout", c.IdleTimeout},
	} {
		if f.v < 0 {
			return fmt.Errorf("rpcgw: %s is %v; it must be positive (0 selects the default)", f.name, f.v)
		}
	}
	if len(c.Services) == 0 {
		return errors.New("rpcgw: no services configured")
	}
	for _, m := range c.RefusedMethods {
		if m == "" || strings.ContainsAny(m, " \t\r\n") {
			return fmt.Errorf("rpcgw: refused method %q is not a method name prefix", m)
		}
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("rpcgw: CORS origin %q must be \"*\" or scheme://host[:port]", o)
		}
	}
	// The registry checks the envelopes themselves.
	if _, err := newRegistry(c.Services, c.RefusedMethods); err != nil {
		return err
	}
	return nil
}
