package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/emberchain/ember/internal/logsample"
)

// The event half of the bridge: a Publisher follows a durable event source
// (the node's event log) and publishes each event to koinos.event with
// Koinos's routing key and payload, with publisher confirms. Its cursor in
// the source advances only over confirmed events, so after a broker outage
// or a node restart it resumes from the first unconfirmed one: delivery is
// at least once, in order, and each message carries its sequence number in
// the SeqHeader header for consumers to drop repeats.

// SeqHeader is the header holding an event's sequence number (int64).
const SeqHeader = "x-ember-seq"

// Routing keys of Koinos's broadcasts (KOINOS.md §1.6).
const (
	KeyBlockIrreversible  = "koinos.block.irreversible"
	KeyBlockAccept        = "koinos.block.accept"
	KeyMempoolBlockAccept = "koinos.mempool.block_accepted"
	KeyBlockForks         = "koinos.block.forks"
	KeyTransactionAccept  = "koinos.transaction.accept"
	KeyMempoolAccept      = "koinos.mempool.accept"
	KeyTransactionFail    = "koinos.transaction.fail"
	// KeyContractEventPrefix + base58(source contract) + "." + event
	// name routes a contract event.
	KeyContractEventPrefix = "koinos.event."
)

// Publisher defaults.
const (
	DefaultMaxUnconfirmed = 4096
	DefaultConfirmEvery   = 100 * time.Millisecond
	publishBatch          = 256
	publishDrain          = 5 * time.Second
)

// Event is one message for koinos.event.
type Event struct {
	Seq  uint64
	Key  string // routing key: koinos.block.accept, ...
	Body []byte // the Koinos broadcast message, serialized
}

// GapError is returned by EventSource.Events when the events from From
// are gone (the source dropped them before they were confirmed): the
// publisher says so and goes on at Next.
type GapError struct{ From, Next uint64 }

func (e *GapError) Error() string {
	return fmt.Sprintf("events %d to %d are no longer in the log", e.From, e.Next-1)
}

// EventSource is the durable log a Publisher follows.
type EventSource interface {
	// Cursor returns the first sequence number not yet confirmed.
	Cursor() (uint64, error)
	// Events returns up to max events from sequence number from, in
	// order, and the sequence number after the last one it looked at:
	// numbers it passed over (events the node does not publish) are
	// holes between the events. None, with next == from, when there are
	// no more yet.
	Events(from uint64, max int) (evs []Event, next uint64, err error)
	// Confirm records that every event before next reached the broker.
	Confirm(next uint64) error
	// Wait returns a channel closed when more events may be available.
	Wait() <-chan struct{}
	// Rewind moves the position back (or forth) to from, for a replay.
	Rewind(from uint64) error
}

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// URL of the broker. Required.
	URL string
	// MaxInFlight bounds the events published and not yet confirmed.
	// Default 4,096.
	MaxInFlight int
	// ConfirmEvery is how often the confirmed position is written to the
	// source. Default 100 ms.
	ConfirmEvery time.Duration
	// ReconnectMin and ReconnectMax bound the reconnection backoff.
	// Defaults 250 ms and 30 s.
	ReconnectMin, ReconnectMax time.Duration
	// Names are the broker's names; the zero value is Koinos's. Tests only.
	Names  Names
	Logger *slog.Logger
}

// Publisher publishes a source's events. Create it with NewPublisher.
type Publisher struct {
	cfg PublisherConfig
	src EventSource
	log *slog.Logger

	connected  atomic.Bool
	blocked    atomic.Bool
	published  atomic.Uint64
	confirmed  atomic.Uint64
	nacked     atomic.Uint64
	reconnects atomic.Uint64
	gaps       atomic.Uint64 // events lost to the source's cap
	cursor     atomic.Uint64 // first unconfirmed sequence number
	warns      logsample.Sampler
	replays    chan replayRequest
}

// replayRequest asks the running session to publish again from a
// sequence number.
type replayRequest struct {
	from uint64
	done chan error
}

// ErrNotConnected is returned by Replay while the publisher has no broker.
var ErrNotConnected = errors.New("amqp: the event publisher is not connected to the broker")

