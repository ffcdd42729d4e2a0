package kjson

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/mr-tron/base58"
)

// Base58 is quadratic big-number arithmetic — about a microsecond per
// 25-byte address — and a transfer's JSON carries several addresses (payer,
// contract, event source and impacted accounts), most of them the same few
// again and again. A direct-mapped cache of address-sized values, lock-free
// (one atomic pointer per slot) and bounded, answers the repeats. A miss
// costs what it cost before, plus one small allocation.

const (
	b58CacheSlots = 1 << 12
	b58MaxCached  = 26 // addresses and contract ids are 25 bytes
)

type b58Entry struct {
	raw [b58MaxCached]byte
	n   uint8
	s   string
}

var (
	b58Enc  [b58CacheSlots]atomic.Pointer[b58Entry] // by raw bytes
	b58Dec  [b58CacheSlots]atomic.Pointer[b58Entry] // by text
	b58Seed = maphash.MakeSeed()
)

func b58Slot(b []byte) uint64 { return maphash.Bytes(b58Seed, b) % b58CacheSlots }

// appendBase58 appends the base58 text of b.
func appendBase58(dst, b []byte) []byte {
	if len(b) > b58MaxCached || len(b) == 0 {
		return append(dst, base58.Encode(b)...)
	}
	slot := &b58Enc[b58Slot(b)]
	if e := slot.Load(); e != nil && int(e.n) == len(b) && string(e.raw[:e.n]) == string(b) {
		return append(dst, e.s...)
	}
	e := &b58Entry{n: uint8(len(b)), s: base58.Encode(b)}
	copy(e.raw[:], b)
	slot.Store(e)
	return append(dst, e.s...)
}

// decodeBase58 parses base58 text; the result is the caller's own.
func decodeBase58(s string) ([]byte, error) {
	if len(s) > 40 || len(s) == 0 { // 26 bytes take at most 36 characters
		return base58.Decode(s)
	}
	slot := &b58Dec[maphash.String(b58Seed, s)%b58CacheSlots]
	if e := slot.Load(); e != nil && e.s == s {
		return append([]byte(nil), e.raw[:e.n]...), nil
	}
	b, err := base58.Decode(s)
	if err != nil || len(b) > b58MaxCached {
		return b, err
	}
	e := &b58Entry{n: uint8(len(b)), s: s}
	copy(e.raw[:], b)
	slot.Store(e)
	return b, nil
}
