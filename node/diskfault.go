package node

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/emberchain/ember/producer"
	"github.com/emberchain/ember/store"
)

// Production on a full or failing disk (docs/reliability.md, "Disk
// faults"). Signing a block first records its slot in the sign guard; on
// a full disk that write fails, nothing is signed, and the slot is lost.
// Retrying at every slot would fail the same way, so the chain loop:
//
//   - checks the free space before each of its slots (one statfs): below
//     store.min_free_bytes it skips the slot without writing anything, so
//     neither the guard nor the store's write-ahead log meets ENOSPC (the
//     store cannot recover from a failed log write: it must be reopened);
//   - after a failed guard write, backs off: the next try is 1, 2, 4 ...
//     slots later, at most diskRetryCap (and always at least one slot),
//     or the first slot after the free space grew by spaceFreedBytes;
//   - logs once on entering the fault, every diskFaultReminder while it
//     lasts, and once when a block is produced again;
//   - reports it in Stats (metrics) and Health (degraded, "disk full: ...").
//
// The store commit is not retried: a failed commit stops the node, with an
// error that names the cause (store/diskfull.go).

// Fault kinds (DiskStats.Fault), as /healthz and the metrics name them.
const (
	FaultDiskFull    = "disk full"
	FaultDiskFailing = "disk write failing"
)

// diskFaultReminder is how often the log repeats that production is still
// stopped.
const diskFaultReminder = time.Minute

// diskRetryCap bounds the backoff between write attempts.
const diskRetryCap = 30 * time.Second

// DiskStats is the node's view of its disk, for metrics and health.
type DiskStats struct {
	// Fault is "" while production may write, "disk full" or "disk write
	// failing" while it is stopped; Err is why, Since when it began.
	Fault string
	Err   error
	Since time.Time
	// GuardFailures counts the sign guard writes that failed, and
	// SkippedSlots this node's slots not produced because of a fault,
	// since start.
	GuardFailures uint64
	SkippedSlots  uint64
	// MinFreeBytes is store.min_free_bytes (0: not checked).
	MinFreeBytes int64
	// Store is the store's filesystem and ENOSPC failures.
	Store store.DiskStatus
}

// diskFault is the chain loop's record of a disk fault. Only the chain
// loop touches it; it publishes a copy in Node.diskStats.
type diskFault struct {
	kind      string
	err       error
	since     time.Time
	failures  int    // failed attempts in this episode
	retrySlot uint64 // no write attempt before this slot
	// freeAtFailure is the free space when the last write failed (-1:
	// unknown).
	freeAtFailure int64
	lastLog       time.Time
	skipped       uint64 // slots skipped in this episode
	// since start:
	guardFailures, skippedTotal uint64
}

// diskAllows reports whether the chain loop may try to produce slot: the
// free space is above the reserve and no backoff holds the slot. It skips
// the slot otherwise, and logs only on entering a fault and as a reminder.
func (n *Node) diskAllows(slot uint64) bool {
	d := &n.disk
	minFree := n.cfg.Store.MinFreeBytes
	if minFree <= 0 && d.kind == "" {
		return true
	}
	free := n.store.DiskStatus().FreeBytes // -1: unknown
	if minFree > 0 && free >= 0 && free < minFree {
		n.enterDiskFault(slot, FaultDiskFull, fmt.Errorf("%s free on the store's disk, below the %s kept free (store.min_free_bytes)",
			store.FormatBytes(free), store.FormatBytes(minFree)))
		n.skipForDisk()
		return false
	}
	// A full disk that has gained space since the failed write is tried
	// at once: the backoff is for a disk that stays as it was.
	freed := d.kind == FaultDiskFull && d.freeAtFailure >= 0 && free > d.freeAtFailure+spaceFreedBytes
	if d.kind != "" && slot < d.retrySlot && !freed {
		n.skipForDisk()
		return false
	}
	return true
}

