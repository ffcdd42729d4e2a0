package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/internal/churnmap"
	"github.com/emberchain/ember/internal/logsample"
	"github.com/emberchain/ember/rpcgw"
)

// Client defaults.
const (
	DefaultMaxInFlight   = 4096
	DefaultCallTimeout   = 10 * time.Second
	DefaultProbeInterval = 500 * time.Millisecond
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL of the broker. Required.
	URL string
	// Services may be called. Default rpcgw.KoinosServices().
	Services []rpcgw.Service
	// MaxInFlight bounds the calls waiting for a reply; past it calls fail
	// at once with rpcgw.ErrUnavailable. Default 4096.
	MaxInFlight int
	// CallTimeout bounds a call whose context has no deadline. Default 10 s.
	CallTimeout time.Duration
	// ProbeInterval is how often the client checks that some node consumes
	// each service's queue; calls to a service nobody consumes fail at
	// once. Default 500 ms.
	ProbeInterval time.Duration
	// ReconnectMin and ReconnectMax bound the reconnection backoff.
	// Defaults 250 ms and 30 s.
	ReconnectMin, ReconnectMax time.Duration
	// Names are the broker's names; the zero value is Koinos's. Tests only.
	Names  Names
	Logger *slog.Logger
}

// Client calls Koinos services over the bus: an rpcgw.Backend. Requests go
// to the koinos.rpc exchange with routing key koinos.rpc.<service>; replies
// come back on one exclusive, auto-delete, server-named queue per
// connection, bound to koinos.rpc under its own name as Koinos's clients
// bind theirs (direct reply-to would need replies published to the default
// exchange, which Koinos services do not do). Create it with NewClient and
// keep Run running.
type Client struct {
	cfg   ClientConfig
	svcs  map[string]*service
	log   *slog.Logger
	warns logsample.Sampler
	slots chan struct{}
	cur   atomic.Pointer[clientConn]

	lastErr atomic.Pointer[string]
	stats   struct {
		calls, unavailable, timeouts, returned, late, lost, reconnects atomic.Uint64
	}
}

// ClientStats is a snapshot of a Client.
type ClientStats struct {
	Connected   bool
	Calls       uint64 // calls answered by a service
	Unavailable uint64 // calls failed at once: not connected, nobody consumes, blocked, too many in flight
	Timeouts    uint64 // calls whose context ended before the reply
	Returned    uint64 // requests the broker could not route (no queue bound)
	Late        uint64 // replies that came after their call gave up, or for nothing we sent
	Lost        uint64 // calls under way when the connection was lost
	Reconnects  uint64
	InFlight    int
}

var _ rpcgw.Backend = (*Client)(nil)

// NewClient checks cfg and builds a Client; Run connects.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Services == nil {
		cfg.Services = rpcgw.KoinosServices()
	}
	if cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("amqp: max in flight %d must be positive", cfg.MaxInFlight)
	}
	setInt(&cfg.MaxInFlight, DefaultMaxInFlight)
	setDur(&cfg.CallTimeout, DefaultCallTimeout)
	setDur(&cfg.ProbeInterval, DefaultProbeInterval)
	setDur(&cfg.ReconnectMin, DefaultReconnectMin)
	setDur(&cfg.ReconnectMax, DefaultReconnectMax)
	if cfg.ReconnectMax < cfg.ReconnectMin {
		return nil, fmt.Errorf("amqp: reconnect max %v is below reconnect min %v", cfg.ReconnectMax, cfg.ReconnectMin)
	}
	cfg.Names = cfg.Names.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	list, err := buildServices(cfg.Services, []string{}, cfg.Names)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, svcs: map[string]*service{}, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxInFlight)}
	for _, s := range list {
		c.svcs[s.name] = s
	}
	msg := "not connected yet"
	c.lastErr.Store(&msg)
	return c, nil
}

// Stats returns the counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		Connected: c.cur.Load() != nil,
		Calls:     c.stats.calls.Load(), Unavailable: c.stats.unavailable.Load(), Timeouts: c.stats.timeouts.Load(),
		Returned: c.stats.returned.Load(), Late: c.stats.late.Load(), Lost: c.stats.lost.Load(),
		Reconnects: c.stats.reconnects.Load(), InFlight: len(c.slots),
	}
}

// Consumers reports how many consumers the service's queue had at the last
// probe; -1 when the client is not connected or the service is unknown.
func (c *Client) Consumers(service string) int {
	cc := c.cur.Load()
	if cc == nil || cc.consumers[service] == nil {
		return -1
	}
	return int(cc.consumers[service].Load())
}

