package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// SoakOptions configure a soak: a long run at a fixed rate, signed live,
// with the node's memory sampled throughout and judged flat or not.
type SoakOptions struct {
	Duration time.Duration
	// Rate is the offered rate; 0 takes RateFraction (default 0.5) of the
	// committed TPS of a closed-loop probe of ProbeTxs transactions
	// (default 60,000) run first on the same node.
	Rate         float64
	RateFraction float64
	ProbeTxs     int
	// SampleEvery is the memory sampling period (default 10 s).
	SampleEvery time.Duration
	// Concurrency and Batch shape the load (LoadSpec defaults).
	Concurrency, Batch int
	// Rule judges the RSS curve (default DefaultFlatRule).
	Rule *FlatRule
	// CSV, when set, receives soak.csv's lines as they are sampled, so a
	// soak stopped early still leaves its curve.
	CSV io.Writer
}

// soakKeptUp is the share of the offered rate the steady committed rate
// must reach: a node falling behind fills its mempool, and its memory
// then measures the backlog, not the node at that rate.
const soakKeptUp = 0.9

// SoakSample is one memory sample. The node's figures are the child
// process's (/proc and its /metrics); with an in-process node, this
// process's, which holds the bench too.
type SoakSample struct {
	Seconds     float64 // since the sampling started, just before the run
	NodeRSSMB   float64
	HeapInuseMB float64 // go_memstats_heap_inuse_bytes; -1 unknown
	HeapAllocMB float64 // go_memstats_heap_alloc_bytes; -1 unknown
	// HeapLiveMB is the heap the last GC found live (go_gc_heap_live_bytes):
	// unlike heap in use it does not swing with the GC's sawtooth, so it is
	// the curve a leak moves (-1 unknown).
	HeapLiveMB float64
	// GoSysMB is all the memory the Go runtime holds (go_memstats_sys_bytes)
	// and PebbleMB the engine's hand-allocated block cache and memtables
	// (ember_store_*): RSS is about their sum, so a growing RSS is told
	// apart (-1 unknown).
	GoSysMB      float64
	PebbleMB     float64
	NodeCPUS     float64 // node CPU since the sampling started
	BenchRSSMB   float64 // this process
	Load1        float64 // the machine's one-minute load average
	InBlocks     int64   // the run's transactions seen in blocks so far
	PendingInRun int64   // admitted, not yet seen in a block
}

// SoakReport is a soak's outcome.
type SoakReport struct {
	Pass bool `json:"pass"`
	// Rate offered; ProbeTPS and RateFraction when it came from a probe.
	Rate         float64 `json:"rate"`
	ProbeTPS     float64 `json:"probe_committed_tps,omitempty"`
	RateFraction float64 `json:"rate_fraction,omitempty"`
	Duration     string  `json:"duration"`
	SampleEvery  string  `json:"sample_every"`
	Errors       int     `json:"errors"`
	// KeptUp: the run's steady committed rate reached soakKeptUp of the
	// offered rate.
	KeptUp   bool         `json:"kept_up"`
	RSS      FlatVerdict  `json:"rss"`
	Heap     *FlatVerdict `json:"heap_inuse,omitempty"` // for the record; the verdict is RSS's
	HeapLive *FlatVerdict `json:"heap_live,omitempty"`  // for the record: a leak moves it
	Rule     FlatRule     `json:"rule"`
	NodeRSS  [2]float64   `json:"node_rss_first_last_mb"`
	BenchRSS [2]float64   `json:"bench_rss_first_last_mb"`
	Samples  []SoakSample `json:"-"`
	Run      *Report      `json:"run"`
	Probe    *Report      `json:"probe,omitempty"`
}

// validate refuses options no soak can run with, before any node is
// loaded.
func (o *SoakOptions) validate() error {
	switch {
	case o.Duration <= 0:
		return errors.New("bench: a soak needs a duration")
	case o.Rate < 0:
		return fmt.Errorf("bench: soak rate %v: it must be 0 (from a probe) or positive", o.Rate)
	case o.RateFraction < 0 || o.RateFraction > 1:
		return fmt.Errorf("bench: soak rate fraction %v: it must be above 0 and at most 1 (0: the default, 0.5)", o.RateFraction)
	case o.ProbeTxs < 0:
		return fmt.Errorf("bench: soak probe of %d transactions: it must be 0 (the default) or positive", o.ProbeTxs)
	case o.SampleEvery < 0:
		return fmt.Errorf("bench: soak sample interval %v: it must be 0 (the default, 10s) or positive", o.SampleEvery)
	}
	return nil
}

