package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/internal/logsample"
)

// What Pebble does on a full disk (v2.1.7, read from its sources; more in
// docs/reliability.md, "Disk faults"):
//
//   - A failed write or sync of the write-ahead log is sticky: the log
//     writer keeps the error and fails every later commit, and DB.Apply
//     calls Logger.Fatalf ("the commit pipeline will be horked"). The
//     batch is already in the memtable by then, visible to readers but not
//     durable. Nothing short of closing and reopening the DB recovers, so a
//     failed commit stops the node (commitBatch turns the Fatalf into an
//     error that names the cause).
//   - A failed flush or compaction is a background error, and Pebble
//     retries it at once, without pause ("TODO: count consecutive flush
//     errors and backoff"): thousands of attempts and log lines a second,
//     for as long as the disk stays full. At Open, the replayed
//     write-ahead log is flushed and Open waits for that flush, so Open on
//     a full disk never returns.
//
// diskFullFS paces the retries: wrapped in vfs.OnDiskFull, a write that
// fails with ENOSPC waits for onDiskFull (which sleeps diskFullPause) and
// is retried once. Pebble's retry loop then runs once per pause, and the
// log says so once on entering, every diskFullReminder while it lasts, and
// once when a flush succeeds again.

// diskFullPause is how long a write that hit ENOSPC waits before its one
// retry (tests shorten it).
var diskFullPause = time.Second

// diskFullReminder is how often the log repeats that the store's writes
// still fail for lack of space.
const diskFullReminder = time.Minute

// ErrDiskFullAtOpen is returned (wrapped) by Open when the disk filled
// while Pebble replayed its write-ahead log: Pebble would wait for space
// forever.
var ErrDiskFullAtOpen = errors.New("store: the disk is full")

// diskFull tracks the ENOSPC failures of the store's writes.
type diskFull struct {
	log    *slog.Logger
	dir    string
	fs     vfs.FS // the unwrapped filesystem, for free space
	closed atomic.Bool
	// opening is closed at the first ENOSPC while Open runs, so that Open
	// can give up instead of waiting with Pebble.
	opening     chan struct{}
	openingOnce sync.Once
	inOpen      atomic.Bool

	failures atomic.Uint64 // writes that failed with ENOSPC, since start
	since    atomic.Int64  // unix nanos of the first failure of the current episode; 0: none
	mu       sync.Mutex
	lastLog  time.Time
	// other samples Pebble's background errors that are not ENOSPC.
	other logsample.Sampler
	// corrupt is the last file Pebble found corrupt (checksum mismatch),
	// for Open's error; corruptLogged the files already logged.
	corrupt       atomic.Pointer[string]
	corruptLogged sync.Map
}

func newDiskFull(log *slog.Logger, dir string, fs vfs.FS) *diskFull {
	return &diskFull{log: log, dir: dir, fs: fs, opening: make(chan struct{})}
}

// onDiskFull is vfs.OnDiskFull's callback: a write failed with ENOSPC.
// Every other write of the store waits while it runs.
func (d *diskFull) onDiskFull() {
	d.failures.Add(1)
	now := time.Now()
	first := d.since.CompareAndSwap(0, now.UnixNano())
	if d.inOpen.Load() {
		d.openingOnce.Do(func() { close(d.opening) })
	}
	d.mu.Lock()
	switch {
	case first:
		d.lastLog = now
		d.log.Error("store: disk full: a write failed with no space left on device; the store retries once a second and says so every minute until space is freed",
			"dir", d.dir, "free_bytes", d.freeBytes())
	case now.Sub(d.lastLog) >= diskFullReminder:
		d.lastLog = now
		d.log.Warn("store: disk still full: writes fail with no space left on device", "dir", d.dir, "free_bytes", d.freeBytes(),
			"since", time.Unix(0, d.since.Load()).UTC().Format(time.RFC3339), "failed_writes", d.failures.Load())
	}
	d.mu.Unlock()
	if !d.closed.Load() {
		time.Sleep(diskFullPause)
	}
}

// wrote is told of a flush or compaction that succeeded: if writes had
// been failing for lack of space, the episode is over.
func (d *diskFull) wrote() {
	since := d.since.Swap(0)
	if since == 0 {
		return
	}
	d.log.Info("store: disk space is back, writes succeed again", "dir", d.dir, "free_bytes", d.freeBytes(),
		"full_for", time.Since(time.Unix(0, since)).Round(time.Second).String())
}

// backgroundError is Pebble's report of a failed flush or compaction.
// ENOSPC is onDiskFull's to report; others are sampled, since Pebble
// retries at once and would repeat them thousands of times a second.
func (d *diskFull) backgroundError(err error) {
	if errors.Is(err, syscall.ENOSPC) {
		return
	}
	d.other.Warn(d.log, "pebble: background error", "err", err)
}

