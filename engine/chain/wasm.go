package chain

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/state"
	"github.com/emberchain/ember/engine/vm"
	koinospb "github.com/emberchain/ember/proto/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Uploaded contracts live in system object spaces (empty zone), keyed by
// contract id: the bytecode and the metadata where koinos-chain keeps them
// (its contract_bytecode and contract_metadata spaces), and the ABI in a
// space of Ember's own: Koinos keeps ABIs outside the chain's state, in
// its contract_meta_store service, and Ember serves that service from the
// state so that it follows forks like the contracts do.
const (
	spaceContractBytecode uint32 = 2
	spaceContractMetadata uint32 = 3
	spaceContractABI      uint32 = 101
)

// Defaults of the genesis compute costs for contracts (a zero in the
// genesis takes these).
const (
	defaultUploadByteCompute  = 10
	defaultMaxContractCompute = 100_000_000
)

// authorizeEntryPoint is the entry point Koinos calls on a contract that
// overrides its account's authority (koinos-chain's authorize_entrypoint).
const authorizeEntryPoint uint32 = 0x4a2dbd90

// maxObjectValue is Koinos's largest object (state::max_object_size).
const maxObjectValue = 1 << 20

func contractKey(space uint32, id []byte) []byte {
	return state.ObjectKey(true, nil, space, id)
}

// blockInfo is what a contract may learn of the block it runs in. The id
// is not among it: a block's id commits to its transactions, which are
// not all known while the producer applies them, so a contract would see
// a different head on the producer than on the validators.
type blockInfo struct {
	height        uint64
	previous      koinos.Digest
	timeMs        uint64
	lib           uint64
	prevStateRoot koinos.Digest
	signer        []byte // empty in a mempool check
}

// exec runs one transaction's contract operations, or one read: it is the
// vm.Host contracts reach the chain through, and the authority the native
// token asks when a contract account is involved.
type exec struct {
	c     *Chain
	d     *state.Delta
	tx    *sigverify.VerifiedTx // nil in a read
	block blockInfo
	nowMs uint64
	// disk is the storage the contracts' object writes used.
	disk uint64
	// op is the transaction's operation being applied.
	op *protocol.Operation
	// blk is the block as contracts see it, built on first use.
	blk *protocol.Block
	// err is a node failure (a storage read) met where only a bool could
	// be returned, as in the native token's authority check: the
	// transaction cannot be applied.
	err error
	// auth is the native token's authority for the transaction's own
	// operations, kept here so that a transfer on a chain with contracts
	// costs one allocation, not two.
	auth tokenAuthority
}

var _ vm.Host = (*exec)(nil)

func (c *Chain) newExec(env *txEnv, v *sigverify.VerifiedTx) *exec {
	x := env.exec
	if x == nil {
		x = new(exec)
	}
	*x = exec{c: c, d: env.delta, tx: v, block: *env.block, nowMs: env.nowMs}
	return x
}

// loadContractIDs fills the contract set with the contracts of the last
// checkpoint; the blocks replayed after it add theirs as they upload.
func (c *Chain) loadContractIDs() error {
	prefix := state.SpacePrefix(true, nil, spaceContractMetadata)
	from := prefix
	for {
		k, _, found, err := c.store.SeekState(prefix, from, false)
		if err != nil {
			return fmt.Errorf("chain: list contracts: %w", err)
		}
		if !found {
			return nil
		}
		var dk chainpb.DatabaseKey
		if err := dk.UnmarshalVT(k); err != nil {
			return fmt.Errorf("chain: list contracts: stored key 0x%x does not decode", k)
		}
		c.contracts.add(dk.Key)
		from = k
	}
}

// Close releases the contracts' compiled code.
func (c *Chain) Close() error { return c.vm.Close() }

