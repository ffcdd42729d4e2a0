package bench

import (
	"bytes"
	"strconv"

	"github.com/emberchain/ember/engine/koinos"
)

// scanOneBlock reads a block_store.get_blocks_by_height answer holding one
// block without building a JSON tree: a busy block is tens of megabytes of
// JSON, and a full parse of it costs the bench (which shares the machine
// with the node) several times what a scan for the few keys it needs does.
//
// It relies on the Koinos JSON form only as far as it is fixed: each of
// "block_height", "block_id", "previous" and "timestamp" appears once in
// one block item (transactions have none of these keys, and a key inside a
// string value would have its quotes escaped), and "id" appears once for
// the block and once per transaction, always as "0x"-hex. ok is false when
// the answer is anything else — an error, several blocks, an unexpected
// shape — and the caller parses it fully instead.
func scanOneBlock(resp []byte) (fb fetchedBlock, ok bool) {
	if !bytes.Contains(resp, []byte(`"block_items"`)) || bytes.Contains(resp, []byte(`"error"`)) {
		return fb, false
	}
	height, ok := scanString(resp, `"block_height":"`)
	if !ok {
		return fb, false
	}
	n, err := strconv.ParseUint(string(height), 10, 64)
	if err != nil {
		return fb, false
	}
	fb.height = n
	for _, f := range []struct {
		key string
		dst *koinos.Digest
	}{{`"block_id":"`, &fb.id}, {`"previous":"`, &fb.prev}} {
		v, ok := scanString(resp, f.key)
		if !ok {
			return fb, false
		}
		if *f.dst, err = parseHexID(v); err != nil {
			return fb, false
		}
	}
	ts, ok := scanString(resp, `"timestamp":"`)
	if !ok {
		return fb, false
	}
	t, err := strconv.ParseInt(string(ts), 10, 64)
	if err != nil {
		return fb, false
	}
	fb.ts = t
	key := []byte(`"id":"`)
	sawBlock := false
	for rest := resp; ; {
		i := bytes.Index(rest, key)
		if i < 0 {
			break
		}
		rest = rest[i+len(key):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return fb, false
		}
		d, err := parseHexID(rest[:end])
		if err != nil {
			return fb, false
		}
		if d == fb.id && !sawBlock {
			sawBlock = true // the block's own id
		} else {
			fb.txIDs = append(fb.txIDs, d)
		}
		rest = rest[end:]
	}
	return fb, sawBlock
}

// scanString returns the string value after key, which must occur exactly
// once.
func scanString(b []byte, key string) ([]byte, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 || bytes.Contains(b[i+len(key):], []byte(key)) {
		return nil, false
	}
	v := b[i+len(key):]
	end := bytes.IndexByte(v, '"')
	if end < 0 {
		return nil, false
	}
	return v[:end], true
}
