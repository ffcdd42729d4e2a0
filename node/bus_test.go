package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	"github.com/emberchain/ember/netio/amqp/eventtest"
	broadcastpb "github.com/emberchain/ember/proto/koinos/broadcast"
	"github.com/emberchain/ember/store"
)

func newEventNet(t *testing.T, url string, names amqp.Names) *testNet {
	t.Helper()
	tn := newTestNet(t, 4, 100*time.Millisecond)
	tn.stop()
	tn.amqp = &AMQPConfig{PublishEvents: true, MempoolEvents: true, ContractEvents: true, ServerConfig: amqp.ServerConfig{URL: url, Names: names, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}}
	tn.start()
	waitUntil(t, "the event publisher to connect", func() bool { return tn.n.PublisherStats().Connected })
	return tn
}

// A subscriber bound to koinos.block.* and the transaction keys receives
// every block accepted and made irreversible, in order, the admission of
// each submitted transaction and the contract events of the blocks; a
// graceful restart of the node loses none of them.
func TestAMQPEventsEveryBlock(t *testing.T) {
	url := amqptest.URL(t)
	names := busNames(t, url)
	sub := eventtest.Subscribe(t, url, names, "", "koinos.block.*", amqp.KeyTransactionAccept, amqp.KeyMempoolAccept, "koinos.event.#")
	tn := newEventNet(t, url, names)
	tr := eventtest.NewTracker(t)

	var ids []string
	for i := range 3 {
		tx := tn.transfer(1, tn.users[2].Address(), 1, uint64(i+1))
		if _, err := tn.submit(tx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprintf("%x", tx.Id))
	}
	tr.Until(sub, "the admissions and their blocks", 20*time.Second, func() bool {
		for _, id := range ids {
			if !tr.TxAccepts[id] {
				return false
			}
		}
		return tr.Contract >= 3 && tr.Irreversible > tr.First+3
	})

	// A graceful restart: the events of blocks made around it arrive.
	tn.stop()
	tn.start()
	waitUntil(t, "the event publisher to reconnect", func() bool { return tn.n.PublisherStats().Connected })
	target := tn.head().HeadTopology.Height + 5
	tr.Until(sub, "blocks after the restart", 20*time.Second, func() bool { return tr.Irreversible >= target })
	st := tn.n.PublisherStats()
	if st.Confirmed == 0 || st.Nacked != 0 || st.Lost != 0 {
		t.Fatalf("publisher stats %+v", st)
	}

	// A replay from a height publishes those events again, with their
	// numbers and bytes (the tracker fails on a different body).
	from, err := tn.n.ReplayEvents(tn.ctx(), tr.First+1, true)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Seen(from) {
		t.Fatalf("replay starts at %d, an event the subscriber never saw", from)
	}
	repeats := tr.Repeats
	tr.Until(sub, "the replayed events", 20*time.Second, func() bool { return tr.Repeats > repeats+5 })
	if _, err := tn.n.ReplayEvents(tn.ctx(), tn.n.Store().LogNext()+10, false); err == nil {
		t.Fatal("a replay from past the log's end was accepted")
	}
	t.Logf("blocks %d..%d accepted and irreversible, %d contract events, %d repeats; publisher %+v", tr.First, tr.Accepted, tr.Contract, tr.Repeats, st)
}

// RabbitMQ stopped and started again mid-stream: the publisher waits,
// reconnects and resumes from its first unconfirmed event; a subscriber
// with a durable queue gets every block event, in order, nothing lost.
func TestAMQPEventsAcrossBrokerRestart(t *testing.T) {
	pb := amqptest.StartPrivateBroker(t)
	names := amqp.TestNames(amqptest.Prefix(t))
	const queue = "indexer"
	sub := eventtest.Subscribe(t, pb.URL, names, queue, "koinos.block.*")
	tn := newEventNet(t, pb.URL, names)
	tr := eventtest.NewTracker(t)
	tr.Until(sub, "the first blocks", 20*time.Second, func() bool { return tr.Irreversible > tr.First+3 })

	pb.Stop(t)
	down := tn.head().HeadTopology.Height
	time.Sleep(time.Second) // blocks go on while the broker is down
	if tn.head().HeadTopology.Height <= down {
		t.Fatal("no block was produced while the broker was down")
	}
	pb.Start(t)
	sub = eventtest.Subscribe(t, pb.URL, names, queue, "koinos.block.*")
	target := tn.head().HeadTopology.Height + 3
	tr.Until(sub, "the blocks made while the broker was down, and after", 30*time.Second, func() bool { return tr.Irreversible >= target })
	st := tn.n.PublisherStats()
	if st.Reconnects == 0 || st.Lost != 0 || st.Nacked != 0 {
		t.Fatalf("publisher stats %+v", st)
	}
	t.Logf("blocks %d..%d accepted and irreversible across the restart, %d repeats; publisher %+v", tr.First, tr.Accepted, tr.Repeats, st)
}

