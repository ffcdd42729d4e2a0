package bench

import (
	"fmt"
	"math"
)

// FlatRule judges whether a memory curve is flat: no leak, no late jump.
//
// The first half of the curve is left out: caches, the mempool, the
// allocator and the Go heap's target reach their working size there, and
// growth while warming up is not a leak. Over the second half (the judged
// window):
//
//   - slope: a least-squares line through the samples. The curve fails
//     when that line grows by more than MaxGrowthPerHour of the window's
//     mean per hour AND its rise across the window is more than the noise
//     floor, max(NoiseMB, NoiseFraction × mean). The first condition is
//     the leak; the second keeps a short run (whose slope, extrapolated to
//     an hour, is mostly garbage-collector sawtooth) from failing on a few
//     megabytes. For a one-hour run, 5%/h over the half hour judged is a
//     2.5% rise, so the two meet near 5%/h for a node of 300 MB.
//   - late jump: the largest sample of the last quarter must be at most
//     MaxLateRatio × the largest of the second quarter. A step the slope
//     dilutes (a cache that doubles once, late) fails here.
//
// Both are relative to the curve itself, so the rule holds for a node of
// any size; the samples' spacing does not matter beyond MinSamples.
type FlatRule struct {
	MaxGrowthPerHour float64 // fraction of the mean per hour
	NoiseMB          float64
	NoiseFraction    float64
	MaxLateRatio     float64
	MinSamples       int // over the whole curve; at least 4 fall in the judged half
}

// DefaultFlatRule is the soak's rule: under 5% growth an hour over the
// second half, beyond a noise floor of max(8 MB, 2%), and no late jump
// above 10%.
var DefaultFlatRule = FlatRule{MaxGrowthPerHour: 0.05, NoiseMB: 8, NoiseFraction: 0.02, MaxLateRatio: 1.10, MinSamples: 8}

// FlatVerdict is a curve judged by a FlatRule.
type FlatVerdict struct {
	Flat   bool   `json:"flat"`
	Reason string `json:"reason"`
	// The judged window (the second half), in seconds since the first
	// sample, and its samples.
	FromS   float64 `json:"from_s"`
	ToS     float64 `json:"to_s"`
	Samples int     `json:"samples"`
	MeanMB  float64 `json:"mean_mb"`
	// SlopeMBPerHour is the fitted line's slope; GrowthPerHour the same
	// as a fraction of MeanMB; RiseMB the line's rise across the window;
	// NoiseFloorMB the rise a run may show without failing.
	SlopeMBPerHour float64 `json:"slope_mb_per_hour"`
	GrowthPerHour  float64 `json:"growth_per_hour"`
	RiseMB         float64 `json:"rise_mb"`
	NoiseFloorMB   float64 `json:"noise_floor_mb"`
	// The largest sample of the second and of the last quarter, and their
	// ratio.
	Q2MaxMB   float64 `json:"q2_max_mb"`
	Q4MaxMB   float64 `json:"q4_max_mb"`
	LateRatio float64 `json:"late_ratio"`
}

// JudgeFlat judges the curve mb sampled at seconds ts (ascending).
func (rule FlatRule) JudgeFlat(ts, mb []float64) FlatVerdict {
	var v FlatVerdict
	if len(ts) != len(mb) {
		v.Reason = fmt.Sprintf("%d times for %d samples", len(ts), len(mb))
		return v
	}
	if len(ts) < max(rule.MinSamples, 2) {
		v.Reason = fmt.Sprintf("%d samples, fewer than the %d needed to judge", len(ts), max(rule.MinSamples, 2))
		return v
	}
	start, end := ts[0], ts[len(ts)-1]
	span := end - start
	at := func(f float64) float64 { return start + f*span }
	var xs, ys []float64
	for k, t := range ts {
		if t >= at(0.5) {
			xs, ys = append(xs, t-start), append(ys, mb[k])
		}
		switch {
		case t >= at(0.25) && t < at(0.5):
			v.Q2MaxMB = max(v.Q2MaxMB, mb[k])
		case t >= at(0.75):
			v.Q4MaxMB = max(v.Q4MaxMB, mb[k])
		}
	}
	v.Samples = len(xs)
	if len(xs) < 4 || v.Q2MaxMB == 0 {
		v.Reason = fmt.Sprintf("%d samples in the judged half, fewer than 4", len(xs))
		return v
	}
	v.FromS, v.ToS = xs[0], xs[len(xs)-1]
	slope, mean := fitSlope(xs, ys)
	v.MeanMB = round1(mean)
	v.SlopeMBPerHour = round1(slope * 3600)
	v.GrowthPerHour = round3(slope * 3600 / mean)
	v.RiseMB = round1(slope * (v.ToS - v.FromS))
	v.NoiseFloorMB = round1(max(rule.NoiseMB, rule.NoiseFraction*mean))
	v.LateRatio = round3(v.Q4MaxMB / v.Q2MaxMB)
	growing := v.GrowthPerHour > rule.MaxGrowthPerHour && v.RiseMB > v.NoiseFloorMB
	late := v.LateRatio > rule.MaxLateRatio
	switch {
	case growing:
		v.Reason = fmt.Sprintf("grows %.1f%%/h over the second half (%.1f MB across it; allowed %.0f%%/h or %.1f MB)",
			100*v.GrowthPerHour, v.RiseMB, 100*rule.MaxGrowthPerHour, v.NoiseFloorMB)
	case late:
		v.Reason = fmt.Sprintf("the last quarter peaks at %.1f MB, %.0f%% above the second quarter's %.1f MB (allowed %.0f%%)",
			v.Q4MaxMB, 100*(v.LateRatio-1), v.Q2MaxMB, 100*(rule.MaxLateRatio-1))
	default:
		v.Flat = true
		v.Reason = fmt.Sprintf("%+.1f%%/h over the second half (%+.1f MB across it), last quarter's peak %.2f× the second's",
			100*v.GrowthPerHour, v.RiseMB, v.LateRatio)
	}
	return v
}

// fitSlope is the least-squares slope of ys over xs, and ys's mean.
func fitSlope(xs, ys []float64) (slope, mean float64) {
	var mx, my float64
	for k := range xs {
		mx += xs[k]
		my += ys[k]
	}
	n := float64(len(xs))
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for k := range xs {
		sxy += (xs[k] - mx) * (ys[k] - my)
		sxx += (xs[k] - mx) * (xs[k] - mx)
	}
	if sxx == 0 || math.IsNaN(sxy) {
		return 0, my
	}
	return sxy / sxx, my
}
