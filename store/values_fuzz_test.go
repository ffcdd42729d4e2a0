package store

import (
	"bytes"
	"testing"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// FuzzDecodeStoreValues: the store's small records (the meta record, a
// consumer's cursor, an account-history record, a canonical-index entry, a
// block record's topology), read from disk at start and on queries, decode
// without a panic whatever the bytes, and those with one encoding write
// back to the same bytes.
func FuzzDecodeStoreValues(f *testing.F) {
	top := chain.Topology{ID: koinos.Digest{1}, Height: 9, Previous: koinos.Digest{2}}
	meta := encodeMeta(nil, &metaState{meta: chain.Meta{ChainID: koinos.Digest{3}, Head: top, LIB: top, Checkpoint: top}, highest: top, nextSeq: 77})
	f.Add(meta, []byte{})
	f.Add(encodeCursor(nil, cursorValue{next: 5, aux: 6, flags: cursorRebuilding}), []byte{})
	f.Add(historyKey(nil, &koinos.Address{1}, 40), []byte{9, 2, 0, 1})
	f.Add(canonKey(nil, 12), bytes.Repeat([]byte{4}, koinos.DigestSize))
	f.Add([]byte{}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if m, err := decodeMeta(a); err == nil && a[0] == metaVersion {
			if back := encodeMeta(nil, &m); !bytes.Equal(back, a) {
				t.Fatalf("meta record %x written back as %x", a, back)
			}
		}
		if c, err := decodeCursor(a); err == nil {
			if back := encodeCursor(nil, c); !bytes.Equal(back, a) {
				t.Fatalf("cursor %x written back as %x", a, back)
			}
		}
		if first, hv, err := decodeHistory(a, b); err == nil && (len(hv.entries) == 0 || first+uint64(len(hv.entries)) < first) {
			t.Fatalf("history record decoded to %d entries from %d", len(hv.entries), first)
		}
		// (The key's first byte, its space, is fixed by the iteration.)
		if h, id, err := decodeCanon(a, b); err == nil && (!bytes.Equal(canonKey(nil, h)[1:], a[1:]) || !bytes.Equal(id[:], b)) {
			t.Fatalf("canonical entry %x=%x decoded to %d %x", a, b, h, id)
		}
		_, _, _ = parseTopology(a)
		_, _ = parseRecord(a)
	})
}
