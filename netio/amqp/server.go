package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/emberchain/ember/internal/logsample"
	rpcpb "github.com/emberchain/ember/proto/koinos/rpc"
	"github.com/emberchain/ember/rpcgw"
)

// Server defaults; each ServerConfig field names the default it takes when
// left zero.
const (
	DefaultConsumers      = 2
	DefaultPrefetch       = 8
	DefaultHandlerTimeout = 10 * time.Second
	DefaultExpiryGrace    = 2 * time.Second
	DefaultReconnectMin   = 250 * time.Millisecond
	DefaultReconnectMax   = 30 * time.Second
	DefaultStopTimeout    = 5 * time.Second
	dialTimeout           = 5 * time.Second
	heartbeat             = 10 * time.Second
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// URL of the broker, amqp://user:password@host:port/vhost. Required.
	URL string
	// Services are served, one queue each. Default rpcgw.KoinosServices().
	Services []rpcgw.Service
	// RefusedMethods are refused as the JSON-RPC public listener refuses
	// them (prefixes of koinos.rpc.<service>.<method>; "koinos.rpc." is
	// implied): answered with an error, never served. nil means
	// rpcgw.DefaultRefusedMethods; an empty non-nil slice refuses none.
	RefusedMethods []string
	// Consumers is the number of consumers per service queue, each on its
	// own channel and serving one request at a time. Default 2.
	Consumers int
	// Prefetch bounds the unacknowledged requests each consumer holds
	// (basic.qos). Default 8.
	Prefetch int
	// HandlerTimeout bounds one request's handling. Default 10 s.
	HandlerTimeout time.Duration
	// ExpiryGrace is added to a request's timestamp plus expiration before
	// the request is dropped as expired: AMQP timestamps have whole-second
	// resolution, and the two hosts' clocks may differ. Default 2 s.
	ExpiryGrace time.Duration
	// ReconnectMin and ReconnectMax bound the reconnection backoff
	// (exponential with jitter). Defaults 250 ms and 30 s.
	ReconnectMin, ReconnectMax time.Duration
	// StopTimeout bounds how long in-flight requests may finish at
	// shutdown. Default 5 s.
	StopTimeout time.Duration
	// Names are the broker's names; the zero value is Koinos's. Tests only.
	Names  Names
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Services == nil {
		c.Services = rpcgw.KoinosServices()
	}
	if c.RefusedMethods == nil {
		c.RefusedMethods = rpcgw.DefaultRefusedMethods
	}
	setInt(&c.Consumers, DefaultConsumers)
	setInt(&c.Prefetch, DefaultPrefetch)
	setDur(&c.HandlerTimeout, DefaultHandlerTimeout)
	setDur(&c.ExpiryGrace, DefaultExpiryGrace)
	setDur(&c.ReconnectMin, DefaultReconnectMin)
	setDur(&c.ReconnectMax, DefaultReconnectMax)
	setDur(&c.StopTimeout, DefaultStopTimeout)
	c.Names = c.Names.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setInt(p *int, d int) {
	if *p == 0 {
		*p = d
	}
}

func setDur(p *time.Duration, d time.Duration) {
	if *p == 0 {
		*p = d
	}
}

// Server serves Koinos RPC requests from the bus through a backend (the
// node's own rpcgw.Backend). Create it with NewServer; Run serves.
type Server struct {
	cfg     ServerConfig
	backend rpcgw.Backend
	svcs    []*service
	log     *slog.Logger
	warns   logsample.Sampler
	stats   map[string]*svcCounters

	connected  atomic.Bool
	blocked    atomic.Bool
	reconnects atomic.Uint64
}

type svcCounters struct {
	served, rejected, redelivered, expired atomic.Uint64
}

// ServiceStats are one service's counters.
type ServiceStats struct {
	Served      uint64 // requests answered (errors included) and acknowledged
	Rejected    uint64 // malformed requests rejected without requeue
	Redelivered uint64 // requests the broker delivered again (a consumer died or shut down before acknowledging)
	Expired     uint64 // requests dropped because their caller had certainly stopped waiting
}

// ServerStats is a snapshot of a Server.
type ServerStats struct {
	Connected  bool // connected and consuming
	Blocked    bool // the broker blocks publishing (replies wait)
	Reconnects uint64
	Services   map[string]ServiceStats
}

// NewServer checks cfg and builds a Server; it does not connect.
func NewServer(cfg ServerConfig, backend rpcgw.Backend) (*Server, error) {
	if backend == nil {
		return nil, errors.New("amqp: nil backend")
	}
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Consumers < 0 || cfg.Prefetch < 0 || cfg.Prefetch > 65535 {
		return nil, fmt.Errorf("amqp: consumers (%d) and prefetch (%d) must be positive, prefetch at most 65535", cfg.Consumers, cfg.Prefetch)
	}
	cfg = cfg.withDefaults()
	if cfg.ReconnectMax < cfg.ReconnectMin {
		return nil, fmt.Errorf("amqp: reconnect max %v is below reconnect min %v", cfg.ReconnectMax, cfg.ReconnectMin)
	}
	svcs, err := buildServices(cfg.Services, cfg.RefusedMethods, cfg.Names)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, backend: backend, svcs: svcs, log: cfg.Logger, stats: map[string]*svcCounters{}}
	for _, sv := range svcs {
		s.stats[sv.name] = &svcCounters{}
	}
	return s, nil
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	st := ServerStats{Connected: s.connected.Load(), Blocked: s.blocked.Load(), Reconnects: s.reconnects.Load(), Services: map[string]ServiceStats{}}
	for name, c := range s.stats {
		st.Services[name] = ServiceStats{Served: c.served.Load(), Rejected: c.rejected.Load(), Redelivered: c.redelivered.Load(), Expired: c.expired.Load()}
	}
	return st
}

