package p2p

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

// A raw (flag 0) body is held to max like a compressed one.
func TestUnpackBodyRawOverMax(t *testing.T) {
	body := append([]byte{frameRaw}, bytes.Repeat([]byte{7}, 2000)...)
	out, err := unpackBody(body, 1000)
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("unpackBody(raw 2000 bytes, max 1000) = %d bytes, %v; want errFrameTooLarge", len(out), err)
	}
}

// A small zstd frame that hides its size is cut off near max, not decoded
// whole first; a frame that states a size within max is not given that
// much memory before it is decoded. What remains is the decoder's window,
// at most maxDecoderWindow.
func TestUnpackBodyBoundedMemory(t *testing.T) {
	alloc := func(in []byte, max int) (uint64, error) {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		_, err := unpackBody(in, max)
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc, err
	}
	bomb := append([]byte{frameZstd}, zstdStream(t, make([]byte, 60<<20))...)
	n, err := alloc(bomb, 4096)
	if !errors.Is(err, errFrameTooLarge) || n > maxDecoderWindow+4<<20 {
		t.Errorf("%d-byte frame hiding 60 MiB, max 4096: allocated %d MiB (%v); want errFrameTooLarge within a few MiB", len(bomb), n>>20, err)
	}
	liar := append([]byte{frameZstd}, zstdHeaderFCS(64<<20)...)
	n, err = alloc(liar, 64<<20)
	if err == nil || n > maxDecoderWindow+4<<20 {
		t.Errorf("%d-byte frame stating 64 MiB and holding none: allocated %d MiB (%v)", len(liar), n>>20, err)
	}
}

// shortID refuses a 34-byte id that is not a sha2-256 multihash.
func TestShortIDOtherForm(t *testing.T) {
	id := append([]byte{0x13, 0x20}, make([]byte, 32)...)
	if _, ok := shortID(id); ok {
		t.Fatal("shortID accepted a 34-byte id with hash code 0x13")
	}
}
