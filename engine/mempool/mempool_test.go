package mempool

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

var testChainID = koinos.Sum256([]byte("mempool-test")).Multihash()

var testLimits = &sigverify.Limits{ChainID: testChainID}

// fakeState is a head state.
type fakeState struct {
	nonce map[koinos.Address]uint64
	mana  map[koinos.Address]uint64
}

func newFakeState() *fakeState {
	return &fakeState{nonce: map[koinos.Address]uint64{}, mana: map[koinos.Address]uint64{}}
}

func (f *fakeState) Nonce(a koinos.Address) (uint64, error) { return f.nonce[a], nil }
func (f *fakeState) RC(a koinos.Address) (uint64, error)    { return f.mana[a], nil }

func (f *fakeState) clone() *fakeState {
	c := newFakeState()
	for k, v := range f.nonce {
		c.nonce[k] = v
	}
	for k, v := range f.mana {
		c.mana[k] = v
	}
	return c
}

func addr(i int) koinos.Address {
	return koinos.AddressFromKey([]byte(fmt.Sprintf("account-%d", i)))
}

// mkTx builds a VerifiedTx without real signatures (Restore trusts the
// recorded signer), so tests can make thousands cheaply.
func mkTx(tb testing.TB, payer koinos.Address, nonce, rc uint64, salt int) *sigverify.VerifiedTx {
	tb.Helper()
	op := txbuilder.TransferOp(addr(1000), payer, addr(1001), uint64(salt))
	tx, err := txbuilder.Build(txbuilder.Header{ChainID: testChainID, Nonce: nonce, RcLimit: rc, Payer: payer}, op)
	if err != nil {
		tb.Fatal(err)
	}
	tx.Signatures = [][]byte{make([]byte, keys.Ed25519SigSize)}
	tx.Signatures[0][0] = 0xED
	v, err := sigverify.Restore(tx, []koinos.Address{payer}, testLimits)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func ids(es []*Entry) []koinos.Digest {
	out := make([]koinos.Digest, len(es))
	for i, e := range es {
		out[i] = e.Tx.ID()
	}
	return out
}

func TestAddRules(t *testing.T) {
	st := newFakeState()
	a, b := addr(1), addr(2)
	st.mana[a], st.mana[b] = 1000, 1000
	st.nonce[b] = 7
	c := addr(3)
	st.mana[c] = 1000
	m := New(Config{MaxTransactions: 7, MaxPerAccount: 3})
	tests := []struct {
		name string
		tx   *sigverify.VerifiedTx
		code chainpb.ErrorCode // 0: accepted
	}{
		{"first nonce", mkTx(t, a, 1, 100, 0), 0},
		{"gap", mkTx(t, a, 3, 100, 0), chainpb.ErrorCode_invalid_nonce},
		{"reuse", mkTx(t, a, 1, 100, 1), chainpb.ErrorCode_invalid_nonce},
		{"second nonce", mkTx(t, a, 2, 100, 0), 0},
		{"after head nonce", mkTx(t, b, 8, 100, 0), 0},
		{"below head nonce", mkTx(t, b, 7, 100, 1), chainpb.ErrorCode_invalid_nonce},
		{"rc reservation exceeds mana", mkTx(t, a, 3, 801, 0), chainpb.ErrorCode_insufficient_rc},
		{"rc reservation fits exactly", mkTx(t, a, 3, 800, 0), 0},
		{"b second", mkTx(t, b, 9, 1, 0), 0},
		{"b third", mkTx(t, b, 10, 1, 0), 0},
		{"per-account cap", mkTx(t, b, 11, 1, 0), chainpb.ErrorCode_pending_transaction_limit_exceeded},
		{"seventh", mkTx(t, c, 1, 1, 0), 0},
		{"pool cap", mkTx(t, c, 2, 1, 0), chainpb.ErrorCode_pending_transaction_limit_exceeded},
	}
	for _, tt := range tests {
		err := m.Add(tt.tx, st, 0, Usage{})
		if got := koinos.CodeOf(err); (err == nil) != (tt.code == 0) || (err != nil && got != tt.code) {
			t.Errorf("%s: err = %v, want code %v", tt.name, err, tt.code)
		}
	}
	if m.Len() != 7 || m.Reserved(a) != 1000 || m.Count(a) != 3 {
		t.Fatalf("len %d reserved %d count %d", m.Len(), m.Reserved(a), m.Count(a))
	}
	if n, _ := m.PendingNonce(a, st); n != 4 {
		t.Fatalf("pending nonce %d", n)
	}
	if n, _ := m.PendingNonce(addr(4), st); n != 1 {
		t.Fatalf("pending nonce of a new account %d", n)
	}
	s := m.Stats()
	if s.Rejected[ReasonNonce] != 3 || s.Rejected[ReasonRC] != 1 || s.Rejected[ReasonAccountFull] != 1 || s.Rejected[ReasonFull] != 1 {
		t.Fatalf("rejections %v", s.Rejected)
	}
}

func TestBestIsArrivalOrderWithinNonceOrder(t *testing.T) {
	st := newFakeState()
	a, b := addr(1), addr(2)
	st.mana[a], st.mana[b] = 1e9, 1e9
	m := New(Config{})
	a1, b1, a2, b2, a3 := mkTx(t, a, 1, 1, 0), mkTx(t, b, 1, 1, 0), mkTx(t, a, 2, 1, 0), mkTx(t, b, 2, 1, 0), mkTx(t, a, 3, 1, 0)
	for _, v := range []*sigverify.VerifiedTx{a1, b1, a2, b2, a3} {
		if err := m.Add(v, st, 0, Usage{}); err != nil {
			t.Fatal(err)
		}
	}
	want := []koinos.Digest{a1.ID(), b1.ID(), a2.ID(), b2.ID(), a3.ID()}
	if got := ids(m.Best(10)); !slices.Equal(got, want) {
		t.Fatal("Best is not in arrival order")
	}
	if got := ids(m.Best(2)); !slices.Equal(got, want[:2]) {
		t.Fatal("Best(2)")
	}
}

func TestUpdateAndReorg(t *testing.T) {
	st := newFakeState()
	a := addr(1)
	st.mana[a] = 1e9
	m := New(Config{})
	txs := []*sigverify.VerifiedTx{mkTx(t, a, 1, 10, 0), mkTx(t, a, 2, 10, 0), mkTx(t, a, 3, 10, 0)}
	for _, v := range txs {
		if err := m.Add(v, st, 0, Usage{}); err != nil {
			t.Fatal(err)
		}
	}
	// A block includes nonces 1 and 2.
	st.nonce[a] = 2
	if err := m.Update(st, [][]*sigverify.VerifiedTx{txs[:2]}, nil, 0); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 1 || m.Reserved(a) != 10 || ids(m.Best(5))[0] != txs[2].ID() {
		t.Fatalf("after inclusion: len %d reserved %d", m.Len(), m.Reserved(a))
	}
	// The block is orphaned: its transactions come back before nonce 3.
	st.nonce[a] = 0
	if err := m.Update(st, nil, [][]*sigverify.VerifiedTx{txs[:2]}, 0); err != nil {
		t.Fatal(err)
	}
	if got := ids(m.Best(5)); !slices.Equal(got, []koinos.Digest{txs[0].ID(), txs[1].ID(), txs[2].ID()}) || m.Reserved(a) != 30 {
		t.Fatalf("after reorg: %d entries, reserved %d", len(got), m.Reserved(a))
	}
	// Removing nonce 2 (the producer found it failing) drops 3 as well.
	m.Remove(txs[1])
	if m.Len() != 1 || m.Reserved(a) != 10 {
		t.Fatalf("after remove: len %d reserved %d", m.Len(), m.Reserved(a))
	}
}

func TestExpire(t *testing.T) {
	st := newFakeState()
	a, b := addr(1), addr(2)
	st.mana[a], st.mana[b] = 1e9, 1e9
	m := New(Config{ExpiryMs: 100})
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Add(mkTx(t, a, 1, 1, 0), st, 0, Usage{}))
	must(m.Add(mkTx(t, a, 2, 1, 0), st, 60, Usage{}))
	must(m.Add(mkTx(t, b, 1, 1, 0), st, 60, Usage{}))
	if n := m.Expire(99); n != 0 {
		t.Fatalf("expired %d early", n)
	}
	// a's nonce 1 expires, taking nonce 2 with it.
	if n := m.Expire(100); n != 2 || m.Len() != 1 || m.Reserved(a) != 0 {
		t.Fatalf("expired %d, len %d", n, m.Len())
	}
}

