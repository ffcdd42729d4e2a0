package sigverify

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/internal/proccpu"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// BenchmarkVerifyPool measures the whole stage — precheck, cache lookup,
// admission, queues, batching, verification, authorization, hand-back —
// with one worker per GOMAXPROCS (run with -cpu 1,2 to see it scale).
// path=tx: many goroutines submitting one-signature transactions with
// VerifyTx, as gossip validators do; path=txs: VerifyTxs on groups of 100,
// as the JSON-RPC gateway does for a batch; path=block:
// VerifyBlock on blocks of 256 and of 2,048 such transactions (plus the
// producer's signature): a block is cut into one part per worker, so the
// small one gives each of two workers a single batch of 128 and the large
// one full batches of keys.MaxEd25519Batch. The outcome cache is off so that every signature is
// verified; signer keys repeat (256 signers), as they do on a chain, so
// the workers' key caches are warm. It reports µs/sig: wall time per
// signature verified, to compare with BenchmarkVerifyEd25519 and
// BenchmarkVerifySecp256k1 in engine/keys at the same -cpu.
func BenchmarkVerifyPool(b *testing.B) {
	// ntx is several times the requests in flight on the tx path (2 ×
	// MaxBatch per GOMAXPROCS), so that no two are for the same one.
	const signers, ntx = 256, 8192
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
		blocksOf := func(size int) (blocks []*protocol.Block) {
			for i := 0; i < ntx; i += size {
				blocks = append(blocks, f.block(txs[i:i+size], nil))
			}
			return blocks
		}
		warm := blocksOf(ntx)
		newPool := func(b *testing.B) *Pool {
			p, err := NewPool(PoolConfig{
				Workers: runtime.GOMAXPROCS(0), QueueDepth: 4096, CacheSize: -1,
				MaxInFlightPerSource: 1 << 20, Limits: f.lim,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(p.Close)
			for _, blk := range warm { // warm the key caches
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
			cpu0 := proccpu.Self()
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
		b.Run("scheme="+scheme+"/path=txs", func(b *testing.B) {
			// The gateway's path: a JSON-RPC batch of 100 submissions is
			// verified with one VerifyTxs call, so its signatures reach a
			// worker as one chunk. Four callers per core keep every worker
			// fed while results are handed back.
			const group = 100
			p := newPool(b)
			b.SetParallelism(4)
			calls := (b.N + group - 1) / group
			b.ResetTimer()
			cpu0 := proccpu.Self()
			var next, done, verified atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if done.Add(1) > uint64(calls) {
						continue // b.N counts transactions; stop at the calls they make
					}
					i := int(next.Add(group)-group) % ntx
					batch := txs[i:min(i+group, ntx)]
					verified.Add(uint64(len(batch)))
					_, errs := p.VerifyTxs(context.Background(), batch, "bench")
					for _, err := range errs {
						if err != nil {
							b.Error(err)
							return
						}
					}
				}
			})
			if st := p.Stats(); st.CacheJoins > 0 {
				b.Fatalf("%d requests joined another's verification", st.CacheJoins)
			}
			reportPerSig(b, int(verified.Load()), cpu0)
			reportBatches(b, p)
		})
		for _, blockSize := range []int{256, 2048} {
			blocks := blocksOf(blockSize)
			name := "scheme=" + scheme + "/path=block"
			if blockSize != 256 {
				name += fmt.Sprintf("/txs=%d", blockSize)
			}
			b.Run(name, func(b *testing.B) {
				p := newPool(b)
				n := (b.N + blockSize - 1) / blockSize
				b.ResetTimer()
				cpu0 := proccpu.Self()
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
}

// reportPerSig reports wall and CPU time per signature verified; cpu0 is
// proccpu.Self() when the timer was reset.
func reportPerSig(b *testing.B, sigs int, cpu0 time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sigs)/1e3, "µs/sig")
	if cpu0 > 0 {
		b.ReportMetric(float64(proccpu.Self()-cpu0)/float64(sigs)/1e3, "cpu-µs/sig")
	}
}

// reportBatches reports the mean signatures per worker batch.
func reportBatches(b *testing.B, p *Pool) {
	if st := p.Stats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Signatures)/float64(st.Batches), "sigs/batch")
	}
}
