package amqp

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw"
)

// rawPeer publishes hand-made requests and reads the replies, as a foreign
// client (koinos-mq-golang) would.
type rawPeer struct {
	t       *testing.T
	ch      *amqp.Channel
	names   Names
	replyTo string
	replies <-chan amqp.Delivery
}

func newRawPeer(t *testing.T, url string, n Names) *rawPeer {
	c, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := declare(ch, n); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, q.Name, n.RPCExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, ch: ch, names: n, replyTo: q.Name, replies: d}
}

func (p *rawPeer) publish(service string, m amqp.Publishing) {
	p.t.Helper()
	if err := p.ch.Publish(p.names.RPCExchange, p.names.QueuePrefix+service, false, false, m); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) next(timeout time.Duration) (amqp.Delivery, bool) {
	select {
	case d := <-p.replies:
		return d, true
	case <-time.After(timeout):
		return amqp.Delivery{}, false
	}
}

func headInfoBytes(t *testing.T) []byte {
	b, err := proto.Marshal(&chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every Koinos service answers through the client over the bus, and the
// wire is Koinos's: the reply carries the correlation id and content type.
func TestRoundTripEveryService(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	fb := &fakeBackend{height: 42}
	startServer(t, ServerConfig{URL: url, Names: n}, fb)
	c := startClient(t, ClientConfig{URL: url, Names: n})
	waitFor(t, "the client to see consumers", func() bool { return c.Stats().Connected })
	for _, s := range rpcgw.KoinosServices() {
		req := s.Request.ProtoReflect().Type().New()
		fd := req.Descriptor().Fields().ByName("reserved")
		req.Set(fd, req.NewField(fd))
		var resp proto.Message
		waitFor(t, s.Name+" to answer", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			resp, err = c.Serve(ctx, s.Name, req.Interface())
			return err == nil
		})
		rm := resp.ProtoReflect()
		if got := rm.WhichOneof(rm.Descriptor().Oneofs().Get(0)); got == nil || got.Name() != "reserved" {
			t.Fatalf("%s: %v", s.Name, resp)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Serve(ctx, "chain", &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}})
	if err != nil || resp.(*chainrpc.ChainResponse).GetGetHeadInfo().GetHeadTopology().GetHeight() != 42 {
		t.Fatalf("%v %v", resp, err)
	}
	// A backend failure travels in error_status, worded as the JSON-RPC
	// gateway words it.
	resp, err = c.Serve(ctx, "chain", &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetChainId{GetChainId: &chainrpc.GetChainIdRequest{}}})
	if err != nil || resp.(*chainrpc.ChainResponse).GetError().GetData() != "rpc failed, fake failure" {
		t.Fatalf("%v %v", resp, err)
	}
	// Internal methods are refused as on the public listener.
	resp, err = c.Serve(ctx, "chain", &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_SubmitBlock{SubmitBlock: &chainrpc.SubmitBlockRequest{}}})
	if err != nil || !strings.Contains(resp.(*chainrpc.ChainResponse).GetError().GetMessage(), "chain.submit_block is not served") {
		t.Fatalf("%v %v", resp, err)
	}

	p := newRawPeer(t, url, n)
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "ABCDEFGHIJKLMNOPQRSTUVWXYABCDEFG", ReplyTo: p.replyTo, Expiration: "1000", Body: headInfoBytes(t)})
	d, ok := p.next(5 * time.Second)
	if !ok || d.CorrelationId != "ABCDEFGHIJKLMNOPQRSTUVWXYABCDEFG" || d.ContentType != ContentType || d.Exchange != n.RPCExchange || d.RoutingKey != p.replyTo {
		t.Fatalf("reply %v %+v", ok, d)
	}
	var r chainrpc.ChainResponse
	if err := proto.Unmarshal(d.Body, &r); err != nil || r.GetGetHeadInfo().GetHeadTopology().GetHeight() != 42 {
		t.Fatalf("%v %v", &r, err)
	}
}

// Malformed, wrong content type, missing reply_to and expired requests are
// dropped without harm; the good request after them is answered.
func TestBadRequestsRejected(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	s := startServer(t, ServerConfig{URL: url, Names: n, Consumers: 1}, &fakeBackend{height: 7})
	p := newRawPeer(t, url, n)
	good := headInfoBytes(t)
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "bad-proto", ReplyTo: p.replyTo, Body: []byte{0xff, 0xff, 0xff}})
	p.publish("chain", amqp.Publishing{ContentType: "application/json", CorrelationId: "bad-type", ReplyTo: p.replyTo, Body: good})
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "no-reply-to", Body: good})
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "expired", ReplyTo: p.replyTo, Body: good,
		Expiration: "1000", Timestamp: time.Now().Add(-time.Hour)})
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "good", ReplyTo: p.replyTo, Body: good, Expiration: "5000", Timestamp: time.Now()})
	d, ok := p.next(5 * time.Second)
	if !ok || d.CorrelationId != "good" {
		t.Fatalf("first reply: %v %q", ok, d.CorrelationId)
	}
	if d, ok := p.next(300 * time.Millisecond); ok {
		t.Fatalf("a bad request was answered: %q", d.CorrelationId)
	}
	waitFor(t, "the counters", func() bool {
		st := s.Stats().Services["chain"]
		return st.Rejected == 3 && st.Expired == 1 && st.Served == 1
	})
	// Nothing is left unacknowledged or requeued.
	c, _ := amqp.Dial(url)
	defer c.Close()
	ch, _ := c.Channel()
	q, err := ch.QueueDeclarePassive(n.QueuePrefix+"chain", true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Fatalf("queue %+v %v", q, err)
	}
}

