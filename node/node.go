package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/internal/supervisor"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/rpcgw/grpcgw"
	"github.com/emberchain/ember/store"
)

// Verifier checks signatures: the sigverify pool in production.
type Verifier interface {
	VerifyTx(ctx context.Context, tx *protocol.Transaction, source string) (*sigverify.VerifiedTx, error)
	VerifyBlock(ctx context.Context, b *protocol.Block, maxTxs int) (*sigverify.VerifiedBlock, error)
}

// Config configures a Node. Zero fields take defaults.
type Config struct {
	// DataDir holds the node's data: the Pebble store (DataDir/store) and
	// the pending transactions saved across a graceful restart.
	DataDir string
	Genesis *genesis.Genesis
	// ProducerKey, when set and listed in genesis, makes the node produce
	// in its slots.
	ProducerKey keys.Signer
	// TimeBudgetPercent is the share of the block interval that building
	// and storing a block may take (chainloop.go); 0: automatic.
	TimeBudgetPercent int
	// SignGuard persists each signed slot before the block leaves the node
	// (slashing protection); nil allows every signature.
	SignGuard producer.Guard
	// RPCListen is the JSON-RPC address; "" disables the gateway.
	RPCListen string
	RPC       rpcgw.Config

	// GRPCListen is the gRPC gateway's address (node/grpc.go); "" disables
	// it.
	GRPCListen string
	GRPC       grpcgw.Config

	Mempool mempool.Config
	Store   store.Options
	// Chain engine bounds (see chain.Config).
	CheckpointInterval uint64
	MaxForkBlocks      int
	MaxReadCompute     uint64 // chain.Config.MaxReadCompute
	MaxCachedAccounts  int
	// Verifier checks signatures; nil: a sigverify.Pool with Verify.
	Verifier Verifier
	// Verify configures the default verifier (Limits is set from genesis).
	Verify sigverify.PoolConfig
	// Observer receives block timings (nil: none).
	Observer Observer
	// LogMempool writes admissions to the mempool into the durable event
	// log (the AMQP publisher's koinos.transaction.accept and
	// koinos.mempool.accept); off, the log holds block events only.
	LogMempool bool
	// Notify receives service-manager notifications: "READY=1" once the
	// node serves, "WATCHDOG=1" from the chain loop, "STOPPING=1" at
	// shutdown (systemd's sd_notify; nil: none).
	Notify func(state string)
	// WatchdogInterval is how often the chain loop sends WATCHDOG=1 (0:
	// never); systemd's WatchdogSec/2.
	WatchdogInterval time.Duration
	// Events configures the event stream (events.Config's defaults).
	Events events.Config
	// P2P, when set, runs the network (netio/p2p); nil: the node runs
	// alone.
	P2P *p2p.Config
	// AMQP, when set, serves the Koinos service queues on a RabbitMQ
	// (node/amqp.go); nil: off.
	AMQP *AMQPConfig

	Logger *slog.Logger
	// Now is the clock; nil is time.Now. Tests inject a fake.
	Now func() time.Time
}

// Node is a running Ember node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	store    *store.Store
	chain    *chain.Chain
	pool     *mempool.Mempool
	verifier Verifier
	producer *producer.Producer
	rpc      *rpcgw.Server
	rpcLn    net.Listener
	grpc     *grpcgw.Server
	grpcLn   net.Listener
	net      *p2p.Service
	amqp     *amqp.Server
	pub      *amqp.Publisher // the AMQP event publisher (bus.go); nil when off
	ownPool  *sigverify.Pool // the default verifier, closed with the node

	blockIn chan blockRequest
	started chan struct{}
	// headWait is closed and replaced on every advanced block, waking
	// anyone waiting for a new head.
	headMu   sync.Mutex
	headWait chan struct{}

	events *events.Stream

	fatal         atomic.Pointer[error]
	runOnce       atomic.Bool
	closeOnce     sync.Once
	loopTick      atomic.Int64 // unix nanos of the chain loop's last iteration
	prepared      sync.Map     // *protocol.Transaction -> preparedTx (backend.Prepare)
	stopping      atomic.Bool
	producerStats atomic.Value // producer.Stats, published by the chain loop
	txCost        costAverage  // build and store time per transaction (chain loop only)
	storeCost     costAverage  // store time per transaction (chain loop only)
	lastCommit    commitTiming // the chain loop's last commit, for its log lines
	disk          diskFault    // the chain loop's disk fault record (diskfault.go)
	diskStats     atomic.Pointer[DiskStats]
}

// blockRequest hands verified blocks to the chain loop: one block (gossip,
// submit_block) or a group (sync), applied in order and committed with one
// sync.
type blockRequest struct {
	vbs    []*sigverify.VerifiedBlock
	origin events.Origin
	peer   string
	verify time.Duration
	reply  chan blockResult
}

// blockResult is the outcome of a blockRequest: the entries of the blocks
// accepted (in order; known blocks are left out), and the error of the
// block that stopped the group.
type blockResult struct {
	entries []*chain.BlockEntry
	err     error
}