func (s *Server) warn(msg string, args ...any) { s.warns.Warn(s.log, msg, args...) }

// Run connects, serves, and reconnects with backoff whenever the
// connection is lost, until ctx ends; then it stops consuming, lets the
// requests under way finish (up to StopTimeout), hands the ones not started
// back to the broker, and closes. It returns nil then. While the broker is
// unreachable only Run's own goroutine waits.
func (s *Server) Run(ctx context.Context) error {
	reconnect(ctx, backoff{min: s.cfg.ReconnectMin, max: s.cfg.ReconnectMax}, &s.warns, s.log, "rpc server", s.cfg.URL,
		s.session, func(error) { s.reconnects.Add(1) })
	return nil
}

// conn is one connection's state, shared by its consumers.
type conn struct {
	lost chan struct{} // closed when the connection is gone
	stop chan struct{} // closed when the server stops
	// chanLost receives when a consumer's channel closed under a live
	// connection: the session restarts rather than serve with fewer.
	chanLost chan error
	work     context.Context

	mu        sync.Mutex
	unblocked chan struct{} // closed while the broker lets us publish
}

func (c *conn) setBlocked(b bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.unblocked:
		if b {
			c.unblocked = make(chan struct{})
		}
	default:
		if !b {
			close(c.unblocked)
		}
	}
}

// mayPublish waits until the broker accepts publications; false if the
// connection is lost or the server stops first.
func (c *conn) mayPublish() bool {
	c.mu.Lock()
	u := c.unblocked
	c.mu.Unlock()
	select {
	case <-u:
		return true // even when stopping: a finished request is answered
	default:
	}
	select {
	case <-u:
		return true
	case <-c.lost:
	case <-c.stop:
	}
	return false
}

// link is a fresh connection: its close and flow-control notifications,
// and a first channel on which both exchanges are declared.
type link struct {
	ac     *amqp.Connection
	ch     *amqp.Channel
	closed chan *amqp.Error
	blocks chan amqp.Blocking
}

