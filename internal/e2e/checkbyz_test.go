package e2e

import (
	"slices"
	"testing"

	"github.com/emberchain/ember/internal/e2e/byzantine"
)

func TestCheckBanned(t *testing.T) {
	acts := []byzantine.ActReport{{Act: byzantine.ActTxFlood, Peer: "12D3KooWflood"}, {Act: byzantine.ActUnservedHead, Peer: "12D3KooWliar"}}
	all := []string{"12D3KooWflood", "12D3KooWliar", "12D3KooWother"}
	every := []bool{true, true, true, true}
	if errs := CheckBanned(ByzantineWindow{Acts: acts, Judged: every, Bans: [][]string{all, all, all, all}}); len(errs) != 0 {
		t.Fatalf("every identity banned everywhere: %v", errs)
	}
	// node2 kept the liar: a violation naming both.
	errs := CheckBanned(ByzantineWindow{Acts: acts, Judged: every, Bans: [][]string{all, all, {"12D3KooWflood"}, all}})
	wantViolation(t, errs, InvBanned, "node2 did not ban the byzantine peer 12D3KooWliar of act unserved-head")
	if len(errs) != 1 {
		t.Fatalf("want one violation, got %v", errs)
	}
	// A node that was down or restarted through the window is not judged.
	if errs := CheckBanned(ByzantineWindow{Acts: acts, Judged: []bool{true, true, false, true}, Bans: [][]string{all, all, nil, all}}); len(errs) != 0 {
		t.Fatalf("an unjudged node: %v", errs)
	}
	// An act that did not run (no handshake) proves nothing.
	bad := []byzantine.ActReport{{Act: byzantine.ActLyingSync, Peer: "12D3KooWx", Err: "2 of 4 nodes shook hands"}}
	wantViolation(t, CheckBanned(ByzantineWindow{Acts: bad, Judged: every, Bans: [][]string{all, all, all, all}}), InvBanned, "did not run as scripted")
}

func TestCheckNoStall(t *testing.T) {
	const genesis, slot = 1_000_000, 100
	chainAt := func(slots ...uint64) []Block {
		var out []Block
		for i, s := range slots {
			out = append(out, Block{Height: uint64(i + 1), TimestampMs: genesis + s*slot})
		}
		return out
	}
	w := ByzantineWindow{FromMs: genesis + 10*slot + 50, ToMs: genesis + 30*slot + 50,
		LIBsFrom: []uint64{5, 5, 5, 5}, LIBsTo: []uint64{20, 21, 20, 19}, Judged: []bool{true, true, true, true}}
	every := func(from, to uint64) []uint64 {
		var s []uint64
		for i := from; i <= to; i++ {
			s = append(s, i)
		}
		return s
	}
	gap, errs := CheckNoStall(chainAt(every(1, 40)...), w, genesis, slot, 4)
	if len(errs) != 0 || gap != 1 {
		t.Fatalf("a block every slot: gap %d, %v", gap, errs)
	}
	// Slots 16-24 empty: a stall of 9 slots inside the window.
	stalled := slices.Concat(every(1, 15), every(25, 40))
	gap, errs = CheckNoStall(chainAt(stalled...), w, genesis, slot, 4)
	if gap != 10 {
		t.Fatalf("gap %d, want 10", gap)
	}
	wantViolation(t, errs, InvNoStall, "10 slots without a block, more than 4")
	// Nothing after slot 20 until after the window: the stall runs to its end.
	gap, errs = CheckNoStall(chainAt(slices.Concat(every(1, 20), every(40, 45))...), w, genesis, slot, 4)
	if gap != 10 {
		t.Fatalf("gap to the window's end %d, want 10", gap)
	}
	wantViolation(t, errs, InvNoStall, "more than 4")
	// A LIB that stood still on a judged node; not on an unjudged one.
	still := w
	still.LIBsTo = []uint64{20, 5, 20, 20}
	wantViolation(t, func() []error { _, e := CheckNoStall(chainAt(every(1, 40)...), still, genesis, slot, 4); return e }(), InvNoStall, "node1's last irreversible block did not advance")
	still.Judged = []bool{true, false, true, true}
	if _, errs := CheckNoStall(chainAt(every(1, 40)...), still, genesis, slot, 4); len(errs) != 0 {
		t.Fatalf("an unjudged node's LIB: %v", errs)
	}
}
