package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

var bgCtx = context.Background()

var (
	contractA = append([]byte{0}, bytes.Repeat([]byte{0xa}, 24)...)
	contractB = append([]byte{0}, bytes.Repeat([]byte{0xb}, 24)...)
	accountX  = append([]byte{0}, bytes.Repeat([]byte{0x5}, 24)...)
)

const testFuel = 10_000_000

func newVM(t testing.TB, cfg Config) *VM {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func run(t testing.TB, v *VM, h *memHost, code []byte, mutate ...func(*Call)) (*Result, error) {
	t.Helper()
	c := &Call{ContractID: contractA, Bytecode: code, EntryPoint: 0x1234, Args: []byte("args"), Fuel: testFuel, Host: h}
	for _, m := range mutate {
		m(c)
	}
	return v.Run(bgCtx, c)
}

func codeOf(err error) chainpb.ErrorCode {
	if err == nil {
		return chainpb.ErrorCode_success
	}
	return koinos.CodeOf(err)
}

func exitWith(code int32, value []byte, msg string) []byte {
	a := &chainpb.ExitArguments{Code: code}
	if msg != "" {
		a.Res = &chainpb.Result{Value: &chainpb.Result_Error{Error: &chainpb.ErrorData{Message: msg}}}
	} else if value != nil {
		a.Res = &chainpb.Result{Value: &chainpb.Result_Object{Object: value}}
	}
	return mustMarshal(a)
}

func space(zone []byte, id uint32) *chainpb.ObjectSpace {
	return &chainpb.ObjectSpace{Zone: zone, Id: id}
}

func code(c int32) *int32 { return &c }

// TestSystemCalls runs scripted contracts through the system calls an
// SDK-built contract uses and checks what the contract received (through
// log) and what it left (objects, events, the result).
func TestSystemCalls(t *testing.T) {
	v := newVM(t, Config{})
	h := newMemHost(v)
	h.signers[string(accountX)] = true
	meta := &chainpb.ContractMetadataObject{Hash: []byte("h"), AuthorizesCallContract: true}
	h.metadata[string(contractB)] = meta
	sid := chainpb.SystemCallId_get_object
	res, err := run(t, v, h, scripted(
		syscall{sid: chainpb.SystemCallId_get_arguments, args: mustMarshal(&chainpb.GetArgumentsArguments{}), logResult: true},
		syscall{sid: chainpb.SystemCallId_put_object, args: mustMarshal(&chainpb.PutObjectArguments{Space: space(contractA, 1), Key: []byte("k1"), Obj: []byte("v1")})},
		syscall{sid: chainpb.SystemCallId_put_object, args: mustMarshal(&chainpb.PutObjectArguments{Space: space(contractA, 1), Key: []byte("k3"), Obj: []byte("v3")})},
		syscall{sid: sid, args: mustMarshal(&chainpb.GetObjectArguments{Space: space(contractA, 1), Key: []byte("k1")}), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_next_object, args: mustMarshal(&chainpb.GetNextObjectArguments{Space: space(contractA, 1), Key: []byte("k1")}), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_prev_object, args: mustMarshal(&chainpb.GetPrevObjectArguments{Space: space(contractA, 1), Key: []byte("k1")}), logResult: true},
		syscall{sid: sid, args: mustMarshal(&chainpb.GetObjectArguments{Space: space(contractA, 1), Key: []byte("k2")}), logResult: true},
		syscall{sid: chainpb.SystemCallId_remove_object, args: mustMarshal(&chainpb.RemoveObjectArguments{Space: space(contractA, 1), Key: []byte("k3")})},
		syscall{sid: chainpb.SystemCallId_get_contract_id, args: nil, logResult: true},
		syscall{sid: chainpb.SystemCallId_check_authority, args: mustMarshal(&chainpb.CheckAuthorityArguments{Account: accountX}), logResult: true},
		syscall{sid: chainpb.SystemCallId_check_authority, args: mustMarshal(&chainpb.CheckAuthorityArguments{Account: contractB}), logResult: true},
		syscall{sid: chainpb.SystemCallId_hash, args: mustMarshal(&chainpb.HashArguments{Code: hashSHA256, Obj: []byte("abc")}), logResult: true},
		syscall{sid: chainpb.SystemCallId_hash, args: mustMarshal(&chainpb.HashArguments{Code: 0x99, Obj: []byte("abc")}), requireCode: code(int32(chainpb.ErrorCode_unknown_hash_code))},
		syscall{sid: chainpb.SystemCallId_get_chain_id, args: nil, logResult: true},
		syscall{sid: chainpb.SystemCallId_get_contract_metadata, args: mustMarshal(&chainpb.GetContractMetadataArguments{ContractId: contractB}), logResult: true},
		syscall{sid: chainpb.SystemCallId_get_contract_metadata, args: mustMarshal(&chainpb.GetContractMetadataArguments{ContractId: accountX}), logResult: true},
		syscall{sid: chainpb.SystemCallId_event, args: mustMarshal(&chainpb.EventArguments{Name: "stored", Data: []byte("v1"), Impacted: [][]byte{accountX}})},
		syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("result"), "")},
		syscall{sid: chainpb.SystemCallId_log, args: mustMarshal(&chainpb.LogArguments{Message: "not reached: exit ends the call"})},
	))
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if string(res.Value) != "result" {
		t.Errorf("result %q", res.Value)
	}
	sha := mustMarshal(&chainpb.HashResult{Value: append([]byte{0x12, 0x20}, sha256Of("abc")...)})
	want := []string{
		string(mustMarshal(&chainpb.GetArgumentsResult{Value: &chainpb.ArgumentData{EntryPoint: 0x1234, Arguments: []byte("args")}})),
		// As koinos-chain's thunks answer: get_object without the key
		// (only next and prev return one), and a miss as an empty result,
		// which the SDK's getBytes and getObject turn into null.
		string(mustMarshal(&chainpb.GetObjectResult{Value: &chainpb.DatabaseObject{Exists: true, Value: []byte("v1")}})),
		string(mustMarshal(&chainpb.GetNextObjectResult{Value: &chainpb.DatabaseObject{Exists: true, Value: []byte("v3"), Key: []byte("k3")}})),
		"",
		"",
		string(mustMarshal(&chainpb.GetContractIdResult{Value: contractA})),
		string(mustMarshal(&chainpb.CheckAuthorityResult{Value: true})),
		string(mustMarshal(&chainpb.CheckAuthorityResult{Value: false})),
		string(sha),
		string(mustMarshal(&chainpb.GetChainIdResult{Value: []byte("chain")})),
		string(mustMarshal(&chainpb.GetContractMetadataResult{Value: meta})),
		string(mustMarshal(&chainpb.GetContractMetadataResult{})),
	}
	if len(res.Logs) != len(want) {
		t.Fatalf("%d logs, want %d: %q", len(res.Logs), len(want), res.Logs)
	}
	for i := range want {
		if res.Logs[i] != want[i] {
			t.Errorf("log %d: %x, want %x", i, res.Logs[i], want[i])
		}
	}
	if got, _, _ := h.GetObject(contractA, 1, []byte("k1")); string(got) != "v1" {
		t.Errorf("object k1 = %q", got)
	}
	if _, found, _ := h.GetObject(contractA, 1, []byte("k3")); found {
		t.Error("object k3 not removed")
	}
	if len(res.Events) != 1 || res.Events[0].Name != "stored" || !bytes.Equal(res.Events[0].Source, contractA) || string(res.Events[0].Data) != "v1" {
		t.Errorf("events %v", res.Events)
	}
	if res.Compute == 0 || res.Compute >= testFuel {
		t.Errorf("compute %d", res.Compute)
	}
}

