package admin

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node"
	"github.com/emberchain/ember/store"
)

// fakeSource is a node that reports a fixed snapshot.
type fakeSource struct{ s node.Stats }

func (f fakeSource) Stats() node.Stats { return f.s }
func (f fakeSource) Health(time.Time) (int, []string) {
	return node.HealthDegraded, []string{"syncing"}
}

// scrape serves /metrics once and returns every sample by its series
// (name and labels as the text format writes them).
func scrape(t *testing.T, src Source) map[string]float64 {
	t.Helper()
	return scrapeWith(t, src, NewMetrics())
}

// scrapeWith is scrape with the event metrics m.
func scrapeWith(t *testing.T, src Source, m *Metrics) map[string]float64 {
	t.Helper()
	s := New(Config{Listen: "127.0.0.1:0"}, src, m)
	rec := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body.String())
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func TestP2PMetrics(t *testing.T) {
	st := node.Stats{
		HeadTime: time.Now(),
		Peers:    3,
		P2P: p2p.Stats{
			Peers: 3, Syncing: true, Gossip: false, Banned: 2, BansEver: 7,
			Bandwidth: map[string]p2p.Bandwidth{
				"/ember/sync/1":  {In: 123_456, Out: 789},
				"/meshsub/1.2.0": {In: 4_000_000, Out: 5_000_000},
				"negotiation":    {In: 11, Out: 12},
			},
			TxBatches:         p2p.GossipCounts{Accepted: 10, Rejected: 1, Ignored: 4},
			Blocks:            p2p.GossipCounts{Accepted: 20, Rejected: 2, Ignored: 5},
			TxsPublished:      1000,
			BatchesPub:        9,
			BlocksPub:         30,
			BacklogDrops:      6,
			ServeBusy:         21,
			Resent:            13,
			Unconfirmed:       14,
			EventsLagged:      8,
			RebuiltBlocks:     18,
			FetchedTxs:        44,
			FetchedWhole:      3,
			SyncTarget:        5000,
			SyncBlocks:        4321,
			SyncTxs:           98765,
			SyncBytes:         1 << 30,
			SyncRounds:        12,
			SyncBlocksRate:    250,
			SyncTxsRate:       6000,
			SyncBadPeers:      1,
			FinalityConflicts: 2,
			TxDrops:           p2p.GossipDrops{p2p.DropValidationQueueFull: 31, p2p.DropSendQueueFull: 32},
			BlockDrops:        p2p.GossipDrops{p2p.DropValidationThrottled: 33, p2p.DropUndeliverable: 34},
			ControlDrops:      35,
			ThrottledRPCs:     36,
			SyncBuffered:      37,
			SyncBufferFull:    38,
		},
	}
	got := scrape(t, fakeSource{st})
	want := map[string]float64{
		`ember_peers`:              3,
		`ember_p2p_peers`:          3,
		`ember_p2p_syncing`:        1,
		`ember_p2p_gossip_enabled`: 0,
		`ember_p2p_bans_active`:    2,
		`ember_p2p_bans_total`:     7,

		`ember_p2p_bytes_total{direction="in",protocol="/ember/sync/1"}`:   123_456,
		`ember_p2p_bytes_total{direction="out",protocol="/ember/sync/1"}`:  789,
		`ember_p2p_bytes_total{direction="in",protocol="/meshsub/1.2.0"}`:  4_000_000,
		`ember_p2p_bytes_total{direction="out",protocol="/meshsub/1.2.0"}`: 5_000_000,
		`ember_p2p_bytes_total{direction="in",protocol="negotiation"}`:     11,
		`ember_p2p_bytes_total{direction="out",protocol="negotiation"}`:    12,

		`ember_p2p_gossip_messages_total{result="accepted",topic="tx"}`:    10,
		`ember_p2p_gossip_messages_total{result="rejected",topic="tx"}`:    1,
		`ember_p2p_gossip_messages_total{result="ignored",topic="tx"}`:     4,
		`ember_p2p_gossip_messages_total{result="accepted",topic="block"}`: 20,
		`ember_p2p_gossip_messages_total{result="rejected",topic="block"}`: 2,
		`ember_p2p_gossip_messages_total{result="ignored",topic="block"}`:  5,

		`ember_p2p_published_total{kind="tx"}`:       1000,
		`ember_p2p_published_total{kind="tx_batch"}`: 9,
		`ember_p2p_published_total{kind="block"}`:    30,

		`ember_p2p_tx_backlog_dropped_total`:                  6,
		`ember_p2p_serve_busy_total`:                          21,
		`ember_p2p_tx_resent_total`:                           13,
		`ember_p2p_tx_unconfirmed`:                            14,
		`ember_p2p_events_lagged_total`:                       8,
		`ember_p2p_compact_blocks_total{how="rebuilt"}`:       18,
		`ember_p2p_compact_blocks_total{how="fetched_whole"}`: 3,
		`ember_p2p_fetched_txs_total`:                         44,
		`ember_p2p_sync_target_height`:                        5000,
		`ember_p2p_sync_blocks_total`:                         4321,
		`ember_p2p_sync_txs_total`:                            98765,
		`ember_p2p_sync_bytes_total`:                          1 << 30,
		`ember_p2p_sync_rounds_total`:                         12,
		`ember_p2p_sync_blocks_per_second`:                    250,
		`ember_p2p_sync_txs_per_second`:                       6000,
		`ember_p2p_sync_bad_peers_total`:                      1,
		`ember_p2p_finality_conflicts_total`:                  2,

		`ember_p2p_gossip_dropped_total{reason="validation_queue_full",topic="tx"}`:    31,
		`ember_p2p_gossip_dropped_total{reason="validation_throttled",topic="tx"}`:     0,
		`ember_p2p_gossip_dropped_total{reason="send_queue_full",topic="tx"}`:          32,
		`ember_p2p_gossip_dropped_total{reason="undeliverable",topic="tx"}`:            0,
		`ember_p2p_gossip_dropped_total{reason="validation_queue_full",topic="block"}`: 0,
		`ember_p2p_gossip_dropped_total{reason="validation_throttled",topic="block"}`:  33,
		`ember_p2p_gossip_dropped_total{reason="send_queue_full",topic="block"}`:       0,
		`ember_p2p_gossip_dropped_total{reason="undeliverable",topic="block"}`:         34,
		`ember_p2p_gossip_dropped_total{reason="send_queue_full",topic="control"}`:     35,
		`ember_p2p_gossip_throttled_rpcs_total`:                                        36,
		`ember_health`:                                                                 node.HealthDegraded,
	}
	for series, v := range want {
		g, ok := got[series]
		if !ok {
			t.Errorf("%s: not scraped", series)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", series, g, v)
		}
	}
	// Only the protocols the snapshot names get a bytes series.
	n := 0
	for series := range got {
		if strings.HasPrefix(series, "ember_p2p_bytes_total{") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d ember_p2p_bytes_total series, want 6", n)
	}
}

