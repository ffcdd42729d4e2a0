package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emberchain/ember/bench"
	"github.com/emberchain/ember/engine/keys"
)

const benchUsage = `Usage: ember bench MODE [flags]

Modes:
  rpc      end to end through JSON-RPC: pre-signed transfers (signed while
           sending with --sign-live, or above a million), submitted by
           --concurrency workers (closed loop) or at --rate tx/s, followed
           into blocks; committed TPS, latency to inclusion, node CPU/RSS
  soak     rpc at a fixed rate for --duration (default half of a closed-loop
           probe's committed TPS), signed live, with the node's memory
           sampled: pass is zero errors and a flat RSS curve (make soak)
  sweep    rpc at rising rates until the node stops keeping up; one report
           per step and the saturation rate
  engine   the engine and store alone, in this process, on pre-verified
           blocks: the ceiling of everything after signature checks
  verify   signature verification per second, both schemes, 1 core and
           all cores: the machine's ceiling
  suite    the standard scenario (make bench): verify, then per scheme a
           saturating closed-loop run and a run at half that rate
  net      a network of --nodes producers on loopback against one node:
           committed TPS against single/N, latency at half rate, block
           propagation between the nodes, time to irreversibility
  sync     a fresh node syncing a chain of --blocks blocks from another
           over p2p: blocks/s and tx/s against one node's committed TPS
  init     create a data directory whose genesis funds the bench accounts,
           for runs against a node started by hand (--rpc URL --keys DIR)

The transfers move the native token, or with --workload wasm-token --contract
FILE (rpc, sweep, soak, engine) a KCS-1 token contract deployed and minted to
every account before the clock starts (make token-wasm writes bin/token.wasm).

By default the bench starts its own throwaway node (this executable, "ember
node") on a temporary data directory. Results go to bench-results/<time>/:
report.json, samples.csv (one line per transaction), blocks.csv, chart.png,
summary.txt. Run "ember bench MODE -h" for a mode's flags.
`

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, benchUsage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := benchMode(ctx, args, stdout, stderr)
	if err != nil && strings.HasPrefix(err.Error(), "bench: ") {
		// run prints "ember bench: " already.
		err = trimmedError{err}
	}
	return err
}

// trimmedError drops the package prefix that run's own prefix repeats.
type trimmedError struct{ error }

func (e trimmedError) Error() string { return strings.TrimPrefix(e.error.Error(), "bench: ") }
func (e trimmedError) Unwrap() error { return e.error }

func benchMode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch args[0] {
	case "rpc":
		return benchRPC(ctx, args[1:], stdout, stderr)
	case "sweep":
		return benchSweep(ctx, args[1:], stdout, stderr)
	case "soak":
		return benchSoak(ctx, args[1:], stdout, stderr)
	case "engine":
		return benchEngine(ctx, args[1:], stdout, stderr)
	case "verify":
		return benchVerify(ctx, args[1:], stdout, stderr)
	case "suite":
		return benchSuite(ctx, args[1:], stdout, stderr)
	case "net":
		return benchNet(ctx, args[1:], stdout, stderr)
	case "sync":
		return benchSync(ctx, args[1:], stdout, stderr)
	case "init":
		return benchInit(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "ember bench: unknown mode %q\n\n%s", args[0], benchUsage)
	return errUsage
}

// benchFlags are the flags of the modes that load a node over JSON-RPC.
type benchFlags struct {
	scheme, seed, nodeMode, nodeBinary, rpcURL, keysDir, out, nodeDir, observe string
	workload, contract                                                         string
	accounts, concurrency, batch                                               int
	interval, poll, drain, warmup, ceiling                                     time.Duration
	keep, noProgress, pprof                                                    bool
	nodeSet                                                                    setFlags
}

