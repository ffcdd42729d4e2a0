package rpcgw

import (
	"context"
	"sync/atomic"
	"time"
)

// callCtx is the context of one backend call: it ends at the call's
// deadline or when the server's base context is cancelled (Shutdown's drain
// deadline passed).
//
// context.WithTimeout(base, d) per call was the first version. It cost a
// fifth of the gateway's time per get_head_info: a runtime timer, and
// registering the child with base, which takes base's mutex twice per call
// from every worker at once. Most calls never wait (a local read answers
// before anyone selects on Done), so callCtx creates the real timer context
// only when Done is first called; until then Err is computed from the clock
// and base. A backend that waits pays what it paid before; one that does not
// pays nothing.
type callCtx struct {
	base     context.Context
	deadline time.Time
	client   string // the client's IP address
	timer    atomic.Pointer[lazyTimer]
}

type clientKey struct{}

// ClientIP returns the IP address of the client whose call ctx belongs to
// ("" outside a gateway call), for per-client limits in the backend.
func ClientIP(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

type lazyTimer struct {
	ctx    context.Context
	cancel context.CancelFunc
}

var _ context.Context = (*callCtx)(nil)

func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callCtx) Done() <-chan struct{} {
	if t := c.timer.Load(); t != nil {
		return t.ctx.Done()
	}
	ctx, cancel := context.WithDeadline(c.base, c.deadline)
	if !c.timer.CompareAndSwap(nil, &lazyTimer{ctx, cancel}) {
		cancel() // another goroutine won the race; use its timer
	}
	return c.timer.Load().ctx.Done()
}

// Err is consistent with Done: once it reports an error, a Done created
// later is already closed, because the same deadline and base decide both.
func (c *callCtx) Err() error {
	if t := c.timer.Load(); t != nil {
		return t.ctx.Err()
	}
	if err := c.base.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Value answers from the timer context once there is one, so that a context
// the backend derives from this one finds the timer's cancelCtx and is
// registered with it directly instead of being watched by a goroutine.
func (c *callCtx) Value(key any) any {
	if _, ok := key.(clientKey); ok {
		return c.client
	}
	if t := c.timer.Load(); t != nil {
		return t.ctx.Value(key)
	}
	return c.base.Value(key)
}

// release frees the timer, if one was made, when the call returns.
func (c *callCtx) release() {
	if t := c.timer.Load(); t != nil {
		t.cancel()
	}
}
