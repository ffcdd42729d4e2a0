package e2e

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/emberchain/ember/internal/verdict"
)

// The invariants, as pure functions of what the runner observed from
// outside over JSON-RPC: the runner gathers, these decide, and tests feed
// them fabricated histories. Each returns nil or *Violation errors.

// Invariant names, as they appear in violations and the summary.
const (
	InvAgree      = "irreversible-agree" // every node has the same block at each irreversible height
	InvKept       = "irreversible-kept"  // no irreversible block reverted; a node's LIB never goes back
	InvResumed    = "production-resumed" // blocks again within ResumeSlots of the final heal, from every producer
	InvFinality   = "finality-resumed"   // irreversibility passes the heal's heads after the heal
	InvTxIncluded = "tx-included"        // every acknowledged honest transaction is on the chain
	InvTxOnce     = "tx-once"            // no transaction is on the chain twice
	InvCleanStop  = "clean-stop"         // every node exits 0 on SIGTERM at the end
)

// Violation is a broken invariant.
type Violation = verdict.Violation

var violation = verdict.New

// Block is a block as the runner read it over JSON-RPC.
type Block struct {
	Height      uint64
	ID          string // 0x multihash
	Signer      string // base58 address
	TimestampMs uint64
	Txs         []string // transaction ids (0x multihash), in block order
}

// Ledger is what the nodes reported irreversible during the run: the
// block id at each height, as first reported by any node, and each node's
// highest last irreversible block. Safe for concurrent use.
type Ledger struct {
	mu struct {
		sync.Mutex
		ids    map[uint64]string
		by     map[uint64]int // the node that first reported the height
		maxLIB map[int]uint64 // per node
		upTo   map[int]uint64 // per node: heights recorded from it
	}
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	l := &Ledger{}
	l.mu.ids, l.mu.by = map[uint64]string{}, map[uint64]int{}
	l.mu.maxLIB, l.mu.upTo = map[int]uint64{}, map[int]uint64{}
	return l
}

// ReportLIB records node's reported last irreversible block height: it
// must never go below one it reported before, across restarts too.
func (l *Ledger) ReportLIB(node int, lib uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.mu.maxLIB[node]
	if lib < prev {
		return violation(InvKept, "node%d reported last irreversible block %d after %d", node, lib, prev)
	}
	l.mu.maxLIB[node] = lib
	return nil
}

// Irreversible records that node holds block id at height, at or below
// its last irreversible block. Every node must report the same block at a
// height.
func (l *Ledger) Irreversible(node int, height uint64, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.upTo[node] = max(l.mu.upTo[node], height)
	if old, ok := l.mu.ids[height]; ok {
		if old != id {
			return violation(InvAgree, "block %d is irreversible as %s on node%d and as %s on node%d", height, old, l.mu.by[height], id, node)
		}
		return nil
	}
	l.mu.ids[height], l.mu.by[height] = id, node
	return nil
}

// RecordedUpTo is the highest height recorded from node.
func (l *Ledger) RecordedUpTo(node int) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.upTo[node]
}

// Snapshot is the recorded ids by height.
func (l *Ledger) Snapshot() map[uint64]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[uint64]string, len(l.mu.ids))
	for h, id := range l.mu.ids {
		out[h] = id
	}
	return out
}

// MaxLIB is the highest last irreversible block any node reported.
func (l *Ledger) MaxLIB() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m uint64
	for _, v := range l.mu.maxLIB {
		m = max(m, v)
	}
	return m
}

// LIBs is each node's highest reported last irreversible block.
func (l *Ledger) LIBs() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]uint64, Nodes)
	for i := range out {
		out[i] = l.mu.maxLIB[i]
	}
	return out
}

// CheckSameChains compares the nodes' final chains (block ids from height
// 1, each up to that node's last irreversible block): every node must
// have the same block at every height they all hold.
func CheckSameChains(chains [][]string) []error {
	if len(chains) == 0 {
		return nil
	}
	n := len(chains[0])
	for _, c := range chains[1:] {
		n = min(n, len(c))
	}
	var errs []error
	for h := 0; h < n; h++ {
		for i, c := range chains[1:] {
			if c[h] != chains[0][h] {
				errs = append(errs, violation(InvAgree, "at height %d node0 has %s and node%d has %s", h+1, chains[0][h], i+1, c[h]))
				break
			}
		}
		if len(errs) >= 5 {
			break // the first forks say it; the rest follow from them
		}
	}
	return errs
}

// CheckKept compares what was reported irreversible during the run with
// a node's final chain (block ids from height 1): every recorded block
// must still be there.
func CheckKept(node int, recorded map[uint64]string, chain []string) []error {
	heights := make([]uint64, 0, len(recorded))
	for h := range recorded {
		heights = append(heights, h)
	}
	slices.Sort(heights)
	var errs []error
	for _, h := range heights {
		var now string
		if h >= 1 && h <= uint64(len(chain)) {
			now = chain[h-1]
		}
		if now != recorded[h] {
			if now == "" {
				now = "nothing (the node's final chain ends at " + fmt.Sprint(len(chain)) + ")"
			}
			errs = append(errs, violation(InvKept, "block %d was reported irreversible as %s; node%d now has %s", h, recorded[h], node, now))
			if len(errs) >= 5 {
				break
			}
		}
	}
	return errs
}

