package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// A block record is one Pebble value holding a block, its receipt and the
// signers of its transactions (doc.go, "Block records"). Version 1:
//
//	version   byte (1)
//	height    uvarint                  } read without decompressing, for
//	previous  32 bytes                 } topology walks
//	ntx       uvarint                  number of transactions
//	frameTxs  uvarint                  transactions per frame (the last may hold fewer)
//	headLen   uvarint
//	per frame: compLen uvarint, rawLen uvarint
//	head      headLen bytes, not compressed:
//	            uvarint len ‖ block without its transactions ‖ receipt without its transaction receipts
//	frames    zstd frames, each rawLen bytes once decompressed:
//	            per transaction: uvarint len ‖ transaction ‖ uvarint len ‖ receipt ‖ uvarint n ‖ n × 25-byte signer
const recordVersion = 1

// DefaultFrameTxs is how many transactions share one compressed frame.
// Larger frames compress a little better; smaller ones make reading one
// transaction (transaction_store, account_history) cheaper. doc.go has the
// measurements.
const DefaultFrameTxs = 64

// Bounds on what a record may declare, so that a corrupt length cannot make
// a read allocate without limit. A frame holds at most FrameTxs
// transactions with their receipts; with the default limits (64 KiB per
// transaction) that is a few MB, far below the bound.
const (
	maxRecordTxs   = 1 << 22
	maxFrameBytes  = 256 << 20
	maxRecordBytes = 1 << 30
	maxSigners     = 1 << 16
)

// ErrCorrupt is matched (errors.Is) by every error about data on disk
// that does not decode.
var ErrCorrupt = errors.New("store: corrupt data")

// corruptError is what decoders return: its message has no "store: "
// prefix, since callers add one with the context.
type corruptError struct{ msg string }

func (e *corruptError) Error() string        { return "corrupt data: " + e.msg }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}

// corruptStore is corrupt for errors returned as they are to callers.
func corruptStore(format string, args ...any) error {
	return fmt.Errorf("store: %w", corrupt(format, args...))
}

// recordEncoder encodes block records, reusing its buffers and zstd
// encoders between blocks: after the first few blocks, encoding allocates
// only the record's head messages. Not safe for concurrent use.
//
// The frames are independent zstd frames, so a large block's are
// compressed by several goroutines at once (one frameEncoder each, on
// contiguous runs of frames, joined in order): compression was about two
// thirds of the chain loop's store time for a 5,000-transfer block, all
// of it on one core. The bytes are the same as a serial encoding's
// (TestRecordEncodeParallelSameBytes).
type recordEncoder struct {
	frameTxs int
	parts    []*frameEncoder // parts[0] runs on the caller
	head     []byte
	out      []byte
}

// frameEncoder compresses a run of frames into its own buffers.
type frameEncoder struct {
	zenc   *zstd.Encoder
	raw    []byte
	frames []byte
	index  []uint64 // per frame: compressed length, raw length
	err    error
}

// maxEncodeParts bounds the goroutines one record's compression uses.
const maxEncodeParts = 4

// minFramesPerPart is the least a goroutine is started for: below it, the
// start and the join cost more than the compression they share.
const minFramesPerPart = 4

func newRecordEncoder(frameTxs int) (*recordEncoder, error) {
	return newRecordEncoderParts(frameTxs, min(runtime.GOMAXPROCS(0), maxEncodeParts))
}

func newRecordEncoderParts(frameTxs, parts int) (*recordEncoder, error) {
	if frameTxs <= 0 {
		frameTxs = DefaultFrameTxs
	}
	enc := &recordEncoder{frameTxs: frameTxs}
	for range max(parts, 1) {
		z, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			// Huffman coding of literals saves nothing here (the literals are
			// hashes, signatures and keys) and costs a third of the time.
			zstd.WithNoEntropyCompression(true),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, fmt.Errorf("store: zstd encoder: %w", err)
		}
		enc.parts = append(enc.parts, &frameEncoder{zenc: z})
	}
	return enc, nil
}

// signersOf returns the signers of transaction i without building the
// [][]Address that BlockEntry.TxSigners allocates.
func signersOf(e *chain.BlockEntry, i int) []koinos.Address {
	if e.Txs != nil {
		return e.Txs[i].Signers()
	}
	return e.Signers[i]
}

// checkEntry rejects entries that cannot be stored faithfully.
func checkEntry(e *chain.BlockEntry) error {
	if e == nil || e.Block == nil || e.Block.Header == nil || e.Receipt == nil {
		return errors.New("store: block entry without block, header or receipt")
	}
	n := len(e.Block.Transactions)
	if len(e.Receipt.TransactionReceipts) != n {
		return fmt.Errorf("store: block %d has %d transactions but %d receipts", e.Height, n, len(e.Receipt.TransactionReceipts))
	}
	if e.Txs != nil && len(e.Txs) != n {
		return fmt.Errorf("store: block %d has %d transactions but %d verified", e.Height, n, len(e.Txs))
	}
	if e.Txs == nil && len(e.Signers) != n {
		return fmt.Errorf("store: block %d has %d transactions but signers for %d", e.Height, n, len(e.Signers))
	}
	return nil
}

