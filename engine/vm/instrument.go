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
	inst, err := instrumentModule(code, maxDepth, false)
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
	// split: _start was cut in two, exported as exportInit and exportMain
	// (split.go); startPure: the module's start function cannot reach a
	// system call. Either lets the VM run that part once and keep its
	// result (snapshot.go).
	split, startPure bool
}

// instrumentModule is instrument; cut asks it to look for the start-up
// work that can be run once (split.go). The module it writes with a cut
// may fail wazero's validation where the one without would not (the cut
// left operands on the stack): the caller then asks again without.
func instrumentModule(code []byte, maxDepth uint32, cut bool) (*instrumented, error) {
	m, err := parseModule(code)
	if err != nil {
		return nil, err
	}
	fuelIdx := m.numGlobals
	depthIdx := m.numGlobals + 1
	doneIdx := m.numGlobals + 3
	bodies, err := m.instrumentCode(fuelIdx, depthIdx, maxDepth)
	if err != nil {
		return nil, err
	}
	var sp *startSplit
	startPure := false
	if cut {
		reaches := m.reachesSystemCalls()
		startPure = m.hasStart && m.startFunc >= m.numImported && int(m.startFunc-m.numImported) < len(reaches) &&
			!reaches[m.startFunc-m.numImported]
		sp = m.splitStart(reaches, fuelIdx, depthIdx, doneIdx, maxDepth)
	}
	nBodies := uint32(len(bodies))
	if sp != nil {
		nBodies += 2
		bodies = append(bodies, sp.init, sp.main)
		// Both take _start's type, () -> ().
		fns := appendU32(nil, uint32(len(m.funcTypes))+2)
		fns = append(fns, m.functionEntries...)
		fns = appendU32(fns, sp.typ)
		fns = appendU32(fns, sp.typ)
		m.sections[secFunction] = fns
	}
	codeSec := appendU32(nil, nBodies)
	for _, b := range bodies {
		codeSec = appendU32(codeSec, uint32(len(b)))
		codeSec = append(codeSec, b...)
	}
	m.sections[secCode] = codeSec

	// Three globals appended to the module's own: indices past theirs; a
	// fourth when _start was cut.
	nGlobals := m.numGlobals + 3
	if sp != nil {
		nGlobals++
	}
	globals := appendU32(nil, nGlobals)
	globals = append(globals, m.globalEntries...)
	globals = append(globals, valI64, 1, 0x42, 0, 0x0b) // fuel: mut i64 = 0
	globals = append(globals, valI32, 1, 0x41, 0, 0x0b) // depth: mut i32 = 0
	globals = append(globals, valI32, 1, 0x41, 0, 0x0b) // halt: mut i32 = 0
	if sp != nil {
		globals = append(globals, valI32, 1, 0x41, 0, 0x0b) // init done: mut i32 = 0
	}
	m.sections[secGlobal] = globals

	if uint64(m.numExports)+uint64(m.numGlobals)+7 > math.MaxUint32 {
		return nil, invalid("too many exports")
	}
	nExports := m.numExports + m.numGlobals + 3
	if m.hasStart {
		nExports++
	}
	if sp != nil {
		nExports += 3
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
	if sp != nil {
		first := m.numImported + uint32(len(m.funcTypes))
		exports = appendExport(exports, exportInit, 0x00, first)
		exports = appendExport(exports, exportMain, 0x00, first+1)
		exports = appendExport(exports, exportInitDone, 0x03, doneIdx)
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
		split:      sp != nil,
		startPure:  startPure,
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
	// functionEntries is the function section after its count.
	functionEntries []byte
	// bodies are the function bodies as the module has them, infos what
	// instrumentBody learnt of each (instrumentCode).
	bodies [][]byte
	infos  []bodyInfo
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
	m.functionEntries = r.b[r.off:]
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
	m.numGlobals, m.globalEntries, err = m.vectorHead(secGlobal, 4, "globals")
	return err
}

func (m *module) parseExports() (err error) {
	m.numExports, m.exportEntries, err = m.vectorHead(secExport, 7, "exports")
	return err
}

// instrumentCode rewrites every function body (see instrument) and keeps
// the originals and what it learnt of them (module.bodies, module.infos).
func (m *module) instrumentCode(fuelIdx, depthIdx, maxDepth uint32) ([][]byte, error) {
	r, n, err := m.vector(secCode)
	if err != nil {
		return nil, err
	}
	if n != uint32(len(m.funcTypes)) {
		return nil, invalid("%d function bodies for %d functions", n, len(m.funcTypes))
	}
	out := make([][]byte, 0, n)
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
		nb, info, err := instrumentBody(body, ft, fuelIdx, depthIdx, maxDepth, bodyOptions{})
		if err != nil {
			return nil, fmt.Errorf("%w (function %d)", err, m.numImported+i)
		}
		m.changesSegments = m.changesSegments || info.changes
		m.bodies = append(m.bodies, body)
		m.infos = append(m.infos, info)
		out = append(out, nb)
	}
	if !r.done() {
		return nil, invalid("trailing bytes in code section")
	}
	return out, nil
}