// TestExitCodes: a positive exit code is a reversion with the contract's
// message, a negative one a failure; returning from _start is success
// with no result.
func TestExitCodes(t *testing.T) {
	v := newVM(t, Config{})
	h := newMemHost(v)
	for _, tc := range []struct {
		name     string
		steps    []syscall
		wantCode chainpb.ErrorCode
		wantMsg  string
	}{
		{"revert", []syscall{{sid: chainpb.SystemCallId_exit, args: exitWith(1, nil, "no way")}}, chainpb.ErrorCode_reversion, "no way"},
		{"custom reversion", []syscall{{sid: chainpb.SystemCallId_exit, args: exitWith(7, nil, "")}}, 7, "contract exited with code 7"},
		{"fail", []syscall{{sid: chainpb.SystemCallId_exit, args: exitWith(-1, nil, "broken")}}, chainpb.ErrorCode_failure, "broken"},
		{"return", nil, chainpb.ErrorCode_success, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, v, h, scripted(tc.steps...))
			if codeOf(err) != tc.wantCode || (err != nil && err.Error() != tc.wantMsg) {
				t.Fatalf("error %v (code %d), want code %d %q", err, codeOf(err), tc.wantCode, tc.wantMsg)
			}
			if res.Compute == 0 {
				t.Error("no compute charged")
			}
		})
	}
}

