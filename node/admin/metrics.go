package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node"
)

// Metrics holds the histograms and counters fed by events: it is the
// node's Observer and the gateway's Observer.
type Metrics struct {
	blockVerify *prometheus.HistogramVec
	blockApply  *prometheus.HistogramVec
	blockStore  *prometheus.HistogramVec
	blockTxs    *prometheus.HistogramVec
	rpcRequests *prometheus.CounterVec
	rpcLatency  *prometheus.HistogramVec
	indexLag    prometheus.Histogram

	grpcRequests *prometheus.CounterVec
	grpcLatency  *prometheus.HistogramVec
}

// Block-stage buckets: from 100 µs to 10 s.
var stageBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 12)

// NewMetrics builds the event metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		blockVerify: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ember_block_verify_seconds", Help: "Signature verification of a received block.", Buckets: stageBuckets}, []string{"source"}),
		blockApply:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ember_block_apply_seconds", Help: "Building (produced) or validating and applying (received) a block.", Buckets: stageBuckets}, []string{"source"}),
		blockStore:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ember_block_store_seconds", Help: "Committing a block's Pebble batch, synced.", Buckets: stageBuckets}, []string{"source"}),
		blockTxs:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ember_block_transactions", Help: "Transactions per block.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)}, []string{"source"}),
		rpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ember_rpc_requests_total", Help: "JSON-RPC calls by method and JSON-RPC code (0: success).", ConstLabels: nil}, []string{"method", "code"}),
		rpcLatency:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ember_rpc_request_seconds", Help: "JSON-RPC call latency by method.", Buckets: prometheus.ExponentialBuckets(0.00005, 3, 12)}, []string{"method"}),
		indexLag:    prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ember_index_lag_seconds", Help: "Per index step: the longest a block's event waited between its commit and its indexing (transaction index, account history).", Buckets: stageBuckets}),

		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ember_grpc_requests_total", Help: "gRPC calls by method (as JSON-RPC names it, chain.get_head_info) and gRPC status code (OK, InvalidArgument, ...)."}, []string{"method", "code"}),
		grpcLatency:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ember_grpc_request_seconds", Help: "gRPC call latency by method.", Buckets: prometheus.ExponentialBuckets(0.00005, 3, 12)}, []string{"method"}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.blockVerify, m.blockApply, m.blockStore, m.blockTxs, m.rpcRequests, m.rpcLatency, m.indexLag, m.grpcRequests, m.grpcLatency}
}

// ObserveIndexLag implements node.IndexObserver.
func (m *Metrics) ObserveIndexLag(d time.Duration) { m.indexLag.Observe(d.Seconds()) }

// ObserveBlock implements node.Observer.
func (m *Metrics) ObserveBlock(t node.BlockTiming) {
	src := "received"
	if t.Produced {
		src = "produced"
	} else {
		m.blockVerify.WithLabelValues(src).Observe(t.Verify.Seconds())
	}
	m.blockApply.WithLabelValues(src).Observe(t.Apply.Seconds())
	m.blockStore.WithLabelValues(src).Observe(t.Store.Seconds())
	m.blockTxs.WithLabelValues(src).Observe(float64(t.Txs))
}

// ObserveRequest implements rpcgw.Observer. Method is "" for calls that
// named nothing served, so clients cannot create label values.
func (m *Metrics) ObserveRequest(method string, code int, d time.Duration) {
	if method == "" {
		method = "unknown"
	}
	m.rpcRequests.WithLabelValues(method, strconv.Itoa(code)).Inc()
	m.rpcLatency.WithLabelValues(method).Observe(d.Seconds())
}

// ObserveGRPC implements grpcgw.Observer.
func (m *Metrics) ObserveGRPC(method string, code codes.Code, d time.Duration) {
	m.grpcRequests.WithLabelValues(method, code.String()).Inc()
	m.grpcLatency.WithLabelValues(method).Observe(d.Seconds())
}

// statsCollector turns the node's snapshot into gauges and counters at
// scrape time.
type statsCollector struct{ src Source }

// batchSizeLabels name sigverify.Stats.BatchSizes' buckets.
var batchSizeLabels = [len(sigverify.Stats{}.BatchSizes)]string{"1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+"}

