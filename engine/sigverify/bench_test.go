package sigverify

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// BenchmarkVerifyPool measures the whole stage — precheck, cache lookup,
// admission, queues, batching, verification, authorization, hand-back —
// with one worker per GOMAXPROCS (run with -cpu 1,2 to see it scale).
// path=tx: many goroutines submitting one-signature transactions with
// VerifyTx, as RPC handlers and gossip validators do; path=block:
// VerifyBlock on blocks of 256 such transactions (plus the producer's
// signature). The outcome cache is off so that every signature is
// verified; signer keys repeat (256 signers), as they do on a chain, so
// the workers' key caches are warm. It reports µs/sig: wall time per
// signature verified, to compare with BenchmarkVerifyEd25519 and
// BenchmarkVerifySecp256k1 in engine/keys at the same -cpu.
func BenchmarkVerifyPool(b *testing.B) {
	const signers, ntx, blockSize = 256, 2048, 256
	f := newFixture(b, 0)
	for i := 0; i < signers; i++ {
		s, _ := keys.Secp256k1FromBytes(seed(fmt.Sprint("bench-secp", i)))
		f.secp = append(f.secp, s)
		f.ed = append(f.ed, keys.Ed25519FromSeed(seed(fmt.Sprint("bench-ed", i))))
	}
	for _, scheme := range []string{"ed25519", "secp256k1"} {
		ks := f.ed
		if scheme == "secp256k1" {
			ks = f.secp
		}
		txs := make([]*protocol.Transaction, ntx)
		for i := range txs {
			txs[i] = f.tx(b, ks[i%signers], nil, uint64(i+1))
		}
		var blocks []*protocol.Block
		for i := 0; i < ntx; i += blockSize {
			blocks = append(blocks, f.block(txs[i:i+blockSize], nil))
		}
		newPool := func(b *testing.B) *Pool {
			p, err := NewPool(PoolConfig{
				Workers: runtime.GOMAXPROCS(0), QueueDepth: 4096, CacheSize: -1,
				MaxInFlightPerSource: 1 << 20, Limits: f.lim,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(p.Close)
			for _, blk := range blocks { // warm the key caches
				if _, err := p.VerifyBlock(context.Background(), blk, 0); err != nil {
					b.Fatal(err)
				}
			}
			return p
		}
		b.Run("scheme="+scheme+"/path=tx", func(b *testing.B) {
			p := newPool(b)
			b.SetParallelism(2 * p.cfg.MaxBatch)
			b.ResetTimer()
			cpu0 := processCPU()
			// A shared counter hands out transactions in turn, so that no
			// two requests in flight are for the same one (they would be
			// verified once, and flatter the figures).
			var next atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					if _, err := p.VerifyTx(context.Background(), txs[i%ntx], "bench"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			if st := p.Stats(); st.CacheJoins > 0 {
				b.Fatalf("%d requests joined another's verification", st.CacheJoins)
			}
			reportPerSig(b, b.N, cpu0)
			reportBatches(b, p)
		})
		b.Run("scheme="+scheme+"/path=block", func(b *testing.B) {
			p := newPool(b)
			n := (b.N + blockSize - 1) / blockSize
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < n; i++ {
				if _, err := p.VerifyBlock(context.Background(), blocks[i%len(blocks)], 0); err != nil {
					b.Fatal(err)
				}
			}
			reportPerSig(b, n*(blockSize+1), cpu0)
			reportBatches(b, p)
		})
	}
}

// reportPerSig reports wall and CPU time per signature verified; cpu0 is
// processCPU() when the timer was reset.
func reportPerSig(b *testing.B, sigs int, cpu0 int64) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sigs)/1e3, "µs/sig")
	if cpu0 > 0 {
		b.ReportMetric(float64(processCPU()-cpu0)/float64(sigs)/1e3, "cpu-µs/sig")
	}
}

// reportBatches reports the mean signatures per worker batch.
func reportBatches(b *testing.B, p *Pool) {
	if st := p.Stats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Signatures)/float64(st.Batches), "sigs/batch")
	}
}
