package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/rpcgw"
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
	// SignGuard persists each signed slot before the block leaves the node
	// (slashing protection); nil allows every signature.
	SignGuard producer.Guard
	// RPCListen is the JSON-RPC address; "" disables the gateway.
	RPCListen string
	RPC       rpcgw.Config
	Mempool   mempool.Config
	Store     store.Options
	// Chain engine bounds (see chain.Config).
	CheckpointInterval uint64
	MaxForkBlocks      int
	MaxCachedAccounts  int
	// Verifier checks signatures; nil: a sigverify.Pool with Verify.
	Verifier Verifier
	// Verify configures the default verifier (Limits is set from genesis).
	Verify sigverify.PoolConfig
	// Observer receives block timings (nil: none).
	Observer Observer
	// Notify receives service-manager notifications: "READY=1" once the
	// node serves, "WATCHDOG=1" from the chain loop, "STOPPING=1" at
	// shutdown (systemd's sd_notify; nil: none).
	Notify func(state string)
	// WatchdogInterval is how often the chain loop sends WATCHDOG=1 (0:
	// never); systemd's WatchdogSec/2.
	WatchdogInterval time.Duration
	Logger           *slog.Logger
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
	ownPool  *sigverify.Pool // the default verifier, closed with the node

	blockIn chan blockRequest
	started chan struct{}
	// headWait is closed and replaced on every advanced block, waking
	// anyone waiting for a new head.
	headMu   sync.Mutex
	headWait chan struct{}

	subsMu sync.Mutex
	subs   []*subscriber

	fatal         atomic.Pointer[error]
	closeOnce     sync.Once
	loopTick      atomic.Int64 // unix nanos of the chain loop's last iteration
	prepared      sync.Map     // *protocol.Transaction -> preparedTx (backend.Prepare)
	stopping      atomic.Bool
	producerStats atomic.Value // producer.Stats, published by the chain loop
}

type blockRequest struct {
	vb     *sigverify.VerifiedBlock
	verify time.Duration
	reply  chan blockResult
}

type blockResult struct {
	entry *chain.BlockEntry
	err   error
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
	n := &Node{cfg: cfg, log: cfg.Logger, now: cfg.Now, blockIn: make(chan blockRequest, BlockQueueDepth), started: make(chan struct{}), headWait: make(chan struct{})}
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
		Now: n.now,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Commit(r); err != nil {
		st.Close()
		return nil, fmt.Errorf("node: write genesis: %w", err)
	}
	c.Advance(r)
	n.store, n.chain = st, c
	n.pool = mempool.New(cfg.Mempool)
	n.verifier = cfg.Verifier
	if n.verifier == nil {
		vc := cfg.Verify
		vc.Limits = c.Limits()
		pool, err := sigverify.NewPool(vc)
		if err != nil {
			st.Close()
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
			st.Close()
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

// Run serves until ctx is done, then shuts down gracefully: stop producing,
// drain RPC, checkpoint state and close the store. It returns the first
// fatal error, if any.
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if n.rpc != nil {
		ln, err := net.Listen("tcp", n.cfg.RPCListen)
		if err != nil {
			n.closeStore()
			return fmt.Errorf("node: listen for JSON-RPC on %s: %w", n.cfg.RPCListen, err)
		}
		n.rpcLn = ln
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.rpc.Serve(ln); err != nil && !errors.Is(err, rpcgw.ErrServerClosed) {
				n.fail(fmt.Errorf("node: JSON-RPC server: %w", err))
				cancel()
			}
		}()
		n.log.Info("JSON-RPC listening", "addr", ln.Addr().String())
	}
	if err := n.restorePending(ctx); err != nil {
		n.log.Warn("pending transactions from the last run were not restored", "err", err)
	}
	n.loopTick.Store(n.now().UnixNano())
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		if err := n.chainLoop(ctx); err != nil {
			n.fail(err)
			cancel()
		}
	}()
	close(n.started)
	n.notify("READY=1")
	<-ctx.Done()
	n.stopping.Store(true)
	n.notify("STOPPING=1")
	n.log.Info("shutting down")
	if n.rpc != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.rpc.Shutdown(sctx); err != nil {
			n.log.Warn("JSON-RPC shutdown", "err", err)
		}
		scancel()
	}
	<-loopDone
	wg.Wait()
	if err := n.savePending(); err != nil {
		n.log.Error("pending transactions could not be saved", "err", err)
	}
	n.closeSubscribers()
	if err := n.closeStore(); err != nil {
		n.fail(err)
	}
	if p := n.fatal.Load(); p != nil {
		return *p
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
		err = n.store.Close()
	})
	return err
}

// Close releases a node that was created but never run.
func (n *Node) Close() error { return n.closeStore() }

func (n *Node) nowMs() uint64 { return uint64(n.now().UnixMilli()) }