var (
	descHead        = prometheus.NewDesc("ember_head_height", "Height of the head block.", nil, nil)
	descLIB         = prometheus.NewDesc("ember_lib_height", "Height of the last irreversible block.", nil, nil)
	descHeadAge     = prometheus.NewDesc("ember_head_age_seconds", "Age of the head block's timestamp.", nil, nil)
	descPeers       = prometheus.NewDesc("ember_peers", "Peers past the handshake (the same as ember_p2p_peers).", nil, nil)
	descPoolTxs     = prometheus.NewDesc("ember_mempool_transactions", "Pending transactions.", nil, nil)
	descPoolBytes   = prometheus.NewDesc("ember_mempool_bytes", "Bytes of pending transactions.", nil, nil)
	descPoolReject  = prometheus.NewDesc("ember_mempool_rejections_total", "Transactions the mempool refused, by reason.", []string{"reason"}, nil)
	descPoolExpired = prometheus.NewDesc("ember_mempool_expired_total", "Pending transactions dropped by expiry.", nil, nil)
	descProduced    = prometheus.NewDesc("ember_producer_blocks_total", "Blocks this node produced.", nil, nil)
	descMissed      = prometheus.NewDesc("ember_producer_missed_slots_total", "Own slots missed (woke after the slot ended).", nil, nil)
	descLastProd    = prometheus.NewDesc("ember_producer_last_height", "Height of the last block this node produced.", nil, nil)
	descFailedTxs   = prometheus.NewDesc("ember_producer_failed_transactions_total", "Candidates left out of produced blocks because they failed.", nil, nil)
	descEventDrops  = prometheus.NewDesc("ember_event_drops_total", "Events that lagging subscribers missed (each then resyncs from the store).", nil, nil)
	descEventWaits  = prometheus.NewDesc("ember_event_waits_total", "Publications that waited for a blocking subscriber (backpressure).", nil, nil)
	descEventDemote = prometheus.NewDesc("ember_event_stalled_subscribers_total", "Blocking subscribers demoted to lagging after stalling.", nil, nil)
	descRPCRunning  = prometheus.NewDesc("ember_rpc_in_flight", "JSON-RPC requests being served.", nil, nil)
	descRPCQueued   = prometheus.NewDesc("ember_rpc_queued", "JSON-RPC requests waiting for a worker.", nil, nil)
	descRPCAnswers  = prometheus.NewDesc("ember_rpc_answer_buffer_bytes", "Bytes of large JSON-RPC answer buffers kept for reuse (block reads): at most 64 MiB, and a buffer unused for 10 s is let go.", nil, nil)
	descRPCRejected = prometheus.NewDesc("ember_rpc_overload_total", "JSON-RPC requests refused for overload (503) or queue timeout (504).", []string{"status"}, nil)
	descHealth      = prometheus.NewDesc("ember_health", "Health: 200 ok, 206 degraded, 503 down.", nil, nil)
	descVerifyQueue = prometheus.NewDesc("ember_sigverify_queue_depth", "Transactions queued for signature verification, by lane.", []string{"lane"}, nil)
	descVerifySigs  = prometheus.NewDesc("ember_sigverify_signatures_total", "Signatures verified (rate: the verify stage's throughput).", nil, nil)
	descVerifyTxs   = prometheus.NewDesc("ember_sigverify_transactions_total", "Transactions verified, by result.", []string{"result"}, nil)
	descVerifyCache = prometheus.NewDesc("ember_sigverify_cache_total", "Verify-once cache lookups, by outcome.", []string{"outcome"}, nil)
	descVerifyRej   = prometheus.NewDesc("ember_sigverify_rejections_total", "Submissions refused before verification, by reason.", []string{"reason"}, nil)
	descVerifyBatch = prometheus.NewDesc("ember_sigverify_batches_total", "Batches the verify workers ran, by signatures per batch (1, 2-3, 4-7, ... 128+): small batches under load cost up to twice as much per Ed25519 signature.", []string{"signatures"}, nil)
	descLogFirst    = prometheus.NewDesc("ember_eventlog_first_seq", "Sequence number of the oldest event the durable log retains.", nil, nil)
	descLogNext     = prometheus.NewDesc("ember_eventlog_next_seq", "Sequence number the next event gets (events logged since the store was created).", nil, nil)
	descLogRecords  = prometheus.NewDesc("ember_eventlog_records", "Records the durable event log retains.", nil, nil)
	descLogCap      = prometheus.NewDesc("ember_eventlog_records_max", "The log's cap on retained records (store.event_log_records).", nil, nil)
	descLogDropped  = prometheus.NewDesc("ember_eventlog_dropped_total", "Records dropped by the cap before a consumer confirmed them (that consumer is told, and must resync).", nil, nil)
	descLogLag      = prometheus.NewDesc("ember_eventlog_consumer_lag", "Sequence numbers between a registered consumer's cursor and the log's end.", []string{"consumer"}, nil)
	descDiskFull    = prometheus.NewDesc("ember_disk_full", "1 while production is stopped for lack of disk space (free space below store.min_free_bytes, or a write failed with ENOSPC) or the store's writes fail with ENOSPC, else 0.", nil, nil)
	descDiskFailing = prometheus.NewDesc("ember_disk_write_failing", "1 while production is stopped because the sign guard's writes fail for another reason than space (EIO, a read-only filesystem), else 0.", nil, nil)
	descDiskFails   = prometheus.NewDesc("ember_disk_write_failures_total", "Writes that failed: the sign guard's (any error), the store's (ENOSPC, each paced retry counted).", []string{"file"}, nil)
	descDiskSkipped = prometheus.NewDesc("ember_disk_skipped_slots_total", "Own slots not produced because of a disk fault.", nil, nil)
	descDiskFree    = prometheus.NewDesc("ember_disk_free_bytes", "Free bytes on the store's filesystem (for the node's user), read at scrape time.", nil, nil)
	descDiskMinFree = prometheus.NewDesc("ember_disk_min_free_bytes", "store.min_free_bytes: below this much free space the node does not produce (0: not checked).", nil, nil)
	descIndexBehind = prometheus.NewDesc("ember_index_behind_records", "Event log records the indexer has not reached (blocks whose transactions or history reads take from the blocks).", nil, nil)
)

