package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/zstd"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// Options configure a Store. The zero value is a durable store on disk.
type Options struct {
	// FS is the filesystem (nil: the real disk). Tests pass
	// vfs.NewCrashableMem().
	FS vfs.FS
	// Logger receives the store's and Pebble's messages (nil: discard).
	Logger *slog.Logger
	// NoSync skips the fsync of each commit, for tests and benchmarks
	// only: a machine crash may then lose committed Readies.
	NoSync bool
	// CacheBytes is the Pebble block cache size (default 64 MiB).
	CacheBytes int64
	// MemTableBytes is the size of one Pebble memtable (default 64 MiB).
	// A 5,000-transaction block writes about 3 MB, so the default holds
	// some twenty blocks before a flush.
	MemTableBytes uint64
	// DecodedBlocks is how many decoded blocks the read path keeps
	// (default 16).
	DecodedBlocks int
	// DecodedTransactions bounds the transactions in those blocks
	// (default 65,536, ~160 MB: decoding a transfer allocates ~2.4 KB);
	// sixteen blocks of 60,000 transfers would otherwise hold gigabytes.
	// The newest block stays cached whatever its size.
	DecodedTransactions int
	// MaxReadTransactions bounds the transactions one multi-block read
	// decodes (BlocksByHeight, BlocksByID, the block records of
	// AccountHistory; default 65,536), so that one request cannot make the
	// node decode a thousand full blocks at once. A read always gets at
	// least its first block.
	MaxReadTransactions int
	// MaxLogRecords caps the event log's retained records (default
	// DefaultMaxLogRecords). Past it the oldest are dropped even if a
	// consumer has not confirmed them; that consumer is told so
	// (LogGapError).
	MaxLogRecords int
	// MaxHistoryCounters bounds the per-address sequence counters kept in
	// memory for account history (default 1<<20, about 64 MiB); an evicted
	// counter is reloaded with one seek.
	MaxHistoryCounters int
	// FrameTxs is how many transactions share a compressed frame in a
	// block record (default DefaultFrameTxs). Records written with any
	// value read back under any other.
	FrameTxs int
	// NoTransactionIndex and NoAccountHistory leave out the transaction
	// index and the account history, for a validator that serves neither
	// (Koinos runs them as optional services): about half the cost of a
	// commit (doc.go). Lookups then fail with ErrIndexOff. Both are fixed
	// when the store is created; opening it with other values fails.
	NoTransactionIndex bool
	NoAccountHistory   bool
	// MinFreeBytes is the free space Open requires on the store's
	// filesystem (0: no check). The node also stops producing below it
	// (store.min_free_bytes; docs/operations.md, "Disk full").
	MinFreeBytes int64
}

// ErrIndexOff is returned (wrapped) by TransactionsByID and AccountHistory
// on a store created without that index.
var ErrIndexOff = errors.New("store: index off")

// Defaults of Options.
const (
	DefaultCacheBytes         = 64 << 20
	DefaultMemTableBytes      = 64 << 20
	DefaultDecodedBlocks      = 16
	DefaultDecodedTxs         = 1 << 16
	DefaultMaxReadTxs         = 1 << 16
	DefaultMaxHistoryCounters = 1 << 20
	DefaultMaxLogRecords      = 1 << 20
)

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = DefaultMemTableBytes
	}
	if o.DecodedBlocks <= 0 {
		o.DecodedBlocks = DefaultDecodedBlocks
	}
	if o.DecodedTransactions <= 0 {
		o.DecodedTransactions = DefaultDecodedTxs
	}
	if o.MaxReadTransactions <= 0 {
		o.MaxReadTransactions = DefaultMaxReadTxs
	}
	if o.MaxHistoryCounters <= 0 {
		o.MaxHistoryCounters = DefaultMaxHistoryCounters
	}
	if o.MaxLogRecords <= 0 {
		o.MaxLogRecords = DefaultMaxLogRecords
	}
	if o.FrameTxs <= 0 {
		o.FrameTxs = DefaultFrameTxs
	}
}

// valueSeparationMin is the smallest value kept out of the LSM's sstables:
// block records of more than a few transactions; index and state values
// are far smaller.
const valueSeparationMin = 4 << 10

