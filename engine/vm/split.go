package vm

// Cutting _start in two, for the start-up snapshot (snapshot.go).
//
// Koinos runs every call on a fresh instance, so a contract's _start
// (AssemblyScript's --exportStart: its runtime's and its libraries'
// global initializers, then the top-level `main();`) repeats the same
// start-up on every call. Whatever _start does before anything can reach
// a system call depends only on the module, so the VM can run it once
// and start every call from its result. Wasm cannot snapshot a call
// stack, so the cut is made in the code: the longest prefix of _start's
// body, whole instructions at its top level, that calls nothing that may
// reach env.invoke_system_call becomes a function of its own, exportInit,
// and the rest another, exportMain. Both are new functions: _start stays
// as it was, for the calls that do not use the snapshot.
//
// The cut is sound when running exportInit then exportMain on a fresh
// instance does what _start does:
//
//   - the operand stack is empty at the cut: exportInit's body is the
//     prefix in a block of type [] -> [], which wazero's validation
//     checks (a module whose cut does not validate is compiled without
//     it, instrumentModule);
//   - locals: exportMain starts with every local zero, so no local the
//     prefix writes may be read in the rest (the cut moves earlier until
//     none is);
//   - leaving early: a return or a branch out of the function in the
//     prefix would end _start there, but exportInit would only end
//     itself. exportInit sets a global, exportInitDone, only when it runs
//     to its end, and the snapshot is not used otherwise;
//   - fuel: _start's entry charge (every instruction of its body outside
//     loops) is charged on exportInit's entry and none on exportMain's;
//     loops, calls and bulk-memory charges are the same code, charged the
//     same. So the prefix charges what _start charged up to the cut, and
//     exportMain what _start charged after it.

// Names of the cut's exports.
const (
	exportInit     = "__ember_init"
	exportMain     = "__ember_main"
	exportInitDone = "__ember_init_done"
)

// reachesSystemCalls tells, per function the module defines, whether it
// may reach a system call: it calls the import, uses call_indirect (a
// table may hold any function, the import included), or calls a function
// that may. Anything else cannot: the import is a module's only way out.
func (m *module) reachesSystemCalls() []bool {
	n := uint32(len(m.infos))
	reaches := make([]bool, n)
	callers := make([][]uint32, n)
	var queue []uint32
	for i, info := range m.infos {
		direct := info.indirect
		for _, f := range info.callees {
			if f < m.numImported || f-m.numImported >= n {
				direct = true // the import, or an index wazero will refuse
				continue
			}
			callers[f-m.numImported] = append(callers[f-m.numImported], uint32(i))
		}
		if direct {
			reaches[i] = true
			queue = append(queue, uint32(i))
		}
	}
	for len(queue) > 0 {
		f := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, c := range callers[f] {
			if !reaches[c] {
				reaches[c] = true
				queue = append(queue, c)
			}
		}
	}
	return reaches
}

// exportedFunc finds the function a module exports under name.
func (m *module) exportedFunc(name string) (uint32, bool) {
	r := reader{b: m.exportEntries}
	for range m.numExports {
		n, err := r.name()
		if err != nil {
			return 0, false
		}
		kind, err := r.byte()
		if err != nil {
			return 0, false
		}
		idx, err := r.u32()
		if err != nil {
			return 0, false
		}
		if n == name && kind == 0x00 {
			return idx, true
		}
	}
	return 0, false
}

// startSplit is _start cut in two, both halves instrumented; typ is
// their type index (_start's).
type startSplit struct {
	init, main []byte
	typ        uint32
}

