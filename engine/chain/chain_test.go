package chain

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
	"github.com/emberchain/ember/proto/tokenabi"
)

func codeOf(err error) chainpb.ErrorCode { return koinos.CodeOf(err) }

func TestGenesisState(t *testing.T) {
	h := newHarness(t, 1, 2)
	v := h.c.View()
	if v.Head.Height != 0 || v.LIB.Height != 0 {
		t.Fatalf("head %d lib %d", v.Head.Height, v.LIB.Height)
	}
	if got := v.Supply(); got != 2*initialBalance {
		t.Fatalf("supply %d", got)
	}
	rc, _ := v.RC(h.users[0].Address())
	if rc != initialBalance {
		t.Fatalf("genesis mana %d, want the balance", rc)
	}
	_, root := h.g.State()
	if v.HeadStateRoot != root {
		t.Fatal("genesis state root")
	}
}

func TestTransfer(t *testing.T) {
	h := newHarness(t, 1, 3)
	r, prop := h.produce(0, h.transfer(0, 1, 500, 1), h.transfer(0, 2, 250, 2))
	if len(prop.Failed) != 0 {
		t.Fatalf("failed: %v", prop.Failed[0].Err)
	}
	if len(r.Accepted) != 1 || !r.HeadChanged || len(r.Irreversible) != 1 {
		t.Fatalf("ready: accepted %d irreversible %d", len(r.Accepted), len(r.Irreversible))
	}
	if r.Meta.Head.Height != 1 || r.Meta.LIB != r.Meta.Head {
		t.Fatal("one producer: the head is irreversible at once")
	}
	bal0, n0 := h.account(0)
	bal1, _ := h.account(1)
	bal2, _ := h.account(2)
	if bal0 != initialBalance-750 || bal1 != initialBalance+500 || bal2 != initialBalance+250 || n0 != 2 {
		t.Fatalf("balances %d %d %d nonce %d", bal0, bal1, bal2, n0)
	}
	rec := r.Accepted[0].Receipt
	if len(rec.TransactionReceipts) != 2 {
		t.Fatal("receipts")
	}
	tr := rec.TransactionReceipts[0]
	if tr.Reverted || tr.RcUsed == 0 || tr.RcUsed > tr.RcLimit || tr.NetworkBandwidthUsed == 0 || tr.MaxPayerRc != initialBalance {
		t.Fatalf("receipt %+v", tr)
	}
	if len(tr.Events) != 1 || tr.Events[0].Name != contracts.EventTransfer || rec.TransactionReceipts[1].Events[0].Sequence != 1 {
		t.Fatalf("events %+v", tr.Events)
	}
	var ev tokenpb.TransferEvent
	if err := ev.UnmarshalVT(tr.Events[0].Data); err != nil || ev.Value != 500 {
		t.Fatalf("event data %v %v", ev.Value, err)
	}
	// Mana: spent by the rc used and by the tokens moved (they carry their
	// mana with them); the recipient gains mana with the tokens.
	rc0, _ := h.c.View().RC(h.users[0].Address())
	used := tr.RcUsed + rec.TransactionReceipts[1].RcUsed
	if rc0 != initialBalance-750-used {
		t.Fatalf("mana %d, want %d", rc0, initialBalance-750-used)
	}
	rc1, _ := h.c.View().RC(h.users[1].Address())
	if rc1 != initialBalance+500 {
		t.Fatalf("recipient mana %d", rc1)
	}
	if !bytes.Equal(r.Accepted[0].Block.Header.PreviousStateMerkleRoot, mh(h.c.fork.root.parentStateRoot(h))) {
		t.Fatal("block 1 must carry the genesis state root")
	}
}

// parentStateRoot is a test helper: the genesis state root.
func (n *node) parentStateRoot(h *harness) koinos.Digest {
	_, root := h.g.State()
	return root
}

func mh(d koinos.Digest) []byte { return d.Multihash() }

