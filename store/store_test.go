package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

func TestRestartResumes(t *testing.T) {
	for _, tc := range []struct {
		producers int
		ckEvery   uint64
	}{
		{1, 1}, {1, 3}, {1, 64}, {4, 1}, {4, 5}, {4, 64},
	} {
		t.Run(fmt.Sprintf("producers=%d/checkpoint=%d", tc.producers, tc.ckEvery), func(t *testing.T) {
			nd := newNode(t, newNet(t, tc.producers, 6), nil, tc.ckEvery)
			for i := range 12 {
				nd.produce(i%tc.producers, nd.transfer(i%6, (i+1)%6, uint64(100+i)), nd.transfer((i+3)%6, i%6, 7))
			}
			before := nd.c.View()
			var bals [6][2]uint64
			for i := range bals {
				bals[i][0], bals[i][1] = nd.balance(i)
			}
			if tc.producers > 1 && before.LIB.Height == before.Head.Height {
				t.Fatal("test needs reversible blocks")
			}
			nd.reopen()
			after := nd.c.View()
			if after.Head != before.Head || after.LIB != before.LIB || after.HeadStateRoot != before.HeadStateRoot {
				t.Fatalf("head %d lib %d after restart, want %d %d", after.Head.Height, after.LIB.Height, before.Head.Height, before.LIB.Height)
			}
			for i := range bals {
				if b, n := nd.balance(i); b != bals[i][0] || n != bals[i][1] {
					t.Fatalf("user %d: balance %d nonce %d after restart, want %d %d", i, b, n, bals[i][0], bals[i][1])
				}
			}
			m, _, _ := nd.st.LoadMeta()
			if m.Head != before.Head || m.LIB != before.LIB {
				t.Fatalf("stored meta %+v", m)
			}
			if h, _ := nd.st.Highest(); h != before.Head {
				t.Fatalf("highest after restart %d, want %d", h.Height, before.Head.Height)
			}
			// The chain goes on, and restarts again.
			nd.produce(12%tc.producers, nd.transfer(0, 1, 1))
			head := nd.c.View().Head
			nd.reopen()
			if nd.c.View().Head != head {
				t.Fatal("second restart lost the head")
			}
		})
	}
}

