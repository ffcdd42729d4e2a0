package bench

import (
	"math/rand/v2"
	"testing"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	ten := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"1..100 p50", hundred, 50, 50},
		{"1..100 p90", hundred, 90, 90},
		{"1..100 p99", hundred, 99, 99},
		{"1..100 p99.9", hundred, 99.9, 100},
		{"1..100 p100", hundred, 100, 100},
		{"1..10 p90 is the 9th value, not 9.1", ten, 90, 9},
		{"1..10 p95 rounds up to the 10th", ten, 95, 10},
		{"1..10 p50", ten, 50, 5},
		{"1..10 p10", ten, 10, 1},
		{"1..10 p11 is the 2nd", ten, 11, 2},
		{"p0 is the minimum", ten, 0, 1},
		{"one value", []float64{7}, 99, 7},
		{"empty", nil, 50, 0},
	} {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSummarizeKnownSample(t *testing.T) {
	// 1..1000 shuffled: Summarize must sort and then rank.
	v := make([]float64, 1000)
	for i := range v {
		v[i] = float64(i + 1)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(v), func(i, j int) { v[i], v[j] = v[j], v[i] })
	d := Summarize(v)
	want := Dist{N: 1000, Min: 1, Mean: 500.5, P50: 500, P90: 900, P95: 950, P99: 990, P999: 999, Max: 1000, Stdev: 288.675}
	if d != want {
		t.Fatalf("got %+v\nwant %+v", d, want)
	}
	if (Summarize(nil) != Dist{}) {
		t.Fatal("an empty sample must summarize to zeros")
	}
}

func TestSteadyWindow(t *testing.T) {
	// Blocks every 1000 ms from t=1000; the load ran from 0 to 10,000.
	var bs []blockPoint
	for k := 1; k <= 12; k++ {
		bs = append(bs, blockPoint{tsMs: int64(1000 * k), txs: 100 * k})
	}
	w := steadyWindow(bs, 0, 10_000, 2500)
	// Blocks at 3000..10000 are in; the count starts after 3000's block.
	if w.Blocks != 7 || w.StartMs != 3000 || w.EndMs != 10_000 || w.Seconds != 7 {
		t.Fatalf("window %+v", w)
	}
	wantTxs := 0
	for k := 4; k <= 10; k++ {
		wantTxs += 100 * k
	}
	if w.Txs != wantTxs || w.TPS != round1(float64(wantTxs)/7) {
		t.Fatalf("txs %d tps %v, want %d %v", w.Txs, w.TPS, wantTxs, round1(float64(wantTxs)/7))
	}
	if w := steadyWindow(bs, 0, 3500, 2500); w.Note == "" || w.TPS != 0 {
		t.Fatalf("a window with one block must be refused with a note: %+v", w)
	}
}

func TestEvenness(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rates []float64
		skip  int
		want  Evenness
	}{
		{"too short", []float64{5, 5}, 1, Evenness{}},
		{"even", []float64{1, 100, 100, 100, 7}, 1, Evenness{Bins: 3, Mean: 100, Min: 100, Max: 100}},
		// A stall once a slot: bins of 50 among bins of 150 around a mean of 125.
		{"stall", []float64{150, 150, 150, 50, 150, 150, 150, 50, 3}, 0, Evenness{Bins: 8, Mean: 125, Min: 50, Max: 150, Spread: 0.6}},
		{"warm-up left out", []float64{0, 0, 80, 120, 100}, 2, Evenness{Bins: 2, Mean: 100, Min: 80, Max: 120, Spread: 0.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := evenness(tc.rates, tc.skip); got != tc.want {
				t.Fatalf("evenness(%v, %d) = %+v, want %+v", tc.rates, tc.skip, got, tc.want)
			}
		})
	}
}
