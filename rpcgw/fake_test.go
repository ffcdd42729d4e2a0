package rpcgw

import (
	"context"
	"errors"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	koinospb "github.com/emberchain/ember/proto/koinos"
	blockstorepb "github.com/emberchain/ember/proto/koinos/block_store"
	"github.com/emberchain/ember/proto/koinos/protocol"
	rpcpb "github.com/emberchain/ember/proto/koinos/rpc"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
)

// Values above 2^53, so that a JSON number would lose them: they must travel
// as strings.
const (
	bigHeight = uint64(1)<<63 + 5
	bigRC     = uint64(1)<<60 + 7
)

var (
	headID   = []byte{0x12, 0x20, 0xaa, 0xbb}
	prevID   = []byte{0x12, 0x20, 0x01, 0x02}
	chainID  = []byte{0x12, 0x20, 0xfe, 0xff}
	nonceErr = `{"code":-201,"logs":["nonce 7 is not the next nonce (expected 3)"]}`
)

// fakeBackend answers a few methods of each service from fixed data. A call
// blocks while gate is set and open, until it is closed or ctx ends; hook,
// if set, replaces the fixed answers.
type fakeBackend struct {
	hook    func(ctx context.Context, service string, req proto.Message) (proto.Message, error)
	gate    chan struct{}
	entered chan struct{} // receives one value per call entering Serve, if set
	calls   atomic.Int64
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.hook != nil {
		return f.hook(ctx, service, req)
	}
	return serveFixed(service, req)
}

func chainErr(message, data string) *chainrpc.ChainResponse {
	return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Error{Error: &rpcpb.ErrorStatus{Message: message, Data: data}}}
}

func serveFixed(service string, req proto.Message) (proto.Message, error) {
	switch r := req.(type) {
	case *chainrpc.ChainRequest:
		if service != "chain" {
			return nil, errors.New("fake: chain request for service " + service)
		}
		switch x := r.Request.(type) {
		case *chainrpc.ChainRequest_GetHeadInfo:
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoResponse{
				HeadTopology:          &koinospb.BlockTopology{Id: headID, Height: bigHeight, Previous: prevID},
				LastIrreversibleBlock: bigHeight - 60,
				HeadStateMerkleRoot:   []byte{0x12, 0x20, 0x00},
				HeadBlockTime:         1713874497290,
			}}}, nil
		case *chainrpc.ChainRequest_GetChainId:
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetChainId{GetChainId: &chainrpc.GetChainIdResponse{ChainId: chainID}}}, nil
		case *chainrpc.ChainRequest_GetAccountRc:
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetAccountRc{GetAccountRc: &chainrpc.GetAccountRcResponse{Rc: bigRC}}}, nil
		case *chainrpc.ChainRequest_GetAccountNonce:
			// Echo the account bytes as the nonce, so tests can see the
			// params arrived decoded.
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetAccountNonce{GetAccountNonce: &chainrpc.GetAccountNonceResponse{Nonce: x.GetAccountNonce.Account}}}, nil
		case *chainrpc.ChainRequest_ReadContract:
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_ReadContract{ReadContract: &chainrpc.ReadContractResponse{
				Result: x.ReadContract.Args, Logs: []string{"entry point", string(rune('0' + x.ReadContract.EntryPoint%10))},
			}}}, nil
		case *chainrpc.ChainRequest_SubmitTransaction:
			tx := x.SubmitTransaction.Transaction
			if tx.GetHeader().GetRcLimit() == 0 {
				return chainErr("invalid nonce", nonceErr), nil
			}
			return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_SubmitTransaction{SubmitTransaction: &chainrpc.SubmitTransactionResponse{
				Receipt: &protocol.TransactionReceipt{Id: tx.Id, Payer: tx.Header.Payer, RcLimit: tx.Header.RcLimit, MaxPayerRc: bigRC, RcUsed: 1000},
			}}}, nil
		}
		return chainErr("not implemented by the fake", ""), nil
	case *blockstorerpc.BlockStoreRequest:
		if x, ok := r.Request.(*blockstorerpc.BlockStoreRequest_GetBlocksByHeight); ok {
			p := x.GetBlocksByHeight
			if p.NumBlocks > 1000 {
				// Like a real store, bound the work; the fuzzer asks for 2^32.
				return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_Error{Error: &rpcpb.ErrorStatus{Message: "too many blocks"}}}, nil
			}
			items := make([]*blockstorepb.BlockItem, p.NumBlocks)
			for i := range items {
				items[i] = &blockstorepb.BlockItem{BlockId: p.HeadBlockId, BlockHeight: p.AncestorStartHeight + uint64(i)}
			}
			return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_GetBlocksByHeight{
				GetBlocksByHeight: &blockstorerpc.GetBlocksByHeightResponse{BlockItems: items},
			}}, nil
		}
		return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_Error{Error: &rpcpb.ErrorStatus{Message: "not implemented by the fake"}}}, nil
	case *p2prpc.P2PRequest:
		return &p2prpc.P2PResponse{Response: &p2prpc.P2PResponse_GetGossipStatus{GetGossipStatus: &p2prpc.GetGossipStatusResponse{Enabled: true}}}, nil
	}
	return nil, errors.New("fake: service not implemented")
}