// Two servers consume one queue as competing consumers; both serve.
func TestCompetingConsumers(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	a, b := &fakeBackend{height: 1}, &fakeBackend{height: 2}
	startServer(t, ServerConfig{URL: url, Names: n, Consumers: 1, Prefetch: 1}, a)
	startServer(t, ServerConfig{URL: url, Names: n, Consumers: 1, Prefetch: 1}, b)
	c := startClient(t, ClientConfig{URL: url, Names: n})
	waitFor(t, "two consumers", func() bool {
		cc := c.cur.Load()
		return cc != nil && cc.consumers["chain"].Load() == 2
	})
	seen := map[uint64]int{}
	for i := 0; i < 40; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.Serve(ctx, "chain", &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		seen[resp.(*chainrpc.ChainResponse).GetGetHeadInfo().GetHeadTopology().GetHeight()]++
	}
	if seen[1] == 0 || seen[2] == 0 {
		t.Fatalf("answers by server: %v", seen)
	}
}

// A client fails fast with rpcgw.ErrUnavailable while no node consumes the
// queue or the broker is unreachable, and recovers by itself; it starts no
// goroutines while it waits for the broker.
func TestClientUnavailable(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	req := &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}}

	down := startClient(t, ClientConfig{URL: "amqp://guest:guest@" + closedPort(t) + "/", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	start := time.Now()
	if _, err := down.Serve(context.Background(), "chain", req); !errors.Is(err, rpcgw.ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("broker down: %v after %v", err, time.Since(start))
	}
	time.Sleep(200 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	time.Sleep(500 * time.Millisecond)
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Fatalf("goroutines grew from %d to %d while the broker was down", g0, g)
	}

	c := startClient(t, ClientConfig{URL: url, Names: n, ProbeInterval: 50 * time.Millisecond})
	waitFor(t, "the client to connect", func() bool { return c.Stats().Connected })
	if _, err := c.Serve(context.Background(), "chain", req); !errors.Is(err, rpcgw.ErrUnavailable) || !strings.Contains(err.Error(), "no node consumes") {
		t.Fatalf("no consumer: %v", err)
	}
	startServer(t, ServerConfig{URL: url, Names: n}, &fakeBackend{height: 3})
	waitFor(t, "the call to succeed", func() bool {
		_, err := c.Serve(context.Background(), "chain", req)
		return err == nil
	})
}

// At shutdown a request under way is finished and answered.
func TestServerGracefulStop(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	fb := &fakeBackend{height: 9, gate: make(chan struct{})}
	s, err := NewServer(ServerConfig{URL: url, Names: n, Consumers: 1}, fb)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "the server", func() bool { return s.Stats().Connected })
	p := newRawPeer(t, url, n)
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "slow", ReplyTo: p.replyTo, Body: headInfoBytes(t)})
	waitFor(t, "the call to start", func() bool { return fb.calls.Load() == 1 })
	cancel()
	time.Sleep(100 * time.Millisecond)
	close(fb.gate)
	if d, ok := p.next(5 * time.Second); !ok || d.CorrelationId != "slow" {
		t.Fatalf("in-flight request not answered at shutdown: %v", ok)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if st := s.Stats(); st.Connected || st.Services["chain"].Served != 1 {
		t.Fatalf("%+v", st)
	}
}

// The server reconnects after the broker closes its connection.
func TestServerReconnects(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	s := startServer(t, ServerConfig{URL: url, Names: n, ReconnectMin: 20 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, &fakeBackend{height: 5})
	c := startClient(t, ClientConfig{URL: url, Names: n, ProbeInterval: 50 * time.Millisecond})
	req := &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}}
	waitFor(t, "a first answer", func() bool { _, err := c.Serve(context.Background(), "chain", req); return err == nil })
	// Delete the queue under the server: its consumers are cancelled, and it
	// must come back (declaring the queue again).
	ac, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	ch, _ := ac.Channel()
	if _, err := ch.QueueDelete(n.QueuePrefix+"chain", false, false, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reconnect", func() bool { return s.Stats().Reconnects > 0 })
	waitFor(t, "answers again", func() bool { _, err := c.Serve(context.Background(), "chain", req); return err == nil })
}

