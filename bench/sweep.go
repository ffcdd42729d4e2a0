package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"
)

// SweepOptions configure the sweep mode: rpc runs at rising offered rates
// on one node, to find the rate it sustains (CometBFT's QA method: find
// the saturation point first, then benchmark below it).
type SweepOptions struct {
	// Rates lists the offered rates (tx/s) in order; when empty they are
	// Start, Start×Factor, … up to Max.
	Rates              []float64
	Start, Factor, Max float64
	// Step is each rate's submission time (default 10 s).
	Step time.Duration
	// Concurrency and Batch are the load's shape at every step.
	Concurrency, Batch int
	// Past is how many steps to run after the first unsustained one
	// (default 0: stop there).
	Past int
	// Half runs a last step at half the saturation rate, where the
	// latency targets are judged.
	Half bool
	Criteria
}

// Criteria decide whether a step was sustained.
type Criteria struct {
	// MinRatio: committed TPS (steady window; full window when there is
	// no steady one) must reach this fraction of the offered rate
	// (default 0.9).
	MinRatio float64
	// MaxP99Intervals: p99 submit→inclusion must stay within this many
	// block intervals (default 3): above it a queue is growing.
	MaxP99Intervals float64
	// MaxErrorRate: errors over transactions (default 0.001).
	MaxErrorRate float64
}

// Defaults of SweepOptions.
const (
	DefaultSweepStart  = 2000
	DefaultSweepFactor = 1.5
	DefaultSweepMax    = 100_000
)

func (o *SweepOptions) ensureDefaults() {
	if o.Start == 0 {
		o.Start = DefaultSweepStart
	}
	if o.Factor == 0 {
		o.Factor = DefaultSweepFactor
	}
	if o.Max == 0 {
		o.Max = DefaultSweepMax
	}
	if o.Step == 0 {
		o.Step = 10 * time.Second
	}
	if o.MinRatio == 0 {
		o.MinRatio = 0.9
	}
	if o.MaxP99Intervals == 0 {
		o.MaxP99Intervals = 3
	}
	if o.MaxErrorRate == 0 {
		o.MaxErrorRate = 0.001
	}
}

func (o *SweepOptions) validate() error {
	for _, r := range o.Rates {
		if !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("bench: sweep rates must be positive numbers, got %v", r)
		}
	}
	switch {
	case len(o.Rates) == 0 && !(o.Start > 0 && o.Max >= o.Start):
		return fmt.Errorf("bench: the sweep needs 0 < --start ≤ --max (got %v, %v)", o.Start, o.Max)
	case len(o.Rates) == 0 && !(o.Factor > 1):
		return fmt.Errorf("bench: --factor must be above 1, got %v", o.Factor)
	case o.Step < time.Second:
		return fmt.Errorf("bench: --step must be at least 1s, got %v", o.Step)
	case o.Past < 0:
		return fmt.Errorf("bench: --past must not be negative")
	case o.MinRatio <= 0 || o.MinRatio > 1:
		return fmt.Errorf("bench: the minimum committed/offered ratio must be in (0, 1], got %v", o.MinRatio)
	}
	return nil
}

// rates returns the offered rates in order.
func (o *SweepOptions) rates() []float64 {
	if len(o.Rates) > 0 {
		return o.Rates
	}
	var out []float64
	for r := o.Start; r <= o.Max*(1+1e-9); r *= o.Factor {
		out = append(out, math.Round(r))
	}
	return out
}

// SweepMaxTxs is the largest step's transaction count: what the node's
// mempool must be able to hold.
func SweepMaxTxs(o SweepOptions) int {
	o.ensureDefaults()
	return o.maxTxs()
}

// maxTxs is the largest step's transaction count.
func (o *SweepOptions) maxTxs() int {
	m := 0.0
	for _, r := range o.rates() {
		m = max(m, r)
	}
	return int(m*o.Step.Seconds()) + 1
}

// Step is one rate of a sweep.
type Step struct {
	Rate      float64 `json:"rate"`
	TPS       float64 `json:"tps"` // the figure judged: steady, else full window
	Sustained bool    `json:"sustained"`
	Reason    string  `json:"reason,omitempty"` // why not
	Half      bool    `json:"half,omitempty"`   // the half-saturation step
	// Note flags a step whose load was not fully offered: the bench sent
	// behind schedule (median lag above one block interval), so the
	// step measured the machine (node and bench together), not only the
	// node.
	Note   string  `json:"note,omitempty"`
	Report *Report `json:"report"`
}

// judge decides whether a run at rate was sustained.
func (c Criteria) judge(rate float64, r *Report) (tps float64, ok bool, reason string) {
	tps = r.SteadyTPS
	if r.WindowSteady.Note != "" || tps == 0 {
		tps = r.CommittedTPS
	}
	switch {
	case tps < c.MinRatio*rate:
		return tps, false, fmt.Sprintf("committed %.0f tx/s is below %.0f%% of the offered %.0f", tps, 100*c.MinRatio, rate)
	case r.Txs > 0 && float64(r.Errors)/float64(r.Txs) > c.MaxErrorRate:
		return tps, false, fmt.Sprintf("%d of %d transactions failed", r.Errors, r.Txs)
	case r.P99Intervals > c.MaxP99Intervals:
		return tps, false, fmt.Sprintf("p99 inclusion %.0f ms is %.1f block intervals (limit %.1f)", r.P99Ms, r.P99Intervals, c.MaxP99Intervals)
	}
	return tps, true, ""
}

