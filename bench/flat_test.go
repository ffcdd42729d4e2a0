package bench

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// curve samples f every step seconds over span seconds, with uniform noise
// of ±noise MB from a fixed seed.
func curve(span, step, noise float64, f func(t float64) float64) (ts, mb []float64) {
	rng := rand.New(rand.NewPCG(7, 7))
	for t := 0.0; t <= span; t += step {
		ts = append(ts, t)
		mb = append(mb, f(t)+noise*(2*rng.Float64()-1))
	}
	return ts, mb
}

// TestJudgeFlat feeds the soak's rule fabricated memory curves: the
// shapes a healthy node has must pass, leaks and late jumps must fail.
func TestJudgeFlat(t *testing.T) {
	const hour = 3600.0
	for _, c := range []struct {
		name       string
		span, step float64
		noise      float64
		f          func(t float64) float64
		flat       bool
		reason     string // part of the reason, when it must fail
	}{
		{"flat with noise", hour, 10, 3, func(float64) float64 { return 300 }, true, ""},
		{"warm-up in the first half, then flat", hour, 10, 2, func(t float64) float64 { return 300 - 100*math.Exp(-t/300) }, true, ""},
		{"garbage-collector sawtooth", hour, 10, 0, func(t float64) float64 { return 300 + 30*math.Mod(t, 170)/170 }, true, ""},
		{"short run, noisy", 30, 1, 2, func(float64) float64 { return 250 }, true, ""},
		{"slow decline", hour, 10, 2, func(t float64) float64 { return 320 - 20*t/hour }, true, ""},
		{"leak of 10% an hour", hour, 10, 3, func(t float64) float64 { return 300 * (1 + 0.10*t/hour) }, false, "grows"},
		{"leak after the warm-up", hour, 10, 2, func(t float64) float64 { return 300 + 40*max(0, t-hour/2)/(hour/2) }, false, "grows"},
		{"short run, runaway", 30, 1, 2, func(t float64) float64 { return 250 + 2*t }, false, "grows"},
		{"late spike", hour, 10, 1, func(t float64) float64 { return 300 + 45*b2f(t > 0.995*hour) }, false, "last quarter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts, mb := curve(c.span, c.step, c.noise, c.f)
			v := DefaultFlatRule.JudgeFlat(ts, mb)
			if v.Flat != c.flat || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("flat %v (%s), want %v: %+v", v.Flat, v.Reason, c.flat, v)
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// TestJudgeFlatNeedsSamples: too short a curve is not judged flat.
func TestJudgeFlatNeedsSamples(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		ts, mb := make([]float64, n), make([]float64, n)
		for k := range ts {
			ts[k], mb[k] = float64(k), 100
		}
		if v := DefaultFlatRule.JudgeFlat(ts, mb); v.Flat || !strings.Contains(v.Reason, "samples") {
			t.Errorf("%d samples: %+v", n, v)
		}
	}
	if v := DefaultFlatRule.JudgeFlat([]float64{1, 2}, []float64{1}); v.Flat {
		t.Errorf("mismatched lengths judged flat: %+v", v)
	}
}

// TestFitSlope: the least-squares slope of a line is its slope.
func TestFitSlope(t *testing.T) {
	slope, mean := fitSlope([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7})
	if slope != 2 || mean != 4 {
		t.Fatalf("slope %v, mean %v", slope, mean)
	}
	if slope, _ := fitSlope([]float64{5, 5}, []float64{1, 2}); slope != 0 {
		t.Fatalf("one abscissa: slope %v", slope)
	}
}