func (d *diskFull) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: d.backgroundError,
		FlushEnd: func(i pebble.FlushInfo) {
			if i.Err == nil {
				d.wrote()
			}
		},
		CompactionEnd: func(i pebble.CompactionInfo) {
			if i.Err == nil {
				d.wrote()
			}
		},
		// Pebble's default calls Fatalf, a panic. The read that found the
		// corruption returns it as an error anyway; the node stops on it
		// (at Open: an error naming the file) rather than crash.
		DataCorruption: d.dataCorruption,
	}
}

// dataCorruption is Pebble's report of a file whose checksum does not
// match; it comes on the read path, once per read of the bad block.
func (d *diskFull) dataCorruption(i pebble.DataCorruptionInfo) {
	d.corrupt.Store(&i.Path)
	if _, logged := d.corruptLogged.LoadOrStore(i.Path, true); !logged {
		d.log.Error("store: on-disk corruption: a read found a checksum mismatch; the data of this file is not used", "file", i.Path, "err", i.Details.Error())
	}
}

// corruptFile wraps an error of Open with the file Pebble found corrupt,
// if it found one.
func (d *diskFull) corruptFile(err error) error {
	p := d.corrupt.Load()
	if p == nil {
		return err
	}
	return fmt.Errorf("store: %s is corrupt, the store is not used: %w; restore the data directory from a backup, or move it away and resync from peers", *p, err)
}

// diskUsage is the usage of the filesystem that holds dir, or will: a new
// store's directory does not exist yet, its parent does.
func diskUsage(fs vfs.FS, dir string) (vfs.DiskUsage, error) {
	for {
		u, err := fs.GetDiskUsage(dir)
		parent := fs.PathDir(dir)
		if err == nil || !errors.Is(err, os.ErrNotExist) || parent == dir {
			return u, err
		}
		dir = parent
	}
}

func (d *diskFull) freeBytes() int64 {
	u, err := diskUsage(d.fs, d.dir)
	if err != nil {
		return -1
	}
	return int64(u.AvailBytes)
}

// DiskStatus is what the store knows of its disk.
type DiskStatus struct {
	// FreeBytes and TotalBytes are the filesystem's, for unprivileged
	// users; -1 when the filesystem cannot tell (in-memory tests).
	FreeBytes, TotalBytes int64
	// FullSince is when the store's writes began failing with ENOSPC;
	// zero while they succeed.
	FullSince time.Time
	// FailedWrites counts the writes that failed with ENOSPC since Open.
	FailedWrites uint64
}

// DiskStatus returns the free space of the store's filesystem (one statfs)
// and the store's ENOSPC failures.
func (s *Store) DiskStatus() DiskStatus {
	st := DiskStatus{FreeBytes: -1, TotalBytes: -1, FailedWrites: s.disk.failures.Load()}
	if u, err := diskUsage(s.disk.fs, s.disk.dir); err == nil {
		st.FreeBytes, st.TotalBytes = int64(u.AvailBytes), int64(u.TotalBytes)
	}
	if since := s.disk.since.Load(); since != 0 {
		st.FullSince = time.Unix(0, since)
	}
	return st
}

// checkFreeSpace refuses to open a store whose disk has less than min
// bytes free: Pebble's first act is to flush the replayed write-ahead log,
// and on a full disk it would wait for space forever.
func checkFreeSpace(fs vfs.FS, dir string, min int64) error {
	if min <= 0 {
		return nil
	}
	u, err := diskUsage(fs, dir)
	if err != nil {
		return nil // unknown (an in-memory filesystem): let Open try
	}
	if int64(u.AvailBytes) < min {
		return fmt.Errorf("%w: %s has %s free, below the %s the node keeps free (store.min_free_bytes); free space (or lower the setting) and start again",
			ErrDiskFullAtOpen, dir, FormatBytes(int64(u.AvailBytes)), FormatBytes(min))
	}
	return nil
}

// FormatBytes writes n in binary units for messages: 12.3 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// pebbleFatal is what pebbleLogger.Fatalf panics with: the message and the
// error among its arguments, so that a recovered fatal commit error still
// says ENOSPC to errors.Is.
type pebbleFatal struct {
	msg   string
	cause error
}

func (f pebbleFatal) Error() string { return f.msg }
func (f pebbleFatal) Unwrap() error { return f.cause }

// commitBatch commits b. A failed write-ahead-log write or sync makes
// Pebble call Fatalf, which panics (pebbleLogger); here, on the goroutine
// that committed, the panic becomes the error it reports, so the node can
// stop cleanly and name the cause. The DB is unusable after it: the
// caller marks the store broken.
func commitBatch(b *pebble.Batch, wo *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(pebbleFatal)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	return b.Commit(wo)
}

// commitFailed builds the error of a failed commit, with what to do when
// the disk is full.
func commitFailed(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("store: commit: the disk is full (%w); Pebble cannot write again after a failed write-ahead-log write, so the store must be reopened: free space and restart the node (nothing acknowledged is lost)", err)
	}
	return fmt.Errorf("store: commit: %w", err)
}
