package crashtest

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/emberchain/ember/internal/verdict"
)

// The invariants, as pure functions of what the harness observed: the
// runner gathers the observations over JSON-RPC and from copies of the
// killed node's store, these decide. Each returns nil or a *Violation.

// Invariant names, as they appear in violations and the summary.
const (
	InvRestart      = "restart"       // the node comes back
	InvHead         = "head"          // head ≥ LIB, LIB never goes back
	InvBlocksKept   = "blocks-kept"   // a block reported irreversible stays, same id, same height
	InvTxsKept      = "txs-kept"      // a transaction in such a block is still found in it
	InvSignGuard    = "sign-guard"    // never two blocks signed for one slot
	InvEventLog     = "event-log"     // the durable event log continues with no gap
	InvIndexes      = "indexes"       // account history resumes with no gap or repeat
	InvReplay       = "replay"        // a replay from genesis reaches the live state root
	InvStoreReopens = "store-reopens" // the killed node's store opens offline
)

// Violation is a broken invariant.
type Violation = verdict.Violation

var violation = verdict.New

// Block is a block as the harness saw it over JSON-RPC.
type Block struct {
	Height uint64
	ID     string // 0x multihash
	Signer string
	Slot   uint64   // (timestamp - genesis time) / block interval
	Txs    []string // transaction ids (0x multihash), in block order
}

// Ledger accumulates what the node reported, across every incarnation:
// the blocks it reported irreversible, and every (signer, slot) it was
// seen to have signed. Safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	blocks  []Block           // reported irreversible, by height from 1 (blocks[h-1])
	signed  map[string]string // signer/slot → block id
	txBlock map[string]uint64 // transaction id → height of its irreversible block
	maxLIB  uint64
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{signed: map[string]string{}, txBlock: map[string]uint64{}}
}

// Irreversible records b, reported irreversible. Blocks come in height
// order from 1; a second report of a height must name the same block.
func (l *Ledger) Irreversible(b Block) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b.Height == 0 || b.Height > uint64(len(l.blocks))+1 {
		return fmt.Errorf("crashtest: block %d reported before block %d", b.Height, len(l.blocks)+1)
	}
	if b.Height <= uint64(len(l.blocks)) {
		if old := l.blocks[b.Height-1]; old.ID != b.ID {
			return violation(InvBlocksKept, "block %d was reported irreversible as %s, now as %s", b.Height, old.ID, b.ID)
		}
		return nil
	}
	if err := l.signedLocked(b); err != nil {
		return err
	}
	l.blocks = append(l.blocks, b)
	for _, id := range b.Txs {
		l.txBlock[id] = b.Height
	}
	return nil
}

// Seen records a block the node served that was not (yet) irreversible,
// for the double-signing check only.
func (l *Ledger) Seen(b Block) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.signedLocked(b)
}

func (l *Ledger) signedLocked(b Block) error {
	k := fmt.Sprintf("%s/%d", b.Signer, b.Slot)
	if id, ok := l.signed[k]; ok && id != b.ID {
		return violation(InvSignGuard, "%s signed two blocks for slot %d: %s and %s (height %d)", b.Signer, b.Slot, id, b.ID, b.Height)
	}
	l.signed[k] = b.ID
	return nil
}

// ReportLIB records a last irreversible block height the node reported
// and checks it against the head and the highest reported before.
func (l *Ledger) ReportLIB(head, lib uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := CheckHead(head, lib, l.maxLIB)
	l.maxLIB = max(l.maxLIB, lib)
	return err
}

// MaxLIB is the highest last irreversible block reported.
func (l *Ledger) MaxLIB() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxLIB
}

// Height is the highest block recorded as irreversible.
func (l *Ledger) Height() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.blocks))
}

// Blocks returns the irreversible blocks recorded with heights in
// [from, to].
func (l *Ledger) Blocks(from, to uint64) []Block {
	l.mu.Lock()
	defer l.mu.Unlock()
	to = min(to, uint64(len(l.blocks)))
	if from < 1 || from > to {
		return nil
	}
	return slices.Clone(l.blocks[from-1 : to])
}

// CheckHead: the head is never below the last irreversible block, and the
// last irreversible block never goes back.
func CheckHead(head, lib, libBefore uint64) error {
	if head < lib {
		return violation(InvHead, "head %d is below the last irreversible block %d", head, lib)
	}
	if lib < libBefore {
		return violation(InvHead, "last irreversible block %d is below the %d reported before", lib, libBefore)
	}
	return nil
}

// CheckBlocksKept: every block reported irreversible is at its height with
// its id in idAt (what the node serves now).
func CheckBlocksKept(reported []Block, idAt map[uint64]string) error {
	var bad []string
	for _, b := range reported {
		if got := idAt[b.Height]; got != b.ID {
			if got == "" {
				got = "nothing"
			}
			bad = append(bad, fmt.Sprintf("height %d: reported irreversible %s, now %s", b.Height, b.ID, got))
		}
	}
	if len(bad) > 0 {
		return violation(InvBlocksKept, "%d irreversible blocks lost or changed: %s", len(bad), firstFew(bad))
	}
	return nil
}