// While the broker blocks the connection, a finished request waits to
// publish its reply; it publishes once unblocked, and gives up (to be
// requeued) if the connection is lost meanwhile.
func TestBlockedHoldsReplies(t *testing.T) {
	c := &conn{lost: make(chan struct{}), stop: make(chan struct{}), unblocked: make(chan struct{})}
	close(c.unblocked)
	if !c.mayPublish() {
		t.Fatal("unblocked connection refused publishing")
	}
	c.setBlocked(true)
	c.setBlocked(true) // repeated notifications are harmless
	got := make(chan bool, 1)
	go func() { got <- c.mayPublish() }()
	select {
	case <-got:
		t.Fatal("published while blocked")
	case <-time.After(100 * time.Millisecond):
	}
	c.setBlocked(false)
	if ok := <-got; !ok {
		t.Fatal("not released when unblocked")
	}
	c.setBlocked(true)
	go func() { got <- c.mayPublish() }()
	close(c.lost)
	if ok := <-got; ok {
		t.Fatal("published on a lost connection")
	}
}

// A server whose broker is unreachable keeps retrying with no more
// goroutines than its loop.
func TestServerBrokerDown(t *testing.T) {
	s, err := NewServer(ServerConfig{URL: "amqp://guest:guest@" + closedPort(t) + "/", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 40 * time.Millisecond}, &fakeBackend{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	waitFor(t, "retries", func() bool { return s.Stats().Reconnects >= 5 })
	time.Sleep(200 * time.Millisecond)
	if g := runtime.NumGoroutine(); g > g0+2 {
		t.Fatalf("goroutines grew from %d to %d while the broker was down", g0, g)
	}
	if s.Stats().Connected {
		t.Fatal("connected to nothing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A request a server held without acknowledging when it went away is
// redelivered to another server, which serves it and counts it.
func TestRedeliveredAfterAbandon(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	stuck := &fakeBackend{gate: make(chan struct{})} // never opens
	s1, err := NewServer(ServerConfig{URL: url, Names: n, Consumers: 1, StopTimeout: 100 * time.Millisecond}, stuck)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s1.Run(ctx) }()
	waitFor(t, "the first server", func() bool { return s1.Stats().Connected })
	p := newRawPeer(t, url, n)
	p.publish("chain", amqp.Publishing{ContentType: ContentType, CorrelationId: "again", ReplyTo: p.replyTo, Body: headInfoBytes(t)})
	waitFor(t, "the first server to take it", func() bool { return stuck.calls.Load() == 1 })
	cancel() // its handler never finishes: abandoned after StopTimeout
	<-done
	s2 := startServer(t, ServerConfig{URL: url, Names: n}, &fakeBackend{height: 11})
	d, ok := p.next(10 * time.Second)
	if !ok || d.CorrelationId != "again" {
		t.Fatalf("not redelivered: %v", ok)
	}
	waitFor(t, "the redelivery counter", func() bool { return s2.Stats().Services["chain"].Redelivered == 1 })
}

// With a dead-letter policy on the queues (as an operator would set it),
// rejected requests are dead-lettered, not lost.
func TestRejectedDeadLettered(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	ctl, err := exec.LookPath("rabbitmqctl")
	if err != nil {
		t.Skip("rabbitmqctl not installed: cannot set a policy")
	}
	policy := strings.TrimSuffix(n.QueuePrefix, ".koinos.rpc.") + "-dlx"
	dlx := n.RPCExchange + ".dlx"
	pattern := "^" + regexp.QuoteMeta(n.QueuePrefix)
	if out, err := exec.Command(ctl, "set_policy", "--apply-to", "queues", policy, pattern, `{"dead-letter-exchange":"`+dlx+`"}`).CombinedOutput(); err != nil {
		t.Skipf("cannot set a policy on this broker: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command(ctl, "clear_policy", policy).Run() })
	ac, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	ch, _ := ac.Channel()
	if err := ch.ExchangeDeclare(dlx, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, _ := ch.QueueDeclare("", false, true, true, false, nil)
	ch.QueueBind(q.Name, "", dlx, false, nil)
	dead, _ := ch.Consume(q.Name, "", true, true, false, false, nil)

	startServer(t, ServerConfig{URL: url, Names: n}, &fakeBackend{})
	p := newRawPeer(t, url, n)
	p.publish("chain", amqp.Publishing{ContentType: "text/plain", CorrelationId: "junk", ReplyTo: p.replyTo, Body: []byte("hello")})
	select {
	case d := <-dead:
		if d.CorrelationId != "junk" || string(d.Body) != "hello" {
			t.Fatalf("dead-lettered %q %q", d.CorrelationId, d.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rejected request was not dead-lettered (is the policy applied?)")
	}
}