// encode returns the record of e. The slice is valid until the next call.
func (enc *recordEncoder) encode(e *chain.BlockEntry) ([]byte, error) {
	if err := checkEntry(e); err != nil {
		return nil, err
	}
	b, r := e.Block, e.Receipt
	ntx := len(b.Transactions)

	// Head: the block and receipt without their per-transaction lists.
	// Copies are made through reflection so that a field added to the
	// schema later is kept without touching this code.
	hb := without(b.ProtoReflect(), blockTransactionsField).Interface().(*protocol.Block)
	hr := without(r.ProtoReflect(), receiptTransactionsField).Interface().(*protocol.BlockReceipt)
	enc.head = appendMessage(enc.head[:0], hb)
	enc.head = appendRaw(enc.head, hr)

	// Frames: contiguous runs of frames, one per part.
	nframes := (ntx + enc.frameTxs - 1) / enc.frameTxs
	parts := max(1, min(len(enc.parts), nframes/minFramesPerPart))
	var wg sync.WaitGroup
	for k := range parts {
		fe := enc.parts[k]
		from, to := k*nframes/parts, (k+1)*nframes/parts
		if k == 0 {
			continue // below, on this goroutine
		}
		wg.Go(func() { fe.encode(e, from, to, enc.frameTxs) })
	}
	enc.parts[0].encode(e, 0, nframes/parts, enc.frameTxs)
	wg.Wait()
	for _, fe := range enc.parts[:parts] {
		if fe.err != nil {
			return nil, fe.err
		}
	}

	out := append(enc.out[:0], recordVersion)
	out = binary.AppendUvarint(out, e.Height)
	out = append(out, e.Previous[:]...)
	out = binary.AppendUvarint(out, uint64(ntx))
	out = binary.AppendUvarint(out, uint64(enc.frameTxs))
	out = binary.AppendUvarint(out, uint64(len(enc.head)))
	for _, fe := range enc.parts[:parts] {
		for _, v := range fe.index {
			out = binary.AppendUvarint(out, v)
		}
	}
	out = append(out, enc.head...)
	for _, fe := range enc.parts[:parts] {
		out = append(out, fe.frames...)
	}
	enc.out = out
	return out, nil
}

// encode compresses frames [from, to) of e's transactions.
func (fe *frameEncoder) encode(e *chain.BlockEntry, from, to, frameTxs int) {
	b, r := e.Block, e.Receipt
	ntx := len(b.Transactions)
	fe.frames, fe.index, fe.err = fe.frames[:0], fe.index[:0], nil
	for f := from; f < to; f++ {
		start := f * frameTxs
		end := min(start+frameTxs, ntx)
		raw := fe.raw[:0]
		for i := start; i < end; i++ {
			raw = appendMessage(raw, b.Transactions[i])
			raw = appendMessage(raw, r.TransactionReceipts[i])
			s := signersOf(e, i)
			raw = binary.AppendUvarint(raw, uint64(len(s)))
			for k := range s {
				raw = append(raw, s[k][:]...)
			}
		}
		fe.raw = raw
		if len(raw) > maxFrameBytes {
			fe.err = fmt.Errorf("store: block %d: transactions %d to %d take %d bytes, above the frame limit of %d", e.Height, start, end-1, len(raw), maxFrameBytes)
			return
		}
		before := len(fe.frames)
		fe.frames = fe.zenc.EncodeAll(raw, fe.frames)
		fe.index = append(fe.index, uint64(len(fe.frames)-before), uint64(len(raw)))
	}
}

const (
	blockTransactionsField   protoreflect.FieldNumber = 3
	receiptTransactionsField protoreflect.FieldNumber = 8
)

// without returns a shallow copy of m lacking one field. The copy shares
// m's values and is only marshaled, never modified.
func without(m protoreflect.Message, field protoreflect.FieldNumber) protoreflect.Message {
	out := m.New()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Number() != field {
			out.Set(fd, v)
		}
		return true
	})
	return out
}

type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
}

// appendMessage appends uvarint(size) ‖ m.
func appendMessage(dst []byte, m vtMessage) []byte {
	n := m.SizeVT()
	dst = binary.AppendUvarint(dst, uint64(n))
	return appendSized(dst, m, n)
}

// appendRaw appends m with no length prefix.
func appendRaw(dst []byte, m vtMessage) []byte { return appendSized(dst, m, m.SizeVT()) }

func appendSized(dst []byte, m vtMessage, n int) []byte {
	start := len(dst)
	dst = grow(dst, n)
	// The size was just computed, so marshaling into exactly that much
	// room cannot fail.
	_, _ = m.MarshalToSizedBufferVT(dst[start : start+n])
	return dst
}

// grow extends b by n bytes, reallocating geometrically.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
