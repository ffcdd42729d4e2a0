package rpcgw

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCallCtx(t *testing.T) {
	t.Run("deadline without Done", func(t *testing.T) {
		c := &callCtx{base: context.Background(), deadline: time.Now().Add(20 * time.Millisecond)}
		defer c.release()
		if c.Err() != nil {
			t.Fatal("error before the deadline")
		}
		time.Sleep(30 * time.Millisecond)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err %v", c.Err())
		}
		select {
		case <-c.Done(): // made after the deadline: already closed
		default:
			t.Fatal("Done open after the deadline")
		}
	})
	t.Run("Done closes at the deadline", func(t *testing.T) {
		c := &callCtx{base: context.Background(), deadline: time.Now().Add(20 * time.Millisecond)}
		defer c.release()
		<-c.Done()
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err %v", c.Err())
		}
	})
	t.Run("base cancellation", func(t *testing.T) {
		base, cancel := context.WithCancel(context.Background())
		c := &callCtx{base: base, deadline: time.Now().Add(time.Hour)}
		defer c.release()
		d := c.Done()
		derived, dcancel := context.WithCancel(c)
		defer dcancel()
		cancel()
		<-d
		<-derived.Done()
		if !errors.Is(c.Err(), context.Canceled) || !errors.Is(derived.Err(), context.Canceled) {
			t.Fatalf("Err %v %v", c.Err(), derived.Err())
		}
		c2 := &callCtx{base: base, deadline: time.Now().Add(time.Hour)}
		if !errors.Is(c2.Err(), context.Canceled) {
			t.Fatalf("Err without timer %v", c2.Err())
		}
	})
	t.Run("values", func(t *testing.T) {
		type key struct{}
		base := context.WithValue(context.Background(), key{}, 7)
		c := &callCtx{base: base, deadline: time.Now().Add(time.Hour)}
		defer c.release()
		if c.Value(key{}) != 7 {
			t.Fatal("value before Done")
		}
		c.Done()
		if c.Value(key{}) != 7 {
			t.Fatal("value after Done")
		}
		if dl, ok := c.Deadline(); !ok || !dl.Equal(c.deadline) {
			t.Fatal("deadline")
		}
	})
}
