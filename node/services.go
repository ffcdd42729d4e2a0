package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	emberrpc "github.com/emberchain/ember/proto/ember/rpc"
	acchistpb "github.com/emberchain/ember/proto/koinos/account_history"
	blockstorepb "github.com/emberchain/ember/proto/koinos/block_store"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	contractmetapb "github.com/emberchain/ember/proto/koinos/contract_meta_store"
	mempoolpb "github.com/emberchain/ember/proto/koinos/mempool"
	"github.com/emberchain/ember/proto/koinos/protocol"
	rpcpb "github.com/emberchain/ember/proto/koinos/rpc"
	acchistrpc "github.com/emberchain/ember/proto/koinos/rpc/account_history"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	contractmetarpc "github.com/emberchain/ember/proto/koinos/rpc/contract_meta_store"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	txstorepb "github.com/emberchain/ember/proto/koinos/transaction_store"
	"github.com/emberchain/ember/rpcgw"
	"github.com/emberchain/ember/store"
)

// Request limits, as Koinos sets them.
const (
	maxBlocksPerRequest  = 1000
	maxPendingPerRequest = 2000
	maxHistoryPerRequest = 500
	maxIDsPerRequest     = 1000
)

// backend serves the Koinos service envelopes from this node: the local
// implementation of rpcgw.Backend (an AMQP one forwards the same
// envelopes to another node).
type backend struct{ n *Node }

var _ rpcgw.Backend = (*backend)(nil)

// sourceOf names the sender of a request for the verifier's per-source
// admission limits: the client's IP for gateway calls.
func sourceOf(ctx context.Context) string {
	if ip := rpcgw.ClientIP(ctx); ip != "" {
		return "rpc:" + ip
	}
	return "local"
}

var _ rpcgw.BatchPreparer = (*backend)(nil)

// batchVerifier is a Verifier that can verify several transactions together
// (the sigverify pool).
type batchVerifier interface {
	VerifyTxs(ctx context.Context, txs []*protocol.Transaction, source string) ([]*sigverify.VerifiedTx, []error)
}

// Prepare implements rpcgw.BatchPreparer: the transactions of a batch's
// submit_transaction calls are verified together, so the verifier works in
// full batches; each call then finds its verdict in the verify-once cache.
func (b *backend) Prepare(ctx context.Context, calls []rpcgw.PreparedCall) {
	bv, ok := b.n.verifier.(batchVerifier)
	if !ok {
		return
	}
	var txs []*protocol.Transaction
	for _, c := range calls {
		if r, ok := c.Request.(*chainrpc.ChainRequest); ok {
			if st := r.GetSubmitTransaction(); st != nil && st.Transaction != nil {
				txs = append(txs, st.Transaction)
			}
		}
	}
	if len(txs) < 2 {
		return
	}
	vs, errs := bv.VerifyTxs(ctx, txs, sourceOf(ctx))
	now := b.n.now().UnixNano()
	for i, v := range vs {
		if errs[i] == nil {
			b.n.prepared.Store(txs[i], preparedTx{v: v, at: now})
		}
	}
}

// preparedTx is a transaction verified by Prepare, waiting for its own
// submit_transaction call in the same batch (keyed by the message pointer,
// which the gateway passes to both).
type preparedTx struct {
	v  *sigverify.VerifiedTx
	at int64 // unix nanos, for sweepPrepared
}

// sweepPrepared drops prepared transactions whose call never came (it
// always does, unless the gateway gave up on the batch): a bound on memory,
// not a correctness matter.
func (n *Node) sweepPrepared(now time.Time) {
	old := now.Add(-time.Minute).UnixNano()
	n.prepared.Range(func(k, v any) bool {
		if v.(preparedTx).at < old {
			n.prepared.Delete(k)
		}
		return true
	})
}