// fuelFor is the compute a contract operation may use: what the
// transaction's rc_limit still pays for, within the per-transaction cap
// and what the block has left (blockCompute is the block's compute before
// this transaction, u this transaction's so far). blockBound says the
// limit of a block that already holds other transactions is the tightest:
// running out then is the block's fault, not the transaction's.
func (c *Chain) fuelFor(v *sigverify.VerifiedTx, u usage, contractCompute, blockCompute uint64) (fuel uint64, blockBound bool) {
	fuel = c.maxContractCompute() - min(contractCompute, c.maxContractCompute())
	spent := c.rcCost(u)
	if spent >= v.RcLimit() {
		return 0, false
	}
	if cost := c.params.Resources.ComputeBandwidthCost; cost > 0 {
		fuel = min(fuel, (v.RcLimit()-spent)/cost)
	}
	used := satAdd(blockCompute, u.compute)
	left := c.params.Resources.ComputeBandwidthLimit - min(used, c.params.Resources.ComputeBandwidthLimit)
	if left < fuel {
		// First in its block, the transaction alone exceeds the block's
		// limit and never fits one: its own fault, charged as such.
		return left, blockCompute > 0
	}
	return fuel, false
}

func (c *Chain) maxContractCompute() uint64 {
	if m := c.params.Compute.GetMaxContractCompute(); m > 0 {
		return m
	}
	return defaultMaxContractCompute
}

func (c *Chain) uploadByteCompute() uint64 {
	if b := c.params.Compute.GetUploadByte(); b > 0 {
		return b
	}
	return defaultUploadByteCompute
}

// upload applies an upload_contract operation: the contract's account
// must authorize it (by signature, or by its own authorize entry point
// when the contract overrides upload authority); the bytecode must pass
// the VM's checks; bytecode, metadata and ABI are stored. It returns the
// compute used; a refused upload is a reversion.
func (x *exec) upload(op *protocol.UploadContractOperation, fuel uint64) (uint64, error) {
	c := x.c
	id := op.ContractId
	if _, ok := koinos.AddressShape(id); !ok {
		return 0, failure(chainpb.ErrorCode_reversion, "upload_contract: contract_id of %d bytes is not an address", len(id))
	}
	if string(id) == string(c.tokenID) {
		return 0, failure(chainpb.ErrorCode_insufficient_privileges, "upload_contract: %s is the native token and cannot be replaced", c.token.ID())
	}
	compute := satMul(uint64(len(op.Bytecode)), c.uploadByteCompute())
	if compute > fuel {
		return fuel, failure(chainpb.ErrorCode_insufficient_rc, "upload_contract: checking %d bytes of bytecode takes %d compute, more than the %d left", len(op.Bytecode), compute, fuel)
	}
	ok, used, err := x.CheckAuthority(&vm.Call{}, chainpb.AuthorizationType_contract_upload, id, nil, fuel-compute)
	compute = satAdd(compute, used)
	if err != nil {
		return compute, err
	}
	if !ok {
		return compute, failure(chainpb.ErrorCode_authorization_failure, "upload_contract: account %s did not authorize the upload", addrOrZero(id))
	}
	if err := c.vm.Prepare(id, op.Bytecode); err != nil {
		return compute, failure(chainpb.ErrorCode_invalid_contract, "upload_contract: %v", err)
	}
	c.contracts.add(id)
	hash := sha256.Sum256(op.Bytecode)
	meta := &chainpb.ContractMetadataObject{
		Hash:                             koinos.Digest(hash).Multihash(),
		AuthorizesCallContract:           op.AuthorizesCallContract,
		AuthorizesTransactionApplication: op.AuthorizesTransactionApplication,
		AuthorizesUploadContract:         op.AuthorizesUploadContract,
	}
	mb, _ := meta.MarshalVT()
	for _, w := range []struct {
		space uint32
		value []byte
	}{{spaceContractBytecode, op.Bytecode}, {spaceContractMetadata, mb}, {spaceContractABI, []byte(op.Abi)}} {
		if err := x.put(contractKey(w.space, id), w.value); err != nil {
			return compute, err
		}
	}
	return compute, nil
}

// put writes an object and counts the disk it takes: key and value for a
// new object, the growth for a replaced one (Koinos's accounting).
func (x *exec) put(key, value []byte) error {
	old, had, err := x.d.Object(key)
	if err != nil {
		return err
	}
	switch {
	case !had:
		x.disk = satAdd(x.disk, uint64(len(key)+len(value)))
	case len(value) > len(old):
		x.disk = satAdd(x.disk, uint64(len(value)-len(old)))
	}
	return x.d.PutObject(key, value)
}

