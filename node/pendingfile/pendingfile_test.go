package pendingfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/emberchain/ember/proto/koinos/protocol"
)

func pendingTestTxs(n int) []*protocol.Transaction {
	txs := make([]*protocol.Transaction, n)
	for i := range txs {
		txs[i] = &protocol.Transaction{
			Id:         bytes.Repeat([]byte{byte(i + 1)}, 34),
			Header:     &protocol.TransactionHeader{ChainId: []byte("chain"), RcLimit: uint64(1000 + i), Nonce: []byte{byte(i)}, Payer: []byte("payer")},
			Signatures: [][]byte{bytes.Repeat([]byte{0xaa}, 65)},
		}
	}
	return txs
}

func encodePending(t testing.TB, txs []*protocol.Transaction) []byte {
	var b bytes.Buffer
	if err := Write(&b, txs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPendingFile: the transactions saved at shutdown read back whole; a
// damaged file gives the transactions before the damage and an error that
// says what is wrong, never a panic or a transaction made up.
func TestPendingFile(t *testing.T) {
	txs := pendingTestTxs(3)
	good := encodePending(t, txs)
	second := len(Magic) + (len(good)-len(Magic))/3 // all three records are the same size
	badCRC := bytes.Clone(good)
	badCRC[second-1] ^= 0xff // the first record's checksum
	huge := append([]byte(Magic), binary.AppendUvarint(nil, MaxTxBytes+1)...)
	undecodable := append([]byte(Magic), 2, 0xff, 0xff)
	undecodable = binary.BigEndian.AppendUint32(undecodable, crc32.Checksum([]byte{0xff, 0xff}, crcTable))
	for _, tc := range []struct {
		name  string
		file  []byte
		n     int
		error string
	}{
		{"whole", good, 3, ""},
		{"empty list", []byte(Magic), 0, ""},
		{"not ours", []byte("hello world, this is not it"), 0, "not a pending-transaction file"},
		{"empty file", nil, 0, "not a pending-transaction file"},
		{"truncated in the third", good[:len(good)-10], 2, "truncated after 2"},
		{"bad checksum", badCRC, 0, "bad checksum after 0"},
		{"length past the limit", huge, 0, "corrupt after 0"},
		{"undecodable", undecodable, 0, "undecodable transaction after 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(bufio.NewReader(bytes.NewReader(tc.file)))
			if len(got) != tc.n {
				t.Fatalf("%d transactions, want %d", len(got), tc.n)
			}
			for i, tx := range got {
				if !tx.EqualVT(txs[i]) {
					t.Fatalf("transaction %d differs from the one saved", i)
				}
			}
			switch {
			case tc.error == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)):
				t.Fatalf("error %v, want one saying %q", err, tc.error)
			}
		})
	}
}

// FuzzReadPending: any file is read without a panic, and the transactions
// read back write a file that reads back to the same transactions.
func FuzzReadPending(f *testing.F) {
	good := encodePending(f, pendingTestTxs(2))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte(Magic))
	f.Add(append([]byte(Magic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, _ := Read(bufio.NewReader(bytes.NewReader(b)))
		again, err := Read(bufio.NewReader(bytes.NewReader(encodePending(t, got))))
		if err != nil || len(again) != len(got) {
			t.Fatalf("rewritten file: %d transactions, %v; want %d", len(again), err, len(got))
		}
		for i := range got {
			if !again[i].EqualVT(got[i]) {
				t.Fatalf("transaction %d changed when written again", i)
			}
		}
	})
}
