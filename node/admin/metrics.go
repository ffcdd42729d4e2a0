package admin

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.blockVerify, m.blockApply, m.blockStore, m.blockTxs, m.rpcRequests, m.rpcLatency}
}

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

// statsCollector turns the node's snapshot into gauges and counters at
// scrape time.
type statsCollector struct{ src Source }

var (
	descHead        = prometheus.NewDesc("ember_head_height", "Height of the head block.", nil, nil)
	descLIB         = prometheus.NewDesc("ember_lib_height", "Height of the last irreversible block.", nil, nil)
	descHeadAge     = prometheus.NewDesc("ember_head_age_seconds", "Age of the head block's timestamp.", nil, nil)
	descPeers       = prometheus.NewDesc("ember_peers", "Connected peers.", nil, nil)
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
	descRPCRejected = prometheus.NewDesc("ember_rpc_overload_total", "JSON-RPC requests refused for overload (503) or queue timeout (504).", []string{"status"}, nil)
	descHealth      = prometheus.NewDesc("ember_health", "Health: 200 ok, 206 degraded, 503 down.", nil, nil)
	descVerifyQueue = prometheus.NewDesc("ember_sigverify_queue_depth", "Transactions queued for signature verification, by lane.", []string{"lane"}, nil)
	descVerifySigs  = prometheus.NewDesc("ember_sigverify_signatures_total", "Signatures verified (rate: the verify stage's throughput).", nil, nil)
	descVerifyTxs   = prometheus.NewDesc("ember_sigverify_transactions_total", "Transactions verified, by result.", []string{"result"}, nil)
	descVerifyCache = prometheus.NewDesc("ember_sigverify_cache_total", "Verify-once cache lookups, by outcome.", []string{"outcome"}, nil)
	descVerifyRej   = prometheus.NewDesc("ember_sigverify_rejections_total", "Submissions refused before verification, by reason.", []string{"reason"}, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHead, descLIB, descHeadAge, descPeers, descPoolTxs, descPoolBytes, descPoolReject, descPoolExpired,
		descProduced, descMissed, descLastProd, descFailedTxs, descEventDrops, descEventWaits, descEventDemote, descRPCRunning, descRPCQueued, descRPCRejected, descHealth,
		descVerifyQueue, descVerifySigs, descVerifyTxs, descVerifyCache, descVerifyRej} {
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
	counter(descRPCRejected, float64(s.RPC.Rejected), "503")
	counter(descRPCRejected, float64(s.RPC.QueueExpiry), "504")
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
}
