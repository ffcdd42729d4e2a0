package vm

import (
	"encoding/binary"
	"testing"

	"github.com/emberchain/ember/internal/sdkas"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
)

// BenchmarkWarmCall: one contract call from a warm cache (compiled once),
// instantiation, system calls and exit included. Compare with the native
// transfer's apply (engine/chain BenchmarkApplyBlock, per transaction) in
// the same session.
func BenchmarkWarmCall(b *testing.B) {
	minimal := scripted(syscall{sid: chainpb.SystemCallId_exit, args: exitWith(0, []byte("x"), "")})
	sdk := sdkContract(b, "storage")
	for _, bc := range []struct {
		name string
		code []byte
		ep   uint32
		cfg  Config
	}{
		{"exit-only", minimal, 0, Config{}},
		{"sdk-storage-put", sdk, 1, Config{}},
		{"sdk-storage-get", sdk, 2, Config{}},
		{"sdk-storage-get-interpreter", sdk, 2, Config{Interpreter: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := newVM(b, bc.cfg)
			h := newMemHost(v)
			if err := v.Prepare(contractA, bc.code); err != nil {
				b.Fatal(err)
			}
			c := &Call{ContractID: contractA, Bytecode: bc.code, EntryPoint: bc.ep, Args: []byte("hello"), Fuel: testFuel, Host: h}
			benchRuns(b, v, c)
		})
	}
}

// BenchmarkCompile: instrumenting, validating and compiling the SDK's
// storage contract from cold (a new contract id each time).
func BenchmarkCompile(b *testing.B) { benchCompile(b, sdkContract(b, "storage")) }

// benchCompile prepares code under a new contract id each iteration, so
// each one compiles from cold.
func benchCompile(b *testing.B, code []byte) {
	v := newVM(b, Config{CacheEntries: 1})
	id := make([]byte, 25)
	b.ReportMetric(float64(len(code)), "bytes")
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint64(id[1:], uint64(i))
		if err := v.Prepare(id, code); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenTransfer: one transfer of the SDK token contract
// (internal/sdkas's token.ts) from a warm cache, as BenchmarkWarmCall
// measures a call: decoding the arguments, require_authority, two balance
// reads and writes, the event, exit. Compare with the native token's
// transfer (engine/chain BenchmarkApplyBlock, per transaction), and
// compiler with compiler-no-snapshot for what the start-up snapshot saves.
func BenchmarkTokenTransfer(b *testing.B) {
	code := sdkContract(b, "token")
	for _, bc := range []struct {
		name string
		cfg  Config
	}{{"compiler", Config{}}, {"compiler-no-snapshot", Config{NoSnapshot: true}}, {"interpreter", Config{Interpreter: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			v := newVM(b, bc.cfg)
			h := newMemHost(v)
			h.signers[string(contractA)] = true
			h.signers[string(accountX)] = true
			if err := v.Prepare(contractA, code); err != nil {
				b.Fatal(err)
			}
			mint := &Call{ContractID: contractA, Bytecode: code, EntryPoint: sdkas.TokenMint, Fuel: testFuel, Host: h,
				Args: mustMarshal(&tokenpb.MintArguments{To: accountX, Value: 1 << 62})}
			if _, err := v.Run(bgCtx, mint); err != nil {
				b.Fatal(err)
			}
			c := &Call{ContractID: contractA, Bytecode: code, EntryPoint: sdkas.TokenTransfer, Fuel: testFuel, Host: h,
				Args: mustMarshal(&tokenpb.TransferArguments{From: accountX, To: accountY, Value: 1})}
			benchRuns(b, v, c)
		})
	}
}

// BenchmarkWarmCallParallel: the SDK contract's put from GOMAXPROCS
// goroutines at once, each with its own host: calls of one contract take
// separate pooled instances (up to maxIdle stay idle between them).
func BenchmarkWarmCallParallel(b *testing.B) {
	code := sdkContract(b, "storage")
	v := newVM(b, Config{})
	if err := v.Prepare(contractA, code); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &Call{ContractID: contractA, Bytecode: code, EntryPoint: 1, Args: []byte("hello"), Fuel: testFuel, Host: newMemHost(v)}
		for pb.Next() {
			if _, err := v.Run(bgCtx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchRuns times c on v from here on, reporting allocations and the
// compute of a call.
func benchRuns(b *testing.B, v *VM, c *Call) {
	var compute uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		res, err := v.Run(bgCtx, c)
		if err != nil {
			b.Fatal(err)
		}
		compute = res.Compute
	}
	b.ReportMetric(float64(compute), "compute/op")
}
