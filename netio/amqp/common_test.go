package amqp

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	bo := backoff{min: 100 * time.Millisecond, max: time.Second}
	for i, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		d *= time.Millisecond
		if got := bo.next(); got < d/2 || got > d {
			t.Fatalf("wait %d: %v, want in [%v, %v]", i, got, d/2, d)
		}
	}
	bo.reset()
	if got := bo.next(); got > 100*time.Millisecond {
		t.Fatalf("after reset: %v", got)
	}
}

func TestExpirationAndURL(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1000", 1500 * time.Microsecond: "2", time.Nanosecond: "1", 0: "1"} {
		if got := expiration(d); got != want {
			t.Errorf("expiration(%v) = %s, want %s", d, got, want)
		}
	}
	if err := CheckURL("http://x/"); err == nil {
		t.Error("http URL accepted")
	}
	if r := redact("amqp://guest:secret@host:5672/"); r != "amqp://guest:xxxxx@host:5672/" {
		t.Errorf("redact: %s", r)
	}
}