// formatVersion names the key layout of doc.go. A store written with
// another layout is refused rather than misread.
const formatVersion = "ember-store-1"

// ErrNotFound is returned for an unknown block.
var ErrNotFound = errors.New("store: not found")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("store: closed")

// Store is Ember's Pebble-backed block store, transaction index, account
// history and state checkpoint. One goroutine commits (Commit,
// CommitGroup); any goroutine may read.
type Store struct {
	db    *pebble.DB
	log   *slog.Logger
	wopts *pebble.WriteOptions
	dec   *zstd.Decoder

	// state is the metadata as of the last successful commit; readers
	// load it without locks and never see it ahead of the data.
	state atomic.Pointer[metaState]

	decoded    *entryCache
	maxReadTxs int
	// noTxIndex and noHistory: indexes this store does not keep (fixed
	// at creation, checked at open).
	noTxIndex, noHistory bool
	closed               atomic.Bool // set by Close; reads check it
	disk                 *diskFull   // ENOSPC pacing and status (diskfull.go)

	// mu serializes commits and Close, and guards what only the commit
	// path uses.
	mu struct {
		sync.Mutex
		// broken is set when a commit failed after changing the
		// in-memory indexes: they may no longer match the disk, so
		// further commits are refused until the store is reopened.
		broken error
		enc    *recordEncoder
		batch  *pebble.Batch
		key    []byte
		val    []byte
		forks  map[koinos.Digest]uint64 // blocks with a fork marker → height
		recs   []LogRecord              // the event log records of the commit being built
	}

	elog    eventLog
	mempool struct {
		sync.Mutex
		q      []bufferedAdmission
		failed []koinos.Digest
	}
	ix                 indexState
	pending            pendingState
	maxHistoryCounters int
}

var _ chain.Storage = (*Store)(nil)

// Open opens or creates the store in dir.
func Open(dir string, o Options) (*Store, error) {
	o.EnsureDefaults()
	if err := checkFreeSpace(o.FS, dir, o.MinFreeBytes); err != nil {
		return nil, err
	}
	disk := newDiskFull(o.Logger, dir, o.FS)
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref() // the DB holds its own reference
	po := &pebble.Options{
		FS:                          vfs.OnDiskFull(o.FS, disk.onDiskFull),
		Cache:                       cache,
		Logger:                      pebbleLogger{o.Logger},
		EventListener:               disk.listener(),
		MemTableSize:                o.MemTableBytes,
		MemTableStopWritesThreshold: 4,
		FormatMajorVersion:          pebble.FormatNewest,
		// Compaction settings for a store whose keys are mostly random
		// (transaction ids, addresses) and written once: L0 may hold up
		// to 8 sublevels before compacting (Pebble's default is 4) and
		// Lbase 512 MiB (default 64), so each key is rewritten at fewer
		// levels. Reads pay a few more bloom-filtered L0 probes; they
		// are rare beside writes (doc.go, "Pebble settings").
		L0CompactionThreshold: 8,
		L0StopWritesThreshold: 32,
		LBaseMaxBytes:         512 << 20,
		// Compactions run beside block verification, which wants the
		// cores: one, or two when L0 backs up.
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 },
	}
	// Block records (hundreds of KB for a busy block) go to blob files,
	// which compactions pass by reference instead of rewriting: an LSM
	// would otherwise copy every block once per level. Records are never
	// overwritten or deleted, so blob files hold no garbage to rewrite.
	po.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           valueSeparationMin,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    1.0,
		}
	}
	for i := range po.Levels {
		// Bloom filters make point reads of absent keys nearly free: the
		// engine asks for every new account's state, and block lookups
		// by id miss on unknown ids.
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		// No block compression: the keys are hashes, the records in blob
		// files are zstd frames already, and snappy over them cost CPU
		// for no space.
		po.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.NoCompression }
	}
	db, err := openPebble(dir, po, disk)
	if err != nil {
		return nil, err
	}
	s, err := newStore(db, o, disk)
	if err != nil {
		_ = db.Close()
		return nil, disk.corruptFile(err)
	}
	return s, nil
}