// open dials and declares; the caller closes l.ac.
func open(url, name string, n Names) (*link, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	ac, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(dialTimeout), Heartbeat: heartbeat, Properties: props})
	if err != nil {
		return nil, err
	}
	l := &link{ac: ac, closed: ac.NotifyClose(make(chan *amqp.Error, 1)), blocks: ac.NotifyBlocked(make(chan amqp.Blocking, 4))}
	if l.ch, err = ac.Channel(); err == nil {
		err = declare(l.ch, n)
	}
	if err != nil {
		ac.Close()
		return nil, err
	}
	return l, nil
}

// declare declares both exchanges as Koinos does.
func declare(ch *amqp.Channel, n Names) error {
	if err := ch.ExchangeDeclare(n.EventExchange, "topic", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", n.EventExchange, err)
	}
	if err := ch.ExchangeDeclare(n.RPCExchange, "direct", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", n.RPCExchange, err)
	}
	return nil
}

// session runs one connection until it is lost or ctx ends. served reports
// whether it got as far as consuming.
func (s *Server) session(ctx context.Context) (served bool, err error) {
	l, err := open(s.cfg.URL, "ember rpc server", s.cfg.Names)
	if err != nil {
		return false, err
	}
	ac, setup, closed, blocks := l.ac, l.ch, l.closed, l.blocks
	defer ac.Close()
	for _, sv := range s.svcs {
		if _, err := setup.QueueDeclare(sv.queue, true, false, false, false, nil); err != nil {
			return false, fmt.Errorf("declare queue %s: %w", sv.queue, err)
		}
		if err := setup.QueueBind(sv.queue, sv.queue, s.cfg.Names.RPCExchange, false, nil); err != nil {
			return false, fmt.Errorf("bind queue %s: %w", sv.queue, err)
		}
	}
	setup.Close()

	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	c := &conn{lost: make(chan struct{}), stop: make(chan struct{}), chanLost: make(chan error, 1), work: work, unblocked: make(chan struct{})}
	close(c.unblocked)
	var wg sync.WaitGroup
	defer func() {
		// Every consumer goroutine ends before the connection closes: none
		// outlives its session, so a flapping broker cannot grow them.
		close(c.lost)
		cancelWork()
		ac.Close()
		wg.Wait()
	}()
	for _, sv := range s.svcs {
		for i := 0; i < s.cfg.Consumers; i++ {
			ch, err := ac.Channel()
			if err != nil {
				return false, err
			}
			if err := ch.Qos(s.cfg.Prefetch, 0, false); err != nil {
				return false, fmt.Errorf("qos: %w", err)
			}
			tag := fmt.Sprintf("ember-%s-%d", sv.name, i)
			dels, err := ch.Consume(sv.queue, tag, false, false, false, false, nil)
			if err != nil {
				return false, fmt.Errorf("consume %s: %w", sv.queue, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.consume(c, sv, ch, tag, dels)
				select {
				case <-c.stop:
				case <-c.lost:
				default:
					// The broker closed the channel or cancelled the
					// consumer (queue deleted): restart the session.
					select {
					case c.chanLost <- fmt.Errorf("consumer of %s ended", sv.queue):
					default:
					}
				}
			}()
		}
	}
	s.connected.Store(true)
	defer s.connected.Store(false)
	s.log.Info("amqp: serving rpc", "url", redact(s.cfg.URL), "services", len(s.svcs), "consumers", s.cfg.Consumers, "prefetch", s.cfg.Prefetch)
	for {
		select {
		case b, ok := <-blocks:
			if ok {
				s.blocked.Store(b.Active)
				c.setBlocked(b.Active)
				s.log.Warn("amqp: broker flow control", "blocked", b.Active, "reason", b.Reason)
			} else {
				blocks = nil
			}
		case err := <-c.chanLost:
			s.blocked.Store(false)
			return true, err
		case e := <-closed:
			s.blocked.Store(false)
			if e == nil {
				return true, errors.New("connection closed")
			}
			return true, e
		case <-ctx.Done():
			close(c.stop)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			t := time.NewTimer(s.cfg.StopTimeout)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				s.log.Warn("amqp: requests still under way at shutdown; abandoning them (the broker redelivers them)", "timeout", s.cfg.StopTimeout)
			}
			return true, nil
		}
	}
}

