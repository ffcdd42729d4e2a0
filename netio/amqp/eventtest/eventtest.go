package eventtest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mr-tron/base58"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	broadcastpb "github.com/emberchain/ember/proto/koinos/broadcast"
)

// Subscriber is a client of koinos.event, as a Koinos service or an
// indexer binds it: one queue, bound to routing keys, consumed with manual
// acks after each event is handled (with auto-ack, what the broker had
// sent when a connection dropped would be lost, as it is for Koinos's own
// consumers).
type Subscriber struct {
	Msgs <-chan amqp091.Delivery
	conn *amqp091.Connection
}

// Subscribe declares the event exchange as Koinos does and a queue bound
// to keys on it. A named queue is durable (it survives a broker restart
// and is deleted when the test ends); "" makes a server-named exclusive
// one.
func Subscribe(t testing.TB, url string, names amqp.Names, queue string, keys ...string) *Subscriber {
	t.Helper()
	c, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(names.EventExchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	durable := queue != ""
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
	if err := ch.Qos(64, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Subscriber{Msgs: msgs, conn: c}
}

// Tracker checks the events a subscriber sees: sequence numbers that only
// grow, repeats (at-least-once delivery) only as exact copies; with one
// producer, every block accepted and made irreversible by consecutive
// heights; well-formed transaction, mempool and contract events.
type Tracker struct {
	t       testing.TB
	lastSeq uint64
	seen    map[uint64][]byte // seq -> body

	First        uint64 // the first height accepted
	Accepted     uint64 // the highest height accepted, consecutive from First
	Irreversible uint64 // the highest height irreversible, consecutive
	Repeats      int
	TxAccepts    map[string]bool // transaction ids (hex) seen in koinos.transaction.accept
	Contract     int             // contract events
	Failed       int             // koinos.transaction.fail events
}

// NewTracker returns an empty Tracker.
func NewTracker(t testing.TB) *Tracker {
	return &Tracker{t: t, seen: map[uint64][]byte{}, TxAccepts: map[string]bool{}}
}

// Seen reports whether the event with sequence number seq was seen.
func (b *Tracker) Seen(seq uint64) bool { _, ok := b.seen[seq]; return ok }

// Add checks one delivery.
func (b *Tracker) Add(d amqp091.Delivery) {
	t := b.t
	t.Helper()
	v, ok := d.Headers[amqp.SeqHeader].(int64)
	if !ok || v < 0 {
		t.Fatalf("event %s without a sequence number header: %v", d.RoutingKey, d.Headers)
	}
	seq := uint64(v)
	if prev, ok := b.seen[seq]; ok {
		if !bytes.Equal(prev, d.Body) {
			t.Fatalf("event %d delivered twice with different bodies", seq)
		}
		b.Repeats++
		return
	}
	if seq < b.lastSeq {
		t.Fatalf("event %d (%s) after %d: out of order", seq, d.RoutingKey, b.lastSeq)
	}
	b.seen[seq], b.lastSeq = d.Body, seq
	switch d.RoutingKey {
	case amqp.KeyBlockAccept, amqp.KeyMempoolBlockAccept:
		var m broadcastpb.BlockAccepted
		if err := m.UnmarshalVT(d.Body); err != nil || m.Block == nil || m.Receipt == nil {
			t.Fatalf("%s: %v", d.RoutingKey, err)
		}
		if d.RoutingKey == amqp.KeyMempoolBlockAccept {
			return
		}
		h := m.Block.Header.Height
		switch {
		case b.Accepted == 0:
			b.First = h
		case h != b.Accepted+1:
			t.Fatalf("block %d accepted after %d: a block event is missing", h, b.Accepted)
		}
		b.Accepted = h
	case amqp.KeyBlockIrreversible:
		var m broadcastpb.BlockIrreversible
		if err := m.UnmarshalVT(d.Body); err != nil || m.Topology == nil {
			t.Fatalf("%s: %v", d.RoutingKey, err)
		}
		h := m.Topology.Height
		if b.Irreversible != 0 && h != b.Irreversible+1 {
			t.Fatalf("block %d irreversible after %d: an event is missing", h, b.Irreversible)
		}
		b.Irreversible = h
	case amqp.KeyBlockForks:
		var m broadcastpb.ForkHeads
		if err := m.UnmarshalVT(d.Body); err != nil || len(m.Heads) == 0 {
			t.Fatalf("fork heads: %v, %d heads", err, len(m.Heads))
		}
	case amqp.KeyTransactionAccept:
		var m broadcastpb.TransactionAccepted
		if err := m.UnmarshalVT(d.Body); err != nil || m.Transaction == nil || m.Receipt == nil || !bytes.Equal(m.Receipt.Id, m.Transaction.Id) {
			t.Fatalf("transaction accepted: %v", err)
		}
		b.TxAccepts[fmt.Sprintf("%x", m.Transaction.Id)] = true
	case amqp.KeyTransactionFail:
		var m broadcastpb.TransactionFailed
		if err := m.UnmarshalVT(d.Body); err != nil || len(m.Id) != 34 {
			t.Fatalf("transaction failed: %v", err)
		}
		b.Failed++
	case amqp.KeyMempoolAccept:
		var m broadcastpb.MempoolAccepted
		if err := m.UnmarshalVT(d.Body); err != nil || m.Transaction == nil {
			t.Fatalf("mempool accepted: %v", err)
		}
	default:
		var m broadcastpb.EventParcel
		if err := m.UnmarshalVT(d.Body); err != nil || m.Event == nil {
			t.Fatalf("%s: %v", d.RoutingKey, err)
		}
		if want := amqp.KeyContractEventPrefix + base58.Encode(m.Event.Source) + "." + m.Event.Name; d.RoutingKey != want {
			t.Fatalf("contract event under %s, want %s", d.RoutingKey, want)
		}
		b.Contract++
	}
}

// Until reads and acknowledges events until cond holds, failing after
// timeout.
func (b *Tracker) Until(s *Subscriber, what string, timeout time.Duration, cond func() bool) {
	b.t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case d, ok := <-s.Msgs:
			if !ok {
				b.t.Fatalf("subscription closed while waiting for %s", what)
			}
			b.Add(d)
			if err := d.Ack(false); err != nil {
				b.t.Fatal(err)
			}
		case <-deadline:
			b.t.Fatalf("no %s after %v: accepted %d..%d, irreversible to %d", what, timeout, b.First, b.Accepted, b.Irreversible)
		}
	}
}