// openPebble opens the DB, unless the disk fills while Pebble replays its
// write-ahead log: Pebble then retries the flush and waits for it forever
// (diskfull.go), so Open gives up with a clear error. The abandoned
// pebble.Open keeps retrying once a second; it closes the DB if it ever
// returns. The process is expected to exit on the error.
func openPebble(dir string, po *pebble.Options, disk *diskFull) (*pebble.DB, error) {
	type opened struct {
		db  *pebble.DB
		err error
	}
	done := make(chan opened, 1)
	disk.inOpen.Store(true)
	go func() {
		db, err := pebble.Open(dir, po)
		done <- opened{db, err}
	}()
	select {
	case o := <-done:
		disk.inOpen.Store(false)
		if o.err != nil {
			return nil, fmt.Errorf("store: open %s: %w", dir, o.err)
		}
		return o.db, nil
	case <-disk.opening:
		go func() {
			if o := <-done; o.db != nil {
				_ = o.db.Close()
			}
		}()
		return nil, fmt.Errorf("%w: replaying the write-ahead log of %s needs space to flush it (%s free now); free space and start again",
			ErrDiskFullAtOpen, dir, FormatBytes(disk.freeBytes()))
	}
}

func newStore(db *pebble.DB, o Options, disk *diskFull) (*Store, error) {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(maxFrameBytes),
		zstd.WithDecodeAllCapLimit(true)) // see record.frame
	if err != nil {
		return nil, fmt.Errorf("store: zstd decoder: %w", err)
	}
	enc, err := newRecordEncoder(o.FrameTxs)
	if err != nil {
		dec.Close()
		return nil, err
	}
	s := &Store{db: db, log: o.Logger, disk: disk, dec: dec, wopts: pebble.Sync, decoded: newEntryCache(o.DecodedBlocks, o.DecodedTransactions), maxReadTxs: o.MaxReadTransactions}
	if o.NoSync {
		s.wopts = pebble.NoSync
	}
	s.mu.enc = enc
	s.mu.forks = make(map[koinos.Digest]uint64)
	s.maxHistoryCounters = o.MaxHistoryCounters
	s.noTxIndex, s.noHistory = o.NoTransactionIndex, o.NoAccountHistory
	created, err := s.checkVersion()
	if err == nil {
		err = s.checkIndexes(created)
	}
	if err != nil {
		dec.Close()
		return nil, err
	}
	st, err := s.loadMeta()
	if err != nil {
		dec.Close()
		return nil, err
	}
	s.state.Store(&st)
	if err = s.loadForkMarkers(); err == nil {
		if err = s.openLog(o.MaxLogRecords); err == nil {
			err = s.openIndexer()
		}
	}
	if err != nil {
		dec.Close()
		return nil, err
	}
	s.log.Info("store opened", "head", st.meta.Head.Height, "lib", st.meta.LIB.Height,
		"checkpoint", st.meta.Checkpoint.Height, "fork_blocks", len(s.mu.forks))
	return s, nil
}

// checkVersion checks the format version, writing it into an empty
// database (created is then true).
func (s *Store) checkVersion() (created bool, err error) {
	v, err := s.get(keyVersion)
	switch {
	case errors.Is(err, ErrNotFound):
		it, err := s.db.NewIter(nil)
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		empty := !it.First()
		if err := it.Close(); err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		if !empty {
			return false, errors.New("store: the database holds data but no format version: not an Ember store, or its MANIFEST (the list of its files, named by marker.manifest.*) is lost")
		}
		if err := s.db.Set(keyVersion, []byte(formatVersion), pebble.Sync); err != nil {
			return false, fmt.Errorf("store: write format version: %w", err)
		}
		return true, nil
	case err != nil:
		return false, err
	case string(v) != formatVersion:
		return false, fmt.Errorf("store: the database has format %q; this node reads %q", v, formatVersion)
	}
	return false, nil
}

// Index flags, the value of keyIndexes.
const (
	indexTx      = 1 << 0
	indexHistory = 1 << 1
)