// consume serves one consumer's deliveries, one at a time, until its
// channel closes or the server stops. At a stop it cancels the consumer
// and hands the deliveries it holds but has not started back to the broker.
func (s *Server) consume(c *conn, sv *service, ch *amqp.Channel, tag string, dels <-chan amqp.Delivery) {
	for {
		select {
		case d, ok := <-dels:
			if !ok {
				return
			}
			select {
			case <-c.stop:
				_ = d.Nack(false, true)
				continue
			default:
			}
			s.deliver(c, sv, ch, &d)
		case <-c.stop:
			_ = ch.Cancel(tag, false)
			for d := range dels {
				_ = d.Nack(false, true)
			}
			return
		}
	}
}

// inbound is what the server reads of a delivery.
type inbound struct {
	contentType, replyTo, correlationID, expiration string
	timestamp                                       time.Time
	body                                            []byte
}

type verdict int

const (
	verdictReply   verdict = iota // answer with reply
	verdictReject                 // malformed: reject without requeue
	verdictExpired                // the caller has certainly given up: drop
)

// deliver handles one delivery: decode, serve, reply, acknowledge.
func (s *Server) deliver(c *conn, sv *service, ch *amqp.Channel, d *amqp.Delivery) {
	st := s.stats[sv.name]
	if d.Redelivered {
		st.redelivered.Add(1)
	}
	in := inbound{contentType: d.ContentType, replyTo: d.ReplyTo, correlationID: d.CorrelationId,
		expiration: d.Expiration, timestamp: d.Timestamp, body: d.Body}
	v, reply, why := s.process(c.work, sv, in, time.Now())
	switch v {
	case verdictReject:
		st.rejected.Add(1)
		s.warn("amqp: malformed request rejected", "queue", sv.queue, "reason", why, "bytes", len(d.Body))
		_ = d.Reject(false)
		return
	case verdictExpired:
		st.expired.Add(1)
		s.log.Debug("amqp: expired request dropped", "queue", sv.queue, "why", why)
		_ = d.Ack(false)
		return
	}
	if !c.mayPublish() {
		// Lost or stopping while the broker blocks us: another consumer
		// serves it again (at-least-once).
		_ = d.Nack(false, true)
		return
	}
	pub := amqp.Publishing{
		ContentType:   ContentType,
		CorrelationId: d.CorrelationId,
		DeliveryMode:  amqp.Transient,
		Timestamp:     time.Now(),
		Expiration:    d.Expiration,
		Body:          reply,
	}
	if err := ch.PublishWithContext(c.work, s.cfg.Names.RPCExchange, d.ReplyTo, false, false, pub); err != nil {
		s.warn("amqp: reply not published; the request goes back to the queue", "queue", sv.queue, "err", err)
		_ = d.Nack(false, true)
		return
	}
	if err := d.Ack(false); err != nil {
		s.warn("amqp: ack failed (the broker will redeliver the request)", "queue", sv.queue, "err", err)
		return
	}
	st.served.Add(1)
}

