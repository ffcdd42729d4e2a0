package chain

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// wasmModule assembles a module with one memory page and one exported
// _start function of the given body (locals and instructions, without the
// end byte).
func wasmModule(body ...byte) []byte {
	body = append(body, 0x0b)
	code := append([]byte{0x01, byte(len(body))}, body...)
	m := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	m = append(m, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00) // type () -> ()
	m = append(m, 0x03, 0x02, 0x01, 0x00)             // one function of type 0
	m = append(m, 0x05, 0x03, 0x01, 0x00, 0x01)       // memory, one page
	m = append(m, 0x07, 0x0a, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00)
	m = append(m, 0x0a, byte(len(code)))
	return append(m, code...)
}

var (
	// returns: _start returns at once (success, no result).
	wasmReturns = wasmModule(0x00)
	// endless: loop br 0 end.
	wasmEndless = wasmModule(0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b)
	// recursive: _start calls itself.
	wasmRecursive = wasmModule(0x00, 0x10, 0x00)
	// memoryGrab: loop (drop (memory.grow 100)) br 0 end.
	wasmMemoryGrab = wasmModule(0x00, 0x03, 0x40, 0x41, 0xe4, 0x00, 0x40, 0x00, 0x1a, 0x0c, 0x00, 0x0b)
)

// contractTx is a transaction paid by user payer with the given nonce and
// rc_limit, signed by the payer and the extra signers.
func (h *harness) contractTx(payer int, nonce, rc uint64, extra []keys.Signer, ops ...*protocol.Operation) *protocol.Transaction {
	h.t.Helper()
	tx, err := txbuilder.Build(txbuilder.Header{ChainID: h.c.Limits().ChainID, Nonce: nonce, RcLimit: rc, Payer: h.users[payer].Address()}, ops...)
	if err != nil {
		h.t.Fatal(err)
	}
	txbuilder.Sign(tx, append([]keys.Signer{h.users[payer]}, extra...)...)
	return tx
}

func uploadOp(id koinos.Address, code []byte, abi string) *protocol.Operation {
	return &protocol.Operation{Op: &protocol.Operation_UploadContract{UploadContract: &protocol.UploadContractOperation{ContractId: id.Bytes(), Bytecode: code, Abi: abi}}}
}

func callOp(id []byte, ep uint32, args []byte) *protocol.Operation {
	return &protocol.Operation{Op: &protocol.Operation_CallContract{CallContract: &protocol.CallContractOperation{ContractId: id, EntryPoint: ep, Args: args}}}
}

