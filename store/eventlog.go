package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// The durable event log (doc.go, "Event log"). Every commit appends the
// events of its Ready to the log in the same batch as its blocks: the
// blocks made irreversible, the blocks accepted, the fork heads after the
// step (Koinos's chain broadcasts them in that order). Admissions to the
// mempool go in records of their own (AppendMempool). Each record holds a
// range of sequence numbers, one per message it stands for, so that a
// consumer that expands a record into Koinos's broadcasts (a block's
// koinos.block.accept and koinos.mempool.block_accepted, then one
// koinos.event.* per contract event) gives every message its own number
// without the log writing a key per message. Block records are small: the
// blocks they name are in the store.

// LogKind is what a log record reports.
type LogKind uint8

// Log record kinds.
const (
	// LogBlockAccepted: a block was stored. Its span is 2 + its contract
	// events (BlockAcceptedSpan).
	LogBlockAccepted LogKind = 1
	// LogIrreversible: a block became irreversible. Span 1.
	LogIrreversible LogKind = 2
	// LogForkHeads: the fork heads after a step that accepted a block or
	// moved the head. Span 1.
	LogForkHeads LogKind = 3
	// LogMempoolAccepted: transactions entered the mempool. Span 2 per
	// transaction (koinos.transaction.accept, koinos.mempool.accept).
	LogMempoolAccepted LogKind = 4
	// LogTransactionFailed: transactions the producer left out of a block
	// because they failed. Span 1 per transaction
	// (koinos.transaction.fail).
	LogTransactionFailed LogKind = 5
)

