package amqptest

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// URL returns the broker for tests: EMBER_AMQP_URL, or the local default
// amqp://guest:guest@127.0.0.1:5672/. Without a reachable broker the test
// is skipped, or fails in CI, where .ci/run starts the broker.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("EMBER_AMQP_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	c, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		shown := "(unparseable URL)"
		if p, perr := url.Parse(u); perr == nil {
			shown = p.Redacted()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("RabbitMQ is required in CI at %s: %v", shown, err)
		}
		t.Skipf("RabbitMQ not reachable at %s (start it: rabbitmq-server -detached): %v", shown, err)
	}
	c.Close()
	return u
}

var seq atomic.Int64

// Prefix returns a name prefix no other test or run uses.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("test-%d-%d-%s", os.Getpid(), seq.Add(1), strings.ReplaceAll(t.Name(), "/", "_"))
}

// Cleanup deletes the queues and exchanges when the test ends.
func Cleanup(t testing.TB, url string, queues, exchanges []string) {
	t.Cleanup(func() {
		c, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer c.Close()
		ch, err := c.Channel()
		if err != nil {
			return
		}
		for _, q := range queues {
			_, _ = ch.QueueDelete(q, false, false, false)
		}
		for _, x := range exchanges {
			_ = ch.ExchangeDelete(x, false, false)
		}
	})
}

// WaitFor polls cond every 20 ms until it holds, failing the test after 20 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