// Serve implements rpcgw.Backend.
func (b *backend) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	switch r := req.(type) {
	case *chainrpc.ChainRequest:
		return b.chain(ctx, r), nil
	case *blockstorerpc.BlockStoreRequest:
		return b.blockStore(r), nil
	case *mempoolrpc.MempoolRequest:
		return b.mempool(r), nil
	case *txstorerpc.TransactionStoreRequest:
		return b.txStore(r), nil
	case *acchistrpc.AccountHistoryRequest:
		return b.accountHistory(r), nil
	case *contractmetarpc.ContractMetaStoreRequest:
		return b.contractMeta(r), nil
	case *p2prpc.P2PRequest:
		return b.p2p(r), nil
	case *emberrpc.EmberRequest:
		return b.ember(r), nil
	}
	return nil, fmt.Errorf("node: no service %q", service)
}

// errorStatus turns an error into koinos.rpc.error_status: the message, and
// data as Koinos's JSON {"code":..., "logs":[...]} so clients (koilib) can
// read the chain error code.
func errorStatus(err error) *rpcpb.ErrorStatus {
	code := koinos.CodeOf(err)
	var logs []string
	var ke *koinos.Error
	if errors.As(err, &ke) {
		logs = ke.Logs
	}
	data, _ := json.Marshal(struct {
		Code int32    `json:"code"`
		Logs []string `json:"logs,omitempty"`
	}{int32(code), logs})
	return &rpcpb.ErrorStatus{Message: err.Error(), Data: string(data)}
}

// indexOff answers a lookup of an index this node does not keep as an
// unsupported operation (code -1), naming the setting.
func indexOff(err error) error {
	if errors.Is(err, store.ErrIndexOff) {
		return koinos.Errorf(chainpb.ErrorCode_failure, "%v", err)
	}
	return err
}

func invalid(format string, args ...any) error {
	return koinos.Errorf(chainpb.ErrorCode_missing_required_arguments, format, args...)
}

func parseAddress(field string, b []byte) (koinos.Address, error) {
	if len(b) == 0 {
		return koinos.Address{}, invalid("%s is required (a base58 address)", field)
	}
	a, err := koinos.ParseAddress(b)
	if err != nil {
		return a, invalid("%s: %v", field, err)
	}
	return a, nil
}

func parseID(field string, b []byte) (koinos.Digest, error) {
	d, err := koinos.ParseMultihash(b)
	if err != nil {
		return d, invalid("%s: %v", field, err)
	}
	return d, nil
}

// --- chain ------------------------------------------------------------------

func (b *backend) chain(ctx context.Context, req *chainrpc.ChainRequest) *chainrpc.ChainResponse {
	resp, err := b.chainInner(ctx, req)
	if err != nil {
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Error{Error: errorStatus(err)}}
	}
	return resp
}

