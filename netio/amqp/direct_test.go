package amqp

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw"
)

var headInfoReq = &chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}}

// A client using direct reply-to gets every service's answer from the
// server, which publishes those replies to the default exchange; a raw
// caller sees them come from there, with Koinos's properties.
func TestDirectReplyRoundTrip(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	startServer(t, ServerConfig{URL: url, Names: n}, &fakeBackend{height: 42})
	c := startClient(t, ClientConfig{URL: url, Names: n, Reply: ReplyDirect, ProbeInterval: 50 * time.Millisecond})
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
	for i := 0; i < 100; i++ {
		resp, err := c.Serve(context.Background(), "chain", headInfoReq)
		if err != nil || resp.(*chainrpc.ChainResponse).GetGetHeadInfo().GetHeadTopology().GetHeight() != 42 {
			t.Fatalf("%v %v", resp, err)
		}
	}
	if st := c.Stats(); st.Late != 0 || st.Timeouts != 0 || st.Reconnects != 0 {
		t.Fatalf("client %+v", st)
	}

	ch, replies := directPeer(t, url)
	if err := ch.Publish(n.RPCExchange, n.QueuePrefix+"chain", false, false, amqp.Publishing{ContentType: ContentType,
		CorrelationId: "direct-1", ReplyTo: DirectReplyTo, Expiration: "5000", Body: headInfoBytes(t)}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-replies:
		if d.CorrelationId != "direct-1" || d.ContentType != ContentType || d.Exchange != "" || !strings.HasPrefix(d.RoutingKey, DirectReplyTo+".") {
			t.Fatalf("reply %+v", d)
		}
		var r chainrpc.ChainResponse
		if err := proto.Unmarshal(d.Body, &r); err != nil || r.GetGetHeadInfo().GetHeadTopology().GetHeight() != 42 {
			t.Fatalf("%v %v", &r, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no direct reply")
	}
}

// directPeer is a raw caller consuming direct reply-to on its channel.
func directPeer(t *testing.T, url string) (*amqp.Channel, <-chan amqp.Delivery) {
	t.Helper()
	ac, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ac.Close() })
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(DirectReplyTo, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ch, d
}

// A caller using direct reply-to that goes away before its reply: the
// broker drops the reply, and the server acknowledges the request, keeps
// its connection and channels, and serves the next callers.
func TestDirectReplyVanishedCaller(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	fb := &fakeBackend{height: 8, gate: make(chan struct{})}
	s := startServer(t, ServerConfig{URL: url, Names: n, Consumers: 1}, fb)
	ac, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := ac.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume(DirectReplyTo, "", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish(n.RPCExchange, n.QueuePrefix+"chain", false, false, amqp.Publishing{ContentType: ContentType,
		CorrelationId: "gone", ReplyTo: DirectReplyTo, Body: headInfoBytes(t)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the call to start", func() bool { return fb.calls.Load() == 1 })
	ac.Close() // the caller vanishes; its reply_to names a dead channel
	close(fb.gate)
	waitFor(t, "the request to be answered", func() bool { return s.Stats().Services["chain"].Served == 1 })

	for _, reply := range []ReplyMode{ReplyDirect, ReplyQueue} {
		c := startClient(t, ClientConfig{URL: url, Names: n, Reply: reply, ProbeInterval: 50 * time.Millisecond})
		waitFor(t, "an answer by "+string(reply), func() bool { _, err := c.Serve(context.Background(), "chain", headInfoReq); return err == nil })
	}
	if st := s.Stats(); st.Reconnects != 0 || !st.Connected || st.Services["chain"].Redelivered != 0 {
		t.Fatalf("server %+v", st)
	}
	// Nothing was requeued or left unacknowledged.
	c2, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ch2, _ := c2.Channel()
	if q, err := ch2.QueueDeclarePassive(n.QueuePrefix+"chain", true, false, false, false, nil); err != nil || q.Messages != 0 {
		t.Fatalf("queue %+v %v", q, err)
	}
}

// A client whose publishing channel closes under a live connection starts
// a new session instead of failing every call from then on.
func TestClientChannelLost(t *testing.T) {
	url := requireBroker(t)
	n := testNames(t, url)
	startServer(t, ServerConfig{URL: url, Names: n}, &fakeBackend{height: 4})
	for _, reply := range []ReplyMode{ReplyQueue, ReplyDirect} {
		c := startClient(t, ClientConfig{URL: url, Names: n, Reply: reply, ProbeInterval: 50 * time.Millisecond,
			ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
		waitFor(t, "a first answer", func() bool { _, err := c.Serve(context.Background(), "chain", headInfoReq); return err == nil })
		c.cur.Load().pub.Close()
		waitFor(t, "a new session", func() bool { return c.Stats().Reconnects > 0 })
		waitFor(t, "answers again", func() bool { _, err := c.Serve(context.Background(), "chain", headInfoReq); return err == nil })
	}
}

func TestParseReplyMode(t *testing.T) {
	for in, want := range map[string]ReplyMode{"queue": ReplyQueue, "direct": ReplyDirect} {
		if got, err := ParseReplyMode(in); err != nil || got != want {
			t.Fatalf("%s: %v %v", in, got, err)
		}
	}
	if _, err := ParseReplyMode("fast"); err == nil {
		t.Fatal("accepted fast")
	}
	if _, err := NewClient(ClientConfig{URL: "amqp://127.0.0.1/", Reply: "fast"}); err == nil {
		t.Fatal("NewClient accepted reply mode fast")
	}
}
