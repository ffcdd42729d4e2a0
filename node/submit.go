package node

import (
	"context"
	"errors"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// SubmitTransaction verifies a transaction, checks it against the head
// (Koinos applies a submitted transaction off head the same way) and, when
// broadcast is set, admits it to the mempool and publishes it (TxAdmitted,
// origin Local). source names the sender for the verifier's admission
// limits (a client IP). It never waits for the chain loop.
func (n *Node) SubmitTransaction(ctx context.Context, tx *protocol.Transaction, broadcast bool, source string) (*protocol.TransactionReceipt, error) {
	return n.submitTransaction(ctx, tx, broadcast, source, events.Local)
}

func (n *Node) submitTransaction(ctx context.Context, tx *protocol.Transaction, broadcast bool, source string, origin events.Origin) (*protocol.TransactionReceipt, error) {
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
	r, err := n.admit(v, broadcast)
	if err != nil || !broadcast {
		return r, err
	}
	n.publishTxs([]*sigverify.VerifiedTx{v}, origin, "")
	return r, nil
}

// admit checks a verified transaction against the head and, when add is
// set, inserts it into the mempool.
func (n *Node) admit(v *sigverify.VerifiedTx, add bool) (*protocol.TransactionReceipt, error) {
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
	if !add {
		return r, nil
	}
	u := mempool.Usage{Disk: r.DiskStorageUsed, Network: r.NetworkBandwidthUsed, Compute: r.ComputeBandwidthUsed}
	if err := n.pool.Add(v, view, now, u); err != nil {
		return nil, err
	}
	if n.cfg.LogMempool {
		n.store.BufferMempool(v.Tx(), r, view.Head.Height, n.pool.Reserved(v.Payer()))
	}
	return r, nil
}

func (n *Node) publishTxs(txs []*sigverify.VerifiedTx, origin events.Origin, peer string) {
	// Background: the transactions are in the mempool whatever the caller's
	// context says now; their event must follow (bounded by the stream's
	// StallTimeout).
	if err := n.events.Publish(context.Background(), events.Event{Kind: events.TxAdmitted, Origin: origin, Peer: peer, Txs: txs}); err != nil && !errors.Is(err, events.ErrClosed) {
		n.log.Error("publish transaction event", "err", err)
	}
}

// AdmitTransactions verifies a group of transactions together (a gossip
// batch), admits the valid ones to the mempool and publishes them as one
// TxAdmitted event. It returns, per transaction, nil or why it was not
// admitted: the verifier's error or the admission check's (nonce, rc, a
// full pool: usually nobody's fault). faults counts the transactions whose
// form or signatures failed, the sender's fault (not those the verifier
// had no room for), for scoring peers.
func (n *Node) AdmitTransactions(ctx context.Context, txs []*protocol.Transaction, origin events.Origin, peer string) (errs []error, faults int) {
	var vs []*sigverify.VerifiedTx
	if bv, ok := n.verifier.(batchVerifier); ok {
		vs, errs = bv.VerifyTxs(ctx, txs, "p2p:"+peer)
	} else {
		vs, errs = make([]*sigverify.VerifiedTx, len(txs)), make([]error, len(txs))
		for i, tx := range txs {
			vs[i], errs[i] = n.verifier.VerifyTx(ctx, tx, "p2p:"+peer)
		}
	}
	admitted := make([]*sigverify.VerifiedTx, 0, len(txs))
	for i, v := range vs {
		if errs[i] != nil {
			if senderFault(errs[i]) {
				faults++
			}
			continue
		}
		if _, errs[i] = n.admit(v, true); errs[i] == nil {
			admitted = append(admitted, v)
		}
	}
	if len(admitted) > 0 {
		n.publishTxs(admitted, origin, peer)
	}
	return errs, faults
}

// senderFault reports whether a verifier error is about the transaction
// rather than this node's capacity or shutdown.
func senderFault(err error) bool {
	return !errors.Is(err, sigverify.ErrOverloaded) && !errors.Is(err, sigverify.ErrSourceLimit) && !errors.Is(err, sigverify.ErrClosed) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// SubmitBlock verifies a block and hands it to the chain loop (JSON-RPC
// submit_block: origin Local).
func (n *Node) SubmitBlock(ctx context.Context, b *protocol.Block) (*chain.BlockEntry, error) {
	return n.SubmitBlockFrom(ctx, b, events.Local, "")
}

// SubmitBlockFrom verifies a block received from origin (a gossip peer)
// and hands it to the chain loop. A block already known returns
// chain.ErrKnownBlock.
func (n *Node) SubmitBlockFrom(ctx context.Context, b *protocol.Block, origin events.Origin, peer string) (*chain.BlockEntry, error) {
	start := time.Now()
	vb, err := n.verifier.VerifyBlock(ctx, b, n.chain.MaxBlockTransactions())
	if err != nil {
		return nil, err
	}
	entries, err := n.applyVerified(ctx, []*sigverify.VerifiedBlock{vb}, origin, peer, time.Since(start))
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, chain.ErrKnownBlock
	}
	return entries[0], nil
}

// VerifyBlock checks a block's signatures (and its transactions' form)
// without applying it: block sync verifies ahead of ApplyBlocks.
func (n *Node) VerifyBlock(ctx context.Context, b *protocol.Block) (*sigverify.VerifiedBlock, error) {
	return n.verifier.VerifyBlock(ctx, b, n.chain.MaxBlockTransactions())
}

// ApplyBlocks hands verified blocks to the chain loop as one group: applied
// in order, known ones skipped, committed with one sync. It returns the
// entries of the blocks accepted and the error of the block that stopped
// the group (the ones before it are committed).
func (n *Node) ApplyBlocks(ctx context.Context, vbs []*sigverify.VerifiedBlock, origin events.Origin, peer string) ([]*chain.BlockEntry, error) {
	if len(vbs) == 0 {
		return nil, nil
	}
	return n.applyVerified(ctx, vbs, origin, peer, 0)
}

func (n *Node) applyVerified(ctx context.Context, vbs []*sigverify.VerifiedBlock, origin events.Origin, peer string, verify time.Duration) ([]*chain.BlockEntry, error) {
	req := blockRequest{vbs: vbs, origin: origin, peer: peer, verify: verify, reply: make(chan blockResult, 1)}
	select {
	case n.blockIn <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued the request is applied whatever ctx says; waiting for the
	// reply only tells the caller.
	select {
	case res := <-req.reply:
		return res.entries, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