func (b *backend) chainInner(ctx context.Context, req *chainrpc.ChainRequest) (*chainrpc.ChainResponse, error) {
	n := b.n
	v := n.chain.View()
	switch r := req.Request.(type) {
	case *chainrpc.ChainRequest_Reserved:
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}, nil
	case *chainrpc.ChainRequest_GetHeadInfo:
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoResponse{
			HeadTopology:          v.Head.Proto(),
			LastIrreversibleBlock: v.LIB.Height,
			HeadStateMerkleRoot:   v.HeadStateRoot.Multihash(),
			HeadBlockTime:         v.HeadTime,
		}}}, nil
	case *chainrpc.ChainRequest_GetChainId:
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetChainId{GetChainId: &chainrpc.GetChainIdResponse{ChainId: v.ChainID().Multihash()}}}, nil
	case *chainrpc.ChainRequest_GetForkHeads:
		out := &chainrpc.GetForkHeadsResponse{LastIrreversibleBlock: v.LIB.Proto()}
		for _, h := range v.ForkHeads {
			out.ForkHeads = append(out.ForkHeads, h.Proto())
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetForkHeads{GetForkHeads: out}}, nil
	case *chainrpc.ChainRequest_GetAccountNonce:
		a, err := parseAddress("account", r.GetAccountNonce.GetAccount())
		if err != nil {
			return nil, err
		}
		nonce, err := v.Nonce(a)
		if err != nil {
			return nil, err
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetAccountNonce{GetAccountNonce: &chainrpc.GetAccountNonceResponse{Nonce: koinos.EncodeNonce(nonce)}}}, nil
	case *chainrpc.ChainRequest_GetAccountRc:
		a, err := parseAddress("account", r.GetAccountRc.GetAccount())
		if err != nil {
			return nil, err
		}
		rc, err := v.RC(a)
		if err != nil {
			return nil, err
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetAccountRc{GetAccountRc: &chainrpc.GetAccountRcResponse{Rc: rc}}}, nil
	case *chainrpc.ChainRequest_GetResourceLimits:
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_GetResourceLimits{GetResourceLimits: &chainrpc.GetResourceLimitsResponse{ResourceLimitData: v.ResourceLimits()}}}, nil
	case *chainrpc.ChainRequest_ReadContract:
		rc := r.ReadContract
		if len(rc.GetContractId()) == 0 {
			return nil, invalid("contract_id is required")
		}
		res, logs, err := v.ReadContract(rc.ContractId, rc.EntryPoint, rc.Args)
		if err != nil {
			return nil, err
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_ReadContract{ReadContract: &chainrpc.ReadContractResponse{Result: res, Logs: logs}}}, nil
	case *chainrpc.ChainRequest_SubmitTransaction:
		st := r.SubmitTransaction
		receipt, err := n.SubmitTransaction(ctx, st.GetTransaction(), st.GetBroadcast(), sourceOf(ctx))
		if err != nil {
			return nil, err
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_SubmitTransaction{SubmitTransaction: &chainrpc.SubmitTransactionResponse{Receipt: receipt}}}, nil
	case *chainrpc.ChainRequest_SubmitBlock:
		if r.SubmitBlock.GetBlock() == nil {
			return nil, invalid("block is required")
		}
		e, err := n.SubmitBlock(ctx, r.SubmitBlock.Block)
		if err != nil {
			return nil, err
		}
		return &chainrpc.ChainResponse{Response: &chainrpc.ChainResponse_SubmitBlock{SubmitBlock: &chainrpc.SubmitBlockResponse{Receipt: e.Receipt}}}, nil
	case *chainrpc.ChainRequest_InvokeSystemCall, *chainrpc.ChainRequest_ProposeBlock:
		return nil, koinos.Errorf(chainpb.ErrorCode_unknown_system_call, "this method is not supported by Ember: it runs native contracts, not Koinos system calls")
	}
	return nil, invalid("no chain method in the request")
}

// --- block_store -------------------------------------------------------------

func blockItem(e *chain.BlockEntry, withBlock, withReceipt bool) *blockstorepb.BlockItem {
	it := &blockstorepb.BlockItem{BlockId: e.ID.Multihash(), BlockHeight: e.Height}
	if withBlock {
		it.Block = e.Block
	}
	if withReceipt {
		it.Receipt = e.Receipt
	}
	return it
}

func (b *backend) blockStore(req *blockstorerpc.BlockStoreRequest) *blockstorerpc.BlockStoreResponse {
	resp, err := b.blockStoreInner(req)
	if err != nil {
		return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_Error{Error: errorStatus(err)}}
	}
	return resp
}