func addBenchFlags(fs *flag.FlagSet) *benchFlags {
	b := &benchFlags{nodeSet: setFlags{}}
	fs.StringVar(&b.scheme, "scheme", "secp256k1", "signature scheme: secp256k1 (Koinos/koilib) or ed25519 (fast lane)")
	fs.IntVar(&b.accounts, "accounts", bench.DefaultAccounts, "funded accounts sending transfers (keys derived from --seed)")
	fs.StringVar(&b.seed, "seed", bench.DefaultSeed, "seed the account keys are derived from")
	fs.IntVar(&b.concurrency, "concurrency", bench.DefaultConcurrency, "workers, each with one request in flight over a keep-alive connection")
	fs.IntVar(&b.batch, "batch", bench.DefaultBatch, "transactions per JSON-RPC batch (1: one request per transaction)")
	fs.DurationVar(&b.interval, "block-interval", time.Second, "block interval of the bench's own chain")
	fs.DurationVar(&b.poll, "poll", bench.DefaultPoll, "how often the head is polled to see new blocks")
	fs.StringVar(&b.observe, "observe", bench.ObserveLive, "when block bodies are read: live (as they appear; the node serves them under load) or deferred (after the last submission)")
	fs.DurationVar(&b.drain, "drain", 0, "stop waiting for inclusions after this long without one (default max(5s, 10 block intervals))")
	fs.DurationVar(&b.warmup, "warmup", 0, "ramp-up left out of the steady-state window (default max(2 intervals, 10% of the submit time))")
	fs.DurationVar(&b.ceiling, "ceiling-time", time.Second, "time per signature-ceiling figure measured before the run (0: skip)")
	fs.StringVar(&b.nodeMode, "node", bench.NodeProcess, "node to load: process (a child 'ember node'), in-process, or external (with --rpc)")
	fs.StringVar(&b.nodeBinary, "node-binary", "", "ember executable for --node process (default: this one)")
	fs.Var(b.nodeSet, "node-set", "extra node configuration key for the bench's node: --node-set section.key=value (repeatable)")
	fs.StringVar(&b.nodeDir, "node-dir", "", "where the node's throwaway data directory is made (default: the temp directory)")
	fs.BoolVar(&b.keep, "keep-node", false, "keep the node's data directory after the run")
	fs.BoolVar(&b.pprof, "node-pprof", false, "serve pprof on the child node's admin listener (its address is in node.log)")
	fs.StringVar(&b.rpcURL, "rpc", "", "JSON-RPC URL of an existing node to load instead of starting one (needs --keys)")
	fs.StringVar(&b.keysDir, "keys", "", "directory of funded *.key files for --rpc (see ember bench init)")
	fs.StringVar(&b.out, "out", "", "output directory (default bench-results/<UTC time>)")
	fs.BoolVar(&b.noProgress, "no-progress", false, "no progress bar on stderr")
	addWorkloadFlags(fs, &b.workload, &b.contract)
	return b
}

// addWorkloadFlags are the flags choosing what the transfers move.
func addWorkloadFlags(fs *flag.FlagSet, workload, contract *string) {
	fs.StringVar(workload, "workload", bench.WorkloadNative, "what each transfer moves: native (the chain's token) or wasm-token (a KCS-1 token contract, --contract, deployed and minted to every account before the clock)")
	fs.StringVar(contract, "contract", "", "with --workload wasm-token: the token contract's wasm file (make token-wasm writes bin/token.wasm)")
}

// readContract reads the --contract file of a wasm-token run. Whether it
// is a contract the chain takes is the chain's to say: its refusal of the
// upload is reported as is.
func readContract(workload, path string) ([]byte, error) {
	if path == "" {
		return nil, nil // bench says whether the workload needs one
	}
	if workload != bench.WorkloadWasmToken {
		return nil, fmt.Errorf("--contract is only for --workload %s", bench.WorkloadWasmToken)
	}
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--contract: %w", err)
	}
	if len(code) == 0 {
		return nil, fmt.Errorf("--contract: %s is empty", path)
	}
	return code, nil
}

