package e2e

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emberchain/ember/internal/e2e/byzantine"
)

// The byzantine peer's invariants (the peer is internal/e2e/byzantine, a
// process the runner starts): every identity it used is banned by every
// honest node that was up through its act, and the network went on
// producing and finalizing while it misbehaved.
const (
	InvBanned  = "byzantine-banned" // each byzantine identity in every honest node's bans (admin GET /p2p/bans)
	InvNoStall = "no-stall"         // blocks kept coming and every LIB advanced while the byzantine peer acted
)

// ByzantineWindow is one run of the byzantine peer, as the runner saw it.
type ByzantineWindow struct {
	FromMs, ToMs uint64 // while it ran (unix ms)
	// LIBsFrom, LIBsTo are the nodes' last irreversible blocks when it
	// started and once it was done; Judged marks the nodes that were up
	// (running, not paused) and not restarted through the window.
	LIBsFrom, LIBsTo []uint64
	Judged           []bool
	Acts             []byzantine.ActReport
	// Bans are the peer ids each node listed as banned once it was done.
	Bans [][]string
}

// CheckBanned judges a window's bans: every act's identity must be in
// the bans of every judged node, and every act must have run (a peer id,
// no error).
func CheckBanned(w ByzantineWindow) []error {
	var errs []error
	for _, a := range w.Acts {
		if a.Peer == "" || a.Err != "" {
			errs = append(errs, violation(InvBanned, "byzantine act %s did not run as scripted: %s", a.Act, a.Err))
			continue
		}
		for i, judged := range w.Judged {
			if judged && (i >= len(w.Bans) || !slices.Contains(w.Bans[i], a.Peer)) {
				errs = append(errs, violation(InvBanned, "node%d did not ban the byzantine peer %s of act %s", i, a.Peer, a.Act))
			}
		}
	}
	return errs
}

// CheckNoStall judges production and finality through a window: on the
// final chain no two consecutive blocks inside it (nor its edges and the
// nearest block) are more than maxGapSlots slots apart, and every judged
// node's LIB went up between its start and its end. A peer that claims a
// head it does not have must not make the honest nodes wait for it.
func CheckNoStall(chain []Block, w ByzantineWindow, genesisMs, slotMs uint64, maxGapSlots int) (gap uint64, errs []error) {
	if slotMs == 0 || w.FromMs < genesisMs || w.ToMs < w.FromMs {
		return 0, []error{violation(InvNoStall, "the byzantine window [%d, %d] ms is not after genesis (%d ms)", w.FromMs, w.ToMs, genesisMs)}
	}
	slotOf := func(ms uint64) uint64 { return (ms - genesisMs) / slotMs }
	prev := slotOf(w.FromMs)
	end := slotOf(w.ToMs)
	for _, b := range chain {
		if b.TimestampMs <= w.FromMs {
			continue
		}
		s := min(slotOf(b.TimestampMs), end)
		gap = max(gap, s-prev)
		prev = s
		if s == end {
			break
		}
	}
	gap = max(gap, end-prev)
	if gap > uint64(maxGapSlots) {
		errs = append(errs, violation(InvNoStall, "while the byzantine peer acted (%d ms) the final chain has %d slots without a block, more than %d", w.ToMs-w.FromMs, gap, maxGapSlots))
	}
	for i, judged := range w.Judged {
		if judged && i < len(w.LIBsFrom) && i < len(w.LIBsTo) && w.LIBsTo[i] <= w.LIBsFrom[i] {
			errs = append(errs, violation(InvNoStall, "node%d's last irreversible block did not advance while the byzantine peer acted (%d then %d)", i, w.LIBsFrom[i], w.LIBsTo[i]))
		}
	}
	return gap, errs
}

// ByzantineFigures is what a byzantine window did and what the nodes did
// about it.
type ByzantineFigures struct {
	Acts []ActFigures `json:"acts"`
	// MaxGapSlots is the longest run of slots without a block of the
	// final chain while it acted; LIBsFrom and LIBsTo the nodes' last
	// irreversible blocks at its start and end.
	MaxGapSlots uint64        `json:"max_gap_slots"`
	LIBsFrom    []uint64      `json:"libs_from"`
	LIBsTo      []uint64      `json:"libs_to"`
	Took        time.Duration `json:"took_ns"`
}

// ActFigures is one act: its messages, and how many of the judged nodes
// banned it.
type ActFigures struct {
	Act        string        `json:"act"`
	Sent       int64         `json:"sent"`
	Duplicates int64         `json:"duplicates,omitempty"`
	BannedBy   int           `json:"banned_by"`
	Judged     int           `json:"judged"`
	Took       time.Duration `json:"took_ns"`
}

func byzantineFigures(w ByzantineWindow, gap uint64) ByzantineFigures {
	f := ByzantineFigures{MaxGapSlots: gap, LIBsFrom: w.LIBsFrom, LIBsTo: w.LIBsTo, Took: time.Duration(w.ToMs-w.FromMs) * time.Millisecond}
	for _, a := range w.Acts {
		af := ActFigures{Act: a.Act, Sent: a.Sent, Duplicates: a.Duplicates, Took: a.End.Sub(a.Start)}
		for i, judged := range w.Judged {
			if judged {
				af.Judged++
				if i < len(w.Bans) && slices.Contains(w.Bans[i], a.Peer) {
					af.BannedBy++
				}
			}
		}
		f.Acts = append(f.Acts, af)
	}
	return f
}

func (f ByzantineFigures) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  byzantine peer for %s: at most %d slots without a block; LIBs %v then %v\n", f.Took.Round(100*time.Millisecond), f.MaxGapSlots, f.LIBsFrom, f.LIBsTo)
	for _, a := range f.Acts {
		fmt.Fprintf(&b, "    %-20s %5d sent", a.Act, a.Sent)
		if a.Duplicates > 0 {
			fmt.Fprintf(&b, ", %d duplicates", a.Duplicates)
		}
		fmt.Fprintf(&b, "; banned by %d of %d nodes in %s\n", a.BannedBy, a.Judged, a.Took.Round(100*time.Millisecond))
	}
	return b.String()
}
