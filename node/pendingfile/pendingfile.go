package pendingfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Magic opens every pending.bin.
const Magic = "EMBERPENDING1\n"

// MaxTxBytes bounds one record read back, against a corrupt length.
const MaxTxBytes = 16 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Write writes the pending-transaction file Read reads: a
// magic string, then per transaction its length, its bytes and their CRC.
func Write(w io.Writer, txs []*protocol.Transaction) error {
	if _, err := io.WriteString(w, Magic); err != nil {
		return err
	}
	var buf []byte
	for _, tx := range txs {
		b, err := tx.MarshalVT()
		if err != nil {
			return err
		}
		buf = binary.AppendUvarint(buf[:0], uint64(len(b)))
		buf = append(buf, b...)
		buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(b, crcTable))
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// Read reads the transactions of a pending.bin, up to the first damaged
// record.
func Read(r *bufio.Reader) ([]*protocol.Transaction, error) {
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != Magic {
		return nil, errors.New("pendingfile: pending.bin is not a pending-transaction file")
	}
	var out []*protocol.Transaction
	for {
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil || size > MaxTxBytes {
			return out, fmt.Errorf("pendingfile: pending.bin is corrupt after %d transactions", len(out))
		}
		b := make([]byte, size+4)
		if _, err := io.ReadFull(r, b); err != nil {
			return out, fmt.Errorf("pendingfile: pending.bin is truncated after %d transactions", len(out))
		}
		if crc32.Checksum(b[:size], crcTable) != binary.BigEndian.Uint32(b[size:]) {
			return out, fmt.Errorf("pendingfile: pending.bin has a bad checksum after %d transactions", len(out))
		}
		tx := &protocol.Transaction{}
		if err := tx.UnmarshalVT(b[:size]); err != nil {
			return out, fmt.Errorf("pendingfile: pending.bin holds an undecodable transaction after %d", len(out))
		}
		out = append(out, tx)
	}
}
