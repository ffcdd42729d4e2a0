package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The durable event log (doc.go, "Event log"). Every commit appends the
// events of its Ready to the log in the same batch as its blocks: the
// blocks made irreversible, the blocks accepted, the fork heads after the
// step (Koinos's chain broadcasts them in that order). Admissions to the
// mempool go in records of their own (logqueue.go). Each record holds a
// range of sequence numbers, one per message it stands for, so that a
// consumer that expands a record into Koinos's broadcasts (a block's
// koinos.block.accept and koinos.mempool.block_accepted, then one
// koinos.event.* per contract event) gives every message its own number
// without the log writing a key per message. Block records are small: the
// blocks they name are in the store.

// ErrLogGap is returned (wrapped in a *LogGapError) when a consumer asks
// for records the log no longer holds.
var ErrLogGap = errors.New("store: event log gap")

// LogGapError says which records a consumer missed: they were dropped
// because the log reached its cap (Options.MaxLogRecords) before the
// consumer confirmed them.
type LogGapError struct {
	From  uint64 // the first sequence number asked for
	First uint64 // the first one the log still holds
}

func (e *LogGapError) Error() string {
	return fmt.Sprintf("store: the event log no longer holds sequence numbers %d to %d: it reached its cap (store.event_log_records) before they were confirmed; the consumer must resync from the blocks", e.From, e.First-1)
}

func (e *LogGapError) Unwrap() error { return ErrLogGap }

// eventLog is the in-memory side of the log: what is retained, who
// consumes it, and who waits for it.
type eventLog struct {
	mu sync.Mutex
	// first is the sequence number of the oldest retained record (the
	// next one when the log is empty).
	first   uint64
	records int    // retained records
	max     int    // cap on retained records
	dropped uint64 // unconfirmed records dropped by the cap
	// consumers are the registered cursors: the next sequence number
	// each will read.
	consumers map[string]uint64
	// wake is closed and replaced by each commit that appends records.
	wake chan struct{}
}

// LogStatus describes the event log.
type LogStatus struct {
	First, Next uint64 // retained sequence numbers are [First, Next)
	Records     int
	Max         int
	Dropped     uint64            // unconfirmed records dropped by the cap, since the store opened
	Consumers   map[string]uint64 // registered consumers' cursors
}

// LogStatus reports the log's extent and its consumers.
func (s *Store) LogStatus() LogStatus {
	l := &s.elog
	l.mu.Lock()
	defer l.mu.Unlock()
	st := LogStatus{First: l.first, Next: s.state.Load().nextSeq, Records: l.records, Max: l.max, Dropped: l.dropped, Consumers: make(map[string]uint64, len(l.consumers))}
	for k, v := range l.consumers {
		st.Consumers[k] = v
	}
	return st
}

// LogNext is the sequence number the next record will get.
func (s *Store) LogNext() uint64 { return s.state.Load().nextSeq }

// LogWait returns a channel closed once a commit appends to the log after
// this call (or the store closes).
func (s *Store) LogWait() <-chan struct{} {
	l := &s.elog
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

// ReadLog returns up to max records, from the one holding sequence number
// from (a consumer that confirmed part of a record resumes inside it). From
// below the oldest retained record it fails with a *LogGapError.
func (s *Store) ReadLog(from uint64, max int) ([]LogRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	next := s.state.Load().nextSeq
	s.elog.mu.Lock()
	first := s.elog.first
	s.elog.mu.Unlock()
	switch {
	case from < first:
		return nil, &LogGapError{From: from, First: first}
	case from > next:
		return nil, fmt.Errorf("store: event log read from %d, past its end %d", from, next)
	case from == next || max <= 0:
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(nil, first), UpperBound: logKey(nil, next)})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	var out []LogRecord
	ok := it.SeekLT(logKey(nil, from+1)) // the record starting at or before from
	for ; ok && len(out) < max; ok = it.Next() {
		r, err := decodeLogRecord(it.Key(), it.Value())
		if err != nil {
			return out, fmt.Errorf("store: %w", err)
		}
		if len(out) == 0 && r.Next() <= from {
			return nil, corruptStore("event log: no record holds %d (the one before ends at %d)", from, r.Next())
		}
		if len(out) > 0 && r.Seq != out[len(out)-1].Next() {
			return out, corruptStore("event log: record %d follows one ending at %d", r.Seq, out[len(out)-1].Next())
		}
		out = append(out, r)
	}
	if err := it.Error(); err != nil {
		return out, fmt.Errorf("store: read event log: %w", err)
	}
	if len(out) == 0 {
		// Pruned under us: the first record moved past from.
		s.elog.mu.Lock()
		first := s.elog.first
		s.elog.mu.Unlock()
		if from < first {
			return nil, &LogGapError{From: from, First: first}
		}
		return nil, corruptStore("event log: no record at %d, below its end %d", from, next)
	}
	return out, nil
}

