package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/producer"
)

// chainLoop owns the engine: it produces in this node's slots, applies
// received blocks (one at a time, or in groups from sync), expires old
// transactions, and commits every step. It returns nil once ctx ends and
// the final checkpoint is written, or the error that must stop the node.
func (n *Node) chainLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	expiry := time.NewTicker(time.Second)
	defer expiry.Stop()
	nextSlot, producing := uint64(0), false
	// notBefore holds the schedule past a slot that was skipped, which is
	// otherwise still "now".
	notBefore := uint64(0)
	schedule := func() {
		if n.producer == nil {
			return
		}
		now := max(n.nowMs(), notBefore)
		nextSlot, producing = n.producer.NextSlot(n.chain, now)
		if !producing {
			return
		}
		now = n.nowMs()
		timer.Reset(time.Duration(max(n.chain.SlotTime(nextSlot), now)-now) * time.Millisecond)
	}
	schedule()
	var lastPing time.Time
	for {
		// The watchdog is pinged from here, not from a timer of its own, so
		// a stuck loop stops the pings and systemd restarts the node.
		now := n.now()
		n.loopTick.Store(now.UnixNano())
		if n.cfg.WatchdogInterval > 0 && now.Sub(lastPing) >= n.cfg.WatchdogInterval {
			n.notify("WATCHDOG=1")
			lastPing = now
		}
		select {
		case <-ctx.Done():
			return n.shutdownCheckpoint()
		case <-timer.C:
			switch {
			case !producing:
			case !n.mayProduce():
				// Catching up, or not yet heard from the peers: a block
				// built now would be on a stale head. The slot is
				// skipped, not signed.
				n.log.Info("slot skipped: syncing with the network", "slot", nextSlot)
			case !n.diskAllows(nextSlot):
				// Disk full or failing: the slot is skipped without
				// writing anything (diskfault.go).
			default:
				if err := n.produce(nextSlot); err != nil {
					return err
				}
			}
			// Produced, skipped or refused (late): this slot is done; the
			// schedule looks from the next one, or a refused slot that is
			// still in progress would be tried again at once.
			if producing {
				notBefore = n.chain.SlotTime(nextSlot + 1)
			}
			schedule()
		case req := <-n.blockIn:
			entries, err := n.applyBlocks(req)
			req.reply <- blockResult{entries, err}
			if isFatal(err) {
				return err
			}
			schedule()
		case <-expiry.C:
			n.sweepPrepared(n.now())
			if k := n.pool.Expire(n.nowMs()); k > 0 {
				n.log.Info("expired pending transactions", "count", k)
			}
		}
	}
}

// fatalError marks an error that must stop the node (the store failed).
type fatalError struct{ error }

func isFatal(err error) bool {
	var f fatalError
	return errors.As(err, &f)
}

// Block production has a time budget inside the slot (DESIGN §4): with
// other producers, building and storing a block may take 40% of the
// interval, so that the block reaches them and they apply it (at about the
// same cost) before the next slot; alone, half. Two things hold it:
//   - a transaction count, from the measured cost per transaction (a
//     moving average over the blocks this node built and stored and the
//     blocks it received and applied: the same work, and four times the
//     samples in a four-producer network), so that the mempool is not
//     copied beyond what can fit;
//   - a deadline: packing stops once the time spent plus the measured
//     store cost of what is packed reaches the budget, checked every
//     chain.StopCheckEvery candidates. The count alone overran when the
//     cost rose inside a block (the other core busy, a GC): 1.1 s blocks
//     in a 1 s slot on a loaded machine.
//
// The averages follow a falling cost at once and a rising one by halves,
// so one slow block (a GC, a cold cache) does not shrink the next ones for
// long. Before the first sample the cost is taken as initialCostNs.
// Without a budget, a loaded network made blocks that took longer than a
// slot, every producer built on a stale head and most blocks ended off
// the chain.
const (
	budgetShared  = 0.4
	budgetAlone   = 0.5
	minBudgetTxs  = 256
	costSampleTxs = 100    // blocks smaller than this do not update the cost
	costRise      = 0.5    // weight of a higher sample
	initialCostNs = 20_000 // 20 µs per transaction: a 1 s slot's first shared block holds 20,000
)

// costAverage is a cost per transaction, in nanoseconds, averaged over
// blocks as the budget's comment says (0: no sample yet). A cautious one
// does the opposite: it follows a rise at once and a fall by halves. The
// deadline's store cost is cautious, because the store runs after packing
// has stopped and nothing can shorten it then.
type costAverage struct {
	ns       float64
	cautious bool
}

func (c *costAverage) note(txs int, took time.Duration) {
	if txs < costSampleTxs {
		return
	}
	v := float64(took.Nanoseconds()) / float64(txs)
	if c.ns <= 0 || (v < c.ns) != c.cautious {
		c.ns = v
		return
	}
	c.ns = costRise*v + (1-costRise)*c.ns
}

