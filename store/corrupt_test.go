package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/zstd"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// recordNode makes a small chain and returns it with the record of a
// block of seven transactions (two frames of four and three).
func recordNode(t testing.TB) (*node, *chain.BlockEntry, []byte) {
	t.Helper()
	nd := newNode(t, newNet(t, 1, 4), vfs.NewMem(), 64)
	var txs []*protocol.Transaction
	for k := range 7 {
		txs = append(txs, nd.transfer(k%4, (k+1)%4, 1))
	}
	e := nd.produce(0, txs...).Accepted[0]
	v, err := nd.st.get(blockKey(nil, e.ID))
	if err != nil {
		t.Fatal(err)
	}
	return nd, e, v
}

func testDecoder(t testing.TB) *zstd.Decoder {
	t.Helper()
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<20), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// decodeAll runs every decoder a read can reach on v.
func decodeAll(dec *zstd.Decoder, id koinos.Digest, v []byte) error {
	_, _, _ = parseTopology(v)
	r, err := parseRecord(v)
	if err != nil {
		return err
	}
	for i := range min(r.ntx, 16) {
		if it, err := r.txAt(dec, i); err == nil {
			_, _ = it.decodeTx()
			_, _ = it.decodeReceipt()
		}
	}
	if b, _, err := r.decodeHead(); err == nil {
		if d, err := koinos.ParseMultihash(b.Id); err == nil {
			id = d
		}
	}
	_, err = r.entry(dec, id)
	return err
}

func TestTruncatedRecordsAreErrors(t *testing.T) {
	_, e, v := recordNode(t)
	dec := testDecoder(t)
	if err := decodeAll(dec, e.ID, v); err != nil {
		t.Fatalf("the intact record: %v", err)
	}
	for n := range len(v) {
		err := decodeAll(dec, e.ID, v[:n])
		if err == nil {
			t.Fatalf("record truncated to %d of %d bytes decoded", n, len(v))
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: error %v does not wrap ErrCorrupt", n, err)
		}
	}
	// Flipped bytes may decode (a changed amount is still a valid
	// protobuf), but must never panic.
	for i := range v {
		w := append([]byte(nil), v...)
		w[i] ^= 0x5a
		_ = decodeAll(dec, e.ID, w)
	}
}

func TestCorruptDataGivesErrors(t *testing.T) {
	nd, e, _ := recordNode(t)
	st := nd.st
	tx := txID(t, e.Block.Transactions[0])
	head := nd.c.View().Head.ID
	addr := nd.addr(0)
	logged := func(err error) error {
		t.Helper()
		t.Log(err)
		if !strings.HasPrefix(err.Error(), "store: ") || strings.Count(err.Error(), "store: ") > 1 {
			t.Errorf("error %q: want one \"store: \" prefix", err)
		}
		return err
	}
	write := func(k, v []byte) {
		t.Helper()
		if err := st.db.Set(k, v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		st.decoded = newEntryCache(4, DefaultDecodedTxs) // forget decoded blocks
	}

	// A garbage block record.
	write(blockKey(nil, e.ID), []byte{recordVersion, 3, 1, 2})
	if _, err := st.BlockByID(e.ID); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("BlockByID: %v", err)
	}
	if _, err := st.TransactionsByID([]koinos.Digest{tx}); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("TransactionsByID: %v", err)
	}
	if _, err := st.BlocksByHeight(head, 1, 10); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("BlocksByHeight: %v", err)
	}
	if err := st.CanonicalBlocks(1, e.Height, func(*chain.BlockEntry) error { return nil }); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("CanonicalBlocks: %v", err)
	}
	if _, err := st.AccountHistory(addr, HistoryQuery{Limit: 100, Ascending: true}); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("AccountHistory: %v", err)
	}

	// A bad canonical index entry and history value.
	write(canonKey(nil, 1), []byte{1, 2, 3})
	if err := st.CanonicalBlocks(1, 1, func(*chain.BlockEntry) error { return nil }); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("CanonicalBlocks with a bad index entry: %v", err)
	}
	write(historyKey(nil, &addr, 0), []byte{0xff})
	if _, err := st.AccountHistory(addr, HistoryQuery{Limit: 10, Ascending: true}); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("AccountHistory with a bad value: %v", err)
	}

	// A corrupt meta record stops Open with a clear error.
	write(keyMeta, []byte("garbage"))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(nd.dir, nd.opts); !errors.Is(logged(err), ErrCorrupt) {
		t.Fatalf("Open with a corrupt meta record: %v", err)
	}
}

// syntheticEntry is a block entry built without the engine (no keys, no
// signing), so that fuzz workers, which restart often, start fast. The
// store checks no signatures or hashes on write.
func syntheticEntry(ntx int) *chain.BlockEntry {
	addr := func(i int) []byte { a := koinos.AddressFromKey([]byte{byte(i)}); return a[:] }
	h := &protocol.BlockHeader{Previous: koinos.Sum256([]byte("parent")).Multihash(), Height: 9, Timestamp: 1, Signer: addr(0)}
	id := koinos.BlockID(h)
	b := &protocol.Block{Id: id.Multihash(), Header: h, Signature: []byte("sig")}
	r := &protocol.BlockReceipt{Id: b.Id, Height: 9, Events: []*protocol.EventData{{Source: addr(1), Name: "e", Impacted: [][]byte{addr(2)}}}}
	var signers [][]koinos.Address
	for i := range ntx {
		tx := &protocol.Transaction{
			Id:     koinos.Sum256([]byte{byte(i)}).Multihash(),
			Header: &protocol.TransactionHeader{Payer: addr(i + 3), RcLimit: 5},
			Operations: []*protocol.Operation{{Op: &protocol.Operation_CallContract{
				CallContract: &protocol.CallContractOperation{ContractId: addr(1), Args: []byte{1, 2, 3}}}}},
			Signatures: [][]byte{[]byte("signature")},
		}
		b.Transactions = append(b.Transactions, tx)
		r.TransactionReceipts = append(r.TransactionReceipts, &protocol.TransactionReceipt{
			Id: tx.Id, Payer: tx.Header.Payer,
			Events: []*protocol.EventData{{Source: addr(1), Name: "transfer", Impacted: [][]byte{addr(i + 3), addr(4)}}},
		})
		signers = append(signers, []koinos.Address{koinos.Address(addr(i + 3))})
	}
	parent, _ := koinos.ParseMultihash(h.Previous)
	return &chain.BlockEntry{Topology: chain.Topology{ID: id, Height: 9, Previous: parent}, Block: b, Receipt: r, Signers: signers}
}

func FuzzDecodeBlockRecord(f *testing.F) {
	e := syntheticEntry(7)
	enc, err := newRecordEncoder(3)
	if err != nil {
		f.Fatal(err)
	}
	v, err := enc.encode(e)
	if err != nil {
		f.Fatal(err)
	}
	v = append([]byte(nil), v...)
	dec := testDecoder(f)
	if got, err := decodeEntry(dec, e.ID, v); err != nil || !got.Block.EqualVT(e.Block) || !got.Receipt.EqualVT(e.Receipt) {
		f.Fatalf("the seed record does not round-trip: %v", err)
	}
	f.Add(v)
	f.Add(v[:len(v)/2])
	f.Add([]byte{})
	f.Add([]byte{recordVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = decodeAll(dec, e.ID, data)
		_, _ = decodeMeta(data)
		if len(data) >= historyKeyLen {
			_, _, _ = decodeHistory(data[:historyKeyLen], data[historyKeyLen:])
		}
	})
}
