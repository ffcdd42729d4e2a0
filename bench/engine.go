package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/store"
)

// EngineOptions configure the engine mode: the engine and store alone,
// in this process, with every signature verified before the clock starts —
// the most a node on this machine could commit if receiving, verifying and
// serving cost nothing.
type EngineOptions struct {
	Scheme   keys.Scheme // default secp256k1
	Accounts int         // default DefaultAccounts
	Blocks   int         // default 10
	BlockTxs int         // transactions per block, default 20,000
	Seed     string
	// Dir holds the throwaway stores (default the system temp directory).
	Dir string
	// NoSync skips the fsync of each block's batch (the node syncs).
	NoSync   bool
	Progress io.Writer
	Commit   string
	// CPUProfile, when set, receives a CPU profile of the two timed
	// phases.
	CPUProfile io.Writer
	// Workload is what the transfers move: WorkloadNative (default) or
	// WorkloadWasmToken, the token contract Contract (its wasm bytecode)
	// uploaded and minted to every account in blocks applied before the
	// clock (deployEngineToken).
	Workload string
	Contract []byte
}

// EnginePhase is one timed phase.
type EnginePhase struct {
	TPS     float64 `json:"tps"`
	Seconds float64 `json:"seconds"`
	// Per-transaction time of each step, in µs.
	ApplyUS  float64 `json:"apply_us_per_tx"`   // AcceptBlock, or Build for produce
	SignUS   float64 `json:"sign_us_per_tx"`    // produce: the block signature, spread over its txs
	StoreUS  float64 `json:"store_us_per_tx"`   // store.Commit: one Pebble batch per block
	AdvUS    float64 `json:"advance_us_per_tx"` // chain.Advance
	CPUSecs  float64 `json:"cpu_s"`
	MaxBlock float64 `json:"max_block_ms"`
}

// EngineResult is the engine mode's report.
type EngineResult struct {
	Scheme   string `json:"scheme"`
	Txs      int    `json:"txs"`
	Blocks   int    `json:"blocks"`
	BlockTxs int    `json:"block_txs"`
	Accounts int    `json:"accounts"`
	Sync     bool   `json:"sync"`
	// Accept applies blocks from a peer: AcceptBlock, store.Commit, Advance.
	Accept EnginePhase `json:"accept"`
	// Produce builds blocks from verified transactions as the producer
	// does: Build, sign, Commit, store.Commit, Advance.
	Produce     EnginePhase `json:"produce"`
	PrepSeconds float64     `json:"prep_s"` // signing, verifying, building the blocks to accept
	// Workload is what the transfers moved.
	Workload WorkloadInfo `json:"workload"`
	// ComputePerTx and RCPerTx are the mean compute_bandwidth_used and
	// rc_used of the measured transfers' receipts (from the blocks built
	// before the clock); SetupBlocks are the blocks of the WASM token's
	// upload and mints, applied untimed before each phase.
	ComputePerTx float64 `json:"compute_per_tx"`
	RCPerTx      float64 `json:"rc_per_tx"`
	SetupBlocks  int     `json:"setup_blocks,omitempty"`
	// BalancesChecked is how many accounts' token balances were read
	// (balance_of) after each phase and found as the transfers say
	// (wasm-token; RunEngine fails otherwise).
	BalancesChecked int     `json:"balances_checked,omitempty"`
	CPUs            int     `json:"cpus"`
	Commit          string  `json:"commit"`
	Machine         Machine `json:"machine"`
}

func (o *EngineOptions) ensureDefaults() {
	if o.Scheme == keys.SchemeUnknown {
		o.Scheme = keys.SchemeSecp256k1
	}
	if o.Accounts == 0 {
		o.Accounts = DefaultAccounts
	}
	if o.Blocks == 0 {
		o.Blocks = 10
	}
	if o.BlockTxs == 0 {
		o.BlockTxs = 20_000
	}
	if o.Seed == "" {
		o.Seed = DefaultSeed
	}
	if o.Workload == "" {
		o.Workload = WorkloadNative
	}
}