// A node without a network reports the p2p metrics as zeros.
func TestP2PMetricsAlone(t *testing.T) {
	got := scrape(t, fakeSource{node.Stats{HeadTime: time.Now()}})
	for _, series := range []string{"ember_p2p_peers", "ember_p2p_syncing", "ember_p2p_gossip_enabled", "ember_p2p_sync_target_height", `ember_p2p_published_total{kind="block"}`, "ember_p2p_tx_resent_total", "ember_p2p_tx_unconfirmed"} {
		if v, ok := got[series]; !ok || v != 0 {
			t.Errorf("%s = %v (scraped: %v), want 0", series, v, ok)
		}
	}
}

func TestEventLogMetrics(t *testing.T) {
	st := node.Stats{
		HeadTime: time.Now(),
		Log: store.LogStatus{First: 100, Next: 5000, Records: 42, Max: 1 << 20, Dropped: 3,
			Consumers: map[string]uint64{"index": 4990, "amqp": 100}},
		IndexBehind: 2,
		PublisherOn: true,
		Publisher:   amqp.PublisherStats{Connected: true, Published: 12, Confirmed: 10, Nacked: 1, Reconnects: 3, Lost: 4, Cursor: 4990},
	}
	got := scrape(t, fakeSource{st})
	for series, v := range map[string]float64{
		`ember_eventlog_first_seq`:                      100,
		`ember_eventlog_next_seq`:                       5000,
		`ember_eventlog_records`:                        42,
		`ember_eventlog_records_max`:                    1 << 20,
		`ember_eventlog_dropped_total`:                  3,
		`ember_eventlog_consumer_lag{consumer="index"}`: 10,
		`ember_eventlog_consumer_lag{consumer="amqp"}`:  4900,
		`ember_index_behind_records`:                    2,
	} {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (scraped: %v), want %v", series, g, ok, v)
		}
	}
	m := NewMetrics()
	m.ObserveIndexLag(30 * time.Millisecond)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "ember_index_lag_seconds" {
			found = mf.GetMetric()[0].GetHistogram().GetSampleCount() == 1
		}
	}
	if !found {
		t.Fatal("ember_index_lag_seconds did not record the observation")
	}
}

