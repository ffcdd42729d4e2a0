package p2p

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/koinos"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// maxFetchRequestBase is a fetch request's bound apart from its indexes
// (maxFetchRequest: a block id and up to MaxBlockTransactions indexes of
// at most 5 bytes each).
const maxFetchRequestBase = 64

var errBadResponse = errors.New("p2p: response is not what was asked for")

func (s *Service) maxFetchRequest() int { return maxFetchRequestBase + 5*s.node.MaxBlockTransactions() }

// handleFetch serves the transactions of a block this node holds (by
// index), or the whole block, to a peer completing a compact block.
func (s *Service) handleFetch(st network.Stream) {
	var req p2ppb.FetchRequest
	if !s.readInbound(st, s.maxFetchRequest(), &req, "fetch request") {
		return
	}
	if !s.acquireServe(s.life) {
		respond(st, fetchError(errNotServed.Error()))
		return
	}
	defer s.releaseServe()
	resp := s.serveFetch(&req)
	out, _ := resp.MarshalVT()
	_ = st.SetWriteDeadline(time.Now().Add(reqDeadline(len(out))))
	respond(st, packBody(out))
}

func fetchError(msg string) []byte {
	b, _ := (&p2ppb.FetchResponse{Error: msg}).MarshalVT()
	return packBody(b)
}

func (s *Service) serveFetch(req *p2ppb.FetchRequest) *p2ppb.FetchResponse {
	id, ok := digestOf(req.BlockId)
	if !ok {
		return &p2ppb.FetchResponse{Error: "malformed block id"}
	}
	b, err := s.node.BlockByID(id)
	if err != nil {
		s.log.Warn("read block for a peer", "err", err)
		return &p2ppb.FetchResponse{Error: "block unavailable"}
	}
	if b == nil {
		return &p2ppb.FetchResponse{Error: "unknown block"}
	}
	if req.WholeBlock {
		return &p2ppb.FetchResponse{Block: b}
	}
	txs := make([]*protocol.Transaction, len(req.Indexes))
	for i, x := range req.Indexes {
		if int(x) >= len(b.Transactions) {
			return &p2ppb.FetchResponse{Error: fmt.Sprintf("index %d out of range: the block has %d transactions", x, len(b.Transactions))}
		}
		txs[i] = b.Transactions[x]
	}
	return &p2ppb.FetchResponse{Transactions: txs}
}

// fetch sends a fetch request and decodes the response.
func (s *Service) fetch(ctx context.Context, p peer.ID, req *p2ppb.FetchRequest) (*p2ppb.FetchResponse, error) {
	rb, _ := req.MarshalVT()
	// Sized for the largest block the chain allows, compressed or not, and
	// so is the deadline.
	limit := s.maxBlockResponse()
	raw, err := s.request(ctx, p, protoFetch, rb, limit, reqDeadline(limit))
	if err != nil {
		return nil, err
	}
	body, err := unpackBody(raw, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadResponse, err)
	}
	var resp p2ppb.FetchResponse
	if err := resp.UnmarshalVT(body); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadResponse, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("p2p: peer %s did not serve block 0x%x: %s", p, req.BlockId, resp.Error)
	}
	return &resp, nil
}

// fetchTxs fetches the transactions at indexes of block id from p.
func (s *Service) fetchTxs(ctx context.Context, p peer.ID, id koinos.Digest, indexes []uint32) ([]*protocol.Transaction, error) {
	resp, err := s.fetch(ctx, p, &p2ppb.FetchRequest{BlockId: id.Multihash(), Indexes: indexes})
	if err != nil {
		return nil, err
	}
	if len(resp.Transactions) != len(indexes) {
		return nil, fmt.Errorf("%w: %d transactions for %d indexes", errBadResponse, len(resp.Transactions), len(indexes))
	}
	for _, tx := range resp.Transactions {
		if tx == nil {
			return nil, fmt.Errorf("%w: an empty transaction", errBadResponse)
		}
	}
	return resp.Transactions, nil
}

// fetchBlock fetches block id whole from p.
func (s *Service) fetchBlock(ctx context.Context, p peer.ID, id koinos.Digest) (*protocol.Block, error) {
	resp, err := s.fetch(ctx, p, &p2ppb.FetchRequest{BlockId: id.Multihash(), WholeBlock: true})
	if err != nil {
		return nil, err
	}
	if resp.Block == nil || resp.Block.Header == nil || koinos.BlockID(resp.Block.Header) != id {
		return nil, fmt.Errorf("%w: not block 0x%x", errBadResponse, id.Multihash())
	}
	resp.Block.Id = id.Multihash()
	return resp.Block, nil
}
