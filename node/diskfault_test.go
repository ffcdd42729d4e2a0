package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/syncbuf"
	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/store"
)

// faultyGuard is a FileGuard whose writes fail with errno while it is set,
// as they fail on a full (ENOSPC) or failing (EIO) disk.
type faultyGuard struct {
	inner    *producer.FileGuard
	path     string
	errno    atomic.Value // syscall.Errno; 0: writes succeed
	attempts atomic.Int64
}

func (g *faultyGuard) BeforeSign(slot, height uint64) error {
	g.attempts.Add(1)
	if e, _ := g.errno.Load().(syscall.Errno); e != 0 {
		return &producer.GuardWriteError{Slot: slot, Path: g.path, Err: &os.PathError{Op: "write", Path: g.path + ".tmp", Err: e}}
	}
	return g.inner.BeforeSign(slot, height)
}

func (g *faultyGuard) Last() (uint64, uint64) { return g.inner.Last() }

// spaceFS reports the free space the test sets.
type spaceFS struct {
	vfs.FS
	free *atomic.Int64
}

func (fs spaceFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	f := uint64(fs.free.Load())
	return vfs.DiskUsage{AvailBytes: f, TotalBytes: 1 << 40, UsedBytes: 1<<40 - f}, nil
}

const faultInterval = 100 * time.Millisecond

// startFaultNode runs a single producer with 100 ms slots, logging to logs.
func startFaultNode(t *testing.T, guard producer.Guard, so store.Options, logs *syncbuf.Buffer) *Node {
	t.Helper()
	key := keys.Ed25519FromSeed(seed("producer"))
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{key.Address()}, BlockIntervalMs: uint64(faultInterval.Milliseconds()), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{DataDir: t.TempDir(), Genesis: g, ProducerKey: key, SignGuard: guard, Store: so,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node stopped with: %v", err)
		}
	})
	<-n.Started()
	return n
}

// waitProduced waits until the node has produced more than after blocks.
func waitProduced(t *testing.T, n *Node, after uint64, within time.Duration, logs *syncbuf.Buffer) uint64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if p := n.Stats().Producer.Produced; p > after {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no block produced after %d in %s:\n%s", after, within, logs)
	return 0
}

// TestGuardWriteFailureBacksOff: the sign guard's writes fail, as on a
// full disk (ENOSPC) or a failing one (EIO). Over 25 slots the producer
// must try a handful of times (backoff), log the fault once, say it in
// Health and Stats, and resume by itself, saying so once, when writes work
// again: at once when the free space grows, else at the end of the backoff.
func TestGuardWriteFailureBacksOff(t *testing.T) {
	for _, c := range []struct {
		errno          syscall.Errno
		fault, resumed string
	}{
		{syscall.ENOSPC, "disk full", "disk space is back, production resumed"},
		{syscall.EIO, "disk write failing", "disk writes work again, production resumed"},
	} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			inner, err := producer.OpenFileGuard(filepath.Join(dir, "sign-guard"))
			if err != nil {
				t.Fatal(err)
			}
			guard := &faultyGuard{inner: inner, path: filepath.Join(dir, "sign-guard")}
			logs := &syncbuf.Buffer{}
			var free atomic.Int64 // steady: only the test frees space
			free.Store(1 << 30)
			n := startFaultNode(t, guard, store.Options{FS: spaceFS{FS: vfs.Default, free: &free}}, logs)
			produced := waitProduced(t, n, 1, 5*time.Second, logs)

			guard.errno.Store(c.errno)
			before := guard.attempts.Load()
			const slots = 25
			time.Sleep(slots * faultInterval)
			attempts := guard.attempts.Load() - before
			// Backoff 1, 2, 4, 8, 16 slots: 5 tries in 25 slots, 6 at a
			// boundary. Without it: 25.
			if attempts < 2 || attempts > 6 {
				t.Fatalf("%d signing attempts in %d slots on a failing disk, want 2..6", attempts, slots)
			}
			if k := logs.Count("production stopped: " + c.fault); k != 1 {
				t.Fatalf("%d 'production stopped' lines, want 1:\n%s", k, logs)
			}
			if k := logs.Count("no block produced"); k != 0 {
				t.Fatalf("%d 'no block produced' lines, want 0 (the fault is logged once):\n%s", k, logs)
			}
			code, why := n.Health(time.Now())
			if code != HealthDegraded || !hasPrefix(why, c.fault+": production stopped") {
				t.Fatalf("health %d %q, want degraded with %q", code, why, c.fault)
			}
			s := n.Stats().Disk
			if s.Fault != c.fault || s.GuardFailures < uint64(attempts) || s.GuardFailures > uint64(attempts)+1 || s.SkippedSlots < slots-3 {
				t.Fatalf("disk stats %+v after %d failed attempts", s, attempts)
			}

			if c.errno == syscall.ENOSPC {
				// Right after a failed attempt the backoff is 16 slots or
				// more; with space freed the next slot tries anyway.
				tried := guard.attempts.Load()
				for i := 0; guard.attempts.Load() == tried; i++ {
					if i > 400 {
						t.Fatal("no attempt in 40 slots")
					}
					time.Sleep(faultInterval / 10)
				}
				guard.errno.Store(syscall.Errno(0))
				free.Add(10 << 20)
				waitProduced(t, n, produced, 5*faultInterval, logs)
			} else {
				guard.errno.Store(syscall.Errno(0))
				// The next try is at most 16 slots away here.
				waitProduced(t, n, produced, 40*faultInterval, logs)
			}
			waitLine(t, logs, c.resumed)
			if s := n.Stats().Disk; s.Fault != "" {
				t.Fatalf("fault %q still reported after production resumed", s.Fault)
			}
			t.Logf("%d attempts in %d slots; %d warning or error lines", attempts, slots, logs.Count("level=WARN")+logs.Count("level=ERROR"))
		})
	}
}

