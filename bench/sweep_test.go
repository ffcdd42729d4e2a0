package bench

import (
	"testing"
	"time"
)

// fakeReport is a run that committed tps with p99 in intervals and
// errors.
func fakeReport(tps, p99Intervals float64, errors, txs int) *Report {
	return &Report{SteadyTPS: tps, CommittedTPS: tps, P99Intervals: p99Intervals, Errors: errors, Txs: txs}
}

func TestCriteriaJudge(t *testing.T) {
	c := Criteria{MinRatio: 0.9, MaxP99Intervals: 3, MaxErrorRate: 0.001}
	for _, tc := range []struct {
		name string
		r    *Report
		ok   bool
	}{
		{"keeps up", fakeReport(1000, 1.2, 0, 10_000), true},
		{"exactly 90%", fakeReport(900, 1.2, 0, 10_000), true},
		{"falls behind", fakeReport(899, 1.2, 0, 10_000), false},
		{"queue grows", fakeReport(1000, 3.5, 0, 10_000), false},
		{"errors", fakeReport(1000, 1.2, 11, 10_000), false},
		{"errors within the rate", fakeReport(1000, 1.2, 10, 10_000), true},
	} {
		if _, ok, why := c.judge(1000, tc.r); ok != tc.ok {
			t.Errorf("%s: sustained=%v (%s), want %v", tc.name, ok, why, tc.ok)
		}
	}
	// Without a steady window the full window is judged.
	r := fakeReport(0, 1, 0, 100)
	r.CommittedTPS, r.WindowSteady.Note = 950, "too short"
	if tps, ok, _ := c.judge(1000, r); !ok || tps != 950 {
		t.Errorf("fallback to the full window: tps %v ok %v", tps, ok)
	}
}

func TestSweepRates(t *testing.T) {
	o := SweepOptions{Start: 1000, Factor: 2, Max: 8000}
	o.ensureDefaults()
	got := o.rates()
	want := []float64{1000, 2000, 4000, 8000}
	if len(got) != len(want) {
		t.Fatalf("rates %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("rates %v, want %v", got, want)
		}
	}
	if n := SweepMaxTxs(SweepOptions{Start: 1000, Factor: 2, Max: 8000, Step: 10 * time.Second}); n != 80_001 {
		t.Fatalf("max txs %d", n)
	}
}

// drive runs the step logic with a node that sustains up to capacity.
func drive(o SweepOptions, capacity float64) (rates []float64, halves []bool, s *sweepState) {
	o.ensureDefaults()
	s = newSweepState(o)
	for i := 0; i < 20; i++ {
		rate, half, ok := s.next()
		if !ok {
			break
		}
		rates, halves = append(rates, rate), append(halves, half)
		s.record(rate, half, fakeReport(min(rate, capacity), 1, 0, 1000))
	}
	return rates, halves, s
}

func TestSweepStepLogic(t *testing.T) {
	base := SweepOptions{Rates: []float64{1000, 2000, 4000, 8000, 16000}}

	// Stops at the first step not sustained.
	rates, _, s := drive(base, 3000)
	if len(rates) != 3 || rates[2] != 4000 {
		t.Fatalf("ran %v, want 1000 2000 4000", rates)
	}
	if sat, best := s.saturation(); sat != 2000 || best != 3000 {
		t.Fatalf("saturation %v best %v, want 2000 3000", sat, best)
	}

	// Past runs more steps after it.
	o := base
	o.Past = 1
	if rates, _, _ := drive(o, 3000); len(rates) != 4 || rates[3] != 8000 {
		t.Fatalf("with past=1 ran %v", rates)
	}

	// Half adds a step at half the saturation rate, once.
	o = base
	o.Half = true
	rates, halves, s := drive(o, 3000)
	if len(rates) != 4 || rates[3] != 1000 || !halves[3] {
		t.Fatalf("with half ran %v %v, want a last half step at 1000", rates, halves)
	}
	if sat, _ := s.saturation(); sat != 2000 {
		t.Fatalf("the half step must not change the saturation rate: %v", sat)
	}

	// Nothing sustained: the half step is half the lowest rate.
	if rates, halves, _ := drive(o, 100); len(rates) != 2 || rates[1] != 500 || !halves[1] {
		t.Fatalf("nothing sustained: ran %v %v", rates, halves)
	}

	// Everything sustained: every rate, then half the highest.
	if rates, _, _ := drive(o, 1e9); len(rates) != 6 || rates[5] != 8000 {
		t.Fatalf("all sustained: ran %v", rates)
	}
}

func TestSweepValidate(t *testing.T) {
	for _, o := range []SweepOptions{
		{Rates: []float64{1000, -1}},
		{Start: 1000, Max: 500},
		{Start: 1000, Max: 5000, Factor: 1},
		{Start: 1000, Max: 5000, Step: time.Millisecond},
		{Start: 1000, Max: 5000, Past: -1},
	} {
		o.ensureDefaults()
		if err := o.validate(); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
