package chain

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/internal/sdkas"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// BenchmarkApplyWASMTransfers is BenchmarkApplyBlock for the KCS-1 token
// written with Koinos's SDK (internal/sdkas token.ts): a block of n
// transfers through call_contract, applied by a chain that has the token
// uploaded and every account minted (two earlier blocks, applied outside
// the timer, the compiled module warm from them). Compare its µs/tx with
// BenchmarkApplyBlock's in the same session: the goal is ≤ 5×.
// The native-token sub-benchmark applies native transfers on the same
// chain: what a contract's presence costs the native path.
func BenchmarkApplyWASMTransfers(b *testing.B) {
	const n, accounts = 1000, 200
	code := sdkas.Contract(b, "token")
	producer := keys.Ed25519FromSeed(seed("bench-producer"))
	tokenKey := keys.Ed25519FromSeed(seed("bench-wasm-token"))
	users := make([]keys.Signer, accounts)
	balances := map[koinos.Address]uint64{tokenKey.Address(): 1 << 50}
	for i := range users {
		users[i] = keys.Ed25519FromSeed(seed(fmt.Sprint("bench-user-", i)))
		balances[users[i].Address()] = 1 << 50
	}
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{producer.Address()}, Balances: balances, Now: time.UnixMilli(1_700_000_000_000)})
	if err != nil {
		b.Fatal(err)
	}
	open := func() *Chain {
		c, r, err := Open(Config{Genesis: g, Storage: newMemStorage()})
		if err != nil {
			b.Fatal(err)
		}
		c.Advance(r)
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	c := open()
	id := tokenKey.Address().Bytes()
	sign := func(signer keys.Signer, nonce uint64, ops ...*protocol.Operation) *sigverify.VerifiedTx {
		tx, err := txbuilder.Build(txbuilder.Header{ChainID: c.Limits().ChainID, Nonce: nonce, RcLimit: 1 << 40, Payer: signer.Address()}, ops...)
		if err != nil {
			b.Fatal(err)
		}
		txbuilder.Sign(tx, signer)
		v, err := sigverify.Verify(tx, c.Limits())
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	var setup []*sigverify.VerifiedBlock
	var compute uint64 // of the last block built, over its transactions
	block := func(slot uint64, txs []*sigverify.VerifiedTx) *sigverify.VerifiedBlock {
		prop, err := c.Build(c.SlotTime(slot), producer.Address(), txs)
		if err != nil {
			b.Fatal(err)
		}
		if len(prop.Failed) > 0 || len(prop.Block.Transactions) != len(txs) {
			b.Fatalf("build: failed %v", prop.Failed)
		}
		compute = 0
		for i := range txs {
			rec := prop.node.entry.Receipt.TransactionReceipts[i]
			if rec.Reverted {
				b.Fatalf("transaction %d reverted: %v", i, rec.Logs)
			}
			compute += rec.ComputeBandwidthUsed
		}
		prop.Block.Signature = producer.Sign(prop.ID)
		vb, err := sigverify.VerifyBlock(prop.Block, c.Limits(), 0)
		if err != nil {
			b.Fatal(err)
		}
		return vb
	}
	advance := func(vb *sigverify.VerifiedBlock) {
		r, err := c.AcceptBlock(vb, math.MaxUint64)
		if err != nil {
			b.Fatal(err)
		}
		c.Advance(r)
	}
	// Block 1: the upload. Block 2: a mint to every account.
	setup = append(setup, block(1, []*sigverify.VerifiedTx{sign(tokenKey, 1, uploadOp(tokenKey.Address(), code, "{}"))}))
	advance(setup[0])
	var mints []*protocol.Operation
	for _, u := range users {
		args, _ := (&tokenpb.MintArguments{To: u.Address().Bytes(), Value: 1 << 40}).MarshalVT()
		mints = append(mints, callOp(id, sdkas.TokenMint, args))
	}
	var mintTxs []*sigverify.VerifiedTx
	for i := 0; i < len(mints); i += 16 {
		mintTxs = append(mintTxs, sign(tokenKey, uint64(2+i/16), mints[i:min(i+16, len(mints))]...))
	}
	setup = append(setup, block(2, mintTxs))
	advance(setup[1])
	// Block 3, measured: n transfers of the WASM token, or of the native
	// token on this chain that has a contract (the native path's authority
	// check then consults the contract set).
	// Both blocks are built on the same head before either is measured.
	workloads := []string{"wasm-token", "native-token"}
	measured := map[string]*sigverify.VerifiedBlock{}
	computes := map[string]uint64{} // per transaction, as the receipts say
	for _, workload := range workloads {
		nonces := make([]uint64, accounts)
		txs := make([]*sigverify.VerifiedTx, 0, n)
		for i := range n {
			from, to := i%accounts, (i*7+1)%accounts
			if to == from {
				to = (to + 1) % accounts
			}
			nonces[from]++
			if workload == "native-token" {
				txs = append(txs, benchTransfer(b, c, users[from], users[to].Address(), nonces[from]))
				continue
			}
			args, _ := (&tokenpb.TransferArguments{From: users[from].Address().Bytes(), To: users[to].Address().Bytes(), Value: 1}).MarshalVT()
			txs = append(txs, sign(users[from], nonces[from], callOp(id, sdkas.TokenTransfer, args)))
		}
		measured[workload] = block(3, txs)
		computes[workload] = compute / n
	}
	for _, workload := range workloads {
		b.Run(workload, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c = open()
				for _, vb := range setup {
					advance(vb)
				}
				b.StartTimer()
				advance(measured[workload])
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/tx")
			b.ReportMetric(float64(computes[workload]), "compute/tx")
		})
	}
}