func (o *EngineOptions) validate() error {
	if err := checkWorkload(o.Workload, o.Contract); err != nil {
		return err
	}
	switch {
	case o.Accounts < 1 || o.Accounts > MaxAccounts:
		return fmt.Errorf("bench: --accounts must be between 1 and %d", MaxAccounts)
	case o.Blocks < 1:
		return fmt.Errorf("bench: --blocks must be at least 1, got %d", o.Blocks)
	case o.BlockTxs < 1 || o.BlockTxs > genesis.DefaultMaxBlockTxs:
		return fmt.Errorf("bench: --block-txs must be between 1 and %d (the genesis limit), got %d", genesis.DefaultMaxBlockTxs, o.BlockTxs)
	case int64(o.Blocks)*int64(o.BlockTxs) > 1<<31-1:
		return fmt.Errorf("bench: --blocks × --block-txs is too large")
	}
	return nil
}

// engineChain is a chain over a store in a throwaway directory.
type engineChain struct {
	c   *chain.Chain
	st  *store.Store
	dir string
}

func openEngineChain(dir string, g *genesis.Genesis, noSync bool) (*engineChain, error) {
	d, err := os.MkdirTemp(dir, "ember-bench-engine-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	st, err := store.Open(filepath.Join(d, "data"), store.Options{NoSync: noSync})
	if err != nil {
		os.RemoveAll(d)
		return nil, fmt.Errorf("bench: %w", err)
	}
	c, r, err := chain.Open(chain.Config{Genesis: g, Storage: st})
	if err == nil {
		err = st.Commit(r)
	}
	if err != nil {
		st.Close()
		os.RemoveAll(d)
		return nil, fmt.Errorf("bench: %w", err)
	}
	c.Advance(r)
	return &engineChain{c: c, st: st, dir: d}, nil
}

// close releases the chain (its contracts' compiled code) and the store,
// and removes the directory; a second call does nothing.
func (e *engineChain) close() {
	if e.st == nil {
		return
	}
	e.c.Close()
	e.st.Close()
	os.RemoveAll(e.dir)
	e.st = nil
}

// RunEngine runs the engine mode.
func RunEngine(ctx context.Context, o EngineOptions) (*EngineResult, error) {
	o.ensureDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	prepStart := time.Now()
	ks, err := DeriveKeys(o.Scheme, o.Seed, o.Accounts)
	if err != nil {
		return nil, err
	}
	prod := ProducerKey(o.Seed)
	g, err := DevGenesis(prod, genesisAccounts(ks, o.Workload, o.Seed), time.Second, time.UnixMilli(1_700_000_000_000))
	if err != nil {
		return nil, err
	}
	// Blocks to accept: built once on a scratch chain (after the WASM
	// token's setup blocks, if any), then verified as a node verifies a
	// peer's block (before the clock).
	scratch, err := openEngineChain(o.Dir, g, true)
	if err != nil {
		return nil, err
	}
	defer scratch.close()
	tt := transferTarget{token: g.TokenID(), rcLimit: DefaultRCLimit}
	work := WorkloadInfo{Name: o.Workload}
	var setup []*sigverify.VerifiedBlock
	if o.Workload == WorkloadWasmToken {
		if setup, tt, work, err = deployEngineToken(scratch, prod, ks, o.Seed, o.Contract); err != nil {
			return nil, err
		}
	}
	work.RCLimit = tt.rcLimit
	n := o.Blocks * o.BlockTxs
	pr := newProgress(o.Progress, "engine "+o.Scheme.String())
	var done atomic.Int64
	pr.startSigning(n, &done)
	vtxs, err := signTransfers(ctx, ks, g, tt, 0, n, nil, &done)
	pr.stop()
	if err != nil {
		return nil, err
	}
	blocks := make([]*protocol.Block, o.Blocks)
	var compute, rc float64
	for b := 0; b < o.Blocks; b++ {
		r, blk, _, err := produceOne(scratch, prod, uint64(len(setup)+b+1), vtxs[b*o.BlockTxs:(b+1)*o.BlockTxs])
		if err != nil {
			return nil, err
		}
		c, u, err := receiptTotals(r, blk)
		if err != nil {
			return nil, err
		}
		compute, rc, blocks[b] = compute+c, rc+u, blk
	}
	limits := scratch.c.Limits()
	maxTxs := scratch.c.MaxBlockTransactions()
	scratch.close()
	vbs := make([]*sigverify.VerifiedBlock, o.Blocks)
	errs := make([]error, o.Blocks)
	parallelFor(o.Blocks, func(b int) { vbs[b], errs[b] = sigverify.VerifyBlock(blocks[b], limits, maxTxs) })
	for b, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: verify block %d: %w", b+1, err)
		}
	}
	res := &EngineResult{Scheme: o.Scheme.String(), Txs: n, Blocks: o.Blocks, BlockTxs: o.BlockTxs, Accounts: o.Accounts, Sync: !o.NoSync,
		CPUs: runtime.GOMAXPROCS(0), Commit: o.Commit, Machine: thisMachine(), Workload: work, SetupBlocks: len(setup),
		ComputePerTx: round1(compute / float64(n)), RCPerTx: round1(rc / float64(n))}
	res.Machine.Secp256k1 = keys.Secp256k1Implementation()
	res.PrepSeconds = round3(time.Since(prepStart).Seconds())

	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return nil, fmt.Errorf("bench: CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	// Accept: a peer's blocks, applied and stored.
	acc, err := openEngineChain(o.Dir, g, o.NoSync)
	if err != nil {
		return nil, err
	}
	if err := acceptSetup(acc, setup); err != nil {
		acc.close()
		return nil, err
	}
	var apply, stor, adv time.Duration
	var maxBlock time.Duration
	cpu0, _ := readProc("self")
	start := time.Now()
	for b, vb := range vbs {
		if ctx.Err() != nil {
			acc.close()
			return nil, ctx.Err()
		}
		t0 := time.Now()
		r, err := acc.c.AcceptBlock(vb, vb.Block.Header.Timestamp)
		if err != nil {
			acc.close()
			return nil, fmt.Errorf("bench: accept block %d: %w", b+1, err)
		}
		t1 := time.Now()
		if err := acc.st.Commit(r); err != nil {
			acc.close()
			return nil, fmt.Errorf("bench: store block %d: %w", b+1, err)
		}
		t2 := time.Now()
		acc.c.Advance(r)
		t3 := time.Now()
		apply, stor, adv = apply+t1.Sub(t0), stor+t2.Sub(t1), adv+t3.Sub(t2)
		maxBlock = max(maxBlock, t3.Sub(t0))
	}
	res.Accept = phase(n, time.Since(start), apply, 0, stor, adv, maxBlock, cpu0)
	if o.Workload == WorkloadWasmToken {
		if err := checkTokenBalances(acc, ks, tt.token, n); err != nil {
			acc.close()
			return nil, fmt.Errorf("%w (accept phase)", err)
		}
	}
	acc.close()

	// Produce: the producer's path from verified transactions.
	pc, err := openEngineChain(o.Dir, g, o.NoSync)
	if err != nil {
		return nil, err
	}
	defer pc.close()
	if err := acceptSetup(pc, setup); err != nil {
		return nil, err
	}
	var build, sign time.Duration
	stor, adv, maxBlock = 0, 0, 0
	cpu0, _ = readProc("self")
	start = time.Now()
	for b := 0; b < o.Blocks; b++ {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		_, _, t, err := produceOne(pc, prod, uint64(len(setup)+b+1), vtxs[b*o.BlockTxs:(b+1)*o.BlockTxs])
		if err != nil {
			return nil, err
		}
		build, sign, stor, adv = build+t[0], sign+t[1], stor+t[2], adv+t[3]
		maxBlock = max(maxBlock, t[0]+t[1]+t[2]+t[3])
	}
	res.Produce = phase(n, time.Since(start), build, sign, stor, adv, maxBlock, cpu0)
	if o.Workload == WorkloadWasmToken {
		if err := checkTokenBalances(pc, ks, tt.token, n); err != nil {
			return nil, fmt.Errorf("%w (produce phase)", err)
		}
		res.BalancesChecked = len(ks)
	}
	return res, nil
}

