package node

import (
	"context"
	"sync/atomic"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// SubmitTransaction verifies a transaction, checks it against the head
// (Koinos applies a submitted transaction off head the same way) and, when
// broadcast is set, admits it to the mempool. source names the sender for
// the verifier's admission limits (a client IP or peer id). It never waits
// for the chain loop.
func (n *Node) SubmitTransaction(ctx context.Context, tx *protocol.Transaction, broadcast bool, source string) (*protocol.TransactionReceipt, error) {
	if tx == nil {
		return nil, koinos.Errorf(chainpb.ErrorCode_missing_required_arguments, "transaction is missing")
	}
	var v *sigverify.VerifiedTx
	if p, ok := n.prepared.LoadAndDelete(tx); ok {
		v = p.(preparedTx).v // verified with its batch (backend.Prepare)
	} else {
		var err error
		if v, err = n.verifier.VerifyTx(ctx, tx, source); err != nil {
			return nil, err
		}
	}
	view := n.chain.View()
	nonce, err := n.pool.PendingNonce(v.NonceAccount(), view)
	if err != nil {
		return nil, err
	}
	now := n.nowMs()
	r, err := view.CheckTransaction(v, nonce, now)
	if err != nil {
		return nil, err
	}
	if !broadcast {
		return r, nil
	}
	u := mempool.Usage{Disk: r.DiskStorageUsed, Network: r.NetworkBandwidthUsed, Compute: r.ComputeBandwidthUsed}
	if err := n.pool.Add(v, view, now, u); err != nil {
		return nil, err
	}
	return r, nil
}

// subscriber receives every advanced step.
type subscriber struct {
	ch      chan *chain.Ready
	dropped atomic.Uint64
}

// Subscribe returns a channel receiving every step the node makes durable,
// in order, and a function to unsubscribe. A subscriber that falls
// EventDepth steps behind loses steps (counted by Dropped) rather than
// stalling the chain loop.
func (n *Node) Subscribe() (<-chan *chain.Ready, func()) {
	s := &subscriber{ch: make(chan *chain.Ready, EventDepth)}
	n.subsMu.Lock()
	n.subs = append(n.subs, s)
	n.subsMu.Unlock()
	return s.ch, func() {
		n.subsMu.Lock()
		defer n.subsMu.Unlock()
		for i, o := range n.subs {
			if o == s {
				n.subs = append(n.subs[:i], n.subs[i+1:]...)
				close(s.ch)
				return
			}
		}
	}
}

func (n *Node) publish(r *chain.Ready) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for _, s := range n.subs {
		select {
		case s.ch <- r:
		default:
			s.dropped.Add(1)
		}
	}
}

func (n *Node) closeSubscribers() {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for _, s := range n.subs {
		close(s.ch)
	}
	n.subs = nil
}
