package vm

import (
	"errors"
	"fmt"
	"math"
)

// Names the instrumented module exports for the host.
const (
	exportFuel  = "__ember_fuel"
	exportDepth = "__ember_depth"
	exportHalt  = "__ember_halt"
	exportStart = "__ember_start" // the module's start function, run by the host once fuel is set
)

// Koinos's only import: the system-call dispatcher.
const (
	importModule = "env"
	importName   = "invoke_system_call"
)

// ErrInvalidModule wraps every reason a bytecode is refused.
var ErrInvalidModule = errors.New("vm: invalid contract bytecode")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidModule, fmt.Sprintf(format, args...))
}

// Section ids, in the order a module must carry them (the binary format,
// §5.5.2; data count sits between element and code).
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

var sectionOrder = []byte{secType, secImport, secFunction, secTable, secMemory, secGlobal, secExport, secStart, secElement, secDataCount, secCode, secData}

// Value types.
const (
	valI32 = 0x7f
	valI64 = 0x7e
	valF32 = 0x7d
	valF64 = 0x7c
)

// instrument rewrites a contract's bytecode so that running it is
// deterministic and bounded whatever engine runs it:
//
//   - fuel: a mutable i64 global, exported, is decremented on entry to each
//     function by the number of instructions in its body outside loops,
//     and at the head of each loop iteration by the number in the loop's
//     body outside nested loops. Every instruction executed belongs to one
//     such charged segment, so fuel bounds the work; when it goes negative
//     the module traps. The count depends only on the bytecode, never on
//     the machine or the engine's speed.
//   - call depth: a mutable i32 global counts active wasm frames; a
//     function entered past maxDepth traps. The engine's own stack limit
//     depends on native frame sizes (so on the machine); this one does not.
//     A leaf (no call in its body) only checks, without counting
//     (appendDepthCheck): it traps at the same depth.
//   - halt: a mutable i32 global, exported, tested after every call and
//     call_indirect; once the host set it (the contract called exit) each
//     frame branches to its end and returns a zero, so the call unwinds
//     without running or charging another counted instruction.
//   - every global of the module is exported too (globalExport), so that
//     a pooled instance's can be reset (pool.go).
//   - the start function, if any, is exported instead of run on
//     instantiation, so it runs metered like the rest.
//
// It also refuses what would make execution differ between machines or
// escape the sandbox: imports other than env.invoke_system_call,
// floating-point instructions (NaN bit patterns differ between CPUs),
// SIMD, threads, tail calls and exceptions, and functions returning more
// than one value. Every refusal is an ErrInvalidModule.
func instrument(code []byte, maxDepth uint32) ([]byte, error) {
	inst, err := instrumentModule(code, maxDepth)
	if err != nil {
		return nil, err
	}
	return inst.code, nil
}

// instrumented is a module instrument rewrote, with what the VM needs to
// know of it.
type instrumented struct {
	code      []byte
	hasStart  bool
	hasMemory bool
	// numGlobals is the module's own globals, each exported as
	// globalExport(i) so that a pooled instance's can be reset.
	numGlobals uint32
	// reusable: no instruction changes the instance's tables or segments
	// (table.set, data.drop), so resetting memory and globals gives back a
	// fresh instance (pool.go).
	reusable bool
}

