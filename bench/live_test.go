package bench

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
)

// TestRunLiveInProcess signs while sending, with a buffer far smaller than
// the run so the signers must keep refilling it, rated and closed loop, on
// one session: every transaction must reach a block, accounts' nonces must
// carry on from run to run, and the outputs must be written without
// per-transaction samples.
func TestRunLiveInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startTestSession(ctx, t, Options{
		Scheme: keys.SchemeEd25519, Accounts: 30, BlockInterval: 100 * time.Millisecond, Poll: 5 * time.Millisecond,
		CeilingTime: -1, MaxTxs: 200, MaxBatch: 5,
	})
	for _, spec := range []LoadSpec{
		{Rate: 2000, Duration: 500 * time.Millisecond, Concurrency: 3, Batch: 5, SignLive: true, SignAhead: 100},
		{Txs: 700, Concurrency: 3, Batch: 4, SignLive: true, SignAhead: 64},
		// A pre-signed run after live ones continues their nonces.
		{Txs: 90, Concurrency: 3, Batch: 3},
	} {
		r, err := s.Run(ctx, spec, "live")
		if err != nil {
			t.Fatal(err)
		}
		want := spec.Txs
		if want == 0 {
			want = int(spec.Rate * spec.Duration.Seconds())
		}
		if r.Txs != want || r.Included != want || r.Acked != want || r.Errors != 0 {
			t.Fatalf("%+v: txs %d, included %d, admitted %d, errors %d (%v); want all %d in blocks", spec, r.Txs, r.Included, r.Acked, r.Errors, r.ErrorTexts, want)
		}
		if r.Latency.Inclusion.N != want || r.Latency.Ack.N != want || r.CommittedTPS <= 0 || r.Load.SignLive != spec.SignLive {
			t.Fatalf("%+v: report %+v", spec, r)
		}
		if spec.Rate > 0 && (r.Latency.SchedLag.N != want || r.Latency.InclusionFromDue.N != want) {
			t.Fatalf("rated: lag %+v, from due %+v", r.Latency.SchedLag, r.Latency.InclusionFromDue)
		}
		if !spec.SignLive {
			continue
		}
		if r.Load.SignBusyS <= 0 || r.Load.SignAhead != spec.SignAhead {
			t.Fatalf("signing: %+v", r.Load)
		}
		dir := t.TempDir()
		if err := s.WriteOutputs(dir, r); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"report.json", "blocks.csv", "chart.png", "summary.txt"} {
			if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "samples.csv")); err == nil {
			t.Error("a live run wrote per-transaction samples it does not keep")
		}
	}
}

// startTestSession starts a session on an in-process node in a temporary
// directory, closed when the test ends; o gives the rest.
func startTestSession(ctx context.Context, t *testing.T, o Options) *Session {
	t.Helper()
	o.Node = NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}
	s, err := NewSession(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// TestReservoir: below its size the sample is the stream; above, the
// percentiles of a uniform stream come out of the sample close to the
// stream's, and count, extremes and mean stay exact.
func TestReservoir(t *testing.T) {
	r := newReservoir(1000, 1)
	for v := range 500 {
		r.add(float64(v))
	}
	if d := r.dist(); d.N != 500 || d.P50 != 249 || d.Max != 499 || d.Min != 0 {
		t.Fatalf("small stream: %+v", d)
	}
	r = newReservoir(1000, 2)
	const n = 200_000
	for v := range n {
		r.add(float64(v))
	}
	d := r.dist()
	if d.N != n || d.Min != 0 || d.Max != n-1 || d.Mean != (n-1)/2.0 || len(r.sample) != 1000 {
		t.Fatalf("exact figures: %+v, sample %d", d, len(r.sample))
	}
	// 1000 draws: the median's rank is within ±3 standard errors (1.6%
	// of the stream) of the true one with overwhelming probability.
	if math.Abs(d.P50-n/2) > 0.05*n || math.Abs(d.P90-0.9*n) > 0.05*n {
		t.Fatalf("percentiles of a uniform stream: p50 %v, p90 %v", d.P50, d.P90)
	}
}

// liveQueueLen gives every worker's queue room for its share of the
// transactions waitFilled waits for: the shares differ when the accounts
// are not a multiple of the workers.
func TestLiveQueueLen(t *testing.T) {
	tests := []struct {
		filled, accounts, workers, batch int
		want                             int
	}{
		{29_274, 1_000, 32, 20, 937 + 20}, // the soak that waited for good: queues 0-7 hold 32 accounts, the rest 31
		{40, 10, 4, 0, 12},                // accounts 0, 4, 8 in queue 0
		{64, 32, 32, 0, 2},                // one account per queue
		{100, 1, 3, 5, 105},               // one account: one queue takes all
		{5, 1_000, 32, 2, 1 + 2},          // fewer transactions than accounts
		{0, 10, 4, 3, 3},
	}
	for _, tc := range tests {
		// What signLoop does: transaction i to queue (i mod accounts) mod workers.
		share := make([]int, tc.workers)
		for i := 0; i < tc.filled; i++ {
			share[(i%tc.accounts)%tc.workers]++
		}
		most := 0
		for _, n := range share {
			most = max(most, n)
		}
		if most+tc.batch != tc.want {
			t.Fatalf("%+v: the table says %d, counting gives %d", tc, tc.want, most+tc.batch)
		}
		if got := liveQueueLen(tc.filled, tc.accounts, tc.workers, tc.batch); got != tc.want {
			t.Errorf("liveQueueLen(%d, %d, %d, %d) = %d, want %d", tc.filled, tc.accounts, tc.workers, tc.batch, got, tc.want)
		}
	}
}

// The signers fill the queues up to what waitFilled waits for before any
// worker takes from them, with accounts spread unevenly over the workers.
// With queues of filled/workers + batch this waited for good.
func TestLiveBookFillsUnevenQueues(t *testing.T) {
	const accounts, workers, filled = 10, 4, 40
	ks := make([]keys.Signer, accounts)
	for i := range ks {
		ks[i] = keys.Ed25519FromSeed(seedOf(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := newLiveBook(workers, liveQueueLen(filled, accounts, workers, 0), 0)
	sg := liveSigning{keys: ks, next: make([]uint64, accounts), n: 100, ci: chainInfo{chainID: koinos.Digest{1}.Multihash(), token: ks[0].Address()}, ahead: filled, signers: 2}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go b.signLoop(sctx, sg)
	if err := b.waitFilled(ctx, filled); err != nil {
		t.Fatalf("waiting for %d signed transactions (%d queued): %v", filled, b.dispatched.Load(), err)
	}
}

func seedOf(i int) []byte {
	s := make([]byte, 32)
	s[0], s[1] = 'b', byte(i)
	return s
}
