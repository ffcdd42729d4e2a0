package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Verification paths the verify mode measures.
const (
	// PathSingle is keys.Verify, one signature at a time with no caches:
	// what sigverify.Verify runs per signature.
	PathSingle = "single"
	// PathBatch is keys.Verifier.VerifyBatch: Ed25519 signatures checked
	// together in one multiscalar multiplication, and signer keys
	// (expanded Ed25519 keys, secp256k1 addresses) cached, as the
	// sigverify pool's workers run it.
	PathBatch = "batch"
	// PathTx is sigverify.Verify on whole transfers: the stateless checks
	// (size, chain id, id and merkle root hashes) and the signature.
	PathTx = "tx"
)

// VerifyOptions configure the verify mode.
type VerifyOptions struct {
	Schemes []keys.Scheme // default both
	// Duration is how long each figure is measured (default 2 s).
	Duration time.Duration
	// Signers is how many distinct keys sign the samples (default 1000,
	// the rpc mode's default accounts): it decides how often the key
	// caches hit.
	Signers int
	// Threads lists the goroutine counts to measure (default 1 and
	// GOMAXPROCS).
	Threads []int
	// Paths lists what to measure (default every path).
	Paths []string
}

// VerifyFigure is one measurement.
type VerifyFigure struct {
	Scheme  string  `json:"scheme"`
	Path    string  `json:"path"`
	Threads int     `json:"threads"`
	Sigs    int64   `json:"sigs"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec"`
	// CPUSeconds is this process's CPU time over the measurement; above
	// Seconds × Threads means other work ran, below means the threads
	// did not get their cores (a busy machine).
	CPUSeconds float64 `json:"cpu_s"`
	USPerSig   float64 `json:"cpu_us_per_sig"`
}

// VerifyResult is the verify mode's report.
type VerifyResult struct {
	Figures []VerifyFigure `json:"figures"`
	// Ceiling is, per scheme, the best signatures per second on all cores
	// (GOMAXPROCS threads) over the signature paths (single, batch): the
	// most transactions a node on this machine could verify if it did
	// nothing else.
	Ceiling         map[string]float64 `json:"sig_ceiling_tps"`
	CPUs            int                `json:"cpus"`
	Secp256k1Impl   string             `json:"secp256k1_impl"`
	LoadAvgBefore   string             `json:"load_avg_before"`
	LoadAvgAfter    string             `json:"load_avg_after"`
	DurationSeconds float64            `json:"duration_s"`
}

func (o *VerifyOptions) ensureDefaults() {
	if len(o.Schemes) == 0 {
		o.Schemes = []keys.Scheme{keys.SchemeEd25519, keys.SchemeSecp256k1}
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	if o.Signers == 0 {
		o.Signers = 1000
	}
	if len(o.Threads) == 0 {
		o.Threads = []int{1}
		if n := runtime.GOMAXPROCS(0); n > 1 {
			o.Threads = append(o.Threads, n)
		}
	}
	if len(o.Paths) == 0 {
		o.Paths = []string{PathSingle, PathBatch, PathTx}
	}
}

func (o *VerifyOptions) validate() error {
	if o.Duration < 10*time.Millisecond {
		return fmt.Errorf("bench: the verify duration must be at least 10ms, got %v", o.Duration)
	}
	if o.Signers < 1 || o.Signers > MaxAccounts {
		return fmt.Errorf("bench: verify signers must be between 1 and %d", MaxAccounts)
	}
	for _, t := range o.Threads {
		if t < 1 || t > 1024 {
			return fmt.Errorf("bench: verify threads must be between 1 and 1024, got %d", t)
		}
	}
	for _, p := range o.Paths {
		if p != PathSingle && p != PathBatch && p != PathTx {
			return fmt.Errorf("bench: unknown verify path %q (want single, batch or tx)", p)
		}
	}
	return nil
}

// verifySamples is the signed material one scheme's figures use.
type verifySamples struct {
	items []keys.Item
	txs   []*protocol.Transaction
	lim   *sigverify.Limits
}

// verifySampleCount is how many distinct signatures are cycled through:
// enough that the CPU caches do not hold them all, few enough to sign in
// a fraction of a second.
const verifySampleCount = 4096

func newVerifySamples(scheme keys.Scheme, signers int) (*verifySamples, error) {
	ks, err := DeriveKeys(scheme, "verify", signers)
	if err != nil {
		return nil, err
	}
	chainID := koinos.Sum256([]byte("ember-bench/verify")).Multihash()
	token := deriveKey(keys.SchemeEd25519, "ember-bench/verify-token").Address()
	s := &verifySamples{
		items: make([]keys.Item, verifySampleCount),
		txs:   make([]*protocol.Transaction, verifySampleCount),
		lim:   &sigverify.Limits{ChainID: chainID, MaxTransactionBytes: 64 << 10, MaxOperations: 16, MaxSignatures: 8},
	}
	errs := make([]error, verifySampleCount)
	parallelFor(verifySampleCount, func(i int) {
		k := ks[i%len(ks)]
		tx, err := txbuilder.Transfer(k, token, ks[(i+1)%len(ks)].Address(), 1,
			txbuilder.Header{ChainID: chainID, Nonce: uint64(i/len(ks)) + 1, RcLimit: DefaultRCLimit})
		if err != nil {
			errs[i] = err
			return
		}
		d, _ := koinos.ParseMultihash(tx.Id)
		s.txs[i] = tx
		s.items[i] = keys.Item{Sig: tx.Signatures[0], Digest: d}
	})
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: sign verify samples: %w", err)
		}
	}
	return s, nil
}