func (b *backend) blockStoreInner(req *blockstorerpc.BlockStoreRequest) (*blockstorerpc.BlockStoreResponse, error) {
	st := b.n.store
	switch r := req.Request.(type) {
	case *blockstorerpc.BlockStoreRequest_Reserved:
		return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}, nil
	case *blockstorerpc.BlockStoreRequest_GetBlocksById:
		q := r.GetBlocksById
		if len(q.BlockIds) > maxBlocksPerRequest {
			return nil, invalid("at most %d block_ids per request", maxBlocksPerRequest)
		}
		ids := make([]koinos.Digest, len(q.BlockIds))
		for i, raw := range q.BlockIds {
			id, err := parseID(fmt.Sprintf("block_ids[%d]", i), raw)
			if err != nil {
				return nil, err
			}
			ids[i] = id
		}
		es, err := st.BlocksByID(ids)
		if errors.Is(err, store.ErrReadTooLarge) {
			return nil, invalid("%v", err)
		}
		if err != nil {
			return nil, err
		}
		out := &blockstorerpc.GetBlocksByIdResponse{BlockItems: make([]*blockstorepb.BlockItem, len(es))}
		for i, e := range es {
			if e == nil {
				out.BlockItems[i] = &blockstorepb.BlockItem{}
				continue
			}
			out.BlockItems[i] = blockItem(e, q.ReturnBlock, q.ReturnReceipt)
		}
		return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_GetBlocksById{GetBlocksById: out}}, nil
	case *blockstorerpc.BlockStoreRequest_GetBlocksByHeight:
		q := r.GetBlocksByHeight
		head, err := parseID("head_block_id", q.HeadBlockId)
		if err != nil {
			return nil, err
		}
		if q.AncestorStartHeight == 0 {
			return nil, invalid("ancestor_start_height must be at least 1")
		}
		if q.NumBlocks == 0 || q.NumBlocks > maxBlocksPerRequest {
			return nil, invalid("num_blocks must be between 1 and %d", maxBlocksPerRequest)
		}
		es, err := st.BlocksByHeight(head, q.AncestorStartHeight, int(q.NumBlocks))
		if errors.Is(err, store.ErrNotFound) {
			return nil, koinos.Errorf(chainpb.ErrorCode_unknown_previous_block, "head_block_id 0x%x is not a known block", q.HeadBlockId)
		}
		if err != nil {
			return nil, err
		}
		out := &blockstorerpc.GetBlocksByHeightResponse{}
		for _, e := range es {
			out.BlockItems = append(out.BlockItems, blockItem(e, q.ReturnBlock, q.ReturnReceipt))
		}
		return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_GetBlocksByHeight{GetBlocksByHeight: out}}, nil
	case *blockstorerpc.BlockStoreRequest_GetHighestBlock:
		t, err := st.Highest()
		if err != nil {
			return nil, err
		}
		return &blockstorerpc.BlockStoreResponse{Response: &blockstorerpc.BlockStoreResponse_GetHighestBlock{GetHighestBlock: &blockstorerpc.GetHighestBlockResponse{Topology: t.Proto()}}}, nil
	case *blockstorerpc.BlockStoreRequest_AddBlock:
		return nil, koinos.Errorf(chainpb.ErrorCode_unknown_system_call, "block_store.add_block is internal: submit blocks with chain.submit_block")
	}
	return nil, invalid("no block_store method in the request")
}

// --- mempool -------------------------------------------------------------------

func pendingProto(e *mempool.Entry) *mempoolpb.PendingTransaction {
	return &mempoolpb.PendingTransaction{
		Transaction:          e.Tx.Tx(),
		DiskStorageUsed:      e.Usage.Disk,
		NetworkBandwidthUsed: e.Usage.Network,
		ComputeBandwidthUsed: e.Usage.Compute,
	}
}

func (b *backend) mempool(req *mempoolrpc.MempoolRequest) *mempoolrpc.MempoolResponse {
	resp, err := b.mempoolInner(req)
	if err != nil {
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_Error{Error: errorStatus(err)}}
	}
	return resp
}

