package node

import (
	"fmt"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/rpcgw/grpcgw"
	"github.com/emberchain/ember/store"
)

// Observer receives per-block timings, for histograms at the edge (the
// admin listener's Prometheus metrics). Calls come from the chain loop and
// must return quickly.
type Observer interface {
	ObserveBlock(BlockTiming)
}

// BlockTiming is how long one block took, stage by stage.
type BlockTiming struct {
	Produced bool // built here; otherwise received (submit_block, p2p)
	Txs      int
	Verify   time.Duration // signature checks (received blocks)
	Apply    time.Duration // engine: build or validate and apply
	Store    time.Duration // the Pebble batch, synced
}

// Stats is a snapshot of the node for metrics and health.
type Stats struct {
	Head, LIB     chain.Topology
	HeadTime      time.Time
	Mempool       mempool.Stats
	Producing     bool
	Producer      producer.Stats
	RPC           rpcgw.Stats
	Peers         int // peers past the handshake
	P2P           p2p.Stats
	Events        events.Stats
	LastLoop      time.Time // last iteration of the chain loop
	Fatal         error
	BlockInterval time.Duration
	// Verify is the default verifier's snapshot (zero with a custom one).
	Verify sigverify.Stats
	// Log is the durable event log's extent and consumers; IndexBehind
	// the records the indexer has not reached.
	Log         store.LogStatus
	IndexBehind int
	// AMQP is the AMQP RPC server's snapshot (zero when it is off).
	AMQP amqp.ServerStats
	// Publisher is the AMQP event publisher's snapshot, when PublisherOn.
	Publisher   amqp.PublisherStats
	PublisherOn bool
	// GRPC is the gRPC gateway's snapshot (zero when it is off).
	GRPC grpcgw.Stats
	// Disk is the free space and the disk faults that stop production.
	Disk DiskStats
	// Engine is the Pebble engine's memory and LSM shape (EngineOK is
	// false once the store is closed).
	Engine   store.EngineStats
	EngineOK bool
}

// Stats returns a snapshot.
func (n *Node) Stats() Stats {
	s := n.stats()
	s.Engine, s.EngineOK = n.store.EngineStats()
	return s
}

// stats is Stats without the Pebble engine's figures, which Health does
// not read: it runs every second for the gRPC health service and at every
// /healthz, and db.Metrics walks the LSM's levels under Pebble's lock.
func (n *Node) stats() Stats {
	v := n.chain.View()
	s := Stats{
		Head: v.Head, LIB: v.LIB, HeadTime: time.UnixMilli(int64(v.HeadTime)),
		Mempool:       n.pool.Stats(),
		BlockInterval: time.Duration(n.cfg.Genesis.Params().BlockIntervalMs) * time.Millisecond,
		LastLoop:      time.Unix(0, n.loopTick.Load()),
	}
	if n.producer != nil {
		s.Producing = true
		s.Producer = n.producerStats.Load().(producer.Stats)
	}
	if n.rpc != nil {
		s.RPC = n.rpc.Stats()
	}
	if n.ownPool != nil {
		s.Verify = n.ownPool.Stats()
	}
	s.Events = n.events.Stats()
	s.Log = n.store.LogStatus()
	s.IndexBehind, _ = n.store.IndexLag()
	s.AMQP = n.AMQPStats()
	s.GRPC = n.GRPCStats()
	s.Publisher, s.PublisherOn = n.PublisherStats(), n.pub != nil
	if n.net != nil {
		s.P2P = n.net.Stats()
		s.Peers = s.P2P.Peers
	}
	if p := n.fatal.Load(); p != nil {
		s.Fatal = *p
	}
	s.Disk = n.diskSnapshot()
	return s
}

// Health states, as HTTP status codes (Lighthouse's convention).
const (
	HealthOK       = 200 // serving, head fresh
	HealthDegraded = 206 // serving, but the head is stale or the node is catching up
	HealthDown     = 503 // not serving: stopped, failed, or the chain loop is stuck
)

// Health says whether the node is fit to serve, and why not.
func (n *Node) Health(now time.Time) (int, []string) {
	s := n.stats()
	var why []string
	select {
	case <-n.started:
	default:
		return HealthDown, []string{"starting"}
	}
	if s.Fatal != nil {
		return HealthDown, []string{"failed: " + s.Fatal.Error()}
	}
	if n.stopping.Load() {
		return HealthDown, []string{"shutting down"}
	}
	// The loop ticks at least every second; ten missed ticks means stuck.
	if age := now.Sub(s.LastLoop); age > 10*time.Second {
		return HealthDown, []string{fmt.Sprintf("chain loop has not run for %s", age.Round(time.Second))}
	}
	headAge := now.Sub(s.HeadTime)
	// A producer in its schedule keeps the head within a few slots; a head
	// older than that means this node is not producing or not receiving.
	if stale := 3*s.BlockInterval + 2*time.Second; headAge > stale {
		why = append(why, fmt.Sprintf("head block %d is %s old (more than %s)", s.Head.Height, headAge.Round(time.Second), stale))
	}
	if d := s.Disk; d.Fault != "" {
		why = append(why, fmt.Sprintf("%s: production stopped since %s (%v)", d.Fault, d.Since.UTC().Format(time.RFC3339), d.Err))
	} else if !d.Store.FullSince.IsZero() {
		why = append(why, fmt.Sprintf("%s: the store's writes fail with no space left on device since %s", FaultDiskFull, d.Store.FullSince.UTC().Format(time.RFC3339)))
	}
	if s.P2P.Syncing {
		why = append(why, fmt.Sprintf("syncing: head %d, catching up to %d", s.Head.Height, s.P2P.SyncTarget))
	}
	if len(why) > 0 {
		return HealthDegraded, why
	}
	return HealthOK, nil
}
