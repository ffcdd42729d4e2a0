package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// readAll reads the whole log from seq from.
func readAll(t *testing.T, st *Store, from uint64) []LogRecord {
	t.Helper()
	var out []LogRecord
	for {
		recs, err := st.ReadLog(from, 3) // small pages: exercise paging
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		from = recs[len(recs)-1].Next()
	}
}

// Every commit logs its accepted blocks, the blocks it made irreversible
// and the fork heads, numbered without gaps, in the order of the commits.
func TestEventLogRecordsEveryStep(t *testing.T) {
	nd := newNode(t, newNet(t, 3, 4), nil, 1)
	var want []LogRecord
	for i := range 6 {
		r := nd.produce(i%3, nd.transfer(0, 1+i%3, 5))
		for _, e := range r.Irreversible {
			want = append(want, LogRecord{Kind: LogIrreversible, Span: 1, Block: e.Topology})
		}
		for _, e := range r.Accepted {
			// Not live: the test chain's timestamps are from 2023.
			want = append(want, LogRecord{Kind: LogBlockAccepted, Span: BlockAcceptedSpan(e), Block: e.Topology, Head: true})
		}
		want = append(want, LogRecord{Kind: LogForkHeads, Span: 1, LIB: r.Meta.LIB, Heads: r.ForkHeads()})
	}
	got := readAll(t, nd.st, 0)
	// The genesis step's records come first.
	var seq uint64
	for i := range got {
		if got[i].Seq != seq {
			t.Fatalf("record %d at seq %d, want %d", i, got[i].Seq, seq)
		}
		seq = got[i].Next()
	}
	if seq != nd.st.LogNext() {
		t.Fatalf("log ends at %d, LogNext %d", seq, nd.st.LogNext())
	}
	got = got[len(got)-len(want):]
	for i := range want {
		want[i].Seq = got[i].Seq
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// A block accepted with a transfer spans the block's two messages
	// and the transfer's contract event.
	if got[0].Kind != LogBlockAccepted || got[0].Span != 3 {
		t.Fatalf("first record %+v: want a one-transfer block spanning 3 sequence numbers", got[0])
	}
	// A read from inside a record starts with that record.
	if in, err := nd.st.ReadLog(got[0].Seq+2, 1); err != nil || len(in) != 1 || in[0].Seq != got[0].Seq {
		t.Fatalf("read from inside record %d: %+v, %v", got[0].Seq, in, err)
	}
	// Mempool admissions are records of their own, numbered on: queued,
	// then written by FlushMempool or ahead of the next commit's blocks.
	tx1, tx2 := nd.transfer(2, 1, 1), nd.transfer(0, 1, 1)
	rc := &protocol.TransactionReceipt{Id: tx1.Id, RcUsed: 5}
	nd.st.BufferMempool(tx1, rc, 7, 9)
	before := nd.st.LogNext()
	if err := nd.st.FlushMempool(); err != nil {
		t.Fatal(err)
	}
	mp := readAll(t, nd.st, before)
	if len(mp) != 1 || mp[0].Kind != LogMempoolAccepted || mp[0].Span != 2 || len(mp[0].Mempool) != 1 {
		t.Fatalf("mempool record %+v", mp)
	}
	if m := mp[0].Mempool[0]; m.Height != 7 || m.PendingRC != 9 {
		t.Fatalf("mempool entry %+v", m)
	}
	var back protocol.Transaction
	if err := back.UnmarshalVT(mp[0].Mempool[0].Transaction); err != nil || !reflect.DeepEqual(back.Id, tx1.Id) {
		t.Fatalf("logged transaction: %v", err)
	}
	if err := nd.st.FlushMempool(); err != nil || nd.st.LogNext() != mp[0].Next() {
		t.Fatalf("an empty flush wrote a record: %v", err)
	}
	nd.st.BufferMempool(tx2, rc, 8, 0)
	failed := []koinos.Digest{koinos.Sum256([]byte("failed"))}
	nd.st.BufferTxFailed(failed)
	before = nd.st.LogNext()
	r := nd.produce(0, tx2)
	recs := readAll(t, nd.st, before)
	if len(recs) < 3 || recs[0].Kind != LogMempoolAccepted || recs[1].Kind != LogTransactionFailed || !reflect.DeepEqual(recs[1].Failed, failed) || recs[2].Kind == LogMempoolAccepted {
		t.Fatalf("a commit after an admission and a failure logged %+v", recs)
	}
	if last := recs[len(recs)-1]; last.Next() != nd.st.LogNext() || r.Meta.Head.Height == 0 {
		t.Fatal("records do not end at the log's end")
	}
	indexAll(t, nd.st) // the indexer passes over it
	// The log survives a restart, and numbering goes on.
	next, whole := nd.st.LogNext(), readAll(t, nd.st, 0)
	nd.reopen()
	if again := readAll(t, nd.st, 0); nd.st.LogNext() != next || !reflect.DeepEqual(again, whole) {
		t.Fatal("restart changed the log")
	}
	nd.produce(0)
	if recs := readAll(t, nd.st, next); len(recs) == 0 || recs[0].Seq != next {
		t.Fatalf("after restart the log goes on at %v, want %d", recs, next)
	}
}

// answers is what the index reads return for a set of transactions and
// accounts.
type answers struct {
	txs  []TxItem
	hist map[string][]string
}

func readAnswers(t *testing.T, nd *node, ids []koinos.Digest, accounts int) answers {
	t.Helper()
	items, err := nd.st.TransactionsByID(ids)
	if err != nil {
		t.Fatal(err)
	}
	a := answers{txs: items, hist: map[string][]string{}}
	for i := range accounts {
		for _, irr := range []bool{false, true} {
			for _, asc := range []bool{false, true} {
				h, err := nd.st.AccountHistory(nd.addr(i), HistoryQuery{Limit: 100, Ascending: asc, Irreversible: irr})
				if err != nil {
					t.Fatal(err)
				}
				var recs []string
				for _, e := range h {
					switch {
					case e.Tx != nil:
						recs = append(recs, fmt.Sprintf("%d:tx:%x", e.Seq, e.Tx.Id))
					default:
						recs = append(recs, fmt.Sprintf("%d:block:%d", e.Seq, e.BlockHeader.Height))
					}
				}
				a.hist[fmt.Sprintf("%d/irr=%v/asc=%v", i, irr, asc)] = recs
			}
		}
	}
	return a
}

func sameAnswers(t *testing.T, what string, got, want answers) {
	t.Helper()
	if len(got.txs) != len(want.txs) {
		t.Fatalf("%s: %d items, want %d", what, len(got.txs), len(want.txs))
	}
	for i := range want.txs {
		g, w := got.txs[i], want.txs[i]
		if (g.Tx == nil) != (w.Tx == nil) || !reflect.DeepEqual(g.ContainingBlocks, w.ContainingBlocks) {
			t.Fatalf("%s: transaction %d: got %v in %v, want %v in %v", what, i, g.Tx != nil, g.ContainingBlocks, w.Tx != nil, w.ContainingBlocks)
		}
	}
	if !reflect.DeepEqual(got.hist, want.hist) {
		t.Fatalf("%s: account history differs:\n got %v\nwant %v", what, got.hist, want.hist)
	}
}

// A node whose indexer lags answers every index read as one whose indexer
// is caught up: the blocks the index has not reached are read directly.
// It also answers the same after catching up, after a restart in the
// middle of catching up, and after a Reindex.
func TestIndexReadsWhileTheIndexerLags(t *testing.T) {
	n := newNet(t, 3, 5)
	eager := newNode(t, n, nil, 1)
	lazy := newNode(t, n, nil, 1)
	lazy.lazyIndex = true
	var ids []koinos.Digest
	for i := range 9 {
		var txs []*protocol.Transaction
		for k := range 1 + i%3 {
			tx := eager.transfer(k, 4-k, uint64(1+i))
			txs = append(txs, tx)
			ids = append(ids, txID(t, tx))
		}
		r := eager.produce(i%3, txs...)
		lazy.accept(r.Accepted[0].Block)
	}
	ids = append(ids, koinos.Sum256([]byte("unknown")))
	if recs, _ := lazy.st.IndexLag(); recs == 0 {
		t.Fatal("the lazy node's indexer is not behind")
	}
	if h := eager.c.View(); h.LIB.Height == h.Head.Height || h.LIB.Height < 3 {
		t.Fatalf("want blocks above the LIB and below it: head %d, LIB %d", h.Head.Height, h.LIB.Height)
	}
	want := readAnswers(t, eager, ids, 5)
	sameAnswers(t, "indexer behind", readAnswers(t, lazy, ids, 5), want)

	// Part of the way, then a restart: the indexer resumes at its cursor.
	if _, err := lazy.st.IndexStep(4); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, "indexer part of the way", readAnswers(t, lazy, ids, 5), want)
	lazy.reopen()
	sameAnswers(t, "after a restart", readAnswers(t, lazy, ids, 5), want)
	indexAll(t, lazy.st)
	if recs, seqs := lazy.st.IndexLag(); recs != 0 || seqs != 0 {
		t.Fatalf("caught up, but lag %d records, %d seqs", recs, seqs)
	}
	sameAnswers(t, "caught up", readAnswers(t, lazy, ids, 5), want)
	if a, b := keysIn(t, lazy.st, spaceTx), keysIn(t, eager.st, spaceTx); a != b {
		t.Fatalf("%d transaction index keys, the eager node has %d", a, b)
	}
	if a, b := keysIn(t, lazy.st, spaceHistory), keysIn(t, eager.st, spaceHistory); a != b {
		t.Fatalf("%d history keys, the eager node has %d", a, b)
	}

	// A rebuild from the blocks gives the same indexes.
	var stages []string
	if err := lazy.st.Reindex(func(stage string, done, total uint64) {
		if done == total {
			stages = append(stages, stage)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stages, []string{"transactions", "history"}) {
		t.Fatalf("reindex reported stages %v", stages)
	}
	sameAnswers(t, "after Reindex", readAnswers(t, lazy, ids, 5), want)
	if a, b := keysIn(t, lazy.st, spaceHistory), keysIn(t, eager.st, spaceHistory); a != b {
		t.Fatalf("after Reindex: %d history keys, the eager node has %d", a, b)
	}
}

// An interrupted Reindex leaves a store that says so: its index reads and
// its indexer fail with ErrIndexRebuilding until Reindex completes.
func TestInterruptedReindex(t *testing.T) {
	nd := newNode(t, newNet(t, 1, 3), nil, 1)
	tx := nd.transfer(0, 1, 5)
	nd.produce(0, tx)
	c := nd.st.ix.cursor
	c.flags |= cursorRebuilding
	if err := nd.st.db.Set(cursorKey(IndexConsumer), encodeCursor(nil, c), nil); err != nil {
		t.Fatal(err)
	}
	nd.lazyIndex = true
	nd.reopen()
	if _, err := nd.st.TransactionsByID([]koinos.Digest{txID(t, tx)}); !errors.Is(err, ErrIndexRebuilding) {
		t.Fatalf("lookup: %v", err)
	}
	if _, err := nd.st.IndexStep(10); !errors.Is(err, ErrIndexRebuilding) {
		t.Fatalf("IndexStep: %v", err)
	}
	if err := nd.st.Reindex(nil); err != nil {
		t.Fatal(err)
	}
	items, err := nd.st.TransactionsByID([]koinos.Digest{txID(t, tx)})
	if err != nil || items[0].Tx == nil {
		t.Fatalf("after Reindex: %v %+v", err, items)
	}
}

// Retention keeps what registered consumers have not confirmed, up to the
// cap; past it the oldest records go, and a consumer that asks for them is
// told which it missed.
func TestEventLogRetention(t *testing.T) {
	nd := newNodeWith(t, newNet(t, 1, 3), Options{MaxLogRecords: 12})
	start, err := nd.st.RegisterConsumer("publisher")
	if err != nil {
		t.Fatal(err)
	}
	if start != nd.st.LogNext() {
		t.Fatalf("a new consumer starts at %d, want the end %d", start, nd.st.LogNext())
	}
	if _, err := nd.st.RegisterConsumer(""); err == nil {
		t.Fatal("an empty consumer name was accepted")
	}
	for range 3 {
		nd.produce(0, nd.transfer(0, 1, 1))
	}
	// The indexer confirmed everything; the publisher nothing: the
	// records since it registered stay.
	if _, _, err := nd.st.PruneLog(); err != nil {
		t.Fatal(err)
	}
	if st := nd.st.LogStatus(); st.First != start {
		t.Fatalf("pruned to %d; the publisher still needs %d", st.First, start)
	}
	recs := readAll(t, nd.st, start)
	if err := nd.st.ConfirmLog("publisher", recs[1].Next()); err != nil {
		t.Fatal(err)
	}
	if err := nd.st.ConfirmLog("publisher", start); err == nil {
		t.Fatal("a cursor moved back")
	}
	if err := nd.st.ConfirmLog("nobody", start); err == nil {
		t.Fatal("an unregistered consumer confirmed")
	}
	if del, unconf, err := nd.st.PruneLog(); err != nil || del == 0 || unconf != 0 {
		t.Fatalf("PruneLog: %d deleted, %d unconfirmed, %v", del, unconf, err)
	}
	if st := nd.st.LogStatus(); st.First != recs[1].Next() {
		t.Fatalf("first %d after pruning, want %d", st.First, recs[1].Next())
	}
	// Past the cap: the oldest unconfirmed records go.
	for range 8 {
		nd.produce(0, nd.transfer(0, 1, 1))
	}
	_, unconf, err := nd.st.PruneLog()
	if err != nil || unconf == 0 {
		t.Fatalf("PruneLog past the cap: %d unconfirmed dropped, %v", unconf, err)
	}
	st := nd.st.LogStatus()
	if st.Records != 12 || st.Dropped != uint64(unconf) {
		t.Fatalf("status after the cap: %+v", st)
	}
	_, err = nd.st.ReadLog(st.Consumers["publisher"], 10)
	var gap *LogGapError
	if !errors.As(err, &gap) || !errors.Is(err, ErrLogGap) || gap.First != st.First {
		t.Fatalf("reading dropped records: %v", err)
	}
	// A replay: back to a retained record, never before the first one.
	if err := nd.st.RewindConsumer("publisher", st.First); err != nil {
		t.Fatal(err)
	}
	if err := nd.st.RewindConsumer("publisher", st.First-1); !errors.As(err, &gap) {
		t.Fatalf("rewind before the first record: %v", err)
	}
	if err := nd.st.RewindConsumer("nobody", st.First); err == nil {
		t.Fatal("an unregistered consumer rewound")
	}
	recs = readAll(t, nd.st, st.First)
	var lastBlock LogRecord
	for _, r := range recs {
		if r.Kind == LogBlockAccepted {
			lastBlock = r
		}
	}
	if seq, ok, err := nd.st.LogSeqOfHeight(lastBlock.Block.Height); err != nil || !ok || seq > lastBlock.Seq {
		t.Fatalf("LogSeqOfHeight(%d) = %d %v %v; the block's record is at %d", lastBlock.Block.Height, seq, ok, err, lastBlock.Seq)
	}
	if _, ok, err := nd.st.LogSeqOfHeight(lastBlock.Block.Height + 100); err != nil || ok {
		t.Fatalf("a height not reached: %v %v", ok, err)
	}
	if _, _, err := nd.st.LogSeqOfHeight(1); err == nil {
		t.Fatal("a height the log no longer holds was found")
	}
	st = nd.st.LogStatus()
	// Registration and cursors survive a restart.
	cur := st.Consumers["publisher"]
	nd.reopen()
	if got, err := nd.st.RegisterConsumer("publisher"); err != nil || got != cur {
		t.Fatalf("after restart the publisher is at %d (%v), want %d", got, err, cur)
	}
	if st := nd.st.LogStatus(); st.Records != 12 || st.First == 0 {
		t.Fatalf("after restart: %+v", st)
	}
}

// A metadata record from before the event log reads with sequence number
// 0, and the indexer's cursor is created complete to the last
// irreversible block: such a store kept both indexes in each block's batch.
func TestStoreFromBeforeTheLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	nd := &node{t: t, net: newNet(t, 1, 3), dir: dir, ckEvery: 1, nonces: map[int]uint64{}}
	nd.opts = Options{FrameTxs: 4}
	nd.open()
	tx := nd.transfer(0, 1, 5)
	nd.produce(0, tx)
	st := nd.st.state.Load()
	old := encodeMeta(nil, st)[:metaSizeV1]
	old[0] = metaVersionV1
	m, err := decodeMeta(old)
	if err != nil || m.nextSeq != 0 || m.meta != st.meta {
		t.Fatalf("version 1 meta: %+v, %v", m, err)
	}
	// Rewrite the store as the old format left it: no log, no cursor.
	for _, k := range [][]byte{{spaceLog}, {spaceCursor}} {
		if err := nd.st.db.DeleteRange(k, []byte{k[0] + 1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := nd.st.db.Set(keyMeta, old, nil); err != nil {
		t.Fatal(err)
	}
	nd.reopen()
	if c := nd.st.ix.cursor; c.next != 0 || c.aux != st.meta.LIB.Height {
		t.Fatalf("cursor of an old store: %+v", c)
	}
	h, err := nd.st.AccountHistory(nd.addr(0), HistoryQuery{Limit: 10, Irreversible: true})
	if err != nil || len(h) == 0 {
		t.Fatalf("history of an old store: %v, %d records", err, len(h))
	}
	nd.produce(0, nd.transfer(0, 1, 1))
	if got := readAll(t, nd.st, 0); len(got) == 0 || got[0].Seq != 0 {
		t.Fatalf("the log of an old store starts at %v", got)
	}
}

func TestLogRecordEncoding(t *testing.T) {
	topo := func(h uint64) chain.Topology {
		return chain.Topology{ID: koinos.Sum256([]byte{byte(h)}), Height: h, Previous: koinos.Sum256([]byte{byte(h - 1)})}
	}
	for _, r := range []LogRecord{
		{Seq: 0, Span: 5001, Kind: LogBlockAccepted, Block: topo(7), Head: true},
		{Seq: 9, Span: 1, Kind: LogBlockAccepted, Block: topo(8)},
		{Seq: 1 << 40, Span: 1, Kind: LogIrreversible, Block: topo(3)},
		{Seq: 12, Span: 1, Kind: LogForkHeads, LIB: topo(3), Heads: []chain.Topology{topo(9), topo(8)}},
		{Seq: 13, Span: 1, Kind: LogForkHeads, LIB: topo(3), Heads: []chain.Topology{}},
		{Seq: 14, Span: 2, Kind: LogBlockAccepted, Block: topo(9), Live: true},
		{Seq: 20, Span: 2, Kind: LogTransactionFailed, Failed: []koinos.Digest{topo(1).ID, topo(2).ID}},
		{Seq: 16, Span: 4, Kind: LogMempoolAccepted, Mempool: []MempoolEntry{{Transaction: []byte{1}, Receipt: []byte{}, Height: 3, PendingRC: 1 << 40}, {Transaction: []byte{}, Receipt: []byte{2, 3}}}},
	} {
		got, err := decodeLogRecord(logKey(nil, r.Seq), appendLogValue(nil, &r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("%+v: decoded %+v, %v", r, got, err)
		}
	}
	for _, bad := range [][]byte{{}, {9, 1}, {byte(LogIrreversible), 2}, {byte(LogBlockAccepted), 0}, {byte(LogBlockAccepted), 1, 2}} {
		if _, err := decodeLogRecord(logKey(nil, 1), bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

func FuzzDecodeLogRecord(f *testing.F) {
	r := LogRecord{Seq: 3, Span: 2, Kind: LogForkHeads, Heads: make([]chain.Topology, 2)}
	r.Span = 1
	f.Add(logKey(nil, 3), appendLogValue(nil, &r))
	f.Add(logKey(nil, 4), appendLogValue(nil, &LogRecord{Span: 7, Kind: LogBlockAccepted}))
	f.Add(logKey(nil, 5), appendLogValue(nil, &LogRecord{Span: 2, Kind: LogMempoolAccepted, Mempool: []MempoolEntry{{Transaction: []byte("t"), Receipt: []byte("r")}}}))
	f.Fuzz(func(t *testing.T, key, val []byte) {
		r, err := decodeLogRecord(key, val)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		again, err := decodeLogRecord(logKey(nil, r.Seq), appendLogValue(nil, &r))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %+v: %+v, %v", r, again, err)
		}
	})
}

// An indexer that falls past the log's cap does not stop: the indexes say
// they are incomplete until Reindex, which makes them whole again.
func TestIndexerPastTheCap(t *testing.T) {
	nd := newNodeWith(t, newNet(t, 1, 3), Options{MaxLogRecords: 4})
	nd.lazyIndex = true
	tx := nd.transfer(0, 1, 5)
	nd.produce(0, tx)
	for range 4 {
		nd.produce(0)
	}
	if _, unconf, err := nd.st.PruneLog(); err != nil || unconf == 0 {
		t.Fatalf("PruneLog: %d unconfirmed dropped, %v", unconf, err)
	}
	if _, err := nd.st.IndexStep(64); !errors.Is(err, ErrIndexRebuilding) || !errors.Is(err, ErrLogGap) {
		t.Fatalf("IndexStep past the cap: %v", err)
	}
	if _, err := nd.st.TransactionsByID([]koinos.Digest{txID(t, tx)}); !errors.Is(err, ErrIndexRebuilding) {
		t.Fatalf("lookup: %v", err)
	}
	nd.reopen()
	if _, err := nd.st.IndexStep(64); !errors.Is(err, ErrIndexRebuilding) {
		t.Fatalf("after a restart: %v", err)
	}
	if err := nd.st.Reindex(nil); err != nil {
		t.Fatal(err)
	}
	if items, err := nd.st.TransactionsByID([]koinos.Digest{txID(t, tx)}); err != nil || items[0].Tx == nil {
		t.Fatalf("after Reindex: %v %+v", err, items)
	}
}

// A record a consumer may have read (and published) keeps its sequence
// number through a crash: a mempool record FlushMempool wrote is durable
// when it returns. Were it lost, the next event after the restart would
// take its number, and a consumer that deduplicates by sequence number
// (x-ember-seq on the bus) would drop that event as already seen.
func TestMempoolRecordsSurviveACrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	nd := newNode(t, newNet(t, 1, 3), fs, 0)
	nd.produce(0, nd.transfer(0, 1, 1))
	tx := nd.transfer(1, 2, 1)
	nd.st.BufferMempool(tx, &protocol.TransactionReceipt{Id: tx.Id, RcUsed: 5}, 1, 0)
	before := nd.st.LogNext()
	if err := nd.st.FlushMempool(); err != nil {
		t.Fatal(err)
	}
	after := nd.st.LogNext()
	if after == before {
		t.Fatal("FlushMempool wrote nothing")
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{}) // only what was synced
	st, err := Open("db", Options{FS: crashed, FrameTxs: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := st.LogNext(); got != after {
		t.Fatalf("after a crash the log ends at %d, want %d: the mempool record's numbers would be reused", got, after)
	}
	recs, err := st.ReadLog(before, 10)
	if err != nil || len(recs) != 1 || recs[0].Kind != LogMempoolAccepted {
		t.Fatalf("after a crash: %+v, %v", recs, err)
	}
}
