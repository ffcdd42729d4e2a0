package chain

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/state"
	"github.com/emberchain/ember/engine/vm"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// usage is the resources a transaction or block uses.
type usage struct {
	disk, network, compute uint64
}

func (u *usage) add(o usage) {
	u.disk = satAdd(u.disk, o.disk)
	u.network = satAdd(u.network, o.network)
	u.compute = satAdd(u.compute, o.compute)
}

func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

// rcCost is the resource credits a usage costs at the genesis prices.
func (c *Chain) rcCost(u usage) uint64 {
	r := c.params.Resources
	return satAdd(satAdd(satMul(u.disk, r.DiskStorageCost), satMul(u.network, r.NetworkBandwidthCost)), satMul(u.compute, r.ComputeBandwidthCost))
}

func (c *Chain) fits(total, next usage) bool {
	total.add(next)
	r := c.params.Resources
	return total.disk <= r.DiskStorageLimit && total.network <= r.NetworkBandwidthLimit && total.compute <= r.ComputeBandwidthLimit
}

// txEnv is what one transaction application needs besides the transaction.
type txEnv struct {
	delta *state.Delta
	block *blockInfo // the block the transaction is applied in
	// ranContract: the transaction ran an uploaded contract or an upload.
	ranContract bool
	// blockCompute is the compute of the block's transactions before this
	// one: contracts may use only what the block has left.
	blockCompute uint64
	// exec, when set, is reused for this transaction's contract work (a
	// block's transactions run one after the other; nothing keeps an exec
	// past its transaction), so a transfer on a chain with contracts
	// allocates none.
	exec    *exec
	nowMs   uint64  // block time: mana regenerates up to it
	seq     *uint32 // next event sequence number in the block
	nonce   uint64  // when non-zero, the nonce expected instead of stored+1 (mempool admission)
	usage   usage
	reason  error                        // why the transaction reverted, if it did
	arena   *contracts.Arena             // event structs for the block (nil: allocate)
	receipt *protocol.TransactionReceipt // where to write the receipt (nil: allocate)
}

func failure(code chainpb.ErrorCode, format string, args ...any) error {
	return koinos.Errorf(code, format, args...)
}

