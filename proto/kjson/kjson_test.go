package kjson

import (
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	koinospb "github.com/emberchain/ember/proto/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

func TestBytesForms(t *testing.T) {
	tests := []struct {
		bt   koinospb.BytesType
		in   []byte
		want string
	}{
		{koinospb.BytesType_BLOCK_ID, []byte{0x12, 0x20, 0xab}, "0x1220ab"},
		{koinospb.BytesType_ADDRESS, []byte{0, 1, 2}, "15T"},
		{koinospb.BytesType_BASE64, []byte{0xfb, 0xff}, "-_8="},
	}
	for _, tt := range tests {
		got := EncodeBytes(tt.bt, tt.in)
		if got != tt.want {
			t.Errorf("%v: %q, want %q", tt.bt, got, tt.want)
		}
		back, err := DecodeBytes(tt.bt, got)
		if err != nil || string(back) != string(tt.in) {
			t.Errorf("%v: round trip %x %v", tt.bt, back, err)
		}
	}
	// base64 input is accepted padded or not, url or standard alphabet.
	for _, s := range []string{"-_8=", "-_8", "+/8=", "+/8"} {
		if b, err := DecodeBytes(koinospb.BytesType_BASE64, s); err != nil || string(b) != "\xfb\xff" {
			t.Errorf("%q: %x %v", s, b, err)
		}
	}
	if _, err := DecodeBytes(koinospb.BytesType_HEX, "1220"); err == nil {
		t.Error("hex without 0x accepted")
	}
}

func TestIntegersAndErrors(t *testing.T) {
	var r chainrpc.ReadContractRequest
	if err := Unmarshal([]byte(`{"entry_point": 1550980247, "contractId": "15T"}`), &r); err != nil || r.EntryPoint != 1550980247 || len(r.ContractId) != 3 {
		t.Fatalf("%v %+v", err, &r)
	}
	var h protocol.BlockHeader
	if err := Unmarshal([]byte(`{"height":"18446744073709551615","timestamp":12}`), &h); err != nil || h.Height != 1<<64-1 || h.Timestamp != 12 {
		t.Fatalf("%v %+v", err, &h)
	}
	out, _ := Marshal(&h)
	if string(out) != `{"height":"18446744073709551615","timestamp":"12"}` {
		t.Fatalf("64-bit integers must be strings: %s", out)
	}
	bad := []struct{ in, field string }{
		{`{"height":"-1"}`, "height"},
		{`{"height":1.5}`, "height"},
		{`{"height":"18446744073709551616"}`, "height"},
		{`{"previous":"zz"}`, "previous"},
		{`{"signer":"0OIl"}`, "signer"},
		{`{"approved_proposals":"x"}`, "approved_proposals"},
		{`[1]`, ""},
		{`{"height":`, ""},
	}
	for _, tt := range bad {
		err := Unmarshal([]byte(tt.in), &h)
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: err = %v", tt.in, err)
		}
	}
	deep := strings.Repeat(`{"transaction":`, MaxDepth+5) + `{}` + strings.Repeat(`}`, MaxDepth+5)
	var s chainrpc.SubmitTransactionRequest
	_ = Unmarshal([]byte(deep), &s) // must not overflow the stack
}

// FuzzUnmarshal: any bytes into the messages the RPC decodes; no panic, and
// whatever decodes encodes and decodes again to the same message.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"transaction":{"id":"0x1220","header":{"chain_id":"EiA=","rc_limit":"10","nonce":"KAE=","payer":"15T"},"operations":[{"call_contract":{"contract_id":"15T","entry_point":1,"args":"AA=="}}],"signatures":["AA=="]},"broadcast":true}`))
	f.Add([]byte(`{"transaction":{"operations":[{"upload_contract":{"abi":"x","bytecode":"AA"}},{"set_system_call":{"call_id":3,"target":{"thunk_id":2}}}]}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m chainrpc.SubmitTransactionRequest
		if err := Unmarshal(b, &m); err != nil {
			return
		}
		out, err := Marshal(&m)
		if err != nil {
			return // e.g. invalid UTF-8 cannot be encoded faithfully
		}
		var again chainrpc.SubmitTransactionRequest
		if err := Unmarshal(out, &again); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if !again.EqualVT(&m) {
			t.Fatalf("round trip changed the message: %s", out)
		}
	})
}

// The base58 cache must give what base58 gives, whatever collides in it.
func TestBase58Cache(t *testing.T) {
	for i := 0; i < 20000; i++ {
		b := make([]byte, 1+i%26)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		if i%3 == 0 {
			b[0] = 0 // leading zeros are the tricky part
		}
		want := base58.Encode(b)
		for round := 0; round < 2; round++ { // miss, then hit
			if got := string(appendBase58(nil, b)); got != want {
				t.Fatalf("%x: %s, want %s", b, got, want)
			}
			back, err := decodeBase58(want)
			if err != nil || string(back) != string(b) {
				t.Fatalf("decode %s: %x %v", want, back, err)
			}
			back[0] ^= 0xff // the caller owns the result: the cache is untouched
		}
	}
	if _, err := decodeBase58("0OIl"); err == nil {
		t.Fatal("bad base58 accepted")
	}
}
