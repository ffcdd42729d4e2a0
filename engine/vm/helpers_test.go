package vm

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Hand-made modules for the tests: the bytes a compiler would emit, built
// here so every hostile case is exact and small.

type wasmFunc struct {
	typ    uint32 // index into wasmModule.types
	locals []byte // encoded local declarations after their count
	nLocal uint32 // number of local declarations
	code   []byte // instructions, without the final end
}

type wasmModule struct {
	types   [][2][]byte // params, results
	imports bool        // import env.invoke_system_call as function 0 (type 0)
	funcs   []wasmFunc
	memory  *[2]uint32 // min, max (max 0: none)
	globals [][]byte   // encoded global entries: type, mutability, init expression
	exports map[string]uint32
	start   *uint32
	data    map[uint32][]byte // offset -> bytes, in memory 0
	extra   [][]byte          // raw sections appended as is
}

func section(id byte, content []byte) []byte {
	out := []byte{id}
	out = appendU32(out, uint32(len(content)))
	return append(out, content...)
}

func vec(n int, items ...[]byte) []byte {
	out := appendU32(nil, uint32(n))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func wasmName(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }

// syscallType is type 0 of every test module with an import.
var syscallType = [2][]byte{{valI32, valI32, valI32, valI32, valI32, valI32}, {valI32}}

func (m wasmModule) bytes() []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0}
	var types [][]byte
	for _, t := range m.types {
		ft := []byte{0x60}
		ft = append(ft, vec(len(t[0]), t[0])...)
		ft = append(ft, vec(len(t[1]), t[1])...)
		types = append(types, ft)
	}
	out = append(out, section(secType, vec(len(types), types...))...)
	if m.imports {
		imp := append(wasmName(importModule), wasmName(importName)...)
		imp = append(imp, 0x00, 0x00)
		out = append(out, section(secImport, vec(1, imp))...)
	}
	var fidx [][]byte
	for _, f := range m.funcs {
		fidx = append(fidx, appendU32(nil, f.typ))
	}
	out = append(out, section(secFunction, vec(len(fidx), fidx...))...)
	if m.memory != nil {
		lim := []byte{0x00}
		lim = appendU32(lim, m.memory[0])
		if m.memory[1] != 0 {
			lim = []byte{0x01}
			lim = appendU32(lim, m.memory[0])
			lim = appendU32(lim, m.memory[1])
		}
		out = append(out, section(secMemory, vec(1, lim))...)
	}
	if len(m.globals) > 0 {
		out = append(out, section(secGlobal, vec(len(m.globals), m.globals...))...)
	}
	var names []string
	for n := range m.exports {
		names = append(names, n)
	}
	sort.Strings(names)
	var exps [][]byte
	for _, n := range names {
		e := append(wasmName(n), 0x00)
		exps = append(exps, appendU32(e, m.exports[n]))
	}
	if m.memory != nil {
		exps = append(exps, append(wasmName("memory"), 0x02, 0x00))
	}
	out = append(out, section(secExport, vec(len(exps), exps...))...)
	if m.start != nil {
		out = append(out, section(secStart, appendU32(nil, *m.start))...)
	}
	var bodies [][]byte
	for _, f := range m.funcs {
		b := appendU32(nil, f.nLocal)
		b = append(b, f.locals...)
		b = append(b, f.code...)
		b = append(b, 0x0b)
		bodies = append(bodies, append(appendU32(nil, uint32(len(b))), b...))
	}
	out = append(out, section(secCode, vec(len(bodies), bodies...))...)
	if len(m.data) > 0 {
		var offs []uint32
		for o := range m.data {
			offs = append(offs, o)
		}
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		var segs [][]byte
		for _, o := range offs {
			s := []byte{0x00, 0x41}
			s = appendS64(s, int64(o))
			s = append(s, 0x0b)
			s = append(s, vec(len(m.data[o]), m.data[o])...)
			segs = append(segs, s)
		}
		out = append(out, section(secData, vec(len(segs), segs...))...)
	}
	for _, x := range m.extra {
		out = append(out, x...)
	}
	return out
}

