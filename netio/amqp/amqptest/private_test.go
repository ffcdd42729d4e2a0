package amqptest

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestPrivateBrokerRestartKeepsDurableMessages: a persistent message in a
// durable queue survives Stop and Start of a private broker, and the
// broker refuses connections while stopped.
func TestPrivateBrokerRestartKeepsDurableMessages(t *testing.T) {
	t0 := time.Now()
	b := StartPrivateBroker(t)
	t.Logf("StartPrivateBroker: %v", time.Since(t0).Round(time.Millisecond))

	const queue = "private-durable"
	body := []byte("survives a restart")

	conn, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conf, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent,
		ContentType:  "text/plain",
		Body:         body,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := conf.WaitContext(ctx); err != nil || !ok {
		t.Fatalf("publish not confirmed: ok=%v err=%v", ok, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	t1 := time.Now()
	b.Stop(t)
	t.Logf("Stop: %v", time.Since(t1).Round(time.Millisecond))

	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open after Stop")
	}
	if c, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)}); err == nil {
		c.Close()
		t.Fatal("dial succeeded while the broker is stopped")
	}

	t2 := time.Now()
	b.Start(t)
	t.Logf("Start (restart): %v", time.Since(t2).Round(time.Millisecond))

	conn2, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	ch2, err := conn2.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch2.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("durable queue gone after restart: %v", err)
	}
	if q.Messages != 1 {
		t.Fatalf("queue has %d messages after restart, want 1", q.Messages)
	}
	m, ok, err := ch2.Get(queue, true)
	if err != nil || !ok {
		t.Fatalf("get: ok=%v err=%v", ok, err)
	}
	if string(m.Body) != string(body) || m.DeliveryMode != amqp.Persistent {
		t.Fatalf("got %q (delivery mode %d), want %q persistent", m.Body, m.DeliveryMode, body)
	}
}
