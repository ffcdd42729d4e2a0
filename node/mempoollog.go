package node

import (
	"context"
	"time"
)

// With Config.LogMempool, admissions to the mempool go into the durable
// event log, for the consumers of Koinos's koinos.transaction.accept and
// koinos.mempool.accept broadcasts (the AMQP publisher). admit queues each
// admitted transaction in the store (store.BufferMempool, a slice append);
// each block commit writes the queue ahead of its block, and this service
// writes it every mempoolLogWindow between commits, and once more when the
// services after it have stopped.

const mempoolLogWindow = 20 * time.Millisecond

func (n *Node) runMempoolLog(ctx context.Context) error {
	t := time.NewTicker(mempoolLogWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return n.store.FlushMempool()
		case <-t.C:
			if err := n.store.FlushMempool(); err != nil {
				return err
			}
		}
	}
}