// measure runs path on threads goroutines for d and counts signatures.
func (s *verifySamples) measure(ctx context.Context, path string, threads int, d time.Duration) (VerifyFigure, error) {
	var total atomic.Int64
	var failed atomic.Value
	cpu0, _ := readProc("self")
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := len(s.items)
			i := (t * n) / threads // start apart so threads do not share lines
			var done int64
			v := keys.NewVerifier(0)
			run := make([]keys.Item, keys.MaxEd25519Batch)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				switch path {
				case PathSingle:
					for k := 0; k < 64; k++ {
						it := &s.items[(i+k)%n]
						if _, err := keys.Verify(it.Sig, it.Digest); err != nil {
							failed.Store(err)
						}
					}
					done += 64
					i += 64
				case PathBatch:
					for k := range run {
						run[k] = keys.Item{Sig: s.items[(i+k)%n].Sig, Digest: s.items[(i+k)%n].Digest}
					}
					v.VerifyBatch(run)
					for k := range run {
						if run[k].Err != nil {
							failed.Store(run[k].Err)
						}
					}
					done += int64(len(run))
					i += len(run)
				case PathTx:
					for k := 0; k < 64; k++ {
						if _, err := sigverify.Verify(s.txs[(i+k)%n], s.lim); err != nil {
							failed.Store(err)
						}
					}
					done += 64
					i += 64
				}
			}
			total.Add(done)
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if err, _ := failed.Load().(error); err != nil {
		return VerifyFigure{}, fmt.Errorf("bench: a sample failed to verify (%s): %w", path, err)
	}
	if ctx.Err() != nil {
		return VerifyFigure{}, ctx.Err()
	}
	cpu1, _ := readProc("self")
	f := VerifyFigure{Path: path, Threads: threads, Sigs: total.Load(), Seconds: round3(secs), PerSec: round1(float64(total.Load()) / secs)}
	if cpu1.CPUSeconds > 0 {
		f.CPUSeconds = round3(cpu1.CPUSeconds - cpu0.CPUSeconds)
		if f.Sigs > 0 {
			f.USPerSig = round3(f.CPUSeconds * 1e6 / float64(f.Sigs))
		}
	}
	return f, nil
}

// RunVerify measures the signature ceiling of this machine.
func RunVerify(ctx context.Context, o VerifyOptions) (*VerifyResult, error) {
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	res := &VerifyResult{Ceiling: map[string]float64{}, CPUs: runtime.GOMAXPROCS(0), Secp256k1Impl: keys.Secp256k1Implementation(), LoadAvgBefore: loadAverage()}
	start := time.Now()
	for _, scheme := range o.Schemes {
		s, err := newVerifySamples(scheme, o.Signers)
		if err != nil {
			return nil, err
		}
		for _, path := range o.Paths {
			for _, th := range o.Threads {
				f, err := s.measure(ctx, path, th, o.Duration)
				if err != nil {
					return nil, err
				}
				f.Scheme = scheme.String()
				res.Figures = append(res.Figures, f)
				if th == runtime.GOMAXPROCS(0) && path != PathTx && f.PerSec > res.Ceiling[f.Scheme] {
					res.Ceiling[f.Scheme] = f.PerSec
				}
			}
		}
	}
	res.LoadAvgAfter = loadAverage()
	res.DurationSeconds = round3(time.Since(start).Seconds())
	return res, nil
}