// TestDiskMetrics: a disk fault shows as ember_disk_full or
// ember_disk_write_failing, with the failed writes by file.
func TestDiskMetrics(t *testing.T) {
	st := node.Stats{HeadTime: time.Now(), Disk: node.DiskStats{
		Fault: node.FaultDiskFull, GuardFailures: 4, SkippedSlots: 30, MinFreeBytes: 64 << 20,
		Store: store.DiskStatus{FreeBytes: 1 << 20, TotalBytes: 200 << 20, FailedWrites: 7},
	}}
	m := scrape(t, fakeSource{st})
	for series, want := range map[string]float64{
		"ember_disk_full": 1, "ember_disk_write_failing": 0,
		`ember_disk_write_failures_total{file="sign_guard"}`: 4, `ember_disk_write_failures_total{file="store"}`: 7,
		"ember_disk_skipped_slots_total": 30, "ember_disk_free_bytes": 1 << 20, "ember_disk_min_free_bytes": 64 << 20,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	// Healthy, the store's filesystem unknown: 0, and no free-space sample.
	m = scrape(t, fakeSource{node.Stats{HeadTime: time.Now(), Disk: node.DiskStats{Store: store.DiskStatus{FreeBytes: -1}}}})
	if m["ember_disk_full"] != 0 {
		t.Error("ember_disk_full set on a healthy node")
	}
	if _, ok := m["ember_disk_free_bytes"]; ok {
		t.Error("ember_disk_free_bytes reported for a filesystem that cannot tell")
	}
	// The store's writes failing with ENOSPC also count as a full disk.
	st.Disk.Fault, st.Disk.Store.FullSince = node.FaultDiskFailing, time.Now()
	m = scrape(t, fakeSource{st})
	if m["ember_disk_full"] != 1 || m["ember_disk_write_failing"] != 1 {
		t.Errorf("full %v failing %v, want 1 and 1", m["ember_disk_full"], m["ember_disk_write_failing"])
	}
}

// TestEngineMetrics: the Pebble engine's snapshot becomes ember_store_*
// series, none is reported once the store is closed, and the Go
// collector adds the live heap and the heap goal.
func TestEngineMetrics(t *testing.T) {
	st := node.Stats{HeadTime: time.Now(), EngineOK: true, Engine: store.EngineStats{
		CacheBytes: 64 << 20, CacheHits: 90, CacheMisses: 10, MemTableBytes: 128 << 20, ZombieMemTableBytes: 64 << 20,
		FileCacheBytes: 1 << 20, L0Files: 7, L0Sublevels: 3, Tables: 40, TableBytes: 1 << 30, BlobBytes: 2 << 30, ReadAmp: 5,
		CompactionDebt: 1 << 25, Compactions: 12, CompactionsInProgress: 1, Flushes: 9, WALBytes: 1 << 26, DiskBytes: 4 << 30,
	}}
	runtime.GC() // the live heap is measured by a GC
	m := scrape(t, fakeSource{st})
	for series, want := range map[string]float64{
		"ember_store_block_cache_bytes": 64 << 20, `ember_store_block_cache_lookups_total{result="hit"}`: 90,
		`ember_store_block_cache_lookups_total{result="miss"}`: 10,
		`ember_store_memtable_bytes{state="live"}`:             128 << 20, `ember_store_memtable_bytes{state="zombie"}`: 64 << 20,
		"ember_store_file_cache_bytes": 1 << 20, "ember_store_l0_files": 7, "ember_store_l0_sublevels": 3,
		"ember_store_tables": 40, "ember_store_table_bytes": 1 << 30, "ember_store_blob_bytes": 2 << 30,
		"ember_store_read_amplification": 5, "ember_store_compaction_debt_bytes": 1 << 25, "ember_store_compactions_total": 12,
		"ember_store_compactions_running": 1, "ember_store_flushes_total": 9, "ember_store_wal_bytes": 1 << 26, "ember_store_disk_bytes": 4 << 30,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	// The live heap and the heap goal, beside go_memstats_* (the soak
	// tells a leak from the GC's sawtooth by them).
	for _, series := range []string{"go_gc_heap_live_bytes", "go_gc_heap_goal_bytes", "go_memstats_heap_inuse_bytes"} {
		if v, ok := m[series]; !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want a positive figure", series, v, ok)
		}
	}
	st.EngineOK = false
	for series := range scrape(t, fakeSource{st}) {
		if strings.HasPrefix(series, "ember_store_") {
			t.Errorf("%s reported for a closed store", series)
		}
	}
}