// TestLowFreeSpaceStopsProduction: below store.min_free_bytes the node
// skips its slots without writing (no guard write, no commit), says so in
// Health, and produces again in the first slot after space is back.
func TestLowFreeSpaceStopsProduction(t *testing.T) {
	dir := t.TempDir()
	inner, err := producer.OpenFileGuard(filepath.Join(dir, "sign-guard"))
	if err != nil {
		t.Fatal(err)
	}
	guard := &faultyGuard{inner: inner, path: filepath.Join(dir, "sign-guard")}
	var free atomic.Int64
	free.Store(1 << 30)
	logs := &syncbuf.Buffer{}
	n := startFaultNode(t, guard, store.Options{FS: spaceFS{FS: vfs.Default, free: &free}, MinFreeBytes: 64 << 20}, logs)
	waitProduced(t, n, 1, 5*time.Second, logs)

	free.Store(10 << 20)
	time.Sleep(2 * faultInterval) // a slot under way may still finish
	before, produced := guard.attempts.Load(), n.Stats().Producer.Produced
	time.Sleep(10 * faultInterval)
	if a := guard.attempts.Load() - before; a != 0 {
		t.Fatalf("%d signing attempts below the free-space reserve, want 0", a)
	}
	if p := n.Stats().Producer.Produced; p != produced {
		t.Fatalf("%d blocks produced below the free-space reserve", p-produced)
	}
	code, why := n.Health(time.Now())
	if code != HealthDegraded || !hasPrefix(why, "disk full: production stopped") || !strings.Contains(strings.Join(why, " "), "store.min_free_bytes") {
		t.Fatalf("health %d %q", code, why)
	}
	if k := logs.Count("production stopped: disk full"); k != 1 {
		t.Fatalf("%d 'production stopped' lines, want 1:\n%s", k, logs)
	}
	if d := n.Stats().Disk; d.Store.FreeBytes != 10<<20 || d.MinFreeBytes != 64<<20 {
		t.Fatalf("disk stats: %+v", d)
	}

	free.Store(1 << 30)
	waitProduced(t, n, produced, 5*faultInterval, logs)
	waitLine(t, logs, "disk space is back, production resumed")
}

// waitLine waits for the one line that contains s (the chain loop logs it
// just after the block the test saw).
func waitLine(t *testing.T, logs *syncbuf.Buffer, s string) {
	t.Helper()
	for range 100 {
		if logs.Count(s) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if k := logs.Count(s); k != 1 {
		t.Fatalf("%d %q lines, want 1:\n%s", k, s, logs)
	}
}

func hasPrefix(reasons []string, prefix string) bool {
	for _, r := range reasons {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}