func TestFailuresAreLeftOut(t *testing.T) {
	h := newHarness(t, 1, 3)
	unsupported, _ := txbuilder.Build(txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: 1, RcLimit: 1000, Payer: h.users[2].Address()},
		&protocol.Operation{Op: &protocol.Operation_SetSystemCall{SetSystemCall: &protocol.SetSystemCallOperation{CallId: 1}}})
	txbuilder.Sign(unsupported, h.users[2])
	tests := []struct {
		name string
		tx   *protocol.Transaction
		code chainpb.ErrorCode
	}{
		{"nonce gap", h.transfer(0, 1, 1, 2), chainpb.ErrorCode_invalid_nonce},
		{"nonce reuse", h.transfer(1, 0, 1, 0), chainpb.ErrorCode_invalid_nonce},
		{"rc_limit above mana", h.transferRC(1, 0, 1, 1, initialBalance+1), chainpb.ErrorCode_insufficient_rc},
		{"set_system_call", unsupported, chainpb.ErrorCode_failure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, prop := h.produce(0, tt.tx)
			if len(prop.Failed) != 1 || codeOf(prop.Failed[0].Err) != tt.code {
				t.Fatalf("failed = %v", prop.Failed)
			}
			if len(prop.Block.Transactions) != 0 {
				t.Fatal("failed transaction was included")
			}
		})
	}
}

func TestReversionChargesAndKeepsNonce(t *testing.T) {
	h := newHarness(t, 1, 3)
	other, _ := txbuilder.Build(txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: 1, RcLimit: 10_000_000, Payer: h.users[0].Address()},
		txbuilder.TransferOp(h.c.Token().ID(), h.users[1].Address(), h.users[2].Address(), 5))
	txbuilder.Sign(other, h.users[0])
	tests := []struct {
		name string
		tx   *protocol.Transaction
		log  string
	}{
		{"more than the balance", h.transfer(0, 1, initialBalance+1, 1), "insufficient balance"},
		{"from someone else", other, "has not authorized"},
		{"rc_limit too small", h.transferRC(0, 1, 1, 1, 10), "more than its rc_limit"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tx = rebuildNonce(t, h, tt.tx, uint64(i+1))
			balBefore, _ := h.account(0)
			rcBefore, _ := h.c.View().RC(h.users[0].Address())
			r, prop := h.produce(0, tt.tx)
			if len(prop.Failed) != 0 {
				t.Fatalf("failed: %v", prop.Failed[0].Err)
			}
			tr := r.Accepted[0].Receipt.TransactionReceipts[0]
			if !tr.Reverted || len(tr.Logs) != 1 || !strings.Contains(tr.Logs[0], tt.log) || len(tr.Events) != 0 {
				t.Fatalf("receipt %+v", tr)
			}
			bal, nonce := h.account(0)
			if bal != balBefore || nonce != uint64(i+1) {
				t.Fatalf("balance %d nonce %d", bal, nonce)
			}
			// Mana regenerates between blocks: compare with the mana at
			// the block's time, which the receipt reports.
			rc, _ := h.c.View().RC(h.users[0].Address())
			if tr.RcUsed == 0 || tr.MaxPayerRc < rcBefore || rc != tr.MaxPayerRc-tr.RcUsed {
				t.Fatalf("rc %d at block time -> %d, used %d", tr.MaxPayerRc, rc, tr.RcUsed)
			}
		})
	}
}

// rebuildNonce re-signs tx with another nonce.
func rebuildNonce(t *testing.T, h *harness, tx *protocol.Transaction, nonce uint64) *protocol.Transaction {
	t.Helper()
	var payer koinos.Address
	copy(payer[:], tx.Header.Payer)
	out, err := txbuilder.Build(txbuilder.Header{ChainID: tx.Header.ChainId, Nonce: nonce, RcLimit: tx.Header.RcLimit, Payer: payer}, tx.Operations...)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range h.users {
		if u.Address() == payer {
			txbuilder.Sign(out, u)
		}
	}
	return out
}

