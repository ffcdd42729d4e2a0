package bench

import (
	"math"
	"slices"
	"time"

	"github.com/emberchain/ember/engine/keys"
)

// txFigures is what a report takes from a run's transactions, however
// they were kept: per transaction (pre-signed) or as counts and samples
// (live).
type txFigures struct {
	acked, included, rejected, transport, skipped, lost, notSent int
	// Since t0; firstSubmit is math.MaxInt64 when nothing was sent.
	firstSubmit, lastSubmit, lastAck, lastSeen int64
	inclusion, blockTime, ack, lag, fromDue    Dist
	// The values behind inclusion, blockTime and ack, sorted, for the
	// CDF chart (a live run's samples).
	inclusionMs, blockTimeMs, ackMs []float64
	admitBins                       []int // acks per admitBin since the first submission
	requestBytes                    int64
}

// presignedFigures reads a pre-signed run's per-transaction arrays.
func presignedFigures(p *plan, sub *submitter, fol *follower, rated bool, t0WallMs float64) txFigures {
	fig := txFigures{firstSubmit: math.MaxInt64, requestBytes: p.bytes}
	var inclusion, blockTime, ack, lag, fromDue []float64
	for i := range p.body {
		st := sub.status[i]
		sent := st != stNotSent && st != stSkipped
		b := fol.blockOf[i]
		if sent {
			fig.firstSubmit = min(fig.firstSubmit, sub.submitNs[i])
			fig.lastSubmit = max(fig.lastSubmit, sub.submitNs[i])
			if rated {
				lag = append(lag, float64(sub.submitNs[i]-sub.schedNs(int32(i)))/1e6)
			}
		}
		if st == stAcked {
			fig.acked++
			fig.lastAck = max(fig.lastAck, sub.ackNs[i])
			ack = append(ack, float64(sub.ackNs[i]-sub.submitNs[i])/1e6)
		}
		if b >= 0 {
			fig.included++
			blk := fol.blocks[b]
			fig.lastSeen = max(fig.lastSeen, blk.SeenNs)
			inclusion = append(inclusion, float64(blk.SeenNs-sub.submitNs[i])/1e6)
			if rated {
				fromDue = append(fromDue, float64(blk.SeenNs-sub.schedNs(int32(i)))/1e6)
			}
			blockTime = append(blockTime, float64(blk.TsMs)-t0WallMs-float64(sub.submitNs[i])/1e6)
			continue
		}
		switch st {
		case stAcked:
			fig.lost++
		case stRejected:
			fig.rejected++
		case stTransport:
			fig.transport++
		case stSkipped:
			fig.skipped++
		case stNotSent:
			fig.notSent++
		}
	}
	fig.inclusion, fig.blockTime, fig.ack = Summarize(inclusion), Summarize(blockTime), Summarize(ack)
	fig.lag, fig.fromDue = Summarize(lag), Summarize(fromDue)
	fig.inclusionMs, fig.blockTimeMs, fig.ackMs = inclusion, blockTime, ack
	if fig.firstSubmit != math.MaxInt64 {
		for i := range p.body {
			if sub.status[i] != stAcked {
				continue
			}
			k := int(time.Duration(sub.ackNs[i]-fig.firstSubmit) / admitBin)
			if k < 0 {
				continue
			}
			for len(fig.admitBins) <= k {
				fig.admitBins = append(fig.admitBins, 0)
			}
			fig.admitBins[k]++
		}
	}
	return fig
}

// figuresOfLive turns a live run's counts and samples into txFigures.
func figuresOfLive(f liveFigures, requestBytes int64) txFigures {
	fig := txFigures{
		acked: f.acked, included: f.included, rejected: f.rejected, transport: f.transport, skipped: f.skipped, lost: f.lost,
		firstSubmit: f.firstSubmit, lastSubmit: f.lastSubmit, lastAck: f.lastAck, lastSeen: f.lastSeen,
		inclusion: f.inclusion.dist(), blockTime: f.blockTime.dist(), ack: f.ack.dist(), lag: f.lag.dist(), fromDue: f.fromDue.dist(),
		admitBins: f.admitBins, requestBytes: requestBytes,
	}
	// dist sorted the samples.
	fig.inclusionMs, fig.blockTimeMs, fig.ackMs = f.inclusion.sample, f.blockTime.sample, f.ack.sample
	return fig
}

