package vm

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

// bodyInfo is what instrumentBody learns of a function besides its
// rewritten code.
type bodyInfo struct {
	// changes: a table.set or a data.drop.
	changes bool
	// callees are the functions it calls directly; indirect says it uses
	// call_indirect. They tell which functions may reach a system call
	// (split.go).
	callees  []uint32
	indirect bool
	// entry is the fuel charged on entry: the instructions of its body
	// outside loops.
	entry uint64
}

// bodyOptions changes how instrumentBody writes the two halves of a cut
// _start (split.go); the zero value is every other function's.
type bodyOptions struct {
	// overrideEntry: charge entry on entry instead of the body's own count
	// (none when zero).
	overrideEntry bool
	entry         uint64
	// markDone: set global doneIdx to 1 when the body runs to its end,
	// not when it returns or branches out early.
	markDone bool
	doneIdx  uint32
}

// instrumentBody decodes one function body, counts instructions per
// segment and writes it out with the charges, the depth check and the
// return rewriting (see instrument).
func instrumentBody(body []byte, ft funcType, fuelIdx, depthIdx, maxDepth uint32, opt bodyOptions) (out []byte, info bodyInfo, err error) {
	r := reader{b: body}
	nLocals, err := r.u32()
	if err != nil {
		return nil, info, err
	}
	localsStart := r.off
	total := uint64(len(ft.params))
	for i := uint32(0); i < nLocals; i++ {
		c, err := r.u32()
		if err != nil {
			return nil, info, err
		}
		t, err := r.byte()
		if err != nil {
			return nil, info, err
		}
		if err := checkValType(t); err != nil {
			return nil, info, err
		}
		if total += uint64(c); total > 50000 {
			return nil, info, invalid("more than 50000 locals")
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
				return nil, info, err
			}
			stack = append(stack, control{segment: cur})
		case 0x03: // loop
			if err := r.blockType(); err != nil {
				return nil, info, err
			}
			stack = append(stack, control{loop: true, segment: cur})
			segs = append(segs, segment{at: r.off})
			cur = len(segs) - 1
		case 0x0b: // end
			if len(stack) == 0 {
				end = at
				if !r.done() {
					return nil, info, invalid("code after the end of a function body")
				}
				break
			}
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if c.loop {
				cur = c.segment
			}
		case 0x10, 0x11: // call, call_indirect: followed by the halt check
			if op == 0x10 {
				ahead := r
				if f, err := ahead.u32(); err == nil {
					info.callees = append(info.callees, f)
				}
			} else {
				info.indirect = true
			}
			if err := r.skipImmediates(op); err != nil {
				return nil, info, err
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
			info.changes = info.changes || (err == nil && sub == 9) // data.drop
			if err := r.skipImmediates(op); err != nil {
				return nil, info, err
			}
		case 0x23, 0x24: // global.get, global.set
			// The module's own globals only: the indices past them are the
			// fuel and depth counters once instrumented, and a contract
			// that could set them would run unmetered.
			g, err := r.u32()
			if err != nil {
				return nil, info, err
			}
			if g >= fuelIdx {
				return nil, info, invalid("global index %d out of range", g)
			}
		case 0x26: // table.set
			info.changes = true
			if err := r.skipImmediates(op); err != nil {
				return nil, info, err
			}
		case 0x40: // memory.grow
			bulk = append(bulk, bulkOp{at: at, grow: true})
			if err := r.skipImmediates(op); err != nil {
				return nil, info, err
			}
		default:
			if err := r.skipImmediates(op); err != nil {
				return nil, info, err
			}
		}
	}
	if end < 0 {
		return nil, info, invalid("function body has no end")
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
	info.entry = segs[0].count + 1
	switch {
	case !opt.overrideEntry:
		out = appendCharge(out, fuelIdx, info.entry)
	case opt.entry > 0:
		out = appendCharge(out, fuelIdx, opt.entry)
	}
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
	if opt.markDone {
		// Reached only by running to the end: returns and branches out
		// of the body leave the wrapper before it.
		out = append(out, 0x41, 1, 0x24) // i32.const 1; global.set
		out = appendU32(out, opt.doneIdx)
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
	return out, info, nil
}