func sha256Of(s string) []byte {
	d := koinos.Sum256([]byte(s))
	return d[:]
}

// TestInvalidSystemCalls: what a contract passes is outside data; each
// bad call ends it with a reversion, never a panic.
func TestInvalidSystemCalls(t *testing.T) {
	v := newVM(t, Config{})
	h := newMemHost(v)
	outOfBounds := wasmModule{
		types: [][2][]byte{syscallType, {nil, nil}}, imports: true,
		funcs: []wasmFunc{{typ: 1, code: cat(
			i32c(int32(chainpb.SystemCallId_log)), i32c(0), i32c(16), i32c(0xfff0), i32c(0x100), i32c(0),
			call(0), []byte{0x1a})}},
		memory: &[2]uint32{1, 0}, exports: map[string]uint32{"_start": 1},
	}.bytes()
	smallRet := wasmModule{
		types: [][2][]byte{syscallType, {nil, nil}}, imports: true,
		funcs: []wasmFunc{{typ: 1, code: cat(
			i32c(int32(chainpb.SystemCallId_get_arguments)), i32c(0), i32c(2), i32c(0), i32c(0), i32c(16),
			call(0), []byte{0x1a})}},
		memory: &[2]uint32{1, 0}, exports: map[string]uint32{"_start": 1},
	}.bytes()
	for _, tc := range []struct {
		name     string
		code     []byte
		readOnly bool
		want     chainpb.ErrorCode
		msg      string
	}{
		{"arguments outside memory", outOfBounds, false, chainpb.ErrorCode_reversion, "outside the contract's memory"},
		{"result larger than the buffer", smallRet, false, chainpb.ErrorCode_insufficient_return_buffer, "does not fit"},
		{"garbage arguments", scripted(syscall{sid: chainpb.SystemCallId_put_object, args: []byte{0xff, 0xff, 0xff}}), false, chainpb.ErrorCode_reversion, "do not decode"},
		{"unknown system call", scripted(syscall{sid: 9999}), false, chainpb.ErrorCode_unknown_thunk, "not supported"},
		{"another contract's space", scripted(syscall{sid: chainpb.SystemCallId_get_object, args: mustMarshal(&chainpb.GetObjectArguments{Space: space(contractB, 1), Key: []byte("k")})}), false, chainpb.ErrorCode_insufficient_privileges, "own object spaces"},
		{"system space", scripted(syscall{sid: chainpb.SystemCallId_get_object, args: mustMarshal(&chainpb.GetObjectArguments{Space: &chainpb.ObjectSpace{System: true, Zone: contractA}})}), false, chainpb.ErrorCode_insufficient_privileges, "own object spaces"},
		{"no space", scripted(syscall{sid: chainpb.SystemCallId_put_object, args: mustMarshal(&chainpb.PutObjectArguments{Key: []byte("k")})}), false, chainpb.ErrorCode_reversion, "object space missing"},
		{"write when read-only", scripted(syscall{sid: chainpb.SystemCallId_put_object, args: mustMarshal(&chainpb.PutObjectArguments{Space: space(contractA, 1), Key: []byte("k")})}), true, chainpb.ErrorCode_read_only_context, "read-only"},
		{"event impacting a non-address", scripted(syscall{sid: chainpb.SystemCallId_event, args: mustMarshal(&chainpb.EventArguments{Name: "e", Impacted: [][]byte{{1, 2}}})}), false, chainpb.ErrorCode_reversion, "not an address"},
		{"authority of a non-address", scripted(syscall{sid: chainpb.SystemCallId_check_authority, args: mustMarshal(&chainpb.CheckAuthorityArguments{Account: []byte("short")})}), false, chainpb.ErrorCode_reversion, "not an address"},
		{"no memory", wasmModule{
			types: [][2][]byte{syscallType, {nil, nil}}, imports: true,
			funcs:   []wasmFunc{{typ: 1, code: cat(i32c(int32(chainpb.SystemCallId_log)), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), call(0), []byte{0x1a})}},
			exports: map[string]uint32{"_start": 1},
		}.bytes(), false, chainpb.ErrorCode_reversion, "has no memory"},
		{"call to a missing contract", scripted(syscall{sid: chainpb.SystemCallId_call, args: mustMarshal(&chainpb.CallArguments{ContractId: contractB, EntryPoint: 1})}), false, chainpb.ErrorCode_invalid_contract, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, v, h, tc.code, func(c *Call) { c.ReadOnly = tc.readOnly })
			if codeOf(err) != tc.want || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v (code %d), want code %d containing %q", err, codeOf(err), tc.want, tc.msg)
			}
			if res.Compute == 0 {
				t.Error("no compute charged")
			}
		})
	}
	if len(h.objects) != 0 {
		t.Errorf("refused calls wrote %d objects", len(h.objects))
	}
}

