package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// memSource is an EventSource in memory: events 0..n-1 of size bytes each
// (routing key koinos.block.accept), a confirmed position, and a gap.
type memSource struct {
	mu        sync.Mutex
	n         uint64
	body      []byte
	confirmed uint64
	first     uint64 // events before it are gone (a gap)
	holes     bool   // every third number is not published
	wake      chan struct{}
}

func newMemSource(n uint64, size int) *memSource {
	return &memSource{n: n, body: make([]byte, size), wake: make(chan struct{})}
}

func (m *memSource) Cursor() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.confirmed, nil
}

func (m *memSource) Events(from uint64, max int) ([]Event, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if from < m.first {
		return nil, from, &GapError{From: from, Next: m.first}
	}
	var out []Event
	s := from
	for ; s < m.n && len(out) < max; s++ {
		if m.holes && s%3 == 1 {
			continue // not published
		}
		out = append(out, Event{Seq: s, Key: KeyBlockAccept, Body: m.body})
	}
	return out, s, nil
}

func (m *memSource) Confirm(next uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if next < m.confirmed {
		return fmt.Errorf("confirm moved back from %d to %d", m.confirmed, next)
	}
	m.confirmed = next
	return nil
}

func (m *memSource) Rewind(from uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if from < m.first || from > m.n {
		return errors.New("out of range")
	}
	m.confirmed = from
	return nil
}

func (m *memSource) Wait() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wake
}

// add appends k events and wakes the publisher.
func (m *memSource) add(k uint64) {
	m.mu.Lock()
	m.n += k
	close(m.wake)
	m.wake = make(chan struct{})
	m.mu.Unlock()
}

func (m *memSource) position() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.confirmed
}

// consumeAll binds a queue to every event key and returns its deliveries.
func consumeAll(t testing.TB, url string, n Names) <-chan amqp091.Delivery {
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
	if err := ch.ExchangeDeclare(n.EventExchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "#", n.EventExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func startPublisher(t testing.TB, cfg PublisherConfig, src EventSource) *Publisher {
	t.Helper()
	p, err := NewPublisher(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("publisher: %v", err)
		}
	})
	return p
}

// The publisher publishes every event in order with its number, records
// the confirmed position, reports a gap and goes on after it, and replays.
func TestPublisherOrderGapReplay(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	got := consumeAll(t, url, n)
	src := newMemSource(100, 64)
	p := startPublisher(t, PublisherConfig{URL: url, Names: n, ConfirmEvery: 10 * time.Millisecond}, src)
	expect := func(from, to uint64) {
		t.Helper()
		for want := from; want < to; want++ {
			select {
			case d := <-got:
				if s, _ := d.Headers[SeqHeader].(int64); uint64(s) != want || d.RoutingKey != KeyBlockAccept || d.DeliveryMode != amqp091.Persistent {
					t.Fatalf("event %d: seq %v, key %s, mode %d", want, d.Headers[SeqHeader], d.RoutingKey, d.DeliveryMode)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d did not arrive", want)
			}
		}
	}
	expect(0, 100)
	waitFor(t, "the position to be recorded", func() bool { return src.position() == 100 })
	// Events dropped before publication: a gap, counted, skipped.
	src.mu.Lock()
	src.first = 150
	src.mu.Unlock()
	src.add(100)
	expect(150, 200)
	waitFor(t, "the events after the gap confirmed", func() bool { return p.Stats().Cursor == 200 })
	if st := p.Stats(); st.Lost != 50 {
		t.Fatalf("after the gap: %+v", st)
	}
	if err := p.Replay(context.Background(), 180); err != nil {
		t.Fatal(err)
	}
	expect(180, 200)
	if err := p.Replay(context.Background(), 10); err == nil {
		t.Fatal("a replay from before the gap was accepted")
	}
}

// BenchmarkPublisher measures events per second with publisher confirms
// through the broker (persistent messages to a queue bound to every key),
// for 300-byte events: the size of a transfer's transaction_accepted.
//
//	go test -run '^$' -bench Publisher -benchtime 200000x ./netio/amqp
func BenchmarkPublisher(b *testing.B) {
	url := requireBroker(b)
	n := testNames(b, url)
	got := consumeAll(b, url, n)
	go func() {
		for range got {
		}
	}()
	src := newMemSource(0, 300)
	startPublisher(b, PublisherConfig{URL: url, Names: n}, src)
	b.ResetTimer()
	start := time.Now()
	src.add(uint64(b.N))
	for deadline := time.Now().Add(5 * time.Minute); src.position() < uint64(b.N); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events confirmed after 5 minutes", src.position(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// Numbers the source passes over (events not published) are holes: the
// publisher goes past them and its position covers them.
func TestPublisherHoles(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	got := consumeAll(t, url, n)
	src := newMemSource(30, 16)
	src.holes = true
	startPublisher(t, PublisherConfig{URL: url, Names: n, ConfirmEvery: 10 * time.Millisecond}, src)
	for want := uint64(0); want < 30; want++ {
		if want%3 == 1 {
			continue
		}
		select {
		case d := <-got:
			if s, _ := d.Headers[SeqHeader].(int64); uint64(s) != want {
				t.Fatalf("event %v, want %d", d.Headers[SeqHeader], want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d did not arrive", want)
		}
	}
	waitFor(t, "the position past the last hole", func() bool { return src.position() == 30 })
}
