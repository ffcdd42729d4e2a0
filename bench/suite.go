package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// SuiteOptions configure the standard scenario (`make bench`): for each
// scheme, the signature ceiling, a closed-loop run that saturates a fresh
// node, a rated run at half the committed rate it reached, where latency
// is judged, and two wallet-shaped closed-loop runs (one transaction per
// request, as koilib sends them) from WalletConnections and from
// ManyConnections connections.
type SuiteOptions struct {
	Schemes []keys.Scheme // default ed25519, secp256k1
	// Txs is the closed-loop run's size per scheme (default
	// DefaultSuiteTxs), and Saturation caps its submission time (default
	// 12 s): whichever ends first.
	Txs        map[keys.Scheme]int
	Saturation time.Duration
	// Half is the half-rate run's submission time (default 8 s).
	Half time.Duration
	// Concurrency and Batch shape the batched runs (defaults as
	// LoadSpec).
	Concurrency, Batch int
	// NoWallet leaves out the wallet-shaped runs.
	NoWallet bool
	// VerifyTime is each signature figure's measuring time (default 1 s).
	VerifyTime time.Duration
	// Base configures each scheme's session (node, accounts, interval);
	// its Scheme is ignored.
	Base Options
	// Out is the output directory.
	Out string
	// Progress receives progress bars; Log, the tables as they come.
	Progress io.Writer
	Log      io.Writer
}

// DefaultSuiteTxs are the closed-loop runs' sizes: enough for the 12 s
// cap above the targets (36,000 and 10,800 tx/s), few enough to sign in
// seconds.
var DefaultSuiteTxs = map[keys.Scheme]int{keys.SchemeEd25519: 500_000, keys.SchemeSecp256k1: 250_000}

// Targets the suite checks (the issue's; they assume a 2-core machine
// shared by node and bench).
const (
	TargetEd25519TPS       = 36_000
	TargetSecp256k1TPS     = 10_800
	TargetSecp256k1Ceiling = 0.70
	TargetHalfP99Intervals = 1.5
	// Issue 17's: one transaction per request from WalletConnections
	// connections against the batched run, per scheme; and
	// ManyConnections against WalletConnections, "no worse" read as
	// within 5 %, the spread of two identical runs here.
	TargetWalletEd25519   = 0.8
	TargetWalletSecp256k1 = 0.9
	TargetManyVsWallet    = 0.95
)

// The wallet-shaped runs' connection counts.
const (
	WalletConnections = 32
	ManyConnections   = 256
)

// Check is one target and how the run did against it.
type Check struct {
	Name string `json:"name"`
	// Op is how Got compares with Want to meet the target: ≥, ≤ or =
	// (empty: the suite's, by name).
	Op   string  `json:"op,omitempty"`
	Want float64 `json:"want"`
	Got  float64 `json:"got"`
	OK   bool    `json:"ok"`
}

// SuiteScheme is one scheme's outcome.
type SuiteScheme struct {
	Scheme        string  `json:"scheme"`
	CommittedTPS  float64 `json:"committed_tps"`
	SteadyTPS     float64 `json:"steady_tps"`
	SubmitTPS     float64 `json:"submit_tps"`
	SigCeilingTPS float64 `json:"sig_ceiling_tps"`
	CeilingRatio  float64 `json:"ceiling_ratio"`
	// SaturationP99Ms is p99 inclusion latency in the closed-loop run,
	// where a queue is expected.
	SaturationP99Ms  float64 `json:"saturation_p99_ms"`
	HalfRate         float64 `json:"half_rate"`
	HalfCommittedTPS float64 `json:"half_committed_tps"`
	HalfP50Ms        float64 `json:"half_p50_ms"`
	HalfP99Ms        float64 `json:"half_p99_ms"`
	HalfP99Intervals float64 `json:"half_p99_intervals"`
	// WalletTPS and ManyTPS are the wallet-shaped runs' committed TPS
	// (one transaction per request; WalletConnections and
	// ManyConnections connections), WalletRatio the first over
	// CommittedTPS, ManyRatio the second over the first.
	WalletTPS       float64 `json:"wallet_tps,omitempty"`
	WalletRatio     float64 `json:"wallet_ratio,omitempty"`
	ManyTPS         float64 `json:"many_tps,omitempty"`
	ManyRatio       float64 `json:"many_ratio,omitempty"`
	Errors          int     `json:"errors"`
	NodeCPUSeconds  float64 `json:"node_cpu_s"`
	NodeRSSMB       float64 `json:"node_rss_mb"`
	BlockIntervalMs int64   `json:"block_interval_ms"`
	Checks          []Check `json:"checks"`
}

// SuiteResult is the standard scenario's report.
type SuiteResult struct {
	Schemes []SuiteScheme `json:"schemes"`
	Verify  *VerifyResult `json:"verify"`
	CPUs    int           `json:"cpus"`
	Commit  string        `json:"commit"`
	Machine Machine       `json:"machine"`
	Seconds float64       `json:"seconds"`
}

