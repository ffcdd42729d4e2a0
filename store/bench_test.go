//go:build unix

package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/internal/proccpu"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

var (
	benchMu        sync.Mutex
	benchTemplates = map[int][]*chain.Ready{}
	benchLimits    *sigverify.Limits // the template chain's
)

// transferBlocks returns k Readies of real blocks of n token transfers,
// made by the engine: one producer, n users, each sending one transfer
// per block to the next user. Built once per n and shared by benchmarks.
func transferBlocks(b testing.TB, n, k int) []*chain.Ready {
	benchMu.Lock()
	defer benchMu.Unlock()
	if rs := benchTemplates[n]; len(rs) >= k {
		return rs[:k]
	}
	start := time.Now()
	nd := newNode(b, newNet(b, 1, n), vfs.NewMem(), 1<<20)
	var out []*chain.Ready
	for range k {
		txs := make([]*protocol.Transaction, n)
		for u := range n {
			txs[u] = nd.transfer(u, (u+1)%n, 1)
		}
		r := nd.produce(0, txs...)
		if len(r.Accepted) != 1 || len(r.Irreversible) != 1 || len(r.Accepted[0].Block.Transactions) != n {
			b.Fatalf("template block: %d accepted, %d irreversible", len(r.Accepted), len(r.Irreversible))
		}
		out = append(out, r)
	}
	b.Logf("built %d blocks of %d transfers in %v", k, n, time.Since(start).Round(time.Millisecond))
	benchLimits = nd.c.Limits()
	benchTemplates[n] = out
	return out
}

// relabel makes a Ready that stores a template's block as block `height`
// on top of prev, irreversible at once (one producer). The store checks
// no hashes, so the stream of commits can run as long as the benchmark
// needs while every block is a real one: the same transactions, receipts
// and signers, the same addresses in the history (as a busy chain has).
func relabel(tmpl *chain.Ready, height uint64, prev koinos.Digest) *chain.Ready {
	e := *tmpl.Accepted[0]
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], height)
	e.Topology = chain.Topology{ID: koinos.Sum256(h[:]), Height: height, Previous: prev}
	return &chain.Ready{
		Accepted:     []*chain.BlockEntry{&e},
		Irreversible: []*chain.BlockEntry{&e},
		Meta:         chain.Meta{ChainID: tmpl.Meta.ChainID, Head: e.Topology, LIB: e.Topology},
		HeadChanged:  true,
	}
}

// BenchmarkStoreCommitBlock measures Commit of one block of transfers:
// block record, event log records, metadata, one synced batch, on the real
// disk. With both indexes on (the default) the indexer runs beside the
// commits as in the node, writing the transaction index and account
// history from the log in its own batches: its CPU is in cpu-ms/op, its
// time is not on the commit's path (µs/tx); index-lag-ms is the mean
// wait between a commit and the indexing of its block. µs/tx is the wall time per transaction;
// cpu-ms/op counts every goroutine of the process, Pebble's flushes and
// compactions included; the budget is 20% of verifying the block's
// Ed25519 signatures on one core, about 2 µs per transaction. Run it with
// -benchtime 300x or more: shorter runs stay inside the first memtable
// and leave out the flushes and compactions (doc.go).
func BenchmarkStoreCommitBlock(b *testing.B) {
	for _, tc := range []struct {
		txs     int
		noSync  bool
		noIndex bool
		spaced  bool
	}{{1000, false, false, false}, {5000, false, false, false}, {5000, false, false, true}, {5000, true, false, false}, {5000, false, true, false}} {
		name := fmt.Sprintf("txs=%d", tc.txs)
		if tc.spaced {
			// As in a node, where blocks come an interval apart: the
			// indexer catches up between commits, outside the timer.
			name += "/spaced"
		}
		if tc.noSync {
			name += "/nosync"
		}
		if tc.noIndex {
			name += "/noindex" // a validator's store: no transaction index, no account history
		}
		b.Run(name, func(b *testing.B) {
			tmpls := transferBlocks(b, tc.txs, 4)
			st, err := Open(b.TempDir(), Options{NoSync: tc.noSync, NoTransactionIndex: tc.noIndex, NoAccountHistory: tc.noIndex})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			stopIndexer, lag := func() {}, func() float64 { return 0 }
			if !tc.spaced {
				stopIndexer, lag = runIndexer(b, st)
			}
			defer stopIndexer()
			const warm = 4 // first commits load the history counters
			readies := make([]*chain.Ready, b.N+warm)
			var prev koinos.Digest
			for i := range readies {
				readies[i] = relabel(tmpls[i%len(tmpls)], uint64(i+1), prev)
				prev = readies[i].Meta.Head.ID
			}
			for _, r := range readies[:warm] {
				if err := st.Commit(r); err != nil {
					b.Fatal(err)
				}
			}
			rec, _ := st.get(blockKey(nil, readies[warm-1].Meta.Head.ID))
			b.ReportAllocs()
			cpu := proccpu.Self()
			b.ResetTimer()
			var between time.Duration // CPU spent indexing between spaced commits
			for _, r := range readies[warm:] {
				if err := st.Commit(r); err != nil {
					b.Fatal(err)
				}
				if tc.spaced {
					b.StopTimer()
					c := proccpu.Self()
					indexAll(b, st)
					between += proccpu.Self() - c
					b.StartTimer()
				}
			}
			stopIndexer()
			b.StopTimer()
			cpu = proccpu.Self() - cpu - between
			if tc.spaced {
				b.ReportMetric(float64(between.Microseconds())/1000/float64(b.N), "index-cpu-ms/op")
			}
			if !tc.noIndex && !tc.spaced {
				b.ReportMetric(lag(), "index-lag-ms")
			}
			// The budget's yardstick in the same run: verifying the
			// block's signatures on one core (Ed25519: the template's
			// users all sign with it).
			verify := verifyTime(b, tmpls[0].Accepted[0].Block)
			b.ReportMetric(float64(verify.Microseconds())/1000, "verify-ms")
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(verify), "commit/verify")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*tc.txs), "µs/tx")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(len(rec))/float64(tc.txs), "record-B/tx")
		})
	}
}