func TestMintAndReadContract(t *testing.T) {
	h := newHarness(t, 1, 2)
	args, _ := (&tokenabi.MintArgs{To: h.users[1].Address().Bytes(), Value: 77}).MarshalVT()
	mint := func(from int, nonce uint64) *protocol.Transaction {
		tx, _ := txbuilder.Build(txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: nonce, RcLimit: 10_000_000, Payer: h.users[from].Address()},
			txbuilder.CallOp(h.c.Token().ID(), contracts.EntryMint, args))
		txbuilder.Sign(tx, h.users[from])
		return tx
	}
	r, _ := h.produce(0, mint(0, 1), mint(1, 1))
	rs := r.Accepted[0].Receipt.TransactionReceipts
	if rs[0].Reverted || !rs[1].Reverted {
		t.Fatal("only the authority may mint")
	}
	v := h.c.View()
	if v.Supply() != 2*initialBalance+77 {
		t.Fatalf("supply %d", v.Supply())
	}
	q, _ := (&tokenabi.BalanceOfArgs{Owner: h.users[1].Address().Bytes()}).MarshalVT()
	res, _, err := v.ReadContract(h.c.Token().ID().Bytes(), contracts.EntryBalanceOf, q)
	if err != nil {
		t.Fatal(err)
	}
	var out tokenabi.Uint64
	if err := out.UnmarshalVT(res); err != nil || out.Value != initialBalance+77 {
		t.Fatalf("balance_of = %d, %v", out.Value, err)
	}
	if _, _, err := v.ReadContract(h.c.Token().ID().Bytes(), contracts.EntryTransfer, nil); codeOf(err) != chainpb.ErrorCode_read_only_context {
		t.Fatalf("transfer read-only: %v", err)
	}
	if _, _, err := v.ReadContract(h.users[0].Address().Bytes(), contracts.EntryName, nil); codeOf(err) != chainpb.ErrorCode_invalid_contract {
		t.Fatalf("unknown contract: %v", err)
	}
	res, _, _ = v.ReadContract(h.c.Token().ID().Bytes(), contracts.EntryGetInfo, nil)
	var info tokenabi.Info
	if err := info.UnmarshalVT(res); err != nil || info.Symbol != "EMB" || info.Decimals != 8 {
		t.Fatalf("info %+v %v", &info, err)
	}
}

func TestBlockValidation(t *testing.T) {
	h := newHarness(t, 2, 2)
	h.produce(0)
	good := h.nextSlotOf(1, h.c.HeadTime())
	wrongProducer := h.nextSlotOf(0, h.c.HeadTime())
	tests := []struct {
		name   string
		p      int
		slot   uint64
		mutate func(*protocol.Block)
		now    uint64
		code   chainpb.ErrorCode
	}{
		{"wrong producer for the slot", 1, good, func(b *protocol.Block) { b.Header.Timestamp = h.c.SlotTime(wrongProducer) }, math.MaxUint64, chainpb.ErrorCode_authorization_failure},
		{"timestamp ahead of the clock", 1, good, nil, h.c.SlotTime(good) - 10_000, chainpb.ErrorCode_timestamp_out_of_bounds},
		{"same slot as parent", 1, good, func(b *protocol.Block) { b.Header.Timestamp = h.c.HeadTime() + 1 }, math.MaxUint64, chainpb.ErrorCode_timestamp_out_of_bounds},
		{"previous state root", 1, good, func(b *protocol.Block) { b.Header.PreviousStateMerkleRoot = koinos.ZeroMultihash() }, math.MaxUint64, chainpb.ErrorCode_state_merkle_mismatch},
		{"height", 1, good, func(b *protocol.Block) { b.Header.Height = 5 }, math.MaxUint64, chainpb.ErrorCode_unexpected_height},
		{"unknown parent", 1, good, func(b *protocol.Block) {
			b.Header.Previous = koinos.Sum256([]byte("x")).Multihash()
			b.Header.Height = 9
		}, math.MaxUint64, chainpb.ErrorCode_unknown_previous_block},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vb := h.blockOn(tt.p, tt.slot, tt.mutate)
			_, err := h.c.AcceptBlock(vb, tt.now)
			if codeOf(err) != tt.code {
				t.Fatalf("err = %v (code %v), want %v", err, codeOf(err), tt.code)
			}
		})
	}
	// The untouched block is accepted.
	h.step(h.c.AcceptBlock(h.blockOn(1, good, nil), math.MaxUint64))
	if h.c.View().Head.Height != 2 {
		t.Fatal("good block not accepted")
	}
	if _, err := h.c.AcceptBlock(h.blockOn(0, h.nextSlotOf(0, h.c.HeadTime()), nil), math.MaxUint64); err != nil {
		t.Fatal(err)
	}
}

