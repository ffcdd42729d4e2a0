package store

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Decoding of block records (layout in record.go). Every length and count
// is checked against the bytes actually present before it is used, so
// corrupt or truncated records give errors wrapping ErrCorrupt, never
// panics or unbounded allocations (FuzzDecodeBlockRecord).

// record is a parsed block record; its slices point into the value read
// from Pebble and are valid only as long as that value is.
type record struct {
	height   uint64
	previous koinos.Digest
	ntx      int
	frameTxs int
	head     []byte
	frames   []frameRef
}

type frameRef struct {
	comp []byte
	raw  int
}

// parseTopology reads only the height and parent of a record.
func parseTopology(v []byte) (height uint64, previous koinos.Digest, err error) {
	if len(v) == 0 || v[0] != recordVersion {
		return 0, previous, corrupt("block record version %d, want %d", firstByte(v), recordVersion)
	}
	height, n := binary.Uvarint(v[1:])
	if n <= 0 || len(v) < 1+n+koinos.DigestSize {
		return 0, previous, corrupt("block record header truncated")
	}
	copy(previous[:], v[1+n:])
	return height, previous, nil
}

// parseRecord checks a record's layout without decompressing anything.
func parseRecord(v []byte) (record, error) {
	var r record
	var err error
	if r.height, r.previous, err = parseTopology(v); err != nil {
		return r, err
	}
	_, n := binary.Uvarint(v[1:])
	rest := v[1+n+koinos.DigestSize:]
	var ntx, frameTxs, headLen uint64
	var ok bool
	if ntx, rest, ok = uvarint(rest); !ok || ntx > maxRecordTxs {
		return r, corrupt("block record declares %d transactions", ntx)
	}
	if frameTxs, rest, ok = uvarint(rest); !ok || (ntx > 0 && (frameTxs == 0 || frameTxs > maxRecordTxs)) {
		return r, corrupt("block record declares %d transactions per frame", frameTxs)
	}
	if headLen, rest, ok = uvarint(rest); !ok {
		return r, corrupt("block record head length truncated")
	}
	r.ntx, r.frameTxs = int(ntx), int(frameTxs)
	nframes := 0
	if ntx > 0 {
		nframes = int((ntx + frameTxs - 1) / frameTxs)
	}
	if nframes > len(rest)/2 { // each frame's index takes two bytes or more
		return r, corrupt("block record declares %d frames in %d bytes", nframes, len(rest))
	}
	r.frames = make([]frameRef, nframes)
	lens := make([]uint64, nframes)
	var total uint64
	for i := range nframes {
		var c, raw uint64
		if c, rest, ok = uvarint(rest); !ok {
			return r, corrupt("block record frame index truncated")
		}
		if raw, rest, ok = uvarint(rest); !ok || raw > maxFrameBytes {
			return r, corrupt("block record frame %d declares %d bytes", i, raw)
		}
		if total += raw; total > maxRecordBytes {
			return r, corrupt("block record declares more than %d bytes", maxRecordBytes)
		}
		lens[i], r.frames[i].raw = c, int(raw)
	}
	if headLen > uint64(len(rest)) {
		return r, corrupt("block record head of %d bytes overruns the record", headLen)
	}
	r.head, rest = rest[:headLen], rest[headLen:]
	for i, c := range lens {
		if c > uint64(len(rest)) {
			return r, corrupt("block record frame %d of %d bytes overruns the record", i, c)
		}
		r.frames[i].comp, rest = rest[:c], rest[c:]
	}
	if len(rest) != 0 {
		return r, corrupt("block record has %d trailing bytes", len(rest))
	}
	return r, nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// lengthPrefixed splits uvarint(len) ‖ bytes off b.
func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	n, rest, ok := uvarint(b)
	if !ok || n > uint64(len(rest)) {
		return nil, b, false
	}
	return rest[:n], rest[n:], true
}

// decodeHead returns the block and receipt without their per-transaction
// lists.
func (r *record) decodeHead() (*protocol.Block, *protocol.BlockReceipt, error) {
	bb, rest, ok := lengthPrefixed(r.head)
	if !ok {
		return nil, nil, corrupt("block record head truncated")
	}
	b := &protocol.Block{}
	if err := b.UnmarshalVT(bb); err != nil {
		return nil, nil, corrupt("block: %v", err)
	}
	rc := &protocol.BlockReceipt{}
	if err := rc.UnmarshalVT(rest); err != nil {
		return nil, nil, corrupt("block receipt: %v", err)
	}
	if b.Header == nil || b.Header.Height != r.height {
		return nil, nil, corrupt("block header does not match the record's height %d", r.height)
	}
	return b, rc, nil
}

// frame decompresses frame f. The zstd frame must declare the size the
// record does, and decoding stops at that size: a corrupt frame cannot
// make a read expand it further, whatever it claims.
func (r *record) frame(dec *zstd.Decoder, f int) ([]byte, error) {
	fr := r.frames[f]
	var h zstd.Header
	if err := h.Decode(fr.comp); err != nil || !h.HasFCS || h.FrameContentSize != uint64(fr.raw) {
		return nil, corrupt("block %d frame %d: zstd header does not declare its %d bytes", r.height, f, fr.raw)
	}
	out, err := dec.DecodeAll(fr.comp, make([]byte, 0, fr.raw))
	if err != nil {
		return nil, corrupt("block %d frame %d: %v", r.height, f, err)
	}
	if len(out) != fr.raw {
		return nil, corrupt("block %d frame %d decompresses to %d bytes, not %d", r.height, f, len(out), fr.raw)
	}
	return out, nil
}

