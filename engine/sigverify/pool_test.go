package sigverify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

func newTestPool(tb testing.TB, cfg PoolConfig) *Pool {
	tb.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// configs are the pool shapes every equivalence test runs under.
func configs(lim *Limits) []PoolConfig {
	return []PoolConfig{
		{Workers: 1, MaxBatch: 1, Limits: lim},
		{Workers: 1, MaxBatch: 64, Limits: lim},
		{Workers: 3, MaxBatch: 7, QueueDepth: 4, Limits: lim, CacheSize: -1},
		{Workers: 4, MaxBatch: 256, Limits: lim, KeyCacheSize: 2, CacheSize: 8, InvalidCacheSize: 4},
		{Workers: 3, MaxBatch: 16, Limits: lim},
	}
}

// The Pool returns exactly what Verify returns, for valid transactions and
// for every kind of invalid one, under concurrent submission, with and
// without the cache, and again when the answer comes from the cache.
func TestPoolMatchesVerify(t *testing.T) {
	f := newFixture(t, 3)
	txs, names := f.corpus(t)
	for ci, cfg := range configs(f.lim) {
		t.Run(fmt.Sprintf("config%d", ci), func(t *testing.T) {
			p := newTestPool(t, cfg)
			var wg sync.WaitGroup
			errs := make(chan string, len(txs))
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for round := 0; round < 2; round++ {
						for i := g; i < len(txs); i += 8 {
							v1, e1 := Verify(txs[i], f.lim)
							var v2 *VerifiedTx
							var e2 error
							for {
								v2, e2 = p.VerifyTx(context.Background(), txs[i], fmt.Sprint("source", g))
								if !errors.Is(e2, ErrOverloaded) && !errors.Is(e2, ErrSourceLimit) {
									break
								}
								time.Sleep(time.Millisecond)
							}
							ft := &recordTB{}
							sameResult(ft, names[i], v1, e1, v2, e2)
							if ft.msg != "" {
								errs <- ft.msg
								return
							}
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatal(e)
			}
			st := p.Stats()
			if st.Verified == 0 || st.Invalid == 0 || st.RejectedPrecheck == 0 {
				t.Fatalf("stats %+v: the corpus should have valid, invalid and malformed transactions", st)
			}
			if cfg.CacheSize >= 0 && st.CacheHits+st.CacheInvalidHits == 0 {
				t.Fatalf("second round never hit the cache: %+v", st)
			}
		})
	}
}

// recordTB lets goroutines run the comparison helpers and report back.
type recordTB struct {
	testing.TB
	msg string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatalf(format string, args ...any) {
	if r.msg == "" {
		r.msg = fmt.Sprintf(format, args...)
	}
}

// Pool.VerifyBlock returns exactly what VerifyBlock returns: for valid
// blocks, for a bad header, and for an invalid transaction anywhere, with
// some transactions already cached (valid or invalid) beforehand.
func TestPoolVerifyBlockMatches(t *testing.T) {
	f := newFixture(t, 4)
	rng := rand.New(rand.NewPCG(1, 2))
	var valid []*protocol.Transaction
	for i := 0; i < 60; i++ {
		valid = append(valid, f.tx(t, f.all[i%len(f.all)], nil, uint64(i+1)))
	}
	damaged := func(tx *protocol.Transaction, m mutation) *protocol.Transaction {
		c := tx.CloneVT()
		m.fn(f, c)
		return c
	}
	type blockCase struct {
		name string
		b    *protocol.Block
	}
	var cases []blockCase
	cases = append(cases,
		blockCase{"valid", f.block(valid[:40], nil)},
		blockCase{"empty", f.block(nil, nil)},
		blockCase{"bad header signature", func() *protocol.Block {
			b := f.block(valid[:10], nil)
			b.Signature = bytes.Clone(b.Signature)
			b.Signature[70] ^= 1
			return b
		}()},
		blockCase{"signed by another", func() *protocol.Block {
			b := f.block(valid[:10], nil)
			b.Signature = f.all[0].Sign(koinos.BlockID(b.Header))
			return b
		}()},
		blockCase{"no previous", f.block(valid[:3], func(b *protocol.Block) { b.Header.Previous = nil })},
		blockCase{"merkle root of nothing", f.block(valid[:40], func(b *protocol.Block) { b.Header.TransactionMerkleRoot = koinos.ZeroMultihash() })},
		blockCase{"transactions swapped", f.block(valid[:40], func(b *protocol.Block) {
			b.Transactions = slices.Clone(b.Transactions)
			b.Transactions[3], b.Transactions[30] = b.Transactions[30], b.Transactions[3]
		})},
		blockCase{"transaction dropped", f.block(valid[:40], func(b *protocol.Block) { b.Transactions = b.Transactions[:39] })},
		blockCase{"transaction added", f.block(valid[:40], func(b *protocol.Block) { b.Transactions = valid[:41] })},
	)
	// A wrong merkle root is reported before any signature failure, and
	// after any precheck failure.
	for _, m := range []mutation{mutations[1], zeroRCOf()} {
		txs := slices.Clone(valid[:40])
		txs[20] = damaged(txs[20], m)
		cases = append(cases, blockCase{"wrong merkle root, " + m.name + " at 20", f.block(txs, func(b *protocol.Block) { b.Header.TransactionMerkleRoot = koinos.ZeroMultihash() })})
	}
	zeroRC := zeroRCOf()
	for _, m := range mutations[1:] {
		for _, size := range []int{40, 60} { // 2 and 3 parts prechecked in parallel
			for _, pos := range []int{0, 17, 25, size - 1} {
				for _, later := range []mutation{mutations[1], zeroRC} {
					txs := append([]*protocol.Transaction(nil), valid[:size]...)
					txs[pos] = damaged(txs[pos], m)
					if pos != size-1 {
						// A second bad one later (a forged signature, or a
						// precheck failure in a later part): the first must
						// be the one reported.
						txs[size-1] = damaged(txs[size-1], later)
					}
					cases = append(cases, blockCase{fmt.Sprintf("%s at %d of %d, then %s", m.name, pos, size, later.name), f.block(txs, nil)})
				}
			}
		}
	}
	for ci, cfg := range configs(f.lim) {
		t.Run(fmt.Sprintf("config%d", ci), func(t *testing.T) {
			p := newTestPool(t, cfg)
			for _, c := range cases {
				// Warm the cache with a random part of the block first, as
				// transactions submitted before the block arrives would.
				for _, tx := range c.b.Transactions {
					if rng.IntN(3) == 0 {
						_, _ = p.VerifyTx(context.Background(), tx, "warm")
					}
				}
				b1, e1 := VerifyBlock(c.b, f.lim, 0)
				b2, e2 := p.VerifyBlock(context.Background(), c.b, 0)
				sameBlockResult(t, c.name, b1, e1, b2, e2)
				_, e3 := p.VerifyBlock(context.Background(), c.b, 5)
				_, e4 := VerifyBlock(c.b, f.lim, 5)
				if fmt.Sprint(e3) != fmt.Sprint(e4) {
					t.Fatalf("%s with maxTxs: %v vs %v", c.name, e3, e4)
				}
			}
		})
	}
}

func zeroRCOf() mutation {
	return mutations[slices.IndexFunc(mutations, func(m mutation) bool { return m.name == "zero rc limit" })]
}

// A genuine header replayed with transactions it does not commit to is
// refused on hashing alone: no transaction signature reaches a worker.
func TestBlockMerkleRootCheckedBeforeSignatures(t *testing.T) {
	f := newFixture(t, 4)
	var txs, others []*protocol.Transaction
	for i := 0; i < 64; i++ {
		txs = append(txs, f.tx(t, f.all[i%len(f.all)], nil, uint64(i+1)))
		others = append(others, f.tx(t, f.all[i%len(f.all)], nil, uint64(1000+i)))
	}
	replayed := f.block(txs, func(b *protocol.Block) { b.Transactions = others })
	for _, workers := range []int{1, 2, 4} {
		p := newTestPool(t, PoolConfig{Workers: workers, Limits: f.lim})
		_, err := p.VerifyBlock(context.Background(), replayed, 0)
		if koinos.CodeOf(err) != chainpb.ErrorCode_malformed_block || !strings.Contains(err.Error(), "transaction_merkle_root") {
			t.Fatalf("%d workers: err = %v", workers, err)
		}
		if st := p.Stats(); st.Signatures != 0 || st.CacheMisses != 0 {
			t.Fatalf("%d workers: %d signatures checked, %d queued, want none", workers, st.Signatures, st.CacheMisses)
		}
	}
}

// Cache poisoning. A transaction's id fixes its header, not its
// signatures, so anyone can make copies of a valid transaction with the
// same id and other signatures. Neither order of arrival may let one copy's
// verdict stand for the other's. The third case is the subtle one: the
// merkle leaf sha256(signatures concatenated) does not separate the
// signatures, so the valid list [Ed25519 (97 bytes), secp256k1 (65)] and
// the invalid list [first 65 bytes, remaining 97] share both the id and
// that digest. A cache keyed by (id, that digest) would accept the invalid
// copy after seeing the valid one.
func TestCachePoisoning(t *testing.T) {
	f := newFixture(t, 2)
	edPayer, secpPayee := f.ed[0], f.secp[0]

	// Find a valid transaction whose Ed25519 signature's S starts with
	// 0xED, so that its last 32 bytes and the secp256k1 signature after
	// them read as a well-formed 97-byte fast-lane signature.
	var valid *protocol.Transaction
	for nonce := uint64(1); valid == nil; nonce++ {
		tx := f.tx(t, edPayer, secpPayee, nonce, edPayer, secpPayee)
		if tx.Signatures[0][65] == 0xED {
			valid = tx
		}
	}
	joined := bytes.Join(valid.Signatures, nil)
	twin := valid.CloneVT()
	twin.Signatures = [][]byte{bytes.Clone(joined[:65]), bytes.Clone(joined[65:])}
	if koinos.SignaturesDigest(twin.Signatures) != koinos.SignaturesDigest(valid.Signatures) || !bytes.Equal(twin.Id, valid.Id) {
		t.Fatal("the twin should share the id and the signatures digest")
	}
	if _, err := Verify(twin, f.lim); err == nil {
		t.Fatal("the twin should be invalid")
	}

	other := valid.CloneVT() // same id, one signature damaged
	other.Signatures[1] = bytes.Clone(other.Signatures[1])
	other.Signatures[1][10] ^= 1
	stranger := valid.CloneVT() // same id, valid signatures by the wrong accounts
	stranger.Signatures = nil
	for _, s := range []keys.Signer{f.ed[1], f.secp[1]} {
		stranger.Signatures = append(stranger.Signatures, s.Sign(mustDigest(valid)))
	}

	for _, bad := range []*protocol.Transaction{twin, other, stranger} {
		for _, badFirst := range []bool{true, false} {
			p := newTestPool(t, PoolConfig{Workers: 2, Limits: f.lim})
			order := []*protocol.Transaction{valid, bad}
			if badFirst {
				order = []*protocol.Transaction{bad, valid}
			}
			for round := 0; round < 2; round++ { // the second round is answered from the cache
				for _, tx := range order {
					v1, e1 := Verify(tx, f.lim)
					v2, e2 := p.VerifyTx(context.Background(), tx, "peer")
					sameResult(t, fmt.Sprintf("badFirst=%v round %d", badFirst, round), v1, e1, v2, e2)
				}
			}
			// In a block too.
			for _, tx := range order {
				b := f.block([]*protocol.Transaction{tx}, nil)
				b1, e1 := VerifyBlock(b, f.lim, 0)
				b2, e2 := p.VerifyBlock(context.Background(), b, 0)
				sameBlockResult(t, "block", b1, e1, b2, e2)
			}
			if st := p.Stats(); st.Verified != 1 || st.Invalid != 1 {
				t.Fatalf("each copy should be verified once: %+v", st)
			}
		}
	}
}

// A transaction submitted many times at once, then seen in a block, is
// verified once.
func TestVerifyOnce(t *testing.T) {
	f := newFixture(t, 2)
	tx := f.tx(t, f.secp[0], nil, 7)
	bad := f.tx(t, f.ed[0], nil, 8)
	bad.Signatures[0][90] ^= 1
	p := newTestPool(t, PoolConfig{Workers: 2, Limits: f.lim})
	var wg sync.WaitGroup
	var fails atomic.Int32
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Distinct sources, so that no source limit applies.
			if _, err := p.VerifyTx(context.Background(), tx, fmt.Sprint("peer", i)); err != nil {
				fails.Add(1)
			}
			if _, err := p.VerifyTx(context.Background(), bad, fmt.Sprint("peer", i)); err == nil {
				fails.Add(1)
			}
		}(i)
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Fatal("wrong answers")
	}
	st := p.Stats()
	if st.Verified != 1 || st.Invalid != 1 || st.CacheMisses != 2 || st.CacheHits+st.CacheJoins+st.CacheInvalidHits != 126 {
		t.Fatalf("want one verification of each: %+v", st)
	}
	vb, err := p.VerifyBlock(context.Background(), f.block([]*protocol.Transaction{tx}, nil), 0)
	if err != nil || len(vb.Txs) != 1 || vb.Txs[0].Payer() != f.secp[0].Address() {
		t.Fatal(err)
	}
	if st2 := p.Stats(); st2.Verified != 1 || st2.CacheHits != st.CacheHits+1 {
		t.Fatalf("the block's transaction was verified again: %+v", st2)
	}
}

// gate blocks the pool's workers until opened, so that tests can fill the
// queues deterministically.
type gate struct {
	ch      chan struct{}
	arrived chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{}), arrived: make(chan struct{}, 100)} }