// CheckTxsKept: every transaction of want (id → id of the irreversible
// block it was reported in) is found, in that block.
func CheckTxsKept(want map[string]string, found map[string][]string) error {
	var bad []string
	for tx, blk := range want {
		if !slices.Contains(found[tx], blk) {
			bad = append(bad, fmt.Sprintf("%s (in block %s; found in %v)", tx, blk, found[tx]))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return violation(InvTxsKept, "%d of %d transactions of irreversible blocks not found in their block: %s", len(bad), len(want), firstFew(bad))
	}
	return nil
}

// GuardCheck is what the sign guard is judged on at one kill: the slot
// its file recorded when the node died, the highest block of this
// producer in the killed node's store, and the first block the restarted
// node produced above it.
type GuardCheck struct {
	GuardSlot   uint64
	StoredHead  Block // zero Height: none stored yet
	FirstNew    Block // zero Height: not produced (yet)
	HaveGuard   bool  // the guard file existed
	ProducerKey string
}

// CheckSignGuard: every stored block of this producer was recorded in the
// guard before it was signed (its slot is not after the guard's), and the
// restarted node signs only slots after the guard's: a block signed in
// slot S just before the kill and lost with the process cannot be followed
// by another block for slot S.
func CheckSignGuard(g GuardCheck) error {
	if g.StoredHead.Height > 0 && g.StoredHead.Signer == g.ProducerKey {
		if !g.HaveGuard {
			return violation(InvSignGuard, "the store holds block %d signed by this node but there is no sign guard file", g.StoredHead.Height)
		}
		if g.StoredHead.Slot > g.GuardSlot {
			return violation(InvSignGuard, "the store holds block %d of slot %d, after the guard's last signed slot %d", g.StoredHead.Height, g.StoredHead.Slot, g.GuardSlot)
		}
	}
	if g.FirstNew.Height > 0 && g.FirstNew.Signer == g.ProducerKey && g.HaveGuard && g.FirstNew.Slot <= g.GuardSlot {
		return violation(InvSignGuard, "after the restart block %d was signed for slot %d, but slot %d was already signed before the kill", g.FirstNew.Height, g.FirstNew.Slot, g.GuardSlot)
	}
	return nil
}

// LogSummary is the durable event log of a killed node's store.
type LogSummary struct {
	First, Next uint64 // retained sequence numbers [First, Next)
	// ReadErr is the error reading the retained records gave: the log
	// checks that each record starts where the one before ended.
	ReadErr error
	// Irreversible are the heights of the irreversible records, in log
	// order; AcceptedMissing the accepted records whose block the store
	// does not hold.
	Irreversible    []uint64
	AcceptedMissing []uint64
	LIB             uint64 // the store's last irreversible block
	IndexCursor     uint64
	HasIndexCursor  bool
	// NextBefore is the highest next sequence number the node reported
	// (ember_eventlog_next_seq) before it was killed.
	NextBefore uint64
}

// CheckEventLog: the records read back without a gap, the irreversible
// records run one height at a time up to the store's last irreversible
// block, every accepted record's block is stored, the indexer's cursor is
// inside the log, and no sequence number the node had handed out before
// the kill is handed out again.
func CheckEventLog(s LogSummary) error {
	if s.ReadErr != nil {
		return violation(InvEventLog, "reading the log [%d, %d): %v", s.First, s.Next, s.ReadErr)
	}
	if s.Next < s.NextBefore {
		return violation(InvEventLog, "the log ends at %d after the kill, but the node had reported %d before: sequence numbers will be reused", s.Next, s.NextBefore)
	}
	for i := 1; i < len(s.Irreversible); i++ {
		if s.Irreversible[i] != s.Irreversible[i-1]+1 {
			return violation(InvEventLog, "irreversible records jump from block %d to %d", s.Irreversible[i-1], s.Irreversible[i])
		}
	}
	if n := len(s.Irreversible); n > 0 && s.Irreversible[n-1] != s.LIB {
		return violation(InvEventLog, "the last irreversible record is for block %d, the store's last irreversible block is %d", s.Irreversible[n-1], s.LIB)
	}
	if len(s.AcceptedMissing) > 0 {
		return violation(InvEventLog, "accepted records for blocks the store does not hold, at heights %v", s.AcceptedMissing)
	}
	if s.HasIndexCursor && (s.IndexCursor < s.First || s.IndexCursor > s.Next) {
		return violation(InvEventLog, "the indexer's cursor %d is outside the log [%d, %d]", s.IndexCursor, s.First, s.Next)
	}
	return nil
}

// HistoryEntry is one entry of account_history.get_account_history.
type HistoryEntry struct {
	Seq  uint64
	TxID string // "" for a block entry
}

// CheckHistory: an account's history from sequence number from holds
// exactly want (transaction ids, in chain order) with consecutive sequence
// numbers: an entry lost, repeated or out of order across a crash shows.
// got may run past want (blocks newer than those checked).
func CheckHistory(account string, from uint64, want []string, got []HistoryEntry) error {
	for i, w := range want {
		if i >= len(got) {
			return violation(InvIndexes, "%s: history ends at seq %d, %d entries short of the irreversible blocks", account, from+uint64(i), len(want)-i)
		}
		g := got[i]
		if g.Seq != from+uint64(i) {
			return violation(InvIndexes, "%s: entry %d has seq %d, want %d (a gap in the sequence)", account, i, g.Seq, from+uint64(i))
		}
		if g.TxID != w {
			what := "another transaction"
			if slices.Contains(want[:i], g.TxID) {
				what = "a repeat of an earlier transaction"
			} else if slices.Contains(want[i:], g.TxID) {
				what = "a later transaction: entries are missing"
			}
			return violation(InvIndexes, "%s: seq %d is %s (%s), want %s", account, g.Seq, what, g.TxID, w)
		}
	}
	return nil
}

// firstFew joins the first five items of a list of problems.
func firstFew(items []string) string {
	if len(items) <= 5 {
		return strings.Join(items, "; ")
	}
	return strings.Join(items[:5], "; ") + fmt.Sprintf("; and %d more", len(items)-5)
}

// invariantOf names the invariant an error broke, or "" for an error of
// the harness.
var invariantOf = verdict.InvariantOf
