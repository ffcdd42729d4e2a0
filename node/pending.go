package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/emberchain/ember/events"
	"github.com/emberchain/ember/internal/atomicfile"
	"github.com/emberchain/ember/node/pendingfile"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// The pending transactions survive a graceful restart: at shutdown, after
// the gateway has drained (nothing more can be acknowledged), the pool is
// written to DataDir/pending.bin; at start the transactions go through
// admission again (verify, check, insert) and the file is removed. A crash
// loses the pool — only blocks are durable — which docs/operations.md says.
// The file's format is node/pendingfile's.

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
	txs := make([]*protocol.Transaction, len(entries))
	for i, e := range entries {
		txs[i] = e.Tx.Tx()
	}
	err := atomicfile.WriteFunc(path, 0o600, func(w io.Writer) error { return pendingfile.Write(w, txs) })
	if err != nil {
		return err
	}
	n.log.Info("saved pending transactions for the next start", "count", len(entries), "file", path)
	return nil
}

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
	txs, readErr := pendingfile.Read(bufio.NewReader(f))
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