func TestBlockWithFailingTransactionIsRejected(t *testing.T) {
	h := newHarness(t, 1, 2)
	slot := h.nextSlotOf(0, h.c.HeadTime())
	// Build a block holding a valid transfer, then swap in a nonce-gap one
	// with the merkle root recomputed: the block itself is invalid.
	bad := h.verify(h.transfer(0, 1, 1, 5))
	vb := h.blockOn(0, slot, func(b *protocol.Block) {
		b.Transactions = []*protocol.Transaction{bad[0].Tx()}
		b.Header.TransactionMerkleRoot = sigverify.TransactionMerkleRoot(bad).Multihash()
	})
	if _, err := h.c.AcceptBlock(vb, math.MaxUint64); codeOf(err) != chainpb.ErrorCode_invalid_nonce || !strings.Contains(err.Error(), "transaction 0") {
		t.Fatalf("err = %v", err)
	}
	if h.c.View().Head.Height != 0 {
		t.Fatal("head moved")
	}
}

// twoNodes returns two chains on the same genesis, as two nodes would run.
func twoNodes(t *testing.T, producers int) (*harness, *harness) {
	a := newHarness(t, producers, 2)
	b := &harness{t: t, g: a.g, store: newMemStorage(), producers: a.producers, users: a.users, ckEvery: 1}
	b.open()
	return a, b
}

func TestForkChoiceAndReorg(t *testing.T) {
	a, b := twoNodes(t, 2)
	// Both nodes have block 1 from producer 0.
	r, _ := a.produce(0)
	b.step(b.c.AcceptBlock(sigverifyEntry(t, a, r.Accepted[0]), math.MaxUint64))
	// Producer 1 builds block 2 on a; producer 0, not having seen it, builds
	// another block 2 on b in its next slot. a's is earlier, and spends user
	// 0's tokens.
	s1 := a.nextSlotOf(1, a.c.HeadTime())
	early := a.blockOn(1, s1, nil, a.transfer(0, 1, 1000, 1))
	late := b.blockOn(0, b.nextSlotOf(0, b.c.SlotTime(s1)), nil)
	// b sees the late block first, then the early one: fork choice switches.
	b.step(b.c.AcceptBlock(late, math.MaxUint64))
	r = b.step(b.c.AcceptBlock(early, math.MaxUint64))
	if !r.HeadChanged || r.Meta.Head.ID != early.ID {
		t.Fatal("the earlier block at equal height must win")
	}
	if len(r.Reorg.Removed) != 1 || r.Reorg.Removed[0].ID != late.ID || len(r.Reorg.Added) != 1 || r.Reorg.Added[0].ID != early.ID {
		t.Fatalf("reorg %+v", r.Reorg)
	}
	if bal, _ := b.account(0); bal != initialBalance-1000 {
		t.Fatalf("state after reorg: balance %d", bal)
	}
	if len(b.c.View().ForkHeads) != 2 {
		t.Fatalf("fork heads %d", len(b.c.View().ForkHeads))
	}
	// Extending the late fork makes it longer: reorg back to it, and the
	// transfer is undone at the head.
	b.c.fork.head = b.c.fork.get(late.ID) // build on the late fork
	ext := b.blockOn(1, b.nextSlotOf(1, b.c.fork.head.timestamp), nil)
	b.c.fork.head = b.c.fork.get(early.ID)
	r = b.step(b.c.AcceptBlock(ext, math.MaxUint64))
	if r.Meta.Head.ID != ext.ID || len(r.Reorg.Removed) != 1 || len(r.Reorg.Added) != 2 {
		t.Fatalf("reorg to the longer fork: head %d removed %d added %d", r.Meta.Head.Height, len(r.Reorg.Removed), len(r.Reorg.Added))
	}
	if bal, _ := b.account(0); bal != initialBalance {
		t.Fatalf("transfer of the dropped fork still applied: %d", bal)
	}
}