// RunSuite runs the standard scenario, writing each run's outputs under
// o.Out.
func RunSuite(ctx context.Context, o SuiteOptions) (*SuiteResult, error) {
	if err := nativeOnly("suite", o.Base.Workload); err != nil {
		return nil, err
	}
	if len(o.Schemes) == 0 {
		o.Schemes = []keys.Scheme{keys.SchemeEd25519, keys.SchemeSecp256k1}
	}
	if o.Half == 0 {
		o.Half = 8 * time.Second
	}
	if o.Saturation == 0 {
		o.Saturation = 12 * time.Second
	}
	if o.VerifyTime == 0 {
		o.VerifyTime = time.Second
	}
	if o.Out == "" {
		return nil, fmt.Errorf("bench: the suite needs an output directory")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	res := &SuiteResult{CPUs: runtime.GOMAXPROCS(0), Commit: o.Base.Commit, Machine: thisMachine()}
	res.Machine.Secp256k1 = keys.Secp256k1Implementation()
	// The ceiling first, with nothing else running.
	v, err := RunVerify(ctx, VerifyOptions{Schemes: o.Schemes, Duration: o.VerifyTime, Paths: []string{PathSingle, PathBatch}, Signers: cmpOr(o.Base.Accounts, DefaultAccounts)})
	if err != nil {
		return nil, err
	}
	res.Verify = v
	if err := WriteJSON(filepath.Join(o.Out, "verify.json"), v); err != nil {
		return nil, err
	}
	if o.Log != nil {
		v.Table(o.Log)
	}
	for _, scheme := range o.Schemes {
		ss, err := runSuiteScheme(ctx, o, scheme, v)
		if err != nil {
			return nil, err
		}
		res.Schemes = append(res.Schemes, *ss)
	}
	res.Machine.LoadAfter = loadAverage()
	res.Seconds = round1(time.Since(start).Seconds())
	if err := writeSummary(o.Out, "summary.json", res, res.Table); err != nil {
		return nil, err
	}
	return res, nil
}

func runSuiteScheme(ctx context.Context, o SuiteOptions, scheme keys.Scheme, v *VerifyResult) (*SuiteScheme, error) {
	n := DefaultSuiteTxs[scheme]
	if o.Txs != nil && o.Txs[scheme] > 0 {
		n = o.Txs[scheme]
	}
	so := o.Base
	so.Scheme = scheme
	so.CeilingTime = -1 // measured above for both schemes
	so.MaxTxs = n + int(v.Ceiling[scheme.String()]*o.Half.Seconds()) + 1
	so.MaxBatch = max(o.Batch, DefaultBatch)
	so.Progress = o.Progress
	if so.Node.Mode == NodeProcess || so.Node.Mode == "" {
		so.Node.LogPath = filepath.Join(o.Out, scheme.String()+"-node.log")
	}
	s, err := NewSession(ctx, so)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.ceiling = v
	// run runs one load, writes its outputs under tag and shows its table.
	run := func(spec LoadSpec, label, tag string) (*Report, error) {
		r, err := s.Run(ctx, spec, label)
		if err != nil {
			return nil, err
		}
		if err := s.WriteOutputs(filepath.Join(o.Out, scheme.String()+"-"+tag), r); err != nil {
			return nil, err
		}
		if o.Log != nil {
			r.Table(o.Log)
		}
		return r, nil
	}
	sat, err := run(LoadSpec{Txs: n, Duration: o.Saturation, Concurrency: o.Concurrency, Batch: o.Batch}, scheme.String()+" saturation (closed loop)", "saturation")
	if err != nil {
		return nil, err
	}
	tps := sat.SteadyTPS
	if tps == 0 {
		tps = sat.CommittedTPS
	}
	halfRate := max(1, float64(int(tps/2)))
	half, err := run(LoadSpec{Rate: halfRate, Duration: o.Half, Concurrency: o.Concurrency, Batch: o.Batch}, fmt.Sprintf("%s half rate (%.0f tx/s)", scheme, halfRate), "half")
	if err != nil {
		return nil, err
	}
	ss := &SuiteScheme{
		Scheme: scheme.String(), CommittedTPS: sat.CommittedTPS, SteadyTPS: sat.SteadyTPS, SubmitTPS: sat.SubmitTPS,
		SigCeilingTPS: sat.SigCeilingTPS, CeilingRatio: sat.CeilingRatio, SaturationP99Ms: sat.P99Ms,
		HalfRate: halfRate, HalfCommittedTPS: half.CommittedTPS, HalfP50Ms: half.P50Ms, HalfP99Ms: half.P99Ms, HalfP99Intervals: half.P99Intervals,
		Errors: sat.Errors + half.Errors, NodeCPUSeconds: sat.NodeCPUSeconds, NodeRSSMB: max(sat.NodeRSSMB, half.NodeRSSMB),
		BlockIntervalMs: sat.BlockIntervalMs,
	}
	switch scheme {
	case keys.SchemeEd25519:
		ss.Checks = append(ss.Checks, Check{Name: "committed TPS", Want: TargetEd25519TPS, Got: ss.CommittedTPS, OK: ss.CommittedTPS >= TargetEd25519TPS})
	case keys.SchemeSecp256k1:
		ss.Checks = append(ss.Checks,
			Check{Name: "committed TPS", Want: TargetSecp256k1TPS, Got: ss.CommittedTPS, OK: ss.CommittedTPS >= TargetSecp256k1TPS},
			Check{Name: "committed / signature ceiling", Want: TargetSecp256k1Ceiling, Got: ss.CeilingRatio, OK: ss.CeilingRatio >= TargetSecp256k1Ceiling})
	}
	ss.Checks = append(ss.Checks, Check{Name: "p99 inclusion at half rate, in intervals", Want: TargetHalfP99Intervals, Got: ss.HalfP99Intervals, OK: ss.HalfP99Intervals > 0 && ss.HalfP99Intervals <= TargetHalfP99Intervals})
	if o.NoWallet {
		return ss, nil
	}
	// Wallet-shaped: one transaction per request, as koilib and every
	// Koinos tool send them, from many clients.
	for _, w := range []struct {
		conns int
		tag   string
		tps   *float64
	}{{WalletConnections, "wallet", &ss.WalletTPS}, {ManyConnections, "wallet-many", &ss.ManyTPS}} {
		r, err := run(LoadSpec{Txs: n, Duration: o.Saturation, Concurrency: w.conns, Batch: 1},
			fmt.Sprintf("%s one transaction per request, %d connections (closed loop)", scheme, w.conns), w.tag)
		if err != nil {
			return nil, err
		}
		*w.tps = r.CommittedTPS
		ss.Errors += r.Errors
	}
	if ss.CommittedTPS > 0 {
		ss.WalletRatio = round3(ss.WalletTPS / ss.CommittedTPS)
	}
	if ss.WalletTPS > 0 {
		ss.ManyRatio = round3(ss.ManyTPS / ss.WalletTPS)
	}
	want := TargetWalletEd25519
	if scheme == keys.SchemeSecp256k1 {
		want = TargetWalletSecp256k1
	}
	ss.Checks = append(ss.Checks,
		Check{Name: "one tx per request (32 conns) / batched", Op: "≥", Want: want, Got: ss.WalletRatio, OK: ss.WalletRatio >= want},
		Check{Name: "256 connections / 32 connections", Op: "≥", Want: TargetManyVsWallet, Got: ss.ManyRatio, OK: ss.ManyRatio >= TargetManyVsWallet})
	return ss, nil
}

// Table writes the suite's summary.
func (r *SuiteResult) Table(w io.Writer) {
	fmt.Fprintf(w, "\nember bench suite — %d CPUs (%s), commit %s, load %s → %s, %.0f s\n",
		r.CPUs, r.Machine.Model, r.Commit, r.Machine.LoadBefore, r.Machine.LoadAfter, r.Seconds)
	fmt.Fprintf(w, "%-10s %10s %10s %12s %9s %11s %11s %9s %10s %10s %8s\n", "scheme", "batched", "steady", "sig ceiling", "ratio", "half rate", "p99 @half", "p99/int", "1/req ×32", "1/req ×256", "errors")
	for _, s := range r.Schemes {
		fmt.Fprintf(w, "%-10s %10.0f %10.0f %12.0f %8.1f%% %11.0f %9.0f ms %9.2f %10.0f %10.0f %8d\n",
			s.Scheme, s.CommittedTPS, s.SteadyTPS, s.SigCeilingTPS, 100*s.CeilingRatio, s.HalfRate, s.HalfP99Ms, s.HalfP99Intervals, s.WalletTPS, s.ManyTPS, s.Errors)
	}
	fmt.Fprintln(w, "  batched: JSON-RPC batches; 1/req: one transaction per request (wallet-shaped), ×N connections; committed tx/s")
	for _, s := range r.Schemes {
		for _, c := range s.Checks {
			v := "MET"
			if !c.OK {
				v = "NOT MET"
			}
			op := c.Op
			if op == "" {
				op = wantOp(c.Name)
			}
			fmt.Fprintf(w, "  target %-10s %-42s want %s %-8.4g got %-10.4g %s\n", s.Scheme, c.Name, op, c.Want, c.Got, v)
		}
	}
}

func wantOp(name string) string {
	if name == "p99 inclusion at half rate, in intervals" {
		return "≤"
	}
	return "≥"
}

// Table writes the verify figures.
func (r *VerifyResult) Table(w io.Writer) {
	fmt.Fprintf(w, "\nsignature verification on %d cores (secp256k1: %s), load %s → %s\n", r.CPUs, r.Secp256k1Impl, r.LoadAvgBefore, r.LoadAvgAfter)
	fmt.Fprintf(w, "%-10s %-7s %8s %12s %14s\n", "scheme", "path", "threads", "per second", "CPU µs/sig")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "%-10s %-7s %8d %12.0f %14.1f\n", f.Scheme, f.Path, f.Threads, f.PerSec, f.USPerSig)
	}
	for _, s := range []string{"ed25519", "secp256k1"} {
		if c, ok := r.Ceiling[s]; ok {
			fmt.Fprintf(w, "ceiling %-10s %.0f sig/s (best path, all cores)\n", s, c)
		}
	}
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