// --- reference model ------------------------------------------------------

// refPool is the simplest implementation of the same rules: one list, no
// shards, quadratic where it is easiest.
type refPool struct {
	cfg     Config
	seq     uint64
	entries []*Entry // any order
}

func (r *refPool) queue(na koinos.Address) []*Entry {
	var q []*Entry
	for _, e := range r.entries {
		if e.Tx.NonceAccount() == na {
			q = append(q, e)
		}
	}
	slices.SortFunc(q, func(a, b *Entry) int { return int(a.Tx.Nonce()) - int(b.Tx.Nonce()) })
	return q
}

func (r *refPool) reserved(payer koinos.Address) (s uint64) {
	for _, e := range r.entries {
		if e.Tx.Payer() == payer {
			s += e.Tx.RcLimit()
		}
	}
	return s
}

func (r *refPool) bytes() (s int64) {
	for _, e := range r.entries {
		s += int64(e.Tx.Size())
	}
	return s
}

func (r *refPool) add(v *sigverify.VerifiedTx, st *fakeState, now uint64) bool {
	if len(r.entries) >= r.cfg.MaxTransactions || r.bytes()+int64(v.Size()) > r.cfg.MaxBytes {
		return false
	}
	if r.reserved(v.Payer())+v.RcLimit() > st.mana[v.Payer()] {
		return false
	}
	q := r.queue(v.NonceAccount())
	want := st.nonce[v.NonceAccount()] + 1
	if len(q) > 0 {
		want = q[len(q)-1].Tx.Nonce() + 1
	}
	if v.Nonce() != want || len(q) >= r.cfg.MaxPerAccount || slices.ContainsFunc(r.entries, func(e *Entry) bool { return e.Tx.ID() == v.ID() }) {
		return false
	}
	r.seq++
	r.entries = append(r.entries, &Entry{Tx: v, Seq: r.seq, AddedMs: now})
	return true
}