func phase(n int, total, apply, sign, stor, adv, maxBlock time.Duration, cpu0 procStats) EnginePhase {
	us := func(d time.Duration) float64 { return round3(float64(d.Microseconds()) / float64(n)) }
	p := EnginePhase{TPS: rate(n, total), Seconds: round3(total.Seconds()), ApplyUS: us(apply), SignUS: us(sign), StoreUS: us(stor), AdvUS: us(adv),
		MaxBlock: round3(float64(maxBlock.Microseconds()) / 1000)}
	if cpu1, err := readProc("self"); err == nil {
		p.CPUSecs = round3(cpu1.CPUSeconds - cpu0.CPUSeconds)
	}
	return p
}

// produceOne builds, signs, stores and advances the block of slot on e's
// head, and times the four steps.
func produceOne(e *engineChain, prod keys.Signer, slot uint64, txs []*sigverify.VerifiedTx) (*chain.Ready, *protocol.Block, [4]time.Duration, error) {
	var t [4]time.Duration
	t0 := time.Now()
	prop, err := e.c.Build(e.c.SlotTime(slot), prod.Address(), txs)
	if err != nil {
		return nil, nil, t, fmt.Errorf("bench: build block %d: %w", slot, err)
	}
	if len(prop.Failed) > 0 {
		return nil, nil, t, fmt.Errorf("bench: block %d left out %d transactions: %v", slot, len(prop.Failed), prop.Failed[0].Err)
	}
	if len(prop.Block.Transactions) != len(txs) {
		return nil, nil, t, fmt.Errorf("bench: block %d holds %d of its %d transactions: a block limit of the genesis was reached; lower --block-txs", slot, len(prop.Block.Transactions), len(txs))
	}
	t1 := time.Now()
	sig := prod.Sign(prop.ID)
	t2 := time.Now()
	r, err := e.c.Commit(prop, sig)
	if err != nil {
		return nil, nil, t, fmt.Errorf("bench: commit block %d: %w", slot, err)
	}
	t3 := time.Now()
	if err := e.st.Commit(r); err != nil {
		return nil, nil, t, fmt.Errorf("bench: store block %d: %w", slot, err)
	}
	t4 := time.Now()
	e.c.Advance(r)
	t5 := time.Now()
	t[0], t[1], t[2], t[3] = t1.Sub(t0)+t3.Sub(t2), t2.Sub(t1), t4.Sub(t3), t5.Sub(t4)
	return r, prop.Block, t, nil
}

