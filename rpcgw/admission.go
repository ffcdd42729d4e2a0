package rpcgw

import (
	"sync"
	"sync/atomic"
	"time"
)

// admission is the bounded worker pool in front of the backend.
//
// fasthttp already runs each connection's requests on that connection's
// goroutine, so the "workers" are not goroutines of ours: a worker is a token
// in slots, and the connection goroutine that holds one does the work itself.
// Handing each request to a separate pool of goroutines (as koinos-jsonrpc
// does with its jobs channel) was rejected: it costs two channel hand-offs
// and a reply channel per request and bounds nothing more.
//
// Ownership: a token is put into slots by acquire and taken out by release,
// by the same request. Capacity: len(slots) <= Workers running, waiting <=
// QueueSize queued. When full: acquire fails at once (503). When a queued
// request's wait passes QueueTimeout: it fails (504). Blocked channel senders
// are woken in FIFO order, so the queue is fair.
type admission struct {
	slots     chan struct{}
	waiting   atomic.Int64
	queueSize int64
	timeout   time.Duration
	timers    sync.Pool // *time.Timer, stopped
}

type admit int

const (
	admitted admit = iota
	rejectedFull
	rejectedTimeout
	rejectedClosed
)

func newAdmission(workers, queueSize int, timeout time.Duration) *admission {
	if queueSize < 0 {
		queueSize = 0
	}
	return &admission{slots: make(chan struct{}, workers), queueSize: int64(queueSize), timeout: timeout}
}

// acquire takes a worker, waiting in the queue if every worker is busy.
// done aborts the wait (hard shutdown).
func (a *admission) acquire(done <-chan struct{}) admit {
	select {
	case a.slots <- struct{}{}:
		return admitted
	default:
	}
	if a.waiting.Add(1) > a.queueSize {
		a.waiting.Add(-1)
		return rejectedFull
	}
	defer a.waiting.Add(-1)
	// Since Go 1.23 a stopped timer never delivers a stale tick after Reset,
	// so pooled timers need no draining.
	t, _ := a.timers.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(a.timeout)
	} else {
		t.Reset(a.timeout)
	}
	defer func() {
		t.Stop()
		a.timers.Put(t)
	}()
	select {
	case a.slots <- struct{}{}:
		return admitted
	case <-t.C:
		return rejectedTimeout
	case <-done:
		return rejectedClosed
	}
}

func (a *admission) release() { <-a.slots }

func (a *admission) running() int  { return len(a.slots) }
func (a *admission) queued() int64 { return a.waiting.Load() }
