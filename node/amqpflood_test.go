package node

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// TestAMQPRequestFlood: far more bus requests than the node can hold at
// once, half of them from callers that gave up long ago. The backlog waits
// at the broker (the node holds at most consumers × prefetch unacknowledged
// requests per service, by basic.qos), the node's own JSON-RPC keeps
// answering and blocks keep coming during the flood, every live request is
// answered exactly once, every stale one is dropped unserved and counted,
// and the queue drains to empty.
func TestAMQPRequestFlood(t *testing.T) {
	url := amqptest.URL(t)
	names := busNames(t, url)
	tn := newBusNet(t, url, names, 1)

	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	replyQ, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Koinos's convention: replies go through the RPC exchange, routed by
	// the reply queue's name.
	if err := ch.QueueBind(replyQ.Name, replyQ.Name, names.RPCExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	replies, err := ch.Consume(replyQ.Name, "", true, true, false, false, nil) // auto-ack, exclusive
	if err != nil {
		t.Fatal(err)
	}
	body, err := proto.Marshal(&chainrpc.ChainRequest{Request: &chainrpc.ChainRequest_GetHeadInfo{GetHeadInfo: &chainrpc.GetHeadInfoRequest{}}})
	if err != nil {
		t.Fatal(err)
	}
	const live, stale = 2000, 2000
	got := map[string]int{}
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for d := range replies {
			mu.Lock()
			got[d.CorrelationId]++
			n := len(got)
			mu.Unlock()
			if n == live {
				return
			}
		}
	}()

	headBefore := tn.n.Chain().View().Head.Height
	queue := names.QueuePrefix + "chain"
	backlogSeen := 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range live + stale {
		p := amqp091.Publishing{ContentType: amqp.ContentType, ReplyTo: replyQ.Name, Expiration: "60000", Timestamp: time.Now(), Body: body,
			CorrelationId: strconv.Itoa(i)}
		if i%2 == 1 {
			// A caller that gave up an hour ago: its deadline is past.
			p.Timestamp, p.CorrelationId = time.Now().Add(-time.Hour), "stale-"+strconv.Itoa(i)
		}
		if err := ch.PublishWithContext(ctx, names.RPCExchange, queue, false, false, p); err != nil {
			t.Fatal(err)
		}
		if i%500 == 499 {
			if q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err == nil {
				backlogSeen = max(backlogSeen, q.Messages)
			}
			// The node's own gateway is not starved by the bus.
			if err := tn.c.Call(ctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &chainrpc.GetHeadInfoResponse{}); err != nil {
				t.Fatalf("JSON-RPC during the flood: %v", err)
			}
		}
	}
	select {
	case <-readDone:
	case <-ctx.Done():
		mu.Lock()
		t.Fatalf("%d of %d live requests answered; the node: %+v", len(got), live, tn.n.AMQPStats())
	}
	mu.Lock()
	for id, n := range got {
		if n != 1 || strings.HasPrefix(id, "stale-") {
			t.Fatalf("reply %q %d times", id, n)
		}
	}
	mu.Unlock()
	waitUntil(t, "the queue to drain and every request to be counted", func() bool {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		st := tn.n.AMQPStats().Services["chain"]
		return err == nil && q.Messages == 0 && st.Served >= live && st.Expired == stale
	})
	// Only this test calls the node over the bus: exactly the live requests
	// were served.
	if st := tn.n.AMQPStats().Services["chain"]; st.Served != live {
		t.Fatalf("served %d, want %d", st.Served, live)
	}
	waitUntil(t, "a block after the flood", func() bool { return tn.n.Chain().View().Head.Height > headBefore })
	t.Logf("%d live and %d stale requests; the broker held up to %d waiting", live, stale, backlogSeen)
}