// loopForever is `loop br 0 end`.
func loopForever() []byte {
	return wasmModule{
		types:   [][2][]byte{{nil, nil}},
		funcs:   []wasmFunc{{typ: 0, code: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

// recurse is a function calling itself forever.
func recurse() []byte {
	return wasmModule{
		types:   [][2][]byte{{nil, nil}},
		funcs:   []wasmFunc{{typ: 0, code: call(0)}},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

// growMemory grows memory by pages and traps unless memory.grow returned
// want.
func growMemory(pages, want int32) []byte {
	return wasmModule{
		types:   [][2][]byte{{nil, nil}},
		funcs:   []wasmFunc{{typ: 0, code: cat(i32c(pages), []byte{0x40, 0x00}, i32c(want), []byte{0x47, 0x04, 0x40, 0x00, 0x0b})}},
		memory:  &[2]uint32{1, 0},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

// fillMemory fills 1 MiB with memory.fill n times in a loop.
func fillMemory(n int32) []byte { return fillMemoryAs(n, []byte{0xfc, 11}) }

// fillMemoryAs is fillMemory with memory.fill's opcode encoded as given.
func fillMemoryAs(n int32, fill []byte) []byte {
	body := cat(
		[]byte{0x03, 0x40},                             // loop
		i32c(0), i32c(7), i32c(1<<20), fill, []byte{0}, // memory.fill
		[]byte{0x20, 0}, i32c(1), []byte{0x6b, 0x22, 0}, // local0 = local0 - 1 (tee)
		[]byte{0x0d, 0}, // br_if 0
		[]byte{0x0b},
	)
	return wasmModule{
		types:   [][2][]byte{{nil, nil}},
		funcs:   []wasmFunc{{typ: 0, nLocal: 1, locals: []byte{1, valI32}, code: cat(i32c(n), []byte{0x21, 0}, body)}},
		memory:  &[2]uint32{32, 0},
		exports: map[string]uint32{"_start": 0},
	}.bytes()
}

// TestHostileContracts: an endless loop, endless recursion, a memory grab
// and bulk memory work are stopped deterministically and charged; none
// hangs or crashes the node.
func TestHostileContracts(t *testing.T) {
	v := newVM(t, Config{MemoryPages: 64})
	h := newMemHost(v)
	for _, tc := range []struct {
		name    string
		code    []byte
		fuel    uint64
		want    chainpb.ErrorCode
		msg     string
		allFuel bool
	}{
		{"endless loop", loopForever(), 1_000_000, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		{"endless recursion", recurse(), testFuel, chainpb.ErrorCode_reversion, "call depth", false},
		{"recursion out of fuel first", recurse(), 200, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		{"memory grab past the cap", growMemory(100, -1), 100*growFuelPerPage + 1_000_000, chainpb.ErrorCode_success, "", false},
		{"memory within the cap", growMemory(10, 1), testFuel, chainpb.ErrorCode_success, "", false},
		{"memory grow charged by pages", growMemory(10, 1), 10 * growFuelPerPage, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		{"initial memory charged", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0}}, memory: &[2]uint32{64, 0}, exports: map[string]uint32{"_start": 0}}.bytes(), 64*pageBytes/bulkBytesPerFuel - 1, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		{"bulk fill charged by size", fillMemory(1000), 10_000_000, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		// LEB128 allows padding: 0x8b 0x00 is sub-opcode 11 too.
		{"padded bulk fill charged by size", fillMemoryAs(1000, []byte{0xfc, 0x8b, 0x00}), 10_000_000, chainpb.ErrorCode_insufficient_rc, "ran out of compute", true},
		{"initial memory past the cap", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0}}, memory: &[2]uint32{65, 0}, exports: map[string]uint32{"_start": 0}}.bytes(), testFuel, chainpb.ErrorCode_invalid_contract, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(t, v, h, tc.code, func(c *Call) { c.Fuel = tc.fuel })
			if codeOf(err) != tc.want || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("error %v (code %d), want code %d containing %q", err, codeOf(err), tc.want, tc.msg)
			}
			if tc.allFuel && res.Compute != tc.fuel {
				t.Errorf("charged %d, want the whole %d", res.Compute, tc.fuel)
			}
			if tc.want != chainpb.ErrorCode_invalid_contract && res.Compute == 0 {
				t.Error("no compute charged")
			}
		})
	}
}

// TestDeterministicAcrossEngines runs the same contracts on wazero's
// compiler and its interpreter: the same outcome and the same compute to
// the unit, as every node must charge.
func TestDeterministicAcrossEngines(t *testing.T) {
	compiler := newVM(t, Config{})
	interp := newVM(t, Config{Interpreter: true})
	contracts := map[string][]byte{
		"loop":      loopForever(),
		"recursion": recurse(),
		"fill":      fillMemory(3),
		"trap":      wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: cat(i32c(1), i32c(0), []byte{0x6d, 0x1a})}}, exports: map[string]uint32{"_start": 0}}.bytes(),
		"syscalls": scripted(
			syscall{sid: chainpb.SystemCallId_put_object, args: mustMarshal(&chainpb.PutObjectArguments{Space: space(contractA, 1), Key: []byte("k"), Obj: []byte("v")})},
			syscall{sid: chainpb.SystemCallId_get_object, args: mustMarshal(&chainpb.GetObjectArguments{Space: space(contractA, 1), Key: []byte("k")}), logResult: true},
			syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("ok"), "")},
		),
	}
	for name, code := range contracts {
		a, errA := run(t, compiler, newMemHost(compiler), code, func(c *Call) { c.Fuel = 5_000_000 })
		b, errB := run(t, interp, newMemHost(interp), code, func(c *Call) { c.Fuel = 5_000_000 })
		if codeOf(errA) != codeOf(errB) || fmt.Sprint(errA) != fmt.Sprint(errB) || a.Compute != b.Compute || !bytes.Equal(a.Value, b.Value) || len(a.Logs) != len(b.Logs) {
			t.Errorf("%s: compiler %v compute %d; interpreter %v compute %d", name, errA, a.Compute, errB, b.Compute)
		}
	}
}