// reply is what a pending call receives.
type reply struct {
	body []byte
	err  error
}

// clientConn is one connection: the publishing channel, the reply queue,
// the calls waiting, and which services some node consumes.
type clientConn struct {
	replyTo string
	idBase  string
	seq     atomic.Uint64
	blocked atomic.Bool
	closed  chan struct{}

	pubMu sync.Mutex
	pub   *amqp.Channel

	mu sync.Mutex
	// pending gains and loses an entry per call: a Go map under that
	// churn keeps growing (churnmap's doc).
	pending churnmap.Map[string, chan reply]

	consumers map[string]*atomic.Int64 // by service; -1 until probed
}

func (cc *clientConn) resolve(id string, r reply) bool {
	cc.mu.Lock()
	ch, ok := cc.pending.Get(id)
	cc.pending.Delete(id)
	cc.mu.Unlock()
	if ok {
		ch <- r // buffered: never blocks
	}
	return ok
}

// Run keeps a connection to the broker until ctx ends, reconnecting with
// backoff. While it is not connected, calls fail at once with
// rpcgw.ErrUnavailable.
func (c *Client) Run(ctx context.Context) error {
	reconnect(ctx, backoff{min: c.cfg.ReconnectMin, max: c.cfg.ReconnectMax}, &c.warns, c.log, "rpc client", c.cfg.URL,
		c.session, func(err error) {
			c.stats.reconnects.Add(1)
			if err != nil {
				msg := err.Error()
				c.lastErr.Store(&msg)
			}
		})
	return nil
}

func (c *Client) session(ctx context.Context) (bool, error) {
	l, err := open(c.cfg.URL, "ember rpc client", c.cfg.Names)
	if err != nil {
		return false, err
	}
	ac, pub, closed, blocks := l.ac, l.ch, l.closed, l.blocks
	defer ac.Close()
	q, err := pub.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return false, fmt.Errorf("declare reply queue: %w", err)
	}
	if err := pub.QueueBind(q.Name, q.Name, c.cfg.Names.RPCExchange, false, nil); err != nil {
		return false, fmt.Errorf("bind reply queue: %w", err)
	}
	replies, err := pub.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume reply queue: %w", err)
	}
	// A channel error (a broker refusal) closes the channel but not the
	// connection: the session starts again rather than fail every call.
	pubClosed := pub.NotifyClose(make(chan *amqp.Error, 1))
	returns := pub.NotifyReturn(make(chan amqp.Return, 16))
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	cc := &clientConn{replyTo: q.Name, idBase: hex.EncodeToString(rnd[:]), closed: make(chan struct{}), pub: pub,
		consumers: map[string]*atomic.Int64{}}
	for name := range c.svcs {
		cc.consumers[name] = &atomic.Int64{}
	}
	probe, err := ac.Channel()
	if err != nil {
		return false, err
	}
	probe = c.probe(ac, probe, cc)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for d := range replies {
			if !cc.resolve(d.CorrelationId, reply{body: d.Body}) {
				c.stats.late.Add(1)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for r := range returns {
			c.stats.returned.Add(1)
			cc.resolve(r.CorrelationId, reply{err: fmt.Errorf("%w: no queue %s is bound to %s (no node has served it on this broker)",
				rpcgw.ErrUnavailable, r.RoutingKey, r.Exchange)})
		}
	}()
	c.cur.Store(cc)
	c.log.Info("amqp: rpc client connected", "url", redact(c.cfg.URL), "reply_queue", q.Name)
	defer func() {
		c.cur.Store(nil)
		close(cc.closed)
		ac.Close()
		wg.Wait()
		// Calls still waiting learn the connection is gone.
		cc.mu.Lock()
		n := cc.pending.Len()
		for id, ch := range cc.pending.All() {
			cc.pending.Delete(id)
			ch <- reply{err: errors.New("amqp: the connection to the broker was lost before the reply came (the call may have been served)")}
		}
		cc.mu.Unlock()
		c.stats.lost.Add(uint64(n))
	}()
	tick := time.NewTicker(c.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-blocks:
			if !ok {
				blocks = nil
				continue
			}
			cc.blocked.Store(b.Active)
			c.log.Warn("amqp: broker flow control", "blocked", b.Active, "reason", b.Reason)
		case e := <-closed:
			if e == nil {
				return true, errors.New("connection closed")
			}
			return true, e
		case e := <-pubClosed:
			if e == nil {
				return true, errors.New("publishing channel closed")
			}
			return true, fmt.Errorf("publishing channel closed: %w", e)
		case <-tick.C:
			if probe = c.probe(ac, probe, cc); probe == nil {
				return true, errors.New("probe channel could not be reopened")
			}
		case <-ctx.Done():
			return true, nil
		}
	}
}

