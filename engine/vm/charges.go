package vm

import "math/bits"

// The code instrument inserts into function bodies.

// appendDepthCheck writes a function's prologue for the call depth: count
// its frame (depth += 1) and trap past maxDepth. A leaf, a function that
// calls nothing, has no callee to see the count, so it does not keep one:
// it traps where counting would have (depth + 1 > maxDepth) and only then
// records the count the host reads to tell why the call ended. Its
// epilogue (instrumentBody) then has nothing to uncount.
func appendDepthCheck(b []byte, depthIdx, maxDepth uint32, leaf bool) []byte {
	if leaf {
		b = append(b, 0x23)
		b = appendU32(b, depthIdx)
		b = append(b, 0x41)
		b = appendS64(b, int64(maxDepth))
		b = append(b, 0x4f, 0x04, 0x40, 0x23) // i32.ge_u; if; global.get
		b = appendU32(b, depthIdx)
		b = append(b, 0x41, 1, 0x6a, 0x24) // i32.const 1; i32.add; global.set
		b = appendU32(b, depthIdx)
		return append(b, 0x00, 0x0b) // unreachable; end
	}
	b = append(b, 0x23)
	b = appendU32(b, depthIdx)
	b = append(b, 0x41, 1, 0x6a, 0x24) // i32.const 1; i32.add; global.set
	b = appendU32(b, depthIdx)
	b = append(b, 0x23)
	b = appendU32(b, depthIdx)
	b = append(b, 0x41)
	b = appendS64(b, int64(maxDepth))
	return append(b, 0x4b, 0x04, 0x40, 0x00, 0x0b) // i32.gt_u; if; unreachable; end
}

// appendHaltCheck writes, after a call: if halt { br to the wrapper block,
// with a zero of the function's result type }. depth is the control depth
// at the call. The host sets halt when the contract exits: every frame
// then returns at once, running no counted instruction, instead of the
// host unwinding them with a Go panic (which wazero turns into an error
// with a stack trace, a tenth of a short call).
func appendHaltCheck(b []byte, haltIdx uint32, bt byte, depth uint32) []byte {
	b = append(b, 0x23)
	b = appendU32(b, haltIdx)
	b = append(b, 0x04, 0x40) // if
	switch bt {
	case valI32:
		b = append(b, 0x41, 0)
	case valI64:
		b = append(b, 0x42, 0)
	}
	b = append(b, 0x0c) // br, past the if to the wrapper
	b = appendU32(b, depth+1)
	return append(b, 0x0b)
}

// appendCharge writes: fuel -= n; if fuel < 0 { unreachable }.
func appendCharge(b []byte, fuelIdx uint32, n uint64) []byte {
	b = append(b, 0x23)
	b = appendU32(b, fuelIdx)
	b = append(b, 0x42)
	b = appendS64(b, int64(n))
	b = append(b, 0x7d, 0x24) // i64.sub; global.set
	b = appendU32(b, fuelIdx)
	b = append(b, 0x23)
	b = appendU32(b, fuelIdx)
	b = append(b, 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b) // i64.const 0; i64.lt_s; if; unreachable; end
	return b
}

// bulkBytesPerFuel is how many bytes a memory.copy, memory.fill or
// memory.init moves, or an instance's initial memory holds (reset from its
// image between calls), per unit of fuel: their cost grows with their
// size, not their instruction count. memory.grow costs more
// (growFuelPerPage).
const bulkBytesPerFuel = 16

// pageBytes is a wasm memory page.
const pageBytes = 1 << 16

// growFuelPerPage is the fuel of one page asked of memory.grow: 4 per byte.
// Growing costs far more than its size in counted instructions suggests:
// fresh pages from the kernel (a fault per 4 KiB on first touch), cleared,
// and the old memory copied when wazero reallocates. Measured here, a
// grab of 13 MiB took 37 ms of CPU where counted instructions at the same
// fuel run about 0.1 ms; at one unit per 16 bytes a contract could buy a
// second of a producer's CPU for 0.1 token. At 4 per byte no transaction
// (max_contract_compute 100,000,000) can grow past about 380 pages.
const growFuelPerPage = 4 * pageBytes

// bulkOp is a bulk memory instruction in a function body.
type bulkOp struct {
	at   int
	grow bool // memory.grow: its operand counts pages, not bytes
}

// appendBulkCharge writes, before a bulk memory instruction whose size
// operand (bytes, or pages for memory.grow) is on top of the stack:
// fuel -= bytes/16 (pages*growFuelPerPage for memory.grow); if fuel < 0 {
// unreachable }. The operand stays on the stack. memory.grow is charged for
// the pages it asks for, granted or not.
func appendBulkCharge(b []byte, fuelIdx, scratch uint32, grow bool) []byte {
	b = append(b, 0x22) // local.tee
	b = appendU32(b, scratch)
	b = append(b, 0x23)
	b = appendU32(b, fuelIdx)
	b = append(b, 0x20) // local.get
	b = appendU32(b, scratch)
	b = append(b, 0xad, 0x42) // i64.extend_i32_u; i64.const
	if grow {
		b = appendS64(b, int64(bits.TrailingZeros(growFuelPerPage)))
		b = append(b, 0x86) // i64.shl: pages * growFuelPerPage
	} else {
		b = appendS64(b, int64(bits.TrailingZeros(bulkBytesPerFuel)))
		b = append(b, 0x88) // i64.shr_u: bytes / 16
	}
	b = append(b, 0x7d, 0x24) // i64.sub; global.set
	b = appendU32(b, fuelIdx)
	b = append(b, 0x23)
	b = appendU32(b, fuelIdx)
	b = append(b, 0x42, 0x00, 0x53, 0x04, 0x40, 0x00, 0x0b)
	return b
}