// report turns a finished run into its Report. Every figure is defined in
// doc.go; t0 is the clock start (just before the first send).
func (s *Session) report(fig txFigures, scheme keys.Scheme, accounts int, sub *submitter, fol *follower, spec LoadSpec, t0 time.Time) *Report {
	r := &Report{
		Mode: "rpc", Scheme: scheme.String(), BlockIntervalMs: s.info.intervalMs,
		CPUs: s.machine.GOMAXPROCS, Commit: s.opts.Commit, StartedAt: t0.UTC(), Ceiling: s.ceiling,
	}
	if s.ceiling != nil {
		r.SigCeilingTPS = s.ceiling.Ceiling[r.Scheme]
	}
	r.Load.Rate, r.Load.Concurrency, r.Load.Batch = spec.Rate, spec.Concurrency, spec.Batch
	r.Load.Accounts, r.Load.RCLimit = accounts, s.opts.RCLimit
	r.Workload = s.workload
	r.Reverted = int(sub.reverted.Load())
	r.Load.RequestMB = round1(float64(fig.requestBytes) / (1 << 20))
	r.Node.Mode, r.Node.URL, r.Node.Observe = s.opts.Node.Mode, s.url, s.opts.Observe
	r.Nodes = max(len(s.tgts), 1)
	if len(s.tgts) > 0 {
		r.Node.AdminURL = s.tgts[0].admin()
	}
	t0WallMs := float64(t0.UnixNano()) / 1e6
	r.Acked, r.Included, r.Rejected, r.Transport = fig.acked, fig.included, fig.rejected, fig.transport
	r.Skipped, r.Lost, r.NotSent = fig.skipped, fig.lost, fig.notSent
	firstSubmit, lastSubmit, lastAck, lastSeen := fig.firstSubmit, fig.lastSubmit, fig.lastAck, fig.lastSeen
	// Transactions a time-capped closed loop never offered are not part
	// of the run.
	r.Txs = r.Included + r.Rejected + r.Transport + r.Skipped + r.Lost
	r.Errors = r.Txs - r.Included
	r.Retries = sub.retries.Load()
	sub.mu.Lock()
	if len(sub.errors) > 0 {
		r.ErrorTexts = sub.errors
	}
	sub.mu.Unlock()
	if firstSubmit == math.MaxInt64 {
		firstSubmit = 0
	}

	// Full window: first submission → the last inclusion seen.
	r.WindowFull = Window{StartMs: 0, EndMs: float64(lastSeen-firstSubmit) / 1e6, Txs: r.Included}
	r.WindowFull.Seconds = round3(r.WindowFull.EndMs / 1000)
	r.WindowFull.TPS = rate(r.Included, time.Duration(lastSeen-firstSubmit))
	r.CommittedTPS = r.WindowFull.TPS
	r.SubmitTPS = rate(r.Acked, time.Duration(lastAck-firstSubmit))

	// Steady window, from block timestamps.
	points := make([]blockPoint, len(fol.blocks))
	for k, b := range fol.blocks {
		points[k] = blockPoint{tsMs: b.TsMs, txs: b.Bench}
		r.WindowFull.Blocks += btoi(b.Bench > 0)
	}
	firstWall := int64(t0WallMs + float64(firstSubmit)/1e6)
	lastWall := int64(t0WallMs + float64(lastSubmit)/1e6)
	warm := s.opts.Warmup
	if warm == 0 {
		warm = max(2*time.Duration(s.info.intervalMs)*time.Millisecond, time.Duration(lastSubmit-firstSubmit)/10)
	}
	r.WindowSteady = steadyWindow(points, firstWall, lastWall, warm.Milliseconds())
	r.SteadyTPS = r.WindowSteady.TPS
	if r.SigCeilingTPS > 0 {
		r.CeilingRatio = round3(r.CommittedTPS / r.SigCeilingTPS)
	}

	r.Latency.Inclusion, r.Latency.BlockTime, r.Latency.Ack = fig.inclusion, fig.blockTime, fig.ack
	r.Latency.SchedLag, r.Latency.InclusionFromDue = fig.lag, fig.fromDue
	d := r.Latency.Inclusion
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = round3(d.P50), round3(d.P90), round3(d.P99), round3(d.Max)
	if s.info.intervalMs > 0 {
		r.P99Intervals = round3(d.P99 / float64(s.info.intervalMs))
		r.P50Intervals = round3(d.P50 / float64(s.info.intervalMs))
	}

	// Irreversibility: every block from the first after the clock started
	// to the last holding a run transaction.
	last := -1
	for k, b := range fol.blocks {
		if b.Bench > 0 {
			last = k
		}
	}
	var irr []float64
	for _, b := range fol.blocks[:last+1] {
		r.Irreversibility.Blocks++
		at, ok := fol.irreversibleAt(b.Height)
		if !ok {
			r.Irreversibility.Unseen++
			continue
		}
		irr = append(irr, t0WallMs+float64(at)/1e6-float64(b.TsMs))
	}
	r.Latency.Irreversible = Summarize(irr)
	if s.info.intervalMs > 0 && len(irr) > 0 {
		r.Irreversibility.P50Intervals = round3(r.Latency.Irreversible.P50 / float64(s.info.intervalMs))
		r.Irreversibility.P99Intervals = round3(r.Latency.Irreversible.P99 / float64(s.info.intervalMs))
	}

	// Blocks, and the node's own account of producing them.
	r.Node.BlocksSeen, r.Node.Reorgs, r.Node.Polls = len(fol.blocks), fol.reorgs, int(fol.polls.Load())
	r.Node.FollowMB = round1(float64(fol.bytes.Load()) / (1 << 20))
	r.Node.SubmitMB = round1(float64(sub.respBytes.Load()) / (1 << 20))
	var buildMs, produceMs int64
	var nodeTxs int
	var perBlock []float64
	for _, b := range fol.blocks {
		r.Node.MaxBlockTxs = max(r.Node.MaxBlockTxs, b.Txs)
		if b.Bench == 0 {
			continue
		}
		r.Node.BlocksWithTxs++
		if nb, ok := s.nodeBlock(b.Height); ok {
			buildMs += nb.BuildMs
			produceMs += nb.TotalMs
			nodeTxs += nb.Txs
			r.Node.MaxProduceMs = max(r.Node.MaxProduceMs, nb.TotalMs)
			perBlock = append(perBlock, float64(nb.TotalMs))
			r.Node.MaxPending = max(r.Node.MaxPending, nb.Pending)
		}
	}
	r.Node.BuildMsTotal, r.Node.ProduceMsTotal = buildMs, produceMs
	r.Node.ProduceMs = Summarize(perBlock)
	if produceMs > 0 && r.WindowFull.EndMs > 0 {
		r.Node.ChainLoopBusy = round3(float64(produceMs) / r.WindowFull.EndMs)
	}
	if nodeTxs > 0 {
		r.Node.BuildUSPerTx = round1(float64(buildMs) * 1000 / float64(nodeTxs))
		r.Node.StoreUSPerTx = round1(float64(produceMs-buildMs) * 1000 / float64(nodeTxs))
	}

	r.Series = series(fol, firstWall, fig)
	r.Admission = evenness(r.Series.SubmitY, int(warm/admitBin))
	r.samples = &samplesWriter{p: sub.p, sub: sub, fol: fol, t0WallMs: t0WallMs, rated: spec.Rate > 0}
	return r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// admitBin is the width of the admitted-rate bins (Series.SubmitY).
const admitBin = 500 * time.Millisecond

// Evenness summarizes a rate sampled in equal bins.
type Evenness struct {
	Bins int     `json:"bins"`
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	// Spread is the largest distance of a bin from the mean, as a share
	// of the mean (issue 17's goal: at most 0.25 at saturation).
	Spread float64 `json:"spread"`
}

// evenness summarizes rates (one per bin), leaving out the first skip bins
// (the warm-up) and the last one (the submission ended inside it).
func evenness(rates []float64, skip int) Evenness {
	if len(rates) < skip+2 {
		return Evenness{}
	}
	rates = rates[skip : len(rates)-1]
	e := Evenness{Bins: len(rates), Min: rates[0], Max: rates[0]}
	for _, v := range rates {
		e.Mean += v
		e.Min, e.Max = min(e.Min, v), max(e.Max, v)
	}
	e.Mean /= float64(len(rates))
	if e.Mean > 0 {
		e.Spread = round3(max(e.Mean-e.Min, e.Max-e.Mean) / e.Mean)
	}
	e.Mean, e.Min, e.Max = math.Round(e.Mean), math.Round(e.Min), math.Round(e.Max)
	return e
}

// series builds the chart's time series: committed TPS per block from
// block timestamps, and admitted TPS in half-second bins.
func series(fol *follower, firstWallMs int64, fig txFigures) *Series {
	s := &Series{Inclusion: fig.inclusionMs, BlockTime: fig.blockTimeMs, Ack: fig.ackMs}
	var prevTs int64
	for k, b := range fol.blocks {
		if k > 0 && b.TsMs > prevTs && b.TsMs >= firstWallMs {
			s.BlockX = append(s.BlockX, float64(b.TsMs-firstWallMs)/1000)
			s.BlockY = append(s.BlockY, float64(b.Bench)*1000/float64(b.TsMs-prevTs))
		}
		prevTs = b.TsMs
	}
	const bin = admitBin
	for k, n := range fig.admitBins {
		s.SubmitX = append(s.SubmitX, (float64(k)+0.5)*bin.Seconds())
		s.SubmitY = append(s.SubmitY, float64(n)/bin.Seconds())
	}
	// Summarize sorted the latency slices in place; keep them sorted for
	// the CDF (they are sorted already, this only guards the invariant).
	for _, v := range [][]float64{s.Inclusion, s.BlockTime, s.Ack} {
		if !slices.IsSorted(v) {
			slices.Sort(v)
		}
	}
	return s
}
