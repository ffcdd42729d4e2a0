package amqp

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/emberchain/ember/internal/logsample"
	"github.com/emberchain/ember/rpcgw"
)

// Koinos's names and content type (KOINOS.md §1).
const (
	RPCExchange   = "koinos.rpc"
	EventExchange = "koinos.event"
	RPCPrefix     = "koinos.rpc."
	ContentType   = "application/octet-stream"
)

// Names are the exchange and queue names used on the broker. The zero value
// is Koinos's; tests set a unique prefix so that runs sharing a broker do
// not see each other. Production code leaves it zero.
type Names struct {
	RPCExchange   string // default koinos.rpc
	EventExchange string // default koinos.event
	// QueuePrefix prefixes a service name to form its queue and routing
	// key. Default koinos.rpc.
	QueuePrefix string
}

func (n Names) withDefaults() Names {
	if n.RPCExchange == "" {
		n.RPCExchange = RPCExchange
	}
	if n.EventExchange == "" {
		n.EventExchange = EventExchange
	}
	if n.QueuePrefix == "" {
		n.QueuePrefix = RPCPrefix
	}
	return n
}

// TestNames returns names under prefix, for tests that share a broker.
func TestNames(prefix string) Names {
	return Names{RPCExchange: prefix + ".koinos.rpc", EventExchange: prefix + ".koinos.event", QueuePrefix: prefix + ".koinos.rpc."}
}

// service is one served or called service, read from its envelopes.
type service struct {
	name      string // "chain"
	queue     string // "koinos.rpc.chain": queue name and routing key
	reqType   protoreflect.MessageType
	respType  protoreflect.MessageType
	reqOneof  protoreflect.OneofDescriptor
	respOneof protoreflect.OneofDescriptor
	errField  protoreflect.FieldDescriptor // the response's error_status member
	// refused maps request members refused on this server to their
	// "service.method" names.
	refused map[protoreflect.FieldNumber]string
}

func buildServices(svcs []rpcgw.Service, refused []string, names Names) ([]*service, error) {
	prefixes := make([]string, len(refused))
	for i, p := range refused {
		if !strings.HasPrefix(p, "koinos.rpc.") {
			p = "koinos.rpc." + p
		}
		prefixes[i] = p
	}
	var out []*service
	seen := map[string]bool{}
	for _, cs := range svcs {
		if cs.Name == "" || strings.ContainsAny(cs.Name, ". ") || cs.Request == nil || cs.Response == nil {
			return nil, fmt.Errorf("amqp: service %q: a single-word name and both envelopes are required", cs.Name)
		}
		if seen[cs.Name] {
			return nil, fmt.Errorf("amqp: service %q listed twice", cs.Name)
		}
		seen[cs.Name] = true
		s := &service{
			name:     cs.Name,
			queue:    names.QueuePrefix + cs.Name,
			reqType:  cs.Request.ProtoReflect().Type(),
			respType: cs.Response.ProtoReflect().Type(),
			refused:  map[protoreflect.FieldNumber]string{},
		}
		var err error
		if s.reqOneof, err = onlyOneof(s.reqType.Descriptor()); err != nil {
			return nil, err
		}
		if s.respOneof, err = onlyOneof(s.respType.Descriptor()); err != nil {
			return nil, err
		}
		rf := s.respOneof.Fields()
		for i := 0; i < rf.Len(); i++ {
			if fd := rf.Get(i); fd.Message() != nil && fd.Message().FullName() == "koinos.rpc.error_status" {
				s.errField = fd
			}
		}
		if s.errField == nil {
			return nil, fmt.Errorf("amqp: service %s: %s has no koinos.rpc.error_status member", cs.Name, s.respType.Descriptor().FullName())
		}
		qf := s.reqOneof.Fields()
		for i := 0; i < qf.Len(); i++ {
			fd := qf.Get(i)
			qualified := "koinos.rpc." + cs.Name + "." + string(fd.Name())
			for _, p := range prefixes {
				if strings.HasPrefix(qualified, p) {
					s.refused[fd.Number()] = cs.Name + "." + string(fd.Name())
				}
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("amqp: no services")
	}
	return out, nil
}

func onlyOneof(md protoreflect.MessageDescriptor) (protoreflect.OneofDescriptor, error) {
	var found protoreflect.OneofDescriptor
	for i := 0; i < md.Oneofs().Len(); i++ {
		if o := md.Oneofs().Get(i); !o.IsSynthetic() {
			if found != nil {
				return nil, fmt.Errorf("amqp: %s has more than one oneof", md.FullName())
			}
			found = o
		}
	}
	if found == nil {
		return nil, fmt.Errorf("amqp: %s has no oneof", md.FullName())
	}
	return found, nil
}

// stableSession is how long a session must last for the backoff to start
// again from its minimum.
const stableSession = 10 * time.Second

// backoff is exponential with jitter: each wait is drawn from [d/2, d),
// and d doubles from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.cur = b.min }

// reconnect runs session until ctx ends, waiting between attempts with
// backoff, reset after a session that got going and lasted a while (a
// connection that drops at once, each time, still backs off). Only this
// loop runs while the broker is down.
func reconnect(ctx context.Context, bo backoff, warns *logsample.Sampler, log *slog.Logger, what, url string,
	session func(context.Context) (bool, error), retried func(error)) {
	for {
		start := time.Now()
		ok, err := session(ctx)
		if ctx.Err() != nil {
			return
		}
		retried(err)
		if ok && time.Since(start) > stableSession {
			bo.reset()
		}
		wait := bo.next()
		warns.Warn(log, "amqp: "+what+" not connected; retrying", "url", redact(url), "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// redact hides the password of an AMQP URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// CheckURL reports whether raw is an AMQP URL the client library accepts.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return fmt.Errorf("amqp: %q is not an AMQP URL (amqp://user:password@host:5672/vhost)", redact(raw))
	}
	return nil
}

// expiration formats a per-message TTL as AMQP wants it: milliseconds,
// rounded up, at least 1.
func expiration(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(max(int64(ms), 1), 10)
}