// chainLoop owns the engine: it produces in this node's slots, applies
// submitted blocks, expires old transactions, and commits every step.
func (n *Node) chainLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	expiry := time.NewTicker(time.Second)
	defer expiry.Stop()
	nextSlot, producing := uint64(0), false
	schedule := func() {
		if n.producer == nil {
			return
		}
		now := n.nowMs()
		nextSlot, producing = n.producer.NextSlot(n.chain, now)
		if !producing {
			return
		}
		wait := time.Duration(0)
		if at := n.chain.SlotTime(nextSlot); at > now {
			wait = time.Duration(at-now) * time.Millisecond
		}
		timer.Reset(wait)
	}
	schedule()
	var lastPing time.Time
	for {
		// The watchdog is pinged from here, not from a timer of its own, so
		// a stuck loop stops the pings and systemd restarts the node.
		now := n.now()
		n.loopTick.Store(now.UnixNano())
		if n.cfg.WatchdogInterval > 0 && now.Sub(lastPing) >= n.cfg.WatchdogInterval {
			n.notify("WATCHDOG=1")
			lastPing = now
		}
		select {
		case <-ctx.Done():
			return n.shutdownCheckpoint()
		case <-timer.C:
			if producing {
				if err := n.produce(nextSlot); err != nil {
					return err
				}
			}
			schedule()
		case req := <-n.blockIn:
			entry, err := n.applyBlock(req)
			req.reply <- blockResult{entry, err}
			if isFatal(err) {
				return err
			}
			schedule()
		case <-expiry.C:
			n.sweepPrepared(n.now())
			if k := n.pool.Expire(n.nowMs()); k > 0 {
				n.log.Info("expired pending transactions", "count", k)
			}
		}
	}
}

// fatalError marks an error that must stop the node (the store failed).
type fatalError struct{ error }

func isFatal(err error) bool {
	var f fatalError
	return errors.As(err, &f)
}

func (n *Node) produce(slot uint64) error {
	start := time.Now()
	r, failed, err := n.producer.Produce(n.chain, slot, n.nowMs(), n.chain.MaxBlockTransactions())
	n.producerStats.Store(n.producer.Stats())
	if err != nil {
		n.log.Warn("no block produced", "slot", slot, "err", err)
		return nil
	}
	built := time.Since(start)
	if len(failed) > 0 {
		txs := make([]*sigverify.VerifiedTx, len(failed))
		for i, f := range failed {
			txs[i] = f.Tx
			n.log.Debug("transaction left out of block", "id", fmt.Sprintf("0x%x", f.Tx.ID().Multihash()), "err", f.Err)
		}
		n.pool.Remove(txs...)
	}
	if err := n.commit(r); err != nil {
		return err
	}
	e := r.Accepted[0]
	stored := time.Since(start) - built
	if n.cfg.Observer != nil {
		n.cfg.Observer.ObserveBlock(BlockTiming{Produced: true, Txs: len(e.Block.Transactions), Apply: built, Store: stored})
	}
	n.log.Info("produced block", "height", e.Height, "id", fmt.Sprintf("0x%x", e.ID.Multihash()), "txs", len(e.Block.Transactions),
		"failed", len(failed), "pending", n.pool.Len(), "build_ms", built.Milliseconds(), "total_ms", time.Since(start).Milliseconds())
	return nil
}

func (n *Node) applyBlock(req blockRequest) (*chain.BlockEntry, error) {
	start := time.Now()
	r, err := n.chain.AcceptBlock(req.vb, n.nowMs())
	if err != nil {
		return nil, err
	}
	applied := time.Since(start)
	if err := n.commit(r); err != nil {
		return nil, err
	}
	if n.cfg.Observer != nil {
		n.cfg.Observer.ObserveBlock(BlockTiming{Txs: len(req.vb.Txs), Verify: req.verify, Apply: applied, Store: time.Since(start) - applied})
	}
	return r.Accepted[0], nil
}

// commit makes a step durable, then advances the engine and tells the
// mempool and subscribers.
func (n *Node) commit(r *chain.Ready) error {
	if err := n.store.Commit(r); err != nil {
		return fatalError{fmt.Errorf("node: store commit failed, stopping: %w", err)}
	}
	n.chain.Advance(r)
	if len(r.Reorg.Added) > 0 || len(r.Reorg.Removed) > 0 {
		added := make([][]*sigverify.VerifiedTx, len(r.Reorg.Added))
		for i, e := range r.Reorg.Added {
			added[i] = e.Txs
		}
		removed := make([][]*sigverify.VerifiedTx, 0, len(r.Reorg.Removed))
		for _, e := range slices.Backward(r.Reorg.Removed) {
			removed = append(removed, e.Txs)
		}
		if err := n.pool.Update(n.chain.View(), added, removed, n.nowMs()); err != nil {
			n.log.Error("mempool update", "err", err)
		}
	}
	if r.HeadChanged {
		n.headMu.Lock()
		close(n.headWait)
		n.headWait = make(chan struct{})
		n.headMu.Unlock()
	}
	n.publish(r)
	return nil
}

// HeadChanged returns a channel closed at the next head change.
func (n *Node) HeadChanged() <-chan struct{} {
	n.headMu.Lock()
	defer n.headMu.Unlock()
	return n.headWait
}

func (n *Node) shutdownCheckpoint() error {
	r, err := n.chain.Checkpoint()
	if err != nil {
		return err
	}
	if err := n.store.Commit(r); err != nil {
		return fatalError{fmt.Errorf("node: final checkpoint: %w", err)}
	}
	n.chain.Advance(r)
	n.log.Info("state checkpointed", "height", r.Meta.Checkpoint.Height)
	return nil
}

// SubmitBlock verifies a block and hands it to the chain loop.
func (n *Node) SubmitBlock(ctx context.Context, b *protocol.Block) (*chain.BlockEntry, error) {
	start := time.Now()
	vb, err := n.verifier.VerifyBlock(ctx, b, n.chain.MaxBlockTransactions())
	if err != nil {
		return nil, err
	}
	req := blockRequest{vb: vb, verify: time.Since(start), reply: make(chan blockResult, 1)}
	select {
	case n.blockIn <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case res := <-req.reply:
		return res.entry, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