// The gRPC gateway's (grpcgw.Stats; zero when it is off).
var (
	descGRPCRunning  = prometheus.NewDesc("ember_grpc_in_flight", "gRPC calls being served.", nil, nil)
	descGRPCQueued   = prometheus.NewDesc("ember_grpc_queued", "gRPC calls waiting for a worker.", nil, nil)
	descGRPCRejected = prometheus.NewDesc("ember_grpc_overload_total", "gRPC calls refused with ResourceExhausted: workers and queue full (full) or waited past the queue timeout (timeout).", []string{"reason"}, nil)
	descGRPCConnsOut = prometheus.NewDesc("ember_grpc_refused_connections_total", "gRPC connections closed on accept because their client IP already held rpc.max_conns_per_ip.", nil, nil)
)

// The network's metrics (p2p.Stats; docs/network.md and docs/operations.md).
var (
	descP2PPeers        = prometheus.NewDesc("ember_p2p_peers", "Peers past the handshake (same chain, same protocol version).", nil, nil)
	descP2PSyncing      = prometheus.NewDesc("ember_p2p_syncing", "1 while a peer's head is more than max(2, 2 s of blocks) above this node's (gossip of transactions and production pause), else 0.", nil, nil)
	descP2PGossip       = prometheus.NewDesc("ember_p2p_gossip_enabled", "1 when p2p.get_gossip_status answers true (at least one peer and not syncing), else 0.", nil, nil)
	descP2PBansActive   = prometheus.NewDesc("ember_p2p_bans_active", "Peers banned now.", nil, nil)
	descP2PBansTotal    = prometheus.NewDesc("ember_p2p_bans_total", "Bans imposed since start (score past the threshold, another chain or version, or by request).", nil, nil)
	descP2PBytes        = prometheus.NewDesc("ember_p2p_bytes_total", "Bytes moved on libp2p streams, by protocol (gossip is /meshsub/...; negotiation: before a protocol is agreed) and direction.", []string{"protocol", "direction"}, nil)
	descP2PGossipMsgs   = prometheus.NewDesc("ember_p2p_gossip_messages_total", "Gossip messages from peers, by topic and validation result (accepted: relayed; rejected: invalid, the sender is scored down; ignored: not relayed, nobody blamed but a peer whose fetch timed out).", []string{"topic", "result"}, nil)
	descP2PPublished    = prometheus.NewDesc("ember_p2p_published_total", "What this node gossiped: transactions, transaction batches, blocks announced.", []string{"kind"}, nil)
	descP2PBacklogDrops = prometheus.NewDesc("ember_p2p_tx_backlog_dropped_total", "Local transactions not gossiped because the gossip backlog was full (they stay in the mempool).", nil, nil)
	descP2PResent       = prometheus.NewDesc("ember_p2p_tx_resent_total", "Local transactions gossiped again because no block had included them 5 s after the last try.", nil, nil)
	descP2PUnconfirmed  = prometheus.NewDesc("ember_p2p_tx_unconfirmed", "Local transactions gossiped and not yet seen in a block (tracked for resending).", nil, nil)
	descP2PEventsLagged = prometheus.NewDesc("ember_p2p_events_lagged_total", "Node events the gossip consumer missed after falling a whole event ring behind.", nil, nil)
	descP2PCompact      = prometheus.NewDesc("ember_p2p_compact_blocks_total", "Gossiped compact blocks completed, by how: rebuilt from known transactions (missing ones fetched) or fetched whole.", []string{"how"}, nil)
	descP2PFetchedTxs   = prometheus.NewDesc("ember_p2p_fetched_txs_total", "Transactions fetched from peers to complete compact blocks.", nil, nil)
	descP2PSyncTarget   = prometheus.NewDesc("ember_p2p_sync_target_height", "Height the running sync round heads for; 0 when no round runs.", nil, nil)
	descP2PSyncBlocks   = prometheus.NewDesc("ember_p2p_sync_blocks_total", "Blocks applied by sync.", nil, nil)
	descP2PSyncTxs      = prometheus.NewDesc("ember_p2p_sync_txs_total", "Transactions in the blocks applied by sync.", nil, nil)
	descP2PSyncBytes    = prometheus.NewDesc("ember_p2p_sync_bytes_total", "Bytes of block responses received by sync, as on the wire (compressed).", nil, nil)
	descP2PSyncRounds   = prometheus.NewDesc("ember_p2p_sync_rounds_total", "Sync rounds started.", nil, nil)
	descP2PSyncBPS      = prometheus.NewDesc("ember_p2p_sync_blocks_per_second", "Blocks applied per second by sync over its last progress period (5 s or more); 0 when no round runs.", nil, nil)
	descP2PSyncTPS      = prometheus.NewDesc("ember_p2p_sync_txs_per_second", "Transactions applied per second by sync over its last progress period (5 s or more); 0 when no round runs.", nil, nil)
	descP2PSyncBad      = prometheus.NewDesc("ember_p2p_sync_bad_peers_total", "Times sync scored a peer down for serving a block that does not verify or apply.", nil, nil)
	descP2PServeBusy    = prometheus.NewDesc("ember_p2p_serve_busy_total", "Sync and block-fetch requests from peers answered \"busy\": every serving slot (p2p.serve_requests) stayed taken for 1 s.", nil, nil)
	descP2PConflicts    = prometheus.NewDesc("ember_p2p_finality_conflicts_total", "Fork point answers whose chain lacks this node's last irreversible block: this node and a peer finalized different branches (docs/network.md).", nil, nil)
	descP2PSyncBuffered = prometheus.NewDesc("ember_p2p_sync_buffered_bytes", "Bytes in the sync buffer: blocks fetched (or being fetched, at a response's full budget) ahead of verification; capped at 2 × p2p.sync_peers × p2p.sync_batch_bytes.", nil, nil)
	descP2PSyncBufFull  = prometheus.NewDesc("ember_p2p_sync_buffer_full_total", "Times a sync fetcher waited because the sync buffer was full (fetching ahead of verification as far as it may).", nil, nil)
	descP2PGossipDrops  = prometheus.NewDesc("ember_p2p_gossip_dropped_total", "Gossip messages gossipsub dropped under load, by topic (tx, block; control: outgoing RPCs without messages) and reason: validation_queue_full and validation_throttled (received, never validated), send_queue_full (not sent: the peer's outbound queue was full), undeliverable (this node's subscription read too slowly).", []string{"topic", "reason"}, nil)
	descP2PThrottled    = prometheus.NewDesc("ember_p2p_gossip_throttled_rpcs_total", "Gossip RPCs whose messages were ignored because the router throttled their sender.", nil, nil)
)