// budgetShare is the share of the interval a block may take.
func (n *Node) budgetShare() float64 {
	if p := n.cfg.TimeBudgetPercent; p > 0 {
		return float64(p) / 100 // producer.time_budget_percent
	}
	if len(n.cfg.Genesis.Params().Producers) == 1 {
		return budgetAlone
	}
	return budgetShared
}

// blockTxLimit is the most transactions the next block may hold.
func (n *Node) blockTxLimit() int {
	limit := n.chain.MaxBlockTransactions()
	cost := n.txCost.ns
	if cost <= 0 {
		cost = initialCostNs
	}
	budget := n.budgetShare() * float64(n.cfg.Genesis.Params().BlockIntervalMs) * 1e6
	return max(minBudgetTxs, min(limit, int(budget/cost)))
}

// packingBudget is the next block's budget, its clock started at start.
func (n *Node) packingBudget(start time.Time) producer.Budget {
	budget := time.Duration(n.budgetShare() * float64(n.cfg.Genesis.Params().BlockIntervalMs) * float64(time.Millisecond))
	storeNs := n.storeCost.ns
	return producer.Budget{
		MaxTxs: n.blockTxLimit(),
		Stop: func(included int) bool {
			return included >= minBudgetTxs && time.Since(start)+time.Duration(float64(included)*storeNs) >= budget
		},
	}
}

// noteBlockCost updates the costs per transaction from a block built or
// applied (took) and stored (stored, part of took).
func (n *Node) noteBlockCost(txs int, took, stored time.Duration) {
	n.txCost.note(txs, took)
	n.storeCost.note(txs, stored)
}

func (n *Node) produce(slot uint64) error {
	start := time.Now()
	r, failed, err := n.producer.Produce(n.chain, slot, n.nowMs(), n.packingBudget(start))
	n.producerStats.Store(n.producer.Stats())
	if err != nil {
		if guardWriteFailure(err) {
			n.diskWriteFailed(slot, err) // logs once per fault, not per slot
			return nil
		}
		n.log.Warn("no block produced", "slot", slot, "err", err)
		return nil
	}
	built := time.Since(start)
	if len(failed) > 0 {
		txs := make([]*sigverify.VerifiedTx, len(failed))
		for i, f := range failed {
			txs[i] = f.Tx
			n.log.Debug("transaction left out of block", "id", fmt.Sprintf("0x%x", f.Tx.ID().Multihash()), "err", f.Err)
		}
		n.pool.Remove(txs...)
		if n.pub != nil {
			ids := make([]koinos.Digest, len(failed))
			for i, f := range failed {
				ids[i] = f.Tx.ID()
			}
			n.store.BufferTxFailed(ids) // koinos.transaction.fail, logged with the block
		}
	}
	if err := n.commit([]*chain.Ready{r}, events.Local, ""); err != nil {
		return err
	}
	n.diskWriteOK()
	e := r.Accepted[0]
	stored := time.Since(start) - built
	n.noteBlockCost(len(e.Block.Transactions)+len(failed), time.Since(start), stored)
	if n.cfg.Observer != nil {
		n.cfg.Observer.ObserveBlock(BlockTiming{Produced: true, Txs: len(e.Block.Transactions), Apply: built, Store: stored})
	}
	n.log.Info("produced block", "height", e.Height, "id", fmt.Sprintf("0x%x", e.ID.Multihash()), "txs", len(e.Block.Transactions),
		"failed", len(failed), "pending", n.pool.Len(), "build_ms", built.Milliseconds(), "total_ms", time.Since(start).Milliseconds())
	return nil
}

// applyBlocks applies a request's blocks and commits what was accepted,
// even when a later block of the group failed.
func (n *Node) applyBlocks(req blockRequest) ([]*chain.BlockEntry, error) {
	start := time.Now()
	var rs []*chain.Ready
	var err error
	if len(req.vbs) == 1 && req.origin != events.Sync {
		// A single block (gossip, submit_block): one already known is an
		// error the sender hears of. Sync groups skip known blocks, even a
		// group of one that gossip delivered first.
		var r *chain.Ready
		if r, err = n.chain.AcceptBlock(req.vbs[0], n.nowMs()); err == nil {
			rs = []*chain.Ready{r}
		}
	} else {
		rs, err = n.chain.AcceptBlocks(req.vbs, n.nowMs())
	}
	applied := time.Since(start)
	if len(rs) > 0 {
		if cerr := n.commit(rs, req.origin, req.peer); cerr != nil {
			return nil, cerr
		}
	}
	entries := make([]*chain.BlockEntry, len(rs))
	txs := 0
	for i, r := range rs {
		entries[i] = r.Accepted[0]
		txs += len(entries[i].Block.Transactions)
	}
	if n.cfg.Observer != nil && len(rs) > 0 {
		n.cfg.Observer.ObserveBlock(BlockTiming{Txs: txs, Verify: req.verify, Apply: applied, Store: time.Since(start) - applied})
	}
	if len(entries) == 1 {
		n.noteBlockCost(txs, time.Since(start), time.Since(start)-applied)
	}
	switch {
	case len(entries) == 1 && req.origin != events.Sync:
		// One line per block received live: with "produced block" on the
		// producer, the logs give each block's propagation (ember bench).
		e := entries[0]
		n.log.Info("accepted block", "height", e.Height, "id", fmt.Sprintf("0x%x", e.ID.Multihash()), "txs", txs,
			"origin", req.origin.String(), "peer", req.peer, "verify_ms", req.verify.Milliseconds(), "apply_ms", applied.Milliseconds(),
			"store_ms", n.lastCommit.store.Milliseconds(), "publish_ms", n.lastCommit.after.Milliseconds(), "total_ms", time.Since(start).Milliseconds())
	case len(entries) > 0:
		n.log.Debug("applied blocks", "blocks", len(entries), "from", entries[0].Height, "to", entries[len(entries)-1].Height, "txs", txs,
			"origin", req.origin.String(), "peer", req.peer, "apply_ms", applied.Milliseconds(), "total_ms", time.Since(start).Milliseconds())
	}
	return entries, err
}