func (r *refPool) dropFrom(na koinos.Address, nonce uint64) {
	r.entries = slices.DeleteFunc(r.entries, func(e *Entry) bool { return e.Tx.NonceAccount() == na && e.Tx.Nonce() >= nonce })
}

func (r *refPool) best(n int) []*Entry {
	var out []*Entry
	taken := map[*Entry]bool{}
	for len(out) < n {
		var pick *Entry
		for _, e := range r.entries {
			if taken[e] {
				continue
			}
			// Only the lowest untaken nonce of its account is eligible.
			first := true
			for _, o := range r.entries {
				if !taken[o] && o.Tx.NonceAccount() == e.Tx.NonceAccount() && o.Tx.Nonce() < e.Tx.Nonce() {
					first = false
				}
			}
			if first && (pick == nil || e.Seq < pick.Seq) {
				pick = e
			}
		}
		if pick == nil {
			break
		}
		taken[pick] = true
		out = append(out, pick)
	}
	return out
}

func (r *refPool) update(st *fakeState, added, removed [][]*sigverify.VerifiedTx, now uint64) {
	seqOf := map[koinos.Digest]uint64{}
	var touched []koinos.Address
	for _, b := range removed {
		for _, v := range b {
			r.seq++
			seqOf[v.ID()] = r.seq
			if !slices.Contains(touched, v.NonceAccount()) {
				touched = append(touched, v.NonceAccount())
			}
		}
	}
	for _, b := range added {
		for _, v := range b {
			if !slices.Contains(touched, v.NonceAccount()) {
				touched = append(touched, v.NonceAccount())
			}
		}
	}
	for _, na := range touched {
		old := r.queue(na)
		r.entries = slices.DeleteFunc(r.entries, func(e *Entry) bool { return e.Tx.NonceAccount() == na })
		for n := st.nonce[na] + 1; ; n++ {
			var e *Entry
			if i := slices.IndexFunc(old, func(e *Entry) bool { return e.Tx.Nonce() == n }); i >= 0 {
				e = old[i]
			} else {
			search:
				for _, b := range removed {
					for _, v := range b {
						if v.NonceAccount() == na && v.Nonce() == n {
							e = &Entry{Tx: v, Seq: seqOf[v.ID()], AddedMs: now}
							break search
						}
					}
				}
			}
			if e == nil || len(r.queue(na)) >= r.cfg.MaxPerAccount {
				break
			}
			r.entries = append(r.entries, e)
		}
	}
}

func (r *refPool) expire(now uint64) {
	for {
		i := slices.IndexFunc(r.entries, func(e *Entry) bool { return e.AddedMs+r.cfg.ExpiryMs <= now })
		if i < 0 {
			return
		}
		e := r.entries[i]
		r.dropFrom(e.Tx.NonceAccount(), e.Tx.Nonce())
	}
}

// TestAgainstReference drives the pool and the reference with the same
// random operations and compares them after each.
func TestAgainstReference(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runReference(t, seed) })
	}
}

