package chain

import "github.com/emberchain/ember/engine/koinos"

// The consensus schedule lives here, with the rules that use it: who may
// produce in which slot (checkHeader enforces it on every block), when a
// producer produces (NextSlot, Late), and fork choice (forkdb.go: better,
// chooseHead, the double-production taint, irreversibility). Time comes in
// as arguments (nowMs): the engine reads no clock, so every decision can be
// replayed and tested with any time.
//
// Slots are block_interval_ms long from genesis_time_ms; genesis owns slot
// 0; the producers take slots round-robin in genesis order.

// slot is the production slot of a timestamp.
func (c *Chain) slot(ts uint64) uint64 {
	return (ts - c.params.GenesisTimeMs) / c.params.BlockIntervalMs
}

// SlotTime is the start of a slot, in ms since the epoch.
func (c *Chain) SlotTime(slot uint64) uint64 {
	return c.params.GenesisTimeMs + slot*c.params.BlockIntervalMs
}

// SlotAt is the slot containing time nowMs (0 before genesis).
func (c *Chain) SlotAt(nowMs uint64) uint64 {
	if nowMs < c.params.GenesisTimeMs {
		return 0
	}
	return c.slot(nowMs)
}

// ScheduledProducer is the producer whose slot it is.
func (c *Chain) ScheduledProducer(slot uint64) koinos.Address {
	return c.producers[slot%uint64(len(c.producers))]
}

// IsProducer reports whether a is in the schedule at all.
func (c *Chain) IsProducer(a koinos.Address) bool {
	for _, p := range c.producers {
		if p == a {
			return true
		}
	}
	return false
}

// NextSlot is the production decision: producer a's first slot that has
// not ended at nowMs (the slot in progress counts; Late says when it is
// over), is after the head's slot (one block per slot, on the branch this
// node holds best) and after lastSigned (the sign guard's record: never a
// second block for a slot). ok is false when a is not a producer.
func (c *Chain) NextSlot(a koinos.Address, lastSigned, nowMs uint64) (slot uint64, ok bool) {
	if !c.IsProducer(a) {
		return 0, false
	}
	s := max(c.SlotAt(nowMs), c.SlotAt(c.HeadTime())+1, lastSigned+1)
	for range len(c.producers) {
		if c.ScheduledProducer(s) == a {
			return s, true
		}
		s++
	}
	return 0, false // unreachable: a is in the schedule
}

// Late reports whether it is too late at nowMs to produce for slot: half
// of it has passed. A block started later reaches the next producer too
// late to be built on, and the two collide at one height; the producer
// skips the slot instead.
func (c *Chain) Late(slot, nowMs uint64) bool {
	return nowMs >= c.SlotTime(slot)+c.params.BlockIntervalMs/2
}
