package keys

import (
	stded25519 "crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	circled25519 "github.com/cloudflare/circl/sign/ed25519"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/internal/proccpu"
)

// Benchmarks of the raw library calls and of this package's paths. One
// op is one signature; they run in parallel (b.RunParallel), so -cpu 1,2
// shows how each scales. Each also reports µs/sig (= ns/op / 1000), the
// unit BenchmarkVerifyPool in sigverify reports, for comparison.

const (
	benchSigs    = 1024 // distinct (signature, digest) pairs cycled through
	benchSigners = 256  // distinct keys among them
)

// reportPerSig reports wall and CPU time per signature; cpu0 is
// proccpu.Self() when the timer was reset.
func reportPerSig(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/sig")
	if cpu0 > 0 {
		b.ReportMetric(float64(proccpu.Self()-cpu0)/float64(b.N)/1e3, "cpu-µs/sig")
	}
}

func benchItems(b *testing.B, scheme Scheme) []Item {
	b.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	signers := make([]Signer, benchSigners)
	for i := range signers {
		seed := koinos.Sum256([]byte(fmt.Sprint("bench", scheme, i)))
		if scheme == SchemeSecp256k1 {
			k, err := Secp256k1FromBytes(seed[:])
			if err != nil {
				b.Fatal(err)
			}
			signers[i] = k
		} else {
			signers[i] = Ed25519FromSeed(seed[:])
		}
	}
	items := make([]Item, benchSigs)
	for i := range items {
		for j := range items[i].Digest {
			items[i].Digest[j] = byte(rng.Uint32())
		}
		items[i].Sig = signers[i%benchSigners].Sign(items[i].Digest)
	}
	return items
}

// parallel runs fn on successive items from each goroutine.
func parallel(b *testing.B, items []Item, fn func(*Item)) {
	b.ResetTimer()
	cpu0 := proccpu.Self()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(items))
		for pb.Next() {
			fn(&items[i%len(items)])
			i++
		}
	})
	reportPerSig(b, cpu0)
}

// parallelBatches hands each goroutine runs of n items; fn checks a run.
func parallelBatches(b *testing.B, items []Item, n int, fn func([]Item)) {
	b.ResetTimer()
	cpu0 := proccpu.Self()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(items))
		run := make([]Item, 0, n)
		for more := true; more; {
			run = run[:0]
			for len(run) < n {
				if more = pb.Next(); !more {
					break
				}
				run = append(run, items[i%len(items)])
				i++
			}
			if len(run) > 0 {
				fn(run)
			}
		}
	})
	reportPerSig(b, cpu0)
}