// Instruction helpers.
func i32c(v int32) []byte  { return appendS64([]byte{0x41}, int64(v)) }
func call(f uint32) []byte { return appendU32([]byte{0x10}, f) }
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Memory layout of the scripted contracts.
const (
	retBuf     = 0x1000 // return buffer
	retBufLen  = 0x400
	writtenAt  = 0x0ff0 // bytes written
	scriptData = 0x2000 // system-call arguments, one after the other
)

// syscall is one step of a scripted contract: call sid with args.
type syscall struct {
	sid  chainpb.SystemCallId
	args []byte
	// logResult: pass the result to log (as a log_arguments message), so
	// the test sees what the contract received. Results up to 127 bytes.
	logResult bool
	// requireCode: trap unless the call returned this code.
	requireCode *int32
}

// scripted builds a contract whose _start makes the given system calls
// with arguments laid out in a data segment, in order.
func scripted(steps ...syscall) []byte {
	data := []byte{}
	var code []byte
	for _, s := range steps {
		off := scriptData + uint32(len(data))
		data = append(data, s.args...)
		code = append(code, i32c(int32(s.sid))...)
		code = append(code, i32c(retBuf)...)
		code = append(code, i32c(retBufLen)...)
		code = append(code, i32c(int32(off))...)
		code = append(code, i32c(int32(len(s.args)))...)
		code = append(code, i32c(writtenAt)...)
		code = append(code, call(0)...)
		if s.requireCode != nil {
			code = append(code, i32c(*s.requireCode)...)
			code = append(code, 0x47, 0x04, 0x40, 0x00, 0x0b) // i32.ne; if; unreachable; end
		} else {
			code = append(code, 0x1a) // drop
		}
		if s.logResult {
			// mem[ret-2] = 0x0a; mem[ret-1] = written; log(ret-2, written+2)
			code = append(code, cat(i32c(retBuf-2), i32c(0x0a), []byte{0x3a, 0, 0})...)
			code = append(code, cat(i32c(retBuf-1), i32c(writtenAt), []byte{0x28, 2, 0}, []byte{0x3a, 0, 0})...)
			code = append(code, cat(i32c(int32(chainpb.SystemCallId_log)), i32c(retBuf+retBufLen), i32c(0x100), i32c(retBuf-2))...)
			code = append(code, cat(i32c(writtenAt), []byte{0x28, 2, 0}, i32c(2), []byte{0x6a}, i32c(writtenAt+4), call(0), []byte{0x1a})...)
		}
	}
	return wasmModule{
		types:   [][2][]byte{syscallType, {nil, nil}},
		imports: true,
		funcs:   []wasmFunc{{typ: 1, code: code}},
		memory:  &[2]uint32{1, 0},
		exports: map[string]uint32{"_start": 1},
		data:    map[uint32][]byte{scriptData: data},
	}.bytes()
}

func mustMarshal(m message) []byte {
	b, err := m.MarshalVT()
	if err != nil {
		panic(err)
	}
	return b
}

// memHost is a Host over maps: objects per contract and space, a set of
// signers, and other contracts it runs through the VM.
type memHost struct {
	vm        *VM
	objects   map[string][]byte // contract|space|key
	signers   map[string]bool
	contracts map[string][]byte // id -> bytecode
	metadata  map[string]*chainpb.ContractMetadataObject
	chainID   []byte
	// tx, op and block are what Transaction, Operation and Block return;
	// nonces and rcs the accounts' nonces and mana.
	tx     *protocol.Transaction
	op     *protocol.Operation
	block  *protocol.Block
	nonces map[string]uint64
	rcs    map[string]uint64
}

