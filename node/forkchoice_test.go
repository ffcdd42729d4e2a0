package node

import (
	"context"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
)

// A node whose branch is level in height with a peer's but made less
// irreversible syncs the peer's branch and moves to it: fork choice ranks
// irreversibility first, so the peer's branch wins, though its head is no
// higher. After a 2–2 split heals, the side whose branch finalized more
// can be the side that is never ahead in height (its producers' slots come
// second in the rotation); TestPartitionAndHeal once stayed on two
// branches for its whole wait under CI load because sync only ever looked
// at higher heads.
//
// Two followers, each given one branch of four empty blocks while they
// are apart. Branch X is signed by all four producers, so its block 2 is
// irreversible; branch Y by two of them, so nothing above genesis is. No
// block comes after the heal: the only way for Y's node to learn X is sync.
func TestIrreversibleBranchAtEqualHeightIsSynced(t *testing.T) {
	c := newCluster(t, 4, 0, 100*time.Millisecond)
	x, y := c.add(-1), c.add(-1)
	c.partition([]int{x.i}, []int{y.i})
	// No two blocks of the branches share a height and signer (that would
	// be double production, and neither branch could be head).
	branchX := []int{1, 2, 3, 4} // slots: producers 1, 2, 3, 0
	branchY := []int{4, 5, 8, 9} // slots: producers 0, 1, 0, 1
	lastSlot := c.g.Params().GenesisTimeMs + 9*c.g.Params().BlockIntervalMs
	if wait := time.Until(time.UnixMilli(int64(lastSlot))); wait > 0 {
		time.Sleep(wait + 50*time.Millisecond) // no block from the future
	}
	headX := c.forgeBranch(x, branchX)
	headY := c.forgeBranch(y, branchY)
	if v := x.n.Chain().View(); v.Head.ID != headX || v.LIB.Height != 2 {
		t.Fatalf("branch X: head %d, LIB %d; want its own head and LIB 2", v.Head.Height, v.LIB.Height)
	}
	if v := y.n.Chain().View(); v.Head.ID != headY || v.LIB.Height != 0 {
		t.Fatalf("branch Y: head %d, LIB %d; want its own head and LIB 0", v.Head.Height, v.LIB.Height)
	}
	c.heal()
	waitFor(t, 20*time.Second, "the node on branch Y to move to branch X", func() bool {
		v := y.n.Chain().View()
		return v.Head.ID == headX && v.LIB.Height == 2
	})
	if v := x.n.Chain().View(); v.Head.ID != headX {
		t.Fatalf("the node on branch X left it for height %d", v.Head.Height)
	}
}

// forgeBranch submits to m one empty block at each of the slots, each on
// the one before, from genesis, signed by the slot's producer, and
// returns the last block's id.
func (c *cluster) forgeBranch(m *member, slots []int) koinos.Digest {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := m.n.Chain().View()
	parent, root := v.Head.ID, v.HeadStateRoot
	for i, s := range slots {
		key := c.producerOf(uint64(s))
		b := forgeBlock(c, key, parent, uint64(i+1), root, uint64(s))
		if _, err := m.n.SubmitBlock(ctx, b); err != nil {
			c.t.Fatalf("node %d: block %d at slot %d: %v", m.i, i+1, s, err)
		}
		id, _ := koinos.ParseMultihash(b.Id)
		after := m.n.Chain().View()
		if after.Head.ID != id {
			c.t.Fatalf("node %d: block %d at slot %d is not head", m.i, i+1, s)
		}
		parent, root = id, after.HeadStateRoot
	}
	return parent
}

// producerOf is the key of the producer whose slot s is.
func (c *cluster) producerOf(s uint64) keys.Signer {
	want := c.nodes[0].n.Chain().ScheduledProducer(s)
	for _, k := range c.producers {
		if k.Address() == want {
			return k
		}
	}
	c.t.Fatalf("no key for the producer of slot %d", s)
	return nil
}
