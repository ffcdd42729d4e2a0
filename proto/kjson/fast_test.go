package kjson

import (
	"testing"

	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// decodeBoth decodes b with the hand-written decoders and with the generic
// one, and reports whether they disagree (in result or in error).
func decodeBoth(t *testing.T, b []byte) {
	t.Helper()
	var fast, generic chainrpc.SubmitTransactionRequest
	ferr := Unmarshal(b, &fast)
	genericOnly = true
	gerr := Unmarshal(b, &generic)
	genericOnly = false
	switch {
	case (ferr == nil) != (gerr == nil):
		t.Fatalf("%s\nfast: %v\ngeneric: %v", b, ferr, gerr)
	case ferr != nil && ferr.Error() != gerr.Error():
		t.Fatalf("%s\nfast error: %v\ngeneric error: %v", b, ferr, gerr)
	case ferr == nil && !fast.EqualVT(&generic):
		t.Fatalf("%s\nfast: %v\ngeneric: %v", b, &fast, &generic)
	}
	// And a bare transaction, the top-level fast path.
	var ft, gt protocol.Transaction
	ferr = Unmarshal(b, &ft)
	genericOnly = true
	gerr = Unmarshal(b, &gt)
	genericOnly = false
	if (ferr == nil) != (gerr == nil) || (ferr != nil && ferr.Error() != gerr.Error()) || (ferr == nil && !ft.EqualVT(&gt)) {
		t.Fatalf("bare transaction %s\nfast: %v %v\ngeneric: %v %v", b, ferr, &ft, gerr, &gt)
	}
}

var fastCases = []string{
	string(submitJSON),
	`{"transaction":{"header":{"chainId":"AA==","rcLimit":"5","operationMerkleRoot":"AA","payer":"15T","payee":""}}}`,
	`{"transaction":{"operations":[{"callContract":{"contractId":"15T","entryPoint":"7","args":null}},{"call_contract":null},{}]}}`,
	`{"transaction":{"operations":[{"upload_contract":{"contract_id":"15T","abi":"x"}},{"set_system_contract":{"system_contract":true}}]}}`,
	`{"transaction":{"operations":[{"call_contract":{"entry_point":1},"upload_contract":{"abi":"y"}}]}}`,
	`{"transaction":{"operations":[{"call_contract":{"entry_point":1},"callContract":{"args":"AA=="}}]}}`,
	`{"transaction":{"signatures":["AA==","_-8"],"signatures":["AQ=="],"id":"0x12"}}`,
	`{"transaction":{"header":{"payer":"15T"},"header":{"nonce":"KAE="}}}`,
	`{"transaction":{"header":{"rc_limit":-1}}}`,
	`{"transaction":{"header":{"rc_limit":"18446744073709551616"}}}`,
	`{"transaction":{"header":{"payer":"0OIl"}}}`,
	`{"transaction":{"header":{"chain_id":5}}}`,
	`{"transaction":{"header":[]}}`,
	`{"transaction":{"operations":{}}}`,
	`{"transaction":{"operations":[5]}}`,
	`{"transaction":{"operations":[{"call_contract":"x"}]}}`,
	`{"transaction":{"operations":[{"call_contract":{"entry_point":4294967296}}]}}`,
	`{"transaction":{"signatures":[1]}}`,
	`{"transaction":{"signatures":"x"}}`,
	`{"transaction":{"id":"1220"}}`,
	`{"transaction":5}`,
	`{"transaction":null,"broadcast":true}`,
}

func TestFastDecodersMatchGeneric(t *testing.T) {
	for _, c := range fastCases {
		decodeBoth(t, []byte(c))
	}
}

func FuzzFastDecoders(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { decodeBoth(t, b) })
}
