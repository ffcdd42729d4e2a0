package chain

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/internal/sdkas"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Entry points of the SDK contracts (internal/sdkas/testdata/README.md).
var (
	epMint      = sdkas.EntryPoint("mint")
	epTransfer  = sdkas.EntryPoint("transfer")
	epBalanceOf = sdkas.EntryPoint("balance_of")
	epKVPut     = sdkas.EntryPoint("put")
	epKVGet     = sdkas.EntryPoint("get")
)

func marshalVT(t *testing.T, m interface{ MarshalVT() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kvArgs encodes kvstore's put_arguments{key, value} (get_arguments when
// value is nil).
func kvArgs(key string, value []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	if value != nil {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, value)
	}
	return b
}

// kvGet reads key through the kvstore's get entry point at the head.
func (h *harness) kvGet(id []byte, key string) (value []byte, found bool) {
	h.t.Helper()
	res, _, err := h.c.View().ReadContract(id, epKVGet, kvArgs(key, nil))
	if err != nil {
		h.t.Fatal(err)
	}
	for len(res) > 0 {
		num, typ, n := protowire.ConsumeTag(res)
		res = res[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(res)
			value, res = v, res[m:]
		case num == 2 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(res)
			found, res = v != 0, res[m:]
		default:
			h.t.Fatalf("get_result field %d of type %d", num, typ)
		}
	}
	return value, found
}

// tokenBalance reads balance_of through the contract at the head.
func (h *harness) tokenBalance(id []byte, owner keys.Signer) uint64 {
	h.t.Helper()
	res, _, err := h.c.View().ReadContract(id, epBalanceOf, marshalVT(h.t, &tokenpb.BalanceOfArguments{Owner: owner.Address().Bytes()}))
	if err != nil {
		h.t.Fatal(err)
	}
	var out tokenpb.BalanceOfResult
	if err := out.UnmarshalVT(res); err != nil {
		h.t.Fatal(err)
	}
	return out.Value
}

// TestSDKContractsAcrossNodes: Koinos SDK contracts (a KCS-1 token and a
// key-value store) deployed and used on one chain; a second chain applying
// the same blocks reaches the same state root after each, and reads the
// same contract state; a reorg unwinds contract state with its block.
func TestSDKContractsAcrossNodes(t *testing.T) {
	tokenCode, kvCode := sdkas.Contract(t, "token"), sdkas.Contract(t, "kvstore")
	// Two producers, and only producer 0 signs until the fork: nothing
	// becomes irreversible, so the fork below can happen.
	a, b := twoNodes(t, 2)
	tokenKey, kvKey := keys.Ed25519FromSeed(seed("sdk-token")), keys.Ed25519FromSeed(seed("sdk-kvstore"))
	tokenID, kvID := tokenKey.Address().Bytes(), kvKey.Address().Bytes()
	u0, u1 := a.users[0], a.users[1]
	const rc = 900_000_000
	blocks := [][]*protocol.Transaction{
		{a.contractTx(1, 1, rc, []keys.Signer{tokenKey}, uploadOp(tokenKey.Address(), tokenCode, "{}")),
			a.contractTx(0, 1, rc, []keys.Signer{kvKey}, uploadOp(kvKey.Address(), kvCode, "{}"))},
		{a.contractTx(1, 2, rc, []keys.Signer{tokenKey}, callOp(tokenID, epMint, marshalVT(t, &tokenpb.MintArguments{To: u0.Address().Bytes(), Value: 1000})))},
		{a.contractTx(0, 2, rc, nil, callOp(tokenID, epTransfer, marshalVT(t, &tokenpb.TransferArguments{From: u0.Address().Bytes(), To: u1.Address().Bytes(), Value: 400}))),
			a.contractTx(1, 3, rc, nil, callOp(kvID, epKVPut, kvArgs("greeting", []byte("hello"))))},
	}
	for i, txs := range blocks {
		r, prop := a.produce(0, txs...)
		if len(prop.Failed) != 0 || len(prop.Block.Transactions) != len(txs) {
			t.Fatalf("block %d: %d of %d included, failed %v", i, len(prop.Block.Transactions), len(txs), prop.Failed)
		}
		for j := range txs {
			if rec := a.receiptOf(prop, j); rec.Reverted {
				t.Fatalf("block %d transaction %d reverted: %v", i, j, rec.Logs)
			}
		}
		b.step(b.c.AcceptBlock(sigverifyEntry(t, a, r.Accepted[0]), math.MaxUint64))
		if sa, sb := a.c.View().HeadStateRoot, b.c.View().HeadStateRoot; sa != sb {
			t.Fatalf("block %d: state roots %x and %x", i, sa, sb)
		}
	}
	for _, h := range []*harness{a, b} {
		if b0, b1 := h.tokenBalance(tokenID, u0), h.tokenBalance(tokenID, u1); b0 != 600 || b1 != 400 {
			t.Fatalf("token balances %d and %d, want 600 and 400", b0, b1)
		}
		if v, found := h.kvGet(kvID, "greeting"); !found || !bytes.Equal(v, []byte("hello")) {
			t.Fatalf("kvstore greeting = %q, %v", v, found)
		}
	}

	// A fork: b builds a block that overwrites the greeting; a builds a
	// longer branch without it, with producer 1's signature too. b follows the longer branch and the
	// overwrite is gone, on b's state and in its contract reads.
	side := b.blockOn(0, b.nextSlotOf(0, b.c.HeadTime()), nil, b.contractTx(1, 4, rc, nil, callOp(kvID, epKVPut, kvArgs("greeting", []byte("side")))))
	b.step(b.c.AcceptBlock(side, math.MaxUint64))
	if v, _ := b.kvGet(kvID, "greeting"); string(v) != "side" {
		t.Fatalf("greeting on the side branch = %q", v)
	}
	for _, p := range []int{1, 0} {
		r, _ := a.produce(p)
		b.step(b.c.AcceptBlock(sigverifyEntry(t, a, r.Accepted[0]), math.MaxUint64))
	}
	if b.c.View().Head.ID != a.c.View().Head.ID {
		t.Fatal("b did not switch to the longer branch")
	}
	if v, found := b.kvGet(kvID, "greeting"); !found || string(v) != "hello" {
		t.Fatalf("greeting after the reorg = %q, %v; want the main branch's", v, found)
	}
	if sa, sb := a.c.View().HeadStateRoot, b.c.View().HeadStateRoot; sa != sb {
		t.Fatalf("state roots after the reorg: %x and %x", sa, sb)
	}
}