// commit makes steps durable (one batch each, one sync for all), then
// advances the engine, tells the mempool and wakes head waiters, and only
// then publishes the events.
func (n *Node) commit(rs []*chain.Ready, origin events.Origin, peer string) error {
	start := time.Now()
	defer func() {
		n.lastCommit = commitTiming{store: n.lastCommit.store, after: time.Since(start) - n.lastCommit.store}
	}()
	var err error
	if len(rs) == 1 {
		err = n.store.Commit(rs[0])
	} else {
		err = n.store.CommitGroup(rs)
	}
	if err != nil {
		return fatalError{fmt.Errorf("node: store commit failed, stopping: %w", err)}
	}
	stored := time.Now()
	var evs []events.Event
	headChanged := false
	for _, r := range rs {
		n.chain.Advance(r)
		n.updateMempool(r)
		headChanged = headChanged || r.HeadChanged
		evs = appendEvents(evs, r, origin, peer)
	}
	if headChanged {
		n.headMu.Lock()
		close(n.headWait)
		n.headWait = make(chan struct{})
		n.headMu.Unlock()
	}
	// Background: the chain loop's own context ends at shutdown, and the
	// events of a durable step must still go out; a stuck consumer holds
	// this for at most the stream's StallTimeout.
	if err := n.events.Publish(context.Background(), evs...); err != nil && !errors.Is(err, events.ErrClosed) {
		n.log.Error("publish events", "err", err)
	}
	n.lastCommit = commitTiming{store: stored.Sub(start), after: time.Since(stored)}
	return nil
}

// commitTiming splits the last commit: the store batch, then advancing,
// the mempool update and publishing the events (for the block log lines).
type commitTiming struct{ store, after time.Duration }

// updateMempool tells the pool how the head chain changed: transactions of
// removed blocks come back, those of added blocks leave.
func (n *Node) updateMempool(r *chain.Ready) {
	if len(r.Reorg.Added) == 0 && len(r.Reorg.Removed) == 0 {
		return
	}
	added := make([][]*sigverify.VerifiedTx, len(r.Reorg.Added))
	for i, e := range r.Reorg.Added {
		added[i] = e.Txs
	}
	removed := make([][]*sigverify.VerifiedTx, 0, len(r.Reorg.Removed))
	for _, e := range slices.Backward(r.Reorg.Removed) {
		removed = append(removed, e.Txs)
	}
	if err := n.pool.Update(n.chain.View(), added, removed, n.nowMs()); err != nil {
		n.log.Error("mempool update", "err", err)
	}
}

// appendEvents adds the events of one durable step: its blocks, the head
// change, the irreversibility advance.
func appendEvents(evs []events.Event, r *chain.Ready, origin events.Origin, peer string) []events.Event {
	for _, e := range r.Accepted {
		evs = append(evs, events.Event{Kind: events.BlockAccepted, Origin: origin, Peer: peer, Block: e})
	}
	if r.HeadChanged {
		evs = append(evs, events.Event{Kind: events.HeadChanged, Origin: origin, Peer: peer, Head: r.Meta.Head, LIB: r.Meta.LIB, Reorg: r.Reorg})
	}
	if len(r.Irreversible) > 0 {
		evs = append(evs, events.Event{Kind: events.Irreversible, Head: r.Meta.Head, LIB: r.Meta.LIB, Blocks: r.Irreversible})
	}
	return evs
}

// HeadChanged returns a channel closed at the next head change.
func (n *Node) HeadChanged() <-chan struct{} {
	n.headMu.Lock()
	defer n.headMu.Unlock()
	return n.headWait
}

func (n *Node) shutdownCheckpoint() error {
	r, err := n.chain.Checkpoint()
	if err != nil {
		return err
	}
	if err := n.store.Commit(r); err != nil {
		return fatalError{fmt.Errorf("node: final checkpoint: %w", err)}
	}
	n.chain.Advance(r)
	n.log.Info("state checkpointed", "height", r.Meta.Checkpoint.Height)
	return nil
}
