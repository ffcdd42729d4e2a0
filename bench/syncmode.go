package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/store"
)

// SyncOptions configure the sync mode (`ember bench sync`): the
// single-node closed-loop yardstick, then a source chain of Blocks blocks
// of BlockTxs transfers built in-process, served by a child node to a
// fresh follower that syncs it over p2p.
type SyncOptions struct {
	Scheme   keys.Scheme // default secp256k1
	Blocks   int         // default 10,000
	BlockTxs int         // default 500
	// Txs and Saturation size the yardstick's closed-loop run (defaults
	// DefaultSuiteTxs and 12 s); Concurrency and Batch shape it.
	Txs                int
	Saturation         time.Duration
	Concurrency, Batch int
	// Poll is how often the follower's head is read (default 20 ms).
	Poll time.Duration
	// Timeout bounds the sync (default 30 min).
	Timeout time.Duration
	// FollowerProfile, when set with child nodes, receives the follower's
	// CPU profile over ProfileTime (default 30 s) from the handshake on,
	// from its admin listener's /debug/pprof/profile.
	FollowerProfile io.Writer
	ProfileTime     time.Duration
	// Base configures the yardstick's session and the nodes (mode,
	// binary, accounts, seed, interval, data directories); its Scheme and
	// Nodes are ignored.
	Base     Options
	Out      string
	Progress io.Writer
	Log      io.Writer
}

// SyncResult is the sync mode's report. Figures are defined in doc.go.
type SyncResult struct {
	Scheme   string `json:"scheme"`
	Blocks   int    `json:"blocks"`
	BlockTxs int    `json:"block_txs"`
	Txs      int    `json:"txs"`
	Accounts int    `json:"accounts"`

	SingleCommittedTPS float64 `json:"single_committed_tps"`
	SingleSteadyTPS    float64 `json:"single_steady_tps"`
	// Errors of the single-node run (the sync itself either completes or
	// fails the mode).
	Errors int `json:"errors"`

	// BuildSeconds: signing, verifying and building the source chain in
	// this process (not timed against anything).
	BuildSeconds float64 `json:"build_s"`
	// BlockBytes is the source blocks' protobuf size, summed.
	BlockBytes int64 `json:"block_bytes"`

	// Seconds: the follower's first handshake → its head equals the
	// source's; StartSeconds: from the follower's process start.
	Seconds      float64 `json:"seconds"`
	StartSeconds float64 `json:"start_seconds"`
	BlocksPerSec float64 `json:"blocks_per_s"`
	TxPerSec     float64 `json:"tx_per_s"`
	// Ratio is TxPerSec / SingleCommittedTPS.
	Ratio float64 `json:"ratio"`

	// WireBytes: TCP payload the source sent the follower (the kernel's
	// bytes_sent of their connections, read with ss); -1 when unknown.
	WireBytes  int64   `json:"wire_bytes"`
	WireSource string  `json:"wire_source"`
	WireRatio  float64 `json:"wire_over_block_bytes"`

	// CPU over Seconds, from /proc (-1 in process); per transaction of
	// the follower in µs.
	// MachineBusy is the share of all cores busy over Seconds, whatever
	// process used them (this machine is shared).
	MachineBusy      float64 `json:"machine_busy"`
	FollowerCPUSecs  float64 `json:"follower_cpu_s"`
	SourceCPUSecs    float64 `json:"source_cpu_s"`
	FollowerCPUUSTx  float64 `json:"follower_cpu_us_per_tx"`
	FollowerPeakRSS  float64 `json:"follower_peak_rss_mb"`
	SourcePeakRSS    float64 `json:"source_peak_rss_mb"`
	SyncRounds       int     `json:"sync_rounds"`
	SyncRoundBlocks  int     `json:"sync_round_blocks"`
	ProducerDisabled bool    `json:"source_producer_disabled"`

	Checks  []Check `json:"checks"`
	CPUs    int     `json:"cpus"`
	Commit  string  `json:"commit"`
	Machine Machine `json:"machine"`
	Total   float64 `json:"total_s"`
}