// New opens the store and the chain (replaying after a restart) and
// prepares the node; Run starts it.
func New(cfg Config) (*Node, error) {
	if cfg.Genesis == nil {
		return nil, errors.New("node: Config.Genesis is required")
	}
	if cfg.DataDir == "" && cfg.Store.FS == nil {
		return nil, errors.New("node: Config.DataDir is required")
	}
	n := &Node{cfg: cfg, log: cfg.Logger, now: cfg.Now, blockIn: make(chan blockRequest, BlockQueueDepth), started: make(chan struct{}), headWait: make(chan struct{}), storeCost: costAverage{cautious: true}}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.now == nil {
		n.now = time.Now
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "store"), withLogger(cfg.Store, n.log))
	if err != nil {
		return nil, err
	}
	c, r, err := chain.Open(chain.Config{
		Genesis: cfg.Genesis, Storage: st, Log: n.log,
		CheckpointInterval: cfg.CheckpointInterval, MaxForkBlocks: cfg.MaxForkBlocks, MaxCachedAccounts: cfg.MaxCachedAccounts,
		MaxReadCompute: cfg.MaxReadCompute, Now: n.now,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Commit(r); err != nil {
		st.Close()
		c.Close()
		return nil, fmt.Errorf("node: write genesis: %w", err)
	}
	c.Advance(r)
	n.store, n.chain = st, c
	ec := cfg.Events
	if ec.Logger == nil {
		ec.Logger = n.log
	}
	n.events = events.New(ec)
	n.pool = mempool.New(cfg.Mempool)
	n.verifier = cfg.Verifier
	if n.verifier == nil {
		vc := cfg.Verify
		if vc.NewTimer == nil {
			vc.NewTimer = newTimer
		}
		vc.Limits = c.Limits()
		pool, err := sigverify.NewPool(vc)
		if err != nil {
			n.closeStore()
			return nil, err
		}
		n.verifier, n.ownPool = pool, pool
	}
	n.producerStats.Store(producer.Stats{})
	if cfg.ProducerKey != nil {
		n.producer = producer.New(cfg.ProducerKey, n.pool, cfg.SignGuard)
		if !n.producer.IsProducer(c) {
			n.log.Warn("the producer key is not in the genesis schedule; this node will not produce", "address", cfg.ProducerKey.Address())
			n.producer = nil
		}
	}
	if cfg.RPCListen != "" {
		if cfg.RPC.Services == nil {
			cfg.RPC.Services = Services()
		}
		if cfg.RPC.Logger == nil {
			cfg.RPC.Logger = n.log
		}
		n.rpc, err = rpcgw.New(cfg.RPC, &backend{n: n})
		if err != nil {
			n.closeStore()
			return nil, err
		}
	}
	if err := n.newAMQP(); err != nil {
		n.closeStore()
		return nil, err
	}
	if err := n.newGRPC(); err != nil {
		n.closeStore()
		return nil, err
	}
	if cfg.P2P != nil {
		pc := *cfg.P2P
		if pc.Logger == nil {
			pc.Logger = n.log
		}
		if pc.Now == nil {
			pc.Now = n.now
		}
		gp := cfg.Genesis.Params()
		pc.BlockInterval = time.Duration(gp.BlockIntervalMs) * time.Millisecond
		pc.MaxBlockTransactions = int(gp.Limits.MaxBlockTransactions)
		// The network limit counts the transactions' own bytes; in a block
		// each adds a few bytes of framing (at most 4 for any size the
		// limits allow), and the header and signature come on top.
		pc.MaxBlockBytes = int(min(gp.Resources.NetworkBandwidthLimit, 1<<30)) + 4*pc.MaxBlockTransactions + 64<<10
		if n.net, err = p2p.New(pc, netNode{n}); err != nil {
			n.closeStore()
			return nil, err
		}
	}
	v := c.View()
	n.log.Info("node opened", "chain_id", fmt.Sprintf("0x%x", v.ChainID().Multihash()), "head", v.Head.Height, "lib", v.LIB.Height)
	return n, nil
}

func withLogger(o store.Options, l *slog.Logger) store.Options {
	if o.Logger == nil {
		o.Logger = l
	}
	return o
}

var _ Verifier = (*sigverify.Pool)(nil)

// Chain returns the engine; only its View is safe to use concurrently.
func (n *Node) Chain() *chain.Chain { return n.chain }

// Mempool returns the pool.
func (n *Node) Mempool() *mempool.Mempool { return n.pool }

// Store returns the store.
func (n *Node) Store() *store.Store { return n.store }

// Producer returns the producer, or nil when the node does not produce.
func (n *Node) Producer() *producer.Producer { return n.producer }

// Started is closed once the node serves: store open, RPC bound.
func (n *Node) Started() <-chan struct{} { return n.started }

// RPCAddr is the bound JSON-RPC address, once Started.
func (n *Node) RPCAddr() string {
	if n.rpcLn == nil {
		return ""
	}
	return n.rpcLn.Addr().String()
}

// Events is the node's event stream: every admitted transaction, accepted
// block, head change and irreversibility advance, after it is durable.
func (n *Node) Events() *events.Stream { return n.events }

// Run serves until ctx is done, then shuts down gracefully: the services
// stop in reverse order (JSON-RPC drains, then the chain loop stops
// producing and checkpoints state), the pending transactions are saved and
// the store is closed. It returns the first fatal error, if any. extra
// services (the admin listener) run under the same supervisor, started
// after the node's own and stopped before them. A Node runs once.
func (n *Node) Run(ctx context.Context, extra ...supervisor.Service) error {
	if !n.runOnce.CompareAndSwap(false, true) {
		return errors.New("node: Run called twice")
	}
	services := []supervisor.Service{
		{Name: "indexer", Run: n.runIndexer},
	}
	if n.cfg.LogMempool {
		services = append(services, supervisor.Service{Name: "mempool-log", Run: n.runMempoolLog})
	}
	if n.pub != nil {
		// Before the chain loop, stopped after it: the last events are
		// published if the broker is there, and in any case resumed
		// from the log at the next start.
		services = append(services, supervisor.Service{Name: "amqp-events", Run: n.pub.Run})
	}
	services = append(services, supervisor.Service{Name: "chain", Start: n.startChain, Run: n.chainLoop, StopTimeout: 30 * time.Second})
	if n.net != nil {
		services = append(services, supervisor.Service{Name: "p2p", Start: n.net.Start, Run: n.net.Run})
	}
	if n.amqp != nil {
		services = append(services, n.amqpService())
	}
	if n.rpc != nil {
		services = append(services, supervisor.Service{Name: "json-rpc", Start: n.listenRPC, Run: n.serveRPC})
	}
	if n.grpc != nil {
		services = append(services, n.grpcService())
	}
	services = append(services, extra...)
	err := supervisor.Run(ctx, supervisor.Config{
		Logger: n.log,
		Ready: func() {
			close(n.started)
			n.notify("READY=1")
		},
		Stopping: func() {
			n.stopping.Store(true)
			n.notify("STOPPING=1")
			n.log.Info("shutting down")
		},
	}, services...)
	if err != nil {
		n.fail(err)
	}
	if err := n.savePending(); err != nil {
		n.log.Error("pending transactions could not be saved", "err", err)
	}
	n.events.Close()
	if err := n.closeStore(); err != nil {
		n.fail(err)
	}
	if p := n.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// startChain re-admits the transactions saved at the last shutdown before
// anything else can submit.
func (n *Node) startChain(ctx context.Context) error {
	if err := n.restorePending(ctx); err != nil {
		n.log.Warn("pending transactions from the last run were not restored", "err", err)
	}
	n.loopTick.Store(n.now().UnixNano())
	return nil
}

func (n *Node) listenRPC(context.Context) error {
	ln, err := net.Listen("tcp", n.cfg.RPCListen)
	if err != nil {
		return fmt.Errorf("listen for JSON-RPC on %s: %w", n.cfg.RPCListen, err)
	}
	n.rpcLn = ln
	n.log.Info("JSON-RPC listening", "addr", ln.Addr().String())
	return nil
}

// serveRPC serves JSON-RPC until ctx ends, then drains: requests under way
// finish (for up to 5 s), new ones are refused.
func (n *Node) serveRPC(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- n.rpc.Serve(n.rpcLn) }()
	select {
	case err := <-served:
		return fmt.Errorf("JSON-RPC server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.rpc.Shutdown(sctx); err != nil {
		n.log.Warn("JSON-RPC shutdown", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, rpcgw.ErrServerClosed) {
		return fmt.Errorf("JSON-RPC server: %w", err)
	}
	return nil
}

func (n *Node) notify(state string) {
	if n.cfg.Notify != nil {
		n.cfg.Notify(state)
	}
}

func (n *Node) fail(err error) {
	n.fatal.CompareAndSwap(nil, &err)
	n.log.Error("fatal", "err", err)
}

func (n *Node) closeStore() error {
	var err error
	n.closeOnce.Do(func() {
		if n.ownPool != nil {
			n.ownPool.Close()
		}
		err = errors.Join(n.store.Close(), n.chain.Close())
	})
	return err
}

// Close releases a node that was created but never run.
func (n *Node) Close() error { return n.closeStore() }

func (n *Node) nowMs() uint64 { return uint64(n.now().UnixMilli()) }

// wallTimer is a *time.Timer as a sigverify.Timer: the verify stage's
// only clock, passed in.
type wallTimer struct{ t *time.Timer }

func newTimer(d time.Duration) sigverify.Timer { return wallTimer{time.NewTimer(d)} }

func (w wallTimer) C() <-chan time.Time   { return w.t.C }
func (w wallTimer) Reset(d time.Duration) { w.t.Reset(d) }
func (w wallTimer) Stop()                 { w.t.Stop() }
