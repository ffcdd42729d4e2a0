package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/emberchain/ember/store"
)

// The Pebble engine's metrics (store.EngineStats): where the memory outside
// the Go heap goes, and whether compaction keeps up (docs/operations.md).
var (
	descStoreCache      = prometheus.NewDesc("ember_store_block_cache_bytes", "Pebble's block cache in use (outside the Go heap; capped by store.cache_bytes).", nil, nil)
	descStoreCacheOps   = prometheus.NewDesc("ember_store_block_cache_lookups_total", "Pebble block cache lookups, by result.", []string{"result"}, nil)
	descStoreMemtables  = prometheus.NewDesc("ember_store_memtable_bytes", "Memory reserved by Pebble's memtables (outside the Go heap): live ones (mutable and queued for flush), and flushed ones a reader still holds (zombie).", []string{"state"}, nil)
	descStoreFileCache  = prometheus.NewDesc("ember_store_file_cache_bytes", "Pebble's open table and blob file readers.", nil, nil)
	descStoreL0Files    = prometheus.NewDesc("ember_store_l0_files", "Sstables in L0; rising steadily means compaction does not keep up.", nil, nil)
	descStoreL0Sub      = prometheus.NewDesc("ember_store_l0_sublevels", "L0 sublevels (Pebble stalls writes at 32).", nil, nil)
	descStoreTables     = prometheus.NewDesc("ember_store_tables", "Live sstables in every level.", nil, nil)
	descStoreTableBytes = prometheus.NewDesc("ember_store_table_bytes", "Bytes of the live sstables.", nil, nil)
	descStoreBlobBytes  = prometheus.NewDesc("ember_store_blob_bytes", "Bytes of the live blob files (block records).", nil, nil)
	descStoreReadAmp    = prometheus.NewDesc("ember_store_read_amplification", "Sorted runs a point read may visit.", nil, nil)
	descStoreDebt       = prometheus.NewDesc("ember_store_compaction_debt_bytes", "Pebble's estimate of the bytes to compact to reach a stable LSM shape.", nil, nil)
	descStoreCompact    = prometheus.NewDesc("ember_store_compactions_total", "Compactions finished since the store opened.", nil, nil)
	descStoreCompactRun = prometheus.NewDesc("ember_store_compactions_running", "Compactions in progress.", nil, nil)
	descStoreFlushes    = prometheus.NewDesc("ember_store_flushes_total", "Memtable flushes since the store opened.", nil, nil)
	descStoreWAL        = prometheus.NewDesc("ember_store_wal_bytes", "Bytes of the live write-ahead log files.", nil, nil)
	descStoreDisk       = prometheus.NewDesc("ember_store_disk_bytes", "Everything Pebble keeps on disk (tables, blob files, logs, manifests).", nil, nil)
)

var engineDescs = []*prometheus.Desc{descStoreCache, descStoreCacheOps, descStoreMemtables, descStoreFileCache, descStoreL0Files, descStoreL0Sub,
	descStoreTables, descStoreTableBytes, descStoreBlobBytes, descStoreReadAmp, descStoreDebt, descStoreCompact, descStoreCompactRun,
	descStoreFlushes, descStoreWAL, descStoreDisk}

// collectEngine reports the engine's snapshot; nothing once the store is
// closed.
func collectEngine(e store.EngineStats, ok bool, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	if !ok {
		return
	}
	gauge(descStoreCache, float64(e.CacheBytes))
	counter(descStoreCacheOps, float64(e.CacheHits), "hit")
	counter(descStoreCacheOps, float64(e.CacheMisses), "miss")
	gauge(descStoreMemtables, float64(e.MemTableBytes), "live")
	gauge(descStoreMemtables, float64(e.ZombieMemTableBytes), "zombie")
	gauge(descStoreFileCache, float64(e.FileCacheBytes))
	gauge(descStoreL0Files, float64(e.L0Files))
	gauge(descStoreL0Sub, float64(e.L0Sublevels))
	gauge(descStoreTables, float64(e.Tables))
	gauge(descStoreTableBytes, float64(e.TableBytes))
	gauge(descStoreBlobBytes, float64(e.BlobBytes))
	gauge(descStoreReadAmp, float64(e.ReadAmp))
	gauge(descStoreDebt, float64(e.CompactionDebt))
	counter(descStoreCompact, float64(e.Compactions))
	gauge(descStoreCompactRun, float64(e.CompactionsInProgress))
	counter(descStoreFlushes, float64(e.Flushes))
	gauge(descStoreWAL, float64(e.WALBytes))
	gauge(descStoreDisk, float64(e.DiskBytes))
}
