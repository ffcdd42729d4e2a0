package vm

import (
	"crypto/sha256"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// TestContextSystemCalls: the transaction, operation and block being
// applied, their fields by path as Koinos's get_*_field gives them, an
// account's nonce and mana, the resource limits, the last irreversible
// block and merkle-root checks, each answered as koinos-chain answers.
func TestContextSystemCalls(t *testing.T) {
	v := newVM(t, Config{})
	h := newMemHost(v)
	h.tx = &protocol.Transaction{Id: []byte("txid"), Header: &protocol.TransactionHeader{RcLimit: 77, Payer: accountX, Nonce: []byte{8, 1}}}
	h.op = &protocol.Operation{Op: &protocol.Operation_CallContract{CallContract: &protocol.CallContractOperation{ContractId: contractA, EntryPoint: 9}}}
	h.block = &protocol.Block{Header: &protocol.BlockHeader{Height: 12, Timestamp: 3000, Signer: accountX}}
	h.nonces = map[string]uint64{string(accountX): 41}
	h.rcs = map[string]uint64{string(accountX): 999}
	leaves := []koinos.Digest{sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b")), sha256.Sum256([]byte("c"))}
	hashes := [][]byte{leaves[0].Multihash(), leaves[1].Multihash(), leaves[2].Multihash()}
	root := koinos.MerkleRoot(leaves).Multihash()
	field := func(path string) []byte { return mustMarshal(&chainpb.GetTransactionFieldArguments{Field: path}) }
	notFound := code(int32(chainpb.ErrorCode_field_not_found))
	res, err := run(t, v, h, scripted(
		syscall{sid: chainpb.SystemCallId_get_transaction, logResult: true},
		syscall{sid: chainpb.SystemCallId_get_transaction_field, args: field("header.rc_limit"), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_transaction_field, args: field("header.payer"), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_transaction_field, args: field("header"), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_transaction_field, args: field("header.nope"), requireCode: notFound},
		syscall{sid: chainpb.SystemCallId_get_transaction_field, args: field("signatures"), requireCode: notFound},
		syscall{sid: chainpb.SystemCallId_get_transaction_field, args: field("id.x"), requireCode: notFound},
		syscall{sid: chainpb.SystemCallId_get_block_field, args: mustMarshal(&chainpb.GetBlockFieldArguments{Field: "header.height"}), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_block, logResult: true},
		syscall{sid: chainpb.SystemCallId_get_operation, logResult: true},
		syscall{sid: chainpb.SystemCallId_get_account_nonce, args: mustMarshal(&chainpb.GetAccountNonceArguments{Account: accountX}), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_account_rc, args: mustMarshal(&chainpb.GetAccountRcArguments{Account: accountX}), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_resource_limits, logResult: true},
		syscall{sid: chainpb.SystemCallId_verify_merkle_root, args: mustMarshal(&chainpb.VerifyMerkleRootArguments{Root: root, Hashes: hashes}), logResult: true},
		syscall{sid: chainpb.SystemCallId_verify_merkle_root, args: mustMarshal(&chainpb.VerifyMerkleRootArguments{Root: root, Hashes: hashes[:2]}), logResult: true},
		syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, nil, "")},
	))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	header, _ := anypb.New(h.tx.Header)
	nonce := mustMarshal(&chainpb.ValueType{Kind: &chainpb.ValueType_Uint64Value{Uint64Value: 41}})
	want := []message{
		&chainpb.GetTransactionResult{Value: h.tx},
		&chainpb.GetTransactionFieldResult{Value: &chainpb.ValueType{Kind: &chainpb.ValueType_Uint64Value{Uint64Value: 77}}},
		&chainpb.GetTransactionFieldResult{Value: &chainpb.ValueType{Kind: &chainpb.ValueType_BytesValue{BytesValue: accountX}}},
		&chainpb.GetTransactionFieldResult{Value: &chainpb.ValueType{Kind: &chainpb.ValueType_MessageValue{MessageValue: header}}},
		&chainpb.GetBlockFieldResult{Value: &chainpb.ValueType{Kind: &chainpb.ValueType_Uint64Value{Uint64Value: 12}}},
		&chainpb.GetBlockResult{Value: h.block},
		&chainpb.GetOperationResult{Value: h.op},
		&chainpb.GetAccountNonceResult{Value: nonce},
		&chainpb.GetAccountRcResult{Value: 999},
		&chainpb.GetResourceLimitsResult{Value: h.ResourceLimits()},
		&chainpb.VerifyMerkleRootResult{Value: true},
		&chainpb.VerifyMerkleRootResult{Value: false},
	}
	if len(res.Logs) != len(want) {
		t.Fatalf("%d results, want %d", len(res.Logs), len(want))
	}
	for i, w := range want {
		if res.Logs[i] != string(mustMarshal(w)) {
			t.Errorf("result %d: %x, want %x (%v)", i, res.Logs[i], mustMarshal(w), w)
		}
	}
}

// TestContextSystemCallsInARead: a read has no transaction, operation or
// block; asking for them reverts (or, for the operation, is Koinos's
// operation_not_found), never a crash.
func TestContextSystemCallsInARead(t *testing.T) {
	v := newVM(t, Config{})
	for _, sid := range []chainpb.SystemCallId{chainpb.SystemCallId_get_transaction, chainpb.SystemCallId_get_block,
		chainpb.SystemCallId_get_transaction_field, chainpb.SystemCallId_get_block_field} {
		args := mustMarshal(&chainpb.GetTransactionFieldArguments{Field: "id"})
		_, err := run(t, v, newMemHost(v), scripted(syscall{sid: sid, args: args}))
		if ke, ok := err.(*koinos.Error); !ok || !ke.IsReversion() {
			t.Errorf("system call %v in a read: %v, want a reversion", sid, err)
		}
	}
	if _, err := run(t, v, newMemHost(v), scripted(syscall{sid: chainpb.SystemCallId_get_operation, requireCode: code(int32(chainpb.ErrorCode_operation_not_found))}, syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, nil, "")})); err != nil {
		t.Errorf("get_operation in a read: %v", err)
	}
}