// txLimits are the stateless transaction limits of g.
func txLimits(g *genesis.Genesis) *sigverify.Limits {
	return &sigverify.Limits{
		ChainID: g.ChainID().Multihash(), MaxTransactionBytes: int(g.Params().Limits.MaxTransactionBytes),
		MaxOperations: int(g.Params().Limits.MaxOperationsPerTransaction), MaxSignatures: int(g.Params().Limits.MaxSignaturesPerTransaction),
	}
}

// transferTarget is the token the engine's transfers call and their
// rc_limit: the native token's with DefaultRCLimit, or the WASM token's
// with the limit measured for it.
type transferTarget struct {
	token   koinos.Address
	rcLimit uint64
}

// signTransfers signs transfers from … from+n-1 of the engine's sequence
// (transaction i from account i mod K, with nonce i div K + 1, to the next
// account) of tt's token on every core, and verifies them: each alone
// (sigverify.Verify) when pool is nil, else through pool in batches, as a
// node verifies a JSON-RPC batch.
func signTransfers(ctx context.Context, ks []keys.Signer, g *genesis.Genesis, tt transferTarget, from, n int, pool *sigverify.Pool, done *atomic.Int64) ([]*sigverify.VerifiedTx, error) {
	lim := txLimits(g)
	token := tt.token
	k := len(ks)
	out := make([]*sigverify.VerifiedTx, n)
	txs := make([]*protocol.Transaction, n)
	errs := make([]error, n)
	var stopped atomic.Bool
	parallelFor(n, func(j int) {
		if stopped.Load() || (j%1024 == 0 && ctx.Err() != nil) {
			stopped.Store(true)
			return
		}
		i := from + j
		a := i % k
		to := ks[(a+1)%k].Address()
		if k == 1 {
			to = deriveKey(keys.SchemeEd25519, "ember-bench/sink").Address()
		}
		tx, err := txbuilder.Transfer(ks[a], token, to, 1, txbuilder.Header{ChainID: lim.ChainID, Nonce: uint64(i/k) + 1, RcLimit: tt.rcLimit})
		if err == nil && pool == nil {
			out[j], err = sigverify.Verify(tx, lim)
		}
		txs[j], errs[j] = tx, err
		done.Add(1)
	})
	if stopped.Load() {
		return nil, ctx.Err()
	}
	for j, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: transaction %d: %w", from+j, err)
		}
	}
	if pool != nil {
		return verifyWithPool(ctx, pool, lim, txs)
	}
	return out, nil
}