// sweepState is the sweep's step logic, apart from running anything.
type sweepState struct {
	o     SweepOptions
	rates []float64
	steps []Step
	// after counts steps run since the first unsustained one.
	failedAt int
}

func newSweepState(o SweepOptions) *sweepState {
	return &sweepState{o: o, rates: o.rates(), failedAt: -1}
}

// next returns the next rate to offer and whether it is the half step;
// ok is false when the sweep is over.
func (s *sweepState) next() (rate float64, half, ok bool) {
	n := len(s.steps)
	done := n >= len(s.rates) || (s.failedAt >= 0 && n-s.failedAt > s.o.Past)
	if !done {
		return s.rates[n], false, true
	}
	if s.o.Half && (n == 0 || !s.steps[n-1].Half) {
		sat, _ := s.saturation()
		if sat == 0 && n > 0 {
			sat = s.steps[0].Rate // nothing sustained: half the lowest offered
		}
		if sat > 0 {
			return math.Round(sat / 2), true, true
		}
	}
	return 0, false, false
}

// record adds a finished step.
func (s *sweepState) record(rate float64, half bool, r *Report) Step {
	tps, ok, why := s.o.Criteria.judge(rate, r)
	st := Step{Rate: rate, TPS: tps, Sustained: ok, Reason: why, Half: half, Report: r}
	if lag := r.Latency.SchedLag.P50; r.BlockIntervalMs > 0 && lag > float64(r.BlockIntervalMs) {
		st.Note = fmt.Sprintf("the bench sent behind schedule (lag p50 %.0f ms; node CPU %.0f%%, bench CPU %.1f s): the offered rate was not fully offered", lag, r.Node.CPUPercent, r.Node.BenchCPUS)
	}
	if !ok && !half && s.failedAt < 0 {
		s.failedAt = len(s.steps)
	}
	s.steps = append(s.steps, st)
	return st
}

// saturation is the highest offered rate that was sustained (0: none),
// and the highest committed TPS any step reached.
func (s *sweepState) saturation() (rate, bestTPS float64) {
	for _, st := range s.steps {
		if st.Sustained && !st.Half {
			rate = max(rate, st.Rate)
		}
		bestTPS = max(bestTPS, st.TPS)
	}
	return rate, bestTPS
}

// SweepResult is the sweep mode's report.
type SweepResult struct {
	Steps []Step `json:"steps"`
	// SaturationRate is the highest offered rate sustained.
	SaturationRate float64 `json:"saturation_rate"`
	// BestTPS is the highest committed TPS of any step.
	BestTPS  float64  `json:"best_tps"`
	Criteria Criteria `json:"criteria"`
}

// RunSweep runs the sweep on one session. each, when set, is called after
// every step (to print or save it).
func RunSweep(ctx context.Context, s *Session, o SweepOptions, each func(Step) error) (*SweepResult, error) {
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	st := newSweepState(o)
	for {
		rate, half, ok := st.next()
		if !ok {
			break
		}
		label := fmt.Sprintf("step %d: %.0f tx/s", len(st.steps)+1, rate)
		if half {
			label = fmt.Sprintf("half saturation: %.0f tx/s", rate)
		}
		r, err := s.Run(ctx, LoadSpec{Rate: rate, Duration: o.Step, Concurrency: o.Concurrency, Batch: o.Batch}, label)
		if err != nil {
			return nil, err
		}
		step := st.record(rate, half, r)
		if each != nil {
			if err := each(step); err != nil {
				return nil, err
			}
		}
	}
	res := &SweepResult{Steps: st.steps, Criteria: o.Criteria}
	res.SaturationRate, res.BestTPS = st.saturation()
	return res, nil
}

// Table writes the sweep's steps.
func (r *SweepResult) Table(w io.Writer) {
	if len(r.Steps) > 0 {
		fmt.Fprintf(w, "\nworkload: %s\n", r.Steps[0].Report.Workload)
	}
	fmt.Fprintf(w, "\n%-10s %10s %10s %10s %9s %8s %7s  %s\n", "offered", "committed", "submit", "p50 ms", "p99 ms", "p99/int", "errors", "verdict")
	for _, st := range r.Steps {
		rp := st.Report
		v := "sustained"
		if !st.Sustained {
			v = "NOT sustained: " + st.Reason
		}
		if st.Half {
			v = "(half saturation) " + v
		}
		if st.Note != "" {
			v += "; " + st.Note
		}
		fmt.Fprintf(w, "%-10.0f %10.0f %10.0f %10.1f %9.1f %8.2f %7d  %s\n", st.Rate, st.TPS, rp.SubmitTPS, rp.P50Ms, rp.P99Ms, rp.P99Intervals, rp.Errors, v)
	}
	fmt.Fprintf(w, "saturation: %.0f tx/s offered and sustained; best committed %.0f tx/s\n", r.SaturationRate, r.BestTPS)
}
