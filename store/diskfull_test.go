package store

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/emberchain/ember/internal/syncbuf"
)

// fullDisk injects ENOSPC, as a full disk returns it, into the writes of
// files whose name ends with one of suffixes while it is on, and counts
// the failed writes.
type fullDisk struct {
	on       atomic.Bool
	suffixes []string
	failed   atomic.Int64
}

func (d *fullDisk) MaybeError(op errorfs.Op) error {
	if !d.on.Load() || op.Kind.ReadOrWrite() != errorfs.OpIsWrite || op.Kind == errorfs.OpRemove || op.Kind == errorfs.OpRemoveAll {
		return nil
	}
	for _, s := range d.suffixes {
		if strings.HasSuffix(op.Path, s) {
			d.failed.Add(1)
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
		}
	}
	return nil
}

func (d *fullDisk) String() string { return "full disk" }

func shortDiskFullPause(t *testing.T, d time.Duration) {
	old := diskFullPause
	diskFullPause = d
	t.Cleanup(func() { diskFullPause = old })
}

// TestCommitOnFullDisk: the write-ahead log's write fails with ENOSPC.
// Pebble cannot go on after that; the commit must return an error that
// says so (not panic), refuse the commits after it, and leave on disk the
// store as of the last commit that returned.
func TestCommitOnFullDisk(t *testing.T) {
	shortDiskFullPause(t, 10*time.Millisecond)
	disk := &fullDisk{suffixes: []string{".log"}}
	mem := vfs.NewMem()
	nd := newNode(t, newNet(t, 1, 2), errorfs.Wrap(mem, disk), 3)
	nd.produce(0)
	nd.produce(0)
	head := nd.c.Head()

	disk.on.Store(true)
	prop, sig := nd.build(0, 0)
	r, err := nd.c.Commit(prop, sig)
	if err != nil {
		t.Fatal(err)
	}
	err = nd.st.Commit(r)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("commit on a full disk: %v", err)
	}
	if disk.failed.Load() == 0 {
		t.Fatal("no write failed: the test injected nothing")
	}
	if err := nd.st.Commit(r); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Fatalf("a commit after the failure was not refused: %v", err)
	}
	_ = nd.st.Close() // reports the log writer's error; must not hang or panic

	disk.on.Store(false)
	nd.open()
	defer nd.st.Close()
	if got := nd.c.Head(); got.ID != head.ID {
		t.Fatalf("after reopening, head %d, want %d: the failed commit left something", got.Height, head.Height)
	}
	nd.produce(0) // the store works again
}

// TestFlushOnFullDiskIsPaced: Pebble retries a failed flush at once,
// without end. The store must pace the retries (one per diskFullPause),
// log the condition once (not per retry), report it in DiskStatus, and
// say once that space is back when a flush succeeds.
func TestFlushOnFullDiskIsPaced(t *testing.T) {
	const pause = 20 * time.Millisecond
	shortDiskFullPause(t, pause)
	disk := &fullDisk{suffixes: []string{".sst", ".blob"}}
	var logs syncbuf.Buffer
	nd := newNode(t, newNet(t, 1, 2), errorfs.Wrap(vfs.NewMem(), disk), 3)
	nd.st.Close()
	nd.opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nd.open()
	defer nd.st.Close()
	nd.produce(0)

	disk.on.Store(true)
	flushed, err := nd.st.db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	const window = 500 * time.Millisecond
	time.Sleep(window)
	failed := disk.failed.Load()
	// Each attempt waits one pause before its retry, and the retry fails
	// too: two failed writes per pause at most (plus the one under way).
	if most := 2*int64(window/pause) + 2; failed == 0 || failed > most {
		t.Fatalf("%d failed writes in %s, want 1..%d", failed, window, most)
	}
	st := nd.st.DiskStatus()
	if st.FullSince.IsZero() || st.FailedWrites == 0 {
		t.Fatalf("DiskStatus does not report the full disk: %+v", st)
	}
	if n := strings.Count(logs.String(), "disk full"); n != 1 {
		t.Fatalf("%d 'disk full' lines for %d failed writes, want 1:\n%s", n, failed, logs.String())
	}
	if strings.Contains(logs.String(), "background error") {
		t.Fatalf("ENOSPC background errors were logged one by one:\n%s", logs.String())
	}

	disk.on.Store(false)
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the flush did not complete once space was back")
	}
	if !nd.st.DiskStatus().FullSince.IsZero() {
		t.Fatal("DiskStatus still reports a full disk after a successful flush")
	}
	if !strings.Contains(logs.String(), "disk space is back") {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
	nd.produce(0)
	t.Logf("%d failed writes in %s, %d log lines", failed, window, logs.Lines())
}

// TestOpenOnFullDisk: reopening replays the write-ahead log and flushes
// it; on a full disk Pebble would wait for that flush forever. Open must
// return a clear error instead, and open once space is back.
func TestOpenOnFullDisk(t *testing.T) {
	shortDiskFullPause(t, 10*time.Millisecond)
	disk := &fullDisk{suffixes: []string{".sst", ".blob"}}
	nd := newNode(t, newNet(t, 1, 2), errorfs.Wrap(vfs.NewMem(), disk), 3)
	nd.produce(0)
	head := nd.c.Head()
	nd.st.Close() // the memtable is not flushed: the blocks are in the write-ahead log

	disk.on.Store(true)
	opened := make(chan error, 1)
	go func() {
		st, err := Open(nd.dir, nd.opts)
		if err == nil {
			st.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if !errors.Is(err, ErrDiskFullAtOpen) || !strings.Contains(err.Error(), "free space") {
			t.Fatalf("open on a full disk: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open on a full disk did not return in 5 s")
	}

	// Space back: the abandoned open completes and releases the store,
	// which then opens with everything the write-ahead log held.
	disk.on.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := Open(nd.dir, nd.opts)
		if err == nil {
			nd.st = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not open once space was back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer nd.st.Close()
	nd.openChain()
	if got := nd.c.Head(); got.ID != head.ID {
		t.Fatalf("head %d after reopening, want %d", got.Height, head.Height)
	}
}

// lowSpaceFS reports a disk with little free space.
type lowSpaceFS struct {
	vfs.FS
	free uint64
}

func (fs lowSpaceFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: fs.free, TotalBytes: 200 << 20, UsedBytes: 200<<20 - fs.free}, nil
}

// TestOpenRefusesBelowMinFree: Options.MinFreeBytes is checked before
// Pebble is opened, and the error names the setting.
func TestOpenRefusesBelowMinFree(t *testing.T) {
	fs := lowSpaceFS{FS: vfs.NewMem(), free: 1 << 20}
	_, err := Open("db", Options{FS: fs, MinFreeBytes: 64 << 20})
	if !errors.Is(err, ErrDiskFullAtOpen) || !strings.Contains(err.Error(), "store.min_free_bytes") || !strings.Contains(err.Error(), "1.0 MiB") {
		t.Fatalf("open below the minimum: %v", err)
	}
	st, err := Open("db", Options{FS: fs, MinFreeBytes: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if ds := st.DiskStatus(); ds.FreeBytes != 1<<20 || ds.TotalBytes != 200<<20 {
		t.Fatalf("DiskStatus: %+v", ds)
	}
	st.Close()
}
