package p2p

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// testChain returns n linked blocks from height from, the first on top of
// parent. Their Id fields are left empty, as on the wire.
func testChain(parent []byte, from uint64, n int) []*protocol.Block {
	var out []*protocol.Block
	prev := parent
	for i := range n {
		h := &protocol.BlockHeader{
			Previous:                prev,
			Height:                  from + uint64(i),
			Timestamp:               1_700_000_000_000 + 3000*(from+uint64(i)),
			PreviousStateMerkleRoot: koinos.Sum256([]byte{byte(i)}).Multihash(),
			TransactionMerkleRoot:   koinos.Sum256(nil).Multihash(),
			Signer:                  bytes.Repeat([]byte{0x1a}, 25),
		}
		out = append(out, &protocol.Block{Header: h, Signature: bytes.Repeat([]byte{0x20}, 65)})
		prev = koinos.BlockID(h).Multihash()
	}
	return out
}

func TestCheckBatch(t *testing.T) {
	parent := koinos.Sum256([]byte("parent")).Multihash()
	type mutate func([]*protocol.Block) []*protocol.Block
	tests := []struct {
		name  string
		n     int    // blocks built, from height 10
		w     window // asked for
		fix   mutate
		wantE string // "" for a good batch
	}{
		{"good", 5, window{from: 10, count: 5}, nil, ""},
		{"fewer than asked", 3, window{from: 10, count: 5}, nil, ""},
		{"one block", 1, window{from: 10, count: 1}, nil, ""},
		{"empty", 0, window{from: 10, count: 5}, nil, "0 blocks for a request of 5"},
		{"more than asked", 5, window{from: 10, count: 4}, nil, "5 blocks for a request of 4"},
		{"wrong first height", 3, window{from: 11, count: 3}, nil, "block 0 is at height 10, want 11"},
		{"gap", 4, window{from: 10, count: 4}, func(b []*protocol.Block) []*protocol.Block {
			return append(b[:2:2], b[3])
		}, "block 2 is at height 13, want 12"},
		{"repeated height", 3, window{from: 10, count: 4}, func(b []*protocol.Block) []*protocol.Block {
			return append(b[:2:2], b[1])
		}, "block 2 is at height 11, want 12"},
		{"broken link", 4, window{from: 10, count: 4}, func(b []*protocol.Block) []*protocol.Block {
			b[2].Header.Previous = koinos.Sum256([]byte("elsewhere")).Multihash()
			return b
		}, "block at height 12 does not link"},
		{"malformed previous", 4, window{from: 10, count: 4}, func(b []*protocol.Block) []*protocol.Block {
			b[1].Header.Previous = []byte{1, 2, 3}
			return b
		}, "block at height 11 does not link"},
		{"nil header", 3, window{from: 10, count: 3}, func(b []*protocol.Block) []*protocol.Block {
			b[1].Header = nil
			return b
		}, "block 1 has no header"},
		{"nil block", 3, window{from: 10, count: 3}, func(b []*protocol.Block) []*protocol.Block {
			b[2] = nil
			return b
		}, "block 2 has no header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks := testChain(parent, 10, tt.n)
			if tt.fix != nil {
				blocks = tt.fix(blocks)
			}
			err := checkBatch(blocks, tt.w)
			if tt.wantE != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantE) {
					t.Fatalf("checkBatch = %v, want an error containing %q", err, tt.wantE)
				}
				return
			}
			if err != nil {
				t.Fatalf("checkBatch = %v", err)
			}
			for i, b := range blocks {
				if want := koinos.BlockID(b.Header).Multihash(); !bytes.Equal(b.Id, want) {
					t.Fatalf("block %d: Id = %x, want the id of its header %x", i, b.Id, want)
				}
			}
		})
	}
}

// TestCheckBatchOverwritesID: the id a peer sends is replaced by the one
// derived from the header.
func TestCheckBatchOverwritesID(t *testing.T) {
	blocks := testChain(koinos.ZeroMultihash(), 1, 2)
	blocks[0].Id = koinos.Sum256([]byte("a lie")).Multihash()
	blocks[1].Id = []byte("not even a multihash")
	if err := checkBatch(blocks, window{from: 1, count: 2}); err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		if want := koinos.BlockID(b.Header).Multihash(); !bytes.Equal(b.Id, want) {
			t.Fatalf("block %d: Id = %x, want %x", i, b.Id, want)
		}
	}
}