func (b *benchFlags) options(stderr io.Writer) (bench.Options, error) {
	// Zero means "default" in the library; on the command line it is a
	// mistake, so refuse it here rather than run something else.
	switch {
	case b.accounts < 1:
		return bench.Options{}, fmt.Errorf("--accounts must be at least 1, got %d", b.accounts)
	case b.concurrency < 1:
		return bench.Options{}, fmt.Errorf("--concurrency must be at least 1, got %d", b.concurrency)
	case b.batch < 1:
		return bench.Options{}, fmt.Errorf("--batch must be at least 1, got %d", b.batch)
	case b.poll < time.Millisecond:
		return bench.Options{}, fmt.Errorf("--poll must be at least 1ms, got %v", b.poll)
	case b.interval < 10*time.Millisecond:
		return bench.Options{}, fmt.Errorf("--block-interval must be at least 10ms, got %v", b.interval)
	case b.drain < 0 || b.warmup < 0 || b.ceiling < 0:
		return bench.Options{}, errors.New("--drain, --warmup and --ceiling-time must not be negative")
	}
	code, err := readContract(b.workload, b.contract)
	if err != nil {
		return bench.Options{}, err
	}
	o := bench.Options{
		Accounts: b.accounts, Seed: b.seed, BlockInterval: b.interval, Poll: b.poll, Drain: b.drain, Warmup: b.warmup,
		CeilingTime: b.ceiling, KeysDir: b.keysDir, Commit: benchCommit(), Observe: b.observe,
		Node:     bench.NodeOptions{Mode: b.nodeMode, Binary: b.nodeBinary, URL: b.rpcURL, Dir: b.nodeDir, Keep: b.keep, Set: b.nodeSet, Pprof: b.pprof},
		Workload: b.workload, Contract: code,
	}
	if b.ceiling == 0 {
		o.CeilingTime = -1
	}
	if b.rpcURL != "" {
		o.Node.Mode = bench.NodeExternal
	} else {
		s, err := keys.ParseScheme(b.scheme)
		if err != nil {
			return o, fmt.Errorf("--scheme: %w", err)
		}
		o.Scheme = s
	}
	if !b.noProgress {
		o.Progress = stderr
	}
	return o, nil
}

// tabled is a result that prints itself as a table.
type tabled interface{ Table(io.Writer) }

// saveResult writes r as JSON into dir (default: a new bench-results
// directory), prints its table and where it went.
func saveResult(dir, name string, r tabled, stdout io.Writer) error {
	if dir == "" {
		dir = bench.DefaultOutputDir(time.Now())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := bench.WriteJSON(filepath.Join(dir, name), r); err != nil {
		return err
	}
	r.Table(stdout)
	fmt.Fprintf(stdout, "\nresults in %s\n", dir)
	return nil
}

// openSession makes the output directory, sends the bench's node log
// there and starts the session.
func (b *benchFlags) openSession(ctx context.Context, o bench.Options) (*bench.Session, string, error) {
	out := b.outDir()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, "", err
	}
	if o.Node.Mode == bench.NodeProcess {
		o.Node.LogPath = filepath.Join(out, "node.log")
	}
	s, err := bench.NewSession(ctx, o)
	return s, out, err
}

func (b *benchFlags) outDir() string {
	if b.out != "" {
		return b.out
	}
	return bench.DefaultOutputDir(time.Now())
}

// benchCommit names the code: the version stamped at build time, or the
// checkout's commit when this is a plain go build.
func benchCommit() string {
	if version != "dev" {
		return version
	}
	if c := bench.GitCommit("."); c != "" {
		return c
	}
	return "unknown"
}

