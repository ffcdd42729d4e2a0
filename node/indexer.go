package node

import (
	"context"
	"errors"
	"time"

	"github.com/emberchain/ember/store"
)

// The indexer service keeps the transaction index and account history by
// following the store's event log (store/indexer.go): woken by each
// commit, it indexes what the commit logged, in steps of a bounded number
// of records, and prunes the log of what every consumer has confirmed.
// It starts first and stops last, so the blocks of the final commits are
// indexed before the store closes.

// indexStepRecords is how many log records one index step takes: a step
// is one unsynced Pebble batch.
const indexStepRecords = 64

// pruneInterval is how often the log is pruned.
const pruneInterval = 5 * time.Second

// IndexObserver is an optional interface of Config.Observer: it receives
// the index lag of each step (the longest time a record it indexed waited
// since its block's commit).
type IndexObserver interface {
	ObserveIndexLag(time.Duration)
}

func (n *Node) runIndexer(ctx context.Context) error {
	obs, _ := n.cfg.Observer.(IndexObserver)
	catchUp := func() error {
		for {
			rep, err := n.store.IndexStep(indexStepRecords)
			if err != nil {
				return err
			}
			if rep.Records == 0 {
				return nil
			}
			if obs != nil {
				obs.ObserveIndexLag(rep.Lag)
			}
		}
	}
	prune := time.NewTicker(pruneInterval)
	defer prune.Stop()
	for {
		wake := n.store.LogWait() // before the step: a commit during it wakes the next
		if err := catchUp(); err != nil {
			if errors.Is(err, store.ErrIndexRebuilding) {
				// Logged at open; the node serves everything else.
				<-ctx.Done()
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			// The services after this one have stopped: index their
			// last commits.
			return catchUp()
		case <-wake:
		case <-prune.C:
			if _, dropped, err := n.store.PruneLog(); err != nil {
				n.log.Error("event log pruning failed", "err", err)
			} else if dropped > 0 {
				n.log.Error("event log reached its cap: records a consumer had not confirmed were dropped", "records", dropped, "cap", n.store.LogStatus().Max)
			}
		}
	}
}
