package chain

import (
	"sync/atomic"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/state"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

type viewPointer = atomic.Pointer[View]

// View is the chain as of one advanced step: the head, the last
// irreversible block and the state at the head. It is immutable and safe
// for any goroutine; take a new one (Chain.View) to see later blocks.
type View struct {
	c             *Chain
	Head          Topology
	HeadTime      uint64
	HeadStateRoot koinos.Digest
	LIB           Topology
	ForkHeads     []Topology // best first
	headDelta     *state.Delta
	headFinal     uint64 // the last irreversible height the head's branch sets
	reader        state.Reader
}

func (c *Chain) newView() *View {
	h := c.fork.head
	v := &View{c: c, Head: h.topo, HeadTime: h.timestamp, HeadStateRoot: h.stateRoot, LIB: c.fork.root.topo, headDelta: h.delta, headFinal: h.final}
	v.reader = c.base
	if h.delta != nil {
		v.reader = h.delta
	}
	for _, l := range c.fork.leaves() {
		v.ForkHeads = append(v.ForkHeads, l.topo)
	}
	return v
}

// View returns the latest advanced view; nil before the first Advance.
func (c *Chain) View() *View { return c.view.Load() }

// ChainID is the chain id digest.
func (v *View) ChainID() koinos.Digest { return v.c.chainID }

// Account returns an account's record at the head (zero if none).
func (v *View) Account(a koinos.Address) (state.Account, error) {
	acct, _, err := v.reader.Account(a)
	return acct, err
}

// Nonce is the last nonce an account used (0: none yet).
func (v *View) Nonce(a koinos.Address) (uint64, error) {
	acct, err := v.Account(a)
	return acct.Nonce, err
}

// RC is an account's mana at the head block's time: what it may set as a
// transaction's rc_limit.
func (v *View) RC(a koinos.Address) (uint64, error) {
	acct, err := v.Account(a)
	return acct.CurrentMana(v.HeadTime, v.c.params.ManaRegenMs), err
}

// Supply is the token's total supply at the head.
func (v *View) Supply() uint64 { return v.reader.Supply() }

// ResourceLimits are the per-block limits and per-unit prices.
func (v *View) ResourceLimits() *chainpb.ResourceLimitData {
	return v.c.params.Resources.CloneVT()
}

// ReadContract calls an entry point read-only at the head: the native
// token, or an uploaded contract on the VM with at most the chain's
// read compute. It returns the result and the contract's log lines.
func (v *View) ReadContract(contract []byte, entryPoint uint32, args []byte) ([]byte, []string, error) {
	if string(contract) == string(v.c.tokenID) {
		call := contracts.Call{ReadOnly: true, Reader: v.reader, NowMs: v.HeadTime}
		res, err := v.c.token.Call(&call, entryPoint, args)
		return res, nil, err
	}
	if _, err := koinos.ParseAddress(contract); err != nil {
		return nil, nil, koinos.Errorf(chainpb.ErrorCode_invalid_contract, "contract_id: %v", err)
	}
	d := state.Scratch(v.c.base, v.headDelta)
	defer d.Release()
	x := &exec{c: v.c, d: d, nowMs: v.HeadTime, block: blockInfo{height: v.Head.Height, previous: v.Head.Previous, timeMs: v.HeadTime, lib: v.headFinal}}
	res, err := x.call(nil, contract, entryPoint, args, v.c.maxReadCompute, true)
	if res == nil {
		return nil, nil, err
	}
	return res.Value, res.Logs, err
}

// Contract returns an uploaded contract's bytecode, metadata and ABI at
// the head; found is false when no contract has the id (the native token
// included: its ABI is Token().ABI()).
func (v *View) Contract(id []byte) (bytecode []byte, meta *chainpb.ContractMetadataObject, abi string, found bool, err error) {
	d := state.Scratch(v.c.base, v.headDelta)
	defer d.Release()
	x := &exec{c: v.c, d: d}
	if meta, err = x.ContractMetadata(id); err != nil || meta == nil || meta.System {
		return nil, nil, "", false, err
	}
	if bytecode, _, err = d.Object(contractKey(spaceContractBytecode, id)); err != nil {
		return nil, nil, "", false, err
	}
	a, _, err := d.Object(contractKey(spaceContractABI, id))
	return bytecode, meta, string(a), err == nil, err
}

// CheckTransaction applies a verified transaction to a scratch copy of the
// head state at time nowMs, as mempool admission does (Koinos applies a
// submitted transaction off head the same way), and returns its receipt.
// nonce is the nonce it must carry: one past the account's last pending
// nonce. Failures are errors; reversions are receipts with reverted set.
func (v *View) CheckTransaction(tx *sigverify.VerifiedTx, nonce, nowMs uint64) (*protocol.TransactionReceipt, error) {
	d := state.Scratch(v.c.base, v.headDelta)
	defer d.Release()
	var seq uint32
	now := max(nowMs, v.HeadTime)
	blk := blockInfo{height: v.Head.Height + 1, previous: v.Head.ID, timeMs: now, lib: v.headFinal, prevStateRoot: v.HeadStateRoot}
	env := txEnv{delta: d, block: &blk, nowMs: now, seq: &seq, nonce: nonce}
	r, err := v.c.applyTx(&env, tx)
	if err != nil {
		return nil, err
	}
	if !v.c.fits(usage{}, env.usage) {
		return nil, koinos.Errorf(chainpb.ErrorCode_block_resource_failure, "transaction uses more resources than a block allows")
	}
	return r, nil
}

// ManaRegenMs is the mana regeneration window from genesis.
func (v *View) ManaRegenMs() uint64 { return v.c.params.ManaRegenMs }