// process decides what to do with a request and, unless it is rejected or
// expired, serves it and returns the encoded response envelope. It does no
// I/O of its own: the fuzz target drives it.
func (s *Server) process(ctx context.Context, sv *service, in inbound, now time.Time) (verdict, []byte, string) {
	switch {
	case in.contentType != ContentType:
		return verdictReject, nil, fmt.Sprintf("content type %q, not %s", clip(in.contentType), ContentType)
	case in.replyTo == "":
		return verdictReject, nil, "no reply_to"
	}
	deadline := now.Add(s.cfg.HandlerTimeout)
	if ms, err := strconv.ParseUint(in.expiration, 10, 63); err == nil && ms > 0 {
		exp := time.Duration(ms) * time.Millisecond
		// Without a timestamp the request's age is unknown: the broker only
		// delivers unexpired messages, so the caller waits at most exp more.
		if d := now.Add(exp); d.Before(deadline) {
			deadline = d
		}
		if !in.timestamp.IsZero() && !now.Before(in.timestamp.Add(exp+s.cfg.ExpiryGrace)) {
			return verdictExpired, nil, fmt.Sprintf("sent at %s with expiration %v", in.timestamp.UTC().Format(time.RFC3339), exp)
		}
	}
	req := sv.reqType.New()
	if err := unmarshal(in.body, req.Interface()); err != nil {
		return verdictReject, nil, fmt.Sprintf("not a %s: %v", sv.reqType.Descriptor().FullName(), err)
	}
	resp := s.serve(ctx, sv, req, deadline)
	b, err := marshal(resp.Interface())
	if err != nil {
		// Only a response the backend built badly (invalid UTF-8 in a
		// string) gets here; the caller still gets an answer.
		b, _ = marshal(errorResponse(sv, "An internal server error has occurred", "rpc failed, the response could not be encoded").Interface())
	}
	return verdictReply, b, ""
}

// serve calls the backend; every failure becomes the envelope's error.
func (s *Server) serve(ctx context.Context, sv *service, req protoreflect.Message, deadline time.Time) protoreflect.Message {
	if fd := req.WhichOneof(sv.reqOneof); fd != nil {
		if name, ok := sv.refused[fd.Number()]; ok {
			return errorResponse(sv, name+" is not served on this endpoint", `{"code":-1}`)
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	resp, err := s.callBackend(ctx, sv, req)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil):
		// As the JSON-RPC gateway words it, so callers match the same text.
		return errorResponse(sv, "An internal server error has occurred", "rpc failed, context deadline exceeded")
	case err != nil:
		return errorResponse(sv, "An internal server error has occurred", "rpc failed, "+clip(err.Error()))
	case resp == nil || !resp.ProtoReflect().IsValid():
		return errorResponse(sv, "An internal server error has occurred", "rpc failed, the backend returned no response")
	case resp.ProtoReflect().Descriptor().FullName() != sv.respType.Descriptor().FullName():
		return errorResponse(sv, "An internal server error has occurred", "rpc failed, the backend returned "+string(resp.ProtoReflect().Descriptor().FullName()))
	}
	return resp.ProtoReflect()
}

func (s *Server) callBackend(ctx context.Context, sv *service, req protoreflect.Message) (resp proto.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("amqp: backend panicked; this is a bug", "service", sv.name, "panic", fmt.Sprint(r))
			resp, err = nil, errors.New("the backend failed")
		}
	}()
	return s.backend.Serve(ctx, sv.name, req.Interface())
}

// errorResponse builds a response envelope holding only error_status.
func errorResponse(sv *service, message, data string) protoreflect.Message {
	m := sv.respType.New()
	m.Set(sv.errField, protoreflect.ValueOfMessage((&rpcpb.ErrorStatus{Message: message, Data: data}).ProtoReflect()))
	return m
}

type vtMarshaler interface{ MarshalVT() ([]byte, error) }
type vtUnmarshaler interface{ UnmarshalVT([]byte) error }

func marshal(m proto.Message) ([]byte, error) {
	if v, ok := m.(vtMarshaler); ok {
		return v.MarshalVT()
	}
	return proto.Marshal(m)
}

func unmarshal(b []byte, m proto.Message) error {
	if v, ok := m.(vtUnmarshaler); ok {
		return v.UnmarshalVT(b)
	}
	return proto.Unmarshal(b, m)
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:197] + "..."
	}
	return s
}