// Soak runs a soak on s: the probe when no rate is given, then the rated
// run, signed live, while a sampler records memory every SampleEvery.
// Pass is zero errors and a flat RSS curve.
func (s *Session) Soak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.RateFraction == 0 {
		o.RateFraction = 0.5
	}
	if o.ProbeTxs == 0 {
		o.ProbeTxs = 60_000
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = 10 * time.Second
	}
	rule := DefaultFlatRule
	if o.Rule != nil {
		rule = *o.Rule
	}
	sr := &SoakReport{Rate: o.Rate, Duration: o.Duration.String(), SampleEvery: o.SampleEvery.String(), Rule: rule}
	if o.Rate == 0 {
		probe, err := s.Run(ctx, LoadSpec{Txs: o.ProbeTxs, Concurrency: o.Concurrency, Batch: o.Batch}, "probe")
		if err != nil {
			return nil, err
		}
		if probe.CommittedTPS <= 0 {
			return nil, errors.New("bench: the probe committed nothing")
		}
		sr.Probe, sr.ProbeTPS, sr.RateFraction = probe, probe.CommittedTPS, o.RateFraction
		sr.Rate = float64(int(o.RateFraction * probe.CommittedTPS))
	}
	spec := LoadSpec{Rate: sr.Rate, Duration: o.Duration, Concurrency: o.Concurrency, Batch: o.Batch, SignLive: true}
	smp := &soakSampler{s: s, every: o.SampleEvery, csv: o.CSV}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		smp.run(sctx)
	}()
	s.onRun = smp.attach
	r, err := s.Run(ctx, spec, "soak")
	s.onRun = nil
	stop()
	<-done
	if err != nil {
		return nil, err
	}
	sr.Run, sr.Errors, sr.Samples = r, r.Errors, smp.samples
	ts, rss := make([]float64, len(sr.Samples)), make([]float64, len(sr.Samples))
	heap, live := make([]float64, 0, len(sr.Samples)), make([]float64, 0, len(sr.Samples))
	for k, x := range sr.Samples {
		ts[k], rss[k] = x.Seconds, x.NodeRSSMB
		if x.HeapInuseMB >= 0 {
			heap = append(heap, x.HeapInuseMB)
		}
		if x.HeapLiveMB >= 0 {
			live = append(live, x.HeapLiveMB)
		}
	}
	sr.RSS = rule.JudgeFlat(ts, rss)
	if len(heap) == len(ts) {
		h := rule.JudgeFlat(ts, heap)
		sr.Heap = &h
	}
	if len(live) == len(ts) {
		h := rule.JudgeFlat(ts, live)
		sr.HeapLive = &h
	}
	if n := len(sr.Samples); n > 0 {
		sr.NodeRSS = [2]float64{sr.Samples[0].NodeRSSMB, sr.Samples[n-1].NodeRSSMB}
		sr.BenchRSS = [2]float64{sr.Samples[0].BenchRSSMB, sr.Samples[n-1].BenchRSSMB}
	}
	sr.KeptUp = r.WindowSteady.Note == "" && r.SteadyTPS >= soakKeptUp*sr.Rate
	sr.Pass = sr.Errors == 0 && sr.RSS.Flat && sr.KeptUp
	return sr, nil
}

// soakSampler records memory samples while a run goes on.
type soakSampler struct {
	s     *Session
	every time.Duration
	csv   io.Writer // nil: none

	mu      sync.Mutex
	sub     *submitter
	fol     *follower
	samples []SoakSample
}

// attach lets the sampler count the run's transactions (Session.onRun).
func (m *soakSampler) attach(sub *submitter, fol *follower) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sub, m.fol = sub, fol
}