// splitStart cuts _start (see above); nil when there is nothing to cut:
// no exported _start of type () -> () defined by the module, or its first
// top-level instruction may reach a system call.
func (m *module) splitStart(reaches []bool, fuelIdx, depthIdx, doneIdx, maxDepth uint32) *startSplit {
	idx, ok := m.exportedFunc("_start")
	if !ok || idx < m.numImported || idx-m.numImported >= uint32(len(m.bodies)) {
		return nil
	}
	fn := idx - m.numImported
	typ := m.funcTypes[fn]
	if ft := m.types[typ]; len(ft.params) != 0 || len(ft.results) != 0 {
		return nil
	}
	body := m.bodies[fn]
	codeStart, cut, ok := m.findCut(body, reaches)
	if !ok || cut == codeStart {
		return nil
	}
	ft := m.types[typ]
	initBody := append(append([]byte(nil), body[:cut]...), 0x0b)
	mainBody := append(append([]byte(nil), body[:codeStart]...), body[cut:]...)
	init, _, err := instrumentBody(initBody, ft, fuelIdx, depthIdx, maxDepth,
		bodyOptions{overrideEntry: true, entry: m.infos[fn].entry, markDone: true, doneIdx: doneIdx})
	if err != nil {
		return nil
	}
	main, _, err := instrumentBody(mainBody, ft, fuelIdx, depthIdx, maxDepth, bodyOptions{overrideEntry: true})
	if err != nil {
		return nil
	}
	return &startSplit{init: init, main: main, typ: typ}
}

// findCut returns where a body's instructions start and where to cut it:
// before the first top-level instruction that may reach a system call
// (reaches for a direct call, always for call_indirect), moved earlier
// to where the operand stack is empty and while the prefix writes a local
// the rest reads. ok is false when the body does not decode.
//
// The operand stack's height is followed only at the top level, from
// each instruction's arity; where it cannot be (after an unconditional
// branch) no later cut is tried. It only chooses the cut: wazero's
// validation of exportInit is what proves it.
func (m *module) findCut(body []byte, reaches []bool) (codeStart, cut int, ok bool) {
	mayReach := func(f uint32) bool {
		return f < m.numImported || f-m.numImported >= uint32(len(reaches)) || reaches[f-m.numImported]
	}
	r := reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, 0, false
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return 0, 0, false
		}
		if _, err := r.byte(); err != nil {
			return 0, 0, false
		}
	}
	codeStart = r.off
	end := len(body) - 1 // the function's end (instrumentBody checked)
	// tops are the top-level instructions before the cut: where each
	// starts, whether the stack is empty there, and the locals it writes
	// (at any depth inside it).
	type top struct {
		at     int
		empty  bool
		writes []uint32
	}
	var tops []top
	depth, height, known := 0, 0, true
	cut = -1
	for cut < 0 {
		at := r.off
		if depth == 0 {
			if at >= end {
				cut = end // nothing in _start may reach a system call
				break
			}
			tops = append(tops, top{at: at, empty: known && height == 0})
		}
		op, err := r.byte()
		if err != nil {
			return 0, 0, false
		}
		pops, pushes, counted := 0, 0, true
		switch op {
		case 0x02, 0x03, 0x04: // block, loop, if
			bt, err := r.peek()
			if err != nil {
				return 0, 0, false
			}
			if err := r.blockType(); err != nil {
				return 0, 0, false
			}
			if bt != 0x40 {
				pushes = 1
			}
			if op == 0x04 {
				pops = 1
			}
			depth++
		case 0x0b:
			depth--
		case 0x0f: // return: the rest of its block is unreachable
			counted = false
		case 0x10:
			f, err := r.u32()
			if err != nil {
				return 0, 0, false
			}
			if mayReach(f) {
				cut = tops[len(tops)-1].at
			}
			pops, pushes, counted = m.callArity(f)
		case 0x11:
			cut = tops[len(tops)-1].at
		case 0x21, 0x22: // local.set, local.tee
			l, err := r.u32()
			if err != nil {
				return 0, 0, false
			}
			tops[len(tops)-1].writes = append(tops[len(tops)-1].writes, l)
			pops, pushes, counted = arity(op)
		default:
			if op == 0xfc {
				ahead := r
				sub, err := ahead.u32()
				switch {
				case err == nil && (sub == 8 || sub == 10 || sub == 11):
					pops = 3 // memory.init, memory.copy, memory.fill
				case err != nil || sub != 9: // data.drop takes nothing
					counted = false
				}
			} else {
				pops, pushes, counted = arity(op)
			}
			if err := r.skipImmediates(op); err != nil {
				return 0, 0, false
			}
		}
		opened := depth == 1 && (op == 0x02 || op == 0x03 || op == 0x04)
		if opened || depth == 0 && op != 0x0b {
			// A top-level instruction; a block counts as a whole, from
			// its start.
			height += pushes - pops
			known = known && counted && height >= 0
		}
	}
	cutEmpty := known && height == 0 // at the function's end
	for k := range tops {
		if tops[k].at >= cut {
			cutEmpty = tops[k].empty
			tops = tops[:k]
			break
		}
	}
	for {
		if !cutEmpty {
			// Back to the latest boundary with an empty stack: there is
			// one, the body's start.
			k := len(tops) - 1
			for !tops[k].empty {
				k--
			}
			cut, cutEmpty, tops = tops[k].at, true, tops[:k]
		}
		reads, ok := localReads(body[:end], cut)
		if !ok {
			return 0, 0, false
		}
		conflict := -1
	search:
		for k, t := range tops {
			for _, l := range t.writes {
				if reads[l] {
					conflict = k
					break search
				}
			}
		}
		if conflict < 0 {
			return codeStart, cut, true
		}
		cut, cutEmpty, tops = tops[conflict].at, tops[conflict].empty, tops[:conflict]
	}
}

