package rpcgw

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/emberchain/ember/proto/kjson"
	koinospb "github.com/emberchain/ember/proto/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// The benchmarks run the handler in-process on a prepared RequestCtx, so
// they measure the gateway's own cost per call: JSON parse, translation,
// envelope construction, the fake backend's reply (a few small allocations)
// and the kjson encoding of the result. Network and HTTP parsing are not
// included; see client.BenchmarkRoundTrip for a loopback figure.

func benchServe(b *testing.B, body []byte, wantResult []byte) {
	s, err := New(Config{}, &fakeBackend{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		var ctx fasthttp.RequestCtx
		serveInProcess(s, &ctx, body)
		if !bytes.Contains(ctx.Response.Body(), wantResult) {
			b.Fatalf("unexpected response %s", ctx.Response.Body())
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			ctx.Response.Reset()
			s.handle(&ctx)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var ctx fasthttp.RequestCtx
			serveInProcess(s, &ctx, body)
			for pb.Next() {
				ctx.Response.Reset()
				s.handle(&ctx)
			}
		})
	})
}

func BenchmarkServeGetHeadInfo(b *testing.B) {
	benchServe(b, []byte(`{"jsonrpc":"2.0","id":123,"method":"chain.get_head_info","params":{}}`), []byte(`"result":{"head_topology"`))
}

// BenchmarkServeSubmitTransaction submits a koilib-shaped token transfer:
// one call_contract operation and one 65-byte signature.
func BenchmarkServeSubmitTransaction(b *testing.B) {
	addr, _ := kjson.DecodeBytes(koinospb.BytesType_ADDRESS, testAddr)
	tx := &protocol.Transaction{
		Id: append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0xab}, 32)...),
		Header: &protocol.TransactionHeader{
			ChainId:             append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0x01}, 32)...),
			RcLimit:             100000000,
			Nonce:               []byte{0x28, 0x01},
			OperationMerkleRoot: append([]byte{0x12, 0x20}, bytes.Repeat([]byte{0x02}, 32)...),
			Payer:               addr,
		},
		Operations: []*protocol.Operation{{Op: &protocol.Operation_CallContract{CallContract: &protocol.CallContractOperation{
			ContractId: addr,
			EntryPoint: 670398154,
			Args:       bytes.Repeat([]byte{0x0a}, 58),
		}}}},
		Signatures: [][]byte{bytes.Repeat([]byte{0x1f}, 65)},
	}
	txJSON, err := kjson.Marshal(tx)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"chain.submit_transaction","params":{"transaction":` + string(txJSON) + `,"broadcast":true}}`)
	benchServe(b, body, []byte(`"result":{"receipt"`))
}
