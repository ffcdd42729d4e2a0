package chain

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/engine/vm"
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
	// b runs every contract call's start-up itself, a from the VM's
	// start-up snapshot: the same compute, so the same state roots.
	b.vmCfg = vm.Config{NoSnapshot: true}
	b.open()
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

// TestAuthorizeOverride: a contract account uploaded with
// authorizes_call_contract and authorizes_upload_contract decides its own
// authority through its authorize entry point, as koinos-chain asks it:
// the native token moves the contract's tokens when it agrees, without
// the account's signature, and not when it refuses, even with it; a
// re-upload needs its agreement, not its signature.
func TestAuthorizeOverride(t *testing.T) {
	code := sdkas.Contract(t, "authorizer")
	h := newHarness(t, 1, 2)
	k := keys.Ed25519FromSeed(seed("sdk-authorizer"))
	id := k.Address().Bytes()
	up := uploadOp(k.Address(), code, "{}")
	up.GetUploadContract().AuthorizesCallContract = true
	up.GetUploadContract().AuthorizesUploadContract = true
	const rc = 900_000_000
	fund, err := txbuilder.Transfer(h.users[0], h.c.Token().ID(), k.Address(), 5000, txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: 1, RcLimit: rc})
	if err != nil {
		t.Fatal(err)
	}
	_, prop := h.produce(0, h.contractTx(1, 1, rc, []keys.Signer{k}, up), fund)
	if len(prop.Block.Transactions) != 2 || h.receiptOf(prop, 0).Reverted || h.receiptOf(prop, 1).Reverted {
		t.Fatalf("upload and funding: %d included, failed %v", len(prop.Block.Transactions), prop.Failed)
	}
	// take moves 100 of the contract's native tokens to user 1, signed by
	// user 1 only (and by the contract's key when withKey).
	take := func(nonce uint64, withKey bool) (included, reverted bool) {
		t.Helper()
		args, _ := (&tokenpb.TransferArguments{From: id, To: h.users[1].Address().Bytes(), Value: 100}).MarshalVT()
		var extra []keys.Signer
		if withKey {
			extra = []keys.Signer{k}
		}
		_, prop := h.produce(0, h.contractTx(1, nonce, rc, extra, callOp(h.c.Token().ID().Bytes(), contracts.EntryTransfer, args)))
		if len(prop.Block.Transactions) == 0 {
			return false, false
		}
		return true, h.receiptOf(prop, 0).Reverted
	}
	balance := func() uint64 {
		a, err := h.c.View().Account(k.Address())
		if err != nil {
			t.Fatal(err)
		}
		return a.Balance
	}
	if inc, rev := take(2, true); inc && !rev || balance() != 5000 {
		t.Fatalf("refusing authorizer, signed by its key: included %v reverted %v, balance %d; want the transfer refused", inc, rev, balance())
	}
	_, prop = h.produce(0, h.contractTx(1, h.nextNonce(1), rc, nil, callOp(id, 1, nil))) // allow
	if len(prop.Block.Transactions) != 1 || h.receiptOf(prop, 0).Reverted {
		t.Fatalf("allow: failed %v", prop.Failed)
	}
	if inc, rev := take(h.nextNonce(1), false); !inc || rev || balance() != 4900 {
		t.Fatalf("agreeing authorizer, no signature: included %v reverted %v, balance %d; want the transfer done", inc, rev, balance())
	}
	// Re-upload without the key's signature: the authorizer agrees.
	_, prop = h.produce(0, h.contractTx(1, h.nextNonce(1), rc, nil, uploadOp(k.Address(), code, `{"v":2}`)))
	if len(prop.Block.Transactions) != 1 || h.receiptOf(prop, 0).Reverted {
		t.Fatalf("re-upload agreed by authorize: included %d, failed %v", len(prop.Block.Transactions), prop.Failed)
	}
	if _, _, abi, _, _ := h.c.View().Contract(id); abi != `{"v":2}` {
		t.Fatalf("ABI after the re-upload: %q", abi)
	}
}

// TestContractCallsNativeToken: a contract calling the native token may
// move its own tokens without its key's signature, but not the tokens of
// the transaction's signer (the SDK's enhanced-security rule, which a
// token built with Koinos's SDK applies too), even though the signer
// signed the transaction that called the contract.
func TestContractCallsNativeToken(t *testing.T) {
	code := sdkas.Contract(t, "forwarder")
	h := newHarness(t, 1, 2)
	k := keys.Ed25519FromSeed(seed("sdk-forwarder"))
	const rc = 900_000_000
	fund, err := txbuilder.Transfer(h.users[0], h.c.Token().ID(), k.Address(), 5000, txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: 1, RcLimit: rc})
	if err != nil {
		t.Fatal(err)
	}
	_, prop := h.produce(0, h.contractTx(1, 1, rc, []keys.Signer{k}, uploadOp(k.Address(), code, "{}")), fund)
	if len(prop.Block.Transactions) != 2 {
		t.Fatalf("upload and funding: failed %v", prop.Failed)
	}
	forward := func(from koinos.Address) *protocol.TransactionReceipt {
		t.Helper()
		args := append(h.c.Token().ID().Bytes(), marshalVT(t, &tokenpb.TransferArguments{From: from.Bytes(), To: h.users[0].Address().Bytes(), Value: 10})...)
		_, prop := h.produce(0, h.contractTx(1, h.nextNonce(1), rc, nil, callOp(k.Address().Bytes(), contracts.EntryTransfer, args)))
		if len(prop.Block.Transactions) != 1 {
			t.Fatalf("forwarded transfer left out: %v", prop.Failed)
		}
		return h.receiptOf(prop, 0)
	}
	before, _ := h.account(1)
	if r := forward(h.users[1].Address()); !r.Reverted {
		t.Fatal("a contract moved the tokens of the transaction's signer")
	}
	if after, _ := h.account(1); after != before {
		// The payer's balance is its mana's source too, but rc is mana, not balance.
		t.Fatalf("signer's balance %d -> %d", before, after)
	}
	if r := forward(k.Address()); r.Reverted {
		t.Fatalf("the contract could not move its own tokens: %v", r.Logs)
	}
	acct, err := h.c.View().Account(k.Address())
	if err != nil || acct.Balance != 4990 {
		t.Fatalf("contract balance %d, %v; want 4990", acct.Balance, err)
	}
}