func benchRPC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench rpc", "bench rpc [--scheme S] [--txs N | --rate R --duration D] [--concurrency C] [--batch B] [--workload native|wasm-token --contract FILE] [flags]", stderr)
	b := addBenchFlags(fs)
	txs := fs.Int("txs", 100_000, "transactions to send (with --rate and --duration: rate × duration when not set)")
	rate := fs.Float64("rate", 0, "offered rate in tx/s (open loop); 0: closed loop, as fast as the node answers")
	dur := fs.Duration("duration", 0, "with --rate: submission time (--txs defaults to rate × duration); closed loop: stop offering after this long")
	cpuprof := fs.String("cpuprofile", "", "write a CPU profile of this process over the measured window (use with --node in-process to see the node)")
	nodeProf := fs.String("node-profile", "", "write the child node's CPU profile over the submission time (needs --duration; turns on --node-pprof)")
	signLive := fs.Bool("sign-live", false, fmt.Sprintf("sign while sending, a bounded buffer ahead, keeping latency samples instead of per-transaction data: memory stays flat for runs of hours (on by default above %d transactions)", bench.SignLiveAbove))
	signAhead := fs.Int("sign-ahead", 0, "with --sign-live: transactions kept signed ahead of the sender (default 2 s of --rate + 1 s, at least 4096)")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := b.options(stderr)
	if err != nil {
		return err
	}
	spec := bench.LoadSpec{Txs: *txs, Rate: *rate, Duration: *dur, Concurrency: b.concurrency, Batch: b.batch, SignLive: *signLive, SignAhead: *signAhead}
	if *rate > 0 && *dur > 0 && !flagSet(fs, "txs") {
		spec.Txs = 0 // rate × duration
	}
	if !flagSet(fs, "sign-live") {
		spec.SignLive = bench.NeedsSignLive(spec)
	}
	if *rate < 0 || *dur < 0 {
		return errors.New("--rate and --duration must not be negative")
	}
	if *txs < 1 {
		return fmt.Errorf("--txs must be at least 1, got %d", *txs)
	}
	if o.Node.Mode != bench.NodeExternal {
		if err := spec.Validate(b.accounts); err != nil {
			return err
		}
	}
	o.MaxTxs = max(spec.Txs, int(*rate*dur.Seconds())+1)
	if spec.SignLive {
		o.MaxTxs = bench.LiveMempoolTxs(spec)
	}
	o.MaxBatch = spec.Batch
	out := b.outDir()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if o.Node.Mode == bench.NodeProcess {
		o.Node.LogPath = filepath.Join(out, "node.log")
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	if *nodeProf != "" {
		f, err := os.Create(*nodeProf)
		if err != nil {
			return err
		}
		defer f.Close()
		o.NodeProfile, o.Node.Pprof = f, true
	}
	s, err := bench.NewSession(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()
	r, err := s.Run(ctx, spec, "")
	if err != nil {
		return err
	}
	if err := s.WriteOutputs(out, r); err != nil {
		return err
	}
	r.Table(stdout)
	fmt.Fprintf(stdout, "\nresults in %s\n", out)
	return s.Close()
}

// errSoakFailed is a soak that ran but did not pass (errors, or memory
// not flat); its outputs are written.
var errSoakFailed = errors.New("soak failed: see soak.txt")

func benchSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench soak", "bench soak [--duration D] [--rate R | --rate-fraction F] [--sample-every D] [flags]", stderr)
	b := addBenchFlags(fs)
	dur := fs.Duration("duration", time.Hour, "submission time of the soak")
	rate := fs.Float64("rate", 0, "offered rate in tx/s (default: --rate-fraction of a closed-loop probe's committed TPS)")
	fraction := fs.Float64("rate-fraction", 0.5, "without --rate: the share of the probe's committed TPS to offer")
	probeTxs := fs.Int("probe-txs", 60_000, "without --rate: transactions of the closed-loop probe")
	every := fs.Duration("sample-every", 10*time.Second, "memory sampling period")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *dur <= 0 || *every <= 0:
		return errors.New("--duration and --sample-every must be positive")
	case *rate < 0 || *fraction <= 0 || *fraction > 1:
		return errors.New("--rate must not be negative and --rate-fraction must be in (0, 1]")
	case *rate == 0 && *probeTxs < 1:
		return fmt.Errorf("--probe-txs must be at least 1, got %d", *probeTxs)
	}
	o, err := b.options(stderr)
	if err != nil {
		return err
	}
	// The node holds what is in flight, not the run; the probe is
	// pre-signed and needs room for all of it.
	o.MaxTxs = max(*probeTxs, bench.LiveMempoolTxs(bench.LoadSpec{Rate: *rate}))
	o.MaxBatch = b.batch
	s, out, err := b.openSession(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()
	// The curve is written as it is sampled, so a soak stopped early
	// leaves it; WriteSoakOutputs writes it whole again at the end.
	csvFile, err := os.Create(filepath.Join(out, "soak.csv"))
	if err != nil {
		return err
	}
	r, err := s.Soak(ctx, bench.SoakOptions{Duration: *dur, Rate: *rate, RateFraction: *fraction, ProbeTxs: *probeTxs,
		SampleEvery: *every, Concurrency: b.concurrency, Batch: b.batch, CSV: csvFile})
	csvFile.Close()
	if err != nil {
		return err
	}
	if err := s.WriteSoakOutputs(out, r); err != nil {
		return err
	}
	r.Table(stdout)
	fmt.Fprintf(stdout, "\nresults in %s\n", out)
	if err := s.Close(); err != nil {
		return err
	}
	if !r.Pass {
		return errSoakFailed
	}
	return nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func benchSweep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench sweep", "bench sweep [--rates R1,R2,... | --start R --factor F --max R] [--step D] [flags]", stderr)
	b := addBenchFlags(fs)
	rates := fs.String("rates", "", "offered rates in tx/s, comma-separated (default: --start × --factor^k up to --max)")
	start := fs.Float64("start", bench.DefaultSweepStart, "first offered rate")
	factor := fs.Float64("factor", bench.DefaultSweepFactor, "each step's rate over the last's")
	maxRate := fs.Float64("max", bench.DefaultSweepMax, "highest offered rate")
	step := fs.Duration("step", 10*time.Second, "submission time of each step")
	past := fs.Int("past", 0, "steps to run after the first one not sustained")
	half := fs.Bool("half", true, "finish with a step at half the saturation rate (latency is judged there)")
	minRatio := fs.Float64("min-ratio", 0.9, "a step is sustained when committed TPS reaches this fraction of the offered rate…")
	maxP99 := fs.Float64("max-p99-intervals", 3, "…p99 inclusion latency stays within this many block intervals…")
	maxErr := fs.Float64("max-error-rate", 0.001, "…and at most this fraction of transactions fail")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := b.options(stderr)
	if err != nil {
		return err
	}
	so := bench.SweepOptions{Start: *start, Factor: *factor, Max: *maxRate, Step: *step, Past: *past, Half: *half,
		Concurrency: b.concurrency, Batch: b.batch, Criteria: bench.Criteria{MinRatio: *minRatio, MaxP99Intervals: *maxP99, MaxErrorRate: *maxErr}}
	if *rates != "" {
		if so.Rates, err = parseFloats(*rates); err != nil {
			return fmt.Errorf("--rates: %w", err)
		}
	}
	if err := (bench.LoadSpec{Txs: 1, Concurrency: b.concurrency, Batch: b.batch}).Validate(b.accounts); err != nil && o.Node.Mode != bench.NodeExternal {
		return err
	}
	o.MaxTxs = bench.SweepMaxTxs(so)
	o.MaxBatch = b.batch
	s, out, err := b.openSession(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()
	n := 0
	res, err := bench.RunSweep(ctx, s, so, func(st bench.Step) error {
		n++
		st.Report.Table(stdout)
		return s.WriteOutputs(filepath.Join(out, fmt.Sprintf("step-%02d-%.0f", n, st.Rate)), st.Report)
	})
	if err != nil {
		return err
	}
	if err := saveResult(out, "sweep.json", res, stdout); err != nil {
		return err
	}
	return s.Close()
}

func benchEngine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench engine", "bench engine [--scheme S] [--blocks N] [--block-txs T] [--accounts K] [--nosync] [--workload native|wasm-token --contract FILE] [--out DIR]", stderr)
	scheme := fs.String("scheme", "secp256k1", "signature scheme of the transfers: secp256k1 or ed25519")
	accounts := fs.Int("accounts", bench.DefaultAccounts, "accounts sending transfers")
	blocks := fs.Int("blocks", 10, "blocks to apply")
	blockTxs := fs.Int("block-txs", 20_000, "transfers per block")
	noSync := fs.Bool("nosync", false, "do not fsync each block's batch (the node does)")
	dir := fs.String("dir", "", "where the throwaway stores are made (default: the temp directory)")
	out := fs.String("out", "", "output directory (default bench-results/<UTC time>)")
	cpuprof := fs.String("cpuprofile", "", "write a CPU profile of the timed phases")
	noProgress := fs.Bool("no-progress", false, "no progress bar on stderr")
	var workload, contract string
	addWorkloadFlags(fs, &workload, &contract)
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := keys.ParseScheme(*scheme)
	if err != nil {
		return fmt.Errorf("--scheme: %w", err)
	}
	if *accounts < 1 || *blocks < 1 || *blockTxs < 1 {
		return errors.New("--accounts, --blocks and --block-txs must be at least 1")
	}
	code, err := readContract(workload, contract)
	if err != nil {
		return err
	}
	o := bench.EngineOptions{Scheme: s, Accounts: *accounts, Blocks: *blocks, BlockTxs: *blockTxs, NoSync: *noSync, Dir: *dir, Commit: benchCommit(),
		Workload: workload, Contract: code}
	if !*noProgress {
		o.Progress = stderr
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		o.CPUProfile = f
	}
	r, err := bench.RunEngine(ctx, o)
	if err != nil {
		return err
	}
	return saveResult(*out, "engine.json", r, stdout)
}

func benchVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench verify", "bench verify [--schemes S,S] [--time D] [--threads N,N] [--paths P,P] [--out DIR]", stderr)
	schemes := fs.String("schemes", "ed25519,secp256k1", "schemes to measure")
	d := fs.Duration("time", 2*time.Second, "measuring time of each figure")
	threads := fs.String("threads", "", "goroutine counts, comma-separated (default 1 and GOMAXPROCS)")
	paths := fs.String("paths", "single,batch,tx", "what to measure: single (keys.Verify), batch (keys.Verifier, as the sigverify pool), tx (sigverify.Verify of whole transfers)")
	signers := fs.Int("signers", bench.DefaultAccounts, "distinct signing keys among the samples")
	out := fs.String("out", "", "output directory (default bench-results/<UTC time>)")
	if err := parse(fs, args); err != nil {
		return err
	}
	o := bench.VerifyOptions{Duration: *d, Signers: *signers}
	for _, s := range strings.Split(*schemes, ",") {
		sc, err := keys.ParseScheme(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--schemes: %w", err)
		}
		o.Schemes = append(o.Schemes, sc)
	}
	if *threads != "" {
		for _, t := range strings.Split(*threads, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(t))
			if err != nil {
				return fmt.Errorf("--threads: %q is not a number", t)
			}
			o.Threads = append(o.Threads, n)
		}
	}
	for _, p := range strings.Split(*paths, ",") {
		o.Paths = append(o.Paths, strings.TrimSpace(p))
	}
	r, err := bench.RunVerify(ctx, o)
	if err != nil {
		return err
	}
	return saveResult(*out, "verify.json", r, stdout)
}

func benchSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench suite", "bench suite [--txs-ed25519 N] [--txs-secp256k1 N] [--half D] [flags]", stderr)
	b := addBenchFlags(fs)
	txsEd := fs.Int("txs-ed25519", bench.DefaultSuiteTxs[keys.SchemeEd25519], "closed-loop transactions, ed25519")
	txsSecp := fs.Int("txs-secp256k1", bench.DefaultSuiteTxs[keys.SchemeSecp256k1], "closed-loop transactions, secp256k1")
	halfDur := fs.Duration("half", 8*time.Second, "submission time of the half-rate run")
	satDur := fs.Duration("saturation", 12*time.Second, "cap on the closed-loop run's submission time")
	schemes := fs.String("schemes", "ed25519,secp256k1", "schemes to run")
	noWallet := fs.Bool("no-wallet", false, "leave out the wallet-shaped runs (one transaction per request from 32 and from 256 connections)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if b.rpcURL != "" {
		return errors.New("the suite starts its own node per scheme; use bench rpc with --rpc")
	}
	b.suiteDefaults(fs)
	o, err := b.options(stderr)
	if err != nil {
		return err
	}
	so := bench.SuiteOptions{
		Txs:  map[keys.Scheme]int{keys.SchemeEd25519: *txsEd, keys.SchemeSecp256k1: *txsSecp},
		Half: *halfDur, Saturation: *satDur, Concurrency: b.concurrency, Batch: b.batch, VerifyTime: b.ceiling, Base: o,
		Out: b.outDir(), Progress: o.Progress, Log: stdout, NoWallet: *noWallet,
	}
	if b.ceiling <= 0 {
		return errors.New("the suite measures the signature ceiling: --ceiling-time must be above 0")
	}
	for _, s := range strings.Split(*schemes, ",") {
		sc, err := keys.ParseScheme(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--schemes: %w", err)
		}
		so.Schemes = append(so.Schemes, sc)
	}
	r, err := bench.RunSuite(ctx, so)
	if err != nil {
		return err
	}
	r.Table(stdout)
	fmt.Fprintf(stdout, "\nresults in %s\n", so.Out)
	return nil
}