func (m *soakSampler) run(ctx context.Context) {
	start := time.Now()
	cpu0 := -1.0
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		x := m.sample()
		x.Seconds = round3(time.Since(start).Seconds())
		if cpu0 < 0 {
			cpu0 = x.NodeCPUS
		}
		x.NodeCPUS = round3(x.NodeCPUS - cpu0)
		m.mu.Lock()
		m.samples = append(m.samples, x)
		m.mu.Unlock()
		if m.csv != nil {
			if len(m.samples) == 1 {
				fmt.Fprintln(m.csv, soakCSVHeader)
			}
			writeSoakSample(m.csv, x)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample reads the node's memory now.
func (m *soakSampler) sample() SoakSample {
	x := SoakSample{HeapInuseMB: -1, HeapAllocMB: -1, HeapLiveMB: -1, GoSysMB: -1, PebbleMB: -1}
	self, _ := readProc("self")
	x.BenchRSSMB = self.RSSMB
	x.Load1 = load1()
	var t *target
	if len(m.s.tgts) > 0 {
		t = m.s.tgts[0]
	}
	if st, ok := t.statsIfChild(); ok {
		x.NodeRSSMB, x.NodeCPUS = st.RSSMB, st.CPUSeconds
		if t.admin() != "" {
			g, err := scrapeMetricsWhere(t.admin()+"/metrics", func(name string) bool {
				return strings.HasPrefix(name, "go_memstats_heap_") || name == "go_memstats_sys_bytes" || name == "go_gc_heap_live_bytes" ||
					name == "ember_store_block_cache_bytes" || name == "ember_store_memtable_bytes"
			})
			if err == nil {
				x.HeapInuseMB = megabytesOf(g, "go_memstats_heap_inuse_bytes")
				x.HeapAllocMB = megabytesOf(g, "go_memstats_heap_alloc_bytes")
				x.HeapLiveMB = megabytesOf(g, "go_gc_heap_live_bytes")
				x.GoSysMB = megabytesOf(g, "go_memstats_sys_bytes")
				x.PebbleMB = megabytesOf(g, "ember_store_block_cache_bytes", `ember_store_memtable_bytes{state="live"}`, `ember_store_memtable_bytes{state="zombie"}`)
			}
		}
	} else {
		// The node runs in this process (or elsewhere): this process's
		// figures are the closest there are.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		x.NodeRSSMB, x.NodeCPUS = self.RSSMB, self.CPUSeconds
		x.HeapInuseMB, x.HeapAllocMB = round1(float64(ms.HeapInuse)/(1<<20)), round1(float64(ms.HeapAlloc)/(1<<20))
		x.GoSysMB = round1(float64(ms.Sys) / (1 << 20))
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		if metrics.Read(live); live[0].Value.Kind() == metrics.KindUint64 {
			x.HeapLiveMB = round1(float64(live[0].Value.Uint64()) / (1 << 20))
		}
	}
	m.mu.Lock()
	if m.fol != nil {
		x.InBlocks = m.fol.included.Load()
		x.PendingInRun = max(0, m.sub.acked.Load()-x.InBlocks)
	}
	m.mu.Unlock()
	return x
}

// megabytesOf sums the named series of a scrape in MB; -1 when one is
// missing.
func megabytesOf(g map[string]float64, series ...string) float64 {
	sum := 0.0
	for _, name := range series {
		v, ok := g[name]
		if !ok {
			return -1
		}
		sum += v
	}
	return round1(sum / (1 << 20))
}

// statsIfChild is stats for a possibly nil target.
func (t *target) statsIfChild() (procStats, bool) {
	if t == nil {
		return procStats{}, false
	}
	return t.stats()
}

// load1 is the machine's one-minute load average (0 when unknown).
func load1() float64 {
	f := strings.Fields(loadAverage())
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// soakCSVHeader names the columns of soak.csv.
const soakCSVHeader = "seconds,node_rss_mb,heap_inuse_mb,heap_alloc_mb,heap_live_mb,go_sys_mb,pebble_mb,node_cpu_s,bench_rss_mb,load1,in_blocks,admitted_not_in_block"

// WriteCSV writes the memory samples, one line per sample (-1: unknown).
func (r *SoakReport) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, soakCSVHeader)
	for _, x := range r.Samples {
		writeSoakSample(bw, x)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func writeSoakSample(w io.Writer, x SoakSample) {
	fmt.Fprintf(w, "%.3f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.3f,%.1f,%.2f,%d,%d\n",
		x.Seconds, x.NodeRSSMB, x.HeapInuseMB, x.HeapAllocMB, x.HeapLiveMB, x.GoSysMB, x.PebbleMB, x.NodeCPUS, x.BenchRSSMB, x.Load1, x.InBlocks, x.PendingInRun)
}

// WriteChart draws the memory curves over the run as a PNG.
func (r *SoakReport) WriteChart(path string) error {
	p := plot.New()
	verdict := "flat"
	if !r.RSS.Flat {
		verdict = "NOT flat"
	}
	p.Title.Text = fmt.Sprintf("soak at %.0f tx/s for %s: node RSS %s (%s); %d errors", r.Rate, r.Duration, verdict, r.RSS.Reason, r.Errors)
	p.X.Label.Text = "minutes since the start"
	p.Y.Label.Text = "MB"
	p.Add(plotter.NewGrid())
	var xs, rss, heap, alloc, live, gosys, pebble, bench []float64
	for _, x := range r.Samples {
		xs = append(xs, x.Seconds/60)
		rss, bench = append(rss, x.NodeRSSMB), append(bench, x.BenchRSSMB)
		heap, alloc = append(heap, x.HeapInuseMB), append(alloc, x.HeapAllocMB)
		gosys, pebble = append(gosys, x.GoSysMB), append(pebble, x.PebbleMB)
		live = append(live, x.HeapLiveMB)
	}
	for _, c := range []struct {
		name string
		y    []float64
		col  color.Color
	}{
		{"node RSS", rss, colorCommit},
		{"node Go heap in use", heap, colorSubmit},
		{"node Go heap allocated", alloc, colorBlock},
		{"node Go heap live at the last GC", live, colorLive},
		{"node Go runtime (sys)", gosys, colorGoSys},
		{"node Pebble cache + memtables", pebble, colorPebble},
		{"bench RSS", bench, colorBench},
	} {
		if len(c.y) > 0 && c.y[0] < 0 {
			continue // unknown
		}
		if err := addLine(p, c.name, xs, c.y, c.col, false); err != nil {
			return err
		}
	}
	if n := len(xs); n > 1 {
		// The judged half.
		mid := xs[0] + (xs[n-1]-xs[0])/2
		l, err := plotter.NewLine(plotter.XYs{{X: mid, Y: 0}, {X: mid, Y: max(maxOf(rss), 1)}})
		if err == nil {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
			p.Add(l)
			p.Legend.Add("judged from here", l)
		}
	}
	p.Legend.Top, p.Legend.Left = false, true
	p.X.Min, p.Y.Min = 0, 0
	if err := p.Save(10*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: soak chart: %w", err)
	}
	return nil
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// WriteSoakOutputs writes the soak into dir: soak.json, soak.csv, soak.png
// and soak.txt, and the run's own outputs under run/ (and the probe's
// under probe/).
func (s *Session) WriteSoakOutputs(dir string, r *SoakReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := WriteJSON(filepath.Join(dir, "soak.json"), r); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "soak.csv"), func(f *os.File) error { return r.WriteCSV(f) }); err != nil {
		return err
	}
	if err := r.WriteChart(filepath.Join(dir, "soak.png")); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "soak.txt"), func(f *os.File) error { r.Table(f); return nil }); err != nil {
		return err
	}
	if r.Probe != nil {
		if err := s.WriteOutputs(filepath.Join(dir, "probe"), r.Probe); err != nil {
			return err
		}
	}
	return s.WriteOutputs(filepath.Join(dir, "run"), r.Run)
}