// TestContractCallsContract: a call from one contract to another runs the
// callee with the caller's remaining fuel, returns its result, and
// charges and keeps its events.
func TestContractCallsContract(t *testing.T) {
	v := newVM(t, Config{})
	h := newMemHost(v)
	h.contracts[string(contractB)] = scripted(
		syscall{sid: chainpb.SystemCallId_get_caller, logResult: true},
		syscall{sid: chainpb.SystemCallId_event, args: mustMarshal(&chainpb.EventArguments{Name: "callee"})},
		syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("from B"), "")},
	)
	res, err := run(t, v, h, scripted(
		syscall{sid: chainpb.SystemCallId_call, args: mustMarshal(&chainpb.CallArguments{ContractId: contractB, EntryPoint: 5}), logResult: true},
	))
	if err != nil {
		t.Fatal(err)
	}
	wantCaller := string(mustMarshal(&chainpb.GetCallerResult{Value: &chainpb.CallerData{Caller: contractA, CallerPrivilege: chainpb.Privilege_user_mode}}))
	wantResult := string(mustMarshal(&chainpb.CallResult{Value: []byte("from B")}))
	if len(res.Logs) != 2 || res.Logs[0] != wantCaller || res.Logs[1] != wantResult {
		t.Fatalf("logs %q", res.Logs)
	}
	if len(res.Events) != 1 || !bytes.Equal(res.Events[0].Source, contractB) {
		t.Fatalf("events %v", res.Events)
	}
	// A contract calling itself without end stops at the contract depth.
	h.contracts[string(contractA)] = scripted(syscall{sid: chainpb.SystemCallId_call, args: mustMarshal(&chainpb.CallArguments{ContractId: contractA})})
	_, err = run(t, v, h, h.contracts[string(contractA)])
	if err == nil || !strings.Contains(err.Error(), "contract call depth") {
		t.Fatalf("self-calling contract: %v", err)
	}
}