// applyTx applies one verified transaction to env.delta in Koinos's order:
// payer mana must cover rc_limit; the nonce must be the next one; the nonce
// is written; the operations run and are rolled back if any reverts; the
// payer is charged the rc used either way.
//
// A returned error is a failure: the transaction is invalid here and must
// not be in a block, and env.delta may hold some of its writes (the caller
// reverts to a mark). Reversions are not errors: the receipt says reverted.
func (c *Chain) applyTx(env *txEnv, v *sigverify.VerifiedTx) (*protocol.TransactionReceipt, error) {
	d := env.delta
	regen := c.params.ManaRegenMs
	payer := v.Payer()
	pacct, _, err := d.Account(payer)
	if err != nil {
		return nil, err
	}
	maxRC := pacct.CurrentMana(env.nowMs, regen)
	if v.RcLimit() > maxRC {
		return nil, failure(chainpb.ErrorCode_insufficient_rc, "payer %s has %d mana, less than the transaction's rc_limit of %d", payer, maxRC, v.RcLimit())
	}
	na := v.NonceAccount()
	nacct := pacct
	if na != payer {
		if nacct, _, err = d.Account(na); err != nil {
			return nil, err
		}
	}
	want := nacct.Nonce + 1
	if env.nonce != 0 {
		want = env.nonce
	}
	if v.Nonce() != want {
		return nil, failure(chainpb.ErrorCode_invalid_nonce, "nonce %d is not the next nonce of account %s: expected %d", v.Nonce(), na, want)
	}
	nacct.Nonce = v.Nonce()
	d.SetAccount(na, nacct)

	costs := c.params.Compute
	u := usage{network: uint64(v.Size())}
	u.compute = satAdd(costs.TransactionBase, satMul(costs.Signature, uint64(len(v.Tx().Signatures))))
	mark := d.Mark()
	call := contracts.Call{State: d, Authorized: v, NowMs: env.nowMs, Arena: env.arena}
	// x runs contract operations; a transaction of native transfers on a
	// chain without contracts never needs one.
	var x *exec
	if c.contracts.any() {
		x = c.newExec(env, v)
		x.auth = tokenAuthority{x: x, fuel: c.maxContractCompute()}
		call.Authorized = &x.auth
	}
	var (
		reverted        error
		logs            []string
		contractCompute uint64
	)
	for i, op := range v.Tx().Operations {
		u.compute = satAdd(u.compute, costs.OperationBase)
		if x != nil {
			x.op = op
		}
		var err error
		switch {
		case op.GetCallContract() != nil && string(op.GetCallContract().ContractId) == string(c.tokenID):
			cc := op.GetCallContract()
			_, err = c.token.Call(&call, cc.EntryPoint, cc.Args)
			if err == nil && x != nil && x.err != nil {
				err = x.err
			}
		case op.GetCallContract() != nil || op.GetUploadContract() != nil:
			if x == nil {
				x = c.newExec(env, v)
			}
			x.op = op
			env.ranContract = true
			spent := u
			spent.compute = satAdd(spent.compute, call.Compute)
			spent.disk = satAdd(call.Disk, x.disk)
			fuel, blockBound := c.fuelFor(v, spent, contractCompute, env.blockCompute)
			var used uint64
			if cc := op.GetCallContract(); cc != nil {
				var res *vm.Result
				res, err = x.call(nil, cc.ContractId, cc.EntryPoint, cc.Args, fuel, false)
				if res != nil {
					used = res.Compute
					logs = append(logs, res.Logs...)
					if err == nil {
						call.Events = append(call.Events, res.Events...)
					}
				}
			} else {
				used, err = x.upload(op.GetUploadContract(), fuel)
			}
			call.Compute = satAdd(call.Compute, used)
			contractCompute = satAdd(contractCompute, used)
			if blockBound && used >= fuel && koinos.CodeOf(err) == chainpb.ErrorCode_insufficient_rc {
				// The block's compute ran out, not the transaction's rc: the
				// transaction does not fit this block (it may fit the next).
				return nil, failure(chainpb.ErrorCode_compute_bandwidth_limit_exceeded, "operation %d: the block has %d compute left, less than the contract needs", i, fuel)
			}
		default:
			return nil, failure(chainpb.ErrorCode_failure, "operation %d: set_system_call and set_system_contract are not supported: Ember has no system contracts to replace", i)
		}
		if err != nil {
			var ke *koinos.Error
			if !errors.As(err, &ke) || !ke.IsReversion() {
				return nil, err
			}
			reverted = fmt.Errorf("operation %d: %w", i, err)
			break
		}
	}
	u.compute = satAdd(u.compute, call.Compute)
	u.disk = call.Disk
	if x != nil {
		u.disk = satAdd(u.disk, x.disk)
	}
	rcUsed := c.rcCost(u)
	if reverted == nil && rcUsed > v.RcLimit() {
		reverted = failure(chainpb.ErrorCode_insufficient_rc, "transaction uses %d rc, more than its rc_limit of %d", rcUsed, v.RcLimit())
	}
	// The payer after the operations; reverting puts it back as it was
	// after the nonce write.
	if pacct, _, err = d.Account(payer); err != nil {
		return nil, err
	}
	mana := pacct.CurrentMana(env.nowMs, regen)
	if reverted == nil && mana < rcUsed {
		reverted = failure(chainpb.ErrorCode_insufficient_rc, "payer %s has %d mana left after the operations, less than the %d rc they use", payer, mana, rcUsed)
	}
	if reverted != nil {
		d.Revert(mark)
		call.Events = nil
		if pacct, _, err = d.Account(payer); err != nil {
			return nil, err
		}
		mana = pacct.CurrentMana(env.nowMs, regen)
	}
	charged := min(rcUsed, v.RcLimit())
	// Cannot underflow: after a revert the mana is at least maxRC >=
	// rc_limit; otherwise it was just checked against rcUsed.
	pacct.Mana = mana - charged
	pacct.ManaUpdatedMs = env.nowMs
	d.SetAccount(payer, pacct)

	for _, e := range call.Events {
		e.Sequence = *env.seq
		*env.seq++
	}
	r := env.receipt
	if r == nil {
		r = &protocol.TransactionReceipt{}
	}
	r.Id = v.Tx().Id
	r.Payer = v.Tx().Header.Payer
	r.MaxPayerRc = maxRC
	r.RcLimit = v.RcLimit()
	r.RcUsed = charged
	r.DiskStorageUsed = u.disk
	r.NetworkBandwidthUsed = u.network
	r.ComputeBandwidthUsed = u.compute
	r.Reverted = reverted != nil
	r.Events = call.Events
	r.Logs = logs
	if reverted != nil {
		r.Logs = append(r.Logs, reverted.Error())
	}
	env.usage = u
	env.reason = reverted
	return r, nil
}

