package bench

import (
	"testing"

	"github.com/valyala/fastjson"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/proto/kjson"
	blockstorepb "github.com/emberchain/ember/proto/koinos/block_store"
	"github.com/emberchain/ember/proto/koinos/protocol"
	blockstorerpc "github.com/emberchain/ember/proto/koinos/rpc/block_store"
)

// blockAnswer encodes a get_blocks_by_height answer holding one block of
// ntx transfers, as the node's gateway does.
func blockAnswer(t *testing.T, ntx int) []byte {
	t.Helper()
	ks, err := DeriveKeys(keys.SchemeEd25519, "scan", 2)
	if err != nil {
		t.Fatal(err)
	}
	chainID := koinos.Sum256([]byte("chain")).Multihash()
	token := deriveKey(keys.SchemeEd25519, "token").Address()
	b := &protocol.Block{
		Id: koinos.Sum256([]byte("block")).Multihash(),
		Header: &protocol.BlockHeader{
			Previous: koinos.Sum256([]byte("parent")).Multihash(), Height: 42, Timestamp: 1_700_000_000_123,
			PreviousStateMerkleRoot: koinos.Sum256([]byte("root")).Multihash(), Signer: ks[1].Address().Bytes(),
		},
		Signature: []byte{1, 2, 3},
	}
	for i := 0; i < ntx; i++ {
		tx, err := txbuilder.Transfer(ks[0], token, ks[1].Address(), 1, txbuilder.Header{ChainID: chainID, Nonce: uint64(i + 1), RcLimit: 1})
		if err != nil {
			t.Fatal(err)
		}
		b.Transactions = append(b.Transactions, tx)
	}
	out := []byte(`{"jsonrpc":"2.0","id":2,"result":`)
	out, err = kjson.Append(out, &blockstorerpc.GetBlocksByHeightResponse{BlockItems: []*blockstorepb.BlockItem{{BlockId: b.Id, BlockHeight: 42, Block: b}}})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '}')
}

// TestScanOneBlockMatchesParse holds the scanner to the full parse.
func TestScanOneBlockMatchesParse(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		resp := blockAnswer(t, n)
		got, ok := scanOneBlock(resp)
		if !ok {
			t.Fatalf("%d txs: the scan refused a well-formed answer: %s", n, resp)
		}
		var p fastjson.Parser
		var want []fetchedBlock
		if err := parseResult(&p, 200, resp, func(r *fastjson.Value) (err error) {
			want, err = parseBlockItems(r)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		w := want[0]
		if got.height != w.height || got.id != w.id || got.prev != w.prev || got.ts != w.ts || len(got.txIDs) != len(w.txIDs) || len(got.txIDs) != n {
			t.Fatalf("%d txs: scan %+v, parse %+v", n, got, w)
		}
		for i := range w.txIDs {
			if got.txIDs[i] != w.txIDs[i] {
				t.Fatalf("tx %d: scan %x, parse %x", i, got.txIDs[i], w.txIDs[i])
			}
		}
	}
	for _, bad := range []string{
		`{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"x"}}`,
		`{"jsonrpc":"2.0","id":2,"result":{"block_items":[{"block_height":"1","block_height":"2"}]}}`,
		`{"jsonrpc":"2.0","id":2,"result":{}}`,
		`not json`,
	} {
		if _, ok := scanOneBlock([]byte(bad)); ok {
			t.Errorf("the scan accepted %s", bad)
		}
	}
}