// sigverifyEntry re-verifies a committed block, as a receiving node would.
func sigverifyEntry(t *testing.T, h *harness, e *BlockEntry) *sigverify.VerifiedBlock {
	t.Helper()
	vb, err := sigverify.VerifyBlock(e.Block, h.c.Limits(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return vb
}

func TestIrreversibilityNeedsTwoThirds(t *testing.T) {
	h := newHarness(t, 4, 2)
	var ids []koinos.Digest
	for p := 0; p < 4; p++ {
		r, _ := h.produce(p)
		ids = append(ids, r.Meta.Head.ID)
		// 4 producers: a block is irreversible once 3 distinct ones signed
		// it or built on it.
		switch p {
		case 0, 1:
			if r.Meta.LIB.Height != 0 {
				t.Fatalf("after %d blocks LIB is %d", p+1, r.Meta.LIB.Height)
			}
		case 2:
			if r.Meta.LIB.ID != ids[0] || len(r.Irreversible) != 1 {
				t.Fatalf("after 3 blocks LIB is %d", r.Meta.LIB.Height)
			}
		case 3:
			if r.Meta.LIB.ID != ids[1] {
				t.Fatalf("after 4 blocks LIB is %d", r.Meta.LIB.Height)
			}
		}
	}
}

func TestDoubleProductionLoses(t *testing.T) {
	a, b := twoNodes(t, 2)
	r, _ := a.produce(0)
	b.step(b.c.AcceptBlock(sigverifyEntry(t, a, r.Accepted[0]), math.MaxUint64))
	// Producer 1 signs two different blocks at height 2 (in two of its
	// slots). Each node first sees one of them.
	s1 := a.nextSlotOf(1, a.c.HeadTime())
	x := a.blockOn(1, s1, nil)
	y := a.blockOn(1, s1+2, nil)
	b.step(b.c.AcceptBlock(x, math.MaxUint64))
	if b.c.View().Head.ID != x.ID {
		t.Fatal("x should be head")
	}
	r = b.step(b.c.AcceptBlock(y, math.MaxUint64))
	if r.Meta.Head.Height != 1 {
		t.Fatalf("after double production the head must fall back to the parent, got height %d", r.Meta.Head.Height)
	}
}

func TestRestartReplaysToTheSameState(t *testing.T) {
	for _, every := range []uint64{1, 3, 1000} {
		t.Run("checkpoint every "+itoa(every), func(t *testing.T) {
			h := newHarness(t, 1, 3)
			h.ckEvery = every
			h.open() // reopen with the interval
			nonce := uint64(0)
			for i := 0; i < 7; i++ {
				nonce++
				h.produce(0, h.transfer(0, 1+i%2, uint64(10+i), nonce))
			}
			before := h.c.View()
			b0, n0 := h.account(0)
			b1, _ := h.account(1)
			h.open()
			after := h.c.View()
			if after.Head != before.Head || after.LIB != before.LIB || after.HeadStateRoot != before.HeadStateRoot {
				t.Fatalf("head %d -> %d", before.Head.Height, after.Head.Height)
			}
			a0, an := h.account(0)
			a1, _ := h.account(1)
			if a0 != b0 || a1 != b1 || an != n0 {
				t.Fatal("state differs after restart")
			}
			// And the chain goes on.
			h.produce(0, h.transfer(0, 1, 1, nonce+1))
		})
	}
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestRestartWithForks(t *testing.T) {
	// Four producers: blocks stay reversible for a while, so a restart
	// replays them into the fork database.
	h := newHarness(t, 4, 2)
	for p := 0; p < 4; p++ {
		h.produce(p, h.transfer(0, 1, 1, uint64(p+1)))
	}
	before := h.c.View()
	if before.LIB.Height == before.Head.Height {
		t.Fatal("test needs reversible blocks")
	}
	h.open()
	after := h.c.View()
	if after.Head != before.Head || after.LIB != before.LIB {
		t.Fatalf("head %v lib %v after restart, want %v %v", after.Head.Height, after.LIB.Height, before.Head.Height, before.LIB.Height)
	}
}

func TestOpenRefusesAnotherChain(t *testing.T) {
	h := newHarness(t, 1, 2)
	h.produce(0)
	other := newHarness(t, 1, 3)
	_, _, err := Open(Config{Genesis: other.g, Storage: h.store})
	if err == nil || !strings.Contains(err.Error(), "genesis file is for chain") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckTransaction(t *testing.T) {
	h := newHarness(t, 1, 2)
	v := h.c.View()
	vt := h.verify(h.transfer(0, 1, 5, 1))[0]
	r, err := v.CheckTransaction(vt, 1, h.c.HeadTime())
	if err != nil || r.Reverted {
		t.Fatalf("check: %v %+v", err, r)
	}
	// A pending transaction moves the expected nonce.
	vt2 := h.verify(h.transfer(0, 1, 5, 2))[0]
	if _, err := v.CheckTransaction(vt2, 2, h.c.HeadTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CheckTransaction(vt2, 1, h.c.HeadTime()); codeOf(err) != chainpb.ErrorCode_invalid_nonce {
		t.Fatalf("err %v", err)
	}
	// The check leaves the chain untouched.
	if _, n := h.account(0); n != 0 {
		t.Fatal("check wrote state")
	}
}

func TestCommitNeedsAdvance(t *testing.T) {
	h := newHarness(t, 1, 2)
	prop, err := h.c.Build(h.c.SlotTime(1), h.producers[0].Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Commit(prop, h.producers[0].Sign(prop.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Build(h.c.SlotTime(2), h.producers[0].Address(), nil); err == nil {
		t.Fatal("Build before Advance must fail")
	}
	var ke *koinos.Error
	_ = errors.As(err, &ke)
}

// A group of blocks (sync) is accepted in order, known blocks skipped; a
// failing block stops the group and the ones before it are still returned.
// No step is allowed until every Ready of the group is advanced.
func TestAcceptBlocksGroup(t *testing.T) {
	a, b := twoNodes(t, 2)
	var vbs []*sigverify.VerifiedBlock
	for i := 0; i < 5; i++ {
		r, _ := a.produce(i%2, a.transfer(0, 1, 10, uint64(i+1)))
		vbs = append(vbs, sigverifyEntry(t, a, r.Accepted[0]))
	}
	// b already has block 1; block 4 is replaced by a forgery that is not
	// in its slot's producer's name.
	b.step(b.c.AcceptBlock(vbs[0], math.MaxUint64))
	bad := vbs[3].Block.CloneVT()
	bad.Header.Signer = a.producers[0].Address().Bytes()
	bad.Id = koinos.BlockID(bad.Header).Multihash()
	id, _ := koinos.ParseMultihash(bad.Id)
	bad.Signature = a.producers[0].Sign(id)
	badVB, err := sigverify.VerifyBlock(bad, b.c.Limits(), 0)
	if err != nil {
		t.Fatal(err)
	}
	group := []*sigverify.VerifiedBlock{vbs[0], vbs[1], vbs[2], badVB, vbs[4]}
	rs, err := b.c.AcceptBlocks(group, math.MaxUint64)
	if err == nil || len(rs) != 2 {
		t.Fatalf("AcceptBlocks = %d readies, %v; want blocks 2 and 3, then the forgery's error", len(rs), err)
	}
	if rs[0].Accepted[0].ID != vbs[1].ID || rs[1].Accepted[0].ID != vbs[2].ID {
		t.Fatal("readies out of order")
	}
	if _, err := b.c.AcceptBlocks(vbs[3:], math.MaxUint64); err == nil {
		t.Fatal("a step before the group is advanced must fail")
	}
	b.store.commit(rs[0])
	b.c.Advance(rs[0])
	if _, err := b.c.AcceptBlocks(vbs[3:], math.MaxUint64); err == nil {
		t.Fatal("a step before the whole group is advanced must fail")
	}
	b.store.commit(rs[1])
	b.c.Advance(rs[1])
	if b.c.View().Head.ID != vbs[2].ID {
		t.Fatalf("head after the group: height %d", b.c.View().Head.Height)
	}
	rs, err = b.c.AcceptBlocks(vbs[3:], math.MaxUint64)
	if err != nil || len(rs) != 2 {
		t.Fatalf("rest of the chain: %d readies, %v", len(rs), err)
	}
	for _, r := range rs {
		b.store.commit(r)
		b.c.Advance(r)
	}
	if b.c.View().Head.ID != vbs[4].ID {
		t.Fatal("head is not the last block")
	}
	if bal, nonce := b.account(0); nonce != 5 || bal != initialBalance-50 {
		t.Fatalf("user 0 after sync: balance %d nonce %d", bal, nonce)
	}
}

// Fork choice puts irreversibility first: a taller branch that fewer than
// two thirds of the producers built on does not pull a node off a branch
// that more than two thirds confirmed.
func TestForkChoicePrefersTheFinalizingBranch(t *testing.T) {
	a := newHarness(t, 4, 2) // builds branch A
	mk := func() *harness {
		h := &harness{t: t, g: a.g, store: newMemStorage(), producers: a.producers, users: a.users, ckEvery: 1}
		h.open()
		return h
	}
	b, c := mk(), mk() // b builds branch B; c receives both
	build := func(h *harness, p int, slot uint64) *sigverify.VerifiedBlock {
		vb := h.blockOn(p, slot, nil)
		h.step(h.c.AcceptBlock(vb, math.MaxUint64))
		return vb
	}
	// Slots belong to producer slot mod 4. Branch A: producers 1, 2, 3 in
	// slots 1-3: A1 is irreversible on it. Branch B: producers 0 and 1 in
	// slots 4, 5, 8, 9: taller, but only two producers built on it.
	a1, a2, a3 := build(a, 1, 1), build(a, 2, 2), build(a, 3, 3)
	b1, b2, b3, b4 := build(b, 0, 4), build(b, 1, 5), build(b, 0, 8), build(b, 1, 9)
	for _, vb := range []*sigverify.VerifiedBlock{b1, b2, b3, b4, a1, a2} {
		c.step(c.c.AcceptBlock(vb, math.MaxUint64))
	}
	if v := c.c.View(); v.Head.ID != b4.ID || v.LIB.Height != 0 {
		t.Fatalf("before A3: head %d, lib %d; want B4 and nothing irreversible", v.Head.Height, v.LIB.Height)
	}
	r := c.step(c.c.AcceptBlock(a3, math.MaxUint64))
	if v := c.c.View(); v.Head.ID != a3.ID || v.LIB.ID != a1.ID {
		t.Fatalf("after A3: head %d (%x), lib %d; want A3 and A1 irreversible", v.Head.Height, v.Head.ID[:4], v.LIB.Height)
	}
	if len(r.Reorg.Removed) != 4 || len(r.Reorg.Added) != 3 {
		t.Fatalf("reorg removed %d, added %d; want B1-B4 out, A1-A3 in", len(r.Reorg.Removed), len(r.Reorg.Added))
	}
	// Branch B is gone with everything not above A1.
	if c.c.Block(b4.ID) != nil {
		t.Fatal("a block of the dropped branch is still in the fork database")
	}
}

// BuildUntil stops packing when its stop function says so, asked every
// StopCheckEvery candidates with the count included so far; the block
// holds what was included before, and it commits like any other.
func TestBuildUntilStops(t *testing.T) {
	const candidates = 3*StopCheckEvery + 10
	for _, tc := range []struct {
		name      string
		stopAfter int // stop once this many are included (0: never)
		want      int
	}{
		{"never", 0, candidates},
		{"at the first check", 1, StopCheckEvery},
		{"at the third check", 2*StopCheckEvery + 1, 3 * StopCheckEvery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, 2)
			var txs []*protocol.Transaction
			for i := range candidates {
				txs = append(txs, h.transfer(0, 1, 1, uint64(i+1)))
			}
			var calls []int
			stop := func(included int) bool {
				calls = append(calls, included)
				return tc.stopAfter > 0 && included >= tc.stopAfter
			}
			prop, err := h.c.BuildUntil(h.c.SlotTime(1), h.producers[0].Address(), h.verify(txs...), stop)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(prop.Block.Transactions); got != tc.want {
				t.Fatalf("block holds %d transactions, want %d (stop asked with %v)", got, tc.want, calls)
			}
			for k, n := range calls {
				if n != (k+1)*StopCheckEvery {
					t.Fatalf("stop asked with %v, want multiples of %d", calls, StopCheckEvery)
				}
			}
			if _, err := h.c.Commit(prop, h.producers[0].Sign(prop.ID)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// After a partition heals, fork choice may move a producer to a lower
// branch (one that finalizes more). Building on it at a height where the
// producer already signed a block of its old branch would be double
// production, which taints both branches on every node holding the two
// and leaves them stuck below (TestPartitionAndHeal in node saw it): the
// producer must refuse until the branch has passed that height.
func TestNoSecondBlockAtASignedHeight(t *testing.T) {
	c := newHarness(t, 4, 2) // producer 3's node, on side B
	mk := func() *harness {
		h := &harness{t: t, g: c.g, store: newMemStorage(), producers: c.producers, users: c.users, ckEvery: 1}
		h.open()
		return h
	}
	a := mk() // side A: producers 0 and 1
	build := func(h *harness, p int, slot uint64) *sigverify.VerifiedBlock {
		vb := h.blockOn(p, slot, nil)
		h.step(h.c.AcceptBlock(vb, math.MaxUint64))
		return vb
	}
	// Slots belong to producer slot mod 4. Shared: S1 (1), S2 (2). Then
	// side B builds B3 (3), B4 (2), B5 (3): taller, but it finalizes only
	// S1; side A builds A3 (0), A4 (1), which finalizes S2.
	s1, s2 := build(c, 1, 1), build(c, 2, 2)
	for _, vb := range []*sigverify.VerifiedBlock{s1, s2} {
		a.step(a.c.AcceptBlock(vb, math.MaxUint64))
	}
	c.produce(3) // B3, slot 3
	build(c, 2, 6)
	_, b5 := c.produce(3) // B5, slot 7, height 5
	a3, a4 := build(a, 0, 4), build(a, 1, 5)
	// The heal: producer 3's node gets side A's blocks and moves to A4.
	for _, vb := range []*sigverify.VerifiedBlock{a3, a4} {
		c.step(c.c.AcceptBlock(vb, math.MaxUint64))
	}
	if v := c.c.View(); v.Head.ID != a4.ID || v.LIB.ID != s2.ID {
		t.Fatalf("after the heal: head %d, lib %d; want A4 and S2 irreversible", v.Head.Height, v.LIB.Height)
	}
	// Its next slot would put a second block of producer 3 at height 5.
	_, err := c.c.Build(c.c.SlotTime(11), c.producers[3].Address(), nil)
	if !errors.Is(err, ErrSignedAtHeight) {
		t.Fatalf("built at height 5 beside B5 (%x): err %v, want ErrSignedAtHeight", b5.ID[:4], err)
	}
	// Once side A has passed height 5, producer 3 builds on it again.
	c.step(c.c.AcceptBlock(build(a, 0, 8), math.MaxUint64))
	_, p := c.produce(3)
	if v := c.c.View(); v.Head.ID != p.ID || v.Head.Height != 6 {
		t.Fatalf("producer 3's block at height 6 is not head (head %d)", v.Head.Height)
	}
}
