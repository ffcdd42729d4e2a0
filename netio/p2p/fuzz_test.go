package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/emberchain/ember/engine/koinos"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// FuzzFrames: readFrame under any limit and unpackBody under a small max
// take any bytes without panicking, and never return more than allowed;
// what writeFrame and packBody make comes back unchanged.
func FuzzFrames(f *testing.F) {
	for i, n := range []int{0, 1, compressAbove - 2, compressAbove - 1, compressAbove, compressAbove + 1, compressAbove + 2, 2 * compressAbove} {
		body := testBytes(n, uint64(i))
		packed := packBody(body)
		f.Add(uint32(n), uint16(n), packed)
		f.Add(uint32(n+8), uint16(n/2), packed)
		f.Add(uint32(len(packed)), uint16(n), frameOf(f, packed))
	}
	// Incompressible: zstd stores it raw in its frame.
	noise := make([]byte, 3*compressAbove)
	for i := range noise {
		noise[i] = byte(i*7919>>3) ^ byte(i)
	}
	f.Add(uint32(len(noise)), uint16(len(noise)), packBody(noise))
	// A zstd frame that does not state its size and expands past max.
	f.Add(uint32(1<<16), uint16(4096), append([]byte{frameZstd}, zstdStream(f, make([]byte, 256<<10))...))
	// A zstd frame that states a size far past max, with no blocks.
	f.Add(uint32(1<<16), uint16(4096), append([]byte{frameZstd}, zstdHeaderFCS(1<<40)...))
	// Two frames back to back, and lengths at the limit and past it.
	f.Add(uint32(100), uint16(100), append(frameOf(f, []byte("one")), frameOf(f, []byte("two"))...))
	f.Add(uint32(3), uint16(3), uvarint(4))
	f.Add(uint32(1<<20), uint16(0), uvarint(1<<63))
	f.Add(uint32(10), uint16(10), bytes.Repeat([]byte{0xff}, 11))
	f.Add(uint32(0), uint16(0), []byte{})
	f.Add(uint32(10), uint16(10), []byte{2, 0})

	f.Fuzz(func(t *testing.T, limit uint32, max uint16, data []byte) {
		// Callers' limits are at most a block's size (64 MiB by default);
		// smaller keeps each run fast without changing the code paths.
		lim := int(limit % (1 << 20))
		checkReadFrames(t, data, lim)

		out, err := unpackBody(data, int(max))
		if err == nil && len(out) > int(max) {
			t.Fatalf("unpackBody returned %d bytes, max %d", len(out), max)
		}

		// What this node writes, it reads back.
		got, err := readFrame(bufio.NewReader(bytes.NewReader(frameOf(t, data))), len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("frame round trip of %d bytes: %d bytes, %v", len(data), len(got), err)
		}
		packed := packBody(data)
		got, err = unpackBody(packed, len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("body round trip of %d bytes: %d bytes, %v", len(data), len(got), err)
		}
		if packed[0] == frameZstd {
			if _, err := unpackBody(packed, len(data)-1); !errors.Is(err, errFrameTooLarge) {
				t.Fatalf("%d bytes unpacked with max %d: %v, want errFrameTooLarge", len(data), len(data)-1, err)
			}
		}
	})
}

// checkReadFrames reads frames from data until one fails, checking each
// against the bytes it came from.
func checkReadFrames(t *testing.T, data []byte, lim int) {
	r := bufio.NewReader(bytes.NewReader(data))
	rest := data
	for {
		b, err := readFrame(r, lim)
		size, n := binary.Uvarint(rest)
		if err != nil {
			if errors.Is(err, errFrameTooLarge) && (n <= 0 || size <= uint64(lim)) {
				t.Fatalf("readFrame refused a frame of %d bytes (length %d bytes) as too large for %d: %v", size, n, lim, err)
			}
			return
		}
		if len(b) > lim {
			t.Fatalf("readFrame returned %d bytes, limit %d", len(b), lim)
		}
		if n <= 0 || size != uint64(len(b)) || !bytes.Equal(b, rest[n:n+len(b)]) {
			t.Fatalf("readFrame returned %d bytes that are not the frame's", len(b))
		}
		rest = rest[n+len(b):]
	}
}