// BenchmarkVerifySecp256k1 compares the secp256k1 implementations on
// Koinos recovery: raw library calls, then the Koinos path (rules checked
// in Go, then the implementation), then RecoverSecp256k1 (plus the address).
func BenchmarkVerifySecp256k1(b *testing.B) {
	items := benchItems(b, SchemeSecp256k1)
	for _, it := range items {
		if _, err := RecoverSecp256k1(it.Sig, it.Digest); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("impl=decred/raw", func(b *testing.B) {
		parallel(b, items, func(it *Item) {
			var buf [Secp256k1SigSize]byte
			copy(buf[:], it.Sig)
			buf[0] = 27 + 4 + it.Sig[0]>>5
			if _, _, err := ecdsa.RecoverCompact(buf[:], it.Digest[:]); err != nil {
				b.Fatal(err)
			}
		})
	})
	if raw := rawLibsecpRecover(); raw != nil {
		b.Run("impl=libsecp256k1/raw", func(b *testing.B) {
			parallel(b, items, func(it *Item) {
				if !raw(it.Sig, it.Digest[:]) {
					b.Fatal("libsecp256k1 failed")
				}
			})
		})
	}
	for _, im := range secpImpls() {
		b.Run("impl="+im.name+"/koinos", func(b *testing.B) {
			parallel(b, items, func(it *Item) {
				if _, err := recoverWith(im.recover, it.Sig, &it.Digest); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
	b.Run("impl=default/address", func(b *testing.B) {
		parallel(b, items, func(it *Item) {
			if _, err := RecoverSecp256k1(it.Sig, it.Digest); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("impl=default/verifier", func(b *testing.B) {
		b.ResetTimer()
		cpu0 := proccpu.Self()
		b.RunParallel(func(pb *testing.PB) {
			v := NewVerifier(0)
			i := rand.IntN(len(items))
			for pb.Next() {
				it := items[i%len(items)]
				if _, err := v.Verify(it.Sig, it.Digest); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		reportPerSig(b, cpu0)
	})
}

// BenchmarkVerifyEd25519 compares Ed25519 libraries and batch sizes:
// crypto/ed25519 and circl (single only), curve25519-voi single and batch
// with keys expanded per call (lib=voi) or expanded once and cached
// (lib=voi-expanded), and this package's Verifier (lib=ember: prescreen,
// key cache, batches, addresses).
func BenchmarkVerifyEd25519(b *testing.B) {
	items := benchItems(b, SchemeEd25519)
	expanded := map[string]*ed25519.ExpandedPublicKey{}
	for _, it := range items {
		if _, err := VerifyEd25519(it.Sig, it.Digest); err != nil {
			b.Fatal(err)
		}
		pub := string(it.Sig[1:33])
		if expanded[pub] == nil {
			expanded[pub], _ = ed25519.NewExpandedPublicKey(it.Sig[1:33])
		}
	}
	for _, n := range benchBatchSizes {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			if n == 1 {
				b.Run("lib=stdlib", func(b *testing.B) {
					parallel(b, items, func(it *Item) {
						if !stded25519.Verify(it.Sig[1:33], it.Digest[:], it.Sig[33:]) {
							b.Fatal("invalid")
						}
					})
				})
				b.Run("lib=circl", func(b *testing.B) {
					parallel(b, items, func(it *Item) {
						if !circled25519.Verify(it.Sig[1:33], it.Digest[:], it.Sig[33:]) {
							b.Fatal("invalid")
						}
					})
				})
				b.Run("lib=voi", func(b *testing.B) {
					parallel(b, items, func(it *Item) {
						if !ed25519.VerifyWithOptions(it.Sig[1:33], it.Digest[:], it.Sig[33:], Ed25519VerifyOptions) {
							b.Fatal("invalid")
						}
					})
				})
				b.Run("lib=voi-expanded", func(b *testing.B) {
					parallel(b, items, func(it *Item) {
						if !ed25519.VerifyExpandedWithOptions(expanded[string(it.Sig[1:33])], it.Digest[:], it.Sig[33:], Ed25519VerifyOptions) {
							b.Fatal("invalid")
						}
					})
				})
			} else {
				b.Run("lib=voi", func(b *testing.B) {
					bvs := make(chan *ed25519.BatchVerifier, 64)
					parallelBatches(b, items, n, func(run []Item) {
						var bv *ed25519.BatchVerifier
						select {
						case bv = <-bvs:
							bv.Reset()
						default:
							bv = ed25519.NewBatchVerifierWithCapacity(n)
						}
						for i := range run {
							bv.AddWithOptions(run[i].Sig[1:33], run[i].Digest[:], run[i].Sig[33:], Ed25519VerifyOptions)
						}
						if ok, _ := bv.Verify(nil); !ok {
							b.Fatal("invalid")
						}
						select {
						case bvs <- bv:
						default:
						}
					})
				})
				b.Run("lib=voi-expanded", func(b *testing.B) {
					bvs := make(chan *ed25519.BatchVerifier, 64)
					parallelBatches(b, items, n, func(run []Item) {
						var bv *ed25519.BatchVerifier
						select {
						case bv = <-bvs:
							bv.Reset()
						default:
							bv = ed25519.NewBatchVerifierWithCapacity(n)
						}
						for i := range run {
							bv.AddExpandedWithOptions(expanded[string(run[i].Sig[1:33])], run[i].Digest[:], run[i].Sig[33:], Ed25519VerifyOptions)
						}
						if ok, _ := bv.Verify(nil); !ok {
							b.Fatal("invalid")
						}
						select {
						case bvs <- bv:
						default:
						}
					})
				})
			}
			b.Run("lib=ember", func(b *testing.B) {
				vs := make(chan *Verifier, 64)
				parallelBatches(b, items, n, func(run []Item) {
					var v *Verifier
					select {
					case v = <-vs:
					default:
						v = NewVerifier(0)
					}
					v.VerifyBatch(run)
					for i := range run {
						if run[i].Err != nil {
							b.Fatal(run[i].Err)
						}
					}
					select {
					case vs <- v:
					default:
					}
				})
			})
		})
	}
}

// benchBatchSizes are BenchmarkVerifyEd25519's sub-benchmarks: 128 is
// MaxEd25519Batch, the pool's default batch.
var benchBatchSizes = []int{1, 2, 4, 8, 16, 32, 64, 128, 256}
