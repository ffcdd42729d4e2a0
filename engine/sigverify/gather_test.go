package sigverify

import (
	"testing"
	"time"
)

// gatherWorker is a worker of a pool that runs no goroutines, so a test
// can feed its queue and call gather itself.
func gatherWorker(t *testing.T, window time.Duration) *worker {
	t.Helper()
	cfg := PoolConfig{Workers: 1, GatherWindow: window, Limits: &Limits{}, NewTimer: newTestTimer}
	cfg.EnsureDefaults()
	return newWorker(&Pool{cfg: cfg, quit: make(chan struct{})})
}

// oneSigJob is a submission's job (a block's have no source).
func oneSigJob() []*job { return []*job{{sigs: make([][]byte, 1), src: &source{}}} }

// Wallets send one transaction per request, so under load submissions
// reach a worker one at a time and its batches stay small. gather waits
// for more (up to GatherWindow) only when the worker is under load — its
// recent batches held more than one transaction without waiting — so a
// lone client is never made to wait.
func TestGather(t *testing.T) {
	const long = time.Hour // the test never waits for it: the batch fills first
	for _, tc := range []struct {
		name    string
		window  time.Duration
		natural float64 // recent batch sizes
		have    int     // signatures held when gather is called
		send    int     // one-signature submissions that arrive meanwhile
		want    int
	}{
		{"idle: a lone transaction goes at once", long, 1, 1, 0, 1},
		{"under load: waits until the batch is worth it", long, 4, 1, 30, gatherTarget},
		{"under load, batch already big enough", long, 4, gatherTarget, 5, gatherTarget},
		{"under load, nothing comes: the window ends it", time.Millisecond, 4, 3, 0, 3},
		{"gathering switched off", -1, 8, 2, 5, 2},
		{"a block's transactions go at once", long, 8, -2, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := gatherWorker(t, tc.window)
			w.natural = tc.natural
			if tc.have < 0 { // a block's chunk
				tc.have = -tc.have
				w.jobs = append(w.jobs, &job{sigs: make([][]byte, tc.have)})
			}
			for sigCount(w.jobs) < tc.have {
				w.jobs = append(w.jobs, oneSigJob()...)
			}
			for range tc.send {
				w.txq <- oneSigJob()
			}
			if got := w.gather(tc.have); got != tc.want || sigCount(w.jobs) != tc.want {
				t.Fatalf("gather(%d) = %d with %d signatures held, want %d", tc.have, got, sigCount(w.jobs), tc.want)
			}
			if left := len(w.txq); left != tc.send-(tc.want-tc.have) {
				t.Fatalf("%d submissions left queued, want %d", left, tc.send-(tc.want-tc.have))
			}
		})
	}
}

// A worker's sense of load follows its batches: a run of single
// transactions brings it back to idle.
func TestGatherLoadFollowsBatches(t *testing.T) {
	w := gatherWorker(t, -1) // count only
	for range 8 {
		w.gather(8)
	}
	if w.natural < 2 {
		t.Fatalf("after batches of 8: natural %.2f, want under load", w.natural)
	}
	for range 8 {
		w.gather(1)
	}
	if w.natural >= 2 {
		t.Fatalf("after single transactions: natural %.2f, want idle", w.natural)
	}
}

type testTimer struct{ t *time.Timer }

func newTestTimer(d time.Duration) Timer { return testTimer{time.NewTimer(d)} }

func (w testTimer) C() <-chan time.Time   { return w.t.C }
func (w testTimer) Reset(d time.Duration) { w.t.Reset(d) }
func (w testTimer) Stop()                 { w.t.Stop() }

// A pool given no timers never waits: the engine has no clock of its own.
func TestGatherNeedsATimer(t *testing.T) {
	w := gatherWorker(t, time.Hour)
	w.p.cfg.NewTimer = nil
	w.natural = 8
	w.jobs = oneSigJob()
	if got := w.gather(1); got != 1 {
		t.Fatalf("gather without a timer waited and took %d signatures", got)
	}
}
