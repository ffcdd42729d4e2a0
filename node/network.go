package node

import (
	"context"
	"errors"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/store"
)

// netNode is the node as the p2p service sees it (p2p.Node): the chain's
// view and events, the ways in, and the store's block reads.
type netNode struct{ n *Node }

var _ p2p.Node = netNode{}

func (w netNode) View() *chain.View         { return w.n.chain.View() }
func (w netNode) Events() *events.Stream    { return w.n.events }
func (w netNode) MaxBlockTransactions() int { return w.n.chain.MaxBlockTransactions() }
func (w netNode) HasBlock(id koinos.Digest) bool {
	ok, err := w.n.store.HasBlock(id)
	if err != nil {
		w.n.log.Warn("block store lookup", "err", err)
	}
	return ok
}

func (w netNode) AdmitTransactions(ctx context.Context, txs []*protocol.Transaction, origin events.Origin, peer string) ([]error, int) {
	return w.n.AdmitTransactions(ctx, txs, origin, peer)
}

func (w netNode) SubmitBlockFrom(ctx context.Context, b *protocol.Block, origin events.Origin, peer string) (*chain.BlockEntry, error) {
	return w.n.SubmitBlockFrom(ctx, b, origin, peer)
}

func (w netNode) VerifyBlock(ctx context.Context, b *protocol.Block) (*sigverify.VerifiedBlock, error) {
	return w.n.VerifyBlock(ctx, b)
}

func (w netNode) ApplyBlocks(ctx context.Context, vbs []*sigverify.VerifiedBlock, origin events.Origin, peer string) ([]*chain.BlockEntry, error) {
	return w.n.ApplyBlocks(ctx, vbs, origin, peer)
}

func (w netNode) BlockIDAt(head koinos.Digest, height uint64) (koinos.Digest, bool, error) {
	id, err := w.n.store.BlockIDAt(head, height)
	if errors.Is(err, store.ErrNotFound) {
		return koinos.Digest{}, false, nil
	}
	return id, err == nil, err
}

func (w netNode) BlocksByHeight(head koinos.Digest, start uint64, n int) ([]*protocol.Block, bool, error) {
	es, err := w.n.store.BlocksByHeight(head, start, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]*protocol.Block, len(es))
	for i, e := range es {
		out[i] = e.Block
	}
	return out, true, nil
}

func (w netNode) BlockByID(id koinos.Digest) (*protocol.Block, error) {
	e, err := w.n.store.BlockByID(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.Block, nil
}

// Network returns the p2p service, or nil when the node runs alone.
func (n *Node) Network() *p2p.Service { return n.net }

// mayProduce reports whether the network lets this node produce now: it
// has heard its peers' heads and is not catching up with one of them.
func (n *Node) mayProduce() bool { return n.net == nil || n.net.Synced() }