func (b *backend) mempoolInner(req *mempoolrpc.MempoolRequest) (*mempoolrpc.MempoolResponse, error) {
	pool := b.n.pool
	view := b.n.chain.View()
	switch r := req.Request.(type) {
	case *mempoolrpc.MempoolRequest_Reserved:
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}, nil
	case *mempoolrpc.MempoolRequest_GetPendingTransactions:
		limit := r.GetPendingTransactions.Limit
		if limit == 0 || limit > maxPendingPerRequest {
			return nil, invalid("limit must be between 1 and %d", maxPendingPerRequest)
		}
		out := &mempoolrpc.GetPendingTransactionsResponse{}
		for _, e := range pool.Best(int(limit)) {
			out.PendingTransactions = append(out.PendingTransactions, pendingProto(e))
		}
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_GetPendingTransactions{GetPendingTransactions: out}}, nil
	case *mempoolrpc.MempoolRequest_GetPendingTransactionsById:
		q := r.GetPendingTransactionsById
		if len(q.TransactionIds) > maxPendingPerRequest {
			return nil, invalid("at most %d transaction_ids per request", maxPendingPerRequest)
		}
		ids := make([]koinos.Digest, len(q.TransactionIds))
		for i, raw := range q.TransactionIds {
			var err error
			if ids[i], err = parseID(fmt.Sprintf("transaction_ids[%d]", i), raw); err != nil {
				return nil, err
			}
		}
		out := &mempoolrpc.GetPendingTransactionsByIdResponse{}
		for _, e := range pool.Get(ids) {
			if e != nil {
				out.PendingTransactions = append(out.PendingTransactions, pendingProto(e))
			}
		}
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_GetPendingTransactionsById{GetPendingTransactionsById: out}}, nil
	case *mempoolrpc.MempoolRequest_CheckPendingAccountResources:
		q := r.CheckPendingAccountResources
		payer, err := parseAddress("payer", q.Payer)
		if err != nil {
			return nil, err
		}
		reserved := pool.Reserved(payer)
		ok := reserved+q.RcLimit >= reserved && reserved+q.RcLimit <= q.MaxPayerRc
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_CheckPendingAccountResources{CheckPendingAccountResources: &mempoolrpc.CheckPendingAccountResourcesResponse{Success: ok}}}, nil
	case *mempoolrpc.MempoolRequest_CheckAccountNonce:
		q := r.CheckAccountNonce
		a, err := parseAddress("payee", q.Payee)
		if err != nil {
			return nil, err
		}
		nonce, err := koinos.DecodeNonce(q.Nonce)
		if err != nil {
			return nil, invalid("nonce: %v", err)
		}
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_CheckAccountNonce{CheckAccountNonce: &mempoolrpc.CheckAccountNonceResponse{Success: !pool.HasNonce(a, nonce)}}}, nil
	case *mempoolrpc.MempoolRequest_GetReservedAccountRc:
		a, err := parseAddress("account", r.GetReservedAccountRc.Account)
		if err != nil {
			return nil, err
		}
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_GetReservedAccountRc{GetReservedAccountRc: &mempoolrpc.GetReservedAccountRcResponse{Rc: pool.Reserved(a)}}}, nil
	case *mempoolrpc.MempoolRequest_GetPendingNonce:
		a, err := parseAddress("payee", r.GetPendingNonce.Payee)
		if err != nil {
			return nil, err
		}
		out := &mempoolrpc.GetPendingNonceResponse{}
		if pool.Count(a) > 0 {
			next, err := pool.PendingNonce(a, view)
			if err != nil {
				return nil, err
			}
			out.Nonce = koinos.EncodeNonce(next - 1)
		}
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_GetPendingNonce{GetPendingNonce: out}}, nil
	case *mempoolrpc.MempoolRequest_GetPendingTransactionCount:
		a, err := parseAddress("payee", r.GetPendingTransactionCount.Payee)
		if err != nil {
			return nil, err
		}
		return &mempoolrpc.MempoolResponse{Response: &mempoolrpc.MempoolResponse_GetPendingTransactionCount{GetPendingTransactionCount: &mempoolrpc.GetPendingTransactionCountResponse{Count: uint64(pool.Count(a))}}}, nil
	}
	return nil, invalid("no mempool method in the request")
}

