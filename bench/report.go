package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"time"
)

// Report is one rpc run. The fields up to Commit are stable: scripts and
// dashboards read them, so they are never renamed or given another
// meaning (add new fields instead). Their definitions are in doc.go.
type Report struct {
	CommittedTPS    float64 `json:"committed_tps"`
	SubmitTPS       float64 `json:"submit_tps"`
	P50Ms           float64 `json:"p50_ms"`
	P90Ms           float64 `json:"p90_ms"`
	P99Ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	Errors          int     `json:"errors"`
	SigCeilingTPS   float64 `json:"sig_ceiling_tps"`
	Scheme          string  `json:"scheme"`
	BlockIntervalMs int64   `json:"block_interval_ms"`
	Txs             int     `json:"txs"`
	CPUs            int     `json:"cpus"`
	NodeCPUSeconds  float64 `json:"node_cpu_s"`
	NodeRSSMB       float64 `json:"node_rss_mb"`
	Commit          string  `json:"commit"`

	Mode  string `json:"mode"`
	Label string `json:"label,omitempty"`
	// Workload is what the transfers moved: the native token, or a WASM
	// token contract (its id, and the rc_limit measured for it).
	Workload WorkloadInfo `json:"workload"`
	// Reverted counts admitted transactions whose admission receipt says
	// they reverted (checked for the WASM token only): they are committed,
	// and counted in included, but moved nothing.
	Reverted int `json:"reverted"`
	// CeilingRatio is CommittedTPS / SigCeilingTPS (0 when no ceiling was
	// measured).
	CeilingRatio float64 `json:"ceiling_ratio"`
	SteadyTPS    float64 `json:"steady_tps"`
	// P99Intervals is P99Ms in block intervals; P50Intervals, P50Ms.
	P99Intervals float64 `json:"p99_intervals"`
	P50Intervals float64 `json:"p50_intervals"`
	// Nodes is how many nodes were loaded (a network when above 1).
	Nodes        int    `json:"nodes"`
	WindowFull   Window `json:"window_full"`
	WindowSteady Window `json:"window_steady"`

	Included   int            `json:"included"`
	Acked      int            `json:"acked"`
	Rejected   int            `json:"rejected"`
	Transport  int            `json:"transport_errors"`
	Skipped    int            `json:"skipped"`
	Lost       int            `json:"lost"`
	NotSent    int            `json:"not_offered"` // signed, but the time cap came first
	Retries    int64          `json:"retries"`
	ErrorTexts map[string]int `json:"error_texts,omitempty"`

	Latency struct {
		// Inclusion: submit → the head poll that first showed the block.
		Inclusion Dist `json:"inclusion"`
		// BlockTime: submit → the block's header timestamp (its slot).
		BlockTime Dist `json:"block_time"`
		// Ack: submit → the node's answer admitting the transaction.
		Ack Dist `json:"ack"`
		// SchedLag: due time → actual send, in rated runs: how far the
		// bench fell behind the rate it was asked for.
		SchedLag Dist `json:"sched_lag"`
		// InclusionFromDue: due time → inclusion seen, in rated runs: the
		// latency an independent client sending on time would have had
		// (free of coordinated omission when the bench fell behind).
		InclusionFromDue Dist `json:"inclusion_from_due"`
		// Irreversible: a block's header timestamp → the head poll that
		// first reported it irreversible, per block of the run.
		Irreversible Dist `json:"irreversible"`
	} `json:"latency"`

	// Irreversibility summarizes Latency.Irreversible in block intervals.
	Irreversibility struct {
		// Blocks of the run: from the first after the clock started to
		// the last holding one of its transactions.
		Blocks int `json:"blocks"`
		// Unseen of them no head poll reported irreversible before the
		// bench stopped following.
		Unseen       int     `json:"unseen"`
		P50Intervals float64 `json:"p50_intervals"`
		P99Intervals float64 `json:"p99_intervals"`
	} `json:"irreversibility"`

	// Admission is how evenly the node admitted transactions: the admitted
	// rate in half-second bins over the steady part of the submission
	// (after the warm-up, before the last bin, which is partial). A node
	// that stalls admission while it builds or commits a block shows it as
	// low bins once a slot.
	Admission Evenness `json:"admission"`

	// Propagation of blocks between the nodes of a network (nil for one
	// node).
	Propagation *Propagation `json:"propagation,omitempty"`

	Load struct {
		Rate        float64 `json:"rate"` // 0: closed loop
		Concurrency int     `json:"concurrency"`
		Batch       int     `json:"batch"`
		Accounts    int     `json:"accounts"`
		RCLimit     uint64  `json:"rc_limit"`
		RequestMB   float64 `json:"request_mb"`
		SignSeconds float64 `json:"sign_s"` // pre-signed: signing before the clock
		// SignLive: signed during the run (LoadSpec.SignLive), SignAhead
		// at most ahead of the sender; SignBusyS is the signers' summed
		// busy time, part of bench_cpu_s.
		SignLive  bool    `json:"sign_live,omitempty"`
		SignAhead int     `json:"sign_ahead,omitempty"`
		SignBusyS float64 `json:"sign_busy_s,omitempty"`
	} `json:"load"`

	Node struct {
		Mode       string  `json:"mode"`
		URL        string  `json:"url"`
		Observe    string  `json:"observe"` // live or deferred block reads
		PeakRSSMB  float64 `json:"peak_rss_mb"`
		EndRSSMB   float64 `json:"end_rss_mb"`
		CPUPercent float64 `json:"cpu_percent"` // node_cpu_s over the full window
		BenchCPUS  float64 `json:"bench_cpu_s"` // this process's CPU over the same span
		// BenchCPUPercent is BenchCPUS over t0 → end of drain, in % of
		// one core: what the bench took from the machine it shares with
		// the node (with live signing, most of it is signing).
		BenchCPUPercent float64 `json:"bench_cpu_percent"`
		BlocksSeen      int     `json:"blocks_seen"`
		BlocksWithTxs   int     `json:"blocks_with_txs"`
		MaxBlockTxs     int     `json:"max_block_txs"`
		Reorgs          int     `json:"reorgs"`
		Polls           int     `json:"polls"`
		// Response bytes the node sent: to the follower (heads and
		// blocks: what observing costs) and to the submitters (receipts).
		FollowMB float64 `json:"follow_mb"`
		SubmitMB float64 `json:"submit_response_mb"`
		// From the node's "produced block" log lines (process mode), over
		// the blocks holding this run's transactions: time to build
		// (apply) them, and to build, store and publish them; and the
		// share of the full window the chain loop spent producing.
		BuildMsTotal   int64 `json:"build_ms_total"`
		ProduceMsTotal int64 `json:"produce_ms_total"`
		MaxProduceMs   int64 `json:"max_produce_ms"`
		// ProduceMs summarizes each block's build and store (and publish)
		// time, from the same log lines: issue 17 wants p99 within half
		// the interval at saturation.
		ProduceMs     Dist    `json:"produce_ms"`
		ChainLoopBusy float64 `json:"chain_loop_busy"`
		BuildUSPerTx  float64 `json:"build_us_per_tx"`
		StoreUSPerTx  float64 `json:"store_us_per_tx"`
		MaxPending    int     `json:"max_pending"`
		// Metrics are the node's counters (admin /metrics, names ending
		// in _total) that moved during the run: how many signatures the
		// verify stage checked, cache hits, overload refusals...
		Metrics map[string]float64 `json:"metrics,omitempty"`
		// SigsPerTx is signatures verified per included transaction
		// (1: each verified once, as DESIGN §7 wants).
		SigsPerTx float64 `json:"sigs_verified_per_tx,omitempty"`
		AdminURL  string  `json:"admin_url,omitempty"`
		// PerNode: each node of a network (node_cpu_s is their sum,
		// node_rss_mb their largest peak).
		PerNode []NodeUsage `json:"per_node,omitempty"`
	} `json:"node"`

	Machine   Machine        `json:"machine"`
	Ceiling   *VerifyResult  `json:"sig_ceiling,omitempty"`
	StartedAt time.Time      `json:"started_at"`
	Series    *Series        `json:"-"`
	samples   *samplesWriter // raw per-transaction data for the CSV
}

