package vm

// Checks of the sections instrument passes on to wazero unread.
//
// wazero allocates for every length it decodes before reading what the
// length counts: an export name, a data segment's bytes, an element
// segment's entries. A few bytes claiming four billion of them would
// exhaust the node's memory at upload, so each such length is checked
// against the bytes actually left first. The checks only walk the
// entries; wazero still validates them.

// checkExports walks the export section: names, kinds, indices.
func (m *module) checkExports() error {
	r, n, err := m.vector(secExport)
	if err != nil {
		return err
	}
	for range n {
		if _, err := r.name(); err != nil {
			return err
		}
		if _, err := r.byte(); err != nil {
			return err
		}
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	if !r.done() {
		return invalid("trailing bytes in export section")
	}
	return nil
}

// checkData walks the data section: active (0, 2) or passive (1)
// segments, each an offset expression for the active ones and bytes.
func (m *module) checkData() error {
	r, n, err := m.vector(secData)
	if err != nil {
		return err
	}
	for i := range n {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags > 2 {
			return invalid("data segment %d: unknown kind %d", i, flags)
		}
		if flags == 2 {
			if _, err := r.u32(); err != nil { // memory index
				return err
			}
		}
		if flags != 1 {
			if err := r.skipConstExpr(); err != nil {
				return err
			}
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.bytes(int(size)); err != nil {
			return err
		}
	}
	if !r.done() {
		return invalid("trailing bytes in data section")
	}
	return nil
}

// checkElements walks the element section's eight segment forms (the
// binary format, §5.5.12): bit 0 passive or declarative, bit 1 an explicit
// table (active) or declarative (passive), bit 2 expressions rather than
// function indices.
func (m *module) checkElements() error {
	r, n, err := m.vector(secElement)
	if err != nil {
		return err
	}
	for i := range n {
		flags, err := r.u32()
		if err != nil {
			return err
		}
		if flags > 7 {
			return invalid("element segment %d: unknown kind %d", i, flags)
		}
		active, tableIdx, exprs := flags&1 == 0, flags&2 != 0, flags&4 != 0
		if active && tableIdx {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if active {
			if err := r.skipConstExpr(); err != nil {
				return err
			}
		}
		if !active || tableIdx {
			if _, err := r.byte(); err != nil { // element kind or reference type
				return err
			}
		}
		count, err := r.u32()
		if err != nil {
			return err
		}
		if uint64(count) > uint64(len(r.b)-r.off) {
			return invalid("element segment %d claims %d entries in %d bytes", i, count, len(r.b)-r.off)
		}
		for range count {
			if exprs {
				err = r.skipConstExpr()
			} else {
				_, err = r.u32()
			}
			if err != nil {
				return err
			}
		}
	}
	if !r.done() {
		return invalid("trailing bytes in element section")
	}
	return nil
}

// skipConstExpr reads a constant expression up to its end: the constants,
// global.get, ref.null and ref.func; anything else is refused (wazero
// would refuse it too: extended constant expressions are disabled).
func (r *reader) skipConstExpr() error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch op {
		case 0x0b: // end
			return nil
		case 0x41, 0x42: // i32.const, i64.const
			_, err = r.s64()
		case 0x43: // f32.const
			_, err = r.bytes(4)
		case 0x44: // f64.const
			_, err = r.bytes(8)
		case 0x23, 0xd2: // global.get, ref.func
			_, err = r.u32()
		case 0xd0: // ref.null
			_, err = r.byte()
		default:
			return invalid("instruction 0x%02x in a constant expression", op)
		}
		if err != nil {
			return err
		}
	}
}
