package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// testBytes returns n bytes that compress somewhat (as protobuf does):
// runs of random bytes from a small alphabet.
func testBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.IntN(16))
	}
	return b
}

// frameOf is writeFrame into a fresh buffer.
func frameOf(t testing.TB, body []byte) []byte {
	var buf bytes.Buffer
	if err := writeFrame(&buf, body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uvarint is the frame length prefix of n.
func uvarint(n uint64) []byte { return binary.AppendUvarint(nil, n) }

// zstdStream compresses b with the streaming encoder, which does not know
// the size when it writes the frame header: the frame does not state its
// content size (b must be larger than one block, 128 KiB, for that).
func zstdStream(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	e, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("streamed zstd frame: header %+v, %v; want one without content size", h, err)
	}
	return buf.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 20} {
		body := testBytes(n, uint64(n))
		r := bufio.NewReader(bytes.NewReader(frameOf(t, body)))
		got, err := readFrame(r, n)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: body changed", n)
		}
		if _, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("%d bytes: readFrame left bytes behind (%v)", n, err)
		}
	}

	// Frames follow each other on one reader.
	var buf bytes.Buffer
	bodies := [][]byte{[]byte("one"), {}, testBytes(300, 3)}
	for _, b := range bodies {
		if err := writeFrame(&buf, b); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&buf)
	for i, want := range bodies {
		got, err := readFrame(r, 1000)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %q, %v; want %q", i, got, err, want)
		}
	}
}

func TestReadFrameRefuses(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		max      int
		tooLarge bool
	}{
		{"one byte over", frameOf(t, make([]byte, 101)), 100, true},
		{"nothing allowed", frameOf(t, []byte{1}), 0, true},
		{"length beyond any body", uvarint(1 << 62), 1 << 20, true},
		{"largest length", uvarint(1<<64 - 1), 64 << 20, true},
		{"empty input", nil, 100, false},
		{"truncated length", []byte{0x80}, 100, false},
		{"length overflows", bytes.Repeat([]byte{0xff}, 11), 100, false},
		{"no body", uvarint(10), 100, false},
		{"truncated body", append(uvarint(10), 1, 2, 3, 4, 5), 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := readFrame(bufio.NewReader(bytes.NewReader(tt.in)), tt.max)
			if err == nil {
				t.Fatalf("readFrame = %d bytes, want an error", len(b))
			}
			if got := errors.Is(err, errFrameTooLarge); got != tt.tooLarge {
				t.Fatalf("readFrame error %v: errFrameTooLarge %v, want %v", err, got, tt.tooLarge)
			}
		})
	}
}

// TestReadFrameRefusesBeforeAllocating: a length over the limit is refused
// from the length alone, before the body is allocated.
func TestReadFrameRefusesBeforeAllocating(t *testing.T) {
	const max = 32 << 20
	in := uvarint(max + 1) // no body follows: only the length is sent
	r := bufio.NewReader(bytes.NewReader(in))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(r, max)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("readFrame = %v, want errFrameTooLarge", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("refusing an over-limit frame allocated %d bytes", n)
	}
}

func TestBodyRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, compressAbove - 1, compressAbove, 1 << 20} {
		body := testBytes(n, uint64(n)+7)
		packed := packBody(body)
		wantFlag := byte(frameRaw)
		if n >= compressAbove {
			wantFlag = frameZstd
		}
		if packed[0] != wantFlag {
			t.Fatalf("%d bytes packed with flag %d, want %d", n, packed[0], wantFlag)
		}
		got, err := unpackBody(packed, n) // the exact size is allowed
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("%d bytes: body changed", n)
		}
		if n >= compressAbove {
			if _, err := unpackBody(packed, n-1); !errors.Is(err, errFrameTooLarge) {
				t.Fatalf("%d bytes unpacked with a limit of %d: %v, want errFrameTooLarge", n, n-1, err)
			}
		}
	}
}

// zstdHeaderFCS is a zstd frame header (single segment, no checksum, no
// dictionary) declaring a content size of fcs, with no blocks after it.
func zstdHeaderFCS(fcs uint64) []byte {
	h := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0} // magic; 8-byte content size, single segment
	return binary.LittleEndian.AppendUint64(h, fcs)
}

func TestUnpackBodyRefuses(t *testing.T) {
	big := testBytes(256<<10, 9)
	zeros := make([]byte, 1<<20)
	tests := []struct {
		name     string
		in       []byte
		max      int
		tooLarge bool
	}{
		{"empty", nil, 100, false},
		{"unknown flag", []byte{2, 1, 2, 3}, 100, false},
		{"flag 255", []byte{255}, 100, false},
		{"zstd flag, no frame", []byte{frameZstd}, 100, false},
		{"zstd flag, not a zstd frame", append([]byte{frameZstd}, "not zstd at all"...), 100, false},
		{"declared size over max", packBody(big), len(big) - 1, true},
		// Refused from the header: the frame has no blocks, so decoding it
		// would fail with another error.
		{"declared size far over max, refused before decoding", append([]byte{frameZstd}, zstdHeaderFCS(1<<40)...), 1 << 20, true},
		{"no declared size, expands past max", append([]byte{frameZstd}, zstdStream(t, zeros)...), 4096, true},
		{"corrupt blocks", append(append([]byte{frameZstd}, zstdHeaderFCS(10)...), 0xff, 0xff, 0xff), 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := unpackBody(tt.in, tt.max)
			if err == nil {
				t.Fatalf("unpackBody = %d bytes, want an error", len(out))
			}
			if got := errors.Is(err, errFrameTooLarge); got != tt.tooLarge {
				t.Fatalf("unpackBody error %v: errFrameTooLarge %v, want %v", err, got, tt.tooLarge)
			}
		})
	}

	// A frame without a declared size is decoded when it fits.
	out, err := unpackBody(append([]byte{frameZstd}, zstdStream(t, big)...), len(big))
	if err != nil || !bytes.Equal(out, big) {
		t.Fatalf("streamed frame within max: %d bytes, %v", len(out), err)
	}
}