// TestInvalidModules: upload refuses bytecode it cannot run
// deterministically, with the reason.
func TestInvalidModules(t *testing.T) {
	v := newVM(t, Config{MaxBytecode: 4096})
	start := uint32(0)
	for _, tc := range []struct {
		name string
		code []byte
		msg  string
	}{
		{"empty", nil, "bad magic"},
		{"not wasm", []byte("hello world, not a module"), "bad magic"},
		{"truncated", loopForever()[:20], "truncated"},
		{"too large", append(loopForever(), make([]byte, 5000)...), "more than the 4096 allowed"},
		{"foreign import", wasmModule{types: [][2][]byte{{nil, nil}}, extra: nil}.withImport("wasi", "fd_write"), "may import only env.invoke_system_call"},
		{"float arithmetic", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: []byte{0x41, 0, 0xb2, 0x1a}}}, exports: map[string]uint32{"_start": 0}}.bytes(), "floating point"},
		{"float type", wasmModule{types: [][2][]byte{{[]byte{valF64}, nil}}, funcs: []wasmFunc{{typ: 0}}, exports: map[string]uint32{"_start": 0}}.bytes(), "floating point"},
		{"huge table", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0}}, exports: map[string]uint32{"_start": 0}}.withTable(1 << 20), "table 0 of 1048576 entries"},
		{"SIMD", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: []byte{0xfd, 0x0c}}}, exports: map[string]uint32{"_start": 0}}.bytes(), "SIMD"},
		{"no _start", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0}}, exports: map[string]uint32{"main": 0}}.bytes(), "no exported _start"},
		{"type mismatch", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: i32c(1)}}, exports: map[string]uint32{"_start": 0}}.bytes(), "invalid contract bytecode"},
		// A count wazero would allocate for, in a few bytes.
		{"export count past the section", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secExport, appendU32(nil, 1<<28))), "claims 268435456 entries in 0 bytes"},
		{"data count past the section", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secData, appendU32(nil, 1<<28))), "claims 268435456 entries"},
		{"global count past the section", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secGlobal, cat(appendU32(nil, 3), []byte{valI32, 0}))), "claims 3 entries in 2 bytes"},
		{"element entries past the section", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secElement, []byte{1, 1, 0, 0xff, 0xff, 0xff, 0x30, 0xff, 0x80, 0})), "element segment 0 claims 102760447 entries in 3 bytes"},
		{"data bytes past the section", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secData, cat([]byte{1, 1}, appendU32(nil, 1<<30)))), "truncated"},
		{"export name past the section", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secExport, cat([]byte{1}, appendU32(nil, 1<<30)))), "truncated"},
		{"bytes after the exports", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secExport, []byte{0, '0', '0'})), "trailing bytes in export section"},
		{"truncated data count", cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(secDataCount, []byte{0xb0})), "malformed data count section"},
		// Past the module's own globals are the fuel and depth counters.
		{"sets the fuel counter", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: cat([]byte{0x42, 0x7f, 0x24, 0})}}, exports: map[string]uint32{"_start": 0}}.bytes(), "global index 0 out of range"},
		{"reads the depth counter", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: []byte{0x23, 2, 0x1a}}}, globals: [][]byte{{valI32, 1, 0x41, 0, 0x0b}}, exports: map[string]uint32{"_start": 0}}.bytes(), "global index 2 out of range"},
		{"own global", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0, code: []byte{0x23, 0, 0x24, 0}}}, globals: [][]byte{{valI32, 1, 0x41, 0, 0x0b}}, exports: map[string]uint32{"_start": 0}}.bytes(), ""},
		{"start section", wasmModule{types: [][2][]byte{{nil, nil}}, funcs: []wasmFunc{{typ: 0}}, exports: map[string]uint32{"_start": 0}, start: &start}.bytes(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Prepare(contractA, tc.code)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want ErrInvalidModule containing %q", err, tc.msg)
			}
		})
	}
}

