package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/sigverify"
)

// Kind says what an event reports.
type Kind uint8

// The kinds of events.
const (
	// TxAdmitted: Txs entered the mempool (one submission or one gossip
	// batch), from Origin.
	TxAdmitted Kind = iota + 1
	// BlockAccepted: Block is stored (produced here, received by gossip or
	// RPC, or synced), from Origin.
	BlockAccepted
	// HeadChanged: the head is now Head; Reorg lists the blocks that left
	// and joined the head chain.
	HeadChanged
	// Irreversible: the last irreversible block advanced to LIB; Blocks
	// became irreversible, oldest first.
	Irreversible
)

func (k Kind) String() string {
	switch k {
	case TxAdmitted:
		return "tx_admitted"
	case BlockAccepted:
		return "block_accepted"
	case HeadChanged:
		return "head_changed"
	case Irreversible:
		return "irreversible"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Origin says where a transaction or block came from.
type Origin uint8

// Origins.
const (
	// Local: submitted over this node's API (JSON-RPC, later AMQP) or
	// produced by this node.
	Local Origin = iota
	// Gossip: received from a peer by gossip.
	Gossip
	// Sync: fetched from peers by block sync.
	Sync
	// Restored: read back at start (pending transactions saved at the last
	// shutdown).
	Restored
)

func (o Origin) String() string {
	switch o {
	case Local:
		return "local"
	case Gossip:
		return "gossip"
	case Sync:
		return "sync"
	case Restored:
		return "restored"
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// Event is one entry of the stream. Which fields are set depends on Kind;
// nothing in an event may be modified: every subscriber shares it.
type Event struct {
	Seq    uint64 // 1, 2, 3, ... in publication order
	Kind   Kind
	Origin Origin
	Peer   string // the sending peer, for Gossip and Sync origins

	Txs   []*sigverify.VerifiedTx // TxAdmitted
	Block *chain.BlockEntry       // BlockAccepted

	Head  chain.Topology // HeadChanged, Irreversible: the head after the step
	LIB   chain.Topology // HeadChanged, Irreversible: the last irreversible block after the step
	Reorg chain.Reorg    // HeadChanged

	Blocks []*chain.BlockEntry // Irreversible
}

// Defaults of Config.
const (
	DefaultCapacity     = 1 << 14
	DefaultStallTimeout = 5 * time.Second
)

// Config configures a Stream.
type Config struct {
	// Capacity is how many events the ring holds (default 16,384): how far
	// a blocking subscriber may fall behind before publishers wait, and a
	// lagging one before it misses events.
	Capacity int
	// StallTimeout is how long a publisher waits for a blocking subscriber
	// that does not move before demoting it to lagging (default 5 s).
	StallTimeout time.Duration
	Logger       *slog.Logger
}

// Stream is the event stream. Publish and the subscribers' methods are safe
// for concurrent use.
type Stream struct {
	cfg Config
	log *slog.Logger

	mu struct {
		sync.Mutex
		ring []Event
		next uint64 // sequence number of the next event
		// released: every slot below it has been read by every subscriber
		// and cleared, so the ring holds no block a consumer is done with.
		released uint64
		subs     map[*Subscription]struct{}
		closed   bool
		// published is closed and replaced at every publication (and at
		// Close), waking readers.
		published chan struct{}
		// moved is closed and replaced whenever a blocking subscriber
		// advances or leaves, waking a publisher waiting for room.
		moved chan struct{}
		stats Stats
	}
}

// Stats count what the stream did.
type Stats struct {
	Published uint64 // events published
	Waits     uint64 // publications that waited for a blocking subscriber
	Demoted   uint64 // blocking subscribers demoted for stalling
	Lagged    uint64 // events lagging subscribers missed
}

// New returns an empty stream whose first event will be number 1.
func New(cfg Config) *Stream {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	s := &Stream{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mu.ring = make([]Event, cfg.Capacity)
	s.mu.next, s.mu.released = 1, 1
	s.mu.subs = map[*Subscription]struct{}{}
	s.mu.published = make(chan struct{})
	s.mu.moved = make(chan struct{})
	return s
}

// ErrClosed is returned by Next once the stream is closed and the
// subscriber has read every event.
var ErrClosed = errors.New("events: stream closed")

// LagError reports the events a lagging subscriber missed: [From, To].
// Reading goes on at To+1, the oldest event still held.
type LagError struct{ From, To uint64 }

func (e *LagError) Error() string {
	return fmt.Sprintf("events: subscriber fell behind and missed events %d to %d; resync from the store", e.From, e.To)
}

// Publish appends events, numbering them. It waits while a blocking
// subscriber is a whole ring behind (demoting it after StallTimeout), or
// until ctx ends: then it returns ctx.Err() and publishes nothing more (the
// events before the one that waited are published). After Close it
// returns ErrClosed.
func (s *Stream) Publish(ctx context.Context, evs ...Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		if err := s.roomLocked(ctx); err != nil {
			return err
		}
		ev := evs[i]
		ev.Seq = s.mu.next
		s.mu.ring[ev.Seq%uint64(len(s.mu.ring))] = ev
		s.mu.next++
	}
	s.releaseLocked()
	close(s.mu.published)
	s.mu.published = make(chan struct{})
	s.mu.stats.Published += uint64(len(evs))
	return nil
}

// roomLocked waits until writing the next event overwrites nothing a
// blocking subscriber has yet to read.
func (s *Stream) roomLocked(ctx context.Context) error {
	waited := false
	var stallSince time.Time
	for {
		if s.mu.closed {
			return ErrClosed
		}
		slow := s.slowestBlockingLocked()
		if slow == nil || s.mu.next-slow.cursor < uint64(len(s.mu.ring)) {
			return nil
		}
		if !waited {
			waited = true
			stallSince = time.Now()
			s.mu.stats.Waits++
		}
		wait := s.cfg.StallTimeout - time.Since(stallSince)
		if wait <= 0 {
			slow.blocking = false
			s.mu.stats.Demoted++
			s.log.Warn("event subscriber stalled; it will miss events and must resync", "subscriber", slow.name, "behind", s.mu.next-slow.cursor, "waited", s.cfg.StallTimeout)
			stallSince = time.Now()
			continue
		}
		moved := s.mu.moved
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-moved:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A subscriber that moved resets the stall clock.
		if slow2 := s.slowestBlockingLocked(); slow2 != slow || (slow2 != nil && slow2.cursor != slow.cursor) {
			stallSince = time.Now()
		}
	}
}

func (s *Stream) slowestBlockingLocked() *Subscription {
	var slow *Subscription
	for sub := range s.mu.subs {
		if sub.blocking && (slow == nil || sub.cursor < slow.cursor) {
			slow = sub
		}
	}
	return slow
}

// Close ends the stream: publishers get ErrClosed, subscribers read what
// is left, then ErrClosed.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return
	}
	s.mu.closed = true
	close(s.mu.published)
	close(s.mu.moved)
}

// Next is the sequence number the next published event will get.
func (s *Stream) Next() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.next
}

// Stats returns a snapshot.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.stats
}