// verifyWithPool verifies txs through pool, 256 to a call from twice as
// many goroutines as cores, so every worker has a batch queued; a
// transaction the pool refuses for load is verified alone.
func verifyWithPool(ctx context.Context, pool *sigverify.Pool, lim *sigverify.Limits, txs []*protocol.Transaction) ([]*sigverify.VerifiedTx, error) {
	const group = 256
	out := make([]*sigverify.VerifiedTx, len(txs))
	errs := make([]error, len(txs))
	groups := (len(txs) + group - 1) / group
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 2*runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				g := int(next.Add(1) - 1)
				if g >= groups || ctx.Err() != nil {
					return
				}
				a, b := g*group, min((g+1)*group, len(txs))
				vs, es := pool.VerifyTxs(ctx, txs[a:b], "bench")
				for k := range vs {
					if es[k] != nil && (errors.Is(es[k], sigverify.ErrOverloaded) || errors.Is(es[k], sigverify.ErrSourceLimit)) {
						vs[k], es[k] = sigverify.Verify(txs[a+k], lim)
					}
					out[a+k], errs[a+k] = vs[k], es[k]
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: verify transaction %d: %w", i, err)
		}
	}
	return out, nil
}

// Table writes the engine figures.
func (r *EngineResult) Table(w io.Writer) {
	sync := "synced"
	if !r.Sync {
		sync = "not synced"
	}
	fmt.Fprintf(w, "\nengine %s: %d blocks × %d transfers from %d accounts, one Pebble batch per block (%s), %d CPUs\n",
		r.Scheme, r.Blocks, r.BlockTxs, r.Accounts, sync, r.CPUs)
	fmt.Fprintf(w, "workload: %s; per transfer %.0f compute, %.0f rc\n", r.Workload, r.ComputePerTx, r.RCPerTx)
	fmt.Fprintf(w, "%-9s %10s %9s %10s %9s %10s %10s %12s\n", "phase", "tx/s", "seconds", "apply µs", "sign µs", "store µs", "adv µs", "max block ms")
	for _, p := range []struct {
		name string
		ph   EnginePhase
	}{{"accept", r.Accept}, {"produce", r.Produce}} {
		fmt.Fprintf(w, "%-9s %10.0f %9.2f %10.2f %9.3f %10.2f %10.3f %12.1f\n", p.name, p.ph.TPS, p.ph.Seconds, p.ph.ApplyUS, p.ph.SignUS, p.ph.StoreUS, p.ph.AdvUS, p.ph.MaxBlock)
	}
	fmt.Fprintf(w, "(µs are per transaction; signing and verifying %d transactions beforehand took %.1f s)\n", r.Txs, r.PrepSeconds)
	if r.SetupBlocks > 0 {
		fmt.Fprintf(w, "(the token's upload and mints took %d blocks, applied untimed before each phase; %d balances checked after each)\n", r.SetupBlocks, r.BalancesChecked)
	}
}