func (m wasmModule) withImport(mod, name string) []byte {
	b := m.bytes()
	imp := append(wasmName(mod), wasmName(name)...)
	imp = append(imp, 0x00, 0x00)
	// Splice an import section right after the type section.
	r := reader{b: b, off: 8}
	r.off++
	n, _ := r.u32()
	at := r.off + int(n)
	return cat(b[:at], section(secImport, vec(1, imp)), b[at:])
}

func (m wasmModule) withTable(entries uint32) []byte {
	b := m.bytes()
	table := appendU32([]byte{0x70, 0x00}, entries)
	// Splice a table section right after the function section.
	r := reader{b: b, off: 8}
	for {
		id, _ := r.byte()
		n, _ := r.u32()
		r.off += int(n)
		if id == secFunction {
			break
		}
	}
	return cat(b[:r.off], section(secTable, vec(1, table)), b[r.off:])
}

// TestStartFunctionRunsMetered: a module's start section runs before
// _start, under the call's fuel.
func TestStartFunctionRunsMetered(t *testing.T) {
	v := newVM(t, Config{})
	start := uint32(0)
	code := wasmModule{
		types:   [][2][]byte{{nil, nil}},
		funcs:   []wasmFunc{{typ: 0, code: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}, {typ: 0}},
		exports: map[string]uint32{"_start": 1},
		start:   &start,
	}.bytes()
	res, err := run(t, v, newMemHost(v), code, func(c *Call) { c.Fuel = 50_000 })
	if codeOf(err) != chainpb.ErrorCode_insufficient_rc || res.Compute != 50_000 {
		t.Fatalf("start function looping forever: %v, compute %d", err, res.Compute)
	}
}

// TestCompileCache: a contract compiles once per id and bytecode, and
// concurrent calls share the compiled module (run with -race).
func TestCompileCache(t *testing.T) {
	v := newVM(t, Config{CacheEntries: 2})
	code := scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: code, Fuel: testFuel, Host: newMemHost(v)})
			if err == nil && string(res.Value) != "x" {
				err = errors.New("wrong result " + string(res.Value))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v.Cached() != 1 {
		t.Fatalf("%d cached modules after calls to one contract", v.Cached())
	}
	for _, id := range [][]byte{contractB, accountX} {
		if err := v.Prepare(id, code); err != nil {
			t.Fatal(err)
		}
	}
	if v.Cached() != 2 {
		t.Fatalf("%d cached modules, want the bound 2", v.Cached())
	}
	// Calls to more contracts than the cache holds evict modules while
	// other calls still use them: every call must still succeed.
	ids := [][]byte{contractA, contractB, accountX, append([]byte{0}, bytes.Repeat([]byte{9}, 24)...)}
	errs = make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Run(bgCtx, &Call{ContractID: ids[i%len(ids)], Bytecode: code, Fuel: testFuel, Host: newMemHost(v)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call during evictions: %v", err)
		}
	}
}

