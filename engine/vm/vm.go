package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/emberchain/ember/engine/koinos"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Config bounds what a contract may use. Zero fields take the defaults.
type Config struct {
	// MaxBytecode is the largest bytecode accepted, in bytes.
	MaxBytecode int
	// MemoryPages caps a contract instance's linear memory, in 64 KiB pages
	// (Koinos: 512, 32 MiB). memory.grow past it returns -1.
	MemoryPages uint32
	// MaxCallDepth caps the active wasm frames of one instance (Koinos's
	// fizzy backend: 251).
	MaxCallDepth uint32
	// MaxContractDepth caps contracts calling contracts.
	MaxContractDepth int
	// CacheEntries bounds the compiled modules kept.
	CacheEntries int
	// Interpreter runs contracts on wazero's interpreter instead of its
	// compiler: slower, for tests that check both agree.
	Interpreter bool
	// NoSnapshot runs every call's start-up instead of starting it from a
	// snapshot (snapshot.go): for tests that check the snapshot changes
	// nothing.
	NoSnapshot bool
}

// Defaults.
const (
	DefaultMaxBytecode      = 1 << 20
	DefaultMemoryPages      = 512
	DefaultMaxCallDepth     = 251
	DefaultMaxContractDepth = 16
	DefaultCacheEntries     = 256
)

func (c Config) withDefaults() Config {
	if c.MaxBytecode <= 0 {
		c.MaxBytecode = DefaultMaxBytecode
	}
	if c.MemoryPages == 0 {
		c.MemoryPages = DefaultMemoryPages
	}
	if c.MaxCallDepth == 0 {
		c.MaxCallDepth = DefaultMaxCallDepth
	}
	if c.MaxContractDepth <= 0 {
		c.MaxContractDepth = DefaultMaxContractDepth
	}
	if c.CacheEntries <= 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	return c
}

// VM runs Koinos contracts. It is safe for concurrent use: compiled modules
// are shared, each call gets its own instance.
type VM struct {
	cfg Config
	rt  wazero.Runtime

	mu    sync.Mutex
	cache map[cacheKey]*compiled
	order []cacheKey // insertion order, for eviction
	// latest is the module each contract id last ran, found without
	// hashing the bytecode (module).
	latest map[string]*compiled
	// idleBytes is the memory of all idle instances, idleBudget its bound
	// (pool.go).
	idleBytes, idleBudget int64
}

// cacheKey is a contract id and its bytecode's hash: a contract upgraded
// in place gets a new entry, and two forks with different code at the same
// id do not share one.
type cacheKey struct {
	id   string
	code [32]byte
}

type compiled struct {
	// code is the bytecode the module was compiled from, a copy, to find
	// a contract's module by comparing bytes rather than hashing them.
	code     []byte
	mod      wazero.CompiledModule
	hasStart bool
	// hasMemory: the module defines a memory (wazero's Module.Memory is a
	// typed nil otherwise, not a nil interface).
	hasMemory bool
	// reusable: its instances can be reset and pooled (pool.go);
	// numGlobals, the module's own globals, exported by instrument; image,
	// a fresh instance's memory. Set before the module is shared, then
	// read-only.
	reusable   bool
	numGlobals uint32
	image      memoryImage
	// split and startPure: the start-up the module may run ahead
	// (instrumented); snap, what it left, when it could (snapshot.go):
	// then image is the memory after it. Set before the module is shared.
	split, startPure bool
	snap             *snapshot
	// seen is the caller's bytecode last found equal to code in a call
	// that promised it immutable (VM.module). Guarded by VM.mu.
	seen []byte
	// users counts the calls holding the module, evicted says the cache
	// dropped it: it is closed when both say nobody needs it, never while
	// a call may still instantiate it. idle are its pooled instances,
	// closed with it. Guarded by VM.mu.
	users   int
	evicted bool
	idle    []*instance
}