func (o *SyncOptions) ensureDefaults() {
	if o.Scheme == keys.SchemeUnknown {
		o.Scheme = keys.SchemeSecp256k1
	}
	if o.Blocks == 0 {
		o.Blocks = 10_000
	}
	if o.BlockTxs == 0 {
		o.BlockTxs = 500
	}
	if o.Txs == 0 {
		o.Txs = DefaultSuiteTxs[o.Scheme]
	}
	if o.Saturation == 0 {
		o.Saturation = 12 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.Poll == 0 {
		o.Poll = 20 * time.Millisecond
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.ProfileTime == 0 {
		o.ProfileTime = 30 * time.Second
	}
	if o.Base.BlockInterval == 0 {
		o.Base.BlockInterval = time.Second
	}
	if o.Base.Seed == "" {
		o.Base.Seed = DefaultSeed
	}
	if o.Base.Accounts == 0 {
		o.Base.Accounts = DefaultAccounts
	}
	if o.Base.Node.Mode == "" {
		o.Base.Node.Mode = NodeProcess
	}
}

// RunSync runs the sync mode, writing its outputs under o.Out.
func RunSync(ctx context.Context, o SyncOptions) (*SyncResult, error) {
	o.ensureDefaults()
	switch {
	case o.Out == "":
		return nil, errors.New("bench: the sync mode needs an output directory")
	case o.Blocks < 1 || o.BlockTxs < 1 || o.BlockTxs > genesis.DefaultMaxBlockTxs:
		return nil, fmt.Errorf("bench: --blocks must be at least 1 and --block-txs between 1 and %d", genesis.DefaultMaxBlockTxs)
	case int64(o.Blocks)*int64(o.BlockTxs) > 1<<31-1:
		return nil, errors.New("bench: --blocks × --block-txs is too large")
	case o.Base.Node.Mode == NodeExternal || o.Base.Node.URL != "":
		return nil, errors.New("bench: the sync mode starts its own nodes; it cannot use one given by --rpc")
	case nativeOnly("sync", o.Base.Workload) != nil:
		return nil, nativeOnly("sync", o.Base.Workload)
	case o.FollowerProfile != nil && o.Base.Node.Mode != NodeProcess:
		return nil, errors.New("bench: a follower profile needs child nodes (--node process)")
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	start := time.Now()
	res := &SyncResult{Scheme: o.Scheme.String(), Blocks: o.Blocks, BlockTxs: o.BlockTxs, Txs: o.Blocks * o.BlockTxs, Accounts: o.Base.Accounts,
		CPUs: runtime.GOMAXPROCS(0), Commit: o.Base.Commit, Machine: thisMachine(), WireBytes: -1, ProducerDisabled: true}
	res.Machine.Secp256k1 = keys.Secp256k1Implementation()

	base := o.Base
	base.Progress = o.Progress
	single, err := yardstick(ctx, base, o.Scheme, o.Txs, o.Saturation, o.Concurrency, o.Batch, o.Out, nil, o.Log)
	if err != nil {
		return nil, err
	}
	res.SingleCommittedTPS, res.SingleSteadyTPS, res.Errors = single.CommittedTPS, single.SteadyTPS, single.Errors

	// The source chain, built in this process into the source node's
	// data directory. Its genesis is far enough in the past that every
	// block's slot is before now.
	ks, err := DeriveKeys(o.Scheme, o.Base.Seed, o.Base.Accounts)
	if err != nil {
		return nil, err
	}
	prod := ProducerKey(o.Base.Seed)
	g, err := DevGenesis(prod, ks, o.Base.BlockInterval, time.Now().Add(-time.Duration(o.Blocks+10)*o.Base.BlockInterval))
	if err != nil {
		return nil, err
	}
	srcDir, err := os.MkdirTemp(o.Base.Node.Dir, "ember-bench-source-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	keepSrc := false
	defer func() {
		if !keepSrc && !o.Base.Node.Keep {
			os.RemoveAll(srcDir)
		}
	}()
	buildStart := time.Now()
	if res.BlockBytes, err = buildSourceChain(ctx, srcDir, g, prod, ks, o.Blocks, o.BlockTxs, o.Progress); err != nil {
		return nil, err
	}
	res.BuildSeconds = round3(time.Since(buildStart).Seconds())

	// Source and follower.
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	ids, addrs, err := p2pIdentities(ports)
	if err != nil {
		return nil, err
	}
	lim := nodeLimits{maxTxs: 1, accounts: len(ks), batch: 1, responseBytes: 1 << 30}
	nodeOpts := o.Base.Node
	logPath := func(name string) string {
		if nodeOpts.Mode == NodeProcess {
			return filepath.Join(o.Out, name+".log")
		}
		return ""
	}
	src, err := startNode(ctx, nodeOpts, nodeSpec{name: "the source", genesis: g, dir: srcDir, identity: ids[0], p2pPort: ports[0], lim: lim, logPath: logPath("source")})
	if err != nil {
		return nil, err
	}
	keepSrc = true // the target removes it now
	defer src.close()
	srcConn, err := newConn(src.rpcURL(), 4)
	if err != nil {
		return nil, err
	}
	defer srcConn.close()
	var parser fastjson.Parser
	want, err := readHead(srcConn, &parser, nil)
	if err != nil {
		return nil, err
	}
	if want.height != uint64(o.Blocks) {
		return nil, fmt.Errorf("bench: the source node's head is %d, not the %d blocks built", want.height, o.Blocks)
	}
	folOpts := nodeOpts
	folOpts.Pprof = nodeOpts.Pprof || o.FollowerProfile != nil
	fol, err := startNode(ctx, folOpts, nodeSpec{name: "the follower", genesis: g, identity: ids[1], p2pPort: ports[1], peers: []string{addrs[0]}, lim: lim, logPath: logPath("follower")})
	if err != nil {
		return nil, err
	}
	defer fol.close()
	folConn, err := newConn(fol.rpcURL(), 4)
	if err != nil {
		return nil, err
	}
	defer folConn.close()

	pr := newProgress(o.Progress, "sync "+o.Scheme.String())
	var head atomic.Int64
	syncStart := time.Now()
	pr.loop(func(bool) string {
		h := head.Load()
		return fmt.Sprintf("%sfollower %s %d/%d blocks  %.0f blocks/s", pr.prefix(), bar(h, int64(o.Blocks), 20), h, o.Blocks, float64(h)/time.Since(syncStart).Seconds())
	})
	var (
		handshake  time.Time
		fol0, src0 procStats
		cpuTotal0  uint64
		cpuBusy0   uint64
		procOK     bool
		prof       chan error
		caughtUp   time.Time
		deadline   = time.Now().Add(o.Timeout)
		tick       = time.NewTicker(o.Poll)
		errSync    error
		pollParser fastjson.Parser
		shook      bool
	)
	defer tick.Stop()
	for caughtUp.IsZero() && errSync == nil {
		if !shook {
			if n, first := fol.peerCount(); n > 0 {
				shook, handshake = true, first
				f0, ok1 := fol.stats()
				s0, ok2 := src.stats()
				fol0, src0, procOK = f0, s0, ok1 && ok2
				cpuTotal0, cpuBusy0, _ = cpuTimes()
				if o.FollowerProfile != nil {
					prof = fetchProfile(ctx, fol.admin(), o.ProfileTime, o.FollowerProfile)
				}
			}
		}
		hi, err := readHead(folConn, &pollParser, nil)
		switch {
		case err != nil:
			errSync = err
		case hi.height >= want.height && hi.id == want.id:
			caughtUp = time.Now()
		default:
			head.Store(int64(hi.height))
			if err := errors.Join(fol.alive(), src.alive()); err != nil {
				errSync = err
			} else if time.Now().After(deadline) {
				errSync = fmt.Errorf("bench: the follower reached %d of %d blocks in %v", hi.height, want.height, o.Timeout)
			}
		}
		if caughtUp.IsZero() && errSync == nil {
			select {
			case <-ctx.Done():
				errSync = ctx.Err()
			case <-tick.C:
			}
		}
	}
	head.Store(int64(o.Blocks))
	pr.stop()
	if errSync != nil {
		return nil, errSync
	}
	fol1, ok1 := fol.stats()
	src1, ok2 := src.stats()
	res.MachineBusy = -1
	if cpuTotal1, cpuBusy1, ok := cpuTimes(); ok && cpuTotal0 > 0 {
		res.MachineBusy = machineBusy(cpuTotal0, cpuBusy0, cpuTotal1, cpuBusy1)
	}
	res.WireBytes, res.WireSource = wireBytes(ports[0], ports[1])
	if res.WireBytes >= 0 && res.BlockBytes > 0 {
		res.WireRatio = round3(float64(res.WireBytes) / float64(res.BlockBytes))
	}
	if prof != nil {
		if err := <-prof; err != nil {
			return nil, err
		}
	}
	if handshake.IsZero() || handshake.After(caughtUp) {
		handshake = fol.started
	}
	res.Seconds = round3(caughtUp.Sub(handshake).Seconds())
	res.StartSeconds = round3(caughtUp.Sub(fol.started).Seconds())
	if res.Seconds > 0 {
		res.BlocksPerSec = round1(float64(o.Blocks) / res.Seconds)
		res.TxPerSec = round1(float64(res.Txs) / res.Seconds)
	}
	if res.SingleCommittedTPS > 0 {
		res.Ratio = round3(res.TxPerSec / res.SingleCommittedTPS)
	}
	res.FollowerCPUSecs, res.SourceCPUSecs, res.FollowerCPUUSTx, res.FollowerPeakRSS, res.SourcePeakRSS = -1, -1, -1, -1, -1
	if procOK && ok1 && ok2 {
		res.FollowerCPUSecs = round3(fol1.CPUSeconds - fol0.CPUSeconds)
		res.SourceCPUSecs = round3(src1.CPUSeconds - src0.CPUSeconds)
		res.FollowerCPUUSTx = round3(res.FollowerCPUSecs * 1e6 / float64(res.Txs))
		res.FollowerPeakRSS, res.SourcePeakRSS = fol1.PeakRSSMB, src1.PeakRSSMB
	}
	if err := closeTargets([]*target{fol, src}); err != nil {
		return nil, err
	}
	for _, r := range fol.syncRounds() {
		res.SyncRounds++
		res.SyncRoundBlocks += r.applied
	}
	res.Checks = []Check{
		{Name: "sync tx/s / single-node committed TPS", Op: "≥", Want: TargetSyncRatio, Got: res.Ratio, OK: res.Ratio >= TargetSyncRatio},
		{Name: "errors", Op: "=", Want: 0, Got: float64(res.Errors), OK: res.Errors == 0},
	}
	res.Machine.LoadAfter = loadAverage()
	res.Total = round1(time.Since(start).Seconds())
	if err := writeSummary(o.Out, "sync.json", res, res.Table); err != nil {
		return nil, err
	}
	return res, nil
}

// buildSourceChain writes a chain of blocks × blockTxs transfers into
// dir/data/store (where `ember node --datadir dir` finds it): the
// engine's transfers, signed on every core and verified through a
// sigverify pool a chunk ahead, while this goroutine builds, signs,
// commits and stores each block as a producer does (unsynced; the store is
// closed cleanly, after a state checkpoint). It returns the blocks'
// protobuf bytes.
func buildSourceChain(ctx context.Context, dir string, g *genesis.Genesis, prod keys.Signer, ks []keys.Signer, blocks, blockTxs int, progress io.Writer) (int64, error) {
	st, err := store.Open(filepath.Join(dir, "data", "store"), store.Options{NoSync: true})
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	c, r, err := chain.Open(chain.Config{Genesis: g, Storage: st})
	if err == nil {
		err = st.Commit(r)
	}
	if err != nil {
		st.Close()
		return 0, fmt.Errorf("bench: %w", err)
	}
	c.Advance(r)
	e := &engineChain{c: c, st: st}
	pool, err := sigverify.NewPool(sigverify.PoolConfig{Limits: c.Limits(), CacheSize: -1})
	if err != nil {
		st.Close()
		return 0, fmt.Errorf("bench: %w", err)
	}
	defer pool.Close()

	var signed, built atomic.Int64
	pr := newProgress(progress, "source chain")
	startAt := time.Now()
	pr.loop(func(bool) string {
		b := built.Load()
		return fmt.Sprintf("%s%s built %d/%d blocks, signed %d/%d transfers  %.0f tx/s", pr.prefix(), bar(b, int64(blocks), 20), b, blocks,
			signed.Load(), blocks*blockTxs, float64(b)*float64(blockTxs)/time.Since(startAt).Seconds())
	})
	defer pr.stop()

	type chunk struct {
		from int // first block
		vtxs []*sigverify.VerifiedTx
		err  error
	}
	per := max(1, 16384/blockTxs) // blocks per chunk: about 16k transfers
	chunks := make(chan chunk, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(chunks)
		for from := 0; from < blocks; from += per {
			n := min(per, blocks-from)
			vtxs, err := signTransfers(cctx, ks, g, transferTarget{token: g.TokenID(), rcLimit: DefaultRCLimit}, from*blockTxs, n*blockTxs, pool, &signed)
			select {
			case chunks <- chunk{from: from, vtxs: vtxs, err: err}:
			case <-cctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var total int64
	fail := func(err error) (int64, error) {
		cancel()
		for range chunks {
		}
		st.Close()
		return 0, err
	}
	for ck := range chunks {
		if ck.err != nil {
			return fail(ck.err)
		}
		for b := 0; b*blockTxs < len(ck.vtxs); b++ {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			_, blk, _, err := produceOne(e, prod, uint64(ck.from+b+1), ck.vtxs[b*blockTxs:(b+1)*blockTxs])
			if err != nil {
				return fail(err)
			}
			total += int64(blk.SizeVT())
			built.Add(1)
		}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	cr, err := c.Checkpoint()
	if err == nil {
		err = st.Commit(cr)
	}
	if err != nil {
		return fail(fmt.Errorf("bench: checkpoint: %w", err))
	}
	c.Advance(cr)
	if err := st.Close(); err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return total, nil
}

// fetchProfile asks an admin listener for a CPU profile of d and writes it
// to w; the channel reports when it is written.
func fetchProfile(ctx context.Context, admin string, d time.Duration, w io.Writer) chan error {
	done := make(chan error, 1)
	go func() {
		if admin == "" {
			done <- errors.New("bench: the node has no admin listener for a profile")
			return
		}
		url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, int(math.Ceil(d.Seconds())))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- fmt.Errorf("bench: profile: %w", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fmt.Errorf("bench: profile: %w", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("bench: profile: %s answered %s (is admin.pprof on?)", url, resp.Status)
			return
		}
		if _, err := io.Copy(w, resp.Body); err != nil {
			done <- fmt.Errorf("bench: profile: %w", err)
			return
		}
		done <- nil
	}()
	return done
}

var bytesSentRE = regexp.MustCompile(`bytes_sent:(\d+)`)

// wireBytes is the TCP payload the node listening on srcPort sent the one
// listening on folPort: the kernel's bytes_sent (tcp_info) of the source's
// sockets of those connections — accepted on srcPort, or dialled to
// folPort — read with ss(8) while they are open. -1 when ss is missing or
// fails; the second result names the source of the figure.
func wireBytes(srcPort, folPort int) (int64, string) {
	path, err := exec.LookPath("ss")
	if err != nil {
		return -1, "unknown: ss(8) not found"
	}
	filter := fmt.Sprintf("( sport = :%d or dport = :%d )", srcPort, folPort)
	out, err := exec.Command(path, "-tinH", "state", "established", filter).Output()
	if err != nil {
		return -1, "unknown: ss failed: " + err.Error()
	}
	var n int64
	for _, m := range bytesSentRE.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		n += v
	}
	return n, "ss -ti bytes_sent of the source's sockets to the follower"
}

// Table writes the sync mode's summary.
func (r *SyncResult) Table(w io.Writer) {
	fmt.Fprintf(w, "\nember bench sync — %s, %d blocks × %d transfers (%d), %d CPUs (%s), commit %s, load %s → %s, %.0f s in all\n",
		r.Scheme, r.Blocks, r.BlockTxs, r.Txs, r.CPUs, r.Machine.Model, r.Commit, r.Machine.LoadBefore, r.Machine.LoadAfter, r.Total)
	row := func(k, v string) { fmt.Fprintf(w, "  %-34s %s\n", k, v) }
	row("single node, committed (steady)", fmt.Sprintf("%.0f tx/s (%s), %d errors", r.SingleCommittedTPS, orDash(r.SingleSteadyTPS), r.Errors))
	row("source chain built", fmt.Sprintf("in %.1f s (signed, verified, applied, stored; producer disabled on the source node)", r.BuildSeconds))
	row("sync (handshake → caught up)", fmt.Sprintf("%.2f s (%.2f s from the follower's start): %.0f blocks/s, %.0f tx/s; ratio to single node %.2f",
		r.Seconds, r.StartSeconds, r.BlocksPerSec, r.TxPerSec, r.Ratio))
	wire := "unknown (" + r.WireSource + ")"
	if r.WireBytes >= 0 {
		wire = fmt.Sprintf("%.1f MB (%.2f of the blocks' size)", float64(r.WireBytes)/(1<<20), r.WireRatio)
	}
	row("bytes on the wire", fmt.Sprintf("%s; blocks %.1f MB as protobuf", wire, float64(r.BlockBytes)/(1<<20)))
	if r.FollowerCPUSecs >= 0 {
		row("CPU follower / source", fmt.Sprintf("%.1f s / %.1f s (follower %.1f µs per transaction); peak RSS %.0f / %.0f MB",
			r.FollowerCPUSecs, r.SourceCPUSecs, r.FollowerCPUUSTx, r.FollowerPeakRSS, r.SourcePeakRSS))
	}
	if r.MachineBusy >= 0 {
		row("machine busy over the sync", fmt.Sprintf("%.0f%% of %d cores (every process)", 100*r.MachineBusy, r.CPUs))
	}
	row("sync rounds logged", fmt.Sprintf("%d (%d blocks)", r.SyncRounds, r.SyncRoundBlocks))
	writeChecks(w, r.Checks)
}
