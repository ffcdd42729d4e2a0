package bench

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// TestSoakInProcess runs Soak's machinery briefly on an in-process node:
// the probe, the rate taken from it, the live run, a sample per period
// streamed and kept, and every output. Its memory figures are this test
// process's (node, bench and earlier tests), so flatness is judged by the
// child-process soak of cmd/ember (TestBenchSoakShort), not here.
func TestSoakInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("a 4 s soak")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := startTestSession(ctx, t, Options{
		Scheme: keys.SchemeEd25519, Accounts: 40, BlockInterval: 200 * time.Millisecond, Poll: 10 * time.Millisecond,
		CeilingTime: -1, MaxTxs: 2000, MaxBatch: 5,
	})
	// No rate: a closed-loop probe first, as make soak does.
	var streamed strings.Builder
	r, err := s.Soak(ctx, SoakOptions{Duration: 4 * time.Second, RateFraction: 0.05, ProbeTxs: 400, SampleEvery: 250 * time.Millisecond, Concurrency: 4, Batch: 5, CSV: &streamed})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probe == nil || r.Rate <= 0 || r.Rate != float64(int(0.05*r.ProbeTPS)) {
		t.Fatalf("rate %v from probe %v", r.Rate, r.ProbeTPS)
	}
	if want := int(r.Rate * 4); r.Run.Txs != want || r.Run.Included != want || r.Errors != 0 || !r.Run.Load.SignLive {
		t.Fatalf("run: %d txs, %d included, %d errors (%v); want %d, all in blocks, signed live", r.Run.Txs, r.Run.Included, r.Errors, r.Run.ErrorTexts, want)
	}
	if len(r.Samples) < 16 || r.RSS.Samples < 4 || r.Heap == nil || r.Samples[0].NodeRSSMB <= 0 {
		t.Fatalf("%d samples, rss %+v, heap %+v", len(r.Samples), r.RSS, r.Heap)
	}
	if last := r.Samples[len(r.Samples)-1]; last.InBlocks == 0 {
		t.Fatalf("the sampler did not count the run's inclusions: %+v", last)
	}
	if r.Pass != (r.RSS.Flat && r.KeptUp && r.Errors == 0) {
		t.Fatalf("pass %v with flat %v, kept up %v, %d errors", r.Pass, r.RSS.Flat, r.KeptUp, r.Errors)
	}
	dir := t.TempDir()
	if err := s.WriteSoakOutputs(dir, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "soak.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(r.Samples)+1 || strings.Join(rows[0], ",") != soakCSVHeader {
		t.Fatalf("soak.csv: %d rows, header %v", len(rows), rows[0])
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "soak.csv")); string(b) != streamed.String() {
		t.Fatalf("the streamed CSV differs from the one written at the end:\n%s\n---\n%s", streamed.String(), b)
	}
	for _, name := range []string{"soak.json", "soak.png", "soak.txt", "run/report.json", "probe/report.json"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Options no soak can run with are refused before any node is loaded.
func TestSoakOptionsRefused(t *testing.T) {
	ok := SoakOptions{Duration: time.Minute}
	for _, tc := range []struct {
		name string
		mod  func(*SoakOptions)
		want string
	}{
		{"no duration", func(o *SoakOptions) { o.Duration = 0 }, "needs a duration"},
		{"negative rate", func(o *SoakOptions) { o.Rate = -1 }, "soak rate -1"},
		{"fraction above 1", func(o *SoakOptions) { o.RateFraction = 1.5 }, "rate fraction 1.5"},
		{"negative fraction", func(o *SoakOptions) { o.RateFraction = -0.1 }, "rate fraction -0.1"},
		{"negative probe", func(o *SoakOptions) { o.ProbeTxs = -5 }, "probe of -5"},
		{"negative sample interval", func(o *SoakOptions) { o.SampleEvery = -time.Second }, "sample interval -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			if err := o.validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := ok.validate(); err != nil {
		t.Fatalf("a duration alone: %v", err)
	}
}
