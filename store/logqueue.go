package store

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// Mempool admissions and failed transactions, queued for the log by the
// node and written by the next commit or FlushMempool.

// BufferMempool queues a transaction just admitted to the mempool for the
// log. The queue is written as one record by the next commit, ahead of
// its blocks, or by FlushMempool, whichever comes first: so a block's
// record follows the admissions of the transactions it includes (unless
// the block was built in the instant between the admission and this
// call). It is cheap: the transaction is marshaled when written.
func (s *Store) BufferMempool(tx *protocol.Transaction, receipt *protocol.TransactionReceipt, height, pendingRC uint64) {
	s.mempool.Lock()
	s.mempool.q = append(s.mempool.q, bufferedAdmission{tx, receipt, height, pendingRC})
	s.mempool.Unlock()
}

// BufferTxFailed queues the ids of transactions the producer left out of
// a block because they failed; the next commit (normally that block's)
// logs them ahead of its blocks, as one record.
func (s *Store) BufferTxFailed(ids []koinos.Digest) {
	s.mempool.Lock()
	s.mempool.failed = append(s.mempool.failed, ids...)
	s.mempool.Unlock()
}

// bufferedAdmission is an admission waiting in the queue.
type bufferedAdmission struct {
	tx        *protocol.Transaction
	receipt   *protocol.TransactionReceipt
	height    uint64
	pendingRC uint64
}

// FlushMempool writes what BufferMempool and BufferTxFailed queued, synced.
// The mempool itself is not durable, and an admission lost in a crash
// would be lost with its transaction; but a consumer may have read the
// record, and published it, with its sequence numbers. Lost, those
// numbers would go to the next events after the restart, and a consumer
// that deduplicates by sequence number would drop them as already seen
// (TestMempoolRecordsSurviveACrash). The node flushes every 20 ms when
// mempool events are on: at most 50 syncs a second, Pebble groups them
// with the block commits'.
func (s *Store) FlushMempool() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return err
	}
	prev := s.state.Load()
	recs, seq, err := s.queuedRecordsLocked(prev.nextSeq, s.mu.recs[:0])
	s.mu.recs = recs
	if err != nil || len(recs) == 0 {
		return err
	}
	next := *prev
	next.nextSeq = seq
	b := s.batchLocked()
	for i := range recs {
		s.mu.key = logKey(s.mu.key[:0], recs[i].Seq)
		s.mu.val = appendLogValue(s.mu.val[:0], &recs[i])
		_ = b.Set(s.mu.key, s.mu.val, nil)
	}
	s.mu.val = encodeMeta(s.mu.val[:0], &next)
	_ = b.Set(keyMeta, s.mu.val, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		s.mu.broken = fmt.Errorf("store: log mempool events: %w", err)
		return s.mu.broken
	}
	s.state.Store(&next)
	s.elog.appended(len(recs))
	return nil
}

// queuedRecordsLocked takes what BufferMempool and BufferTxFailed queued
// (at most maxMempoolEntries of each; the rest wait for the next write)
// as records numbered from seq, appended to dst: the admissions, then the
// failures.
func (s *Store) queuedRecordsLocked(seq uint64, dst []LogRecord) ([]LogRecord, uint64, error) {
	s.mempool.Lock()
	n := min(len(s.mempool.q), maxMempoolEntries)
	q := slices.Clone(s.mempool.q[:n])
	s.mempool.q = append(s.mempool.q[:0], s.mempool.q[n:]...)
	k := min(len(s.mempool.failed), maxMempoolEntries)
	failed := slices.Clone(s.mempool.failed[:k])
	s.mempool.failed = append(s.mempool.failed[:0], s.mempool.failed[k:]...)
	s.mempool.Unlock()
	if n > 0 {
		rec := LogRecord{Seq: seq, Span: 2 * uint64(n), Kind: LogMempoolAccepted, Mempool: make([]MempoolEntry, n)}
		for i, a := range q {
			m := &rec.Mempool[i]
			m.Height, m.PendingRC = a.height, a.pendingRC
			var err error
			if m.Transaction, err = a.tx.MarshalVT(); err == nil {
				m.Receipt, err = a.receipt.MarshalVT()
			}
			if err != nil {
				return dst, seq, fmt.Errorf("store: mempool event: %w", err)
			}
			if len(m.Transaction) > maxMempoolBytes || len(m.Receipt) > maxMempoolBytes {
				return dst, seq, fmt.Errorf("store: mempool event: a transaction or receipt over %d bytes", maxMempoolBytes)
			}
		}
		dst, seq = append(dst, rec), rec.Next()
	}
	if k > 0 {
		rec := LogRecord{Seq: seq, Span: uint64(k), Kind: LogTransactionFailed, Failed: failed}
		dst, seq = append(dst, rec), rec.Next()
	}
	return dst, seq, nil
}