// Replay makes the publisher publish every event again from sequence
// number from (at least once, in order, with their sequence numbers), for
// a consumer that lost its own state. It fails while the publisher is not
// connected, and with the source's error when from is no longer retained.
func (p *Publisher) Replay(ctx context.Context, from uint64) error {
	if !p.connected.Load() {
		return ErrNotConnected
	}
	req := replayRequest{from: from, done: make(chan error, 1)}
	select {
	case p.replays <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PublisherStats is a snapshot of a Publisher.
type PublisherStats struct {
	Connected, Blocked bool
	// Published counts publications (repeats after a reconnect
	// included); Confirmed those the broker confirmed; Nacked those it
	// refused (each makes the publisher reconnect and publish again).
	Published, Confirmed, Nacked uint64
	Reconnects                   uint64
	// Lost counts events the source dropped before they were confirmed.
	Lost uint64
	// Cursor is the first sequence number not yet confirmed.
	Cursor uint64
}

// NewPublisher checks cfg and returns a Publisher of src's events.
func NewPublisher(cfg PublisherConfig, src EventSource) (*Publisher, error) {
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("amqp: publisher without an event source")
	}
	setInt(&cfg.MaxInFlight, DefaultMaxUnconfirmed)
	setDur(&cfg.ConfirmEvery, DefaultConfirmEvery)
	setDur(&cfg.ReconnectMin, DefaultReconnectMin)
	setDur(&cfg.ReconnectMax, DefaultReconnectMax)
	if cfg.ReconnectMax < cfg.ReconnectMin {
		return nil, fmt.Errorf("amqp: reconnect max %v is below min %v", cfg.ReconnectMax, cfg.ReconnectMin)
	}
	cfg.Names = cfg.Names.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{cfg: cfg, src: src, log: cfg.Logger, replays: make(chan replayRequest)}, nil
}

// Stats returns a snapshot.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{
		Connected: p.connected.Load(), Blocked: p.blocked.Load(),
		Published: p.published.Load(), Confirmed: p.confirmed.Load(), Nacked: p.nacked.Load(),
		Reconnects: p.reconnects.Load(), Lost: p.gaps.Load(), Cursor: p.cursor.Load(),
	}
}

// Run publishes until ctx ends, reconnecting with backoff whenever the
// connection is lost. At the end it waits briefly for outstanding
// confirms and records the confirmed position. It returns nil then, or an
// error from the source (the node's store).
func (p *Publisher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fatal error
	reconnect(ctx, backoff{min: p.cfg.ReconnectMin, max: p.cfg.ReconnectMax}, &p.warns, p.log, "event publisher", p.cfg.URL,
		func(ctx context.Context) (bool, error) {
			ok, err := p.session(ctx)
			p.connected.Store(false)
			p.blocked.Store(false)
			var se *sourceError
			if errors.As(err, &se) {
				fatal = se.err
				cancel()
			}
			return ok, err
		},
		func(error) { p.reconnects.Add(1) })
	return fatal
}

// sourceError marks a failure of the event source, which stops Run.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }

// inflight is a publication waiting for its confirm.
type inflight struct {
	dc   *amqp.DeferredConfirmation
	next uint64 // the sequence number after the event
}