// call runs a contract: the native token, or an uploaded one on the VM.
// caller is nil for an operation of the transaction. On failure the
// callee's writes are undone and its events dropped; the compute it used
// is still reported.
func (x *exec) call(caller *vm.Call, id []byte, ep uint32, args []byte, fuel uint64, readOnly bool) (*vm.Result, error) {
	mark := x.d.Mark()
	res, err := x.run(caller, id, ep, args, fuel, readOnly)
	if err != nil {
		x.d.Revert(mark)
	}
	if err != nil && res != nil {
		res = &vm.Result{Compute: res.Compute}
	}
	return res, err
}

func (x *exec) run(caller *vm.Call, id []byte, ep uint32, args []byte, fuel uint64, readOnly bool) (*vm.Result, error) {
	c := x.c
	if string(id) == string(c.tokenID) {
		return x.callToken(caller, ep, args, fuel, readOnly)
	}
	code, found, err := x.d.Object(contractKey(spaceContractBytecode, id))
	if err != nil {
		return nil, err
	}
	if !found {
		return &vm.Result{}, failure(chainpb.ErrorCode_invalid_contract, "contract %s does not exist", addrOrZero(id))
	}
	// State values are never written in place (a write stores a copy),
	// so the VM may recognise the bytecode by its address.
	call := &vm.Call{ContractID: id, Bytecode: code, ImmutableBytecode: true, EntryPoint: ep, Args: args, ReadOnly: readOnly, Fuel: fuel, Host: x}
	if caller != nil {
		call.Caller, call.CallerPrivilege, call.Depth = caller.ContractID, chainpb.Privilege_user_mode, caller.Depth+1
		call.ReadOnly = readOnly || caller.ReadOnly
	}
	return c.vm.Run(context.Background(), call)
}

// callToken runs the native token for a contract (or for a transaction's
// operation, caller nil): its compute counts as the caller's.
func (x *exec) callToken(caller *vm.Call, ep uint32, args []byte, fuel uint64, readOnly bool) (*vm.Result, error) {
	auth := &tokenAuthority{x: x, caller: caller, fuel: fuel}
	tc := contracts.Call{State: x.d, NowMs: x.nowMs, Authorized: auth, ReadOnly: readOnly}
	if readOnly {
		tc.Reader = x.d
	}
	value, err := x.c.token.Call(&tc, ep, args)
	x.disk = satAdd(x.disk, tc.Disk)
	res := &vm.Result{Value: value, Events: tc.Events, Compute: satAdd(tc.Compute, auth.used)}
	if err == nil && x.err != nil {
		err = x.err
	}
	return res, err
}

// tokenAuthority answers the native token's authority checks as a token
// built with Koinos's SDK answers them (System.requireAuthority, its
// "enhanced security" default): called by a contract, the token accepts
// that contract for its own account, refuses every other account unless
// it is a contract that overrides its call authority (then asked through
// its authorize entry point), so that a contract cannot spend what the
// transaction's signers own; called by the transaction itself, it asks
// Koinos's check_authority (a signature, or an override's authorize).
type tokenAuthority struct {
	x      *exec
	caller *vm.Call // nil: the transaction's own operation
	fuel   uint64   // what authorize calls may still use
	used   uint64
}

func (a *tokenAuthority) SignedBy(acct koinos.Address) bool {
	x := a.x
	byContract := a.caller != nil && len(a.caller.ContractID) > 0
	if byContract && string(a.caller.ContractID) == string(acct[:]) {
		return true
	}
	if !x.c.contracts.has(acct[:]) {
		// Not a contract, so no override: the fast path of every transfer
		// between plain accounts.
		return !byContract && x.tx != nil && x.tx.SignedBy(acct)
	}
	caller := a.caller
	if caller == nil {
		caller = &vm.Call{}
	}
	if byContract {
		meta, err := x.ContractMetadata(acct.Bytes())
		if err != nil {
			a.fail(err)
			return false
		}
		if !meta.GetAuthorizesCallContract() {
			return false
		}
	}
	// The check runs inside the token, called by caller.
	asked := &vm.Call{ContractID: x.c.tokenID, Caller: caller.ContractID, Depth: caller.Depth + 1}
	ok, used, err := x.CheckAuthority(asked, chainpb.AuthorizationType_contract_call, acct.Bytes(), nil, a.fuel-min(a.used, a.fuel))
	a.used = satAdd(a.used, used)
	if err != nil {
		a.fail(err)
	}
	return ok && err == nil
}

func (a *tokenAuthority) fail(err error) {
	if a.x.err == nil {
		a.x.err = err
	}
}

