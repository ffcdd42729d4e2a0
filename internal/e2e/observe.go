package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/mr-tron/base58"

	blockrpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

func (n *network) headInfo(ctx context.Context, i int) (*chainrpc.GetHeadInfoResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, rpcCallTimeout)
	defer cancel()
	var r chainrpc.GetHeadInfoResponse
	if err := n.clients[i].Call(cctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// libs is every node's last irreversible block; ok is false if one did
// not answer.
func (n *network) libs(ctx context.Context) ([]uint64, bool) {
	out := make([]uint64, Nodes)
	for i := range Nodes {
		hi, err := n.headInfo(ctx, i)
		if err != nil {
			return nil, false
		}
		out[i] = hi.LastIrreversibleBlock
	}
	return out, true
}

func minOf(v []uint64) uint64 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}

// observe polls node i twice a block interval until ctx ends: its LIB
// must never go back, and each block at or below it is recorded in the
// ledger, which every node must agree with. Failures while the node is
// down or paused are expected and ignored.
func (n *network) observe(ctx context.Context, i int) {
	t := time.NewTicker(n.sc.BlockInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hi, err := n.headInfo(ctx, i)
		if err != nil {
			continue
		}
		lib := hi.LastIrreversibleBlock
		if err := n.ledger.ReportLIB(i, lib); err != nil {
			n.fail(err)
		}
		for from := n.ledger.RecordedUpTo(i) + 1; from <= lib; {
			ids, err := n.blockIDs(ctx, i, hi.HeadTopology.GetId(), from, min(lib-from+1, 500))
			if err != nil || len(ids) == 0 {
				break
			}
			for k, id := range ids {
				if err := n.ledger.Irreversible(i, from+uint64(k), id); err != nil {
					n.fail(err)
				}
			}
			from += uint64(len(ids))
		}
	}
}

// blocks reads up to count blocks from height from on node i's chain
// ending at head.
func (n *network) blocks(ctx context.Context, i int, head []byte, from, count uint64, bodies bool) ([]Block, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var r blockrpc.GetBlocksByHeightResponse
	if err := n.clients[i].Call(cctx, "block_store.get_blocks_by_height", &blockrpc.GetBlocksByHeightRequest{
		HeadBlockId: head, AncestorStartHeight: from, NumBlocks: uint32(count), ReturnBlock: bodies,
	}, &r); err != nil {
		return nil, err
	}
	out := make([]Block, 0, len(r.BlockItems))
	for k, it := range r.BlockItems {
		if it.BlockHeight != from+uint64(k) {
			return nil, fmt.Errorf("e2e: node%d: get_blocks_by_height from %d returned height %d at position %d", i, from, it.BlockHeight, k)
		}
		b := Block{Height: it.BlockHeight, ID: hexID(it.BlockId)}
		if bodies {
			hdr := it.Block.GetHeader()
			b.TimestampMs = hdr.GetTimestamp()
			b.Signer = base58.Encode(hdr.GetSigner()) // as koinos.Address.String
			for _, tx := range it.Block.GetTransactions() {
				b.Txs = append(b.Txs, hexID(tx.GetId()))
			}
		}
		out = append(out, b)
	}
	return out, nil
}

func (n *network) blockIDs(ctx context.Context, i int, head []byte, from, count uint64) ([]string, error) {
	bs, err := n.blocks(ctx, i, head, from, count, false)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(bs))
	for k, b := range bs {
		ids[k] = b.ID
	}
	return ids, nil
}

// chainUpTo reads node i's chain from height 1 to top.
func (n *network) chainUpTo(ctx context.Context, i int, head []byte, top uint64, bodies bool) ([]Block, error) {
	var out []Block
	for from := uint64(1); from <= top; {
		bs, err := n.blocks(ctx, i, head, from, min(top-from+1, 200), bodies)
		if err != nil {
			return nil, err
		}
		if len(bs) == 0 {
			return nil, fmt.Errorf("e2e: node%d has no block at height %d below %d", i, from, top)
		}
		out = append(out, bs...)
		from += uint64(len(bs))
	}
	return out, nil
}