func runReference(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	cfg := Config{MaxTransactions: 25, MaxBytes: 25 * 400, MaxPerAccount: 5, ExpiryMs: 50, Shards: 4}
	m := New(cfg)
	ref := &refPool{cfg: cfg}
	ref.cfg.ensureDefaults()
	const nAcct = 6
	st := newFakeState()
	for i := 0; i < nAcct; i++ {
		st.mana[addr(i)] = 300
	}
	type block struct {
		txs  [][]*sigverify.VerifiedTx
		prev *fakeState
	}
	var chain []block
	now := uint64(0)
	salt := 0
	for step := 0; step < 400; step++ {
		now += uint64(rng.IntN(4))
		switch op := rng.IntN(10); {
		case op < 6: // submit
			a := addr(rng.IntN(nAcct))
			n, _ := m.PendingNonce(a, st)
			if rng.IntN(6) == 0 {
				n += uint64(rng.IntN(3)) - 1
			}
			salt++
			v := mkTx(t, a, n, uint64(1+rng.IntN(120)), salt)
			got := m.Add(v, st, now, Usage{}) == nil
			if want := ref.add(v, st, now); got != want {
				t.Fatalf("step %d: Add = %v, reference %v", step, got, want)
			}
		case op < 8: // produce a block from Best
			best := m.Best(1 + rng.IntN(6))
			if !slices.Equal(ids(best), ids(ref.best(len(best)))) {
				t.Fatalf("step %d: Best differs from the reference", step)
			}
			prev := st.clone()
			var included, failed []*sigverify.VerifiedTx
			for _, e := range best {
				v := e.Tx
				if v.Nonce() == st.nonce[v.NonceAccount()]+1 && st.mana[v.Payer()] >= v.RcLimit() {
					st.nonce[v.NonceAccount()] = v.Nonce()
					st.mana[v.Payer()] -= v.RcLimit() / 2
					included = append(included, v)
				} else {
					failed = append(failed, v)
				}
			}
			for _, v := range failed {
				m.Remove(v)
				ref.dropFrom(v.NonceAccount(), v.Nonce())
			}
			added := [][]*sigverify.VerifiedTx{included}
			if err := m.Update(st, added, nil, now); err != nil {
				t.Fatal(err)
			}
			ref.update(st, added, nil, now)
			chain = append(chain, block{txs: added, prev: prev})
		case op < 9: // reorg: the last block leaves the head chain
			if len(chain) == 0 {
				continue
			}
			b := chain[len(chain)-1]
			chain = chain[:len(chain)-1]
			st = b.prev
			if err := m.Update(st, nil, b.txs, now); err != nil {
				t.Fatal(err)
			}
			ref.update(st, nil, b.txs, now)
		default:
			m.Expire(now)
			ref.expire(now)
		}
		if got, want := ids(m.Best(1000)), ids(ref.best(1000)); !slices.Equal(got, want) {
			t.Fatalf("step %d: pool has %d, reference %d", step, len(got), len(want))
		}
		if m.Len() != len(ref.entries) || m.Stats().Bytes != ref.bytes() {
			t.Fatalf("step %d: counters %d/%d bytes %d/%d", step, m.Len(), len(ref.entries), m.Stats().Bytes, ref.bytes())
		}
		for i := 0; i < nAcct; i++ {
			if m.Reserved(addr(i)) != ref.reserved(addr(i)) {
				t.Fatalf("step %d: reserved of %d: %d vs %d", step, i, m.Reserved(addr(i)), ref.reserved(addr(i)))
			}
		}
	}
}

// TestConcurrentAdds checks the counters stay exact under contention (run
// with -race).
func TestConcurrentAdds(t *testing.T) {
	st := newFakeState()
	const workers, perWorker = 8, 200
	txs := make([][]*sigverify.VerifiedTx, workers)
	for w := 0; w < workers; w++ {
		a := addr(w)
		st.mana[a] = 1e12
		for n := 1; n <= perWorker; n++ {
			txs[w] = append(txs[w], mkTx(t, a, uint64(n), 1000, 0))
		}
	}
	m := New(Config{MaxTransactions: workers * perWorker / 2})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, v := range txs[w] {
				if m.Add(v, st, 0, Usage{}) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
				if w == 0 {
					m.Best(50)
				}
			}
		}()
	}
	wg.Wait()
	if accepted != workers*perWorker/2 || m.Len() != accepted || len(m.Best(1<<20)) != accepted {
		t.Fatalf("accepted %d, len %d", accepted, m.Len())
	}
}