func instrumentModule(code []byte, maxDepth uint32) (*instrumented, error) {
	m, err := parseModule(code)
	if err != nil {
		return nil, err
	}
	fuelIdx := m.numGlobals
	depthIdx := m.numGlobals + 1
	body, err := m.instrumentCode(fuelIdx, depthIdx, maxDepth)
	if err != nil {
		return nil, err
	}
	m.sections[secCode] = body

	// Three globals appended to the module's own: indices past theirs.
	globals := appendU32(nil, m.numGlobals+3)
	globals = append(globals, m.globalEntries...)
	globals = append(globals, valI64, 1, 0x42, 0, 0x0b) // fuel: mut i64 = 0
	globals = append(globals, valI32, 1, 0x41, 0, 0x0b) // depth: mut i32 = 0
	globals = append(globals, valI32, 1, 0x41, 0, 0x0b) // halt: mut i32 = 0
	m.sections[secGlobal] = globals

	if uint64(m.numExports)+uint64(m.numGlobals)+4 > math.MaxUint32 {
		return nil, invalid("too many exports")
	}
	nExports := m.numExports + m.numGlobals + 3
	if m.hasStart {
		nExports++
	}
	exports := appendU32(nil, nExports)
	exports = append(exports, m.exportEntries...)
	exports = appendExport(exports, exportFuel, 0x03, fuelIdx)
	exports = appendExport(exports, exportDepth, 0x03, depthIdx)
	exports = appendExport(exports, exportHalt, 0x03, depthIdx+1)
	for i := range m.numGlobals {
		exports = appendExport(exports, globalExport(i), 0x03, i)
	}
	if m.hasStart {
		exports = appendExport(exports, exportStart, 0x00, m.startFunc)
	}
	m.sections[secExport] = exports
	delete(m.sections, secStart)

	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	for _, id := range sectionOrder {
		s, ok := m.sections[id]
		if !ok {
			continue
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(s)))
		out = append(out, s...)
	}
	_, hasMemory := m.sections[secMemory]
	return &instrumented{
		code:       out,
		hasStart:   m.hasStart,
		hasMemory:  hasMemory,
		numGlobals: m.numGlobals,
		reusable:   !m.changesSegments,
	}, nil
}

func appendExport(b []byte, name string, kind byte, idx uint32) []byte {
	b = appendU32(b, uint32(len(name)))
	b = append(b, name...)
	b = append(b, kind)
	return appendU32(b, idx)
}

// module is what instrument needs of a parsed module.
type module struct {
	sections      map[byte][]byte
	types         []funcType
	funcTypes     []uint32 // type index of each defined function
	numImported   uint32   // imported functions (0 or 1)
	numGlobals    uint32
	globalEntries []byte // the global section after its count
	numExports    uint32
	exportEntries []byte
	hasStart      bool
	startFunc     uint32
	// changesSegments: a body uses table.set or data.drop, the only
	// instructions accepted that change an instance's state outside its
	// memory and globals.
	changesSegments bool
}

type funcType struct{ params, results []byte }

func parseModule(code []byte) (*module, error) {
	if len(code) < 8 || string(code[:4]) != "\x00asm" {
		return nil, invalid("not a WebAssembly module (bad magic)")
	}
	if code[4] != 1 || code[5] != 0 || code[6] != 0 || code[7] != 0 {
		return nil, invalid("unsupported WebAssembly version")
	}
	m := &module{sections: map[byte][]byte{}}
	r := reader{b: code, off: 8}
	last := -1
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		content, err := r.bytes(int(size))
		if err != nil {
			return nil, err
		}
		if id == secCustom {
			continue // names and debug info: dropped
		}
		pos := -1
		for i, s := range sectionOrder {
			if s == id {
				pos = i
			}
		}
		if pos < 0 {
			return nil, invalid("unknown section id %d", id)
		}
		if pos <= last {
			return nil, invalid("section %d out of order or repeated", id)
		}
		last = pos
		m.sections[id] = content
	}
	if s, ok := m.sections[secDataCount]; ok {
		r := reader{b: s}
		if _, err := r.u32(); err != nil || !r.done() {
			return nil, invalid("malformed data count section")
		}
	}
	// Sections instrument passes on without reading them: their lengths
	// are checked all the same (vector, segments.go).
	if _, _, err := m.vector(secMemory); err != nil {
		return nil, err
	}
	for _, check := range []func() error{m.checkExports, m.checkData, m.checkElements} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	if err := m.parseTypes(); err != nil {
		return nil, err
	}
	if err := m.parseImports(); err != nil {
		return nil, err
	}
	if err := m.parseFunctions(); err != nil {
		return nil, err
	}
	if err := m.checkTables(); err != nil {
		return nil, err
	}
	if err := m.parseGlobals(); err != nil {
		return nil, err
	}
	if err := m.parseExports(); err != nil {
		return nil, err
	}
	if s, ok := m.sections[secStart]; ok {
		r := reader{b: s}
		idx, err := r.u32()
		if err != nil || !r.done() {
			return nil, invalid("malformed start section")
		}
		m.hasStart, m.startFunc = true, idx
	}
	return m, nil
}

