package sigverify

import (
	"sync"
	"sync/atomic"
)

// source is the admission state of one submitter (a peer id or a client
// IP): how many of its transactions are queued or being verified, and a
// score of its recent invalid ones.
type source struct {
	inflight atomic.Int32
	// bad rises by one for each invalid transaction (failed precheck,
	// cached invalid, or found invalid by a worker) and halves with each
	// valid one, so it measures recent behaviour without a clock (the
	// engine reads none).
	bad atomic.Int32
}

const maxBad = 1 << 20

func (s *source) strike() {
	if s.bad.Load() < maxBad {
		s.bad.Add(1)
	}
}

func (s *source) credit() {
	for {
		b := s.bad.Load()
		if b == 0 || s.bad.CompareAndSwap(b, b/2) {
			return
		}
	}
}

// sources maps source names to their state. sync.Map makes the lookup of a
// known source lock-free, so submissions from one busy peer share no lock.
type sources struct {
	m        sync.Map // string -> *source
	n        atomic.Int64
	max      int
	cap      int32 // in-flight limit per source
	suspCap  int32 // in-flight limit of a suspect source
	suspect  int32 // bad score at which a source is suspect
	sweeping atomic.Bool
}

func newSources(max, perSource, suspectAt int) *sources {
	return &sources{
		max:     max,
		cap:     int32(perSource),
		suspCap: int32(max1(perSource / 8)),
		suspect: int32(suspectAt),
	}
}

func max1(n int) int { return max(n, 1) }

// get returns the state of name, creating it.
func (ss *sources) get(name string) *source {
	if s, ok := ss.m.Load(name); ok {
		return s.(*source)
	}
	s, loaded := ss.m.LoadOrStore(name, &source{})
	if !loaded && ss.n.Add(1) > int64(ss.max) {
		ss.sweep()
	}
	return s.(*source)
}

// sweep forgets idle sources (nothing in flight) when there are more than
// max. A submission that looked a source up just before it was forgotten
// keeps counting on the old record, so for a moment that source may have
// up to twice its limit in flight; that is the price of a lock-free
// lookup.
func (ss *sources) sweep() {
	if !ss.sweeping.CompareAndSwap(false, true) {
		return
	}
	defer ss.sweeping.Store(false)
	ss.m.Range(func(k, v any) bool {
		if v.(*source).inflight.Load() == 0 && ss.m.CompareAndDelete(k, v) {
			ss.n.Add(-1)
		}
		return true
	})
}

// isSuspect reports whether s has sent mostly invalid transactions lately.
// A suspect source gets a smaller in-flight limit, and its transactions are
// verified one by one, apart from other sources' batches, so that its
// invalid signatures cannot make good batches fall back to serial checks.
func (ss *sources) isSuspect(s *source) bool { return s.bad.Load() >= ss.suspect }

// admit takes an in-flight slot for s, or reports false when s is at its
// limit.
func (ss *sources) admit(s *source, suspect bool) bool {
	limit := ss.cap
	if suspect {
		limit = ss.suspCap
	}
	if s.inflight.Add(1) > limit {
		s.inflight.Add(-1)
		return false
	}
	return true
}

func (s *source) release() { s.inflight.Add(-1) }