// closeModule releases a module and its idle instances. Called with
// VM.mu held, or before the module was shared.
func (v *VM) closeModule(c *compiled) {
	for _, in := range c.idle {
		v.idleBytes -= in.memBytes
		_ = in.mod.Close(context.Background())
	}
	c.idle = nil
	_ = c.mod.Close(context.Background())
}

// New builds a VM. It uses wazero's compiler where wazero has one (amd64,
// arm64) and its interpreter elsewhere; the instrumentation (instrument)
// makes the outcome the same on both.
func New(cfg Config) (*VM, error) {
	cfg = cfg.withDefaults()
	rc := wazero.NewRuntimeConfig()
	if cfg.Interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	rc = rc.
		WithCoreFeatures(api.CoreFeaturesV2.SetEnabled(api.CoreFeatureSIMD, false)).
		WithMemoryLimitPages(cfg.MemoryPages).
		WithCloseOnContextDone(false)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	i32 := api.ValueTypeI32
	_, err := rt.NewHostModuleBuilder(importModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(invokeSystemCall), []api.ValueType{i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}).
		Export(importName).
		Instantiate(ctx)
	if err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("vm: host module: %w", err)
	}
	return &VM{cfg: cfg, rt: rt, cache: map[cacheKey]*compiled{}, latest: map[string]*compiled{}, idleBudget: defaultIdleMemory}, nil
}

// Close releases the runtime and every compiled module.
func (v *VM) Close() error { return v.rt.Close(context.Background()) }

// Prepare checks bytecode as upload_contract must before storing it (the
// size, the instrumentation's rules, wazero's validation) and keeps the
// compiled module for the contract's first call. The error is an
// ErrInvalidModule with the reason.
func (v *VM) Prepare(id, code []byte) error {
	c, err := v.module(id, code, false)
	if err != nil {
		return err
	}
	v.release(c)
	return nil
}

func (v *VM) compile(code []byte) (*compiled, error) {
	if len(code) > v.cfg.MaxBytecode {
		return nil, invalid("%d bytes, more than the %d allowed", len(code), v.cfg.MaxBytecode)
	}
	inst, err := instrumentModule(code, v.cfg.MaxCallDepth, !v.cfg.NoSnapshot)
	if err != nil {
		return nil, err
	}
	mod, err := v.rt.CompileModule(context.Background(), inst.code)
	if err != nil && inst.split {
		// The cut left operands on the stack (split.go): the module is
		// judged, and run, without it.
		if inst, err = instrumentModule(code, v.cfg.MaxCallDepth, false); err != nil {
			return nil, err
		}
		mod, err = v.rt.CompileModule(context.Background(), inst.code)
	}
	if err != nil {
		return nil, invalid("%v", err)
	}
	ok := false
	for name := range mod.ExportedFunctions() {
		if name == "_start" {
			ok = true
		}
	}
	if !ok {
		_ = mod.Close(context.Background())
		return nil, invalid("no exported _start function")
	}
	c := &compiled{
		code:       bytes.Clone(code),
		mod:        mod,
		hasStart:   inst.hasStart,
		hasMemory:  inst.hasMemory,
		reusable:   inst.reusable,
		numGlobals: inst.numGlobals,
		split:      inst.split,
		startPure:  inst.startPure,
	}
	v.preparePool(c)
	return c, nil
}

