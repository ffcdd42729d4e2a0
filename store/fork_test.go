package store

import (
	"fmt"
	"testing"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// signed returns a built block with its signature, as a peer would send it.
func signed(prop *chain.Proposal, sig []byte) *protocol.Block {
	b := prop.Block.CloneVT()
	b.Signature = sig
	return b
}

func heights(es []*chain.BlockEntry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprintf("%d:%x", e.Height, e.ID[:2]))
	}
	return fmt.Sprint(s)
}

func TestForksAndTransactionIndex(t *testing.T) {
	net := newNet(t, 2, 3)
	a := newNode(t, net, nil, 2)
	b := newNode(t, net, nil, 2)

	// Both have block 1.
	r := a.produce(0, a.transfer(2, 1, 1))
	first := r.Accepted[0].Block.Transactions[0]
	b.accept(signed(&chain.Proposal{Block: r.Accepted[0].Block}, r.Accepted[0].Block.Signature))
	b.nonces[2] = 1

	// The same transfer lands in two blocks at height 2: producer 1's,
	// built on a, and producer 0's later one, built on b.
	x := a.transfer(0, 1, 1000)
	s1 := a.nextSlotOf(1, a.c.HeadTime())
	early := signed(a.build(1, s1, x))
	late := signed(b.build(0, b.nextSlotOf(0, b.c.SlotTime(s1)), x))
	b.accept(late)
	r = b.accept(early)
	earlyID, lateID := txID(t, &protocol.Transaction{Id: early.Id}), txID(t, &protocol.Transaction{Id: late.Id})
	if r.Meta.Head.ID != earlyID {
		t.Fatal("the earlier block must win")
	}
	b.nonces[0] = 1
	st := b.st

	items, err := st.TransactionsByID([]koinos.Digest{txID(t, x), koinos.Sum256([]byte("unknown")), txID(t, first)})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || items[0].Tx == nil || string(items[0].Tx.Id) != string(x.Id) {
		t.Fatalf("transaction on two forks not found: %+v", items)
	}
	if len(items[0].ContainingBlocks) != 2 || !hasID(items[0].ContainingBlocks, earlyID) || !hasID(items[0].ContainingBlocks, lateID) {
		t.Fatalf("containing blocks %x", items[0].ContainingBlocks)
	}
	if items[1].Tx != nil || len(items[1].ContainingBlocks) != 0 {
		t.Fatal("unknown transaction must give an empty item")
	}
	if items[2].Tx == nil || len(items[2].ContainingBlocks) != 1 || items[2].ContainingBlocks[0] != r.Accepted[0].Previous {
		t.Fatal("transaction of block 1")
	}
	if h, _ := st.Highest(); h.ID != lateID {
		t.Fatalf("highest is the first block stored at the top height, got %x", h.ID[:4])
	}

	// Blocks by height follow the fork of the head asked for.
	for _, tc := range []struct {
		head koinos.Digest
		want koinos.Digest
	}{{earlyID, earlyID}, {lateID, lateID}} {
		es, err := st.BlocksByHeight(tc.head, 1, 10)
		if err != nil || len(es) != 2 || es[1].ID != tc.want {
			t.Fatalf("blocks on fork %x: %s %v", tc.head[:2], heights(es), err)
		}
	}

	// Extend the early fork until the LIB passes height 2: the late block
	// is then on a dead fork, no longer a fork block, but still stored and
	// still indexed.
	for i := 0; b.c.View().LIB.Height < 3; i++ {
		if i > 10 {
			t.Fatal("LIB does not advance")
		}
		p := 1 - int(b.c.View().Head.Height%2)
		b.produce(p, b.transfer(1, 2, 1))
	}
	var fork []string
	lib := b.c.View().LIB
	if err := st.ForkBlocks(lib.Height, func(e *chain.BlockEntry) error {
		fork = append(fork, fmt.Sprint(e.Height))
		if e.Height <= lib.Height {
			t.Fatalf("fork block %d at or below LIB %d", e.Height, lib.Height)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.ForkBlocks(0, func(e *chain.BlockEntry) error {
		if e.ID == lateID {
			t.Fatal("the dead fork's block is still a fork block")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	items, err = st.TransactionsByID([]koinos.Digest{txID(t, x)})
	if err != nil || len(items[0].ContainingBlocks) != 2 {
		t.Fatalf("after the LIB passed: %+v %v", items, err)
	}
	if es, err := st.BlocksByHeight(lateID, 1, 10); err != nil || len(es) != 2 || es[1].ID != lateID {
		t.Fatalf("dead fork by height: %s %v", heights(es), err)
	}
	if es, err := st.BlocksByHeight(b.c.View().Head.ID, 2, 1); err != nil || len(es) != 1 || es[0].ID != earlyID {
		t.Fatalf("head chain by height: %s %v", heights(es), err)
	}

	before := b.c.View()
	b.reopen()
	if after := b.c.View(); after.Head != before.Head || after.LIB != before.LIB {
		t.Fatalf("restart with forks: head %d lib %d, want %d %d", after.Head.Height, after.LIB.Height, before.Head.Height, before.LIB.Height)
	}
}

func hasID(ids []koinos.Digest, id koinos.Digest) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestRestartKeepsForkBlocks restarts a node whose fork database holds a
// losing fork above the LIB: ForkBlocks must hand both forks back.
func TestRestartKeepsForkBlocks(t *testing.T) {
	net := newNet(t, 4, 2)
	a := newNode(t, net, nil, 1)
	b := newNode(t, net, nil, 1)
	r := a.produce(0)
	b.accept(r.Accepted[0].Block)
	// Two blocks at height 2 from producers 1 and 2 in their own slots.
	s1 := a.nextSlotOf(1, a.c.HeadTime())
	x := signed(a.build(1, s1))
	y := signed(a.build(2, a.nextSlotOf(2, a.c.SlotTime(s1))))
	b.accept(x)
	b.accept(y)
	heads := len(b.c.View().ForkHeads)
	if heads != 2 {
		t.Fatalf("%d fork heads", heads)
	}
	before := b.c.View()
	b.reopen()
	if got := len(b.c.View().ForkHeads); got != 2 || b.c.View().Head != before.Head {
		t.Fatalf("after restart: %d fork heads, head %d", got, b.c.View().Head.Height)
	}
	// And blocks from the losing fork can still be served by id.
	yid, _ := koinos.ParseMultihash(y.Id)
	if _, err := b.st.BlockByID(yid); err != nil {
		t.Fatal(err)
	}
}
