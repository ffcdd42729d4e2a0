package bench

import (
	"math"
	"slices"
	"time"
)

// Dist summarizes a latency sample in milliseconds. Percentiles use the
// nearest-rank method: the p-th percentile of n sorted values is the
// ceil(p/100 × n)-th smallest (1-based), so every reported figure is a
// value that was actually observed, and p100 is the maximum. Interpolating
// methods report latencies no transaction had; HDR-style histograms round.
// Neither is worth it at a few million samples.
type Dist struct {
	N     int     `json:"n"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Stdev float64 `json:"stdev_ms"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, which must be in ascending order; 0 for an empty sample. p ≤ 0
// returns the minimum.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	// The small epsilon keeps p/100×n that is an integer in exact
	// arithmetic (e.g. 0.9 × 10) from rounding up to the next rank in
	// floating point.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Summarize sorts ms in place and summarizes it.
func Summarize(ms []float64) Dist {
	if len(ms) == 0 {
		return Dist{}
	}
	slices.Sort(ms)
	var sum float64
	for _, v := range ms {
		sum += v
	}
	mean := sum / float64(len(ms))
	var sq float64
	for _, v := range ms {
		sq += (v - mean) * (v - mean)
	}
	return Dist{
		N: len(ms), Min: ms[0], Mean: round3(mean),
		P50: Percentile(ms, 50), P90: Percentile(ms, 90), P95: Percentile(ms, 95),
		P99: Percentile(ms, 99), P999: Percentile(ms, 99.9), Max: ms[len(ms)-1],
		Stdev: round3(math.Sqrt(sq / float64(len(ms)))),
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// Window is a measured interval and the transactions counted in it.
type Window struct {
	// StartMs and EndMs are milliseconds since the first submission.
	StartMs float64 `json:"start_ms"`
	EndMs   float64 `json:"end_ms"`
	Seconds float64 `json:"seconds"`
	Txs     int     `json:"txs"`
	TPS     float64 `json:"tps"`
	Blocks  int     `json:"blocks"`
	// Note explains a window that could not be measured.
	Note string `json:"note,omitempty"`
}

// blockPoint is one block as the window computations need it.
type blockPoint struct {
	tsMs int64 // header timestamp, Unix ms
	txs  int   // bench transactions in it
}

// steadyWindow computes the steady-state rate from block timestamps: the
// blocks whose timestamps fall in [firstSubmit+warmup, lastSubmit] — made
// while the load was on, after the ramp-up — are b_j … b_k, and the rate is
// the transactions of b_{j+1} … b_k over ts_k − ts_j. Counting from the
// block after the first keeps the interval and the count exact: b_j's
// transactions arrived before ts_j. Block timestamps are slot times set by
// the producer, so this rate is free of the bench's polling jitter, and the
// drain after the last submission (a backlog emptying at whatever pace)
// is left out. blocks must be in height order; times are Unix ms.
func steadyWindow(blocks []blockPoint, firstSubmitMs, lastSubmitMs, warmupMs int64) Window {
	from, to := firstSubmitMs+warmupMs, lastSubmitMs
	j, k := -1, -1
	for i, b := range blocks {
		if b.tsMs < from || b.tsMs > to {
			continue
		}
		if j < 0 {
			j = i
		}
		k = i
	}
	w := Window{}
	if j < 0 || k <= j {
		w.Note = "fewer than two blocks between the warm-up and the last submission: run longer or shorten --warmup"
		return w
	}
	for i := j + 1; i <= k; i++ {
		w.Txs += blocks[i].txs
	}
	w.Blocks = k - j
	w.StartMs = float64(blocks[j].tsMs - firstSubmitMs)
	w.EndMs = float64(blocks[k].tsMs - firstSubmitMs)
	w.Seconds = (w.EndMs - w.StartMs) / 1000
	if w.Seconds > 0 {
		w.TPS = round1(float64(w.Txs) / w.Seconds)
	}
	return w
}

// rate is n events over d, per second; 0 when d is not positive.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return round1(float64(n) / d.Seconds())
}
