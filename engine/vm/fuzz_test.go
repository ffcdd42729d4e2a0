package vm

import (
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// FuzzInstrument: bytecode is outside data. instrument refuses what it
// cannot read with ErrInvalidModule and never panics, and what it writes
// is a well-formed module, valid wasm whenever the original was (the
// inserted charges, depth checks and halt checks type-check wherever
// they land).
func FuzzInstrument(f *testing.F) {
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter().
		WithCoreFeatures(api.CoreFeaturesV2.SetEnabled(api.CoreFeatureSIMD, false)))
	f.Cleanup(func() { _ = rt.Close(context.Background()) })
	start := uint32(0)
	for _, seed := range [][]byte{
		loopForever(), recurse(), growMemory(2, 1), fillMemory(2),
		scripted(syscall{sid: chainpb.SystemCallId_log, args: []byte{0x0a, 1, 'x'}}),
		wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0}}, exports: map[string]uint32{"_start": 0}, start: &start}.bytes(),
		deepExit(exitWith(0, nil, ""), []byte{0x00}), depthChain(3, false), dirtyContract(),
		splitContract(nil, nil).bytes(), splitContract(cat(i32c(1), []byte{0x40, 0, 0x1a}), nil).bytes(),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		out, err := instrument(code, DefaultMaxCallDepth)
		if err != nil {
			if !errors.Is(err, ErrInvalidModule) {
				t.Fatalf("error %v is not an ErrInvalidModule", err)
			}
			return
		}
		if _, err := parseModule(out); err != nil {
			t.Fatalf("instrumented module does not parse: %v", err)
		}
		// With _start cut for the start-up snapshot (split.go): the same
		// refusals, and a module that parses. It may fail wazero's
		// validation where out does not: the VM then compiles out.
		cut, err := instrumentModule(code, DefaultMaxCallDepth, true)
		if err != nil {
			t.Fatalf("refused only when cut: %v", err)
		}
		if _, err := parseModule(cut.code); err != nil {
			t.Fatalf("cut module does not parse: %v", err)
		}
		if hasCustomSection(code) {
			// instrument drops them; wazero would allocate whatever length
			// their names claim.
			return
		}
		if _, err := rt.CompileModule(context.Background(), code); err != nil {
			return
		}
		if _, err := rt.CompileModule(context.Background(), out); err != nil {
			t.Fatalf("valid module, invalid once instrumented: %v", err)
		}
		if _, err := rt.CompileModule(context.Background(), cut.code); err != nil && !cut.split {
			t.Fatalf("valid module, invalid once instrumented with nothing cut: %v", err)
		}
	})
}

// hasCustomSection reports a custom section in a module instrument
// accepted.
func hasCustomSection(code []byte) bool {
	r := reader{b: code, off: 8}
	for !r.done() {
		id, _ := r.byte()
		n, err := r.u32()
		if err != nil || id == secCustom {
			return true
		}
		r.off += int(n)
	}
	return false
}

// FuzzSystemCall: a contract passes arbitrary bytes to each system call.
// Every outcome is a result or a *koinos.Error, never a panic, and the
// call is always charged.
func FuzzSystemCall(f *testing.F) {
	v, err := New(Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = v.Close() })
	for _, sid := range []chainpb.SystemCallId{
		chainpb.SystemCallId_put_object, chainpb.SystemCallId_get_object, chainpb.SystemCallId_get_next_object,
		chainpb.SystemCallId_event, chainpb.SystemCallId_hash, chainpb.SystemCallId_exit, chainpb.SystemCallId_call,
		chainpb.SystemCallId_check_authority, chainpb.SystemCallId_log,
		chainpb.SystemCallId_recover_public_key, chainpb.SystemCallId_verify_signature, chainpb.SystemCallId_get_contract_metadata,
		chainpb.SystemCallId_get_transaction_field, chainpb.SystemCallId_get_block_field, chainpb.SystemCallId_get_account_nonce,
		chainpb.SystemCallId_get_account_rc, chainpb.SystemCallId_verify_merkle_root,
	} {
		f.Add(uint32(sid), []byte{0x0a, 0x1b, 0x12, 0x19, 0x00})
		f.Add(uint32(sid), mustMarshal(&chainpb.PutObjectArguments{Space: space(contractA, 1), Key: []byte("k"), Obj: []byte("v")}))
	}
	f.Fuzz(func(t *testing.T, sid uint32, args []byte) {
		if len(args) > 0x1000 {
			return
		}
		h := newMemHost(v)
		h.contracts[string(contractA)] = scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, nil, "")})
		// A transaction and block to read fields of, by any path.
		h.tx = &protocol.Transaction{Id: []byte("id"), Header: &protocol.TransactionHeader{Payer: accountX, RcLimit: 5}, Signatures: [][]byte{{1}}}
		h.block = &protocol.Block{Header: &protocol.BlockHeader{Height: 3}}
		res, err := v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: scripted(syscall{sid: chainpb.SystemCallId(sid), args: args}), Fuel: testFuel, Host: h})
		var ke *koinos.Error
		if err != nil && !errors.As(err, &ke) {
			t.Fatalf("error %v is not a *koinos.Error", err)
		}
		if res == nil || res.Compute == 0 {
			t.Fatalf("call not charged: %+v", res)
		}
	})
}
