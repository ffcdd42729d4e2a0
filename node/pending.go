package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/internal/atomicfile"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// The pending transactions survive a graceful restart: at shutdown, after
// the gateway has drained (nothing more can be acknowledged), the pool is
// written to DataDir/pending.bin; at start the transactions go through
// admission again (verify, check, insert) and the file is removed. A crash
// loses the pool — only blocks are durable — which docs/operations.md says.
//
// Format: "EMBERPENDING1\n", then per transaction a uvarint length, the
// serialized transaction and its CRC-32C (big-endian).
const pendingMagic = "EMBERPENDING1\n"

// maxPendingTxBytes bounds one record read back, against a corrupt length.
const maxPendingTxBytes = 16 << 20

func (n *Node) pendingPath() string { return filepath.Join(n.cfg.DataDir, "pending.bin") }

func (n *Node) savePending() error {
	if n.cfg.DataDir == "" {
		return nil
	}
	entries := n.pool.Best(n.pool.Len() + 1)
	if len(entries) == 0 {
		return nil
	}
	path := n.pendingPath()
	err := atomicfile.WriteFunc(path, 0o600, func(w io.Writer) error {
		if _, err := io.WriteString(w, pendingMagic); err != nil {
			return err
		}
		var buf []byte
		for _, e := range entries {
			b, err := e.Tx.Tx().MarshalVT()
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
	})
	if err != nil {
		return err
	}
	n.log.Info("saved pending transactions for the next start", "count", len(entries), "file", path)
	return nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// restorePending re-admits the transactions saved at the last shutdown.
func (n *Node) restorePending(ctx context.Context) error {
	if n.cfg.DataDir == "" {
		return nil
	}
	path := n.pendingPath()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	txs, readErr := readPending(bufio.NewReader(f))
	admitted := 0
	for _, tx := range txs {
		if _, err := n.submitTransaction(ctx, tx, true, "restart", events.Restored); err == nil {
			admitted++
		} else {
			n.log.Debug("saved transaction not re-admitted", "id", fmt.Sprintf("0x%x", tx.Id), "err", err)
		}
	}
	n.log.Info("restored pending transactions", "saved", len(txs), "admitted", admitted)
	if err := os.Remove(path); err != nil {
		return err
	}
	return readErr
}

func readPending(r *bufio.Reader) ([]*protocol.Transaction, error) {
	magic := make([]byte, len(pendingMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != pendingMagic {
		return nil, errors.New("node: pending.bin is not a pending-transaction file")
	}
	var out []*protocol.Transaction
	for {
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil || size > maxPendingTxBytes {
			return out, fmt.Errorf("node: pending.bin is corrupt after %d transactions", len(out))
		}
		b := make([]byte, size+4)
		if _, err := io.ReadFull(r, b); err != nil {
			return out, fmt.Errorf("node: pending.bin is truncated after %d transactions", len(out))
		}
		if crc32.Checksum(b[:size], crcTable) != binary.BigEndian.Uint32(b[size:]) {
			return out, fmt.Errorf("node: pending.bin has a bad checksum after %d transactions", len(out))
		}
		tx := &protocol.Transaction{}
		if err := tx.UnmarshalVT(b[:size]); err != nil {
			return out, fmt.Errorf("node: pending.bin holds an undecodable transaction after %d", len(out))
		}
		out = append(out, tx)
	}
}