var p2pDescs = []*prometheus.Desc{
	descP2PPeers, descP2PSyncing, descP2PGossip, descP2PBansActive, descP2PBansTotal, descP2PBytes, descP2PGossipMsgs,
	descP2PPublished, descP2PBacklogDrops, descP2PResent, descP2PUnconfirmed, descP2PEventsLagged, descP2PCompact, descP2PFetchedTxs, descP2PSyncTarget,
	descP2PSyncBlocks, descP2PSyncTxs, descP2PSyncBytes, descP2PSyncRounds, descP2PSyncBPS, descP2PSyncTPS, descP2PSyncBad, descP2PConflicts, descP2PServeBusy,
	descP2PGossipDrops, descP2PThrottled, descP2PSyncBuffered, descP2PSyncBufFull,
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHead, descLIB, descHeadAge, descPeers, descPoolTxs, descPoolBytes, descPoolReject, descPoolExpired,
		descProduced, descMissed, descLastProd, descFailedTxs, descEventDrops, descEventWaits, descEventDemote, descRPCRunning, descRPCQueued, descRPCAnswers, descRPCRejected, descGRPCRunning, descGRPCQueued, descGRPCRejected, descGRPCConnsOut, descHealth,
		descVerifyQueue, descVerifySigs, descVerifyTxs, descVerifyCache, descVerifyRej, descVerifyBatch,
		descLogFirst, descLogNext, descLogRecords, descLogCap, descLogDropped, descLogLag, descIndexBehind,
		descDiskFull, descDiskFailing, descDiskFails, descDiskSkipped, descDiskFree, descDiskMinFree} {
		ch <- d
	}
	for _, d := range p2pDescs {
		ch <- d
	}
	for _, d := range amqpDescs {
		ch <- d
	}
	for _, d := range pubDescs {
		ch <- d
	}
	for _, d := range engineDescs {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descHead, float64(s.Head.Height))
	gauge(descLogFirst, float64(s.Log.First))
	gauge(descLogNext, float64(s.Log.Next))
	gauge(descLogRecords, float64(s.Log.Records))
	gauge(descLogCap, float64(s.Log.Max))
	counter(descLogDropped, float64(s.Log.Dropped))
	for name, c := range s.Log.Consumers {
		gauge(descLogLag, float64(s.Log.Next-min(c, s.Log.Next)), name)
	}
	gauge(descIndexBehind, float64(s.IndexBehind))
	gauge(descLIB, float64(s.LIB.Height))
	gauge(descHeadAge, time.Since(s.HeadTime).Seconds())
	gauge(descPeers, float64(s.Peers))
	gauge(descPoolTxs, float64(s.Mempool.Transactions))
	gauge(descPoolBytes, float64(s.Mempool.Bytes))
	for reason, n := range s.Mempool.Rejected {
		counter(descPoolReject, float64(n), reason)
	}
	counter(descPoolExpired, float64(s.Mempool.Expired))
	counter(descProduced, float64(s.Producer.Produced))
	counter(descMissed, float64(s.Producer.MissedSlots))
	gauge(descLastProd, float64(s.Producer.LastHeight))
	counter(descFailedTxs, float64(s.Producer.FailedTxs))
	counter(descEventDrops, float64(s.Events.Lagged))
	counter(descEventWaits, float64(s.Events.Waits))
	counter(descEventDemote, float64(s.Events.Demoted))
	gauge(descRPCRunning, float64(s.RPC.Running))
	gauge(descRPCQueued, float64(s.RPC.Queued))
	gauge(descRPCAnswers, float64(s.RPC.AnswerBuffers))
	counter(descRPCRejected, float64(s.RPC.Rejected), "503")
	counter(descRPCRejected, float64(s.RPC.QueueExpiry), "504")
	gauge(descGRPCRunning, float64(s.GRPC.Running))
	gauge(descGRPCQueued, float64(s.GRPC.Queued))
	counter(descGRPCRejected, float64(s.GRPC.Rejected), "full")
	counter(descGRPCRejected, float64(s.GRPC.QueueExpiry), "timeout")
	counter(descGRPCConnsOut, float64(s.GRPC.RefusedConns))
	code, _ := c.src.Health(time.Now())
	gauge(descHealth, float64(code))
	v := s.Verify
	var txq, blq int
	for i := range v.TxQueue {
		txq += v.TxQueue[i]
	}
	for i := range v.BlockQueue {
		blq += v.BlockQueue[i]
	}
	gauge(descVerifyQueue, float64(txq), "submissions")
	gauge(descVerifyQueue, float64(blq), "blocks")
	counter(descVerifySigs, float64(v.Signatures))
	counter(descVerifyTxs, float64(v.Verified), "valid")
	counter(descVerifyTxs, float64(v.Invalid), "invalid")
	counter(descVerifyCache, float64(v.CacheHits), "hit_valid")
	counter(descVerifyCache, float64(v.CacheInvalidHits), "hit_invalid")
	counter(descVerifyCache, float64(v.CacheMisses), "miss")
	counter(descVerifyCache, float64(v.CacheJoins), "joined")
	counter(descVerifyRej, float64(v.RejectedPrecheck), "precheck")
	counter(descVerifyRej, float64(v.RejectedOverload), "overload")
	counter(descVerifyRej, float64(v.RejectedSource), "source_limit")
	for i, n := range v.BatchSizes {
		counter(descVerifyBatch, float64(n), batchSizeLabels[i])
	}
	collectDisk(s.Disk, gauge, counter)
	collectEngine(s.Engine, s.EngineOK, gauge, counter)
	collectP2P(s.P2P, gauge, counter)
	collectAMQP(s.AMQP, gauge, counter)
	collectPublisher(s.PublisherOn, s.Publisher, gauge, counter)
}

