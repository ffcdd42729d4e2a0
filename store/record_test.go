package store

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/proto/koinos/protocol"
)

// A record compressed by several goroutines is byte for byte the record
// one goroutine makes, whatever the block's size against the frames.
func TestRecordEncodeParallelSameBytes(t *testing.T) {
	blocks := transferBlocks(t, 700, 1)
	full := blocks[0].Accepted[0]
	for _, ntx := range []int{0, 1, 15, 16, 17, 63, 64, 65, 300, 700} {
		e := *full
		blk := proto.Clone(full.Block).(*protocol.Block)
		blk.Transactions = blk.Transactions[:ntx]
		rcpt := proto.Clone(full.Receipt).(*protocol.BlockReceipt)
		rcpt.TransactionReceipts = rcpt.TransactionReceipts[:ntx]
		e.Block, e.Receipt = blk, rcpt
		if e.Txs != nil {
			e.Txs = e.Txs[:ntx]
		}
		if e.Signers != nil {
			e.Signers = e.Signers[:ntx]
		}
		for _, frameTxs := range []int{1, 16, 64} {
			t.Run(fmt.Sprintf("txs=%d/frameTxs=%d", ntx, frameTxs), func(t *testing.T) {
				serial, err := newRecordEncoderParts(frameTxs, 1)
				if err != nil {
					t.Fatal(err)
				}
				want, err := serial.encode(&e)
				if err != nil {
					t.Fatal(err)
				}
				for _, parts := range []int{2, 3, 4} {
					par, err := newRecordEncoderParts(frameTxs, parts)
					if err != nil {
						t.Fatal(err)
					}
					for range 2 { // and again, with the buffers reused
						got, err := par.encode(&e)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, want) {
							t.Fatalf("%d parts: %d bytes differ from the serial %d", parts, len(got), len(want))
						}
					}
				}
			})
		}
	}
}