func (m *module) parseTypes() error {
	r, n, err := m.vector(secType)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		form, err := r.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return invalid("type %d is not a function type", i)
		}
		var ft funcType
		for _, dst := range []*[]byte{&ft.params, &ft.results} {
			k, err := r.u32()
			if err != nil {
				return err
			}
			vals, err := r.bytes(int(k))
			if err != nil {
				return err
			}
			for _, v := range vals {
				if err := checkValType(v); err != nil {
					return err
				}
			}
			*dst = vals
		}
		m.types = append(m.types, ft)
	}
	if !r.done() {
		return invalid("trailing bytes in type section")
	}
	return nil
}

func checkValType(v byte) error {
	switch v {
	case valI32, valI64:
		return nil
	case valF32, valF64:
		return invalid("floating-point value type: floating point is not deterministic across machines")
	}
	return invalid("unsupported value type 0x%02x", v)
}

// parseImports accepts only env.invoke_system_call, with Koinos's
// signature (i32 x 6) -> i32.
func (m *module) parseImports() error {
	r, n, err := m.vector(secImport)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		mod, err := r.name()
		if err != nil {
			return err
		}
		name, err := r.name()
		if err != nil {
			return err
		}
		kind, err := r.byte()
		if err != nil {
			return err
		}
		if mod != importModule || name != importName || kind != 0x00 {
			return invalid("import %s.%s: a contract may import only %s.%s", mod, name, importModule, importName)
		}
		ti, err := r.u32()
		if err != nil {
			return err
		}
		if ti >= uint32(len(m.types)) {
			return invalid("import %s.%s: type index %d out of range", mod, name, ti)
		}
		ft := m.types[ti]
		if string(ft.params) != "\x7f\x7f\x7f\x7f\x7f\x7f" || string(ft.results) != "\x7f" {
			return invalid("import %s.%s must have type (i32 i32 i32 i32 i32 i32) -> i32", mod, name)
		}
		m.numImported++
	}
	if m.numImported > 1 || !r.done() {
		return invalid("malformed import section")
	}
	return nil
}

func (m *module) parseFunctions() error {
	r, n, err := m.vector(secFunction)
	if err != nil {
		return err
	}
	if n > maxFunctions {
		return invalid("%d functions, more than %d", n, maxFunctions)
	}
	for i := uint32(0); i < n; i++ {
		ti, err := r.u32()
		if err != nil {
			return err
		}
		if ti >= uint32(len(m.types)) {
			return invalid("function %d: type index %d out of range", i, ti)
		}
		m.funcTypes = append(m.funcTypes, ti)
	}
	if !r.done() {
		return invalid("trailing bytes in function section")
	}
	return nil
}

// maxFunctions bounds the function count before anything is allocated
// for it.
const maxFunctions = 1 << 16

// maxTableEntries bounds a table's initial size: every call allocates it
// (tables cannot grow: table.grow is refused).
const maxTableEntries = 1 << 14

func (m *module) checkTables() error {
	r, n, err := m.vector(secTable)
	if err != nil {
		return err
	}
	for i := uint32(0); i < n; i++ {
		if _, err := r.byte(); err != nil { // reference type
			return err
		}
		flags, err := r.byte()
		if err != nil {
			return err
		}
		lo, err := r.u32()
		if err != nil {
			return err
		}
		if flags&1 != 0 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if lo > maxTableEntries {
			return invalid("table %d of %d entries, more than %d", i, lo, maxTableEntries)
		}
	}
	return nil
}

// vector reads the count of a section that is a vector: the reader is
// left at the first entry; an absent section has none.
//
// Every entry takes at least a byte, so a count past the bytes left is
// refused: wazero allocates for the count it reads before decoding the
// entries, and a few bytes claiming a billion exports would exhaust the
// node's memory.
func (m *module) vector(id byte) (reader, uint32, error) {
	r := reader{b: m.sections[id]}
	if r.done() {
		return r, 0, nil
	}
	n, err := r.u32()
	if err == nil && uint64(n) > uint64(len(r.b)-r.off) {
		return r, 0, invalid("section %d claims %d entries in %d bytes", id, n, len(r.b)-r.off)
	}
	return r, n, err
}

