package kjson

import (
	"testing"

	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// A transfer's submit request and receipt as they cross the JSON-RPC
// gateway (their shapes come from a real node: node/apidoc_test.go).
var (
	submitJSON = []byte(`{"transaction":{"id":"0x1220a0d703c886ebb57757f6e82fbf0784f9b3b4ec7fb894b21ae725fed07fb232ce","header":{"chain_id":"EiDHSDkWstls6blm5qnl3Z1hod1cq3JFjjIVRA41Wq-sIw==","rc_limit":"100000000","nonce":"KAE=","operation_merkle_root":"EiBE40ChVCkzshLqB3kqR1a9W1nol1uPlDlS_iiTo8ml8w==","payer":"1Pr2hXVJfwNpntSUwF9pAH97bTMQAsK7Dh"},"operations":[{"call_contract":{"contract_id":"1FaSvLjQJsCJKq5ybmGsMMQs8RQYyVv8ju","entry_point":670398154,"args":"ChkA-piRQG0x0ucEV2efdUHwjWHqaZWi6mAIEhkA1IHNUUOcRQ8z8KCmKlEnTeYLSMan1bMKGOgH"}}],"signatures":["ICEvl0XC7-HSeVwmGJ8N2E4jgcjjVfzmEG4-HIzYt-CoY8ebeH7es8lsMxUWtY7Rmuu6MlWutKnOfY1xkvqGdYk="]},"broadcast":true}`)
)

func sampleReceipt(b testing.TB) *protocol.TransactionReceipt {
	var req chainrpc.SubmitTransactionRequest
	if err := Unmarshal(submitJSON, &req); err != nil {
		b.Fatal(err)
	}
	tx := req.Transaction
	args := tx.Operations[0].GetCallContract()
	return &protocol.TransactionReceipt{
		Id: tx.Id, Payer: tx.Header.Payer, MaxPayerRc: 999999633655, RcLimit: 100000000, RcUsed: 358000,
		NetworkBandwidthUsed: 257, ComputeBandwidthUsed: 5800,
		Events: []*protocol.EventData{{Sequence: 0, Source: args.ContractId, Name: "koinos.contracts.token.transfer_event",
			Data: args.Args, Impacted: [][]byte{tx.Header.Payer, args.ContractId}}},
	}
}

func BenchmarkUnmarshalSubmit(b *testing.B) {
	b.ReportAllocs()
	var req chainrpc.SubmitTransactionRequest
	for i := 0; i < b.N; i++ {
		if err := Unmarshal(submitJSON, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalReceipt(b *testing.B) {
	r := &chainrpc.SubmitTransactionResponse{Receipt: sampleReceipt(b)}
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = Append(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	}
}
