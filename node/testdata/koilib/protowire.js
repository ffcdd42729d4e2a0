// Protobuf wire format read by hand, for the bus scripts (amqp_*.js): no
// generated code, as any program talking to the Koinos bus can do it.

// varint reads a base-128 varint at pos: [value as BigInt, next pos].
function varint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [v, pos];
    shift += 7n;
  }
}

// fields returns a message's fields: number -> value (a varint as BigInt,
// a length-delimited field as a Buffer); last occurrence wins; fixed-width
// fields are skipped.
function fields(buf) {
  const out = {};
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = varint(buf, pos);
    const num = Number(key >> 3n), wire = Number(key & 7n);
    if (wire === 0) {
      [out[num], pos] = varint(buf, pos);
    } else if (wire === 2) {
      let len;
      [len, pos] = varint(buf, pos);
      out[num] = buf.subarray(pos, pos + Number(len));
      pos += Number(len);
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  return out;
}

module.exports = { varint, fields };