// A Node.js program subscribes to koinos.event with amqplib and reads the
// block events by hand (testdata/koilib/amqp_events.js): consecutive
// blocks, growing sequence numbers.
func TestAMQPAmqplibEvents(t *testing.T) {
	requireKoilib(t)
	url := amqptest.URL(t)
	names := busNames(t, url)
	newEventNet(t, url, names)
	out := runKoilib(t, "amqp_events.js", url, names.EventExchange, "10")
	var got struct {
		Accepted, Irreversible []uint64
		Seqs                   []uint64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("amqplib output %q: %v", out, err)
	}
	for i := 1; i < len(got.Accepted); i++ {
		if got.Accepted[i] != got.Accepted[i-1]+1 {
			t.Fatalf("amqplib saw blocks %v: not consecutive", got.Accepted)
		}
	}
	for i := 1; i < len(got.Seqs); i++ {
		if got.Seqs[i] <= got.Seqs[i-1] {
			t.Fatalf("amqplib saw sequence numbers %v", got.Seqs)
		}
	}
	if len(got.Accepted) < 10 || len(got.Irreversible) == 0 {
		t.Fatalf("amqplib saw %s", out)
	}
}

// Each log record kind expands into its messages, one per sequence number
// of its span, under Koinos's routing keys.
func TestEventExpansion(t *testing.T) {
	src := eventSource{}
	ids := []koinos.Digest{koinos.Sum256([]byte("a")), koinos.Sum256([]byte("b"))}
	topo := chain.Topology{ID: ids[0], Height: 7, Previous: ids[1]}
	for _, tc := range []struct {
		rec  store.LogRecord
		keys []string
	}{
		{store.LogRecord{Seq: 10, Span: 2, Kind: store.LogTransactionFailed, Failed: ids}, []string{amqp.KeyTransactionFail, amqp.KeyTransactionFail}},
		{store.LogRecord{Seq: 3, Span: 1, Kind: store.LogIrreversible, Block: topo}, []string{amqp.KeyBlockIrreversible}},
		{store.LogRecord{Seq: 4, Span: 1, Kind: store.LogForkHeads, LIB: topo, Heads: []chain.Topology{topo, {Height: 9}}}, []string{amqp.KeyBlockForks}},
		{store.LogRecord{Seq: 5, Span: 2, Kind: store.LogMempoolAccepted, Mempool: []store.MempoolEntry{{Transaction: []byte{}, Receipt: []byte{}, Height: 3, PendingRC: 4}}},
			[]string{amqp.KeyTransactionAccept, amqp.KeyMempoolAccept}},
	} {
		evs, err := src.expand(&tc.rec)
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(evs)) != tc.rec.Span {
			t.Fatalf("%v: %d messages for a span of %d", tc.rec.Kind, len(evs), tc.rec.Span)
		}
		for i, e := range evs {
			if e.Seq != tc.rec.Seq+uint64(i) || e.Key != tc.keys[i] {
				t.Fatalf("%v message %d: seq %d key %s", tc.rec.Kind, i, e.Seq, e.Key)
			}
		}
		switch tc.rec.Kind {
		case store.LogTransactionFailed:
			var m broadcastpb.TransactionFailed
			if err := m.UnmarshalVT(evs[1].Body); err != nil || !bytes.Equal(m.Id, ids[1].Multihash()) {
				t.Fatalf("transaction_failed %x, %v", m.Id, err)
			}
		case store.LogForkHeads:
			var m broadcastpb.ForkHeads
			if err := m.UnmarshalVT(evs[0].Body); err != nil || len(m.Heads) != 2 || m.Heads[0].Height != 9 {
				t.Fatalf("fork heads (highest first): %+v, %v", m.Heads, err)
			}
		case store.LogMempoolAccepted:
			var ta broadcastpb.TransactionAccepted
			var ma broadcastpb.MempoolAccepted
			if err := ta.UnmarshalVT(evs[0].Body); err != nil || ta.Height != 3 {
				t.Fatalf("transaction_accepted %+v, %v", &ta, err)
			}
			if err := ma.UnmarshalVT(evs[1].Body); err != nil || ma.Height != 3 || ma.PendingRcUsed != 4 {
				t.Fatalf("mempool_accepted %+v, %v", &ma, err)
			}
		}
	}
	if _, err := src.expand(&store.LogRecord{Kind: 99, Span: 1}); err == nil {
		t.Fatal("an unknown kind expanded")
	}
}