func BenchmarkMempoolInsert(b *testing.B) {
	// Parallel inserts, each goroutine on its own accounts (as independent
	// wallets are), pool large enough never to fill. Every insert must
	// succeed: a benchmark of the rejection path would flatter the figure.
	const accounts = 4096
	st := newFakeState()
	for i := 0; i < accounts; i++ {
		st.mana[addr(i)] = 1 << 62
	}
	// Half the accounts suffice for b.N inserts, so that goroutines that
	// each leave an account part-used never run out.
	perAcct := b.N/(accounts/2) + 1
	all := make([][]*sigverify.VerifiedTx, accounts)
	for i := range all {
		for n := 1; n <= perAcct; n++ {
			all[i] = append(all[i], mkTx(b, addr(i), uint64(n), 1, 0))
		}
	}
	m := New(Config{MaxTransactions: b.N + 1, MaxBytes: 1 << 40, MaxPerAccount: perAcct + 1})
	var nextAcct, failed atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		k, i := int(nextAcct.Add(1)-1), 0
		for pb.Next() {
			if i == perAcct {
				k, i = int(nextAcct.Add(1)-1), 0
			}
			if err := m.Add(all[k][i], st, 0, Usage{}); err != nil {
				failed.Add(1)
			}
			i++
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d inserts failed", n, b.N)
	}
}

func BenchmarkMempoolBest(b *testing.B) {
	const accounts, perAcct = 5000, 4
	st := newFakeState()
	m := New(Config{})
	for i := 0; i < accounts; i++ {
		st.mana[addr(i)] = 1 << 62
	}
	for n := 1; n <= perAcct; n++ {
		for i := 0; i < accounts; i++ {
			if err := m.Add(mkTx(b, addr(i), uint64(n), 1, 0), st, 0, Usage{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if len(m.Best(5000)) != 5000 {
			b.Fatal("short")
		}
	}
}

// addWithin never takes its counter over the limit, even for a moment,
// however many add at once.
func TestAddWithin(t *testing.T) {
	var c atomic.Int64
	const limit, adders = 64, 32
	var over atomic.Bool
	var wg sync.WaitGroup
	for range adders {
		wg.Go(func() {
			for range 1000 {
				if addWithin(&c, 1, limit) {
					if c.Load() > limit {
						over.Store(true)
					}
					c.Add(-1)
				}
			}
		})
	}
	wg.Wait()
	if over.Load() {
		t.Fatal("the counter went over its limit")
	}
	c.Store(limit - 2)
	for _, tc := range []struct {
		delta int64
		ok    bool
	}{{3, false}, {2, true}, {1, false}} {
		if got := addWithin(&c, tc.delta, limit); got != tc.ok {
			t.Fatalf("addWithin(+%d) at %d = %v, want %v", tc.delta, c.Load(), got, tc.ok)
		}
	}
}

// BenchmarkMempoolUpdate is the pool's work for one block at a steady
// backlog: 1,000 accounts with backlog pending transactions each, a block
// that includes the next nonce of every account (ns/op is one Update).
// Each block's transactions are replaced outside the timer, so the
// backlog stays constant.
func BenchmarkMempoolUpdate(b *testing.B) {
	for _, backlog := range []int{4, 64} {
		b.Run(fmt.Sprintf("pending=%d", accountsUpdate*backlog), func(b *testing.B) {
			st := newFakeState()
			txs := make([][]*sigverify.VerifiedTx, accountsUpdate)
			for i := range txs {
				st.mana[addr(i)] = 1 << 62
				for n := 1; n <= backlog+b.N; n++ {
					txs[i] = append(txs[i], mkTx(b, addr(i), uint64(n), 1, 0))
				}
			}
			m := New(Config{MaxTransactions: 1 << 30, MaxBytes: 1 << 40, MaxPerAccount: backlog + 1})
			for i := range txs {
				for _, v := range txs[i][:backlog] {
					if err := m.Add(v, st, 0, Usage{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			block := make([]*sigverify.VerifiedTx, accountsUpdate)
			b.ResetTimer()
			for k := range b.N {
				for i := range txs {
					block[i] = txs[i][k]
					st.nonce[addr(i)] = uint64(k + 1)
				}
				if err := m.Update(st, [][]*sigverify.VerifiedTx{block}, nil, 0); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for i := range txs {
					if err := m.Add(txs[i][backlog+k], st, 0, Usage{}); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			if m.Len() != accountsUpdate*backlog {
				b.Fatalf("%d pending, want %d", m.Len(), accountsUpdate*backlog)
			}
		})
	}
}

const accountsUpdate = 1000