func newMemHost(v *VM) *memHost {
	return &memHost{vm: v, objects: map[string][]byte{}, signers: map[string]bool{}, contracts: map[string][]byte{}, metadata: map[string]*chainpb.ContractMetadataObject{}, chainID: []byte("chain")}
}

func (h *memHost) Transaction() *protocol.Transaction { return h.tx }
func (h *memHost) Operation() *protocol.Operation     { return h.op }
func (h *memHost) Block() *protocol.Block             { return h.block }
func (h *memHost) AccountNonce(a []byte) (uint64, error) {
	return h.nonces[string(a)], nil
}
func (h *memHost) AccountRC(a []byte) (uint64, error) { return h.rcs[string(a)], nil }
func (h *memHost) ResourceLimits() *chainpb.ResourceLimitData {
	return &chainpb.ResourceLimitData{ComputeBandwidthLimit: 1 << 30, ComputeBandwidthCost: 10}
}

func objKey(contract []byte, space uint32, key []byte) string {
	return fmt.Sprintf("%x|%08x|", contract, space) + string(key)
}

func (h *memHost) GetObject(c []byte, s uint32, k []byte) ([]byte, bool, error) {
	v, ok := h.objects[objKey(c, s, k)]
	return v, ok, nil
}

func (h *memHost) PutObject(c []byte, s uint32, k, v []byte) error {
	h.objects[objKey(c, s, k)] = bytes.Clone(v)
	return nil
}

func (h *memHost) RemoveObject(c []byte, s uint32, k []byte) error {
	delete(h.objects, objKey(c, s, k))
	return nil
}

func (h *memHost) neighbour(c []byte, s uint32, k []byte, next bool) ([]byte, []byte, bool, error) {
	prefix := objKey(c, s, nil)
	var keys []string
	for key := range h.objects {
		if len(key) >= len(prefix) && key[:len(prefix)] == prefix {
			keys = append(keys, key[len(prefix):])
		}
	}
	sort.Strings(keys)
	if next {
		for _, key := range keys {
			if key > string(k) {
				return []byte(key), h.objects[prefix+key], true, nil
			}
		}
	} else {
		for i := len(keys) - 1; i >= 0; i-- {
			if keys[i] < string(k) {
				return []byte(keys[i]), h.objects[prefix+keys[i]], true, nil
			}
		}
	}
	return nil, nil, false, nil
}

func (h *memHost) NextObject(c []byte, s uint32, k []byte) ([]byte, []byte, bool, error) {
	return h.neighbour(c, s, k, true)
}

func (h *memHost) PrevObject(c []byte, s uint32, k []byte) ([]byte, []byte, bool, error) {
	return h.neighbour(c, s, k, false)
}

func (h *memHost) HeadInfo() *chainpb.HeadInfo {
	return &chainpb.HeadInfo{HeadBlockTime: 1234, LastIrreversibleBlock: 7}
}

func (h *memHost) ChainID() []byte { return h.chainID }

func (h *memHost) CheckAuthority(_ *Call, _ chainpb.AuthorizationType, account, _ []byte, _ uint64) (bool, uint64, error) {
	return h.signers[string(account)], 0, nil
}

func (h *memHost) ContractMetadata(id []byte) (*chainpb.ContractMetadataObject, error) {
	return h.metadata[string(id)], nil
}

func (h *memHost) CallContract(caller *Call, id []byte, ep uint32, args []byte, fuel uint64) (*Result, error) {
	code, ok := h.contracts[string(id)]
	if !ok {
		return nil, koinos.Errorf(chainpb.ErrorCode_invalid_contract, "contract %x does not exist", id)
	}
	return h.vm.Run(bgCtx, &Call{
		ContractID: id, Bytecode: code, EntryPoint: ep, Args: args,
		Caller: caller.ContractID, CallerPrivilege: chainpb.Privilege_user_mode,
		ReadOnly: caller.ReadOnly, Fuel: fuel, Depth: caller.Depth + 1, Host: h,
	})
}