// NodeUsage is one node's CPU and memory over a run (child processes).
type NodeUsage struct {
	Node       int     `json:"node"`
	URL        string  `json:"url"`
	CPUSeconds float64 `json:"cpu_s"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	EndRSSMB   float64 `json:"end_rss_mb"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs        int    `json:"cpus"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	Model       string `json:"cpu_model,omitempty"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	GoVersion   string `json:"go_version"`
	Hostname    string `json:"hostname,omitempty"`
	LoadBefore  string `json:"load_avg_before,omitempty"`
	LoadAfter   string `json:"load_avg_after,omitempty"`
	Secp256k1   string `json:"secp256k1_impl,omitempty"`
	BenchCommit string `json:"bench_commit,omitempty"`
}

func thisMachine() Machine {
	h, _ := os.Hostname()
	return Machine{
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Model: cpuModel(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, GoVersion: runtime.Version(), Hostname: h,
		LoadBefore: loadAverage(),
	}
}

// Series are the time series the chart draws.
type Series struct {
	// BlockTPS: per block with a timestamp after the first submission,
	// x = its timestamp (s since the first submission), y = its
	// transactions over the time since the previous block.
	BlockX, BlockY []float64
	// SubmitX, SubmitY: admitted transactions per second, in bins.
	SubmitX, SubmitY []float64
	// Latency samples (ms), sorted, for the CDF.
	Inclusion, BlockTime, Ack []float64
}

// stableFields are the JSON fields promised to stay; the tests hold the
// report to them.
var stableFields = []string{"committed_tps", "submit_tps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors",
	"sig_ceiling_tps", "scheme", "block_interval_ms", "txs", "cpus", "node_cpu_s", "node_rss_mb", "commit"}

// WriteJSON writes v indented to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// writeSummary writes a mode's result into dir: name as JSON, and the
// terminal table as summary.txt.
func writeSummary(dir, name string, v any, table func(io.Writer)) error {
	if err := WriteJSON(filepath.Join(dir, name), v); err != nil {
		return err
	}
	var b bytes.Buffer
	table(&b)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// samplesWriter holds what the per-transaction CSV needs.
type samplesWriter struct {
	p        *plan
	sub      *submitter
	fol      *follower
	t0WallMs float64
	rated    bool
}

// csvHeader is the per-transaction CSV's columns. Times are milliseconds
// since the first submission of the run (t0); empty cells are events that
// did not happen.
var csvHeader = []string{"tx", "account", "nonce", "status", "sched_ms", "submit_ms", "ack_ms", "seen_ms",
	"block_height", "block_ts_ms", "ack_latency_ms", "inclusion_ms", "block_latency_ms"}

var statusNames = [...]string{stNotSent: "not_offered", stAcked: "acked", stRejected: "rejected", stTransport: "no_answer", stSkipped: "skipped"}

// HasTxSamples reports whether the run kept every transaction's times
// (a pre-signed run; a live one keeps samples of its latencies only).
func (r *Report) HasTxSamples() bool { return r.samples != nil && r.samples.p != nil }

// WriteCSV writes the per-transaction samples.
func (r *Report) WriteCSV(w io.Writer) error {
	if !r.HasTxSamples() {
		return fmt.Errorf("bench: this report has no per-transaction samples")
	}
	return r.samples.write(w)
}

func (s *samplesWriter) write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	for k, h := range csvHeader {
		if k > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(h)
	}
	bw.WriteByte('\n')
	ms := func(ns int64) []byte { return strconv.AppendFloat(nil, float64(ns)/1e6, 'f', 3, 64) }
	var line []byte
	for i := range s.p.body {
		line = line[:0]
		st := s.sub.status[i]
		inBlock := s.fol.blockOf[i] >= 0
		status := statusNames[st]
		if inBlock {
			status = "included"
		} else if st == stAcked {
			status = "lost"
		}
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(s.p.acct[i]), 10)
		line = append(line, ',')
		line = strconv.AppendUint(line, s.p.nonce[i], 10)
		line = append(line, ',')
		line = append(line, status...)
		line = append(line, ',')
		if s.rated {
			line = append(line, ms(s.sub.schedNs(int32(i)))...)
		}
		line = append(line, ',')
		sent := st != stNotSent && st != stSkipped
		if sent {
			line = append(line, ms(s.sub.submitNs[i])...)
		}
		line = append(line, ',')
		if st == stAcked {
			line = append(line, ms(s.sub.ackNs[i])...)
		}
		line = append(line, ',')
		if inBlock {
			b := s.fol.blocks[s.fol.blockOf[i]]
			line = append(line, ms(b.SeenNs)...)
			line = append(line, ',')
			line = strconv.AppendUint(line, b.Height, 10)
			line = append(line, ',')
			line = strconv.AppendFloat(line, float64(b.TsMs)-s.t0WallMs, 'f', 3, 64)
		} else {
			line = append(line, ",,"...)
		}
		line = append(line, ',')
		if st == stAcked {
			line = append(line, ms(s.sub.ackNs[i]-s.sub.submitNs[i])...)
		}
		line = append(line, ',')
		if inBlock && sent {
			b := s.fol.blocks[s.fol.blockOf[i]]
			line = append(line, ms(b.SeenNs-s.sub.submitNs[i])...)
			line = append(line, ',')
			line = strconv.AppendFloat(line, float64(b.TsMs)-s.t0WallMs-float64(s.sub.submitNs[i])/1e6, 'f', 3, 64)
		} else {
			line = append(line, ',')
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// WriteBlocksCSV writes one line per block the run observed.
func (r *Report) WriteBlocksCSV(w io.Writer, nodeBlocks func(uint64) (nodeBlock, bool)) error {
	if r.samples == nil {
		return fmt.Errorf("bench: this report has no samples")
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "height,block_ts_ms,seen_ms,fetched_ms,txs,bench_txs,node_build_ms,node_total_ms,node_pending")
	for _, b := range r.samples.fol.blocks {
		fmt.Fprintf(bw, "%d,%.3f,%.3f,%.3f,%d,%d", b.Height, float64(b.TsMs)-r.samples.t0WallMs, float64(b.SeenNs)/1e6, float64(b.FetchNs)/1e6, b.Txs, b.Bench)
		if nb, ok := nodeBlocks(b.Height); ok {
			fmt.Fprintf(bw, ",%d,%d,%d\n", nb.BuildMs, nb.TotalMs, nb.Pending)
		} else {
			fmt.Fprintln(bw, ",,,")
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Table writes the report for a terminal.
func (r *Report) Table(w io.Writer) {
	title := "rpc " + r.Scheme
	if r.Label != "" {
		title += " — " + r.Label
	}
	load := "closed loop"
	if r.Load.Rate > 0 {
		load = fmt.Sprintf("rate %.0f tx/s", r.Load.Rate)
	}
	fmt.Fprintf(w, "\n%s  (%s, %d workers, batch %d, %d accounts, block interval %d ms, node %s, blocks read %s)\n",
		title, load, r.Load.Concurrency, r.Load.Batch, r.Load.Accounts, r.BlockIntervalMs, r.Node.Mode, r.Node.Observe)
	row := func(k, v string) { fmt.Fprintf(w, "  %-28s %s\n", k, v) }
	row("workload", r.Workload.String())
	row("transactions", fmt.Sprintf("%d sent, %d admitted, %d in blocks, %d errors", r.Txs-r.Skipped, r.Acked, r.Included, r.Errors))
	if r.Reverted > 0 {
		row("reverted (admitted)", fmt.Sprintf("%d committed but moved nothing; see error_texts", r.Reverted))
	}
	if r.Errors > 0 {
		row("errors", fmt.Sprintf("rejected %d, no answer %d, skipped %d, lost %d", r.Rejected, r.Transport, r.Skipped, r.Lost))
	}
	if r.NotSent > 0 {
		row("not offered (time cap)", strconv.Itoa(r.NotSent))
	}
	if r.Retries > 0 {
		row("retries (refused for load)", strconv.FormatInt(r.Retries, 10))
	}
	row("committed TPS (full window)", fmt.Sprintf("%.0f  (%d tx over %.2f s: first submit → last inclusion)", r.CommittedTPS, r.WindowFull.Txs, r.WindowFull.Seconds))
	if r.WindowSteady.Note != "" {
		row("committed TPS (steady)", "— "+r.WindowSteady.Note)
	} else {
		row("committed TPS (steady)", fmt.Sprintf("%.0f  (%d tx in %d blocks over %.2f s of block time)", r.SteadyTPS, r.WindowSteady.Txs, r.WindowSteady.Blocks, r.WindowSteady.Seconds))
	}
	row("submit TPS (admitted)", fmt.Sprintf("%.0f", r.SubmitTPS))
	if r.SigCeilingTPS > 0 {
		row("signature ceiling", fmt.Sprintf("%.0f sig/s on %d cores → committed/ceiling %.1f%%", r.SigCeilingTPS, r.CPUs, 100*r.CeilingRatio))
	}
	d := func(x Dist) string {
		if x.N == 0 {
			return "—"
		}
		return fmt.Sprintf("p50 %8.1f  p90 %8.1f  p99 %8.1f  max %8.1f ms", x.P50, x.P90, x.P99, x.Max)
	}
	row("latency submit→inclusion", d(r.Latency.Inclusion)+fmt.Sprintf("  (p99 = %.2f intervals)", r.P99Intervals))
	row("latency submit→block time", d(r.Latency.BlockTime))
	row("latency submit→ack", d(r.Latency.Ack))
	if r.Load.Rate > 0 {
		row("send lag behind schedule", d(r.Latency.SchedLag))
		row("latency due→inclusion", d(r.Latency.InclusionFromDue))
	}
	if ir := r.Irreversibility; ir.Blocks > 0 {
		row("block time→irreversible", d(r.Latency.Irreversible)+fmt.Sprintf("  (p50 %.2f, p99 %.2f intervals; %d blocks, %d not seen)", ir.P50Intervals, ir.P99Intervals, ir.Blocks, ir.Unseen))
	}
	if pg := r.Propagation; pg != nil {
		row("block propagation (slowest)", d(pg.Max)+fmt.Sprintf("  (p99 = %.1f%% of an interval)", 100*pg.P99OfInterval))
		row("block propagation (each)", d(pg.Each))
		row("blocks produced", fmt.Sprintf("%d: %d reached every node live, %d did not (sync or never; missed per node %v), %d off the chain", pg.Blocks, pg.Live, pg.NotLive, pg.MissedPerNode, pg.OffChain))
		row("handshakes per node", fmt.Sprint(pg.Handshakes))
		if pg.Note != "" {
			row("network", pg.Note)
		}
	}
	if a := r.Admission; a.Bins > 0 {
		row("admitted per 0.5 s", fmt.Sprintf("mean %.0f tx/s, min %.0f, max %.0f: %+.0f%% / %+.0f%% of the mean (%d bins)",
			a.Mean, a.Min, a.Max, 100*(a.Min/a.Mean-1), 100*(a.Max/a.Mean-1), a.Bins))
	}
	if r.NodeCPUSeconds >= 0 {
		what := "node CPU / memory"
		if r.Nodes > 1 {
			what = fmt.Sprintf("%d nodes' CPU / memory", r.Nodes)
		}
		row(what, fmt.Sprintf("%.1f s (%.0f%% of one core over the window), peak RSS %.0f MB", r.NodeCPUSeconds, r.Node.CPUPercent, r.NodeRSSMB))
		for _, u := range r.Node.PerNode {
			row(fmt.Sprintf("  node %d", u.Node), fmt.Sprintf("%.1f s CPU, peak RSS %.0f MB", u.CPUSeconds, u.PeakRSSMB))
		}
	}
	if r.Load.SignLive {
		row("bench CPU", fmt.Sprintf("%.1f s (%.0f%% of one core), of which signing %.1f s (signed live, %d ahead)", r.Node.BenchCPUS, r.Node.BenchCPUPercent, r.Load.SignBusyS, r.Load.SignAhead))
	} else {
		row("bench CPU", fmt.Sprintf("%.1f s", r.Node.BenchCPUS))
	}
	row("node responses", fmt.Sprintf("%.0f MB of receipts to submitters, %.0f MB of heads and blocks to the follower", r.Node.SubmitMB, r.Node.FollowMB))
	if r.Node.SigsPerTx > 0 {
		row("signatures verified per tx", fmt.Sprintf("%.2f", r.Node.SigsPerTx))
	}
	if r.Node.ProduceMsTotal > 0 {
		row("node chain loop", fmt.Sprintf("busy %.0f%% producing; build %.1f µs/tx, store+publish %.1f µs/tx; max block %d tx in %d ms",
			100*r.Node.ChainLoopBusy, r.Node.BuildUSPerTx, r.Node.StoreUSPerTx, r.Node.MaxBlockTxs, r.Node.MaxProduceMs))
		d := r.Node.ProduceMs
		row("block build+store", fmt.Sprintf("p50 %.0f  p99 %.0f  max %.0f ms  (p99 = %.0f%% of an interval; %d blocks)",
			d.P50, d.P99, d.Max, 100*d.P99/float64(max(r.BlockIntervalMs, 1)), d.N))
	}
	if len(r.ErrorTexts) > 0 {
		texts := make([]string, 0, len(r.ErrorTexts))
		for t := range r.ErrorTexts {
			texts = append(texts, t)
		}
		sort.Slice(texts, func(i, j int) bool { return r.ErrorTexts[texts[i]] > r.ErrorTexts[texts[j]] })
		for k, t := range texts {
			if k == 3 {
				break
			}
			row(fmt.Sprintf("error ×%d", r.ErrorTexts[t]), fmt.Sprintf("%.160s", t))
		}
	}
	row("load average", r.Machine.LoadBefore+" → "+r.Machine.LoadAfter)
}
