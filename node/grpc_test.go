package node

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/koinos"
	emberservices "github.com/emberchain/ember/proto/ember/services"
	"github.com/emberchain/ember/proto/kjson"
	acchistrpc "github.com/emberchain/ember/proto/koinos/rpc/account_history"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	contractmetarpc "github.com/emberchain/ember/proto/koinos/rpc/contract_meta_store"
	mempoolrpc "github.com/emberchain/ember/proto/koinos/rpc/mempool"
	p2prpc "github.com/emberchain/ember/proto/koinos/rpc/p2p"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	koinosservices "github.com/emberchain/ember/proto/koinos/services"
	"github.com/emberchain/ember/proto/tokenabi"
	"github.com/emberchain/ember/rpcgw/client"
)

// grpcConn dials the node's gRPC listener.
func grpcConn(t testing.TB, n *Node) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// grpcCall is one method called over both gateways with the same request.
type grpcCall struct {
	jsonMethod string // "chain.get_head_info"
	grpcMethod string // "/koinos.services.koinos/get_head_info"
	req        proto.Message
	resp       proto.Message // a new response message, for gRPC's answer
}

// TestGRPCMatchesJSONRPC calls every method of koinos.services.koinos and
// of the mempool extension through a gRPC client over loopback, and the
// same method with the same request through JSON-RPC: the answers must be
// the same (compared as the gateway's JSON), and so must the errors
// (message and data) and refusals. The node is restarted without its
// producer first, so that the chain stands still between the two calls,
// with one transfer in a block and one pending.
func TestGRPCMatchesJSONRPC(t *testing.T) {
	tn := newTestNetConfigured(t, 2, 200*time.Millisecond, func(c *Config) { c.GRPCListen = "127.0.0.1:0" })
	to := tn.users[1].Address()
	included := tn.transfer(0, to, 1000, 1)
	if _, err := tn.submit(included); err != nil {
		t.Fatal(err)
	}
	tn.waitTx(included.Id)
	tn.stop()
	tn.configure = func(c *Config) { c.GRPCListen = "127.0.0.1:0"; c.ProducerKey = nil }
	tn.start()
	pending := tn.transfer(0, to, 2000, 2)
	if _, err := tn.submit(pending); err != nil {
		t.Fatal(err)
	}
	head := tn.head()
	from, tokenID := tn.users[0].Address().Bytes(), tn.g.TokenID().Bytes()
	balanceArgs, _ := (&tokenabi.BalanceOfArgs{Owner: from}).MarshalVT()
	nonce3 := koinos.EncodeNonce(3)
	k, m := "/koinos.services.koinos/", "/ember.services.mempool/"
	calls := []grpcCall{
		{"account_history.get_account_history", k + "get_account_history", &acchistrpc.GetAccountHistoryRequest{Address: from, Limit: 10, Ascending: true}, &acchistrpc.GetAccountHistoryResponse{}},
		{"block_store.get_blocks_by_id", k + "get_blocks_by_id", &blockstorerpc.GetBlocksByIdRequest{BlockIds: [][]byte{head.HeadTopology.Id}, ReturnBlock: true, ReturnReceipt: true}, &blockstorerpc.GetBlocksByIdResponse{}},
		{"block_store.get_blocks_by_height", k + "get_blocks_by_height", &blockstorerpc.GetBlocksByHeightRequest{HeadBlockId: head.HeadTopology.Id, AncestorStartHeight: 1, NumBlocks: 3, ReturnBlock: true}, &blockstorerpc.GetBlocksByHeightResponse{}},
		{"block_store.get_highest_block", k + "get_highest_block", &blockstorerpc.GetHighestBlockRequest{}, &blockstorerpc.GetHighestBlockResponse{}},
		{"chain.submit_block", k + "submit_block", &chainrpc.SubmitBlockRequest{}, &chainrpc.SubmitBlockResponse{}},
		{"chain.submit_transaction", k + "submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: pending, Broadcast: true}, &chainrpc.SubmitTransactionResponse{}},
		{"chain.get_head_info", k + "get_head_info", &chainrpc.GetHeadInfoRequest{}, &chainrpc.GetHeadInfoResponse{}},
		{"chain.get_chain_id", k + "get_chain_id", &chainrpc.GetChainIdRequest{}, &chainrpc.GetChainIdResponse{}},
		{"chain.get_fork_heads", k + "get_fork_heads", &chainrpc.GetForkHeadsRequest{}, &chainrpc.GetForkHeadsResponse{}},
		{"chain.read_contract", k + "read_contract", &chainrpc.ReadContractRequest{ContractId: tokenID, EntryPoint: contracts.EntryBalanceOf, Args: balanceArgs}, &chainrpc.ReadContractResponse{}},
		{"chain.get_account_nonce", k + "get_account_nonce", &chainrpc.GetAccountNonceRequest{Account: from}, &chainrpc.GetAccountNonceResponse{}},
		{"chain.get_account_rc", k + "get_account_rc", &chainrpc.GetAccountRcRequest{Account: from}, &chainrpc.GetAccountRcResponse{}},
		{"chain.get_resource_limits", k + "get_resource_limits", &chainrpc.GetResourceLimitsRequest{}, &chainrpc.GetResourceLimitsResponse{}},
		{"chain.invoke_system_call", k + "invoke_system_call", &chainrpc.InvokeSystemCallRequest{}, &chainrpc.InvokeSystemCallResponse{}},
		{"contract_meta_store.get_contract_meta", k + "get_contract_meta", &contractmetarpc.GetContractMetaRequest{ContractId: tokenID}, &contractmetarpc.GetContractMetaResponse{}},
		{"mempool.get_pending_transactions", k + "get_pending_transactions", &mempoolrpc.GetPendingTransactionsRequest{Limit: 10}, &mempoolrpc.GetPendingTransactionsResponse{}},
		{"mempool.check_pending_account_resources", k + "check_pending_account_resources", &mempoolrpc.CheckPendingAccountResourcesRequest{Payer: from, MaxPayerRc: 1 << 40, RcLimit: 1000}, &mempoolrpc.CheckPendingAccountResourcesResponse{}},
		{"p2p.get_gossip_status", k + "get_gossip_status", &p2prpc.GetGossipStatusRequest{}, &p2prpc.GetGossipStatusResponse{}},
		{"transaction_store.get_transactions_by_id", k + "get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: [][]byte{included.Id}}, &txstorerpc.GetTransactionsByIdResponse{}},
		{"mempool.check_account_nonce", m + "check_account_nonce", &mempoolrpc.CheckAccountNonceRequest{Payee: from, Nonce: nonce3}, &mempoolrpc.CheckAccountNonceResponse{}},
		{"mempool.get_reserved_account_rc", m + "get_reserved_account_rc", &mempoolrpc.GetReservedAccountRcRequest{Account: from}, &mempoolrpc.GetReservedAccountRcResponse{}},
		{"mempool.get_pending_nonce", m + "get_pending_nonce", &mempoolrpc.GetPendingNonceRequest{Payee: from}, &mempoolrpc.GetPendingNonceResponse{}},
		{"mempool.get_pending_transaction_count", m + "get_pending_transaction_count", &mempoolrpc.GetPendingTransactionCountRequest{Payee: from}, &mempoolrpc.GetPendingTransactionCountResponse{}},
		{"mempool.get_pending_transactions_by_id", m + "get_pending_transactions_by_id", &mempoolrpc.GetPendingTransactionsByIdRequest{TransactionIds: [][]byte{pending.Id}}, &mempoolrpc.GetPendingTransactionsByIdResponse{}},
	}
	served := map[string]bool{}
	for _, sd := range []grpc.ServiceDesc{koinosservices.Koinos_ServiceDesc, emberservices.Mempool_ServiceDesc} {
		for _, md := range sd.Methods {
			served["/"+sd.ServiceName+"/"+md.MethodName] = true
		}
	}
	for _, c := range calls {
		delete(served, c.grpcMethod)
	}
	if len(served) != 0 {
		t.Fatalf("methods not covered: %v", served)
	}

	conn := grpcConn(t, tn.n)
	var errs int
	for _, c := range calls {
		t.Run(c.jsonMethod, func(t *testing.T) {
			jsonResult, jsonErr := tn.c.CallRaw(tn.ctx(), c.jsonMethod, c.req)
			var trailer metadata.MD
			grpcErr := conn.Invoke(tn.ctx(), c.grpcMethod, c.req, c.resp, grpc.Trailer(&trailer))
			if jsonErr != nil {
				errs++
				var je *client.Error
				if !errors.As(jsonErr, &je) {
					t.Fatalf("JSON-RPC: %v", jsonErr)
				}
				st, _ := status.FromError(grpcErr)
				switch {
				case je.Code == -32601: // refused
					if st.Code() != codes.PermissionDenied {
						t.Errorf("refused over JSON-RPC (%v), over gRPC: %v", je, grpcErr)
					}
				case st.Code() != codes.InvalidArgument || st.Message() != je.Message || fmt.Sprint(trailer.Get("koinos-error-data")) != fmt.Sprint([]string{je.Data}):
					t.Errorf("JSON-RPC error %v; gRPC %v %q, data %q", je, st.Code(), st.Message(), trailer.Get("koinos-error-data"))
				}
				return
			}
			if grpcErr != nil {
				t.Fatalf("JSON-RPC answered, gRPC failed: %v", grpcErr)
			}
			grpcJSON, err := kjson.Append(nil, c.resp)
			if err != nil {
				t.Fatal(err)
			}
			if string(grpcJSON) != string(jsonResult) {
				t.Errorf("answers differ:\nJSON-RPC %s\ngRPC     %s", jsonResult, grpcJSON)
			}
		})
	}
	// submit_block and invoke_system_call are refused, submit_transaction
	// of a transaction already pending fails: the errors are compared too.
	if errs != 3 {
		t.Errorf("%d calls failed, want 3 (two refusals and the resubmission)", errs)
	}
	if st := tn.n.Stats().GRPC; st.Calls != uint64(len(calls)) || st.CallErrors != 3 {
		t.Errorf("gRPC stats: %+v", st)
	}
}

// TestGRPCSubmitAndShutdown submits a transfer over gRPC with the typed
// client, sees it included, and checks that the node's shutdown drains the
// gRPC gateway under the supervisor.
func TestGRPCSubmitAndShutdown(t *testing.T) {
	tn := newTestNetConfigured(t, 2, 200*time.Millisecond, func(c *Config) { c.GRPCListen = "127.0.0.1:0" })
	conn := grpcConn(t, tn.n)
	k := koinosservices.NewKoinosClient(conn)
	tx := tn.transfer(0, tn.users[1].Address(), 5000, 1)
	r, err := k.SubmitTransaction(tn.ctx(), &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true})
	if err != nil || r.Receipt == nil || string(r.Receipt.Id) != string(tx.Id) {
		t.Fatalf("submit_transaction: %v %v", r, err)
	}
	tn.waitTx(tx.Id)
	if got := tn.balance(tn.users[1].Address()); got != testFunds+5000 {
		t.Errorf("balance %d", got)
	}
	addr := tn.n.GRPCAddr()
	tn.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = koinosservices.NewKoinosClient(conn).GetHeadInfo(ctx, &chainrpc.GetHeadInfoRequest{}, grpc.WaitForReady(false))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("after shutdown, %s answered: %v", addr, err)
	}
}
