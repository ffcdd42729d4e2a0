package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// NetOptions configure the net mode (`ember bench net`): in one run, the
// suite's closed-loop saturation run on one fresh node (the yardstick),
// then a network of Nodes producers on loopback loaded the same way, and a
// run at half the rate the network committed, where latency, block
// propagation and irreversibility are judged.
type NetOptions struct {
	Scheme keys.Scheme // default secp256k1
	Nodes  int         // default 4
	// Txs is each closed-loop run's size (default DefaultSuiteTxs), and
	// Saturation caps its submission time (default 12 s).
	Txs        int
	Saturation time.Duration
	// Half is the half-rate run's submission time (default 30 s: about
	// 30 blocks at 1 s for the propagation and irreversibility figures).
	Half time.Duration
	// Concurrency and Batch shape every run (defaults as LoadSpec);
	// Concurrency must be at least Nodes so that every node gets load.
	Concurrency, Batch int
	// SameNetwork runs the half-rate run on the network the saturation
	// run loaded; by default it runs on a fresh network of the same
	// shape, so that a network the saturation left split or behind does
	// not spoil the latency, propagation and irreversibility figures
	// (whether the nodes agreed after saturation is reported either way).
	SameNetwork bool
	// Base configures the sessions (node mode, accounts, interval, seed,
	// observation, ceiling time); its Scheme and Nodes are ignored.
	Base Options
	// Out is the output directory.
	Out      string
	Progress io.Writer
	Log      io.Writer
}

// Targets of the net and sync modes (issue 12; a 2-core machine shared by
// every node and the bench).
const (
	TargetNetRatio           = 0.8  // network committed TPS / (single-node TPS / N)
	TargetNetHalfP99         = 2.0  // p99 inclusion at half rate, in intervals
	TargetPropagationP99     = 0.10 // p99 block propagation, fraction of an interval
	TargetIrreversibilityP99 = 3.0  // p99 block time → irreversible, in intervals
	TargetSyncRatio          = 1.2  // sync tx/s / single-node committed TPS
)

