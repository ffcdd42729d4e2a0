package bench

import (
	"fmt"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// deployEngineToken builds, on e (the scratch chain), the blocks that
// deploy the WASM token: the upload, then the mints of WasmTokenMint to
// every account, as many blocks as the block limits take. It refuses a
// setup transaction that reverts, with the chain's reason. Then it checks
// one transfer against the head (CheckTransaction, as mempool admission
// does; nothing is included) and sizes the rc_limit from its receipt. It
// returns the setup blocks, verified, for the measured chains to apply
// before their clocks start.
func deployEngineToken(e *engineChain, prod keys.Signer, ks []keys.Signer, seed string, code []byte) ([]*sigverify.VerifiedBlock, transferTarget, WorkloadInfo, error) {
	fail := func(err error) ([]*sigverify.VerifiedBlock, transferTarget, WorkloadInfo, error) {
		return nil, transferTarget{}, WorkloadInfo{}, err
	}
	lim := e.c.Limits()
	ck := ContractKey(seed)
	up, err := uploadTx(ck, code, lim.ChainID, 1)
	if err != nil {
		return fail(fmt.Errorf("bench: upload transaction: %w", err))
	}
	addrs := make([]koinos.Address, len(ks))
	for i, k := range ks {
		addrs[i] = k.Address()
	}
	mints, err := mintTxs(ck, addrs, lim.MaxOperations, lim.ChainID, 2)
	if err != nil {
		return fail(fmt.Errorf("bench: mint transactions: %w", err))
	}
	txs := append([]*protocol.Transaction{up}, mints...)
	vtxs := make([]*sigverify.VerifiedTx, len(txs))
	for i, tx := range txs {
		if vtxs[i], err = sigverify.Verify(tx, lim); err != nil {
			return fail(fmt.Errorf("bench: setup transaction %d: %w", i, err))
		}
	}
	var setup []*sigverify.VerifiedBlock
	// The upload alone first: the mints need the contract in the state.
	for _, batch := range [][]*sigverify.VerifiedTx{vtxs[:1], vtxs[1:]} {
		for len(batch) > 0 {
			slot := uint64(len(setup) + 1)
			prop, err := e.c.Build(e.c.SlotTime(slot), prod.Address(), batch)
			if err != nil {
				return fail(fmt.Errorf("bench: setup block %d: %w", slot, err))
			}
			if len(prop.Failed) > 0 {
				return fail(fmt.Errorf("bench: setup block %d refused a transaction: %w", slot, prop.Failed[0].Err))
			}
			in := len(prop.Block.Transactions)
			if in == 0 {
				return fail(fmt.Errorf("bench: setup block %d holds none of %d transactions", slot, len(batch)))
			}
			r, err := e.c.Commit(prop, prod.Sign(prop.ID))
			if err != nil {
				return fail(fmt.Errorf("bench: setup block %d: %w", slot, err))
			}
			if err := e.st.Commit(r); err != nil {
				return fail(fmt.Errorf("bench: store setup block %d: %w", slot, err))
			}
			e.c.Advance(r)
			rec, err := receiptOf(r, prop.Block)
			if err != nil {
				return fail(err)
			}
			for i, tr := range rec.TransactionReceipts {
				if tr.Reverted {
					what := "a mint transaction"
					if string(prop.Block.Transactions[i].Id) == string(up.Id) {
						what = "the upload of --contract"
					}
					return fail(fmt.Errorf("bench: %s reverted: %s", what, revertReason(tr)))
				}
			}
			vb, err := sigverify.VerifyBlock(prop.Block, lim, e.c.MaxBlockTransactions())
			if err != nil {
				return fail(fmt.Errorf("bench: verify setup block %d: %w", slot, err))
			}
			setup = append(setup, vb)
			batch = batch[in:]
		}
	}
	probe, err := probeTransfer(ks, ck.Address(), lim.ChainID, 1)
	if err != nil {
		return fail(fmt.Errorf("bench: probe transfer: %w", err))
	}
	vp, err := sigverify.Verify(probe, lim)
	if err != nil {
		return fail(fmt.Errorf("bench: probe transfer: %w", err))
	}
	rec, err := e.c.View().CheckTransaction(vp, 1, e.c.HeadTime())
	if err != nil {
		return fail(fmt.Errorf("bench: checking a WASM transfer: %w", err))
	}
	if rec.Reverted || rec.RcUsed == 0 {
		return fail(fmt.Errorf("bench: a WASM transfer checked against the chain reverts: %s", revertReason(rec)))
	}
	tt := transferTarget{token: ck.Address(), rcLimit: WasmRCLimit(rec.RcUsed)}
	w := WorkloadInfo{Name: WorkloadWasmToken, Contract: ck.Address().String(), ContractBytes: len(code),
		ProbeRCUsed: rec.RcUsed, ProbeCompute: rec.ComputeBandwidthUsed, SetupTxs: len(txs)}
	return setup, tt, w, nil
}

// acceptSetup applies the setup blocks to a measured chain, untimed.
func acceptSetup(e *engineChain, setup []*sigverify.VerifiedBlock) error {
	for i, vb := range setup {
		r, err := e.c.AcceptBlock(vb, vb.Block.Header.Timestamp)
		if err != nil {
			return fmt.Errorf("bench: accept setup block %d: %w", i+1, err)
		}
		if err := e.st.Commit(r); err != nil {
			return fmt.Errorf("bench: store setup block %d: %w", i+1, err)
		}
		e.c.Advance(r)
	}
	return nil
}

// receiptOf is the receipt of blk among the blocks r accepted.
func receiptOf(r *chain.Ready, blk *protocol.Block) (*protocol.BlockReceipt, error) {
	for _, e := range r.Accepted {
		if string(e.Block.Id) == string(blk.Id) {
			return e.Receipt, nil
		}
	}
	return nil, fmt.Errorf("bench: block %d is not among the blocks its step accepted", blk.Header.Height)
}

// receiptTotals sums a measured block's compute and rc over its
// transactions, and refuses a block where one reverted: a reverted
// transfer is committed, but moved nothing, and would count as work done.
func receiptTotals(r *chain.Ready, blk *protocol.Block) (compute, rc float64, err error) {
	rec, err := receiptOf(r, blk)
	if err != nil {
		return 0, 0, err
	}
	for _, tr := range rec.TransactionReceipts {
		if tr.Reverted {
			return 0, 0, fmt.Errorf("bench: a transfer of block %d reverted: %s", blk.Header.Height, revertReason(tr))
		}
		compute += float64(tr.ComputeBandwidthUsed)
		rc += float64(tr.RcUsed)
	}
	return compute, rc, nil
}

// checkTokenBalances reads every account's balance of the token at e's
// head (balance_of, as chain.read_contract does) and compares it with
// what n transfers of the engine's sequence leave.
func checkTokenBalances(e *engineChain, ks []keys.Signer, token koinos.Address, n int) error {
	want := TokenBalancesAfter(len(ks), n)
	for a, k := range ks {
		res, _, err := e.c.View().ReadContract(token.Bytes(), wasmTokenBalanceOf, balanceOfArgs(k.Address()))
		if err != nil {
			return fmt.Errorf("bench: balance_of %s: %w", k.Address(), err)
		}
		got, err := decodeBalance(res)
		if err != nil {
			return err
		}
		if got != want[a] {
			return fmt.Errorf("bench: account %d (%s) holds %d of the token after the transfers, want %d", a, k.Address(), got, want[a])
		}
	}
	return nil
}
