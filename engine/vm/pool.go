package vm

import (
	"context"
	"errors"
	"strconv"

	"github.com/tetratelabs/wazero/api"
)

// Instance pool.
//
// Instantiating a module for every call allocated and cleared its memory,
// evaluated its globals and copied its data segments, most of a short
// call's cost. So each compiled module keeps a few idle instances, each
// put back exactly as a fresh instance of the module would be:
//
//   - memory: an instance whose memory grew is closed, never pooled (wasm
//     memory cannot shrink); otherwise its whole memory is overwritten
//     with the image a fresh instance has (zeroes and the active data
//     segments), taken at compile time from an instance none of whose
//     code ran (preparePool);
//   - globals: instrument exports every global of the module; each
//     instance records its mutable ones' values right after instantiation
//     (before any code ran) and sets them back. Per instance, because a
//     funcref global's value points into its own instance;
//   - tables and segments: the only instructions that change them once
//     the module is instantiated are table.set and data.drop (every other
//     table instruction is refused), and a module that uses either is
//     never pooled (instrumented.reusable);
//   - nothing else of a wasm instance changes while it runs.
//
// An instance is taken out of the idle list under VM.mu and put back only
// once its call (nested calls included) has returned and it was reset, so
// two calls, on one goroutine or two, never share one.

// maxIdle bounds the idle instances kept per compiled module: enough for
// a few concurrent callers and a contract re-entered by a nested call.
const maxIdle = 4

// defaultIdleMemory bounds the memory of all idle instances of a VM: a
// contract may declare up to MemoryPages (32 MiB) of initial memory, and
// 256 cached contracts each keeping such instances would hold gigabytes.
// Past it, instances are closed after their call as before pooling.
const defaultIdleMemory = 64 << 20

// globalExport is the name instrument exports a module's own global i as.
func globalExport(i uint32) string { return "__ember_global_" + strconv.FormatUint(uint64(i), 10) }

// instance is one instantiation of a compiled module with what a call
// needs of it looked up once.
type instance struct {
	mod   api.Module
	fuel  api.MutableGlobal
	depth api.Global
	halt  api.MutableGlobal
	start api.Function // the module's start function, nil without one
	main  api.Function // _start
	// globals are the instance's mutable globals (the instrumentation's
	// fuel, depth and halt included), initial their values at
	// instantiation.
	globals []api.MutableGlobal
	initial []uint64
	// memBytes is its memory's size, counted against VM.idleBudget while
	// it is idle (a pooled instance's memory never grew).
	memBytes int64
}

// instantiate creates an instance of c.
func (v *VM) instantiate(ctx context.Context, c *compiled) (*instance, error) {
	mod, err := v.rt.InstantiateModule(ctx, c.mod, instanceConfig)
	if err != nil {
		return nil, err
	}
	main := "_start"
	if c.snap != nil {
		main = c.snap.main
	}
	in := &instance{
		mod:   mod,
		fuel:  mod.ExportedGlobal(exportFuel).(api.MutableGlobal),
		depth: mod.ExportedGlobal(exportDepth),
		halt:  mod.ExportedGlobal(exportHalt).(api.MutableGlobal),
		main:  mod.ExportedFunction(main),
	}
	if c.hasStart {
		in.start = mod.ExportedFunction(exportStart)
	}
	if c.hasMemory {
		in.memBytes = int64(mod.Memory().Size())
	}
	if !c.reusable {
		return in, nil
	}
	for i := range c.numGlobals {
		if g, ok := mod.ExportedGlobal(globalExport(i)).(api.MutableGlobal); ok {
			in.globals = append(in.globals, g)
			in.initial = append(in.initial, g.Get())
		}
	}
	for _, g := range []api.Global{in.fuel, in.depth, in.halt} {
		if g, ok := g.(api.MutableGlobal); ok {
			in.globals = append(in.globals, g)
			in.initial = append(in.initial, g.Get())
		}
	}
	if c.snap != nil && !in.reset(c) {
		// Not reachable: the snapshot's memory was grown within the
		// limits from this very size.
		_ = mod.Close(ctx)
		return nil, errSnapshotReset
	}
	return in, nil
}

var errSnapshotReset = errors.New("vm: a fresh instance cannot take the start-up snapshot")

// preparePool instantiates a module just compiled, before any code of it
// ran, and records the memory image every instance is reset to. A module
// that is not reusable, or that cannot be instantiated (Run then reports
// why, on every call), gets no pool.
func (v *VM) preparePool(c *compiled) {
	if !c.reusable {
		return
	}
	in, err := v.instantiate(context.Background(), c)
	if err != nil {
		c.reusable = false
		return
	}
	if c.hasMemory {
		mem := in.mod.Memory()
		buf, _ := mem.Read(0, mem.Size())
		c.image = memoryImage{size: mem.Size(), data: trimZeroes(buf)}
	}
	if snap, img := v.takeSnapshot(c, in); snap != nil {
		c.snap, c.image = snap, img
	}
	_ = in.mod.Close(context.Background())
}

// memoryImage is a fresh instance's memory: size bytes, data then zeroes.
type memoryImage struct {
	size uint32
	data []byte
}

// trimZeroes copies b without its trailing zero bytes.
func trimZeroes(b []byte) []byte {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return append([]byte(nil), b[:n]...)
}

// acquire takes an idle instance of c, or instantiates one.
func (v *VM) acquire(ctx context.Context, c *compiled) (*instance, error) {
	v.mu.Lock()
	if n := len(c.idle); n > 0 {
		in := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		v.idleBytes -= in.memBytes
		v.mu.Unlock()
		return in, nil
	}
	v.mu.Unlock()
	return v.instantiate(ctx, c)
}

// putBack resets an instance its call is done with and keeps it idle, or
// closes it when it cannot be reset, or enough are idle, or keeping it
// would take the VM's idle instances past their memory budget.
func (v *VM) putBack(c *compiled, in *instance) {
	if !c.reusable || !in.reset(c) {
		_ = in.mod.Close(context.Background())
		return
	}
	v.mu.Lock()
	if !c.evicted && len(c.idle) < maxIdle && v.idleBytes+in.memBytes <= v.idleBudget {
		c.idle = append(c.idle, in)
		v.idleBytes += in.memBytes
		in = nil
	}
	v.mu.Unlock()
	if in != nil {
		_ = in.mod.Close(context.Background())
	}
}

// reset puts the instance back in the state instantiation left it in, or
// the start-up snapshot when the module has one; false when it cannot
// (its memory grew).
func (in *instance) reset(c *compiled) bool {
	if c.hasMemory {
		mem := in.mod.Memory()
		size := mem.Size()
		if size > c.image.size {
			return false
		}
		if size < c.image.size {
			// A fresh instance, whose start-up grew the memory in the
			// snapshot.
			if _, ok := mem.Grow((c.image.size - size) / pageBytes); !ok {
				return false
			}
			in.memBytes = int64(c.image.size)
		}
		buf, _ := mem.Read(0, c.image.size)
		n := copy(buf, c.image.data)
		clear(buf[n:])
	}
	values := in.initial
	if c.snap != nil {
		values = c.snap.globals
	}
	for i, g := range in.globals {
		g.Set(values[i])
	}
	return true
}
