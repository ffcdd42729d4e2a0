package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// TestReadBudget: multi-block reads stop at Options.MaxReadTransactions
// before decoding the block that crosses it, and always read their first
// block; the decoded-block cache keeps within DecodedTransactions.
func TestReadBudget(t *testing.T) {
	n := newNet(t, 1, 4)
	nd := newNode(t, n, nil, 0)
	// Blocks 1..4 hold 3, 1, 3, 2 transfers.
	sizes := []int{3, 1, 3, 2}
	var ids []koinos.Digest
	for _, k := range sizes {
		var txs []*protocol.Transaction
		for i := 0; i < k; i++ {
			txs = append(txs, nd.transfer(i, (i+1)%4, 1))
		}
		r := nd.produce(0, txs...)
		ids = append(ids, r.Accepted[0].ID)
	}
	head := ids[len(ids)-1]

	nd.opts.MaxReadTransactions = 4
	nd.opts.DecodedTransactions = 4
	nd.reopen()
	st := nd.st

	heights := func(es []*chain.BlockEntry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Height)
		}
		return out
	}
	for _, tc := range []struct {
		start uint64
		n     int
		want  []uint64
	}{
		{1, 4, []uint64{1, 2}}, // 3 + 1 = 4; block 3 would make 7
		{2, 4, []uint64{2, 3}}, // 1 + 3
		{3, 4, []uint64{3}},    // 3; block 4 would make 5
		{4, 4, []uint64{4}},    // 2, then head
		{1, 1, []uint64{1}},    // asked for one
		{3, 1, []uint64{3}},    // a first block is read whatever its size
	} {
		es, err := st.BlocksByHeight(head, tc.start, tc.n)
		if err != nil {
			t.Fatalf("BlocksByHeight(%d, %d): %v", tc.start, tc.n, err)
		}
		if got := heights(es); !slices.Equal(got, tc.want) {
			t.Errorf("BlocksByHeight(%d, %d) = heights %v, want %v", tc.start, tc.n, got, tc.want)
		}
	}

	// A first block over the budget leaves none for the rest.
	st.maxReadTxs = 2
	if es, err := st.BlocksByHeight(head, 1, 4); err != nil || !slices.Equal(heights(es), []uint64{1}) {
		t.Errorf("BlocksByHeight(1, 4) with a budget of 2 = heights %v, %v; want [1]", heights(es), err)
	}
	if _, err := st.BlocksByID([]koinos.Digest{ids[0], ids[1]}); !errors.Is(err, ErrReadTooLarge) {
		t.Errorf("BlocksByID past a first block over the budget: err = %v, want ErrReadTooLarge", err)
	}
	st.maxReadTxs = 4

	// The first found block is read whatever its size, also by id.
	st.maxReadTxs = 2
	if es, err := st.BlocksByID([]koinos.Digest{ids[0]}); err != nil || len(es) != 1 || es[0] == nil {
		t.Fatalf("BlocksByID of one block over the budget: %v", err)
	}
	st.maxReadTxs = 4
	unknown := koinos.Sum256([]byte("not a block"))
	for _, tc := range []struct {
		name    string
		ids     []koinos.Digest
		wantErr bool
	}{
		{"within", []koinos.Digest{ids[1], unknown, ids[0]}, false}, // 1 + 3
		{"over", []koinos.Digest{ids[0], ids[2]}, true},             // 3 + 3
		{"unknown only", []koinos.Digest{unknown}, false},
	} {
		es, err := st.BlocksByID(tc.ids)
		if tc.wantErr {
			if !errors.Is(err, ErrReadTooLarge) {
				t.Errorf("%s: err = %v, want ErrReadTooLarge", tc.name, err)
			}
			continue
		}
		if err != nil || len(es) != len(tc.ids) {
			t.Fatalf("%s: %d entries, %v", tc.name, len(es), err)
		}
		for i, id := range tc.ids {
			if (id == unknown) != (es[i] == nil) || (es[i] != nil && es[i].ID != id) {
				t.Errorf("%s: entry %d is wrong", tc.name, i)
			}
		}
	}

	// The cache holds at most 4 transactions, the newest entry aside.
	for _, id := range ids {
		if _, err := st.BlockByID(id); err != nil {
			t.Fatal(err)
		}
		st.decoded.mu.Lock()
		txs, entries := st.decoded.txs, st.decoded.ll.Len()
		st.decoded.mu.Unlock()
		if txs > 4 && entries > 1 {
			t.Fatalf("after reading block %x: cache holds %d transactions in %d entries", id[:4], txs, entries)
		}
	}
}

// TestHistoryReadBudget: block records decode whole blocks, so a query
// returns fewer records once they would decode more than
// MaxReadTransactions transactions; the first is always returned, and
// paging on by seq reads the rest.
func TestHistoryReadBudget(t *testing.T) {
	n := newNet(t, 1, 4)
	nd := newNode(t, n, nil, 0)
	for range 3 { // three blocks of three transfers
		nd.produce(0, nd.transfer(0, 1, 1), nd.transfer(1, 2, 1), nd.transfer(2, 3, 1))
	}
	producer := n.producers[0].Address()
	all, err := nd.st.AccountHistory(producer, HistoryQuery{Limit: 10, Ascending: true})
	if err != nil || len(all) != 3 {
		t.Fatalf("unbounded: %d records, %v", len(all), err)
	}
	nd.st.decoded = newEntryCache(1, 1) // decode again, not from the cache
	nd.st.maxReadTxs = 2                // below the first block: that one only
	if page, err := nd.st.AccountHistory(producer, HistoryQuery{Limit: 10, Ascending: true}); err != nil || len(page) != 1 {
		t.Fatalf("budget below the first block: %d records, %v; want 1", len(page), err)
	}
	nd.st.maxReadTxs = 4
	var got []HistoryEntry
	for seq := uint64(0); len(got) < 3; {
		page, err := nd.st.AccountHistory(producer, HistoryQuery{Limit: 10, Ascending: true, Seq: &seq})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 1 {
			t.Fatalf("page from %d: %d records, want 1 (3 + 3 transactions are over a budget of 4)", seq, len(page))
		}
		got = append(got, page...)
		seq = page[len(page)-1].Seq + 1
	}
	for i := range got {
		if got[i].Seq != all[i].Seq || !got[i].BlockHeader.EqualVT(all[i].BlockHeader) {
			t.Fatalf("record %d differs when paged", i)
		}
	}
}