// frameTxCount is the number of transactions frame f holds.
func (r *record) frameTxCount(f int) int {
	return min(r.frameTxs, r.ntx-f*r.frameTxs)
}

// item is one transaction of a frame, still serialized.
type item struct {
	tx, receipt, signers []byte
	nsigners             int
}

// nextItem splits the next transaction off a decompressed frame.
func nextItem(b []byte) (it item, rest []byte, err error) {
	var ok bool
	if it.tx, b, ok = lengthPrefixed(b); !ok {
		return it, nil, corrupt("transaction truncated")
	}
	if it.receipt, b, ok = lengthPrefixed(b); !ok {
		return it, nil, corrupt("transaction receipt truncated")
	}
	n, b, ok := uvarint(b)
	if !ok || n > maxSigners || n*koinos.AddressSize > uint64(len(b)) {
		return it, nil, corrupt("transaction signers truncated")
	}
	it.nsigners = int(n)
	it.signers, b = b[:n*koinos.AddressSize], b[n*koinos.AddressSize:]
	return it, b, nil
}

func (it *item) decodeTx() (*protocol.Transaction, error) {
	tx := &protocol.Transaction{}
	if err := tx.UnmarshalVT(it.tx); err != nil {
		return nil, corrupt("transaction: %v", err)
	}
	return tx, nil
}

func (it *item) decodeReceipt() (*protocol.TransactionReceipt, error) {
	rc := &protocol.TransactionReceipt{}
	if err := rc.UnmarshalVT(it.receipt); err != nil {
		return nil, corrupt("transaction receipt: %v", err)
	}
	return rc, nil
}

// txAt returns transaction i of the record, decompressing only its frame.
func (r *record) txAt(dec *zstd.Decoder, i int) (item, error) {
	if i < 0 || i >= r.ntx {
		return item{}, corrupt("block %d has no transaction %d", r.height, i)
	}
	f := i / r.frameTxs
	raw, err := r.frame(dec, f)
	if err != nil {
		return item{}, err
	}
	var it item
	for k := 0; k <= i%r.frameTxs; k++ {
		if it, raw, err = nextItem(raw); err != nil {
			return item{}, fmt.Errorf("block %d transaction %d: %w", r.height, f*r.frameTxs+k, err)
		}
	}
	return it, nil
}

// decodeEntry decodes the whole record into a BlockEntry with Signers set
// and Txs nil, checking that it is the block id says.
func decodeEntry(dec *zstd.Decoder, id koinos.Digest, v []byte) (*chain.BlockEntry, error) {
	r, err := parseRecord(v)
	if err != nil {
		return nil, err
	}
	return r.entry(dec, id)
}

func (r *record) entry(dec *zstd.Decoder, id koinos.Digest) (*chain.BlockEntry, error) {
	b, rc, err := r.decodeHead()
	if err != nil {
		return nil, err
	}
	if got, err := koinos.ParseMultihash(b.Id); err != nil || got != id {
		return nil, corrupt("record stored under block 0x%x holds block %x", id, b.Id)
	}
	// Sizes come from the record, so they are capped until the frames
	// prove them: a corrupt count must not allocate gigabytes.
	n := min(r.ntx, 1<<16)
	b.Transactions = make([]*protocol.Transaction, 0, n)
	rc.TransactionReceipts = make([]*protocol.TransactionReceipt, 0, n)
	signers := make([][]koinos.Address, 0, n)
	backing := make([]koinos.Address, 0, n) // most transactions have one signer
	for f := range r.frames {
		raw, err := r.frame(dec, f)
		if err != nil {
			return nil, err
		}
		for k := range r.frameTxCount(f) {
			var it item
			if it, raw, err = nextItem(raw); err != nil {
				return nil, fmt.Errorf("block %d transaction %d: %w", r.height, f*r.frameTxs+k, err)
			}
			tx, err := it.decodeTx()
			if err != nil {
				return nil, err
			}
			trc, err := it.decodeReceipt()
			if err != nil {
				return nil, err
			}
			start := len(backing)
			for s := range it.nsigners {
				backing = append(backing, koinos.Address(it.signers[s*koinos.AddressSize:(s+1)*koinos.AddressSize]))
			}
			b.Transactions = append(b.Transactions, tx)
			rc.TransactionReceipts = append(rc.TransactionReceipts, trc)
			signers = append(signers, backing[start:len(backing):len(backing)])
		}
		if len(raw) != 0 {
			return nil, corrupt("block %d frame %d has %d trailing bytes", r.height, f, len(raw))
		}
	}
	prev, _ := koinos.ParseMultihash(b.Header.Previous)
	if prev != r.previous {
		return nil, corrupt("block %d record's parent does not match its header", r.height)
	}
	return &chain.BlockEntry{
		Topology: chain.Topology{ID: id, Height: r.height, Previous: r.previous},
		Block:    b,
		Receipt:  rc,
		Signers:  signers,
	}, nil
}