// session publishes over one connection until it is lost or ctx ends.
// progressed reports whether any event was confirmed.
func (p *Publisher) session(ctx context.Context) (progressed bool, err error) {
	cursor, err := p.src.Cursor()
	if err != nil {
		return false, &sourceError{fmt.Errorf("amqp: event source: %w", err)}
	}
	p.cursor.Store(cursor)
	l, err := open(p.cfg.URL, "ember event publisher", p.cfg.Names)
	if err != nil {
		return false, err
	}
	defer l.ac.Close()
	ch, closed, blocks := l.ch, l.closed, l.blocks
	if err := ch.Confirm(false); err != nil {
		return false, fmt.Errorf("confirm mode: %w", err)
	}
	p.connected.Store(true)
	p.log.Info("amqp: event publisher connected", "url", redact(p.cfg.URL), "from", cursor)

	var queue []inflight
	next := cursor      // the next sequence number to read
	written := cursor   // the position last written to the source
	confirmed := cursor // every event before it is confirmed
	tick := time.NewTicker(p.cfg.ConfirmEvery)
	defer tick.Stop()
	save := func() error {
		if confirmed == written {
			return nil
		}
		if err := p.src.Confirm(confirmed); err != nil {
			return &sourceError{fmt.Errorf("amqp: record the publisher's position: %w", err)}
		}
		written = confirmed
		return nil
	}
	// drain waits for outstanding confirms (at shutdown), then saves.
	drain := func() error {
		deadline := time.After(publishDrain)
		for len(queue) > 0 {
			select {
			case <-queue[0].dc.Done():
				if !queue[0].dc.Acked() {
					return save()
				}
				confirmed = queue[0].next
				queue = queue[1:]
			case <-deadline:
				return save()
			case <-closed:
				return save()
			}
		}
		return save()
	}
	for {
		wake := p.src.Wait() // before reading: an event logged meanwhile wakes the select
		more := false
		if !p.blocked.Load() && len(queue) < p.cfg.MaxInFlight {
			evs, upTo, err := p.src.Events(next, min(publishBatch, p.cfg.MaxInFlight-len(queue)))
			var gap *GapError
			switch {
			case errors.As(err, &gap) && len(queue) == 0:
				// Everything before the gap is confirmed, or lost with it.
				p.gaps.Add(gap.Next - gap.From)
				p.log.Error("amqp: events dropped from the log before they were published: the event log's cap (store.event_log_records) was reached while the broker was unreachable; consumers must resync those from the node", "from", gap.From, "to", gap.Next-1)
				next, confirmed = gap.Next, gap.Next
				p.cursor.Store(confirmed)
				if err := save(); err != nil {
					return progressed, err
				}
				continue
			case errors.As(err, &gap):
				// Wait for the outstanding confirms first.
			case err != nil:
				return progressed, &sourceError{fmt.Errorf("amqp: read events: %w", err)}
			}
			for _, ev := range evs {
				dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, p.cfg.Names.EventExchange, ev.Key, false, false, amqp.Publishing{
					ContentType:  ContentType,
					DeliveryMode: amqp.Persistent,
					Timestamp:    time.Now(),
					Headers:      amqp.Table{SeqHeader: int64(ev.Seq)},
					Body:         ev.Body,
				})
				if err != nil {
					if ctx.Err() != nil {
						return progressed, drain()
					}
					return progressed, fmt.Errorf("publish: %w", err)
				}
				p.published.Add(1)
				queue = append(queue, inflight{dc, ev.Seq + 1})
			}
			if err == nil {
				more = upTo > next && len(queue) < p.cfg.MaxInFlight
				next = max(next, upTo)
			}
		}
		// Collect the confirms already in.
		for len(queue) > 0 && isDone(queue[0].dc) {
			if !queue[0].dc.Acked() {
				p.nacked.Add(1)
				_ = save()
				return progressed, fmt.Errorf("the broker refused event %d (nack); publishing again from %d", confirmed, confirmed)
			}
			confirmed = queue[0].next
			queue = queue[1:]
			p.confirmed.Add(1)
			progressed = true
		}
		if len(queue) == 0 {
			confirmed = next // holes after the last publication included
		}
		p.cursor.Store(confirmed)
		if more {
			continue // the source may hold more now
		}
		var front <-chan struct{}
		if len(queue) > 0 {
			front = queue[0].dc.Done()
		}
		var sourceWake <-chan struct{}
		if !p.blocked.Load() && len(queue) < p.cfg.MaxInFlight {
			sourceWake = wake
		}
		select {
		case <-ctx.Done():
			return progressed, drain()
		case e := <-closed:
			_ = save()
			if e == nil {
				return progressed, errors.New("connection closed")
			}
			return progressed, e
		case b := <-blocks:
			p.blocked.Store(b.Active)
			if b.Active {
				p.log.Warn("amqp: the broker blocked the event publisher (flow control); publishing paused", "reason", b.Reason)
			} else {
				p.log.Info("amqp: the broker unblocked the event publisher")
			}
		case <-front:
		case <-sourceWake:
		case req := <-p.replays:
			// Publications still unconfirmed are dropped from the queue:
			// the replay publishes them again.
			if err := save(); err != nil {
				req.done <- err
				return progressed, err
			}
			if err := p.src.Rewind(req.from); err != nil {
				req.done <- err
				continue
			}
			p.log.Info("amqp: replaying events", "from", req.from, "was_at", next)
			queue = queue[:0]
			next, confirmed, written = req.from, req.from, req.from
			p.cursor.Store(req.from)
			req.done <- nil
		case <-tick.C:
			if err := save(); err != nil {
				return progressed, err
			}
		}
	}
}

func isDone(dc *amqp.DeferredConfirmation) bool {
	select {
	case <-dc.Done():
		return true
	default:
		return false
	}
}
