package node

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	broadcastpb "github.com/emberchain/ember/proto/koinos/broadcast"
)

// subscriber is a client of koinos.event, as a Koinos service or an
// indexer binds it: one queue, bound to routing keys.
type subscriber struct {
	t    testing.TB
	msgs <-chan amqp091.Delivery
	conn *amqp091.Connection
}

// subscribe declares the event exchange as Koinos does and a queue bound to
// keys; durable makes it survive a broker restart.
func subscribe(t testing.TB, url string, names amqp.Names, queue string, durable bool, keys ...string) *subscriber {
	t.Helper()
	c, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(names.EventExchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare(queue, durable, !durable, !durable, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if durable {
		amqptest.Cleanup(t, url, []string{q.Name}, nil)
	}
	for _, k := range keys {
		if err := ch.QueueBind(q.Name, k, names.EventExchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Manual acks, after each event is handled: with auto-ack, what the
	// broker had sent when a connection dropped would be lost (as it is
	// for Koinos's own consumers).
	if err := ch.Qos(64, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{t: t, msgs: msgs, conn: c}
	t.Cleanup(func() { c.Close() })
	return s
}

// busEvent is a received event.
type busEvent struct {
	seq uint64
	key string
	d   amqp091.Delivery
}

func seqOf(t testing.TB, d amqp091.Delivery) uint64 {
	t.Helper()
	v, ok := d.Headers[amqp.SeqHeader].(int64)
	if !ok || v < 0 {
		t.Fatalf("event %s without a sequence number header: %v", d.RoutingKey, d.Headers)
	}
	return uint64(v)
}

// blockTracker checks what a subscriber to koinos.block.* sees: every
// block accepted, by consecutive heights (one producer), and every
// irreversible block, in order, with increasing sequence numbers and
// repeats only as exact copies (at-least-once delivery).
type blockTracker struct {
	t             testing.TB
	lastSeq       uint64
	seen          map[uint64][]byte // seq -> body
	accepted      uint64            // highest height accepted, consecutive from the first
	irreversible  uint64
	first         uint64
	repeats       int
	txAccepts     map[string]bool // transaction ids (hex) seen in koinos.transaction.accept
	contractEvent int
}

func newBlockTracker(t testing.TB) *blockTracker {
	return &blockTracker{t: t, seen: map[uint64][]byte{}, txAccepts: map[string]bool{}}
}

func (b *blockTracker) add(d amqp091.Delivery) {
	t := b.t
	t.Helper()
	seq := seqOf(t, d)
	if prev, ok := b.seen[seq]; ok {
		if !bytes.Equal(prev, d.Body) {
			t.Fatalf("event %d delivered twice with different bodies", seq)
		}
		b.repeats++
		return
	}
	if seq < b.lastSeq {
		t.Fatalf("event %d (%s) after %d: out of order", seq, d.RoutingKey, b.lastSeq)
	}
	b.seen[seq], b.lastSeq = d.Body, seq
	switch d.RoutingKey {
	case KeyBlockAccept:
		var m broadcastpb.BlockAccepted
		if err := m.UnmarshalVT(d.Body); err != nil {
			t.Fatal(err)
		}
		h := m.Block.Header.Height
		switch {
		case b.accepted == 0:
			b.first = h
		case h != b.accepted+1:
			t.Fatalf("block %d accepted after %d: a block event is missing", h, b.accepted)
		}
		b.accepted = h
	case KeyBlockIrreversible:
		var m broadcastpb.BlockIrreversible
		if err := m.UnmarshalVT(d.Body); err != nil {
			t.Fatal(err)
		}
		h := m.Topology.Height
		if b.irreversible != 0 && h != b.irreversible+1 {
			t.Fatalf("block %d irreversible after %d: an event is missing", h, b.irreversible)
		}
		b.irreversible = h
	case KeyBlockForks:
		var m broadcastpb.ForkHeads
		if err := m.UnmarshalVT(d.Body); err != nil || len(m.Heads) == 0 {
			t.Fatalf("fork heads: %v, %d heads", err, len(m.Heads))
		}
	case KeyTransactionAccept:
		var m broadcastpb.TransactionAccepted
		if err := m.UnmarshalVT(d.Body); err != nil || m.Receipt == nil || !bytes.Equal(m.Receipt.Id, m.Transaction.Id) {
			t.Fatalf("transaction accepted: %v %+v", err, m.Receipt)
		}
		b.txAccepts[fmt.Sprintf("%x", m.Transaction.Id)] = true
	case KeyMempoolAccept:
		var m broadcastpb.MempoolAccepted
		if err := m.UnmarshalVT(d.Body); err != nil || m.Transaction == nil {
			t.Fatalf("mempool accepted: %v", err)
		}
	default:
		var m broadcastpb.EventParcel
		if err := m.UnmarshalVT(d.Body); err != nil || m.Event == nil {
			t.Fatalf("%s: %v", d.RoutingKey, err)
		}
		if want := "koinos.event." + koinos.Address(m.Event.Source).String() + "." + m.Event.Name; d.RoutingKey != want {
			t.Fatalf("contract event under %s, want %s", d.RoutingKey, want)
		}
		b.contractEvent++
	}
}

// until reads events until cond holds or the deadline passes.
func (b *blockTracker) until(s *subscriber, what string, timeout time.Duration, cond func() bool) {
	b.t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case d, ok := <-s.msgs:
			if !ok {
				b.t.Fatalf("subscription closed while waiting for %s", what)
			}
			b.add(d)
			if err := d.Ack(false); err != nil {
				b.t.Fatal(err)
			}
		case <-deadline:
			b.t.Fatalf("no %s after %v: accepted %d..%d, irreversible to %d", what, timeout, b.first, b.accepted, b.irreversible)
		}
	}
}

func newEventNet(t *testing.T, url string, names amqp.Names) *testNet {
	t.Helper()
	tn := newTestNet(t, 4, 100*time.Millisecond)
	tn.stop()
	tn.amqp = &AMQPConfig{PublishEvents: true, ServerConfig: amqp.ServerConfig{URL: url, Names: names, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}}
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
	sub := subscribe(t, url, names, "", false, "koinos.block.*", KeyTransactionAccept, KeyMempoolAccept, "koinos.event.#")
	tn := newEventNet(t, url, names)
	tr := newBlockTracker(t)

	var ids []string
	for i := range 3 {
		tx := tn.transfer(1, tn.users[2].Address(), 1, uint64(i+1))
		if _, err := tn.submit(tx); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprintf("%x", tx.Id))
	}
	tr.until(sub, "the admissions and their blocks", 20*time.Second, func() bool {
		for _, id := range ids {
			if !tr.txAccepts[id] {
				return false
			}
		}
		return tr.contractEvent >= 3 && tr.irreversible > tr.first+3
	})

	// A graceful restart: the events of blocks made around it arrive.
	tn.stop()
	tn.start()
	waitUntil(t, "the event publisher to reconnect", func() bool { return tn.n.PublisherStats().Connected })
	target := tn.head().HeadTopology.Height + 5
	tr.until(sub, "blocks after the restart", 20*time.Second, func() bool { return tr.irreversible >= target })
	st := tn.n.PublisherStats()
	if st.Confirmed == 0 || st.Nacked != 0 || st.Lost != 0 {
		t.Fatalf("publisher stats %+v", st)
	}

	// A replay from a height publishes those events again, with their
	// numbers and bytes (the tracker fails on a different body).
	from, err := tn.n.ReplayEvents(tn.ctx(), tr.first+1, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.seen[from]; !ok {
		t.Fatalf("replay starts at %d, an event the subscriber never saw", from)
	}
	repeats := tr.repeats
	tr.until(sub, "the replayed events", 20*time.Second, func() bool { return tr.repeats > repeats+5 })
	if _, err := tn.n.ReplayEvents(tn.ctx(), tn.n.Store().LogNext()+10, false); err == nil {
		t.Fatal("a replay from past the log's end was accepted")
	}
	t.Logf("blocks %d..%d accepted and irreversible, %d contract events, %d repeats; publisher %+v", tr.first, tr.accepted, tr.contractEvent, tr.repeats, st)
}

// RabbitMQ stopped and started again mid-stream: the publisher waits,
// reconnects and resumes from its first unconfirmed event; a subscriber
// with a durable queue gets every block event, in order, nothing lost.
func TestAMQPEventsAcrossBrokerRestart(t *testing.T) {
	pb := amqptest.StartPrivateBroker(t)
	names := amqp.TestNames(amqptest.Prefix(t))
	const queue = "indexer"
	sub := subscribe(t, pb.URL, names, queue, true, "koinos.block.*")
	tn := newEventNet(t, pb.URL, names)
	tr := newBlockTracker(t)
	tr.until(sub, "the first blocks", 20*time.Second, func() bool { return tr.irreversible > tr.first+3 })

	pb.Stop(t)
	down := tn.head().HeadTopology.Height
	time.Sleep(time.Second) // blocks go on while the broker is down
	if tn.head().HeadTopology.Height <= down {
		t.Fatal("no block was produced while the broker was down")
	}
	pb.Start(t)
	sub = subscribe(t, pb.URL, names, queue, true, "koinos.block.*")
	target := tn.head().HeadTopology.Height + 3
	tr.until(sub, "the blocks made while the broker was down, and after", 30*time.Second, func() bool { return tr.irreversible >= target })
	st := tn.n.PublisherStats()
	if st.Reconnects == 0 || st.Lost != 0 || st.Nacked != 0 {
		t.Fatalf("publisher stats %+v", st)
	}
	t.Logf("blocks %d..%d accepted and irreversible across the restart, %d repeats; publisher %+v", tr.first, tr.accepted, tr.repeats, st)
}