// checkIndexes compares the indexes the store keeps with the options: an
// index turned on later would lack the blocks committed without it, and
// one turned off would leave holes, so the choice is fixed at creation. A
// store with blocks from before the key existed keeps both.
func (s *Store) checkIndexes(created bool) error {
	want := byte(0)
	if !s.noTxIndex {
		want |= indexTx
	}
	if !s.noHistory {
		want |= indexHistory
	}
	v, err := s.get(keyIndexes)
	switch {
	case errors.Is(err, ErrNotFound):
		have := byte(indexTx | indexHistory)
		if !created {
			// Written right after the version: a crash in between
			// leaves a store with no block yet, which is still new.
			if _, err := s.get(keyMeta); errors.Is(err, ErrNotFound) {
				created = true
			} else if err != nil {
				return err
			}
		}
		if created {
			have = want
		}
		if have != want {
			return indexMismatch(have, want)
		}
		if err := s.db.Set(keyIndexes, []byte{want}, pebble.Sync); err != nil {
			return fmt.Errorf("store: write index settings: %w", err)
		}
		return nil
	case err != nil:
		return err
	case len(v) != 1 || v[0]&^(indexTx|indexHistory) != 0:
		return corruptStore("index settings %x", v)
	case v[0] != want:
		return indexMismatch(v[0], want)
	}
	return nil
}

func indexMismatch(have, want byte) error {
	on := func(f byte, bit byte) string {
		if f&bit != 0 {
			return "on"
		}
		return "off"
	}
	return fmt.Errorf("store: this data directory was created with the transaction index %s and account history %s, but the configuration asks for them %s and %s (store.transaction_index, store.account_history); they are fixed when the store is created: keep the settings, or start a new data directory",
		on(have, indexTx), on(have, indexHistory), on(want, indexTx), on(want, indexHistory))
}

func (s *Store) loadMeta() (metaState, error) {
	v, err := s.get(keyMeta)
	if errors.Is(err, ErrNotFound) {
		return metaState{}, nil
	}
	if err != nil {
		return metaState{}, err
	}
	m, err := decodeMeta(v)
	if err != nil {
		return metaState{}, fmt.Errorf("store: %w", err)
	}
	return m, nil
}

// loadForkMarkers reads the markers of blocks not yet irreversible; the
// commit path deletes them by key once the LIB passes their height.
func (s *Store) loadForkMarkers() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceFork}, UpperBound: []byte{spaceFork + 1}})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != forkKeyLen {
			_ = it.Close()
			return corruptStore("fork marker key of %d bytes", len(k))
		}
		h, id := decodeForkKey(k)
		s.mu.forks[id] = h
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: read fork markers: %w", err)
	}
	return nil
}

// Close closes the database; every commit is already in the WAL. Reads
// started after Close return ErrClosed; as with Pebble, the caller must
// stop reads in flight before closing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return ErrClosed
	}
	s.disk.closed.Store(true) // no more pausing retries: Close must not wait for space
	s.dec.Close()
	if s.mu.batch != nil {
		_ = s.mu.batch.Close()
	}
	s.ix.Lock()
	if s.ix.batch != nil {
		_ = s.ix.batch.Close()
		s.ix.batch = nil
	}
	s.ix.Unlock()
	s.elog.mu.Lock()
	close(s.elog.wake)
	s.elog.wake = make(chan struct{})
	s.elog.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// get returns a copy of the value of key, or ErrNotFound.
func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: read: %w", err)
	}
	out := bytes.Clone(v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("store: read: %w", err)
	}
	return out, nil
}

// reader is what reads go through: the DB or a snapshot of it.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// with calls fn with the value of key, valid only during fn; it returns
// ErrNotFound when key is absent. Other errors have no "store: " prefix:
// callers wrap them with their context.
func with(r reader, key []byte, fn func(v []byte) error) error {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	err = fn(v)
	if cerr := closer.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("read: %w", cerr)
	}
	return err
}

// pebbleLogger routes Pebble's messages to slog. Pebble calls Fatalf on a
// failed WAL write, after which its commit pipeline is unusable; it
// expects the call not to return, so we log and panic: continuing would
// acknowledge commits that are not durable. The panic carries the cause
// (pebbleFatal); on the commit path commitBatch recovers it as an error.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	f := pebbleFatal{msg: fmt.Sprintf(format, args...)}
	if !strings.HasPrefix(f.msg, "pebble: ") {
		f.msg = "pebble: " + f.msg
	}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.cause = err
			break
		}
	}
	p.l.Error(f.msg)
	panic(f)
}