func addrOrZero(b []byte) (a koinos.Address) {
	copy(a[:], b)
	return a
}

// Failed is a transaction the producer left out of a block, and why.
type Failed struct {
	Tx  *sigverify.VerifiedTx
	Err error
}

// execution is the outcome of applying a list of transactions to a delta.
type execution struct {
	receipts []*protocol.TransactionReceipt
	included []*sigverify.VerifiedTx
	failed   []Failed
	usage    usage
}

// execute applies txs to d in the block blk. With build false every
// transaction must apply and fit (a block being validated); with build true
// failing transactions are left out and reported, and filling stops at the
// block limits or when stop says so (a block being produced).
func (c *Chain) execute(d *state.Delta, txs []*sigverify.VerifiedTx, blk blockInfo, build bool, stop func(included int) bool) (*execution, error) {
	ex := &execution{receipts: make([]*protocol.TransactionReceipt, 0, len(txs))}
	if build {
		ex.included = make([]*sigverify.VerifiedTx, 0, len(txs))
	}
	maxTxs := c.params.Limits.MaxBlockTransactions
	var seq uint32
	// Receipts and events are allocated for the whole block at once.
	slab := make([]protocol.TransactionReceipt, len(txs))
	arena := &contracts.Arena{}
	shared := new(exec)
	// A transaction that ran a contract may have taken far longer than a
	// transfer: the stop function is asked after each such one.
	ranContract := false
	for i, v := range txs {
		if build && uint64(len(ex.included)) >= maxTxs {
			break
		}
		if stop != nil && i > 0 && (ranContract || i%StopCheckEvery == 0) && stop(len(ex.included)) {
			break
		}
		d.Settle() // the previous transaction is final
		mark := d.Mark()
		env := txEnv{delta: d, block: &blk, nowMs: blk.timeMs, seq: &seq, arena: arena, receipt: &slab[i], blockCompute: ex.usage.compute, exec: shared}
		r, err := c.applyTx(&env, v)
		ranContract = env.ranContract
		if build && err != nil && koinos.CodeOf(err) == chainpb.ErrorCode_compute_bandwidth_limit_exceeded {
			// The block is full of compute: the transaction stays pending
			// for the next one, as one that does not fit below.
			d.Revert(mark)
			break
		}
		if err == nil && !c.fits(ex.usage, env.usage) {
			if build {
				d.Revert(mark)
				break
			}
			err = failure(chainpb.ErrorCode_block_resource_failure, "transactions exceed the block's resource limits at transaction %d", i)
		}
		if err != nil {
			if !build || !isTxFailure(err) {
				return nil, wrapTx(i, err)
			}
			d.Revert(mark)
			ex.failed = append(ex.failed, Failed{Tx: v, Err: err})
			continue
		}
		ex.usage.add(env.usage)
		ex.receipts = append(ex.receipts, r)
		if build {
			ex.included = append(ex.included, v)
		}
	}
	return ex, nil
}

// isTxFailure reports whether err is the transaction's fault (a chain
// failure code) rather than the node's (a storage error).
func isTxFailure(err error) bool {
	var ke *koinos.Error
	return errors.As(err, &ke) && ke.Code != chainpb.ErrorCode_internal_error
}

func wrapTx(i int, err error) error {
	var ke *koinos.Error
	if errors.As(err, &ke) {
		return &koinos.Error{Code: ke.Code, Message: fmt.Sprintf("transaction %d: %s", i, ke.Message), Logs: ke.Logs}
	}
	return fmt.Errorf("transaction %d: %w", i, err)
}

func blockReceipt(id koinos.Digest, height uint64, ex *execution, stateRoot koinos.Digest) *protocol.BlockReceipt {
	return &protocol.BlockReceipt{
		Id:                      id.Multihash(),
		Height:                  height,
		DiskStorageUsed:         ex.usage.disk,
		NetworkBandwidthUsed:    ex.usage.network,
		ComputeBandwidthUsed:    ex.usage.compute,
		StateMerkleRoot:         stateRoot.Multihash(),
		TransactionReceipts:     ex.receipts,
		DiskStorageCharged:      ex.usage.disk,
		NetworkBandwidthCharged: ex.usage.network,
		ComputeBandwidthCharged: ex.usage.compute,
	}
}