// Table writes the soak's outcome for a terminal.
func (r *SoakReport) Table(w io.Writer) {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\nsoak  %s: %s at %.0f tx/s, memory sampled every %s\n", verdict, r.Duration, r.Rate, r.SampleEvery)
	row := func(k, v string) { fmt.Fprintf(w, "  %-28s %s\n", k, v) }
	if r.Probe != nil {
		row("rate", fmt.Sprintf("%.2f × the probe's committed %.0f tx/s (closed loop, %d tx)", r.RateFraction, r.ProbeTPS, r.Probe.Txs))
	}
	run := r.Run
	row("transactions", fmt.Sprintf("%d sent, %d in blocks, %d errors", run.Txs, run.Included, r.Errors))
	kept := "kept up"
	if !r.KeptUp {
		kept = fmt.Sprintf("did NOT keep up: steady below %.0f%% of the rate", 100*soakKeptUp)
	}
	row("committed TPS", fmt.Sprintf("%.0f (steady %.0f: %s)", run.CommittedTPS, run.SteadyTPS, kept))
	row("inclusion latency", fmt.Sprintf("p50 %.0f  p99 %.0f  max %.0f ms (a sample of %d of %d)", run.P50Ms, run.P99Ms, run.MaxMs, min(run.Latency.Inclusion.N, liveSampleSize), run.Latency.Inclusion.N))
	row("node RSS", fmt.Sprintf("%.0f MB → %.0f MB (peak %.0f MB): %s", r.NodeRSS[0], r.NodeRSS[1], run.NodeRSSMB, r.RSS.Reason))
	if r.Heap != nil {
		row("node Go heap in use", r.Heap.Reason)
	}
	row("bench RSS", fmt.Sprintf("%.0f MB → %.0f MB", r.BenchRSS[0], r.BenchRSS[1]))
	row("CPU", fmt.Sprintf("node %.1f s (%.0f%% of one core), bench %.1f s (%.0f%%; signing %.1f s)",
		run.NodeCPUSeconds, run.Node.CPUPercent, run.Node.BenchCPUS, run.Node.BenchCPUPercent, run.Load.SignBusyS))
	row("load average", run.Machine.LoadBefore+" → "+run.Machine.LoadAfter)
}