// contractSet is every contract id ever uploaded on any branch the node
// applied (mempool checks included): a superset of the contracts at any
// head. An account outside it has no metadata, so no authority override,
// and the native token checks its signature without a state lookup.
//
// The set is read for every transfer on a chain with contracts, from the
// chain loop and the mempool's checks at once, and written only by
// uploads: readers load an immutable map without a lock, an upload
// publishes a copy.
type contractSet struct {
	m  atomic.Pointer[map[string]struct{}]
	mu sync.Mutex // serializes writers
}

// any reports whether a contract was ever uploaded.
func (s *contractSet) any() bool { return s.m.Load() != nil }

func (s *contractSet) has(id []byte) bool {
	m := s.m.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[string(id)]
	return ok
}

func (s *contractSet) add(id []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	if old != nil {
		if _, ok := (*old)[string(id)]; ok {
			return
		}
	}
	next := make(map[string]struct{}, 1)
	if old != nil {
		next = make(map[string]struct{}, len(*old)+1)
		for k := range *old {
			next[k] = struct{}{}
		}
	}
	next[string(id)] = struct{}{}
	s.m.Store(&next)
}

// Host: object storage in the contract's own spaces.

func (x *exec) objectKey(contract []byte, space uint32, key []byte) ([]byte, error) {
	k := state.ObjectKey(false, contract, space, key)
	if len(k) > state.MaxObjectKey {
		return nil, failure(chainpb.ErrorCode_reversion, "object key of %d bytes is too long (the space and key may take %d)", len(key), state.MaxObjectKey)
	}
	return k, nil
}

func (x *exec) GetObject(contract []byte, space uint32, key []byte) ([]byte, bool, error) {
	k, err := x.objectKey(contract, space, key)
	if err != nil {
		return nil, false, err
	}
	return x.d.Object(k)
}

func (x *exec) PutObject(contract []byte, space uint32, key, value []byte) error {
	if len(value) > maxObjectValue {
		return failure(chainpb.ErrorCode_reversion, "object of %d bytes is larger than %d", len(value), maxObjectValue)
	}
	k, err := x.objectKey(contract, space, key)
	if err != nil {
		return err
	}
	return x.put(k, value)
}

func (x *exec) RemoveObject(contract []byte, space uint32, key []byte) error {
	k, err := x.objectKey(contract, space, key)
	if err != nil {
		return err
	}
	return x.d.RemoveObject(k)
}

func (x *exec) NextObject(contract []byte, space uint32, key []byte) ([]byte, []byte, bool, error) {
	return x.neighbour(contract, space, key, x.d.NextObject)
}

func (x *exec) PrevObject(contract []byte, space uint32, key []byte) ([]byte, []byte, bool, error) {
	return x.neighbour(contract, space, key, x.d.PrevObject)
}

func (x *exec) neighbour(contract []byte, space uint32, key []byte, seek func(prefix, key []byte) ([]byte, []byte, bool, error)) ([]byte, []byte, bool, error) {
	from, err := x.objectKey(contract, space, key)
	if err != nil {
		return nil, nil, false, err
	}
	dbKey, value, found, err := seek(state.SpacePrefix(false, contract, space), from)
	if err != nil || !found {
		return nil, nil, false, err
	}
	var k chainpb.DatabaseKey
	if err := k.UnmarshalVT(dbKey); err != nil {
		return nil, nil, false, errors.New("chain: stored object key does not decode")
	}
	return k.Key, value, true, nil
}

// Host: the chain's context.

func (x *exec) HeadInfo() *chainpb.HeadInfo {
	return &chainpb.HeadInfo{
		HeadTopology:          &koinospb.BlockTopology{Height: x.block.height, Previous: x.block.previous.Multihash()},
		HeadBlockTime:         x.block.timeMs,
		LastIrreversibleBlock: x.block.lib,
	}
}

func (x *exec) ChainID() []byte { return x.c.chainID.Multihash() }

func (x *exec) Transaction() *protocol.Transaction {
	if x.tx == nil {
		return nil
	}
	return x.tx.Tx()
}

func (x *exec) Operation() *protocol.Operation { return x.op }

