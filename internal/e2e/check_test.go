package e2e

import (
	"errors"
	"strings"
	"testing"
)

// invariantsOf is the invariant of each error, in order.
func invariantsOf(errs []error) []string {
	var out []string
	for _, err := range errs {
		var v *Violation
		if errors.As(err, &v) {
			out = append(out, v.Invariant)
		} else {
			out = append(out, "not a violation: "+err.Error())
		}
	}
	return out
}

func wantViolation(t *testing.T, errs []error, inv, detail string) {
	t.Helper()
	for _, err := range errs {
		var v *Violation
		if errors.As(err, &v) && v.Invariant == inv && strings.Contains(v.Detail, detail) {
			return
		}
	}
	t.Fatalf("want a %s violation mentioning %q, got %v", inv, detail, errs)
}

func TestLedgerReportsDisagreementAndLIBGoingBack(t *testing.T) {
	l := NewLedger()
	for _, r := range []struct {
		node   int
		height uint64
		id     string
	}{{0, 1, "0xa"}, {1, 1, "0xa"}, {0, 2, "0xb"}, {2, 2, "0xb"}} {
		if err := l.Irreversible(r.node, r.height, r.id); err != nil {
			t.Fatalf("an agreeing report refused: %v", err)
		}
	}
	err := l.Irreversible(3, 2, "0xfork")
	wantViolation(t, []error{err}, InvAgree, "block 2 is irreversible as 0xb on node0 and as 0xfork on node3")
	if got := l.RecordedUpTo(3); got != 2 {
		t.Fatalf("recorded up to %d from node3, want 2", got)
	}

	if err := l.ReportLIB(1, 7); err != nil {
		t.Fatal(err)
	}
	if err := l.ReportLIB(1, 7); err != nil {
		t.Fatalf("the same LIB again refused: %v", err)
	}
	// Across a restart too: the same node reporting a lower LIB.
	wantViolation(t, []error{l.ReportLIB(1, 6)}, InvKept, "node1 reported last irreversible block 6 after 7")
	if err := l.ReportLIB(2, 3); err != nil {
		t.Fatalf("another node's lower LIB refused: %v", err)
	}
	if l.MaxLIB() != 7 {
		t.Fatalf("MaxLIB %d, want 7", l.MaxLIB())
	}
}

func TestCheckSameChains(t *testing.T) {
	same := [][]string{{"a", "b", "c"}, {"a", "b"}, {"a", "b", "c", "d"}, {"a", "b", "c"}}
	if errs := CheckSameChains(same); len(errs) != 0 {
		t.Fatalf("identical prefixes reported: %v", errs)
	}
	forked := [][]string{{"a", "b", "c"}, {"a", "b", "c"}, {"a", "x", "y"}, {"a", "b", "c"}}
	errs := CheckSameChains(forked)
	wantViolation(t, errs, InvAgree, "at height 2 node0 has b and node2 has x")
	wantViolation(t, errs, InvAgree, "at height 3 node0 has c and node2 has y")
}

func TestCheckKept(t *testing.T) {
	recorded := map[uint64]string{1: "a", 2: "b", 3: "c"}
	if errs := CheckKept(0, recorded, []string{"a", "b", "c", "d"}); len(errs) != 0 {
		t.Fatalf("a kept chain reported: %v", errs)
	}
	wantViolation(t, CheckKept(2, recorded, []string{"a", "b2", "c"}), InvKept, "block 2 was reported irreversible as b; node2 now has b2")
	wantViolation(t, CheckKept(1, recorded, []string{"a", "b"}), InvKept, "block 3 was reported irreversible as c; node1 now has nothing")
}

func TestCheckTxs(t *testing.T) {
	chain := []Block{
		{Height: 1, Txs: []string{"fund"}},
		{Height: 2, Txs: []string{"t1", "t2"}},
		{Height: 3, Txs: []string{"t3", "t2"}}, // t2 again
		{Height: 4, Txs: []string{"t5"}},       // not acknowledged, included once: fine
	}
	txs := []TxRecord{
		{ID: "t1", Acked: true}, {ID: "t2", Acked: true, Sender: 1, Nonce: 2}, {ID: "t3", Acked: true},
		{ID: "t4", Acked: true, Sender: 3, Nonce: 9}, // acknowledged, lost
		{ID: "t5"}, {ID: "t6"}, // t6: neither acknowledged nor included: fine
	}
	f, errs := CheckTxs(chain, txs)
	if got := invariantsOf(errs); len(got) != 2 {
		t.Fatalf("want 2 violations, got %v", errs)
	}
	wantViolation(t, errs, InvTxOnce, "transaction t2 (sender 1, nonce 2) is in blocks [2 3]")
	wantViolation(t, errs, InvTxIncluded, "transaction t4 (sender 3, nonce 9) was acknowledged and is not on the chain")
	if f != (TxFigures{Sent: 6, Acked: 4, Included: 4, AckedIncluded: 3}) {
		t.Fatalf("figures %+v", f)
	}
	// An unacknowledged transaction twice is a violation as well.
	_, errs = CheckTxs([]Block{{Height: 1, Txs: []string{"u"}}, {Height: 2, Txs: []string{"u"}}}, []TxRecord{{ID: "u"}})
	wantViolation(t, errs, InvTxOnce, "transaction u")
}

func TestCheckResumed(t *testing.T) {
	p := ResumeParams{GenesisMs: 1000, SlotMs: 100, Producers: []string{"A", "B", "C", "D"}, ResumeSlots: 3, ProducersWithinMs: 2000}
	heal := uint64(5050) // slot 40
	block := func(slot uint64, signer string) Block {
		return Block{TimestampMs: p.GenesisMs + slot*p.SlotMs, Signer: signer}
	}
	good := []Block{block(39, "D"), block(40, "A"), block(42, "C"), block(43, "D"), block(44, "A"), block(45, "B")}
	f, errs := CheckResumed(good, heal, p)
	if len(errs) != 0 {
		t.Fatalf("a prompt resumption reported: %v", errs)
	}
	if f.FirstSlots != 2 || f.AllProducersMs != 450 {
		t.Fatalf("figures %+v", f)
	}

	late := []Block{block(39, "D"), block(44, "A"), block(45, "B"), block(46, "C"), block(47, "D")}
	wantViolation(t, second(CheckResumed(late, heal, p)), InvResumed, "4 slots after it (slot 44), more than 3")

	// A producer that never came back, another only after the window.
	absent := []Block{block(41, "A"), block(42, "B"), block(43, "C"), block(90, "D")}
	wantViolation(t, second(CheckResumed(absent, heal, p)), InvResumed, "from producers [D]")

	wantViolation(t, second(CheckResumed([]Block{block(39, "A")}, heal, p)), InvResumed, "no block of the final chain after the heal")
}

func second[A, B any](_ A, b B) B { return b }

func TestCheckFinality(t *testing.T) {
	if errs := CheckFinality(10, []uint64{11, 12, 11, 14}); len(errs) != 0 {
		t.Fatalf("finality past the heal reported: %v", errs)
	}
	wantViolation(t, CheckFinality(10, []uint64{11, 10, 12, 13}), InvFinality, "node1's last irreversible block is 10")
}
