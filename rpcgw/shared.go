package rpcgw

import (
	"context"
	"time"
)

// What other front ends of the same Backend (the gRPC server, rpcgw/grpcgw)
// share with this one, so that every front end bounds the backend and names
// its clients the same way.

// Admission is the bounded worker pool in front of the backend (see
// admission): at most Workers calls run, at most QueueSize wait, none waits
// longer than QueueTimeout.
type Admission struct{ a *admission }

// Admit is the outcome of Admission.Acquire.
type Admit int

// Admission outcomes.
const (
	Admitted        Admit = Admit(admitted)        // hold a worker; Release it when done
	RejectedFull    Admit = Admit(rejectedFull)    // every worker busy and the queue full
	RejectedTimeout Admit = Admit(rejectedTimeout) // waited past the queue timeout
	RejectedClosed  Admit = Admit(rejectedClosed)  // done was closed while waiting
)

// NewAdmission builds a pool of workers with queueSize waiting places (0 or
// -1: none may wait) and a wait bound of timeout.
func NewAdmission(workers, queueSize int, timeout time.Duration) *Admission {
	return &Admission{newAdmission(workers, queueSize, timeout)}
}

// Acquire takes a worker, waiting in the queue if every worker is busy;
// done aborts the wait.
func (a *Admission) Acquire(done <-chan struct{}) Admit { return Admit(a.a.acquire(done)) }

// Release returns a worker taken by a successful Acquire.
func (a *Admission) Release() { a.a.release() }

// Running is the number of workers held now.
func (a *Admission) Running() int { return a.a.running() }

// Queued is the number of callers waiting for a worker now.
func (a *Admission) Queued() int64 { return a.a.queued() }

// WithClientIP returns ctx carrying the IP address of the client a backend
// call serves, as ClientIP reads it, for per-client limits in the backend.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientKey{}, ip)
}
