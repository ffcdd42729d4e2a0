package store

import (
	"fmt"
	"slices"
	"testing"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// refRecord is one expected history record.
type refRecord struct {
	block *chain.BlockEntry
	entry int // 0: the block; i+1: transaction i
}

// refHistory is the reference: Koinos's attribution written as plainly as
// possible, over the head chain up to height top.
func refHistory(addr koinos.Address, headChain []*chain.BlockEntry, top uint64) []refRecord {
	var out []refRecord
	for _, e := range headChain {
		if e.Height > top {
			break
		}
		set := map[string]bool{}
		set[string(e.Block.Header.Signer)] = true
		for _, ev := range e.Receipt.Events {
			set[string(ev.Source)] = true
			for _, a := range ev.Impacted {
				set[string(a)] = true
			}
		}
		if set[string(addr[:])] {
			out = append(out, refRecord{e, 0})
		}
		for i, tx := range e.Block.Transactions {
			set := map[string]bool{string(tx.Header.Payer): true, string(tx.Header.Payee): true}
			for _, op := range tx.Operations {
				if cc := op.GetCallContract(); cc != nil {
					set[string(cc.ContractId)] = true
				}
			}
			for _, ev := range e.Receipt.TransactionReceipts[i].Events {
				set[string(ev.Source)] = true
				for _, a := range ev.Impacted {
					set[string(a)] = true
				}
			}
			if set[string(addr[:])] {
				out = append(out, refRecord{e, i + 1})
			}
		}
	}
	return out
}

// headChain returns the blocks of the node's head chain, from height 1, as
// the engine made them.
func headChain(nd *node) []*chain.BlockEntry {
	byID := map[koinos.Digest]*chain.BlockEntry{}
	for _, r := range nd.readies {
		for _, e := range r.Accepted {
			byID[e.ID] = e
		}
	}
	var out []*chain.BlockEntry
	for id := nd.c.View().Head.ID; ; {
		e := byID[id]
		if e == nil {
			break
		}
		out = append(out, e)
		id = e.Previous
	}
	slices.Reverse(out)
	return out
}

func sameRecord(got HistoryEntry, want refRecord) bool {
	if want.entry == 0 {
		return got.Tx == nil && got.BlockHeader != nil && got.BlockHeader.EqualVT(want.block.Block.Header) &&
			got.BlockReceipt.EqualVT(want.block.Receipt)
	}
	i := want.entry - 1
	return got.BlockHeader == nil && got.Tx != nil && got.Tx.EqualVT(want.block.Block.Transactions[i]) &&
		got.TxReceipt.EqualVT(want.block.Receipt.TransactionReceipts[i])
}

// checkHistory compares every page of addr's history with the reference.
func checkHistory(t *testing.T, nd *node, addr koinos.Address, label string) {
	t.Helper()
	hc := headChain(nd)
	view := nd.c.View()
	for _, irr := range []bool{true, false} {
		top := view.Head.Height
		if irr {
			top = view.LIB.Height
		}
		want := refHistory(addr, hc, top)
		check := func(q HistoryQuery, wantSeqs []int) {
			t.Helper()
			got, err := nd.st.AccountHistory(addr, q)
			if err != nil {
				t.Fatal(err)
			}
			var gotSeqs []int
			for _, g := range got {
				gotSeqs = append(gotSeqs, int(g.Seq))
			}
			if fmt.Sprint(gotSeqs) != fmt.Sprint(wantSeqs) {
				t.Fatalf("%s irreversible=%v query %+v (seq %v): seqs %v, want %v", label, irr, q, deref(q.Seq), gotSeqs, wantSeqs)
			}
			for _, g := range got {
				if !sameRecord(g, want[g.Seq]) {
					t.Fatalf("%s irreversible=%v: record %d differs from the reference (block %d entry %d)", label, irr, g.Seq, want[g.Seq].block.Height, want[g.Seq].entry)
				}
			}
		}
		n := len(want)
		seqs := func(from, to, step int) []int { // from..to inclusive, in steps of ±1
			var s []int
			for i := from; step > 0 && i <= to || step < 0 && i >= to; i += step {
				s = append(s, i)
			}
			return s
		}
		capN := min(n, MaxHistoryLimit)
		check(HistoryQuery{Limit: 1000, Ascending: true, Irreversible: irr}, seqs(0, capN-1, 1))
		check(HistoryQuery{Limit: 1000, Irreversible: irr}, seqs(n-1, n-capN, -1))
		check(HistoryQuery{Limit: 0, Ascending: true, Irreversible: irr}, nil)
		beyond := uint64(n)
		check(HistoryQuery{Seq: &beyond, Limit: 10, Ascending: true, Irreversible: irr}, nil)
		check(HistoryQuery{Seq: &beyond, Limit: 10, Irreversible: irr}, nil)
		for s := 0; s < n; s += max(1, n/17) {
			seq := uint64(s)
			check(HistoryQuery{Seq: &seq, Limit: 3, Ascending: true, Irreversible: irr}, seqs(s, min(s+2, n-1), 1))
			check(HistoryQuery{Seq: &seq, Limit: 3, Irreversible: irr}, seqs(s, max(s-2, 0), -1))
		}
	}
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestAccountHistory(t *testing.T) {
	for _, tc := range []struct {
		name      string
		producers int
		counters  int
	}{
		{"one producer", 1, 0},
		{"four producers", 4, 0},
		{"four producers, tiny counter cache", 4, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := newNet(t, tc.producers, 6)
			nd := newNode(t, net, nil, 8)
			nd.opts.MaxHistoryCounters = tc.counters
			nd.reopen()
			addrs := map[string]koinos.Address{
				"token":      nd.c.Token().ID(),
				"producer 0": net.producers[0].Address(),
				"stranger":   koinos.AddressFromKey([]byte("stranger")),
			}
			for i := range net.users {
				addrs[fmt.Sprintf("user %d", i)] = nd.addr(i)
			}
			checkAll := func(label string) {
				t.Helper()
				for name, a := range addrs {
					checkHistory(t, nd, a, label+": "+name)
				}
			}
			checkAll("empty")
			// Enough transfers for the token's history to pass the 500
			// record cap; blocks of varying size, some empty.
			for b := range 36 {
				var txs []*protocol.Transaction
				for k := range (b * 7) % 31 {
					txs = append(txs, nd.transfer((b+k)%6, (b+2*k+1)%6, uint64(1+k)))
				}
				nd.produce(b%tc.producers, txs...)
				if b == 9 {
					checkAll("after 10 blocks")
					nd.reopen() // counters reload from disk
				}
			}
			if v := nd.c.View(); tc.producers > 1 && v.LIB.Height == v.Head.Height {
				t.Fatal("test needs blocks above the LIB")
			}
			if n := len(refHistory(addrs["token"], headChain(nd), nd.c.View().Head.Height)); n <= MaxHistoryLimit {
				t.Fatalf("the token has %d records: test needs more than the cap", n)
			}
			checkAll("after 36 blocks")
		})
	}
}