// TestHostileContracts: contracts that loop forever, recurse without end
// or grab memory, and calls to contracts that do not exist, are stopped,
// reverted and charged inside a block that is still produced; bad uploads
// are refused with a clear reason.
func TestHostileContracts(t *testing.T) {
	h := newHarness(t, 1, 2)
	owners := map[string]keys.Signer{}
	codes := map[string][]byte{"returns": wasmReturns, "endless": wasmEndless, "recursive": wasmRecursive, "memory": wasmMemoryGrab}
	nonce := uint64(0)
	var ups []*protocol.Transaction
	for name, code := range codes {
		k := keys.Ed25519FromSeed(seed("contract-" + name))
		owners[name] = k
		nonce++
		ups = append(ups, h.contractTx(1, nonce, 500_000_000, []keys.Signer{k}, uploadOp(k.Address(), code, `{"methods":{}}`)))
	}
	_, prop := h.produce(0, ups...)
	if len(prop.Failed) != 0 || len(prop.Block.Transactions) != len(codes) {
		t.Fatalf("uploads: %d included, failed %v", len(prop.Block.Transactions), prop.Failed)
	}
	for i, r := range prop.Block.Transactions {
		if rec := h.receiptOf(prop, i); rec.Reverted {
			t.Fatalf("upload %x reverted: %v", r.Id, rec.Logs)
		}
	}
	for name, k := range owners {
		code, meta, abi, found, err := h.c.View().Contract(k.Address().Bytes())
		if err != nil || !found || !bytes.Equal(code, codes[name]) || abi != `{"methods":{}}` || len(meta.Hash) != 34 {
			t.Fatalf("%s stored as %d bytes, %v, %q, %v, %v", name, len(code), meta, abi, found, err)
		}
	}

	stranger := keys.Ed25519FromSeed(seed("stranger"))
	const rc = 50_000_000
	tests := []struct {
		name     string
		tx       func(nonce uint64) *protocol.Transaction
		reverted string // "" for success, else a piece of the reason
		fails    chainpb.ErrorCode
	}{
		{"returns", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, callOp(owners["returns"].Address().Bytes(), 1, nil))
		}, "", 0},
		{"endless loop", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, callOp(owners["endless"].Address().Bytes(), 1, nil))
		}, "ran out of compute", 0},
		{"recursion", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, callOp(owners["recursive"].Address().Bytes(), 1, nil))
		}, "call depth", 0},
		{"memory grab", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, callOp(owners["memory"].Address().Bytes(), 1, nil))
		}, "ran out of compute", 0},
		{"missing contract", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, callOp(stranger.Address().Bytes(), 1, nil))
		}, "does not exist", 0},
		{"malformed bytecode", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, []keys.Signer{stranger}, uploadOp(stranger.Address(), []byte("\x00asm garbage"), ""))
		}, "upload_contract", 0},
		{"replacing the native token", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, uploadOp(h.c.Token().ID(), wasmReturns, ""))
		}, "native token", 0},
		{"upload without the contract's signature", func(n uint64) *protocol.Transaction {
			return h.contractTx(1, n, rc, nil, uploadOp(stranger.Address(), wasmReturns, ""))
		}, "", chainpb.ErrorCode_authorization_failure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := h.c.View().RC(h.users[1].Address())
			_, n := h.account(1)
			_, prop := h.produce(0, tt.tx(n+1), h.transfer(0, 1, 5, h.nextNonce(0)))
			if tt.fails != 0 {
				if len(prop.Failed) != 1 || codeOf(prop.Failed[0].Err) != tt.fails {
					t.Fatalf("failed = %v, want code %v", prop.Failed, tt.fails)
				}
				return
			}
			if len(prop.Failed) != 0 || len(prop.Block.Transactions) != 2 {
				t.Fatalf("%d included, failed %v", len(prop.Block.Transactions), prop.Failed)
			}
			rec := h.receiptOf(prop, 0)
			if got := rec.Reverted; got != (tt.reverted != "") || !strings.Contains(strings.Join(rec.Logs, "\n"), tt.reverted) {
				t.Fatalf("reverted %v, logs %q; want reverted with %q", got, rec.Logs, tt.reverted)
			}
			if rec.RcUsed == 0 || rec.RcUsed > rc {
				t.Fatalf("charged %d rc of a %d limit", rec.RcUsed, rc)
			}
			after, _ := h.c.View().RC(h.users[1].Address())
			if after+rec.RcUsed < before { // the transfer in gives mana back
				t.Fatalf("mana %d -> %d, charged %d", before, after, rec.RcUsed)
			}
			if h.receiptOf(prop, 1).Reverted {
				t.Fatal("the transfer beside it reverted")
			}
		})
	}
}

// nextNonce is the next nonce of user i at the head.
func (h *harness) nextNonce(i int) uint64 {
	_, n := h.account(i)
	return n + 1
}

// receiptOf is the receipt of the proposal's i-th transaction.
func (h *harness) receiptOf(p *Proposal, i int) *protocol.TransactionReceipt {
	h.t.Helper()
	rs := p.node.entry.Receipt.TransactionReceipts
	if i >= len(rs) {
		h.t.Fatalf("receipt %d of %d", i, len(rs))
	}
	return rs[i]
}