// FuzzMessages: any bytes go into every message a peer sends; what
// decodes goes through this package's checks of it without panicking,
// and encodes back to the same message.
func FuzzMessages(f *testing.F) {
	for _, m := range fuzzSeedMessages() {
		b, err := m.MarshalVT()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})                   // field 1, empty message
	f.Add([]byte{0x12, 0x02, 0x0a, 0x00})       // field 2 holding field 1, empty
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0x0f}) // a length past the end

	f.Fuzz(func(t *testing.T, data []byte) {
		var st p2ppb.Status
		if st.UnmarshalVT(data) == nil {
			checkRef(t, st.Head)
			checkRef(t, st.LastIrreversible)
			roundTrip(t, &st, &p2ppb.Status{})
		}

		var sreq p2ppb.SyncRequest
		if sreq.UnmarshalVT(data) == nil {
			if fp := sreq.GetForkPoint(); fp != nil {
				for _, r := range fp.Locator {
					checkRef(t, r)
				}
			}
			if br := sreq.GetBlocks(); br != nil {
				digestOf(br.HeadId)
			}
			roundTrip(t, &sreq, &p2ppb.SyncRequest{})
		}

		var sresp p2ppb.SyncResponse
		if sresp.UnmarshalVT(data) == nil {
			if fp := sresp.GetForkPoint(); fp != nil {
				checkRef(t, fp.Common)
				checkRef(t, fp.Head)
			}
			// Round trip before checkBatch, which sets the blocks' ids.
			roundTrip(t, &sresp, &p2ppb.SyncResponse{})
			if br := sresp.GetBlocks(); br != nil {
				checkBlocks(t, br.Blocks)
			}
		}

		var freq p2ppb.FetchRequest
		if freq.UnmarshalVT(data) == nil {
			digestOf(freq.BlockId)
			roundTrip(t, &freq, &p2ppb.FetchRequest{})
		}

		var fresp p2ppb.FetchResponse
		if fresp.UnmarshalVT(data) == nil {
			roundTrip(t, &fresp, &p2ppb.FetchResponse{})
			checkTxs(t, fresp.Transactions)
			if b := fresp.Block; b != nil {
				if b.Header != nil {
					koinos.BlockID(b.Header)
				}
				checkTxs(t, b.Transactions)
			}
		}

		var batch p2ppb.TxBatch
		if batch.UnmarshalVT(data) == nil {
			roundTrip(t, &batch, &p2ppb.TxBatch{})
			checkTxs(t, batch.Transactions)
		}

		var cb p2ppb.CompactBlock
		if cb.UnmarshalVT(data) == nil {
			roundTrip(t, &cb, &p2ppb.CompactBlock{})
			if cb.Header != nil {
				koinos.BlockID(cb.Header)
				digestOf(cb.Header.Previous)
			}
			if len(cb.ShortIds)%shortIDLen == 0 {
				x := newTxIndex(txIndexShards)
				for i := 0; i < len(cb.ShortIds); i += shortIDLen {
					if x.get(binary.BigEndian.Uint64(cb.ShortIds[i:])) != nil {
						t.Fatal("an empty index returned a transaction")
					}
				}
			}
		}
	})
}

// vtMessage is what the generated messages offer.
type vtMessage[T any] interface {
	MarshalVT() ([]byte, error)
	UnmarshalVT([]byte) error
	SizeVT() int
	EqualVT(T) bool
}

// roundTrip checks a decoded message encodes to SizeVT bytes that decode
// to the same message.
func roundTrip[T vtMessage[T]](t *testing.T, m, fresh T) {
	t.Helper()
	b, err := m.MarshalVT()
	if err != nil {
		t.Fatalf("%T: a decoded message does not encode: %v", m, err)
	}
	if len(b) != m.SizeVT() {
		t.Fatalf("%T: encoded to %d bytes, SizeVT says %d", m, len(b), m.SizeVT())
	}
	if err := fresh.UnmarshalVT(b); err != nil {
		t.Fatalf("%T: re-encoded message does not decode: %v", m, err)
	}
	if !m.EqualVT(fresh) {
		t.Fatalf("%T: message changed in a round trip", m)
	}
}

// checkRef runs parseRef and checks what it accepts.
func checkRef(t *testing.T, r *p2ppb.BlockRef) {
	ref, err := parseRef(r)
	if err != nil {
		return
	}
	if r.Height == 0 {
		if ref != (blockRef{}) {
			t.Fatalf("parseRef of height 0 = %+v, want the zero ref", ref)
		}
		return
	}
	if ref.height != r.Height || !bytes.Equal(ref.id.Multihash(), r.Id) {
		t.Fatalf("parseRef(%x @ %d) = %x @ %d", r.Id, r.Height, ref.id, ref.height)
	}
}

// checkBlocks runs checkBatch on a blocks response, asked for as a window
// from the first block's height, and checks what it accepts.
func checkBlocks(t *testing.T, blocks []*protocol.Block) {
	w := window{count: len(blocks)}
	if len(blocks) > 0 && blocks[0].GetHeader() != nil {
		w.from = blocks[0].Header.Height
	}
	if err := checkBatch(blocks, w); err != nil {
		return
	}
	var prev []byte
	for i, b := range blocks {
		if b.Header.Height != w.from+uint64(i) {
			t.Fatalf("checkBatch accepted block %d at height %d from %d", i, b.Header.Height, w.from)
		}
		if !bytes.Equal(b.Id, koinos.BlockID(b.Header).Multihash()) {
			t.Fatalf("checkBatch left block %d with id %x", i, b.Id)
		}
		if i > 0 && !bytes.Equal(b.Header.Previous, prev) {
			t.Fatalf("checkBatch accepted block %d that does not link", i)
		}
		prev = b.Id
	}
}