// openLog loads the log's extent and its registered consumers.
func (s *Store) openLog(max int) error {
	l := &s.elog
	l.max = max
	l.wake = make(chan struct{})
	l.consumers = make(map[string]uint64)
	next := s.state.Load().nextSeq
	l.first = next
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceLog}, UpperBound: []byte{spaceLog + 1}})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != logKeyLen {
			_ = it.Close()
			return corruptStore("event log key of %d bytes", len(k))
		}
		if l.records == 0 {
			l.first = binary.BigEndian.Uint64(k[1:])
		}
		l.records++
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: read event log: %w", err)
	}
	if l.first > next {
		return corruptStore("event log starts at %d, past its end %d", l.first, next)
	}
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{spaceCursor}, UpperBound: []byte{spaceCursor + 1}})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		c, err := decodeCursor(it.Value())
		if err != nil {
			return fmt.Errorf("store: cursor of %s: %w", it.Key()[1:], err)
		}
		if c.next > next {
			return corruptStore("consumer %s is at %d, past the log's end %d", it.Key()[1:], c.next, next)
		}
		l.consumers[string(it.Key()[1:])] = c.next
	}
	return it.Error()
}

// appended records that a commit wrote n records and wakes the waiters.
func (l *eventLog) appended(n int) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	l.records += n
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// PruneLog deletes the records every registered consumer has confirmed,
// and beyond the cap the oldest records whether confirmed or not (a
// consumer that then reads them gets a *LogGapError). It returns how many
// records it deleted and how many of those some consumer had not
// confirmed.
func (s *Store) PruneLog() (deleted, unconfirmed int, err error) {
	if err := s.checkOpen(); err != nil {
		return 0, 0, err
	}
	l := &s.elog
	next := s.state.Load().nextSeq
	l.mu.Lock()
	confirmed := next
	for _, c := range l.consumers {
		confirmed = min(confirmed, c)
	}
	first, records, max := l.first, l.records, l.max
	l.mu.Unlock()
	if records == 0 || (first >= confirmed && records <= max) {
		return 0, 0, nil
	}
	// Find the cut: past every confirmed record, and far enough that at
	// most max remain.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(nil, first), UpperBound: logKey(nil, next)})
	if err != nil {
		return 0, 0, fmt.Errorf("store: %w", err)
	}
	cut := first
	for ok := it.First(); ok; ok = it.Next() {
		seq := binary.BigEndian.Uint64(it.Key()[1:])
		if seq >= confirmed && records-deleted <= max {
			break
		}
		if seq >= confirmed {
			unconfirmed++
		}
		deleted++
		cut = seq + 1
	}
	if err := it.Close(); err != nil {
		return 0, 0, fmt.Errorf("store: read event log: %w", err)
	}
	if deleted == 0 {
		return 0, 0, nil
	}
	// The first record kept (or the end) is the new first.
	newFirst := next
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(nil, cut), UpperBound: logKey(nil, next)})
	if err != nil {
		return 0, 0, fmt.Errorf("store: %w", err)
	}
	if it.First() {
		newFirst = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		return 0, 0, fmt.Errorf("store: read event log: %w", err)
	}
	// Move first before deleting, so a reader never sees a first whose
	// record is gone.
	l.mu.Lock()
	l.first = newFirst
	l.records -= deleted
	l.dropped += uint64(unconfirmed)
	l.mu.Unlock()
	if err := s.db.DeleteRange(logKey(nil, first), logKey(nil, cut), pebble.NoSync); err != nil {
		return deleted, unconfirmed, fmt.Errorf("store: prune event log: %w", err)
	}
	return deleted, unconfirmed, nil
}

// LogSeqOfHeight returns the first sequence number of the first retained
// record about a block at height h or above (accepted or irreversible):
// where a replay from that height starts. ok is false when the log holds
// no such record yet.
func (s *Store) LogSeqOfHeight(h uint64) (seq uint64, ok bool, err error) {
	if err := s.checkOpen(); err != nil {
		return 0, false, err
	}
	s.elog.mu.Lock()
	first := s.elog.first
	s.elog.mu.Unlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(nil, first), UpperBound: logKey(nil, s.state.Load().nextSeq)})
	if err != nil {
		return 0, false, fmt.Errorf("store: %w", err)
	}
	defer it.Close()
	checked := false
	for ok := it.First(); ok; ok = it.Next() {
		r, err := decodeLogRecord(it.Key(), it.Value())
		if err != nil {
			return 0, false, fmt.Errorf("store: %w", err)
		}
		if r.Kind != LogBlockAccepted && r.Kind != LogIrreversible {
			continue
		}
		if !checked && r.Block.Height > h && h > 0 {
			return 0, false, fmt.Errorf("store: the event log no longer holds height %d: its oldest block event is for height %d", h, r.Block.Height)
		}
		checked = true
		if r.Block.Height >= h {
			return r.Seq, true, nil
		}
	}
	return 0, false, it.Error()
}