// TestSignatureSystemCalls: recover_public_key and verify_signature on a
// Koinos secp256k1 signature, compressed and not; a bad signature is
// handed back to the contract as invalid_signature, an unknown algorithm
// as unknown_dsa.
func TestSignatureSystemCalls(t *testing.T) {
	v := newVM(t, Config{})
	signer, err := keys.Generate(keys.SchemeSecp256k1)
	if err != nil {
		t.Fatal(err)
	}
	digest := koinos.Sum256([]byte("message"))
	sig := signer.Sign(digest)
	mh := digest.Multihash()
	pub, err := secp256k1.ParsePubKey(signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	badSig := bytes.Clone(sig)
	badSig[0] = 0
	res, err := run(t, v, newMemHost(v), scripted(
		syscall{sid: chainpb.SystemCallId_recover_public_key, args: mustMarshal(&chainpb.RecoverPublicKeyArguments{Signature: sig, Digest: mh, Compressed: true}), logResult: true},
		syscall{sid: chainpb.SystemCallId_recover_public_key, args: mustMarshal(&chainpb.RecoverPublicKeyArguments{Signature: sig, Digest: mh}), logResult: true},
		syscall{sid: chainpb.SystemCallId_verify_signature, args: mustMarshal(&chainpb.VerifySignatureArguments{PublicKey: signer.PublicKey(), Signature: sig, Digest: mh, Compressed: true}), logResult: true},
		syscall{sid: chainpb.SystemCallId_verify_signature, args: mustMarshal(&chainpb.VerifySignatureArguments{PublicKey: signer.PublicKey(), Signature: sig, Digest: koinos.Sum256([]byte("other")).Multihash(), Compressed: true}), logResult: true},
		syscall{sid: chainpb.SystemCallId_recover_public_key, args: mustMarshal(&chainpb.RecoverPublicKeyArguments{Signature: badSig, Digest: mh}), requireCode: code(int32(chainpb.ErrorCode_invalid_signature))},
		syscall{sid: chainpb.SystemCallId_recover_public_key, args: mustMarshal(&chainpb.RecoverPublicKeyArguments{Signature: sig[:64], Digest: mh}), requireCode: code(int32(chainpb.ErrorCode_invalid_signature))},
		syscall{sid: chainpb.SystemCallId_verify_signature, args: mustMarshal(&chainpb.VerifySignatureArguments{Type: 7, Signature: sig, Digest: mh}), requireCode: code(int32(chainpb.ErrorCode_unknown_dsa))},
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		string(mustMarshal(&chainpb.RecoverPublicKeyResult{Value: signer.PublicKey()})),
		string(mustMarshal(&chainpb.RecoverPublicKeyResult{Value: pub.SerializeUncompressed()})),
		string(mustMarshal(&chainpb.VerifySignatureResult{Value: true})),
		string(mustMarshal(&chainpb.VerifySignatureResult{Value: false})),
	}
	if len(res.Logs) != len(want) {
		t.Fatalf("%d logs, want %d", len(res.Logs), len(want))
	}
	for i := range want {
		if res.Logs[i] != want[i] {
			t.Errorf("log %d: %x, want %x", i, res.Logs[i], want[i])
		}
	}
	if res.Compute < 4*recoverFuel {
		t.Errorf("compute %d does not include the recoveries", res.Compute)
	}
}

// TestCacheFindsTheCodeRun: calls to one contract id with different
// bytecode (an upgrade, or two forks) each run their own code, also when
// the caller rewrites its bytecode buffer in place between calls.
func TestCacheFindsTheCodeRun(t *testing.T) {
	v := newVM(t, Config{})
	x := scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")})
	y := scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("y"), "")})
	buf := bytes.Clone(x)
	for i, step := range []struct {
		id   []byte
		code func() []byte
		want string
	}{
		{contractA, func() []byte { return x }, "x"},
		{contractA, func() []byte { return y }, "y"},
		{contractA, func() []byte { return x }, "x"},
		{contractB, func() []byte { return y }, "y"},
		{contractA, func() []byte { return x }, "x"},
		{accountX, func() []byte { return buf }, "x"},
		{accountX, func() []byte { copy(buf, y); return buf }, "y"},
		{accountX, func() []byte { copy(buf, x); return buf }, "x"},
	} {
		res, err := v.Run(bgCtx, &Call{ContractID: step.id, Bytecode: step.code(), Fuel: testFuel, Host: newMemHost(v)})
		if err != nil || string(res.Value) != step.want {
			t.Fatalf("call %d: %v, %q, want %q", i, err, res.Value, step.want)
		}
	}
	if v.Cached() != 5 {
		t.Fatalf("%d cached modules, want 5 (two codes at A and at X, one at B)", v.Cached())
	}
}

// TestImmutableBytecodeByAddress: a caller that promises its bytecode
// never changes has the slice it passed recognised by its address; other
// slices, with other code or the same, still find their own module.
func TestImmutableBytecodeByAddress(t *testing.T) {
	v := newVM(t, Config{})
	x := scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")})
	y := scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("y"), "")})
	for i, step := range []struct {
		code []byte
		want string
	}{{x, "x"}, {x, "x"}, {y, "y"}, {x, "x"}, {bytes.Clone(x), "x"}, {bytes.Clone(y), "y"}, {y, "y"}, {y, "y"}} {
		res, err := v.Run(bgCtx, &Call{ContractID: contractA, Bytecode: step.code, ImmutableBytecode: true, Fuel: testFuel, Host: newMemHost(v)})
		if err != nil || string(res.Value) != step.want {
			t.Fatalf("call %d: %v, %q, want %q", i, err, res.Value, step.want)
		}
	}
	v.mu.Lock()
	seen := v.latest[string(contractA)].seen
	v.mu.Unlock()
	if !sameSlice(seen, y) {
		t.Fatal("the slice last passed is not the one recognised")
	}
}