// --- transaction_store, account_history, contract_meta_store, p2p ------------

func (b *backend) txStore(req *txstorerpc.TransactionStoreRequest) *txstorerpc.TransactionStoreResponse {
	fail := func(err error) *txstorerpc.TransactionStoreResponse {
		return &txstorerpc.TransactionStoreResponse{Response: &txstorerpc.TransactionStoreResponse_Error{Error: errorStatus(err)}}
	}
	switch r := req.Request.(type) {
	case *txstorerpc.TransactionStoreRequest_Reserved:
		return &txstorerpc.TransactionStoreResponse{Response: &txstorerpc.TransactionStoreResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}
	case *txstorerpc.TransactionStoreRequest_GetTransactionsById:
		raw := r.GetTransactionsById.TransactionIds
		if len(raw) > maxIDsPerRequest {
			return fail(invalid("at most %d transaction_ids per request", maxIDsPerRequest))
		}
		ids := make([]koinos.Digest, len(raw))
		for i, b := range raw {
			var err error
			if ids[i], err = parseID(fmt.Sprintf("transaction_ids[%d]", i), b); err != nil {
				return fail(err)
			}
		}
		items, err := b.n.store.TransactionsByID(ids)
		if err != nil {
			return fail(indexOff(err))
		}
		out := &txstorerpc.GetTransactionsByIdResponse{}
		for _, it := range items {
			ti := &txstorepb.TransactionItem{Transaction: it.Tx}
			for _, c := range it.ContainingBlocks {
				ti.ContainingBlocks = append(ti.ContainingBlocks, c.Multihash())
			}
			out.Transactions = append(out.Transactions, ti)
		}
		return &txstorerpc.TransactionStoreResponse{Response: &txstorerpc.TransactionStoreResponse_GetTransactionsById{GetTransactionsById: out}}
	}
	return fail(invalid("no transaction_store method in the request"))
}

func (b *backend) accountHistory(req *acchistrpc.AccountHistoryRequest) *acchistrpc.AccountHistoryResponse {
	fail := func(err error) *acchistrpc.AccountHistoryResponse {
		return &acchistrpc.AccountHistoryResponse{Response: &acchistrpc.AccountHistoryResponse_Error{Error: errorStatus(err)}}
	}
	switch r := req.Request.(type) {
	case *acchistrpc.AccountHistoryRequest_Reserved:
		return &acchistrpc.AccountHistoryResponse{Response: &acchistrpc.AccountHistoryResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}
	case *acchistrpc.AccountHistoryRequest_GetAccountHistory:
		q := r.GetAccountHistory
		a, err := parseAddress("address", q.Address)
		if err != nil {
			return fail(err)
		}
		if q.Limit == 0 || q.Limit > maxHistoryPerRequest {
			return fail(invalid("limit must be between 1 and %d", maxHistoryPerRequest))
		}
		es, err := b.n.store.AccountHistory(a, store.HistoryQuery{Seq: q.SeqNum, Limit: int(q.Limit), Ascending: q.Ascending, Irreversible: q.Irreversible})
		if err != nil {
			return fail(indexOff(err))
		}
		out := &acchistrpc.GetAccountHistoryResponse{}
		for _, e := range es {
			v := &acchistrpc.AccountHistoryEntry{SeqNum: e.Seq}
			if e.Tx != nil {
				v.Record = &acchistrpc.AccountHistoryEntry_Trx{Trx: &acchistpb.TransactionRecord{Transaction: e.Tx, Receipt: e.TxReceipt}}
			} else {
				v.Record = &acchistrpc.AccountHistoryEntry_Block{Block: &acchistpb.BlockRecord{Header: e.BlockHeader, Receipt: e.BlockReceipt}}
			}
			out.Values = append(out.Values, v)
		}
		return &acchistrpc.AccountHistoryResponse{Response: &acchistrpc.AccountHistoryResponse_GetAccountHistory{GetAccountHistory: out}}
	}
	return fail(invalid("no account_history method in the request"))
}