// vectorHead reads the count of a section that is a vector and returns
// it with the entries' bytes, which instrument appends to unparsed. room
// is how many entries instrument adds.
func (m *module) vectorHead(id byte, room uint32, what string) (uint32, []byte, error) {
	r, n, err := m.vector(id)
	if err != nil {
		return 0, nil, err
	}
	if n > math.MaxUint32-room {
		return 0, nil, invalid("too many %s", what)
	}
	return n, r.b[r.off:], nil
}

func (m *module) parseGlobals() (err error) {
	m.numGlobals, m.globalEntries, err = m.vectorHead(secGlobal, 3, "globals")
	return err
}

func (m *module) parseExports() (err error) {
	m.numExports, m.exportEntries, err = m.vectorHead(secExport, 4, "exports")
	return err
}

// instrumentCode rewrites every function body (see instrument).
func (m *module) instrumentCode(fuelIdx, depthIdx, maxDepth uint32) ([]byte, error) {
	r, n, err := m.vector(secCode)
	if err != nil {
		return nil, err
	}
	if n != uint32(len(m.funcTypes)) {
		return nil, invalid("%d function bodies for %d functions", n, len(m.funcTypes))
	}
	out := appendU32(nil, n)
	for i := uint32(0); i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(int(size))
		if err != nil {
			return nil, err
		}
		ft := m.types[m.funcTypes[i]]
		if len(ft.results) > 1 {
			return nil, invalid("function %d returns %d values; at most one is supported", m.numImported+i, len(ft.results))
		}
		nb, changes, err := instrumentBody(body, ft, fuelIdx, depthIdx, maxDepth)
		if err != nil {
			return nil, fmt.Errorf("%w (function %d)", err, m.numImported+i)
		}
		m.changesSegments = m.changesSegments || changes
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
	}
	if !r.done() {
		return nil, invalid("trailing bytes in code section")
	}
	return out, nil
}

// segment is a run of code charged at once: a function's body outside
// loops, or one loop's body outside nested loops.
type segment struct {
	at    int    // offset in the body where its charge is inserted
	count uint64 // instructions in it
}

type control struct {
	loop    bool
	segment int // index of the segment open when this construct started
}

