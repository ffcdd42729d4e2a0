package logsample

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// Sampler is ready to use at its zero value and safe for concurrent use.
type Sampler struct {
	next    atomic.Int64
	dropped atomic.Int64
}

// Allow reports whether a message may be logged now and, if so, how many
// were dropped since the last one.
func (p *Sampler) Allow() (bool, int64) {
	now := time.Now().UnixNano()
	n := p.next.Load()
	if now < n || !p.next.CompareAndSwap(n, now+int64(time.Second)) {
		p.dropped.Add(1)
		return false, 0
	}
	return true, p.dropped.Swap(0)
}

// Warn logs msg at warning level unless the last one was under a second
// ago; it adds "suppressed" with the count dropped since.
func (p *Sampler) Warn(log *slog.Logger, msg string, args ...any) {
	ok, dropped := p.Allow()
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	log.Warn(msg, args...)
}