// NetNode is one node's CPU and memory in the net mode's two network runs.
type NetNode struct {
	Node              int     `json:"node"`
	SaturationCPUSecs float64 `json:"saturation_cpu_s"`
	HalfCPUSecs       float64 `json:"half_cpu_s"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
}

// NetResult is the net mode's report. Figures are defined in doc.go.
type NetResult struct {
	Scheme          string  `json:"scheme"`
	Nodes           int     `json:"nodes"`
	BlockIntervalMs int64   `json:"block_interval_ms"`
	SigCeilingTPS   float64 `json:"sig_ceiling_tps"`

	SingleCommittedTPS float64 `json:"single_committed_tps"`
	SingleSteadyTPS    float64 `json:"single_steady_tps"`
	SingleNodeCPUSecs  float64 `json:"single_node_cpu_s"`
	SingleNodeRSSMB    float64 `json:"single_node_rss_mb"`
	// YardstickTPS is SingleCommittedTPS / Nodes: what each node of the
	// network could commit if the machine were split evenly between them.
	YardstickTPS float64 `json:"yardstick_tps"`

	CommittedTPS float64 `json:"committed_tps"`
	SteadyTPS    float64 `json:"steady_tps"`
	SubmitTPS    float64 `json:"submit_tps"`
	// Ratio is CommittedTPS / YardstickTPS.
	Ratio float64 `json:"ratio"`

	HalfRate         float64 `json:"half_rate"`
	HalfCommittedTPS float64 `json:"half_committed_tps"`
	HalfP50Ms        float64 `json:"half_p50_ms"`
	HalfP99Ms        float64 `json:"half_p99_ms"`
	HalfP50Intervals float64 `json:"half_p50_intervals"`
	HalfP99Intervals float64 `json:"half_p99_intervals"`

	// Propagation and irreversibility in the half-rate run.
	Propagation        *Propagation `json:"propagation"`
	IrreversibleBlocks int          `json:"irreversible_blocks"`
	IrreversibleUnseen int          `json:"irreversible_unseen"`
	IrreversibleP50Ms  float64      `json:"irreversible_p50_ms"`
	IrreversibleP99Ms  float64      `json:"irreversible_p99_ms"`
	IrreversibleP50Int float64      `json:"irreversible_p50_intervals"`
	IrreversibleP99Int float64      `json:"irreversible_p99_intervals"`

	// Heads: every node's head and last irreversible block after each
	// network run (the runs' ends, the follower's wait included), and
	// whether they agreed (the same last irreversible height, heads within
	// a block).
	// SameNetwork: the half-rate run loaded the saturated network (else
	// a fresh one).
	SameNetwork          bool       `json:"same_network"`
	HeadsAfterSaturation []NodeHead `json:"heads_after_saturation"`
	HeadsAfterHalf       []NodeHead `json:"heads_after_half"`
	AgreedAfterSat       bool       `json:"agreed_after_saturation"`
	AgreedAfterHalf      bool       `json:"agreed_after_half"`

	PerNode []NetNode `json:"per_node"`
	// Errors over all three runs.
	Errors  int     `json:"errors"`
	Checks  []Check `json:"checks"`
	CPUs    int     `json:"cpus"`
	Commit  string  `json:"commit"`
	Machine Machine `json:"machine"`
	Seconds float64 `json:"seconds"`
}

func (o *NetOptions) ensureDefaults() {
	if o.Scheme == keys.SchemeUnknown {
		o.Scheme = keys.SchemeSecp256k1
	}
	if o.Nodes == 0 {
		o.Nodes = 4
	}
	if o.Txs == 0 {
		o.Txs = DefaultSuiteTxs[o.Scheme]
	}
	if o.Saturation == 0 {
		o.Saturation = 12 * time.Second
	}
	if o.Half == 0 {
		o.Half = 30 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
}

// yardstick is the suite's closed-loop saturation run on a fresh single
// node, written under out/single-saturation.
func yardstick(ctx context.Context, base Options, scheme keys.Scheme, txs int, sat time.Duration, conc, batch int, out string, ceiling *VerifyResult, log io.Writer) (*Report, error) {
	so := base
	so.Scheme, so.Nodes, so.CeilingTime = scheme, 1, -1
	so.MaxTxs, so.MaxBatch = txs, max(batch, DefaultBatch)
	if so.Node.Mode == NodeProcess || so.Node.Mode == "" {
		so.Node.LogPath = filepath.Join(out, "single-node.log")
	}
	s, err := NewSession(ctx, so)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.ceiling = ceiling
	r, err := s.Run(ctx, LoadSpec{Txs: txs, Duration: sat, Concurrency: conc, Batch: batch}, scheme.String()+" single node, saturation (closed loop)")
	if err != nil {
		return nil, err
	}
	if err := s.WriteOutputs(filepath.Join(out, "single-saturation"), r); err != nil {
		return nil, err
	}
	if log != nil {
		r.Table(log)
	}
	return r, s.Close()
}

// RunNet runs the net mode, writing each run's outputs under o.Out.
func RunNet(ctx context.Context, o NetOptions) (*NetResult, error) {
	o.ensureDefaults()
	switch {
	case o.Out == "":
		return nil, errors.New("bench: the net mode needs an output directory")
	case o.Nodes < 2 || o.Nodes > MaxNodes:
		return nil, fmt.Errorf("bench: --nodes must be between 2 and %d, got %d", MaxNodes, o.Nodes)
	case o.Concurrency < o.Nodes:
		return nil, fmt.Errorf("bench: --concurrency %d is below --nodes %d: worker w sends to node w mod N, so some node would get no load", o.Concurrency, o.Nodes)
	case o.Base.Node.Mode == NodeExternal || o.Base.Node.URL != "":
		return nil, errors.New("bench: the net mode starts its own nodes; it cannot load one given by --rpc")
	}
	if err := nativeOnly("net", o.Base.Workload); err != nil {
		return nil, err
	}
	if err := (LoadSpec{Txs: o.Txs, Concurrency: o.Concurrency, Batch: o.Batch}).Validate(cmpOr(o.Base.Accounts, DefaultAccounts)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	res := &NetResult{Scheme: o.Scheme.String(), Nodes: o.Nodes, CPUs: runtime.GOMAXPROCS(0), Commit: o.Base.Commit, Machine: thisMachine()}
	res.Machine.Secp256k1 = keys.Secp256k1Implementation()

	// The signature ceiling, with nothing else running.
	var ceiling *VerifyResult
	if ct := o.Base.CeilingTime; ct >= 0 {
		v, err := RunVerify(ctx, VerifyOptions{Schemes: []keys.Scheme{o.Scheme}, Duration: cmpOrDur(ct, time.Second), Paths: []string{PathSingle, PathBatch},
			Signers: cmpOr(o.Base.Accounts, DefaultAccounts), Threads: []int{runtime.GOMAXPROCS(0)}})
		if err != nil {
			return nil, err
		}
		ceiling = v
		res.SigCeilingTPS = v.Ceiling[o.Scheme.String()]
	}

	base := o.Base
	base.Progress = o.Progress
	single, err := yardstick(ctx, base, o.Scheme, o.Txs, o.Saturation, o.Concurrency, o.Batch, o.Out, ceiling, o.Log)
	if err != nil {
		return nil, err
	}
	res.SingleCommittedTPS, res.SingleSteadyTPS = single.CommittedTPS, single.SteadyTPS
	res.SingleNodeCPUSecs, res.SingleNodeRSSMB = single.NodeCPUSeconds, single.NodeRSSMB
	res.YardstickTPS = round1(single.CommittedTPS / float64(o.Nodes))
	res.Errors += single.Errors

	// The network: saturation, then half its committed rate.
	no := base
	no.Scheme, no.Nodes, no.CeilingTime = o.Scheme, o.Nodes, -1
	no.MaxTxs = o.Txs + int(single.CommittedTPS*o.Half.Seconds()) + 1
	no.MaxBatch = max(o.Batch, DefaultBatch)
	if no.Node.Mode == NodeProcess || no.Node.Mode == "" {
		no.Node.LogPath = filepath.Join(o.Out, "node.log") // node-<i>.log
	}
	s, err := NewSession(ctx, no)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	s.ceiling = ceiling
	sat, err := s.Run(ctx, LoadSpec{Txs: o.Txs, Duration: o.Saturation, Concurrency: o.Concurrency, Batch: o.Batch},
		fmt.Sprintf("%s %d nodes, saturation (closed loop)", o.Scheme, o.Nodes))
	if err != nil {
		return nil, err
	}
	if err := s.WriteOutputs(filepath.Join(o.Out, "net-saturation"), sat); err != nil {
		return nil, err
	}
	if o.Log != nil {
		sat.Table(o.Log)
	}
	res.HeadsAfterSaturation = s.Heads()
	res.AgreedAfterSat = headsAgree(res.HeadsAfterSaturation)
	res.SameNetwork = o.SameNetwork
	if !o.SameNetwork {
		if err := s.Close(); err != nil {
			return nil, err
		}
		if no.Node.LogPath != "" {
			no.Node.LogPath = filepath.Join(o.Out, "half-node.log") // half-node-<i>.log
		}
		if s, err = NewSession(ctx, no); err != nil {
			return nil, err
		}
		defer s.Close()
		s.ceiling = ceiling
	}
	halfRate := max(1, float64(int(sat.CommittedTPS/2)))
	half, err := s.Run(ctx, LoadSpec{Rate: halfRate, Duration: o.Half, Concurrency: o.Concurrency, Batch: o.Batch},
		fmt.Sprintf("%s %d nodes, half rate (%.0f tx/s)", o.Scheme, o.Nodes, halfRate))
	if err != nil {
		return nil, err
	}
	if err := s.WriteOutputs(filepath.Join(o.Out, "net-half"), half); err != nil {
		return nil, err
	}
	if o.Log != nil {
		half.Table(o.Log)
	}
	res.HeadsAfterHalf = s.Heads()
	res.AgreedAfterHalf = headsAgree(res.HeadsAfterHalf)
	if err := s.Close(); err != nil {
		return nil, err
	}

	res.BlockIntervalMs = sat.BlockIntervalMs
	res.CommittedTPS, res.SteadyTPS, res.SubmitTPS = sat.CommittedTPS, sat.SteadyTPS, sat.SubmitTPS
	if res.YardstickTPS > 0 {
		res.Ratio = round3(res.CommittedTPS / res.YardstickTPS)
	}
	res.HalfRate, res.HalfCommittedTPS = halfRate, half.CommittedTPS
	res.HalfP50Ms, res.HalfP99Ms, res.HalfP50Intervals, res.HalfP99Intervals = half.P50Ms, half.P99Ms, half.P50Intervals, half.P99Intervals
	res.Propagation = half.Propagation
	ir := half.Irreversibility
	res.IrreversibleBlocks, res.IrreversibleUnseen = ir.Blocks, ir.Unseen
	res.IrreversibleP50Ms, res.IrreversibleP99Ms = round3(half.Latency.Irreversible.P50), round3(half.Latency.Irreversible.P99)
	res.IrreversibleP50Int, res.IrreversibleP99Int = ir.P50Intervals, ir.P99Intervals
	for i := 0; i < o.Nodes; i++ {
		n := NetNode{Node: i, SaturationCPUSecs: -1, HalfCPUSecs: -1, PeakRSSMB: -1}
		if i < len(sat.Node.PerNode) && i < len(half.Node.PerNode) {
			n.SaturationCPUSecs, n.HalfCPUSecs = sat.Node.PerNode[i].CPUSeconds, half.Node.PerNode[i].CPUSeconds
			n.PeakRSSMB = max(sat.Node.PerNode[i].PeakRSSMB, half.Node.PerNode[i].PeakRSSMB)
		}
		res.PerNode = append(res.PerNode, n)
	}
	res.Errors += sat.Errors + half.Errors
	res.Checks = netChecks(res)
	res.Machine.LoadAfter = loadAverage()
	res.Seconds = round1(time.Since(start).Seconds())
	if err := writeSummary(o.Out, "net.json", res, res.Table); err != nil {
		return nil, err
	}
	return res, nil
}

func netChecks(r *NetResult) []Check {
	cs := []Check{
		{Name: "network committed / (single / N)", Op: "≥", Want: TargetNetRatio, Got: r.Ratio, OK: r.Ratio >= TargetNetRatio},
		{Name: "p99 inclusion at half rate, in intervals", Op: "≤", Want: TargetNetHalfP99, Got: r.HalfP99Intervals, OK: r.HalfP99Intervals > 0 && r.HalfP99Intervals <= TargetNetHalfP99},
	}
	if p := r.Propagation; p != nil {
		cs = append(cs, Check{Name: "p99 block propagation / interval", Op: "≤", Want: TargetPropagationP99, Got: p.P99OfInterval,
			OK: p.Live > 0 && p.P99OfInterval <= TargetPropagationP99})
	}
	cs = append(cs,
		Check{Name: "p99 block time → irreversible, in intervals", Op: "≤", Want: TargetIrreversibilityP99, Got: r.IrreversibleP99Int,
			OK: r.IrreversibleP99Int > 0 && r.IrreversibleUnseen == 0 && r.IrreversibleP99Int <= TargetIrreversibilityP99},
		Check{Name: "errors", Op: "=", Want: 0, Got: float64(r.Errors), OK: r.Errors == 0},
		Check{Name: "nodes agree after both network runs", Op: "=", Want: 1, Got: float64(btoi(r.AgreedAfterSat && r.AgreedAfterHalf)), OK: r.AgreedAfterSat && r.AgreedAfterHalf})
	return cs
}

// Table writes the net mode's summary.
func (r *NetResult) Table(w io.Writer) {
	fmt.Fprintf(w, "\nember bench net — %s, %d nodes on %d CPUs (%s), block interval %d ms, commit %s, load %s → %s, %.0f s\n",
		r.Scheme, r.Nodes, r.CPUs, r.Machine.Model, r.BlockIntervalMs, r.Commit, r.Machine.LoadBefore, r.Machine.LoadAfter, r.Seconds)
	row := func(k, v string) { fmt.Fprintf(w, "  %-36s %s\n", k, v) }
	row("single node, committed (steady)", fmt.Sprintf("%.0f tx/s (%s); yardstick single/%d = %.0f tx/s", r.SingleCommittedTPS, orDash(r.SingleSteadyTPS), r.Nodes, r.YardstickTPS))
	row("network, committed (steady)", fmt.Sprintf("%.0f tx/s (%s), admitted %.0f tx/s; ratio to the yardstick %.2f", r.CommittedTPS, orDash(r.SteadyTPS), r.SubmitTPS, r.Ratio))
	where := "a fresh network"
	if r.SameNetwork {
		where = "the same network"
	}
	row("half rate", fmt.Sprintf("%.0f tx/s offered, %.0f committed, on %s", r.HalfRate, r.HalfCommittedTPS, where))
	row("  inclusion", fmt.Sprintf("p50 %.0f ms (%.2f intervals), p99 %.0f ms (%.2f intervals)", r.HalfP50Ms, r.HalfP50Intervals, r.HalfP99Ms, r.HalfP99Intervals))
	if p := r.Propagation; p != nil {
		row("  propagation, slowest node", fmt.Sprintf("p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms (p99 %.1f%% of an interval)", p.Max.P50, p.Max.P90, p.Max.P99, p.Max.Max, 100*p.P99OfInterval))
		row("  blocks", fmt.Sprintf("%d produced, %d reached every node live, %d did not (sync or never), %d off the chain", p.Blocks, p.Live, p.NotLive, p.OffChain))
		if p.Note != "" {
			row("  network", p.Note)
		}
	}
	row("  block time → irreversible", fmt.Sprintf("p50 %.0f ms (%.2f intervals), p99 %.0f ms (%.2f intervals); %d blocks, %d not seen",
		r.IrreversibleP50Ms, r.IrreversibleP50Int, r.IrreversibleP99Ms, r.IrreversibleP99Int, r.IrreversibleBlocks, r.IrreversibleUnseen))
	if r.SingleNodeCPUSecs >= 0 {
		row("single node CPU / peak RSS", fmt.Sprintf("%.1f s, %.0f MB", r.SingleNodeCPUSecs, r.SingleNodeRSSMB))
	}
	for _, n := range r.PerNode {
		if n.SaturationCPUSecs >= 0 {
			row(fmt.Sprintf("node %d CPU (saturation, half) / RSS", n.Node), fmt.Sprintf("%.1f s, %.1f s / peak %.0f MB", n.SaturationCPUSecs, n.HalfCPUSecs, n.PeakRSSMB))
		}
	}
	for _, h := range []struct {
		when  string
		heads []NodeHead
		agree bool
	}{{"after saturation", r.HeadsAfterSaturation, r.AgreedAfterSat}, {"after half rate", r.HeadsAfterHalf, r.AgreedAfterHalf}} {
		v := "agree"
		if !h.agree {
			v = "DISAGREE"
		}
		var parts []string
		for _, n := range h.heads {
			if n.Err != "" {
				parts = append(parts, fmt.Sprintf("%d: %s", n.Node, n.Err))
				continue
			}
			id := n.ID
			if len(id) > 10 {
				id = "…" + id[len(id)-6:]
			}
			parts = append(parts, fmt.Sprintf("%d: head %d %s lib %d", n.Node, n.Height, id, n.LIB))
		}
		row("nodes "+h.when, v+" ("+strings.Join(parts, "; ")+")")
	}
	row("errors (all runs)", fmt.Sprint(r.Errors))
	writeChecks(w, r.Checks)
}

// writeChecks writes each target and whether it was met.
func writeChecks(w io.Writer, cs []Check) {
	for _, c := range cs {
		v := "MET"
		if !c.OK {
			v = "NOT MET"
		}
		fmt.Fprintf(w, "  target %-46s want %s %-8.4g got %-10.4g %s\n", c.Name, c.Op, c.Want, c.Got, v)
	}
}

// orDash prints a rate, or "—" for one not measured (0).
func orDash(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func cmpOrDur(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}