// instrumentBody decodes one function body, counts instructions per
// segment and writes it out with the charges, the depth check and the
// return rewriting (see instrument). changes reports a table.set or a
// data.drop in it.
func instrumentBody(body []byte, ft funcType, fuelIdx, depthIdx, maxDepth uint32) (out []byte, changes bool, err error) {
	r := reader{b: body}
	nLocals, err := r.u32()
	if err != nil {
		return nil, false, err
	}
	localsStart := r.off
	total := uint64(len(ft.params))
	for i := uint32(0); i < nLocals; i++ {
		c, err := r.u32()
		if err != nil {
			return nil, false, err
		}
		t, err := r.byte()
		if err != nil {
			return nil, false, err
		}
		if err := checkValType(t); err != nil {
			return nil, false, err
		}
		if total += uint64(c); total > 50000 {
			return nil, false, invalid("more than 50000 locals")
		}
	}
	codeStart := r.off
	// One i32 local more, for the size operand of bulk memory instructions.
	scratch := uint32(total)

	segs := []segment{{at: codeStart}}
	cur := 0
	var stack []control
	var returns []int // offsets of return opcodes, with their control depth
	var returnDepth []int
	var bulk []bulkOp // memory.init, memory.copy, memory.fill and memory.grow
	var calls []int   // offsets just past call and call_indirect instructions
	var callDepth []int
	end := -1
	for !r.done() {
		at := r.off
		op, _ := r.byte()
		segs[cur].count++
		switch op {
		case 0x02, 0x04: // block, if
			if err := r.blockType(); err != nil {
				return nil, false, err
			}
			stack = append(stack, control{segment: cur})
		case 0x03: // loop
			if err := r.blockType(); err != nil {
				return nil, false, err
			}
			stack = append(stack, control{loop: true, segment: cur})
			segs = append(segs, segment{at: r.off})
			cur = len(segs) - 1
		case 0x0b: // end
			if len(stack) == 0 {
				end = at
				if !r.done() {
					return nil, false, invalid("code after the end of a function body")
				}
				break
			}
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if c.loop {
				cur = c.segment
			}
		case 0x10, 0x11: // call, call_indirect: followed by the halt check
			if err := r.skipImmediates(op); err != nil {
				return nil, false, err
			}
			calls = append(calls, r.off)
			callDepth = append(callDepth, len(stack))
		case 0x0f: // return: becomes a branch to the wrapper block
			returns = append(returns, at)
			returnDepth = append(returnDepth, len(stack))
		case 0xfc:
			// The sub-opcode is a LEB128 u32, which may be padded: decoded,
			// not peeked, so no encoding of a bulk instruction escapes its
			// charge.
			ahead := r
			sub, err := ahead.u32()
			if err == nil && (sub == 8 || sub == 10 || sub == 11) {
				bulk = append(bulk, bulkOp{at: at})
			}
			changes = changes || (err == nil && sub == 9) // data.drop
			if err := r.skipImmediates(op); err != nil {
				return nil, false, err
			}
		case 0x23, 0x24: // global.get, global.set
			// The module's own globals only: the indices past them are the
			// fuel and depth counters once instrumented, and a contract
			// that could set them would run unmetered.
			g, err := r.u32()
			if err != nil {
				return nil, false, err
			}
			if g >= fuelIdx {
				return nil, false, invalid("global index %d out of range", g)
			}
		case 0x26: // table.set
			changes = true
			if err := r.skipImmediates(op); err != nil {
				return nil, false, err
			}
		case 0x40: // memory.grow
			bulk = append(bulk, bulkOp{at: at, grow: true})
			if err := r.skipImmediates(op); err != nil {
				return nil, false, err
			}
		default:
			if err := r.skipImmediates(op); err != nil {
				return nil, false, err
			}
		}
	}
	if end < 0 {
		return nil, false, invalid("function body has no end")
	}

	bt := byte(0x40)
	if len(ft.results) == 1 {
		bt = ft.results[0]
	}
	out = make([]byte, 0, len(body)+len(segs)*24+len(bulk)*24+48)
	out = appendU32(out, nLocals+1)
	out = append(out, body[localsStart:codeStart]...)
	out = append(out, 1, valI32)
	// Prologue: charge the function segment, count the frame, then open the
	// wrapper block the body's branches to the function label now leave.
	leaf := len(calls) == 0
	out = appendCharge(out, fuelIdx, segs[0].count+1)
	out = appendDepthCheck(out, depthIdx, maxDepth, leaf)
	out = append(out, 0x02, bt)

	prev := codeStart
	si, ri, bi, ci := 1, 0, 0, 0
	for prev < end || (ci < len(calls) && calls[ci] == end) {
		next := end
		if ci < len(calls) && calls[ci] < next {
			next = calls[ci]
		}
		if si < len(segs) && segs[si].at < next {
			next = segs[si].at
		}
		if ri < len(returns) && returns[ri] < next {
			next = returns[ri]
		}
		if bi < len(bulk) && bulk[bi].at < next {
			next = bulk[bi].at
		}
		out = append(out, body[prev:next]...)
		prev = next
		// The halt check comes first: after a call that halted, nothing
		// at the same offset (a bulk instruction's charge) may run.
		if ci < len(calls) && calls[ci] == next {
			out = appendHaltCheck(out, depthIdx+1, bt, uint32(callDepth[ci]))
			ci++
		} else if si < len(segs) && segs[si].at == next {
			out = appendCharge(out, fuelIdx, segs[si].count)
			si++
		} else if bi < len(bulk) && bulk[bi].at == next {
			out = appendBulkCharge(out, fuelIdx, scratch, bulk[bi].grow)
			bi++
		} else if ri < len(returns) && returns[ri] == next {
			out = append(out, 0x0c) // br to the wrapper
			out = appendU32(out, uint32(returnDepth[ri]))
			prev++ // past the return opcode
			ri++
		}
	}
	// Close the wrapper, uncount the frame, end the function.
	out = append(out, 0x0b)
	if !leaf {
		out = append(out, 0x23)
		out = appendU32(out, depthIdx)
		out = append(out, 0x41, 1, 0x6b, 0x24) // i32.const 1; i32.sub; global.set
		out = appendU32(out, depthIdx)
	}
	out = append(out, 0x0b)
	return out, changes, nil
}
