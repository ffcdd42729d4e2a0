package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/internal/sdkas"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// TestWasmTokenRun deploys the SDK's KCS-1 token on an in-process node,
// runs transfers of it closed loop, rated, rated signed live and as a
// sweep step, and
// checks that every transfer was committed, that the token's balances
// (balance_of through chain.read_contract) moved exactly as the transfers
// say, and that the report says which workload ran.
func TestWasmTokenRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	code := sdkas.Contract(t, "token")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const k = 30
	s, err := NewSession(ctx, Options{
		Scheme: keys.SchemeEd25519, Accounts: k, BlockInterval: 100 * time.Millisecond, Poll: 5 * time.Millisecond,
		Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()}, CeilingTime: -1, MaxTxs: 1000, MaxBatch: 5,
		Workload: WorkloadWasmToken, Contract: code,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	runs := []struct {
		spec LoadSpec
		n    int
	}{
		{LoadSpec{Txs: 290, Concurrency: 3, Batch: 5}, 290},
		{LoadSpec{Rate: 1000, Duration: 200 * time.Millisecond, Concurrency: 3, Batch: 2}, 200},
		// Signed while sent, as soak runs are.
		{LoadSpec{Rate: 1000, Duration: 150 * time.Millisecond, Concurrency: 3, Batch: 2, SignLive: true, SignAhead: 64}, 150},
	}
	var done []int
	for _, run := range runs {
		r, err := s.Run(ctx, run.spec, "wasm")
		if err != nil {
			t.Fatal(err)
		}
		if r.Txs != run.n || r.Included != run.n || r.Errors != 0 || r.Acked != run.n || r.Reverted != 0 {
			t.Fatalf("txs %d, included %d, admitted %d, errors %d (%v); want all %d in blocks", r.Txs, r.Included, r.Acked, r.Errors, r.ErrorTexts, run.n)
		}
		w := r.Workload
		if w.Name != WorkloadWasmToken || w.Contract != ContractKey(DefaultSeed).Address().String() || w.ContractBytes != len(code) ||
			w.ProbeRCUsed == 0 || w.ProbeCompute == 0 || w.RCLimit != WasmRCLimit(w.ProbeRCUsed) || r.Load.RCLimit != w.RCLimit || w.SetupTxs != 1+(k+15)/16 {
			t.Fatalf("workload %+v, load rc_limit %d", w, r.Load.RCLimit)
		}
		t.Logf("%s: %.0f tx/s committed", w, r.CommittedTPS)
		var table bytes.Buffer
		r.Table(&table)
		if !strings.Contains(table.String(), "WASM KCS-1 token transfers") {
			t.Fatalf("the table does not say which workload ran:\n%s", table.String())
		}
		done = append(done, run.n)
	}
	// A sweep step runs on the same session, the same workload.
	sw, err := RunSweep(ctx, s, SweepOptions{Rates: []float64{100}, Step: time.Second, Concurrency: 3, Batch: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Steps) != 1 || sw.Steps[0].Report.Included != 100 || sw.Steps[0].Report.Workload.Name != WorkloadWasmToken {
		t.Fatalf("sweep: %+v", sw.Steps)
	}
	done = append(done, 100)
	// Transfers whose rc_limit cannot pay for them revert, yet are
	// admitted and committed: the report counts them as reverted, and
	// they move nothing.
	s.opts.RCLimit /= 4
	r, err := s.Run(ctx, LoadSpec{Txs: 45, Concurrency: 3, Batch: 3}, "short of rc")
	if err != nil {
		t.Fatal(err)
	}
	if r.Included != 45 || r.Reverted != 45 || len(r.ErrorTexts) == 0 {
		t.Fatalf("rc_limit a quarter of a transfer's: %d included, %d reverted (%v); want 45 of each", r.Included, r.Reverted, r.ErrorTexts)
	}
	for text := range r.ErrorTexts {
		if !strings.Contains(text, "admitted but reverted") || !strings.Contains(text, "out of compute") {
			t.Fatalf("error text %q", text)
		}
	}
	got, err := s.TokenBalances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := TokenBalancesAfter(k, done...)
	moved := false
	for a := range want {
		if got[a] != want[a] {
			t.Fatalf("account %d holds %d of the token, want %d (all: %v)", a, got[a], want[a], got)
		}
		moved = moved || got[a] != WasmTokenMint
	}
	if !moved {
		t.Fatal("no balance moved: the test's runs must not be multiples of the accounts")
	}
}

// TestWasmTokenRefusals: a wasm-token session without bytecode, or with
// a file the chain will not take as a contract, fails with a reason the
// user can act on (the chain's own, for the bad file).
func TestWasmTokenRefusals(t *testing.T) {
	for _, c := range []struct {
		workload string
		contract []byte
		want     string
	}{
		{WorkloadWasmToken, nil, "needs --contract FILE"},
		{WorkloadNative, []byte("\x00asm"), "only for --workload wasm-token"},
		{"wasm", nil, `unknown --workload "wasm"`},
	} {
		_, err := NewSession(context.Background(), Options{Workload: c.workload, Contract: c.contract, Node: NodeOptions{Mode: NodeInProcess}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("workload %q with %d bytes: %v, want %q", c.workload, len(c.contract), err, c.want)
		}
		_, err = RunEngine(context.Background(), EngineOptions{Workload: c.workload, Contract: c.contract})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("engine, workload %q with %d bytes: %v, want %q", c.workload, len(c.contract), err, c.want)
		}
	}
	if testing.Short() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := NewSession(ctx, Options{
		Scheme: keys.SchemeEd25519, Accounts: 4, BlockInterval: 100 * time.Millisecond, Node: NodeOptions{Mode: NodeInProcess, Dir: t.TempDir()},
		CeilingTime: -1, MaxTxs: 100, MaxBatch: 1, Workload: WorkloadWasmToken, Contract: []byte("not a wasm module at all"),
	})
	if err == nil || !strings.Contains(err.Error(), "the upload of --contract reverted") || !strings.Contains(err.Error(), "upload_contract") {
		t.Fatalf("a text file uploaded as the contract: %v, want the chain's refusal", err)
	}
	_, err = RunEngine(ctx, EngineOptions{Scheme: keys.SchemeEd25519, Accounts: 4, Blocks: 1, BlockTxs: 4, NoSync: true, Dir: t.TempDir(),
		Workload: WorkloadWasmToken, Contract: []byte("not a wasm module at all")})
	if err == nil || !strings.Contains(err.Error(), "upload_contract") {
		t.Fatalf("engine, a text file uploaded as the contract: %v, want the chain's refusal", err)
	}
}

// TestWasmTokenTransferEncoding: the bench signs WASM transfers with the
// native token's builder pointed at the contract, so its call must be
// exactly KCS-1's transfer: entry point and koinos.contracts.token
// transfer_arguments. The other entry points must be internal/sdkas's.
func TestWasmTokenTransferEncoding(t *testing.T) {
	from, to := deriveKey(keys.SchemeEd25519, "from"), deriveKey(keys.SchemeEd25519, "to").Address()
	contract := ContractKey("x").Address()
	tx, err := txbuilder.Transfer(from, contract, to, 12345, txbuilder.Header{ChainID: []byte{0x12, 0x20}, Nonce: 1, RcLimit: 1})
	if err != nil {
		t.Fatal(err)
	}
	cc := tx.Operations[0].Op.(*protocol.Operation_CallContract).CallContract
	want, _ := (&tokenpb.TransferArguments{From: from.Address().Bytes(), To: to.Bytes(), Value: 12345}).MarshalVT()
	if !bytes.Equal(cc.ContractId, contract.Bytes()) || cc.EntryPoint != sdkas.TokenTransfer || !bytes.Equal(cc.Args, want) {
		t.Fatalf("call %x/0x%08x args %x, want %x/0x%08x args %x", cc.ContractId, cc.EntryPoint, cc.Args, contract.Bytes(), sdkas.TokenTransfer, want)
	}
	if wasmTokenTransfer != sdkas.TokenTransfer || wasmTokenMint != sdkas.TokenMint || wasmTokenBalanceOf != sdkas.TokenBalanceOf {
		t.Fatal("the bench's token entry points differ from internal/sdkas's")
	}
}

// TestEngineModeWasmToken: the engine mode deploys the token in setup
// blocks, applies and produces blocks of WASM transfers, and checks the
// balances itself (RunEngine fails when one differs); a WASM transfer
// costs far more compute than a native one.
func TestEngineModeWasmToken(t *testing.T) {
	if testing.Short() {
		t.Skip("opens stores")
	}
	code := sdkas.Contract(t, "token")
	opts := EngineOptions{Scheme: keys.SchemeEd25519, Accounts: 10, Blocks: 3, BlockTxs: 43, NoSync: true, Dir: t.TempDir()}
	native, err := RunEngine(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Workload, opts.Contract = WorkloadWasmToken, code
	r, err := RunEngine(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("native %.0f compute, %.0f rc per transfer; %s: %.0f compute, %.0f rc", native.ComputePerTx, native.RCPerTx, r.Workload, r.ComputePerTx, r.RCPerTx)
	if r.Txs != 129 || r.Accept.TPS <= 0 || r.Produce.TPS <= 0 || r.SetupBlocks != 2 || r.BalancesChecked != 10 || native.BalancesChecked != 0 {
		t.Fatalf("%+v", r)
	}
	if w := r.Workload; w.Name != WorkloadWasmToken || w.RCLimit != WasmRCLimit(w.ProbeRCUsed) || w.SetupTxs != 2 {
		t.Fatalf("workload %+v", w)
	}
	if native.Workload.Name != WorkloadNative || native.Workload.RCLimit != DefaultRCLimit || native.ComputePerTx <= 0 || r.ComputePerTx < 10*native.ComputePerTx || r.RCPerTx > float64(r.Workload.RCLimit) {
		t.Fatalf("native %+v, wasm %+v", native, r)
	}
	var table bytes.Buffer
	r.Table(&table)
	if !strings.Contains(table.String(), "WASM KCS-1 token transfers") {
		t.Fatalf("the table does not say which workload ran:\n%s", table.String())
	}
}

func TestTokenBalancesAfter(t *testing.T) {
	got := TokenBalancesAfter(3, 4, 3)
	// Run 1: 0→1, 1→2, 2→0, 0→1; run 2: one each, a full turn.
	want := []uint64{WasmTokenMint - 1, WasmTokenMint + 1, WasmTokenMint}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	if got := TokenBalancesAfter(1, 5); got[0] != WasmTokenMint-5 {
		t.Fatalf("one account sends to the sink: %v", got)
	}
}
