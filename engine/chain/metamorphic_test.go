package chain

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Metamorphic test of the verification stage (Pebble's metamorphic idea):
// one chain of blocks — both signature schemes, several transactions a
// block, some reverting — is verified through pools of every shape (1 and
// many workers, batches of 1 to 256 signatures, with and without the
// cache, with the cache warmed by earlier submissions in random order) and
// applied to fresh chains. Every run must reproduce the original receipts
// and state roots exactly, and a block with a forged signature must fail
// the same way in every run and leave the chain where it was.
func TestMetamorphicVerifyPools(t *testing.T) {
	const producers, users, heights = 3, 8, 14
	ref := newHarness(t, producers, users)
	rng := rand.New(rand.NewPCG(42, 7))
	nonce := make([]uint64, users)
	var blocks []*protocol.Block
	var receipts []*protocol.BlockReceipt
	for height := 0; height < heights; height++ {
		var txs []*protocol.Transaction
		for k := 0; k < 4+rng.IntN(24); k++ {
			from, to := rng.IntN(users), rng.IntN(users)
			value := uint64(1 + rng.IntN(10_000))
			if rng.IntN(10) == 0 {
				value = 2 * initialBalance // reverts: more than the balance
			}
			nonce[from]++
			txs = append(txs, ref.transfer(from, to, value, nonce[from]))
		}
		r, prop := ref.produce(height%producers, txs...)
		if len(prop.Failed) != 0 {
			t.Fatalf("height %d: %v", height+1, prop.Failed[0].Err)
		}
		blocks = append(blocks, r.Accepted[0].Block)
		receipts = append(receipts, r.Accepted[0].Receipt)
	}
	reverted := 0
	for _, r := range receipts {
		for _, tr := range r.TransactionReceipts {
			if tr.Reverted {
				reverted++
			}
		}
	}
	if reverted == 0 {
		t.Fatal("the chain should include reverted transactions")
	}

	// A forged copy of the next block: one signature byte flipped.
	forged := blocks[heights-1].CloneVT()
	forged.Transactions[len(forged.Transactions)/2].Signatures[0][40] ^= 1
	_, wantForgedErr := sigverify.VerifyBlock(forged, ref.c.Limits(), 0)
	if wantForgedErr == nil {
		t.Fatal("forged block verifies")
	}

	type shape struct {
		name string
		cfg  sigverify.PoolConfig
		warm bool // submit every transaction first, concurrently, in random order
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	shapes := []shape{
		{"1 worker, batch 1", sigverify.PoolConfig{Workers: 1, MaxBatch: 1}, false},
		{"1 worker, batch 64", sigverify.PoolConfig{Workers: 1, MaxBatch: 64}, false},
		{fmt.Sprintf("%d workers, batch 7, tiny queues", n), sigverify.PoolConfig{Workers: n, MaxBatch: 7, QueueDepth: 2}, false},
		{fmt.Sprintf("%d workers, batch 256, no cache", n), sigverify.PoolConfig{Workers: n, MaxBatch: 256, CacheSize: -1, KeyCacheSize: -1}, false},
		{fmt.Sprintf("%d workers, batch 16, warm cache", n), sigverify.PoolConfig{Workers: n, MaxBatch: 16}, true},
		{"2 workers, batch 3, warm tiny cache", sigverify.PoolConfig{Workers: 2, MaxBatch: 3, CacheSize: 8, KeyCacheSize: 1}, true},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			h := newHarness(t, producers, users)
			cfg := sh.cfg
			cfg.Limits = h.c.Limits()
			pool, err := sigverify.NewPool(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			ctx := context.Background()
			if sh.warm {
				var all []*protocol.Transaction
				for _, b := range blocks {
					all = append(all, b.Transactions...)
				}
				rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
				var wg sync.WaitGroup
				for g := 0; g < 4; g++ {
					wg.Add(1)
					go func(g int) {
						defer wg.Done()
						for i := g; i < len(all); i += 4 {
							if _, err := pool.VerifyTx(ctx, all[i], fmt.Sprint("peer", g)); err != nil {
								t.Error(err)
							}
						}
					}(g)
				}
				wg.Wait()
			}
			for i, b := range blocks {
				if i == heights-1 {
					// The forged copy first: the same error, nothing applied.
					_, err := pool.VerifyBlock(ctx, forged, h.c.MaxBlockTransactions())
					if err == nil || err.Error() != wantForgedErr.Error() {
						t.Fatalf("forged block: %v, want %v", err, wantForgedErr)
					}
					if h.c.Head().Height != uint64(i) {
						t.Fatal("the forged block moved the head")
					}
				}
				vb, err := pool.VerifyBlock(ctx, b, h.c.MaxBlockTransactions())
				if err != nil {
					t.Fatalf("block %d: %v", i+1, err)
				}
				want, _ := sigverify.VerifyBlock(b, h.c.Limits(), 0)
				for j := range vb.Txs {
					if !slices.Equal(vb.Txs[j].Signers(), want.Txs[j].Signers()) {
						t.Fatalf("block %d tx %d: signers differ", i+1, j)
					}
				}
				r := h.step(h.c.AcceptBlock(vb, b.Header.Timestamp))
				got := r.Accepted[0].Receipt
				if !got.EqualVT(receipts[i]) {
					t.Fatalf("block %d: receipt differs from the reference run", i+1)
				}
				if !bytes.Equal(got.StateMerkleRoot, receipts[i].StateMerkleRoot) {
					t.Fatalf("block %d: state root differs", i+1)
				}
			}
			if h.c.Head() != ref.c.Head() || h.c.View().HeadStateRoot != ref.c.View().HeadStateRoot {
				t.Fatal("head differs from the reference run")
			}
			for u := 0; u < users; u++ {
				b1, n1 := h.account(u)
				b2, n2 := ref.account(u)
				if b1 != b2 || n1 != n2 {
					t.Fatalf("user %d: balance/nonce %d/%d, reference %d/%d", u, b1, n1, b2, n2)
				}
			}
			st := pool.Stats()
			t.Logf("verified %d, cache hits %d, joins %d, batches %d, batch sizes %v", st.Verified, st.CacheHits, st.CacheJoins, st.Batches, st.BatchSizes)
		})
	}
}