// Block is the block being applied as far as it is known before its
// transactions are: the header's height, previous id, timestamp, previous
// state root and signer; no id, transaction root, transactions or
// signature (a producer has none of them yet, and validators must see what
// the producer saw).
func (x *exec) Block() *protocol.Block {
	if x.tx == nil {
		return nil
	}
	if x.blk == nil {
		x.blk = &protocol.Block{Header: &protocol.BlockHeader{
			Previous:                x.block.previous.Multihash(),
			Height:                  x.block.height,
			Timestamp:               x.block.timeMs,
			PreviousStateMerkleRoot: x.block.prevStateRoot.Multihash(),
			Signer:                  x.block.signer,
		}}
	}
	return x.blk
}

func (x *exec) AccountNonce(account []byte) (uint64, error) {
	a, err := x.account(account)
	return a.Nonce, err
}

func (x *exec) AccountRC(account []byte) (uint64, error) {
	a, err := x.account(account)
	return a.CurrentMana(x.nowMs, x.c.params.ManaRegenMs), err
}

func (x *exec) account(account []byte) (state.Account, error) {
	a, ok := koinos.AddressShape(account)
	if !ok {
		return state.Account{}, failure(chainpb.ErrorCode_reversion, "account of %d bytes is not an address", len(account))
	}
	acct, _, err := x.d.Account(a)
	return acct, err
}

func (x *exec) ResourceLimits() *chainpb.ResourceLimitData { return x.c.params.Resources.CloneVT() }

// ContractMetadata reads an uploaded contract's metadata; the native
// token has a system contract's.
func (x *exec) ContractMetadata(id []byte) (*chainpb.ContractMetadataObject, error) {
	if string(id) == string(x.c.tokenID) {
		return &chainpb.ContractMetadataObject{System: true}, nil
	}
	b, found, err := x.d.Object(contractKey(spaceContractMetadata, id))
	if err != nil || !found {
		return nil, err
	}
	m := &chainpb.ContractMetadataObject{}
	if err := m.UnmarshalVT(b); err != nil {
		return nil, errors.New("chain: stored contract metadata does not decode")
	}
	return m, nil
}

// CheckAuthority is Koinos's check_authority: a contract account that
// overrides the authority of this type is asked through its authorize
// entry point, with the asking call's contract, entry point and caller;
// any other account must have signed the transaction.
func (x *exec) CheckAuthority(caller *vm.Call, typ chainpb.AuthorizationType, account, data []byte, fuel uint64) (bool, uint64, error) {
	if !x.c.contracts.has(account) {
		// Never a contract on any branch, so no metadata and no override
		// (contractSet): the signature decides, as below, without
		// reading the state. Every SDK transfer asks this of its sender.
		a, ok := koinos.AddressShape(account)
		return ok && x.tx != nil && x.tx.SignedBy(a), 0, nil
	}
	meta, err := x.ContractMetadata(account)
	if err != nil {
		return false, 0, err
	}
	override := false
	if meta != nil {
		switch typ {
		case chainpb.AuthorizationType_contract_call:
			override = meta.AuthorizesCallContract
		case chainpb.AuthorizationType_transaction_application:
			override = meta.AuthorizesTransactionApplication
		case chainpb.AuthorizationType_contract_upload:
			override = meta.AuthorizesUploadContract
		}
	}
	if !override {
		a, ok := koinos.AddressShape(account)
		return ok && x.tx != nil && x.tx.SignedBy(a), 0, nil
	}
	args := &chainpb.AuthorizeArguments{Type: typ}
	if typ == chainpb.AuthorizationType_contract_call {
		args.Call = &chainpb.CallData{ContractId: caller.ContractID, EntryPoint: caller.EntryPoint, Caller: caller.Caller, Data: data}
	}
	ab, _ := args.MarshalVT()
	res, err := x.call(caller, account, authorizeEntryPoint, ab, fuel, false)
	var used uint64
	if res != nil {
		used = res.Compute
	}
	if err != nil {
		return false, used, err
	}
	var out chainpb.AuthorizeResult
	if err := out.UnmarshalVT(res.Value); err != nil {
		return false, used, failure(chainpb.ErrorCode_reversion, "contract %s: its authorize result does not decode: %v", addrOrZero(account), err)
	}
	return out.Value, used, nil
}

// CallContract is Koinos's call system call.
func (x *exec) CallContract(caller *vm.Call, id []byte, ep uint32, args []byte, fuel uint64) (*vm.Result, error) {
	return x.call(caller, id, ep, args, fuel, caller.ReadOnly)
}
