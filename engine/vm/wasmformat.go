package vm

// Reading and writing WebAssembly's binary format for instrument: the
// module reader (bytes, names, LEB128 integers), the immediates of every
// instruction Ember accepts, and LEB128 encoding of what instrument writes.

import (
	"math"
)

// blockType skips a block type: empty, one value type, or a type index.
func (r *reader) blockType() error {
	b, err := r.peek()
	if err != nil {
		return err
	}
	switch b {
	case 0x40, valI32, valI64:
		r.off++
		return nil
	case valF32, valF64:
		return checkValType(b)
	}
	return invalid("block with a type index (multi-value) is not supported")
}

// skipImmediates skips the immediates of op, and refuses the opcodes
// Ember does not run (see instrument).
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x1a || op == 0x1b:
		return nil // unreachable, nop, else, drop, select
	case op == 0x0c || op == 0x0d: // br, br_if
		_, err := r.u32()
		return err
	case op == 0x0e: // br_table
		n, err := r.u32()
		if err != nil {
			return err
		}
		for i := uint64(0); i <= uint64(n); i++ {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x10: // call
		_, err := r.u32()
		return err
	case op == 0x11: // call_indirect
		if _, err := r.u32(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		_, err := r.u32()
		return err
	case op == 0x2a || op == 0x2b || op == 0x38 || op == 0x39:
		return invalid("floating-point load or store: floating point is not deterministic across machines")
	case op >= 0x28 && op <= 0x3e: // integer loads and stores: memarg
		if _, err := r.u32(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		_, err := r.u32()
		return err
	case op == 0x41:
		_, err := r.s64()
		return err
	case op == 0x42:
		_, err := r.s64()
		return err
	case op == 0x43 || op == 0x44:
		return invalid("floating-point constant: floating point is not deterministic across machines")
	case isIntegerNumeric(op):
		return nil
	case op >= 0x45 && op <= 0xbf:
		return invalid("floating-point instruction 0x%02x: floating point is not deterministic across machines", op)
	case op == 0xc0 || op == 0xc1 || op == 0xc2 || op == 0xc3 || op == 0xc4:
		return nil // sign extension
	case op == 0xfc:
		sub, err := r.u32()
		if err != nil {
			return err
		}
		switch sub {
		case 8: // memory.init
			if _, err := r.u32(); err != nil {
				return err
			}
			_, err := r.byte()
			return err
		case 9: // data.drop
			_, err := r.u32()
			return err
		case 10: // memory.copy
			if _, err := r.u32(); err != nil {
				return err
			}
			_, err := r.u32()
			return err
		case 11: // memory.fill
			_, err := r.u32()
			return err
		}
		if sub >= 12 && sub <= 17 {
			return invalid("table instruction 0xfc %d is not supported", sub)
		}
		if sub <= 7 {
			return invalid("saturating float truncation: floating point is not deterministic across machines")
		}
		return invalid("unknown instruction 0xfc %d", sub)
	case op == 0xfd:
		return invalid("SIMD instructions are not supported")
	case op == 0xfe:
		return invalid("thread instructions are not supported")
	}
	return invalid("unsupported instruction 0x%02x", op)
}

// isIntegerNumeric reports the numeric opcodes with no immediates that
// touch only integers: i32 and i64 tests, comparisons, arithmetic and
// conversions between them.
func isIntegerNumeric(op byte) bool {
	switch {
	case op >= 0x45 && op <= 0x5a: // i32.eqz .. i64.ge_u
		return true
	case op >= 0x67 && op <= 0x8a: // i32.clz .. i64.rotr
		return true
	case op == 0xa7 || op == 0xac || op == 0xad: // i32.wrap_i64, i64.extend_i32_s/u
		return true
	}
	return false
}

// reader decodes the binary format; every read is bounds-checked.
type reader struct {
	b   []byte
	off int
}

var errTruncated = invalid("truncated")

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	return r.b[r.off], nil
}

func (r *reader) byte() (byte, error) {
	b, err := r.peek()
	if err == nil {
		r.off++
	}
	return b, err
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errTruncated
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(int(n))
	return string(b), err
}

// u32 reads an unsigned LEB128 of at most 5 bytes.
func (r *reader) u32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if v > math.MaxUint32 {
				return 0, invalid("integer too large")
			}
			return uint32(v), nil
		}
	}
	return 0, invalid("integer too long")
}

// s64 reads a signed LEB128 of at most 10 bytes (i32 and i64 constants).
func (r *reader) s64() (int64, error) {
	var v int64
	var shift uint
	for i := 0; i < 10; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return 0, invalid("integer too long")
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