// module returns the compiled module for a contract, compiling it on first
// use, and holds it until release. Compiles run outside the lock; two
// racing first calls may both compile, and one result is kept.
//
// The module the contract id last ran is tried first: comparing the
// bytecode with its copy costs a memcmp, where hashing it cost a tenth of
// a short call. The cache itself stays keyed by the SHA-256, so forks
// with different code at one id each find their own.
//
// With immutable (Call.ImmutableBytecode) the bytes the caller passes
// never change, so the slice last found equal is recognised by its
// address and length, without comparing 40 KB again.
func (v *VM) module(id, code []byte, immutable bool) (*compiled, error) {
	v.mu.Lock()
	c, ok := v.latest[string(id)]
	if ok {
		c.users++ // held while compared: c.code never changes
		if immutable && sameSlice(c.seen, code) {
			v.mu.Unlock()
			return c, nil
		}
	}
	v.mu.Unlock()
	if ok {
		if bytes.Equal(c.code, code) {
			if immutable {
				v.mu.Lock()
				c.seen = code
				v.mu.Unlock()
			}
			return c, nil
		}
		v.release(c)
	}
	key := cacheKey{id: string(id), code: sha256.Sum256(code)}
	v.mu.Lock()
	c, ok = v.cache[key]
	if ok {
		c.users++
		v.latest[key.id] = c
	}
	v.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := v.compile(code)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if have, ok := v.cache[key]; ok {
		v.closeModule(c)
		have.users++
		v.latest[key.id] = have
		return have, nil
	}
	if len(v.order) >= v.cfg.CacheEntries {
		oldKey := v.order[0]
		old := v.cache[oldKey]
		delete(v.cache, oldKey)
		if v.latest[oldKey.id] == old {
			delete(v.latest, oldKey.id)
		}
		v.order = v.order[1:]
		old.evicted = true
		if old.users == 0 {
			v.closeModule(old)
		}
	}
	c.users = 1
	v.cache[key] = c
	v.latest[key.id] = c
	v.order = append(v.order, key)
	return c, nil
}

// sameSlice reports whether a and b are the same bytes in memory: one
// backing array, one length.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// release ends a hold taken by module.
func (v *VM) release(c *compiled) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c.users--
	if c.evicted && c.users == 0 {
		v.closeModule(c)
	}
}

// Cached reports how many compiled modules the cache holds.
func (v *VM) Cached() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cache)
}

// Call is one contract call.
type Call struct {
	ContractID []byte
	Bytecode   []byte
	// ImmutableBytecode promises that Bytecode's bytes never change, now
	// or after the call (the chain's state values are never written in
	// place): the VM then recognises the slice it last saw by its
	// address instead of comparing the bytes.
	ImmutableBytecode bool
	EntryPoint        uint32
	Args              []byte
	// Caller is the calling contract's id, empty when a transaction calls.
	Caller          []byte
	CallerPrivilege chainpb.Privilege
	// ReadOnly refuses writes (read_contract, or a read-only caller).
	ReadOnly bool
	// Fuel is the compute the call may use.
	Fuel uint64
	// Depth is 0 for a call from a transaction, one more per nested call.
	Depth int
	Host  Host
}

// Result is what a call produced. Compute is set even when the call
// fails: a reverted call is charged. After a failure, Events and Logs
// hold what the call emitted before it; the caller drops them with the
// call's state changes.
type Result struct {
	Value   []byte
	Events  []*protocol.EventData
	Logs    []string
	Compute uint64
}