// Subscription is one consumer's cursor. One goroutine reads it.
type Subscription struct {
	s        *Stream
	name     string
	cursor   uint64 // next sequence number to read; guarded by s.mu
	blocking bool   // guarded by s.mu
	done     bool   // guarded by s.mu
}

// Subscribe returns a cursor at the next event to be published. blocking
// chooses backpressure over lag (see the package doc); name identifies
// the subscriber in logs.
func (s *Stream) Subscribe(name string, blocking bool) *Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := &Subscription{s: s, name: name, cursor: s.mu.next, blocking: blocking}
	s.mu.subs[sub] = struct{}{}
	return sub
}

// Next returns the next event, waiting for one until ctx ends. It returns
// a *LagError when events were missed (the following call goes on from the
// oldest event held), ErrClosed once the stream is closed and drained, and
// ctx.Err() when ctx ends first.
func (sub *Subscription) Next(ctx context.Context) (Event, error) {
	s := sub.s
	s.mu.Lock()
	for {
		if sub.done {
			s.mu.Unlock()
			return Event{}, ErrClosed
		}
		if sub.cursor < s.mu.next {
			break
		}
		if s.mu.closed {
			s.mu.Unlock()
			return Event{}, ErrClosed
		}
		wake := s.mu.published
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if oldest := s.oldestLocked(); sub.cursor < oldest {
		lag := &LagError{From: sub.cursor, To: oldest - 1}
		sub.cursor = oldest
		s.mu.stats.Lagged += lag.To - lag.From + 1
		return Event{}, lag
	}
	ev := s.mu.ring[sub.cursor%uint64(len(s.mu.ring))]
	sub.cursor++
	s.releaseLocked()
	if sub.blocking {
		s.movedLocked()
	}
	return ev, nil
}

// Cursor is the sequence number Next will return.
func (sub *Subscription) Cursor() uint64 {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	return sub.cursor
}

// Close removes the subscription; Next then returns ErrClosed.
func (sub *Subscription) Close() {
	s := sub.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub.done {
		return
	}
	sub.done = true
	delete(s.mu.subs, sub)
	s.releaseLocked()
	s.movedLocked()
}

func (s *Stream) movedLocked() {
	if s.mu.closed {
		return
	}
	close(s.mu.moved)
	s.mu.moved = make(chan struct{})
}

// releaseLocked clears the slots every subscriber has read, so that
// blocks and transactions are not kept alive by the ring once consumed.
// With no subscriber, nothing published is kept.
func (s *Stream) releaseLocked() {
	low := s.mu.next
	for sub := range s.mu.subs {
		low = min(low, sub.cursor)
	}
	s.mu.released = max(s.mu.released, s.oldestLocked())
	for ; s.mu.released < low; s.mu.released++ {
		s.mu.ring[s.mu.released%uint64(len(s.mu.ring))] = Event{}
	}
}

func (s *Stream) oldestLocked() uint64 {
	if n := uint64(len(s.mu.ring)); s.mu.next > n {
		return s.mu.next - n
	}
	return 1
}
