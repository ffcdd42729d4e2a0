package vm

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Start-up snapshot.
//
// Every call of a contract repeats the module's start function and the
// part of _start before anything can reach a system call (split.go): the
// AssemblyScript runtime's and the SDK's global initialization. That work
// reads nothing but the module, so preparePool runs it once, on an
// instance with no host behind it, and keeps the memory and globals it
// left and the fuel it used. Pooled instances are then reset to that
// state instead of the fresh one, and a call charges the recorded fuel
// and runs only the rest (exportMain, or _start when only a start
// function was run ahead).
//
// Compute is what it was, unit for unit: the skipped code charged, on
// every call, exactly the recorded fuel, in charges made before anything
// else ran (the initial memory's charge aside, kept first), and with
// less fuel than that the call ran out of compute before reaching a
// system call, which is what a call charged the recorded fuel ahead
// does (Run). Any failure of the run ahead (a trap, a system call, more
// fuel than snapshotFuel, a global not an integer, an early return from
// exportInit) leaves the module on the path without a snapshot.

// snapshotFuel bounds the start-up run once at compile time: a contract
// cannot make its upload, or a node's first call of it, spin. Whether a
// module gets a snapshot changes no call's outcome, so the bound is the
// node's own choice.
const snapshotFuel = 1 << 20

// snapshot is what a module's instances are reset to after its start-up
// ran once.
type snapshot struct {
	// fuel is what the start-up used, charged on every call.
	fuel uint64
	// memCharge is the fuel of the fresh instance's memory: charged per
	// call as if allocated, from its size before the start-up grew it.
	memCharge uint64
	// globals are the values of instance.globals after the start-up.
	globals []uint64
	// main is the export a call runs.
	main string
}

// takeSnapshot runs the start-up of c on in, a fresh instance, and
// returns what instances are reset to, or nil when the module has no
// start-up to skip or it cannot be run ahead. in is left in an
// unspecified state.
func (v *VM) takeSnapshot(c *compiled, in *instance) (*snapshot, memoryImage) {
	if c.hasStart && !c.startPure || !c.hasStart && !c.split {
		return nil, memoryImage{}
	}
	for _, g := range in.globals {
		if t := g.Type(); t != api.ValueTypeI32 && t != api.ValueTypeI64 {
			// A reference's value points into its own instance.
			return nil, memoryImage{}
		}
	}
	snap := &snapshot{main: "_start"}
	if c.hasMemory {
		snap.memCharge = uint64(in.mod.Memory().Size()) / bulkBytesPerFuel
	}
	// No frame in the context: a system call aborts the run
	// (invokeSystemCall).
	ctx := context.Background()
	in.fuel.Set(snapshotFuel)
	if c.hasStart {
		if _, err := in.start.Call(ctx); err != nil {
			return nil, memoryImage{}
		}
	}
	if c.split {
		snap.main = exportMain
		done := in.mod.ExportedGlobal(exportInitDone)
		if _, err := in.mod.ExportedFunction(exportInit).Call(ctx); err != nil || done == nil || done.Get() != 1 {
			return nil, memoryImage{}
		}
	}
	left := int64(in.fuel.Get())
	if left < 0 || in.depth.Get() != 0 || in.halt.Get() != 0 {
		return nil, memoryImage{}
	}
	snap.fuel = snapshotFuel - uint64(left)
	in.fuel.Set(0)
	for _, g := range in.globals {
		snap.globals = append(snap.globals, g.Get())
	}
	var img memoryImage
	if c.hasMemory {
		mem := in.mod.Memory()
		buf, _ := mem.Read(0, mem.Size())
		img = memoryImage{size: mem.Size(), data: trimZeroes(buf)}
	}
	return snap, img
}
