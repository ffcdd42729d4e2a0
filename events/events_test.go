package events

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/chain"
)

func publishN(t *testing.T, s *Stream, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := s.Publish(context.Background(), Event{Kind: BlockAccepted, Block: &chain.BlockEntry{Topology: chain.Topology{Height: uint64(i + 1)}}}); err != nil {
			t.Fatal(err)
		}
	}
}

func next(t *testing.T, sub *Subscription) (Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sub.Next(ctx)
}

func TestOrderAndNumbering(t *testing.T) {
	s := New(Config{Capacity: 8})
	a, b := s.Subscribe("a", true), s.Subscribe("b", false)
	publishN(t, s, 5)
	for _, sub := range []*Subscription{a, b} {
		for want := uint64(1); want <= 5; want++ {
			ev, err := next(t, sub)
			if err != nil || ev.Seq != want || ev.Block.Height != want {
				t.Fatalf("%s: event %d = seq %d height %v, err %v", sub.name, want, ev.Seq, ev.Block, err)
			}
		}
	}
}

func TestLaggingSubscriberIsToldWhatItMissed(t *testing.T) {
	s := New(Config{Capacity: 4})
	sub := s.Subscribe("slow", false)
	publishN(t, s, 10) // events 1..10; the ring holds 7..10
	_, err := next(t, sub)
	var lag *LagError
	if !errors.As(err, &lag) || lag.From != 1 || lag.To != 6 {
		t.Fatalf("first read: %v, want a lag of 1..6", err)
	}
	for want := uint64(7); want <= 10; want++ {
		ev, err := next(t, sub)
		if err != nil || ev.Seq != want {
			t.Fatalf("after the lag: seq %d err %v, want %d", ev.Seq, err, want)
		}
	}
	if st := s.Stats(); st.Lagged != 6 || st.Published != 10 {
		t.Errorf("stats %+v", st)
	}
}

func TestBlockingSubscriberHoldsPublishersBack(t *testing.T) {
	s := New(Config{Capacity: 4, StallTimeout: time.Minute})
	sub := s.Subscribe("p2p", true)
	publishN(t, s, 4) // full
	published := make(chan error, 1)
	go func() { published <- s.Publish(context.Background(), Event{Kind: TxAdmitted}) }()
	select {
	case err := <-published:
		t.Fatalf("publish into a full ring returned %v without waiting", err)
	case <-time.After(50 * time.Millisecond):
	}
	if ev, err := next(t, sub); err != nil || ev.Seq != 1 {
		t.Fatalf("read: %d %v", ev.Seq, err)
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	for want := uint64(2); want <= 5; want++ {
		if ev, err := next(t, sub); err != nil || ev.Seq != want {
			t.Fatalf("read %d: %d %v", want, ev.Seq, err)
		}
	}
	if st := s.Stats(); st.Waits != 1 || st.Demoted != 0 || st.Lagged != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPublishWaitEndsWithContext(t *testing.T) {
	s := New(Config{Capacity: 2, StallTimeout: time.Minute})
	s.Subscribe("stuck", true)
	publishN(t, s, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Publish(ctx, Event{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want the context's error", err)
	}
}

func TestStalledBlockingSubscriberIsDemoted(t *testing.T) {
	s := New(Config{Capacity: 2, StallTimeout: 30 * time.Millisecond})
	sub := s.Subscribe("stuck", true)
	publishN(t, s, 5) // the third waits 30 ms, demotes, then none wait
	var lag *LagError
	if _, err := next(t, sub); !errors.As(err, &lag) || lag.From != 1 || lag.To != 3 {
		t.Fatalf("read after demotion: %v, want a lag of 1..3", err)
	}
	if st := s.Stats(); st.Demoted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReadSlotsAreReleased(t *testing.T) {
	s := New(Config{Capacity: 8})
	publishN(t, s, 3) // no subscriber: nothing kept
	for i, ev := range s.mu.ring {
		if ev.Block != nil {
			t.Fatalf("slot %d kept an event nobody can read", i)
		}
	}
	a, b := s.Subscribe("a", false), s.Subscribe("b", false)
	publishN(t, s, 2) // events 4, 5
	next(t, a)
	if s.mu.ring[4%8].Block == nil {
		t.Fatal("event 4 released before b read it")
	}
	next(t, b)
	if s.mu.ring[4%8].Block != nil {
		t.Fatal("event 4 kept after both read it")
	}
	b.Close()
	next(t, a)
	if s.mu.ring[5%8].Block != nil {
		t.Fatal("event 5 kept after the only remaining subscriber read it")
	}
}

func TestClose(t *testing.T) {
	s := New(Config{Capacity: 8})
	sub := s.Subscribe("a", true)
	publishN(t, s, 2)
	s.Close()
	if err := s.Publish(context.Background(), Event{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
	for want := uint64(1); want <= 2; want++ {
		if ev, err := next(t, sub); err != nil || ev.Seq != want {
			t.Fatalf("drain %d: %d %v", want, ev.Seq, err)
		}
	}
	if _, err := next(t, sub); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after drain = %v", err)
	}
	other := s.Subscribe("late", false)
	other.Close()
	if _, err := next(t, other); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next on a closed subscription = %v", err)
	}
}

// Many publishers, one blocking and one lagging reader: the blocking one
// sees every event exactly once, in order.
func TestConcurrentPublishers(t *testing.T) {
	s := New(Config{Capacity: 16, StallTimeout: time.Minute})
	sub := s.Subscribe("all", true)
	const writers, each = 4, 500
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Publish(context.Background(), Event{Kind: TxAdmitted}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	lag := s.Subscribe("lagging", false)
	go func() {
		for {
			if _, err := lag.Next(context.Background()); errors.Is(err, ErrClosed) {
				return
			}
		}
	}()
	for want := uint64(1); want <= writers*each; want++ {
		ev, err := next(t, sub)
		if err != nil || ev.Seq != want {
			t.Fatalf("event %d: seq %d err %v", want, ev.Seq, err)
		}
	}
	wg.Wait()
	s.Close()
}