// Run runs a call to its end: the contract's exit, a return from _start,
// a trap or running out of fuel. The error is a *koinos.Error: a
// reversion (code >= 1) for anything the contract did, including running
// out of compute, trapping and exiting with a positive code; a failure
// (code <= -1) when it exited with one; internal_error when the host
// failed.
func (v *VM) Run(ctx context.Context, c *Call) (*Result, error) {
	res := &Result{}
	if c.Depth > v.cfg.MaxContractDepth {
		return res, koinos.Errorf(chainpb.ErrorCode_reversion, "contract call depth exceeds %d", v.cfg.MaxContractDepth)
	}
	comp, err := v.module(c.ContractID, c.Bytecode, c.ImmutableBytecode)
	if err != nil {
		return res, koinos.Errorf(chainpb.ErrorCode_invalid_contract, "%v", err)
	}
	defer v.release(comp)
	fr := &frame{vm: v, call: c, res: res, hasMemory: comp.hasMemory}
	ctx = context.WithValue(ctx, frameKey{}, fr)
	in, err := v.acquire(ctx, comp)
	if err != nil {
		return res, koinos.Errorf(chainpb.ErrorCode_reversion, "contract cannot be instantiated: %v", err)
	}
	// Runs before release: the instance goes back to the module's pool,
	// or is closed, while the call still holds the module.
	defer v.putBack(comp, in)
	fr.fuel, fr.depth, fr.halt = in.fuel, in.depth, in.halt
	budget := min(c.Fuel, math.MaxInt64)
	fr.fuel.Set(budget)

	// The instance's initial memory was allocated and cleared for this
	// call (or reset to that state): charged like memory.grow.
	err = nil
	if snap := comp.snap; snap != nil {
		// Started from the snapshot: the start-up's fuel is charged as it
		// ran, and with less than that the call runs out of compute as it
		// would have in the start-up (snapshot.go).
		if comp.hasMemory && !fr.charge(snap.memCharge) {
			fr.err = fr.outOfCompute()
		}
		if fr.err == nil && fr.charge(snap.fuel) {
			_, err = in.main.Call(ctx)
		}
	} else {
		if comp.hasMemory && !fr.charge(uint64(in.mod.Memory().Size())/bulkBytesPerFuel) {
			fr.err = fr.outOfCompute()
		}
		if fr.err == nil && in.start != nil {
			_, err = in.start.Call(ctx)
		}
		if fr.err == nil && err == nil && !fr.exited {
			_, err = in.main.Call(ctx)
		}
	}
	left := int64(fr.fuel.Get())
	res.Compute = budget
	if left >= 0 {
		res.Compute = budget - uint64(left)
	}
	switch {
	case fr.err != nil:
		return res, fr.err
	case fr.exited:
		return res, nil
	case left < 0:
		return res, koinos.Errorf(chainpb.ErrorCode_insufficient_rc, "contract ran out of compute (limit %d)", budget)
	case uint32(fr.depth.Get()) > v.cfg.MaxCallDepth:
		return res, koinos.Errorf(chainpb.ErrorCode_reversion, "contract exceeded the call depth of %d", v.cfg.MaxCallDepth)
	case err != nil:
		return res, koinos.Errorf(chainpb.ErrorCode_reversion, "contract trapped: %v", trapMessage(err))
	}
	// Returned from _start without exit: success with no result.
	return res, nil
}

// trapMessage keeps the first line of wazero's error: the rest is a wasm
// stack trace of no use to the caller.
func trapMessage(err error) string {
	s := err.Error()
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// instanceConfig is every instance's configuration: anonymous (many
// instances of one contract may run at once), no implicit start function
// (Run calls it, metered), and a fixed random source: contracts import no
// WASI, so nothing reads it, and wazero otherwise seeds a new math/rand
// source per instance, a seventh of the cost of instantiating.
var instanceConfig = wazero.NewModuleConfig().WithName("").WithStartFunctions().WithRandSource(zeroReader{})

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type frameKey struct{}

// frame is one running call, reached from the host function through the
// context.
type frame struct {
	vm        *VM
	call      *Call
	res       *Result
	fuel      api.MutableGlobal
	depth     api.Global
	halt      api.MutableGlobal
	hasMemory bool
	// exited: the contract called exit with success; err: the call ended
	// with this error (exit with an error code, or an aborting system call).
	exited bool
	err    error
}

// charge takes n fuel; false when the call has none left.
func (f *frame) charge(n uint64) bool {
	left := int64(f.fuel.Get())
	if n > math.MaxInt64 || left < int64(n) {
		f.fuel.Set(math.MaxUint64) // -1: out of fuel
		return false
	}
	f.fuel.Set(uint64(left - int64(n)))
	return true
}

// errAbort is what the host panics with to end a call from a system call
// (an error at or above reversion; exit instead sets the halt flag,
// instrument); the frame says why, so the error wazero returns for it is
// not used. A *sys.ExitError because wazero hands that back as is, where
// it formats any other panic value with a wasm stack trace.
var errAbort = sys.NewExitError(0)
