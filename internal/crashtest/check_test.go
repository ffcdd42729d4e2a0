package crashtest

import (
	"errors"
	"strings"
	"testing"
)

// wantViolation fails unless err is a violation of inv mentioning each of
// words.
func wantViolation(t *testing.T, err error, inv string, words ...string) {
	t.Helper()
	var v *Violation
	if !errors.As(err, &v) || v.Invariant != inv {
		t.Fatalf("want a %s violation, got %v", inv, err)
	}
	for _, w := range words {
		if !strings.Contains(v.Detail, w) {
			t.Fatalf("violation %q does not mention %q", v.Detail, w)
		}
	}
}

func chainOf(n int) []Block {
	out := make([]Block, n)
	for i := range out {
		h := uint64(i + 1)
		out[i] = Block{Height: h, ID: "0xb" + string(rune('a'+i)), Signer: "0xp", Slot: 2 * h}
	}
	return out
}

func TestLedgerReportsChangedIrreversibleBlockAndDoubleSign(t *testing.T) {
	l := NewLedger()
	for _, b := range chainOf(3) {
		if err := l.Irreversible(b); err != nil {
			t.Fatal(err)
		}
	}
	// Reported again, unchanged: fine.
	if err := l.Irreversible(chainOf(3)[1]); err != nil {
		t.Fatal(err)
	}
	// Height 2 reported irreversible as another block after a restart.
	other := Block{Height: 2, ID: "0xother", Signer: "0xp", Slot: 5}
	wantViolation(t, l.Irreversible(other), InvBlocksKept, "0xother", "block 2")
	// A block seen for slot 6 (block 3's) with another id: two signatures.
	wantViolation(t, l.Seen(Block{Height: 4, ID: "0xdup", Signer: "0xp", Slot: 6}), InvSignGuard, "slot 6")
	// Another producer's slot is not ours.
	if err := l.Seen(Block{Height: 4, ID: "0xdup", Signer: "0xq", Slot: 6}); err != nil {
		t.Fatal(err)
	}
	// A gap in what the observer records is the harness's own error.
	if err := l.Irreversible(Block{Height: 9, ID: "0x9"}); err == nil || invariantOf(err) != "" {
		t.Fatalf("gap in observations: %v", err)
	}
}

func TestCheckHead(t *testing.T) {
	if err := CheckHead(10, 10, 9); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, CheckHead(9, 10, 0), InvHead, "head 9")
	wantViolation(t, CheckHead(12, 8, 9), InvHead, "below the 9")
	l := NewLedger()
	_ = l.ReportLIB(20, 20)
	wantViolation(t, l.ReportLIB(19, 19), InvHead)
}

func TestCheckBlocksKept(t *testing.T) {
	c := chainOf(4)
	idAt := map[uint64]string{}
	for _, b := range c {
		idAt[b.Height] = b.ID
	}
	if err := CheckBlocksKept(c, idAt); err != nil {
		t.Fatal(err)
	}
	delete(idAt, 4)
	idAt[2] = "0xfork"
	wantViolation(t, CheckBlocksKept(c, idAt), InvBlocksKept, "2 irreversible blocks", "height 2", "now nothing")
}

func TestCheckTxsKept(t *testing.T) {
	want := map[string]string{"0xt1": "0xb1", "0xt2": "0xb1", "0xt3": "0xb2"}
	found := map[string][]string{"0xt1": {"0xb1"}, "0xt2": {"0xb0", "0xb1"}, "0xt3": {"0xb2"}}
	if err := CheckTxsKept(want, found); err != nil {
		t.Fatal(err)
	}
	delete(found, "0xt3")
	found["0xt1"] = []string{"0xb9"}
	wantViolation(t, CheckTxsKept(want, found), InvTxsKept, "2 of 3", "0xt1", "0xt3")
}

func TestCheckSignGuard(t *testing.T) {
	g := GuardCheck{ProducerKey: "0xp", HaveGuard: true, GuardSlot: 10,
		StoredHead: Block{Height: 5, ID: "0x5", Signer: "0xp", Slot: 9},
		FirstNew:   Block{Height: 6, ID: "0x6", Signer: "0xp", Slot: 11}}
	if err := CheckSignGuard(g); err != nil {
		t.Fatal(err)
	}
	// The node signed slot 10 (recorded), died before storing it, and
	// signed slot 10 again after the restart.
	bad := g
	bad.FirstNew.Slot = 10
	wantViolation(t, CheckSignGuard(bad), InvSignGuard, "slot 10")
	// A stored block the guard never recorded.
	bad = g
	bad.StoredHead.Slot = 12
	bad.FirstNew = Block{}
	wantViolation(t, CheckSignGuard(bad), InvSignGuard, "after the guard's")
	bad = g
	bad.HaveGuard = false
	wantViolation(t, CheckSignGuard(bad), InvSignGuard, "no sign guard file")
}

func TestCheckEventLog(t *testing.T) {
	ok := LogSummary{First: 10, Next: 40, Irreversible: []uint64{7, 8, 9}, LIB: 9, IndexCursor: 30, HasIndexCursor: true, NextBefore: 35}
	if err := CheckEventLog(ok); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mutate func(*LogSummary)
		words  string
	}{
		"gap in irreversible": {func(s *LogSummary) { s.Irreversible = []uint64{7, 9} }, "from block 7 to 9"},
		"behind the LIB":      {func(s *LogSummary) { s.LIB = 10 }, "store's last irreversible block is 10"},
		"seq reused":          {func(s *LogSummary) { s.NextBefore = 41 }, "reused"},
		"read error":          {func(s *LogSummary) { s.ReadErr = errors.New("record 12 follows one ending at 11") }, "record 12"},
		"cursor outside":      {func(s *LogSummary) { s.IndexCursor = 41 }, "cursor 41"},
		"accepted missing":    {func(s *LogSummary) { s.AcceptedMissing = []uint64{8} }, "[8]"},
	} {
		t.Run(name, func(t *testing.T) {
			s := ok
			tc.mutate(&s)
			wantViolation(t, CheckEventLog(s), InvEventLog, tc.words)
		})
	}
}

func TestCheckHistory(t *testing.T) {
	want := []string{"0xa", "0xb", "0xc"}
	got := []HistoryEntry{{5, "0xa"}, {6, "0xb"}, {7, "0xc"}, {8, "0xnewer"}}
	if err := CheckHistory("acct", 5, want, got); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, CheckHistory("acct", 5, want, got[:2]), InvIndexes, "1 entries short")
	wantViolation(t, CheckHistory("acct", 5, want, []HistoryEntry{{5, "0xa"}, {6, "0xa"}, {7, "0xb"}}), InvIndexes, "repeat")
	wantViolation(t, CheckHistory("acct", 5, want, []HistoryEntry{{5, "0xa"}, {6, "0xc"}}), InvIndexes, "missing")
	wantViolation(t, CheckHistory("acct", 5, want, []HistoryEntry{{5, "0xa"}, {7, "0xb"}, {8, "0xc"}}), InvIndexes, "gap")
}