// probe records how many consumers each service queue has. A passive
// declare of a missing queue closes the channel: it is reopened.
func (c *Client) probe(ac *amqp.Connection, ch *amqp.Channel, cc *clientConn) *amqp.Channel {
	for name, s := range c.svcs {
		if ch == nil || ch.IsClosed() {
			var err error
			if ch, err = ac.Channel(); err != nil {
				return nil
			}
		}
		q, err := ch.QueueDeclarePassive(s.queue, true, false, false, false, nil)
		if err != nil {
			cc.consumers[name].Store(0)
			continue
		}
		cc.consumers[name].Store(int64(q.Consumers))
	}
	return ch
}

// Serve implements rpcgw.Backend: it publishes req to the service's queue
// and waits for the reply until ctx ends (or CallTimeout without a
// deadline). It fails at once, with an error wrapping rpcgw.ErrUnavailable,
// when the call cannot be handed to a node: not connected, no node
// consuming the queue, the broker blocking publishers, or MaxInFlight calls
// already waiting.
func (c *Client) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	s := c.svcs[service]
	if s == nil {
		return nil, fmt.Errorf("amqp: service %q is not configured", service)
	}
	cc := c.cur.Load()
	switch {
	case cc == nil:
		c.stats.unavailable.Add(1)
		return nil, fmt.Errorf("amqp: %w: not connected to the broker at %s (%s)", rpcgw.ErrUnavailable, redact(c.cfg.URL), *c.lastErr.Load())
	case cc.blocked.Load():
		c.stats.unavailable.Add(1)
		return nil, fmt.Errorf("amqp: %w: the broker is blocking publishers (a resource alarm)", rpcgw.ErrUnavailable)
	case cc.consumers[service].Load() == 0:
		c.stats.unavailable.Add(1)
		return nil, fmt.Errorf("amqp: %w: no node consumes %s", rpcgw.ErrUnavailable, s.queue)
	}
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	default:
		c.stats.unavailable.Add(1)
		return nil, fmt.Errorf("amqp: %w: %d calls already wait for replies", rpcgw.ErrUnavailable, c.cfg.MaxInFlight)
	}
	body, err := marshal(req)
	if err != nil {
		return nil, fmt.Errorf("amqp: encode request: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.cfg.CallTimeout)
	}
	left := time.Until(deadline)
	if left <= 0 {
		return nil, context.DeadlineExceeded
	}
	id := cc.idBase + strconv.FormatUint(cc.seq.Add(1), 36)
	ch := make(chan reply, 1)
	cc.mu.Lock()
	cc.pending.Set(id, ch)
	cc.mu.Unlock()
	cc.pubMu.Lock()
	err = cc.pub.PublishWithContext(ctx, c.cfg.Names.RPCExchange, s.queue, true, false, amqp.Publishing{
		ContentType:   ContentType,
		CorrelationId: id,
		ReplyTo:       cc.replyTo,
		Expiration:    expiration(left),
		Timestamp:     time.Now(),
		Body:          body,
	})
	cc.pubMu.Unlock()
	if err != nil {
		cc.resolve(id, reply{})
		c.stats.unavailable.Add(1)
		return nil, fmt.Errorf("amqp: %w: publish: %v", rpcgw.ErrUnavailable, err)
	}
	t := time.NewTimer(left)
	defer t.Stop()
	var r reply
	select {
	case r = <-ch:
	case <-ctx.Done():
		cc.resolve(id, reply{})
		c.stats.timeouts.Add(1)
		return nil, ctx.Err()
	case <-t.C:
		cc.resolve(id, reply{})
		c.stats.timeouts.Add(1)
		return nil, context.DeadlineExceeded
	}
	if r.err != nil {
		if errors.Is(r.err, rpcgw.ErrUnavailable) {
			c.stats.unavailable.Add(1)
		}
		return nil, r.err
	}
	resp := s.respType.New().Interface()
	if err := unmarshal(r.body, resp); err != nil {
		return nil, fmt.Errorf("amqp: the reply is not a %s: %w", s.respType.Descriptor().FullName(), err)
	}
	c.stats.calls.Add(1)
	return resp, nil
}
