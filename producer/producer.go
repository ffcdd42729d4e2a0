package producer

import (
	"errors"
	"fmt"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
)

// TxSource supplies candidate transactions, best first. The mempool
// implements it.
type TxSource interface {
	Best(n int) []*mempool.Entry
}

// Guard records a signature before it is made, so that no restart can make
// the producer sign twice for one slot (slashing protection). Sign may
// refuse. A nil Guard allows every signature.
type Guard interface {
	// BeforeSign is called with the block's slot and height; it must make
	// the record durable before returning nil.
	BeforeSign(slot, height uint64) error
}

// Producer builds and signs blocks for one key.
type Producer struct {
	key   keys.Signer
	addr  koinos.Address
	src   TxSource
	guard Guard
	// lastSlot is the last slot this producer built for in this process.
	lastSlot uint64
	stats    Stats
}

// Stats counts what the producer did, for metrics.
type Stats struct {
	Produced     uint64
	MissedSlots  uint64
	LastHeight   uint64
	LastSlot     uint64
	FailedTxs    uint64 // candidates the engine left out
	LastBlockTxs int
}

// New returns a producer for key. A guard that knows the last signed slot
// (FileGuard) moves the producer past it: after a crash between signing
// and broadcasting, that slot is skipped, not signed again.
func New(key keys.Signer, src TxSource, guard Guard) *Producer {
	p := &Producer{key: key, addr: key.Address(), src: src, guard: guard}
	if g, ok := guard.(interface{ Last() (uint64, uint64) }); ok {
		p.lastSlot, _ = g.Last()
	}
	return p
}

// Address is the producer's account.
func (p *Producer) Address() koinos.Address { return p.addr }

// Stats returns a snapshot.
func (p *Producer) Stats() Stats { return p.stats }

// IsProducer reports whether the key is in the genesis schedule at all.
func (p *Producer) IsProducer(c *chain.Chain) bool { return c.IsProducer(p.addr) }

// NextSlot returns this producer's next slot (chain.NextSlot: the engine
// decides, from the schedule, the head and the last slot signed).
func (p *Producer) NextSlot(c *chain.Chain, nowMs uint64) (uint64, bool) {
	return c.NextSlot(p.addr, p.lastSlot, nowMs)
}

// Budget bounds one block's packing. The producer keeps no clock: the
// caller's Stop brings the time.
type Budget struct {
	// MaxTxs is the most candidates taken from the source.
	MaxTxs int
	// Stop, called with the transactions included so far every
	// chain.StopCheckEvery candidates, ends the packing when it returns
	// true (nil: never).
	Stop func(included int) bool
}

// ErrNotMySlot is returned when Produce is called for another producer's
// slot.
var ErrNotMySlot = errors.New("producer: not this producer's slot")

// Produce builds the block of slot on the head, signs it and adds it to
// the engine. nowMs is the current time, used to count slots missed by
// waking late. The Ready must be committed and advanced by the caller;
// the failed transactions should leave the mempool. The budget bounds
// what the block packs.
func (p *Producer) Produce(c *chain.Chain, slot, nowMs uint64, budget Budget) (*chain.Ready, []chain.Failed, error) {
	if c.ScheduledProducer(slot) != p.addr {
		return nil, nil, ErrNotMySlot
	}
	if slot <= p.lastSlot {
		return nil, nil, fmt.Errorf("producer: slot %d already produced", slot)
	}
	if c.Late(slot, nowMs) {
		p.stats.MissedSlots++
		return nil, nil, fmt.Errorf("producer: woke at %d, more than half of slot %d (from %d) gone", nowMs, slot, c.SlotTime(slot))
	}
	entries := p.src.Best(budget.MaxTxs)
	txs := make([]*sigverify.VerifiedTx, len(entries))
	for i, e := range entries {
		txs[i] = e.Tx
	}
	prop, err := c.BuildUntil(c.SlotTime(slot), p.addr, txs, budget.Stop)
	if err != nil {
		return nil, nil, fmt.Errorf("producer: build block for slot %d: %w", slot, err)
	}
	if p.guard != nil {
		if err := p.guard.BeforeSign(slot, prop.Block.Header.Height); err != nil {
			return nil, nil, fmt.Errorf("producer: refusing to sign slot %d: %w", slot, err)
		}
	}
	r, err := c.Commit(prop, p.key.Sign(prop.ID))
	if err != nil {
		return nil, nil, err
	}
	p.lastSlot = slot
	p.stats.Produced++
	p.stats.LastHeight = prop.Block.Header.Height
	p.stats.LastSlot = slot
	p.stats.FailedTxs += uint64(len(prop.Failed))
	p.stats.LastBlockTxs = len(prop.Block.Transactions)
	return r, prop.Failed, nil
}