// checkTxs takes transactions into an index as the gossip does, and looks
// them up by short id.
func checkTxs(t *testing.T, txs []*protocol.Transaction) {
	x := newTxIndex(4 * txIndexShards)
	for _, tx := range txs {
		if tx == nil {
			return // refused by the callers before the index
		}
	}
	x.add(txs...)
	for _, tx := range txs {
		sid, ok := shortID(tx.Id)
		if !ok {
			continue
		}
		if got := x.get(sid); got != nil {
			if s, _ := shortID(got.Id); s != sid {
				t.Fatalf("get(%#x) returned a transaction of short id %#x", sid, s)
			}
		}
	}
}

// fuzzSeedMessages are realistic messages of every kind a peer sends.
func fuzzSeedMessages() []interface{ MarshalVT() ([]byte, error) } {
	chainID := koinos.Sum256([]byte("chain")).Multihash()
	blocks := testChain(koinos.Sum256([]byte("lib")).Multihash(), 1201, 3)
	var txs []*protocol.Transaction
	for i := range 4 {
		txs = append(txs, seedTx(chainID, i))
	}
	blocks[1].Transactions = txs[:2]
	blocks[2].Transactions = txs[2:]
	withIDs := testChain(koinos.ZeroMultihash(), 1, 2)
	if err := checkBatch(withIDs, window{from: 1, count: 2}); err != nil {
		panic(err)
	}
	ref := func(b *protocol.Block) *p2ppb.BlockRef {
		return &p2ppb.BlockRef{Id: koinos.BlockID(b.Header).Multihash(), Height: b.Header.Height}
	}
	sids := make([]byte, 0, shortIDLen*len(txs))
	for _, tx := range txs {
		sid, _ := shortID(tx.Id)
		sids = binary.BigEndian.AppendUint64(sids, sid)
	}
	return []interface{ MarshalVT() ([]byte, error) }{
		&p2ppb.Status{Version: Version, ChainId: chainID, Head: ref(blocks[2]), HeadTime: blocks[2].Header.Timestamp, LastIrreversible: ref(blocks[0]), Agent: "ember/v0.4.0"},
		&p2ppb.Status{Version: Version, ChainId: chainID, Head: &p2ppb.BlockRef{}, LastIrreversible: &p2ppb.BlockRef{}, Agent: "ember"},
		&p2ppb.SyncRequest{Request: &p2ppb.SyncRequest_ForkPoint{ForkPoint: &p2ppb.ForkPointRequest{Locator: []*p2ppb.BlockRef{ref(blocks[2]), ref(blocks[1]), ref(blocks[0]), {Height: 0}}}}},
		&p2ppb.SyncRequest{Request: &p2ppb.SyncRequest_Blocks{Blocks: &p2ppb.BlocksRequest{HeadId: ref(blocks[2]).Id, FromHeight: 1201, Count: 64, MaxBytes: DefaultSyncBatchBytes}}},
		&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_ForkPoint{ForkPoint: &p2ppb.ForkPointResponse{Common: ref(blocks[0]), Head: ref(blocks[2])}}},
		&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_ForkPoint{ForkPoint: &p2ppb.ForkPointResponse{Head: ref(blocks[2])}}},
		&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Blocks{Blocks: &p2ppb.BlocksResponse{Blocks: blocks}}},
		&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Blocks{Blocks: &p2ppb.BlocksResponse{Blocks: withIDs}}},
		&p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: errUnknownHead}},
		&p2ppb.FetchRequest{BlockId: ref(blocks[1]).Id, Indexes: []uint32{0, 1}},
		&p2ppb.FetchRequest{BlockId: ref(blocks[1]).Id, WholeBlock: true},
		&p2ppb.FetchResponse{Transactions: txs[:2]},
		&p2ppb.FetchResponse{Block: blocks[2]},
		&p2ppb.FetchResponse{Error: "unknown block"},
		&p2ppb.TxBatch{Transactions: txs},
		&p2ppb.CompactBlock{Header: blocks[2].Header, Signature: blocks[2].Signature, ShortIds: sids},
		&p2ppb.CompactBlock{Header: blocks[0].Header, Signature: blocks[0].Signature},
	}
}

// seedTx is a transaction as a wallet makes one: a contract call, its id
// derived from its header, one signature.
func seedTx(chainID []byte, i int) *protocol.Transaction {
	ops := []*protocol.Operation{{Op: &protocol.Operation_CallContract{CallContract: &protocol.CallContractOperation{
		ContractId: bytes.Repeat([]byte{0x00, 0x5b}, 13)[:25],
		EntryPoint: 0x27f576ca,
		Args:       append([]byte{0x0a, 0x19}, bytes.Repeat([]byte{byte(i)}, 25)...),
	}}}}
	h := &protocol.TransactionHeader{
		ChainId:             chainID,
		RcLimit:             100_000_000,
		Nonce:               []byte{0x08, byte(i + 1)},
		OperationMerkleRoot: koinos.OperationMerkleRoot(ops).Multihash(),
		Payer:               bytes.Repeat([]byte{0x00, byte(i)}, 13)[:25],
	}
	return &protocol.Transaction{
		Id:         koinos.TransactionID(h).Multihash(),
		Header:     h,
		Operations: ops,
		Signatures: [][]byte{bytes.Repeat([]byte{0x1f, byte(i)}, 33)[:65]},
	}
}