// verifyTime is the fastest of three verifications of a block's
// signatures by a one-worker sigverify pool (batched Ed25519, the
// template's users all sign with it), with no verify-once cache so that
// each run verifies every signature.
func verifyTime(b *testing.B, blk *protocol.Block) time.Duration {
	benchMu.Lock()
	lim := benchLimits
	benchMu.Unlock()
	pool, err := sigverify.NewPool(sigverify.PoolConfig{Workers: 1, CacheSize: -1, InvalidCacheSize: -1, Limits: lim})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	best := time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		if _, err := pool.VerifyBlock(context.Background(), blk, 0); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	return best
}

// runIndexer runs the indexer beside the commits, as the node's indexer
// service does, until stop is called (stop waits for it to catch up).
// lag returns the mean index lag of the records it indexed, in ms.
func runIndexer(b *testing.B, st *Store) (stop func(), lag func() float64) {
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var total time.Duration
	var steps int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			wake := st.LogWait()
			for {
				rep, err := st.IndexStep(64)
				if err != nil {
					b.Error(err)
					return
				}
				if rep.Records == 0 {
					break
				}
				total += rep.Lag
				steps++
			}
			select {
			case <-done:
				return
			case <-wake:
			}
		}
	}()
	stop = func() {
		once.Do(func() { close(done); wg.Wait(); indexAll(b, st) })
	}
	lag = func() float64 {
		if steps == 0 {
			return 0
		}
		return float64(total.Microseconds()) / 1000 / float64(steps)
	}
	return stop, lag
}

// BenchmarkRecordEncode isolates the block record: protobuf marshaling and
// zstd, for the frame sizes doc.go compares.
func BenchmarkRecordEncode(b *testing.B) {
	tmpl := transferBlocks(b, 5000, 1)[0].Accepted[0]
	for _, ft := range []int{16, 64, 256, 5000} {
		b.Run(fmt.Sprintf("frameTxs=%d", ft), func(b *testing.B) {
			enc, err := newRecordEncoder(ft)
			if err != nil {
				b.Fatal(err)
			}
			var v []byte
			b.ReportAllocs()
			for b.Loop() {
				if v, err = enc.encode(tmpl); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(v))/5000, "B/tx")
		})
	}
}

// readStore commits the real template blocks (with their genesis-less
// metadata) into a fresh store for the read benchmarks.
func readStore(b *testing.B, n, k int) (*Store, []*chain.Ready) {
	tmpls := transferBlocks(b, n, k)
	st, err := Open(b.TempDir(), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	for _, r := range tmpls {
		if err := st.Commit(r); err != nil {
			b.Fatal(err)
		}
	}
	indexAll(b, st)
	return st, tmpls
}

// BenchmarkTransactionsByID looks up one transaction of a 5,000-transfer
// block, as koilib's wait does: the index seek, then one frame.
func BenchmarkTransactionsByID(b *testing.B) {
	st, tmpls := readStore(b, 5000, 2)
	txs := tmpls[1].Accepted[0].Block.Transactions
	ids := make([]koinos.Digest, len(txs))
	for i, tx := range txs {
		ids[i] = txID(b, tx)
	}
	i := 0
	for b.Loop() {
		items, err := st.TransactionsByID(ids[i%len(ids) : i%len(ids)+1])
		if err != nil || items[0].Tx == nil {
			b.Fatal("not found", err)
		}
		i += 7919
	}
}

// BenchmarkAccountHistory reads the latest 100 records of the token
// contract, which every transfer names.
func BenchmarkAccountHistory(b *testing.B) {
	st, tmpls := readStore(b, 5000, 2)
	token := koinos.Address(tmpls[0].Accepted[0].Block.Transactions[0].Operations[0].GetCallContract().ContractId)
	for _, irr := range []bool{true, false} {
		b.Run(fmt.Sprintf("irreversible=%v", irr), func(b *testing.B) {
			for b.Loop() {
				es, err := st.AccountHistory(token, HistoryQuery{Limit: 100, Irreversible: irr})
				if err != nil || len(es) != 100 {
					b.Fatal(len(es), err)
				}
			}
		})
	}
}

// BenchmarkTransactionsByIDUnindexed looks up one transaction of a
// 5,000-transfer block the indexer has not reached yet (as koilib's wait
// does right after inclusion): the block is searched directly.
func BenchmarkTransactionsByIDUnindexed(b *testing.B) {
	tmpls := transferBlocks(b, 5000, 1)
	st, err := Open(b.TempDir(), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Commit(tmpls[0]); err != nil {
		b.Fatal(err)
	}
	txs := tmpls[0].Accepted[0].Block.Transactions
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		id := txID(b, txs[i%len(txs)])
		items, err := st.TransactionsByID([]koinos.Digest{id})
		if err != nil || items[0].Tx == nil {
			b.Fatal("not found", err)
		}
		i += 7919
	}
}