func (b *backend) contractMeta(req *contractmetarpc.ContractMetaStoreRequest) *contractmetarpc.ContractMetaStoreResponse {
	fail := func(err error) *contractmetarpc.ContractMetaStoreResponse {
		return &contractmetarpc.ContractMetaStoreResponse{Response: &contractmetarpc.ContractMetaStoreResponse_Error{Error: errorStatus(err)}}
	}
	switch r := req.Request.(type) {
	case *contractmetarpc.ContractMetaStoreRequest_Reserved:
		return &contractmetarpc.ContractMetaStoreResponse{Response: &contractmetarpc.ContractMetaStoreResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}
	case *contractmetarpc.ContractMetaStoreRequest_GetContractMeta:
		id, err := parseAddress("contract_id", r.GetContractMeta.ContractId)
		if err != nil {
			return fail(err)
		}
		abi := b.n.chain.Token().ABI()
		if id != b.n.chain.Token().ID() {
			_, _, uploaded, found, err := b.n.chain.View().Contract(id.Bytes())
			if err != nil {
				return fail(err)
			}
			if !found {
				return fail(koinos.Errorf(chainpb.ErrorCode_invalid_contract, "contract %s does not exist at the head", id))
			}
			abi = uploaded
		}
		return &contractmetarpc.ContractMetaStoreResponse{Response: &contractmetarpc.ContractMetaStoreResponse_GetContractMeta{GetContractMeta: &contractmetarpc.GetContractMetaResponse{
			Meta: &contractmetapb.ContractMetaItem{Abi: abi},
		}}}
	}
	return fail(invalid("no contract_meta_store method in the request"))
}

func (b *backend) p2p(req *p2prpc.P2PRequest) *p2prpc.P2PResponse {
	switch req.Request.(type) {
	case *p2prpc.P2PRequest_Reserved:
		return &p2prpc.P2PResponse{Response: &p2prpc.P2PResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}
	case *p2prpc.P2PRequest_GetGossipStatus:
		// As Koinos: on with at least one peer, off while catching up (and
		// always off for a node without a network).
		enabled := b.n.net != nil && b.n.net.GossipEnabled()
		return &p2prpc.P2PResponse{Response: &p2prpc.P2PResponse_GetGossipStatus{GetGossipStatus: &p2prpc.GetGossipStatusResponse{Enabled: enabled}}}
	}
	return &p2prpc.P2PResponse{Response: &p2prpc.P2PResponse_Error{Error: errorStatus(invalid("no p2p method in the request"))}}
}

// Services are the services the node's gateway serves: Koinos's seven and
// Ember's own.
func Services() []rpcgw.Service {
	return append(rpcgw.KoinosServices(), rpcgw.Service{Name: "ember", Request: (*emberrpc.EmberRequest)(nil), Response: (*emberrpc.EmberResponse)(nil)})
}

func (b *backend) ember(req *emberrpc.EmberRequest) *emberrpc.EmberResponse {
	switch req.Request.(type) {
	case *emberrpc.EmberRequest_Reserved:
		return &emberrpc.EmberResponse{Response: &emberrpc.EmberResponse_Reserved{Reserved: &rpcpb.ReservedRpc{}}}
	case *emberrpc.EmberRequest_GetChainInfo:
		g := b.n.chain.Genesis()
		return &emberrpc.EmberResponse{Response: &emberrpc.EmberResponse_GetChainInfo{GetChainInfo: &emberrpc.GetChainInfoResponse{
			ChainId: g.ChainID().Multihash(), Parameters: g.Params(),
		}}}
	}
	return &emberrpc.EmberResponse{Response: &emberrpc.EmberResponse_Error{Error: errorStatus(invalid("no ember method in the request"))}}
}