// suiteDefaults sets the standard scenario's load shape for the flags not
// given: a high-volume client, batches of 100 over 8 connections, block
// bodies read after the load (heads are still followed live, so latency is
// measured from the blocks). docs/benchmarks.md also reports one request
// per transaction.
func (b *benchFlags) suiteDefaults(fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["batch"] {
		b.batch = 100
	}
	if !set["concurrency"] {
		b.concurrency = 8
	}
	if !set["observe"] {
		b.observe = bench.ObserveDeferred
	}
}

func benchNet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench net", "bench net --nodes N [--scheme S] [--interval D] [--txs N] [--saturation D] [--half D] [flags]", stderr)
	b := addBenchFlags(fs)
	fs.DurationVar(&b.interval, "interval", time.Second, "block interval (the same as --block-interval)")
	nodes := fs.Int("nodes", 4, "nodes of the network, each a producer, on loopback with full-mesh static peers")
	txs := fs.Int("txs", 0, "transactions of each closed-loop run (default: the suite's, 500,000 ed25519 or 250,000 secp256k1)")
	satDur := fs.Duration("saturation", 12*time.Second, "cap on each closed-loop run's submission time")
	halfDur := fs.Duration("half", 30*time.Second, "submission time of the network's half-rate run (propagation and irreversibility are measured there)")
	same := fs.Bool("same-network", false, "run the half-rate run on the network the saturation run loaded, not on a fresh one")
	if err := parse(fs, args); err != nil {
		return err
	}
	if b.rpcURL != "" {
		return errors.New("bench net starts its own nodes; it cannot load one given by --rpc")
	}
	if *nodes < 2 || *txs < 0 || *satDur <= 0 || *halfDur <= 0 {
		return errors.New("--nodes must be at least 2, --txs not negative, --saturation and --half above 0")
	}
	b.suiteDefaults(fs)
	o, err := b.options(stderr)
	if err != nil {
		return err
	}
	no := bench.NetOptions{Scheme: o.Scheme, Nodes: *nodes, Txs: *txs, Saturation: *satDur, Half: *halfDur, SameNetwork: *same,
		Concurrency: b.concurrency, Batch: b.batch, Base: o, Out: b.outDir(), Progress: o.Progress, Log: stdout}
	r, err := bench.RunNet(ctx, no)
	if err != nil {
		return err
	}
	r.Table(stdout)
	fmt.Fprintf(stdout, "\nresults in %s\n", no.Out)
	return nil
}

func benchSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench sync", "bench sync [--scheme S] [--blocks N] [--block-txs T] [flags]", stderr)
	b := addBenchFlags(fs)
	fs.DurationVar(&b.interval, "interval", time.Second, "block interval (the same as --block-interval)")
	blocks := fs.Int("blocks", 10_000, "blocks of the source chain")
	blockTxs := fs.Int("block-txs", 500, "transfers per block of the source chain")
	txs := fs.Int("txs", 0, "transactions of the single-node closed-loop run (default: the suite's)")
	satDur := fs.Duration("saturation", 12*time.Second, "cap on the single-node run's submission time")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up when the follower has not caught up after this long")
	prof := fs.String("follower-profile", "", "write the follower's CPU profile from its handshake on (for --profile-time) to this file")
	profTime := fs.Duration("profile-time", 30*time.Second, "length of the follower's profile")
	if err := parse(fs, args); err != nil {
		return err
	}
	if b.rpcURL != "" {
		return errors.New("bench sync starts its own nodes; it cannot use one given by --rpc")
	}
	if *blocks < 1 || *blockTxs < 1 || *txs < 0 || *satDur <= 0 || *timeout <= 0 || *profTime <= 0 {
		return errors.New("--blocks and --block-txs must be at least 1, --txs not negative, --saturation, --timeout and --profile-time above 0")
	}
	b.suiteDefaults(fs)
	o, err := b.options(stderr)
	if err != nil {
		return err
	}
	so := bench.SyncOptions{Scheme: o.Scheme, Blocks: *blocks, BlockTxs: *blockTxs, Txs: *txs, Saturation: *satDur, Timeout: *timeout,
		Concurrency: b.concurrency, Batch: b.batch, ProfileTime: *profTime, Base: o, Out: b.outDir(), Progress: o.Progress, Log: stdout}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return err
		}
		defer f.Close()
		so.FollowerProfile = f
	}
	r, err := bench.RunSync(ctx, so)
	if err != nil {
		return err
	}
	r.Table(stdout)
	fmt.Fprintf(stdout, "\nresults in %s\n", so.Out)
	return nil
}

func benchInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench init", "bench init --datadir DIR [--scheme S] [--accounts K] [--seed S] [--block-interval D]", stderr)
	datadir := fs.String("datadir", "", "data directory to create")
	scheme := fs.String("scheme", "secp256k1", "scheme of the funded accounts")
	accounts := fs.Int("accounts", bench.DefaultAccounts, "accounts to fund")
	seed := fs.String("seed", bench.DefaultSeed, "seed the keys are derived from")
	interval := fs.Duration("block-interval", time.Second, "block interval of the chain")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *datadir == "" {
		fmt.Fprintln(stderr, "--datadir is required")
		fs.Usage()
		return errUsage
	}
	s, err := keys.ParseScheme(*scheme)
	if err != nil {
		return fmt.Errorf("--scheme: %w", err)
	}
	kd, err := bench.InitDataDir(*datadir, s, *accounts, *seed, *interval)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Initialized %s: %d %s accounts funded, keys in %s\n", *datadir, *accounts, s, kd)
	fmt.Fprintf(stdout, "Run the node with room for the load, e.g.:\n  ember node --datadir %s --set mempool.max_per_account=100000 --set mempool.max_transactions=2000000 --set rpc.max_response_bytes=1073741824\n", *datadir)
	fmt.Fprintf(stdout, "then: ember bench rpc --rpc http://127.0.0.1:8080/ --keys %s\n", kd)
	return nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}
