package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Frames on request/response streams: a uvarint length, then that many
// bytes; one flag byte leads the body of a response that may be large:
// 0 for raw protobuf, 1 for a zstd frame of it. Every read is bounded by a
// limit its caller chooses for that message, so a peer cannot make the node
// allocate more than the request warrants, compressed or not.

const (
	frameRaw  = 0
	frameZstd = 1
)

// compressAbove is the body size from which responses are compressed:
// below it zstd's frame costs more than it saves.
const compressAbove = 1024

// maxDecoderWindow bounds the zstd window a response may ask the decoder
// for (packBody's frames use far less).
const maxDecoderWindow = 8 << 20

var errFrameTooLarge = errors.New("p2p: message larger than allowed")

// frameChunk is the most a frame's buffer holds before its bytes arrive.
const frameChunk = 1 << 20

// writeFrame writes a length-prefixed message.
func writeFrame(w io.Writer, body []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(body)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readFrame reads a length-prefixed message of at most max bytes.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	if max < 0 {
		max = 0
	}
	size, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("p2p: read message length: %w", err)
	}
	if size > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, size, max)
	}
	// Memory follows the bytes that arrive, not the length a peer states:
	// the buffer starts at 1 MiB at most and grows as data comes.
	var b bytes.Buffer
	b.Grow(int(min(size, frameChunk)))
	if _, err := io.CopyN(&b, r, int64(size)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("p2p: read message body: %w", err)
	}
	return b.Bytes(), nil
}

// zstd coders are pooled: an encoder holds megabytes of window.
var (
	encoders = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // only for invalid options, which are constant
		}
		return e
	}}
	decoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxDecoderWindow))
		if err != nil {
			panic(err) // only for invalid options, which are constant
		}
		return d
	}}
)

// packBody returns a response body: flagged, compressed when large.
func packBody(pb []byte) []byte {
	if len(pb) < compressAbove {
		return append([]byte{frameRaw}, pb...)
	}
	e := encoders.Get().(*zstd.Encoder)
	defer encoders.Put(e)
	return e.EncodeAll(pb, []byte{frameZstd})
}

// unpackBody undoes packBody, refusing more than max bytes once
// decompressed. Memory follows the data actually decoded, never more than
// about max: the stated size only pre-sizes the buffer (and only as far as
// the compressed bytes could plausibly expand), and a frame that hides its
// size is cut off after max bytes.
func unpackBody(b []byte, max int) ([]byte, error) {
	if len(b) == 0 {
		return nil, errors.New("p2p: empty response")
	}
	switch b[0] {
	case frameRaw:
		if len(b)-1 > max {
			return nil, fmt.Errorf("%w: %d bytes, at most %d", errFrameTooLarge, len(b)-1, max)
		}
		return b[1:], nil
	case frameZstd:
		var h zstd.Header
		if err := h.Decode(b[1:]); err != nil {
			return nil, fmt.Errorf("p2p: response is not a zstd frame: %w", err)
		}
		if h.HasFCS && h.FrameContentSize > uint64(max) {
			return nil, fmt.Errorf("%w: %d bytes decompressed, at most %d", errFrameTooLarge, h.FrameContentSize, max)
		}
		hint := 0
		if h.HasFCS {
			hint = int(min(h.FrameContentSize, uint64(max), uint64(maxExpansion*len(b))))
		}
		d := decoders.Get().(*zstd.Decoder)
		defer func() {
			d.Reset(nil)
			decoders.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(b[1:])); err != nil {
			return nil, fmt.Errorf("p2p: decompress response: %w", err)
		}
		out := bytes.NewBuffer(make([]byte, 0, hint))
		n, err := out.ReadFrom(io.LimitReader(d, int64(max)+1))
		if err != nil {
			return nil, fmt.Errorf("p2p: decompress response: %w", err)
		}
		if n > int64(max) {
			return nil, fmt.Errorf("%w: more than %d bytes decompressed", errFrameTooLarge, max)
		}
		return out.Bytes(), nil
	default:
		return nil, fmt.Errorf("p2p: unknown response encoding %d", b[0])
	}
}

// maxExpansion is the most a response's stated size may exceed its
// compressed size before the buffer stops being sized from it up front:
// blocks compress 2-5 times; a frame claiming far more grows the buffer as
// it actually decodes.
const maxExpansion = 32
