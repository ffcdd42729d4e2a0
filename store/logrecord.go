package store

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// Log records: their kinds, what a Ready adds to the log, and their
// encoding on disk.

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
