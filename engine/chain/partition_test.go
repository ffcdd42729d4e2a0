package chain

import (
	"errors"
	"math"
	"testing"
)

// TestLongPartitionHeals: four producers split 2–2, neither side able to
// make anything irreversible. Each side stops producing at
// productionDepth instead of growing a branch the other could never take
// back (the fork database holds chain.max_fork_blocks); when the sides
// meet, each takes the other's branch, fork choice agrees, and a producer
// whose signature is not yet on the winning branch builds on it, so
// irreversibility moves again and both sides end on one chain.
func TestLongPartitionHeals(t *testing.T) {
	const maxFork = 16
	a := newHarness(t, 4, 2)
	a.maxFork = maxFork
	a.open()
	b := &harness{t: t, g: a.g, store: newMemStorage(), producers: a.producers, users: a.users, ckEvery: 1, maxFork: maxFork}
	b.open()

	// round has producers ps build on h once each, in slot order, where
	// they may; it returns the blocks built.
	round := func(h *harness, ps []int) []*BlockEntry {
		t.Helper()
		var built []*BlockEntry
		for _, p := range ps {
			slot := h.nextSlotOf(p, h.c.HeadTime())
			prop, err := h.c.Build(h.c.SlotTime(slot), h.producers[p].Address(), nil)
			if errors.Is(err, ErrNoFinality) || errors.Is(err, ErrSignedAtHeight) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			built = append(built, h.step(h.c.Commit(prop, h.producers[p].Sign(prop.ID))).Accepted[0])
		}
		return built
	}
	// untilStopped runs rounds until the producers stop.
	untilStopped := func(h *harness, ps []int) []*BlockEntry {
		t.Helper()
		var all []*BlockEntry
		for range 4 * maxFork {
			built := round(h, ps)
			if len(built) == 0 {
				return all
			}
			all = append(all, built...)
		}
		t.Fatalf("producers %v still producing: %d blocks above the last irreversible one", ps, h.c.View().Head.Height-h.c.View().LIB.Height)
		return nil
	}
	sideA, sideB := untilStopped(a, []int{0, 1}), untilStopped(b, []int{2, 3})
	for _, h := range []*harness{a, b} {
		v := h.c.View()
		if depth := v.Head.Height - v.LIB.Height; depth > uint64(maxFork/2) {
			t.Fatalf("a side built %d blocks above the last irreversible one; at most %d fit two sides in the fork database", depth, maxFork/2)
		}
	}
	if len(sideA) == 0 || len(sideB) == 0 {
		t.Fatal("a side produced nothing")
	}
	// The sides meet: each takes the other's branch.
	for _, x := range []struct {
		to     *harness
		blocks []*BlockEntry
		from   *harness
	}{{a, sideB, b}, {b, sideA, a}} {
		for _, e := range x.blocks {
			x.to.step(x.to.c.AcceptBlock(sigverifyEntry(t, x.from, e), math.MaxUint64))
		}
	}
	if a.c.View().Head.ID != b.c.View().Head.ID {
		t.Fatal("fork choice differs between the sides")
	}
	// One network again: every producer in its slots, on a, blocks copied
	// to b, until irreversibility passes the partition.
	for range 4 * maxFork {
		built := round(a, []int{0, 1, 2, 3})
		for _, e := range built {
			b.step(b.c.AcceptBlock(sigverifyEntry(t, a, e), math.MaxUint64))
		}
		if lib := a.c.View().LIB.Height; lib > uint64(max(len(sideA), len(sideB))) {
			if b.c.View().LIB.ID != a.c.View().LIB.ID || b.c.View().Head.ID != a.c.View().Head.ID {
				t.Fatal("the sides disagree after the heal")
			}
			return
		}
	}
	t.Fatalf("irreversibility stuck at %d after the heal (head %d)", a.c.View().LIB.Height, a.c.View().Head.Height)
}
