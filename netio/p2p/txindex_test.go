package p2p

import (
	"encoding/binary"
	"testing"

	"github.com/emberchain/ember/proto/koinos/protocol"
)

// txWithSID returns a transaction whose id (a sha2-256 multihash) has
// short id sid; rest fills the digest's other bytes, so two transactions
// may share a short id and differ.
func txWithSID(sid uint64, rest byte) *protocol.Transaction {
	id := make([]byte, 34)
	id[0], id[1] = 0x12, 0x20
	binary.BigEndian.PutUint64(id[2:10], sid)
	for i := 10; i < len(id); i++ {
		id[i] = rest
	}
	return &protocol.Transaction{Id: id, Signatures: [][]byte{{rest}}}
}

func TestShortID(t *testing.T) {
	tx := txWithSID(0x0102030405060708, 9)
	tests := []struct {
		name string
		id   []byte
		sid  uint64
		ok   bool
	}{
		{"multihash", tx.Id, 0x0102030405060708, true},
		{"nil", nil, 0, false},
		{"empty", []byte{}, 0, false},
		{"digest without prefix", tx.Id[2:], 0, false},
		{"one byte short", tx.Id[:33], 0, false},
		{"one byte long", append(append([]byte{}, tx.Id...), 0), 0, false},
	}
	for _, tt := range tests {
		sid, ok := shortID(tt.id)
		if sid != tt.sid || ok != tt.ok {
			t.Errorf("%s: shortID = %#x, %v; want %#x, %v", tt.name, sid, ok, tt.sid, tt.ok)
		}
	}
}

func TestTxIndexAddGet(t *testing.T) {
	x := newTxIndex(1024)
	var txs []*protocol.Transaction
	for i := range uint64(100) {
		txs = append(txs, txWithSID(i*0x9e3779b97f4a7c15, byte(i)))
	}
	x.add(txs...)
	for _, tx := range txs {
		sid, _ := shortID(tx.Id)
		if got := x.get(sid); got != tx {
			t.Fatalf("get(%#x) = %v, want the transaction added", sid, got)
		}
	}
	if got := x.get(12345); got != nil {
		t.Fatalf("get of an unknown short id = %v, want nil", got)
	}
	// Adding a transaction again (or another copy of it) changes nothing.
	sid, _ := shortID(txs[0].Id)
	x.add(txs[0], txWithSID(sid, 0))
	if got := x.get(sid); got != txs[0] {
		t.Fatalf("after re-adding: get = %v, want the first copy", got)
	}
}

func TestTxIndexAmbiguous(t *testing.T) {
	const sid = 0xdeadbeef00000001
	tests := []struct {
		name string
		txs  []*protocol.Transaction
		want *protocol.Transaction
	}{
		{"one", []*protocol.Transaction{txWithSID(sid, 1)}, nil /* set below */},
		{"two ids, one short id", []*protocol.Transaction{txWithSID(sid, 1), txWithSID(sid, 2)}, nil},
		{"third after ambiguous", []*protocol.Transaction{txWithSID(sid, 1), txWithSID(sid, 2), txWithSID(sid, 3)}, nil},
		{"first again after ambiguous", []*protocol.Transaction{txWithSID(sid, 1), txWithSID(sid, 2), txWithSID(sid, 1)}, nil},
	}
	tests[0].want = tests[0].txs[0]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newTxIndex(64)
			x.add(tt.txs...)
			if got := x.get(sid); got != tt.want {
				t.Fatalf("get = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTxIndexEvicts(t *testing.T) {
	// Capacity 2*shards: each shard holds two transactions. Short ids that
	// are multiples of the shard count all land in shard 0.
	x := newTxIndex(2 * txIndexShards)
	sid := func(i uint64) uint64 { return i * txIndexShards }
	a, b, c := txWithSID(sid(1), 1), txWithSID(sid(2), 2), txWithSID(sid(3), 3)
	elsewhere := txWithSID(sid(1)+1, 4) // shard 1
	x.add(a, elsewhere, b)
	if x.get(sid(1)) != a || x.get(sid(2)) != b {
		t.Fatal("a full shard lost a transaction before an eviction was due")
	}
	x.add(c)
	if x.get(sid(1)) != nil {
		t.Fatal("the oldest transaction of a full shard was not evicted")
	}
	if x.get(sid(2)) != b || x.get(sid(3)) != c || x.get(sid(1)+1) != elsewhere {
		t.Fatal("an eviction removed the wrong transaction")
	}
	// Round and round: the shard always holds the last two.
	for i := uint64(4); i < 40; i++ {
		tx := txWithSID(sid(i), byte(i))
		x.add(tx)
		if x.get(sid(i)) != tx || x.get(sid(i-1)) == nil || x.get(sid(i-2)) != nil {
			t.Fatalf("after adding %d: the shard does not hold exactly the last two", i)
		}
		if n := x.shards[0].byID.Len(); n != 2 {
			t.Fatalf("after adding %d: shard 0 holds %d entries, want 2", i, n)
		}
	}
	// An ambiguous entry takes a slot and is evicted like any other.
	y := newTxIndex(txIndexShards) // one per shard
	y.add(txWithSID(sid(1), 1), txWithSID(sid(1), 2))
	if y.get(sid(1)) != nil {
		t.Fatal("ambiguous short id resolved")
	}
	d := txWithSID(sid(2), 5)
	y.add(d)
	if y.get(sid(2)) != d {
		t.Fatal("a transaction after an ambiguous one was not kept")
	}
	e := txWithSID(sid(1), 6)
	y.add(e)
	if y.get(sid(1)) != e {
		t.Fatal("a short id once ambiguous, then evicted, cannot be added again")
	}
	// Capacity below the shard count still keeps one per shard.
	z := newTxIndex(0)
	z.add(a)
	if z.get(sid(1)) != a {
		t.Fatal("an index of capacity 0 keeps nothing")
	}
}

func TestTxIndexIgnoresMalformedIDs(t *testing.T) {
	x := newTxIndex(64)
	good := txWithSID(42, 1)
	x.add(
		&protocol.Transaction{},
		&protocol.Transaction{Id: good.Id[:33]},
		&protocol.Transaction{Id: append(append([]byte{}, good.Id...), 0)},
		&protocol.Transaction{Id: good.Id[2:]},
	)
	for i := range x.shards {
		if n := x.shards[i].byID.Len(); n != 0 {
			t.Fatalf("shard %d holds %d entries of malformed ids", i, n)
		}
	}
	x.add(good)
	if x.get(42) != good {
		t.Fatal("a good id after malformed ones was not kept")
	}
}