// TxRecord is an honest transfer the load sent: whether a node
// acknowledged it (chain.submit_transaction answered without error).
type TxRecord struct {
	ID     string // 0x multihash
	Sender int
	Nonce  uint64
	Acked  bool
}

// TxFigures counts what CheckTxs found.
type TxFigures struct {
	Sent, Acked, Included, AckedIncluded int
}

// CheckTxs judges the honest transfers against the final chain (every
// block from height 1): each acknowledged one is included exactly once,
// and none (acknowledged or not) twice.
func CheckTxs(chain []Block, txs []TxRecord) (TxFigures, []error) {
	where := map[string][]uint64{}
	for _, b := range chain {
		for _, id := range b.Txs {
			where[id] = append(where[id], b.Height)
		}
	}
	f := TxFigures{Sent: len(txs)}
	var errs []error
	report := func(err error) {
		if len(errs) < 20 {
			errs = append(errs, err)
		}
	}
	for _, t := range txs {
		hs := where[t.ID]
		if len(hs) > 0 {
			f.Included++
		}
		if t.Acked {
			f.Acked++
			if len(hs) > 0 {
				f.AckedIncluded++
			}
		}
		switch {
		case len(hs) > 1:
			report(violation(InvTxOnce, "transaction %s (sender %d, nonce %d) is in blocks %v", t.ID, t.Sender, t.Nonce, hs))
		case len(hs) == 0 && t.Acked:
			report(violation(InvTxIncluded, "transaction %s (sender %d, nonce %d) was acknowledged and is not on the chain", t.ID, t.Sender, t.Nonce))
		}
	}
	return f, errs
}

// ResumeParams are the chain's schedule and the demands on it after the
// final heal.
type ResumeParams struct {
	GenesisMs, SlotMs uint64
	Producers         []string // base58 addresses, every producer of the chain
	ResumeSlots       int      // a block within this many slots of the heal
	ProducersWithinMs uint64   // every producer signs within this time of the heal
}

// ResumeFigures is what CheckResumed measured.
type ResumeFigures struct {
	// FirstSlots is how many slots after the heal's slot the final
	// chain's first later block is.
	FirstSlots uint64 `json:"first_block_slots"`
	// AllProducersMs is how long after the heal every producer had
	// signed a block of the final chain (0 if some never did).
	AllProducersMs uint64 `json:"all_producers_ms"`
}

// CheckResumed judges the final chain after the heal at healMs (the
// moment everything was undone): a block in one of the ResumeSlots slots
// after the heal's slot, and a block from every producer within
// ProducersWithinMs.
func CheckResumed(chain []Block, healMs uint64, p ResumeParams) (ResumeFigures, []error) {
	var f ResumeFigures
	if p.SlotMs == 0 || healMs < p.GenesisMs {
		return f, []error{fmt.Errorf("e2e: the heal at %d ms is before genesis (%d ms) or the slot is zero", healMs, p.GenesisMs)}
	}
	healSlot := (healMs - p.GenesisMs) / p.SlotMs
	var errs []error
	first := uint64(0)
	firstBy := map[string]uint64{} // producer → first timestamp after the heal
	for _, b := range chain {
		if b.TimestampMs <= healMs {
			continue
		}
		slot := (b.TimestampMs - p.GenesisMs) / p.SlotMs
		if first == 0 {
			first = slot
		}
		if _, ok := firstBy[b.Signer]; !ok {
			firstBy[b.Signer] = b.TimestampMs
		}
	}
	if first == 0 {
		return f, []error{violation(InvResumed, "no block of the final chain after the heal (slot %d)", healSlot)}
	}
	f.FirstSlots = first - healSlot
	if f.FirstSlots > uint64(p.ResumeSlots) {
		errs = append(errs, violation(InvResumed, "the final chain's first block after the heal is %d slots after it (slot %d), more than %d", f.FirstSlots, first, p.ResumeSlots))
	}
	var missing []string
	var last uint64
	for _, pr := range p.Producers {
		ts, ok := firstBy[pr]
		if !ok || ts-healMs > p.ProducersWithinMs {
			missing = append(missing, pr)
			continue
		}
		last = max(last, ts-healMs)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		errs = append(errs, violation(InvResumed, "no block of the final chain within %d ms of the heal from producers %v", p.ProducersWithinMs, missing))
	} else {
		f.AllProducersMs = last
	}
	return f, errs
}

// CheckFinality judges irreversibility after the heal: every node's
// final last irreversible block must be above the highest head any node
// had at the heal (the blocks of both sides of a partition are decided).
func CheckFinality(headAtHeal uint64, finalLIBs []uint64) []error {
	var errs []error
	for i, lib := range finalLIBs {
		if lib <= headAtHeal {
			errs = append(errs, violation(InvFinality, "node%d's last irreversible block is %d, not above %d, the highest head at the heal", i, lib, headAtHeal))
		}
	}
	return errs
}