// callArity is what a call of function f takes from the operand stack and
// leaves on it; ok is false for an index out of range.
func (m *module) callArity(f uint32) (pops, pushes int, ok bool) {
	if f < m.numImported {
		return 6, 1, true // env.invoke_system_call (parseImports)
	}
	if f-m.numImported >= uint32(len(m.funcTypes)) {
		return 0, 0, false
	}
	ft := m.types[m.funcTypes[f-m.numImported]]
	return len(ft.params), len(ft.results), true
}

// arity is what an instruction with no type immediate takes from the
// operand stack and leaves on it (blocks, calls and the 0xfc prefix
// aside); ok is false for the branches that make the rest of a block
// unreachable, and for anything not listed.
func arity(op byte) (pops, pushes int, ok bool) {
	switch {
	case op == 0x01: // nop
		return 0, 0, true
	case op == 0x0d: // br_if
		return 1, 0, true
	case op == 0x1a: // drop
		return 1, 0, true
	case op == 0x1b: // select
		return 3, 1, true
	case op == 0x20, op == 0x23, op == 0x3f, op == 0x41, op == 0x42: // local.get, global.get, memory.size, consts
		return 0, 1, true
	case op == 0x21, op == 0x24: // local.set, global.set
		return 1, 0, true
	case op == 0x22, op == 0x25, op == 0x40: // local.tee, table.get, memory.grow
		return 1, 1, true
	case op == 0x26: // table.set
		return 2, 0, true
	case op >= 0x28 && op <= 0x35: // loads
		return 1, 1, true
	case op >= 0x36 && op <= 0x3e: // stores
		return 2, 0, true
	case op == 0x45, op == 0x50: // eqz
		return 1, 1, true
	case op >= 0x46 && op <= 0x5a: // comparisons
		return 2, 1, true
	case op >= 0x67 && op <= 0x69, op >= 0x79 && op <= 0x7b: // clz, ctz, popcnt
		return 1, 1, true
	case op >= 0x6a && op <= 0x78, op >= 0x7c && op <= 0x8a: // binary arithmetic
		return 2, 1, true
	case op == 0xa7, op == 0xac, op == 0xad, op >= 0xc0 && op <= 0xc4: // wrap, extend
		return 1, 1, true
	}
	return 0, 0, false
}

// localReads is the set of locals local.get reads in code from off on.
func localReads(code []byte, off int) (map[uint32]bool, bool) {
	reads := map[uint32]bool{}
	r := reader{b: code, off: off}
	for !r.done() {
		op, err := r.byte()
		if err != nil {
			return nil, false
		}
		switch op {
		case 0x02, 0x03, 0x04:
			err = r.blockType()
		case 0x0b, 0x0f: // end, return: no immediates
		case 0x20: // local.get
			var l uint32
			l, err = r.u32()
			reads[l] = true
		default:
			err = r.skipImmediates(op)
		}
		if err != nil {
			return nil, false
		}
	}
	return reads, true
}