func TestBlockReads(t *testing.T) {
	nd := newNode(t, newNet(t, 1, 4), nil, 64)
	var blocks []*chain.BlockEntry
	for i := range 9 {
		var txs []*protocol.Transaction
		for k := range i % 6 { // 0..5 transactions: frames of 4 split some
			txs = append(txs, nd.transfer(k%4, (k+1)%4, 1))
		}
		r := nd.produce(0, txs...)
		blocks = append(blocks, r.Accepted[0])
	}
	head := nd.c.View().Head
	st := nd.st

	for _, want := range blocks {
		got, err := st.BlockByID(want.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameEntry(t, got, want)
	}
	if _, err := st.BlockByID(koinos.Sum256([]byte("nope"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown block: %v", err)
	}
	if h, _ := st.Highest(); h != head {
		t.Fatalf("highest %+v, want %+v", h, head)
	}

	for _, tc := range []struct {
		start uint64
		n     int
		want  []uint64 // heights
	}{
		{1, 3, []uint64{1, 2, 3}},
		{0, 2, []uint64{1, 2}}, // height 0 is not a block
		{7, 10, []uint64{7, 8, 9}},
		{9, 1, []uint64{9}},
		{10, 5, nil},
		{3, 0, nil},
		{3, -1, nil},
		{1, 5000, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
	} {
		got, err := st.BlocksByHeight(head.ID, tc.start, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("start %d n %d: %d blocks, want %d", tc.start, tc.n, len(got), len(tc.want))
		}
		for i, e := range got {
			if e.Height != tc.want[i] || e.ID != blocks[e.Height-1].ID {
				t.Fatalf("start %d n %d: block %d is height %d", tc.start, tc.n, i, e.Height)
			}
		}
	}
	// A head below the top truncates there.
	got, err := st.BlocksByHeight(blocks[4].ID, 3, 100)
	if err != nil || len(got) != 3 || got[2].ID != blocks[4].ID {
		t.Fatalf("truncated at block 5: %d blocks, %v", len(got), err)
	}
	if _, err := st.BlocksByHeight(koinos.Sum256([]byte("nope")), 1, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown head: %v", err)
	}

	// The engine's reads.
	var canon []uint64
	if err := st.CanonicalBlocks(2, 5, func(e *chain.BlockEntry) error {
		canon = append(canon, e.Height)
		if e.Txs != nil || len(e.Signers) != len(e.Block.Transactions) {
			t.Fatal("replay entries need Signers, not Txs")
		}
		return nil
	}); err != nil || fmt.Sprint(canon) != "[2 3 4 5]" {
		t.Fatalf("canonical %v %v", canon, err)
	}
	if err := st.CanonicalBlocks(8, 12, func(*chain.BlockEntry) error { return nil }); err == nil {
		t.Fatal("canonical blocks above the LIB must be an error")
	}
	n := 0
	if err := st.ForkBlocks(0, func(*chain.BlockEntry) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("one producer: every block is irreversible, ForkBlocks gave %d, %v", n, err)
	}
}

// sameEntry compares a stored entry with the engine's.
func sameEntry(t *testing.T, got, want *chain.BlockEntry) {
	t.Helper()
	if got.Topology != want.Topology {
		t.Fatalf("topology %+v, want %+v", got.Topology, want.Topology)
	}
	if !got.Block.EqualVT(want.Block) || !got.Receipt.EqualVT(want.Receipt) {
		t.Fatalf("block %d differs from what was stored", want.Height)
	}
	if got.Txs != nil {
		t.Fatal("stored entries have no Txs")
	}
	ws := want.TxSigners()
	if len(got.Signers) != len(ws) {
		t.Fatalf("signers of %d txs, want %d", len(got.Signers), len(ws))
	}
	for i := range ws {
		if fmt.Sprint(got.Signers[i]) != fmt.Sprint(ws[i]) {
			t.Fatalf("tx %d signers differ", i)
		}
	}
}

func TestCommitGroupMatchesCommit(t *testing.T) {
	src := newNode(t, newNet(t, 3, 5), nil, 4)
	for i := range 10 {
		src.produce(i%3, src.transfer(i%5, (i+2)%5, 3))
	}
	one, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	grp, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	for _, r := range src.readies {
		if err := one.Commit(r); err != nil {
			t.Fatal(err)
		}
	}
	rs := src.readies
	if err := grp.CommitGroup(rs[:4]); err != nil {
		t.Fatal(err)
	}
	if err := grp.CommitGroup(rs[4:]); err != nil {
		t.Fatal(err)
	}
	if d := diffStores(t, one, grp); d != "" {
		t.Fatal(d)
	}
}

// diffStores compares two stores key by key.
func diffStores(t *testing.T, a, b *Store) string {
	t.Helper()
	ia, _ := a.db.NewIter(nil)
	defer ia.Close()
	ib, _ := b.db.NewIter(nil)
	defer ib.Close()
	okA, okB := ia.First(), ib.First()
	for okA && okB {
		if string(ia.Key()) != string(ib.Key()) {
			return fmt.Sprintf("key %x vs %x", ia.Key(), ib.Key())
		}
		if string(ia.Value()) != string(ib.Value()) {
			return fmt.Sprintf("value of %x differs", ia.Key())
		}
		okA, okB = ia.Next(), ib.Next()
	}
	if okA || okB {
		return "one store has more keys"
	}
	return ""
}

var discard = slog.New(slog.DiscardHandler)

func TestOpenRefusesForeignData(t *testing.T) {
	fs := vfs.NewMem()
	db, err := pebble.Open("x", &pebble.Options{FS: fs, Logger: pebbleLogger{discard}})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Set([]byte("hello"), []byte("world"), pebble.Sync)
	_ = db.Close()
	if _, err := Open("x", Options{FS: fs}); err == nil {
		t.Fatal("a database without a format version must be refused")
	}

	fs = vfs.NewMem()
	db, _ = pebble.Open("y", &pebble.Options{FS: fs, Logger: pebbleLogger{discard}})
	_ = db.Set(keyVersion, []byte("ember-store-0"), pebble.Sync)
	_ = db.Close()
	if _, err := Open("y", Options{FS: fs}); err == nil {
		t.Fatal("another format version must be refused")
	}
}

func TestCommitRefusesBadReadies(t *testing.T) {
	nd := newNode(t, newNet(t, 1, 2), vfs.NewMem(), 64)
	nd.produce(0, nd.transfer(0, 1, 5))
	nd.produce(0)
	st := nd.st
	m, _, _ := st.LoadMeta()

	back := &chain.Ready{Meta: m}
	back.Meta.LIB = chain.Topology{Height: m.LIB.Height - 1}
	if err := st.Commit(back); err == nil {
		t.Fatal("a Ready moving the LIB back must be refused")
	}
	other := &chain.Ready{Meta: m}
	other.Meta.ChainID = koinos.Sum256([]byte("other"))
	if err := st.Commit(other); err == nil {
		t.Fatal("a Ready of another chain must be refused")
	}
	e := *nd.readies[len(nd.readies)-2].Accepted[0]
	e.Txs, e.Signers = nil, nil
	if err := st.Commit(&chain.Ready{Meta: m, Accepted: []*chain.BlockEntry{&e}}); err == nil {
		t.Fatal("a block without signers must be refused")
	}
	// None of that broke the store.
	nd.produce(0, nd.transfer(1, 0, 1))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(&chain.Ready{Meta: m}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
}

// TestReadsDuringCommits reads from several goroutines while blocks are
// committed (run with -race): readers must only ever see committed,
// consistent data.
func TestReadsDuringCommits(t *testing.T) {
	nd := newNode(t, newNet(t, 3, 4), nil, 4)
	nd.produce(0, nd.transfer(0, 1, 1))
	st := nd.st
	stop := make(chan struct{})
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m, _, _ := st.LoadMeta()
				es, err := st.BlocksByHeight(m.Head.ID, 1, 100)
				if err == nil && uint64(len(es)) != m.Head.Height {
					err = fmt.Errorf("%d blocks up to head %d", len(es), m.Head.Height)
				}
				if err == nil {
					last := es[len(es)-1]
					var items []TxItem
					if len(last.Block.Transactions) > 0 {
						items, err = st.TransactionsByID([]koinos.Digest{txIDOf(last.Block.Transactions[0])})
						if err == nil && items[0].Tx == nil {
							err = errors.New("transaction of a committed block not found")
						}
					}
				}
				if err == nil {
					_, err = st.AccountHistory(nd.addr(g), HistoryQuery{Limit: 20})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 30 {
		nd.produce(i%3, nd.transfer(i%4, (i+1)%4, 1))
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func txIDOf(tx *protocol.Transaction) koinos.Digest {
	d, _ := koinos.ParseMultihash(tx.Id)
	return d
}
