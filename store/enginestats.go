package store

// EngineStats is a snapshot of the Pebble engine under the store: where
// its memory goes (block cache, memtables, memtables still pinned by
// readers), how its LSM is shaped and how far compaction is behind. The
// cache and the memtables live outside the Go heap (Pebble allocates them
// by hand), so a node's RSS is roughly the Go runtime's memory plus
// CacheBytes and MemTableBytes and ZombieMemTableBytes here.
type EngineStats struct {
	CacheBytes, CacheEntries int64 // block cache in use
	CacheHits, CacheMisses   int64 // since open
	// MemTableBytes is the memory reserved by the live memtables (the
	// mutable one and those queued for flush); ZombieMemTableBytes by
	// flushed ones a reader still holds.
	MemTableBytes, ZombieMemTableBytes uint64
	MemTables, ZombieMemTables         int64
	// FileCacheBytes is the open-file cache (table and blob readers).
	FileCacheBytes int64
	// L0Files and L0Sublevels: a growing L0 is the first sign that
	// compaction does not keep up (writes stall at L0StopWritesThreshold).
	L0Files     int64
	L0Sublevels int32
	// Tables and TableBytes: live sstables in every level; BlobFiles and
	// BlobBytes: live blob files (the block records).
	Tables, TableBytes   int64
	BlobFiles, BlobBytes uint64
	// ReadAmp is the number of sorted runs a point read may visit.
	ReadAmp int
	// CompactionDebt is Pebble's estimate of bytes to compact to reach a
	// stable LSM shape.
	CompactionDebt                     uint64
	Compactions, CompactionsInProgress int64
	Flushes                            int64
	WALBytes                           uint64 // live write-ahead log files
	DiskBytes                          uint64 // everything Pebble keeps on disk
}

// EngineStats returns a snapshot of the Pebble engine; ok is false once
// the store is closed.
func (s *Store) EngineStats() (st EngineStats, ok bool) {
	if s.checkOpen() != nil {
		return st, false
	}
	m := s.db.Metrics()
	total := m.Total()
	st = EngineStats{
		CacheBytes: m.BlockCache.Size, CacheEntries: m.BlockCache.Count,
		CacheHits: m.BlockCache.Hits, CacheMisses: m.BlockCache.Misses,
		MemTableBytes: m.MemTable.Size, MemTables: m.MemTable.Count,
		ZombieMemTableBytes: m.MemTable.ZombieSize, ZombieMemTables: m.MemTable.ZombieCount,
		FileCacheBytes: m.FileCache.Size,
		L0Files:        m.Levels[0].TablesCount, L0Sublevels: m.Levels[0].Sublevels,
		Tables: total.TablesCount, TableBytes: total.TablesSize,
		BlobFiles: m.BlobFiles.LiveCount, BlobBytes: m.BlobFiles.LiveSize,
		ReadAmp:        m.ReadAmp(),
		CompactionDebt: m.Compact.EstimatedDebt, Compactions: m.Compact.Count, CompactionsInProgress: m.Compact.NumInProgress,
		Flushes:   m.Flush.Count,
		WALBytes:  m.WAL.Size,
		DiskBytes: m.DiskSpaceUsage(),
	}
	return st, true
}
