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
)

// transferBlock builds, on a fresh chain, a signed block of n transfers
// between `accounts` funded accounts, and returns a function that opens a
// fresh chain on the same genesis, so each iteration applies the block to
// the same state. Signatures are made once; the block is verified outside
// the timer (BenchmarkApplyBlock measures the engine, not sigverify).
func transferBlock(b *testing.B, n, accounts int) (open func() *Chain, vb *sigverify.VerifiedBlock) {
	b.Helper()
	producer := keys.Ed25519FromSeed(seed("bench-producer"))
	users := make([]keys.Signer, accounts)
	balances := map[koinos.Address]uint64{}
	for i := range users {
		users[i] = keys.Ed25519FromSeed(seed(fmt.Sprint("bench-user-", i)))
		balances[users[i].Address()] = 1 << 50
	}
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{producer.Address()}, Balances: balances, Now: time.UnixMilli(1_700_000_000_000)})
	if err != nil {
		b.Fatal(err)
	}
	open = func() *Chain {
		c, r, err := Open(Config{Genesis: g, Storage: newMemStorage()})
		if err != nil {
			b.Fatal(err)
		}
		c.Advance(r)
		return c
	}
	c := open()
	txs := make([]*sigverify.VerifiedTx, 0, n)
	nonces := make([]uint64, accounts)
	for i := 0; i < n; i++ {
		from := i % accounts
		to := (i*7 + 1) % accounts
		if to == from {
			to = (to + 1) % accounts
		}
		nonces[from]++
		txs = append(txs, benchTransfer(b, c, users[from], users[to].Address(), nonces[from]))
	}
	prop, err := c.Build(c.SlotTime(1), producer.Address(), txs)
	if err != nil || len(prop.Failed) > 0 || len(prop.Block.Transactions) != n {
		b.Fatalf("build: %v, %d failed", err, len(prop.Failed))
	}
	blk := prop.Block
	blk.Signature = producer.Sign(prop.ID)
	vb, err = sigverify.VerifyBlock(blk, c.Limits(), 0)
	if err != nil {
		b.Fatal(err)
	}
	return open, vb
}

// BenchmarkApplyBlock applies a block of pre-verified transfers: header
// checks, transaction merkle root, every transfer, state root, fork choice.
// Report: µs per transfer.
func BenchmarkApplyBlock(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("txs=%d", n), func(b *testing.B) {
			open, vb := transferBlock(b, n, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := open()
				b.StartTimer()
				r, err := c.AcceptBlock(vb, math.MaxUint64)
				if err != nil {
					b.Fatal(err)
				}
				c.Advance(r)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/tx")
		})
	}
}

// BenchmarkBuildBlock is the producer's side: the same transfers, applied
// while assembling the block.
func BenchmarkBuildBlock(b *testing.B) {
	open, vb := transferBlock(b, 5000, 1000)
	producer := keys.Ed25519FromSeed(seed("bench-producer"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := open()
		b.StartTimer()
		if _, err := c.Build(c.SlotTime(1), producer.Address(), vb.Txs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*5000), "µs/tx")
}

// benchTransfer is a verified native transfer of 1 from signer to to.
func benchTransfer(b *testing.B, c *Chain, from keys.Signer, to koinos.Address, nonce uint64) *sigverify.VerifiedTx {
	b.Helper()
	tx, err := txbuilder.Transfer(from, c.Token().ID(), to, 1,
		txbuilder.Header{ChainID: c.Limits().ChainID, Nonce: nonce, RcLimit: 10_000_000})
	if err != nil {
		b.Fatal(err)
	}
	v, err := sigverify.Verify(tx, c.Limits())
	if err != nil {
		b.Fatal(err)
	}
	return v
}