// spaceFreedBytes is how much free space must grow after a failed write
// for the next slot to try again before its backoff ends.
const spaceFreedBytes = 1 << 20

// skipForDisk counts a skipped slot and reminds the log now and then.
func (n *Node) skipForDisk() {
	d := &n.disk
	d.skipped++
	d.skippedTotal++
	if now := n.now(); now.Sub(d.lastLog) >= diskFaultReminder {
		d.lastLog = now
		n.log.Warn("production still stopped: "+d.kind, "err", d.err, "since", d.since.UTC().Format(time.RFC3339),
			"skipped_slots", d.skipped, "failed_writes", d.failures, "data_dir", n.cfg.DataDir)
	}
	n.publishDisk()
}

// diskWriteFailed handles a failed write of slot's signature record:
// enter or stay in the fault, and hold the next attempt back.
func (n *Node) diskWriteFailed(slot uint64, err error) {
	d := &n.disk
	kind := FaultDiskFailing
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		kind = FaultDiskFull
	}
	d.guardFailures++
	d.failures++
	d.skipped++
	d.skippedTotal++
	interval := time.Duration(n.cfg.Genesis.Params().BlockIntervalMs) * time.Millisecond
	capSlots := uint64(max(1, diskRetryCap/max(interval, time.Millisecond)))
	backoff := uint64(1) << min(d.failures-1, 20)
	d.retrySlot = slot + max(1, min(backoff, capSlots))
	d.freeAtFailure = n.store.DiskStatus().FreeBytes
	n.enterDiskFault(slot, kind, err)
	n.publishDisk()
}

// enterDiskFault sets the fault; a new one (or a new kind) is logged once.
func (n *Node) enterDiskFault(slot uint64, kind string, err error) {
	d := &n.disk
	d.err = err
	if d.kind == kind {
		return
	}
	if d.kind == "" {
		d.since = n.now()
	}
	d.kind = kind
	d.lastLog = n.now()
	hint := "free space on the data directory's disk; production resumes by itself"
	if kind == FaultDiskFailing {
		hint = "check the disk (dmesg, SMART); production is retried with a growing pause"
	}
	n.log.Error("production stopped: "+kind, "slot", slot, "err", err, "next_try_slot", max(d.retrySlot, slot+1),
		"data_dir", n.cfg.DataDir, "hint", hint)
	n.publishDisk()
}

// diskWriteOK is called after a block was produced and stored: a fault,
// if any, is over.
func (n *Node) diskWriteOK() {
	d := &n.disk
	if d.kind == "" {
		return
	}
	msg := "disk space is back, production resumed"
	if d.kind == FaultDiskFailing {
		msg = "disk writes work again, production resumed"
	}
	n.log.Info(msg, "stopped_for", n.now().Sub(d.since).Round(time.Second).String(), "skipped_slots", d.skipped, "failed_writes", d.failures)
	d.kind, d.err, d.since, d.failures, d.retrySlot, d.skipped = "", nil, time.Time{}, 0, 0, 0
	n.publishDisk()
}

// publishDisk makes the chain loop's record readable by Stats.
func (n *Node) publishDisk() {
	d := &n.disk
	n.diskStats.Store(&DiskStats{Fault: d.kind, Err: d.err, Since: d.since, GuardFailures: d.guardFailures, SkippedSlots: d.skippedTotal})
}

// diskSnapshot is Stats' view: the chain loop's record, the store's.
func (n *Node) diskSnapshot() DiskStats {
	var s DiskStats
	if p := n.diskStats.Load(); p != nil {
		s = *p
	}
	s.MinFreeBytes = n.cfg.Store.MinFreeBytes
	s.Store = n.store.DiskStatus()
	return s
}

// guardWriteFailure returns the sign guard write failure in err, if any.
func guardWriteFailure(err error) bool {
	var gw *producer.GuardWriteError
	return errors.As(err, &gw)
}