func (g *gate) wait() {
	g.arrived <- struct{}{}
	<-g.ch
}
func (g *gate) open() { close(g.ch) }

// A full queue refuses submissions at once with ErrOverloaded, a source at
// its limit gets ErrSourceLimit, and both leave the cache clean so the
// same transaction verifies later.
func TestOverload(t *testing.T) {
	f := newFixture(t, 8)
	g := newGate()
	p := newTestPool(t, PoolConfig{Workers: 1, QueueDepth: 2, MaxBatch: 1, MaxInFlightPerSource: 2, Limits: f.lim, beforeVerify: g.wait})
	var txs []*protocol.Transaction
	for i := 0; i < 6; i++ {
		txs = append(txs, f.tx(t, f.all[i], nil, 1))
	}
	results := make(chan error, 10)
	submit := func(tx *protocol.Transaction, src string) {
		go func() {
			_, err := p.VerifyTx(context.Background(), tx, src)
			results <- err
		}()
	}
	submit(txs[0], "a") // taken by the worker, which stops at the gate
	<-g.arrived
	submit(txs[1], "a") // queued
	submit(txs[2], "b") // queued: the queue is full now
	waitFor(t, func() bool { return len(p.workers[0].txq) == 2 })
	if _, err := p.VerifyTx(context.Background(), txs[3], "a"); !errors.Is(err, ErrSourceLimit) {
		t.Fatalf("source a has 2 in flight: got %v, want ErrSourceLimit", err)
	}
	if _, err := p.VerifyTx(context.Background(), txs[3], "c"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("full queue: got %v, want ErrOverloaded", err)
	}
	// A cached answer needs no queue room.
	g.open()
	for i := 0; i < 3; i++ {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.VerifyTx(context.Background(), txs[0], "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.VerifyTx(context.Background(), txs[3], "c"); err != nil {
		t.Fatalf("the refused transaction must verify later: %v", err)
	}
	st := p.Stats()
	if st.RejectedOverload != 1 || st.RejectedSource != 1 || st.Verified != 4 {
		t.Fatalf("%+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// A requester that gives up gets ctx's error; if nobody else waits, the
// worker drops the job unverified. Close wakes everyone with ErrClosed.
func TestCancelAndClose(t *testing.T) {
	f := newFixture(t, 4)
	g := newGate()
	p, err := NewPool(PoolConfig{Workers: 1, QueueDepth: 4, MaxBatch: 1, Limits: f.lim, beforeVerify: g.wait})
	if err != nil {
		t.Fatal(err)
	}
	first := f.tx(t, f.all[0], nil, 1)
	done := make(chan error, 1)
	go func() { _, err := p.VerifyTx(context.Background(), first, "a"); done <- err }()
	<-g.arrived
	ctx, cancel := context.WithCancel(context.Background())
	abandoned := f.tx(t, f.all[1], nil, 1)
	go func() {
		waitFor(t, func() bool { return len(p.workers[0].txq) == 1 })
		cancel()
	}()
	if _, err := p.VerifyTx(ctx, abandoned, "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	g.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Stats().Skipped == 1 })
	if st := p.Stats(); st.Verified != 1 || st.GaveUp != 1 {
		t.Fatalf("%+v", st)
	}
	if _, err := p.VerifyTx(context.Background(), abandoned, "b"); err != nil {
		t.Fatalf("the abandoned transaction must verify when asked again: %v", err)
	}
	if src := p.sources.get("b"); src.inflight.Load() != 0 {
		t.Fatal("source slots leaked")
	}

	// Close while a request waits.
	g2 := newGate()
	p2, _ := NewPool(PoolConfig{Workers: 1, Limits: f.lim, beforeVerify: g2.wait})
	go func() { _, err := p2.VerifyTx(context.Background(), first, "a"); done <- err }()
	<-g2.arrived
	go func() {
		_, err := p2.VerifyBlock(context.Background(), f.block([]*protocol.Transaction{abandoned}, nil), 0)
		done <- err
	}()
	waitFor(t, func() bool { return len(p2.workers[0].blockq) == 1 })
	go p2.Close()
	for i := 0; i < 2; i++ {
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	}
	g2.open()
	p2.Close()
	p.Close()
	if _, err := p2.VerifyTx(context.Background(), first, "a"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := p2.VerifyBlock(context.Background(), f.block(nil, nil), 0); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

// A flood of invalid signatures from one source does not starve valid
// transactions from others: the flooder is held to its in-flight limit
// (then to a suspect's smaller one, verified apart), repeats of an invalid
// transaction are answered from the cache without verification, and every
// valid transaction is admitted and verified.
func TestFloodDoesNotStarveValid(t *testing.T) {
	f := newFixture(t, 8)
	p := newTestPool(t, PoolConfig{Workers: 2, QueueDepth: 64, MaxBatch: 32, MaxInFlightPerSource: 32, Limits: f.lim})

	// Forged transactions: well formed, prechecks pass, signatures do not
	// verify (Ed25519 with R off the curve or S wrong, secp256k1 that
	// recovers another key).
	forged := func(i int) *protocol.Transaction {
		tx := f.tx(t, f.all[i%len(f.all)], nil, uint64(1000+i))
		s := tx.Signatures[0]
		s[len(s)-20] ^= byte(1 + i%255)
		return tx
	}
	stop := make(chan struct{})
	var floodSent, floodRefused atomic.Int64
	var fwg sync.WaitGroup
	for g := 0; g < 16; g++ {
		fwg.Add(1)
		go func(g int) {
			defer fwg.Done()
			for i := g; ; i += 16 {
				select {
				case <-stop:
					return
				default:
				}
				_, err := p.VerifyTx(context.Background(), forged(i), "flooder")
				floodSent.Add(1)
				if errors.Is(err, ErrSourceLimit) {
					floodRefused.Add(1)
				} else if err == nil {
					t.Error("a forged transaction verified")
				}
			}
		}(g)
	}
	waitFor(t, func() bool { return floodSent.Load() > 200 })

	var valid []*protocol.Transaction
	for i := 0; i < 200; i++ {
		valid = append(valid, f.tx(t, f.all[i%len(f.all)], nil, uint64(i+1)))
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(valid); i += 8 {
				if _, err := p.VerifyTx(context.Background(), valid[i], fmt.Sprint("wallet", g)); err != nil {
					t.Errorf("valid transaction %d: %v", i, err)
					failed.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	fwg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d valid transactions failed under the flood", failed.Load())
	}
	if floodRefused.Load() == 0 {
		t.Fatal("the flooder was never held to its limit")
	}
	if !p.sources.isSuspect(p.sources.get("flooder")) {
		t.Fatal("the flooder should be suspect")
	}

	// Repeats of one invalid transaction are answered from the cache.
	st := p.Stats()
	bad := forged(1 << 20)
	for i := 0; i < 1000; i++ {
		if _, err := p.VerifyTx(context.Background(), bad, fmt.Sprint("replayer", i%4)); err == nil {
			t.Fatal("forged transaction accepted")
		}
	}
	st2 := p.Stats()
	if st2.Invalid-st.Invalid != 1 || st2.CacheInvalidHits-st.CacheInvalidHits != 999 {
		t.Fatalf("repeats of an invalid transaction should cost one verification: before %+v after %+v", st, st2)
	}
	t.Logf("flood: %d sent, %d refused at the source limit; valid: 200 of 200 verified; stats %+v", floodSent.Load(), floodRefused.Load(), st2)
}

// The per-source table stays bounded as sources come and go.
func TestSourcesBounded(t *testing.T) {
	f := newFixture(t, 1)
	p := newTestPool(t, PoolConfig{Workers: 1, MaxSources: 16, Limits: f.lim})
	tx := f.tx(t, f.all[0], nil, 1)
	for i := 0; i < 1000; i++ {
		if _, err := p.VerifyTx(context.Background(), tx, fmt.Sprint("peer", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Stats().Sources; n > 17 {
		t.Fatalf("%d sources tracked, want at most 17", n)
	}
}

// The valid and invalid caches are bounded separately, so distinct invalid
// transactions do not evict valid ones.
func TestCacheBounds(t *testing.T) {
	f := newFixture(t, 2)
	p := newTestPool(t, PoolConfig{Workers: 1, CacheSize: 1024, InvalidCacheSize: 64, Limits: f.lim})
	var valid []*protocol.Transaction
	for i := 0; i < 64; i++ {
		tx := f.tx(t, f.all[i%4], nil, uint64(i+1))
		valid = append(valid, tx)
		if _, err := p.VerifyTx(context.Background(), tx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2000; i++ {
		tx := f.tx(t, f.all[i%4], nil, uint64(10_000+i))
		tx.Signatures[0][50] ^= 1
		_, _ = p.VerifyTx(context.Background(), tx, fmt.Sprint("b", i))
	}
	st := p.Stats()
	if st.CachedInvalid > 64 || st.CachedValid != 64 {
		t.Fatalf("cache sizes: %+v", st)
	}
	for _, tx := range valid {
		if _, err := p.VerifyTx(context.Background(), tx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if again := p.Stats().Verified - st.Verified; again != 0 {
		t.Fatalf("%d of 64 valid transactions verified again after an invalid flood", again)
	}
	// The valid cache is bounded too.
	for i := 0; i < 3000; i++ {
		_, _ = p.VerifyTx(context.Background(), f.tx(t, f.all[i%4], nil, uint64(20_000+i)), "c")
	}
	if st := p.Stats(); st.CachedValid > 1024 {
		t.Fatalf("%d valid outcomes cached, bound 1024", st.CachedValid)
	}
}

func TestConfig(t *testing.T) {
	if _, err := NewPool(PoolConfig{}); err == nil {
		t.Fatal("Limits is required")
	}
	if _, err := NewPool(PoolConfig{Workers: -1, Limits: &Limits{}}); err == nil {
		t.Fatal("negative workers accepted")
	}
	c := PoolConfig{Limits: &Limits{}}
	c.EnsureDefaults()
	if c.Workers < 1 || c.QueueDepth != DefaultQueueDepth || c.MaxBatch != keys.MaxEd25519Batch || c.InvalidCacheSize != DefaultCacheSize/4 {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