func (k LogKind) String() string {
	switch k {
	case LogBlockAccepted:
		return "block_accepted"
	case LogIrreversible:
		return "irreversible"
	case LogForkHeads:
		return "fork_heads"
	case LogMempoolAccepted:
		return "mempool_accepted"
	case LogTransactionFailed:
		return "transaction_failed"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// LogRecord is one record of the event log.
type LogRecord struct {
	// Seq is the record's first sequence number; it holds Seq..Seq+Span-1.
	Seq  uint64
	Span uint64
	Kind LogKind
	// Block is the block accepted or made irreversible.
	Block chain.Topology
	// Head (LogBlockAccepted): the block was the head after its step.
	// Live: its timestamp was within a minute of the commit (Koinos's
	// block_accepted.live: not a block from sync).
	Head, Live bool
	// LIB and Heads (LogForkHeads): the last irreversible block and the
	// fork heads, best first.
	LIB   chain.Topology
	Heads []chain.Topology
	// Mempool (LogMempoolAccepted): the transactions admitted.
	Mempool []MempoolEntry
	// Failed (LogTransactionFailed): the ids of the transactions.
	Failed []koinos.Digest
}

// MempoolEntry is one transaction admitted to the mempool, as Koinos's
// mempool_accepted broadcast carries it.
type MempoolEntry struct {
	Transaction []byte // the koinos.protocol.transaction, serialized
	Receipt     []byte // its koinos.protocol.transaction_receipt from the admission check
	Height      uint64 // the head height it was checked against
	PendingRC   uint64 // the payer's rc reserved by pending transactions
}

// Next is the sequence number after the record.
func (r *LogRecord) Next() uint64 { return r.Seq + r.Span }

// BlockAcceptedSpan is the span of a block's accepted record: the block
// (koinos.block.accept and its copy koinos.mempool.block_accepted), then
// each contract event (the block's own, then each transaction receipt's,
// in order).
func BlockAcceptedSpan(e *chain.BlockEntry) uint64 {
	n := 2 + uint64(len(e.Receipt.GetEvents()))
	for _, r := range e.Receipt.GetTransactionReceipts() {
		n += uint64(len(r.GetEvents()))
	}
	return n
}

// Limits of a decoded record: far above what a valid chain produces, low
// enough that a corrupt value cannot make the decoder allocate much.
const (
	maxLogSpan  = 1 << 32
	maxLogHeads = 1 << 16
	// maxMempoolEntries bounds one mempool record; maxMempoolBytes the
	// bytes of one entry.
	maxMempoolEntries = 1 << 16
	maxMempoolBytes   = 1 << 24
	logFlagHead       = 1 << 0
	logFlagLive       = 1 << 1
	// liveWindowMs is how recent a block's timestamp must be, at its
	// commit, for its record to say live (Koinos: 60 s).
	liveWindowMs = 60_000
)

func logKey(dst []byte, seq uint64) []byte {
	dst = append(dst, spaceLog)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// appendLogValue encodes r (without its seq, which is the key):
//
//	kind(1) ‖ uvarint span ‖ payload
//	accepted:      flags(1) ‖ topology
//	irreversible:  topology
//	fork heads:    topology(LIB) ‖ uvarint n ‖ n × topology
//	mempool:       uvarint n ‖ n × (uvarint height ‖ uvarint pending rc ‖
//	               uvarint len ‖ transaction ‖ uvarint len ‖ receipt)
//	failed:        n × transaction id digest(32), n = span
func appendLogValue(dst []byte, r *LogRecord) []byte {
	dst = append(dst, byte(r.Kind))
	dst = binary.AppendUvarint(dst, r.Span)
	switch r.Kind {
	case LogBlockAccepted:
		var flags byte
		if r.Head {
			flags |= logFlagHead
		}
		if r.Live {
			flags |= logFlagLive
		}
		dst = append(dst, flags)
		dst = appendTopology(dst, r.Block)
	case LogIrreversible:
		dst = appendTopology(dst, r.Block)
	case LogForkHeads:
		dst = appendTopology(dst, r.LIB)
		dst = binary.AppendUvarint(dst, uint64(len(r.Heads)))
		for _, h := range r.Heads {
			dst = appendTopology(dst, h)
		}
	case LogMempoolAccepted:
		dst = binary.AppendUvarint(dst, uint64(len(r.Mempool)))
		for _, m := range r.Mempool {
			dst = binary.AppendUvarint(dst, m.Height)
			dst = binary.AppendUvarint(dst, m.PendingRC)
			dst = binary.AppendUvarint(dst, uint64(len(m.Transaction)))
			dst = append(dst, m.Transaction...)
			dst = binary.AppendUvarint(dst, uint64(len(m.Receipt)))
			dst = append(dst, m.Receipt...)
		}
	case LogTransactionFailed:
		for _, id := range r.Failed {
			dst = append(dst, id[:]...)
		}
	}
	return dst
}

// decodeLogRecord decodes one log key and value; a malformed one is an
// error naming what is wrong, never a panic.
func decodeLogRecord(key, val []byte) (LogRecord, error) {
	var r LogRecord
	if len(key) != logKeyLen || key[0] != spaceLog {
		return r, corrupt("event log key of %d bytes", len(key))
	}
	r.Seq = binary.BigEndian.Uint64(key[1:])
	if len(val) < 1 {
		return r, corrupt("event log record %d: empty", r.Seq)
	}
	r.Kind = LogKind(val[0])
	var ok bool
	if r.Span, val, ok = uvarint(val[1:]); !ok || r.Span == 0 || r.Span > maxLogSpan || r.Span > ^uint64(0)-r.Seq {
		return r, corrupt("event log record %d: span", r.Seq)
	}
	topo := func() (chain.Topology, bool) {
		if len(val) < topologySize {
			return chain.Topology{}, false
		}
		var t chain.Topology
		t, val = readTopology(val)
		return t, true
	}
	switch r.Kind {
	case LogBlockAccepted:
		if len(val) < 1 || val[0]&^(logFlagHead|logFlagLive) != 0 {
			return r, corrupt("event log record %d: flags", r.Seq)
		}
		r.Head, r.Live = val[0]&logFlagHead != 0, val[0]&logFlagLive != 0
		val = val[1:]
		if r.Block, ok = topo(); !ok {
			return r, corrupt("event log record %d: block", r.Seq)
		}
	case LogIrreversible:
		if r.Span != 1 {
			return r, corrupt("event log record %d: irreversible record spans %d", r.Seq, r.Span)
		}
		if r.Block, ok = topo(); !ok {
			return r, corrupt("event log record %d: block", r.Seq)
		}
	case LogForkHeads:
		if r.Span != 1 {
			return r, corrupt("event log record %d: fork heads record spans %d", r.Seq, r.Span)
		}
		if r.LIB, ok = topo(); !ok {
			return r, corrupt("event log record %d: last irreversible block", r.Seq)
		}
		var n uint64
		if n, val, ok = uvarint(val); !ok || n > maxLogHeads || n*topologySize != uint64(len(val)) {
			return r, corrupt("event log record %d: heads", r.Seq)
		}
		r.Heads = make([]chain.Topology, n)
		for i := range r.Heads {
			r.Heads[i], _ = topo()
		}
	case LogMempoolAccepted:
		var n uint64
		if n, val, ok = uvarint(val); !ok || n == 0 || n > maxMempoolEntries || r.Span != 2*n {
			return r, corrupt("event log record %d: %d mempool entries spanning %d", r.Seq, n, r.Span)
		}
		bytesOf := func() ([]byte, bool) {
			var l uint64
			var ok bool
			if l, val, ok = uvarint(val); !ok || l > maxMempoolBytes || l > uint64(len(val)) {
				return nil, false
			}
			b := make([]byte, l) // the value is Pebble's: copy
			copy(b, val)
			val = val[l:]
			return b, true
		}
		r.Mempool = make([]MempoolEntry, 0, min(n, 1024))
		for i := range n {
			var m MempoolEntry
			var ok1, ok2, ok3, ok4 bool
			m.Height, val, ok1 = uvarint(val)
			if ok1 {
				m.PendingRC, val, ok2 = uvarint(val)
			}
			if ok2 {
				m.Transaction, ok3 = bytesOf()
			}
			if ok3 {
				m.Receipt, ok4 = bytesOf()
			}
			if !ok4 {
				return r, corrupt("event log record %d: mempool entry %d", r.Seq, i)
			}
			r.Mempool = append(r.Mempool, m)
		}
	case LogTransactionFailed:
		if r.Span > maxMempoolEntries || uint64(len(val)) != r.Span*koinos.DigestSize {
			return r, corrupt("event log record %d: %d bytes of failed transaction ids spanning %d", r.Seq, len(val), r.Span)
		}
		r.Failed = make([]koinos.Digest, r.Span)
		for i := range r.Failed {
			copy(r.Failed[i][:], val)
			val = val[koinos.DigestSize:]
		}
	default:
		return r, corrupt("event log record %d: unknown kind %d", r.Seq, r.Kind)
	}
	if len(val) != 0 {
		return r, corrupt("event log record %d: %d trailing bytes", r.Seq, len(val))
	}
	return r, nil
}

// logRecordsOf returns the records a Ready adds to the log, numbered from
// seq, and the sequence number after them. prevLIB is the stored last
// irreversible height: blocks at or below it were logged as irreversible
// by an earlier commit. nowMs is the commit's time, for Live.
func logRecordsOf(r *chain.Ready, seq, prevLIB, nowMs uint64, dst []LogRecord) ([]LogRecord, uint64) {
	add := func(rec LogRecord) {
		rec.Seq = seq
		seq += rec.Span
		dst = append(dst, rec)
	}
	for _, e := range r.Irreversible {
		if e.Height > prevLIB {
			add(LogRecord{Kind: LogIrreversible, Span: 1, Block: e.Topology})
		}
	}
	for _, e := range r.Accepted {
		live := e.Block.GetHeader().GetTimestamp()+liveWindowMs >= nowMs
		add(LogRecord{Kind: LogBlockAccepted, Span: BlockAcceptedSpan(e), Block: e.Topology, Head: e.ID == r.Meta.Head.ID, Live: live})
	}
	if heads := r.ForkHeads(); heads != nil && (len(r.Accepted) > 0 || r.HeadChanged) {
		add(LogRecord{Kind: LogForkHeads, Span: 1, LIB: r.Meta.LIB, Heads: slices.Clone(heads)})
	}
	return dst, seq
}

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

// cursorValue is a consumer's cursor on disk: the next sequence number it
// reads, and eight bytes the consumer owns (the indexer keeps the height
// its account history reached), and flags.
type cursorValue struct {
	next  uint64
	aux   uint64
	flags byte
}

const (
	cursorSize = 8 + 8 + 1
	// cursorRebuilding marks an index whose rebuild (Reindex) has not
	// finished: the indexes are incomplete until it is run again.
	cursorRebuilding = 1 << 0
)

func cursorKey(name string) []byte {
	return append([]byte{spaceCursor}, name...)
}

func encodeCursor(dst []byte, c cursorValue) []byte {
	dst = binary.BigEndian.AppendUint64(dst, c.next)
	dst = binary.BigEndian.AppendUint64(dst, c.aux)
	return append(dst, c.flags)
}

func decodeCursor(v []byte) (cursorValue, error) {
	if len(v) != cursorSize || v[16]&^cursorRebuilding != 0 {
		return cursorValue{}, corrupt("consumer cursor of %d bytes", len(v))
	}
	return cursorValue{next: binary.BigEndian.Uint64(v), aux: binary.BigEndian.Uint64(v[8:]), flags: v[16]}, nil
}

// maxConsumerName bounds a consumer's name (its key).
const maxConsumerName = 64

// RegisterConsumer makes name a registered consumer of the log and returns
// its cursor: the next sequence number it reads. A new consumer starts at
// the end of the log (it sees events committed from now on); one
// registered before resumes where it confirmed. Retention keeps what a
// registered consumer has not confirmed, up to the log's cap.
func (s *Store) RegisterConsumer(name string) (uint64, error) {
	if name == "" || len(name) > maxConsumerName {
		return 0, fmt.Errorf("store: consumer name %q: want 1 to %d bytes", name, maxConsumerName)
	}
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	// Under the commit lock, so no record lands between reading the end
	// and registering it.
	s.mu.Lock()
	defer s.mu.Unlock()
	c, found, err := s.loadCursor(name)
	if err != nil {
		return 0, err
	}
	if !found {
		c = cursorValue{next: s.state.Load().nextSeq}
		if err := s.db.Set(cursorKey(name), encodeCursor(nil, c), pebble.Sync); err != nil {
			return 0, fmt.Errorf("store: register consumer %s: %w", name, err)
		}
	}
	s.elog.mu.Lock()
	s.elog.consumers[name] = c.next
	s.elog.mu.Unlock()
	return c.next, nil
}

// ConfirmLog moves a registered consumer's cursor to next: it has handled
// every record before it. The write is not synced; after a machine crash
// the consumer may see some records again (delivery is at least once).
func (s *Store) ConfirmLog(name string, next uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.elog.mu.Lock()
	cur, ok := s.elog.consumers[name]
	s.elog.mu.Unlock()
	if !ok {
		return fmt.Errorf("store: consumer %s is not registered", name)
	}
	if next < cur || next > s.state.Load().nextSeq {
		return fmt.Errorf("store: consumer %s confirms %d; its cursor is %d and the log ends at %d", name, next, cur, s.state.Load().nextSeq)
	}
	if err := s.db.Set(cursorKey(name), encodeCursor(nil, cursorValue{next: next}), pebble.NoSync); err != nil {
		return fmt.Errorf("store: confirm %s: %w", name, err)
	}
	s.elog.mu.Lock()
	s.elog.consumers[name] = next
	s.elog.mu.Unlock()
	return nil
}

func (s *Store) loadCursor(name string) (cursorValue, bool, error) {
	var c cursorValue
	err := with(s.db, cursorKey(name), func(v []byte) error {
		var err error
		c, err = decodeCursor(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("store: cursor of %s: %w", name, err)
	}
	return c, true, nil
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

// FlushMempool writes what BufferMempool and BufferTxFailed queued (not
// synced: the mempool itself is not durable, so an admission lost in a
// crash is lost with its transaction).
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
	if err := b.Commit(pebble.NoSync); err != nil {
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

// RewindConsumer moves a registered consumer's cursor to from, back or
// forth, for a replay: from must be retained (at or after the log's first
// record) and at most the log's end. The write is synced.
func (s *Store) RewindConsumer(name string, from uint64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	next := s.state.Load().nextSeq
	s.elog.mu.Lock()
	_, ok := s.elog.consumers[name]
	first := s.elog.first
	s.elog.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("store: consumer %s is not registered", name)
	case from < first:
		return &LogGapError{From: from, First: first}
	case from > next:
		return fmt.Errorf("store: replay from %d, past the log's end %d", from, next)
	}
	if err := s.db.Set(cursorKey(name), encodeCursor(nil, cursorValue{next: from}), pebble.Sync); err != nil {
		return fmt.Errorf("store: rewind %s: %w", name, err)
	}
	s.elog.mu.Lock()
	s.elog.consumers[name] = from
	s.elog.mu.Unlock()
	return nil
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