// collectDisk reports the disk faults that stop production
// (docs/reliability.md, "Disk faults").
func collectDisk(d node.DiskStats, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	gauge(descDiskFull, bit(d.Fault == node.FaultDiskFull || !d.Store.FullSince.IsZero()))
	gauge(descDiskFailing, bit(d.Fault == node.FaultDiskFailing))
	counter(descDiskFails, float64(d.GuardFailures), "sign_guard")
	counter(descDiskFails, float64(d.Store.FailedWrites), "store")
	counter(descDiskSkipped, float64(d.SkippedSlots))
	if d.Store.FreeBytes >= 0 {
		gauge(descDiskFree, float64(d.Store.FreeBytes))
	}
	gauge(descDiskMinFree, float64(d.MinFreeBytes))
}

// collectP2P reports the network's snapshot.
func collectP2P(p p2p.Stats, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	gauge(descP2PPeers, float64(p.Peers))
	gauge(descP2PSyncing, bit(p.Syncing))
	gauge(descP2PGossip, bit(p.Gossip))
	gauge(descP2PBansActive, float64(p.Banned))
	counter(descP2PBansTotal, float64(p.BansEver))
	for proto, bw := range p.Bandwidth {
		counter(descP2PBytes, float64(bw.In), proto, "in")
		counter(descP2PBytes, float64(bw.Out), proto, "out")
	}
	for _, t := range []struct {
		topic string
		c     p2p.GossipCounts
	}{{"tx", p.TxBatches}, {"block", p.Blocks}} {
		counter(descP2PGossipMsgs, float64(t.c.Accepted), t.topic, "accepted")
		counter(descP2PGossipMsgs, float64(t.c.Rejected), t.topic, "rejected")
		counter(descP2PGossipMsgs, float64(t.c.Ignored), t.topic, "ignored")
	}
	for _, t := range []struct {
		topic string
		d     p2p.GossipDrops
	}{{"tx", p.TxDrops}, {"block", p.BlockDrops}} {
		for reason, n := range t.d {
			counter(descP2PGossipDrops, float64(n), t.topic, p2p.DropReasons[reason])
		}
	}
	counter(descP2PGossipDrops, float64(p.ControlDrops), "control", p2p.DropReasons[p2p.DropSendQueueFull])
	counter(descP2PThrottled, float64(p.ThrottledRPCs))
	counter(descP2PPublished, float64(p.TxsPublished), "tx")
	counter(descP2PPublished, float64(p.BatchesPub), "tx_batch")
	counter(descP2PPublished, float64(p.BlocksPub), "block")
	counter(descP2PBacklogDrops, float64(p.BacklogDrops))
	counter(descP2PServeBusy, float64(p.ServeBusy))
	counter(descP2PResent, float64(p.Resent))
	gauge(descP2PUnconfirmed, float64(p.Unconfirmed))
	counter(descP2PEventsLagged, float64(p.EventsLagged))
	counter(descP2PCompact, float64(p.RebuiltBlocks), "rebuilt")
	counter(descP2PCompact, float64(p.FetchedWhole), "fetched_whole")
	counter(descP2PFetchedTxs, float64(p.FetchedTxs))
	gauge(descP2PSyncTarget, float64(p.SyncTarget))
	counter(descP2PSyncBlocks, float64(p.SyncBlocks))
	counter(descP2PSyncTxs, float64(p.SyncTxs))
	counter(descP2PSyncBytes, float64(p.SyncBytes))
	counter(descP2PSyncRounds, float64(p.SyncRounds))
	gauge(descP2PSyncBPS, float64(p.SyncBlocksRate))
	gauge(descP2PSyncTPS, float64(p.SyncTxsRate))
	counter(descP2PSyncBad, float64(p.SyncBadPeers))
	gauge(descP2PSyncBuffered, float64(p.SyncBuffered))
	counter(descP2PSyncBufFull, float64(p.SyncBufferFull))
	counter(descP2PConflicts, float64(p.FinalityConflicts))
}