// TestContractsReplayAndRestart: blocks with uploads and contract calls,
// applied by a second chain from the same genesis, give the same state
// roots; a restarted chain still knows its contracts (their code, and
// that they are contracts for authority checks).
func TestContractsReplayAndRestart(t *testing.T) {
	h := newHarness(t, 1, 2)
	other := newHarness(t, 1, 2)
	k := keys.Ed25519FromSeed(seed("contract-returns"))
	var blocks []*protocol.Block
	r, _ := h.produce(0, h.contractTx(1, 1, 500_000_000, []keys.Signer{k}, uploadOp(k.Address(), wasmReturns, "{}")))
	blocks = append(blocks, r.Accepted[0].Block)
	r, _ = h.produce(0, h.contractTx(1, 2, 50_000_000, nil, callOp(k.Address().Bytes(), 1, nil)), h.transfer(0, 1, 7, 1))
	blocks = append(blocks, r.Accepted[0].Block)
	for _, b := range blocks {
		vb, err := sigverify.VerifyBlock(b, other.c.Limits(), 0)
		if err != nil {
			t.Fatal(err)
		}
		other.step(other.c.AcceptBlock(vb, math.MaxUint64))
	}
	if a, b := h.c.View().HeadStateRoot, other.c.View().HeadStateRoot; a != b {
		t.Fatalf("state roots differ: %x and %x", a, b)
	}
	for range 3 { // past a checkpoint (every block) and an irreversible block
		h.produce(0)
	}
	h.open()
	if !h.c.contracts.has(k.Address().Bytes()) {
		t.Fatal("the restarted chain forgot the contract")
	}
	_, prop := h.produce(0, h.contractTx(1, 3, 50_000_000, nil, callOp(k.Address().Bytes(), 1, nil)))
	if len(prop.Failed) != 0 || h.receiptOf(prop, 0).Reverted {
		t.Fatalf("call after restart: failed %v, logs %v", prop.Failed, h.receiptOf(prop, 0).Logs)
	}
}

// TestStopAskedAfterContracts: block production asks its stop function
// after every transaction that ran a contract, not only every
// StopCheckEvery transactions, so a slow contract cannot hold a
// producer past its time budget for 63 more.
func TestStopAskedAfterContracts(t *testing.T) {
	h := newHarness(t, 1, 2)
	k := keys.Ed25519FromSeed(seed("contract-endless"))
	h.produce(0, h.contractTx(1, 1, 500_000_000, []keys.Signer{k}, uploadOp(k.Address(), wasmEndless, "{}")))
	var txs []*protocol.Transaction
	for n := uint64(2); n < 6; n++ {
		txs = append(txs, h.contractTx(1, n, 10_000_000, nil, callOp(k.Address().Bytes(), 1, nil)))
	}
	asked := 0
	prop, err := h.c.BuildUntil(h.c.SlotTime(h.nextSlotOf(0, h.c.HeadTime())), h.producers[0].Address(), h.verify(txs...), func(int) bool {
		asked++
		return asked == 2
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(prop.Block.Transactions) != 2 || asked != 2 {
		t.Fatalf("%d transactions included, stop asked %d times; want 2 and 2", len(prop.Block.Transactions), asked)
	}
}

// TestBlockComputeLimit: contracts share the block's compute limit. A
// contract transaction that finds the block's compute used up by others
// stays pending for the next block (neither included nor dropped); alone
// in a block it is bounded by the limit, reverted and charged.
func TestBlockComputeLimit(t *testing.T) {
	h := newHarness(t, 1, 2)
	const limit = 3_000_000
	params := h.c.params.CloneVT()
	params.Resources.ComputeBandwidthLimit = limit
	h.c.params = params // the chain reads its limits from here
	k := keys.Ed25519FromSeed(seed("contract-endless"))
	h.produce(0, h.contractTx(1, 1, 500_000_000, []keys.Signer{k}, uploadOp(k.Address(), wasmEndless, "{}")))
	loop := func(nonce uint64) *protocol.Transaction {
		return h.contractTx(1, nonce, 500_000_000, nil, callOp(k.Address().Bytes(), 1, nil))
	}
	// Alone: bounded by the block, reverted, charged, included.
	_, prop := h.produce(0, loop(2))
	if len(prop.Block.Transactions) != 1 || !h.receiptOf(prop, 0).Reverted || len(prop.Failed) != 0 {
		t.Fatalf("alone: %d included, failed %v", len(prop.Block.Transactions), prop.Failed)
	}
	if used := prop.node.entry.Receipt.ComputeBandwidthUsed; used > limit {
		t.Fatalf("block used %d compute, over its limit of %d", used, limit)
	}
	// Behind a transaction that used some of the block: left for later.
	_, prop = h.produce(0, h.transfer(0, 1, 5, 1), loop(3))
	if len(prop.Block.Transactions) != 1 || len(prop.Failed) != 0 {
		t.Fatalf("behind a transfer: %d included, failed %v; want the transfer only, nothing failed", len(prop.Block.Transactions), prop.Failed)
	}
}
