package p2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/emberchain/ember/internal/syncbuf"
)

const (
	testTxTopic    = "/ember/test/tx/1"
	testBlockTopic = "/ember/test/block/1"
)

func pubsubMessage(topic string) *pubsub.Message {
	return &pubsub.Message{Message: &pb.Message{Topic: &topic}}
}

// The tracer counts each kind of drop under its topic and reason, leaves
// validators' own rejections to gossipStats, and warns.
func TestDropTracerCounts(t *testing.T) {
	logs := &syncbuf.Buffer{}
	tr := newDropTracer(testTxTopic, testBlockTopic, slog.New(slog.NewTextHandler(logs, nil)))
	from := peer.ID("peer-a")

	tr.RejectMessage(pubsubMessage(testTxTopic), pubsub.RejectValidationQueueFull)
	tr.RejectMessage(pubsubMessage(testTxTopic), pubsub.RejectValidationQueueFull)
	tr.RejectMessage(pubsubMessage(testBlockTopic), pubsub.RejectValidationThrottled)
	tr.RejectMessage(pubsubMessage(testBlockTopic), pubsub.RejectValidationFailed)    // the validator's verdict
	tr.RejectMessage(pubsubMessage(testTxTopic), pubsub.RejectValidationIgnored)      // the validator's verdict
	tr.RejectMessage(pubsubMessage("/elsewhere/1"), pubsub.RejectValidationQueueFull) // not this chain's topic
	// An RPC carrying two transaction batches and a block, one with only
	// control messages.
	tx, block := testTxTopic, testBlockTopic
	tr.DropRPC(&pubsub.RPC{RPC: pb.RPC{Publish: []*pb.Message{{Topic: &tx}, {Topic: &block}, {Topic: &tx}}}}, from)
	tr.DropRPC(&pubsub.RPC{RPC: pb.RPC{Control: &pb.ControlMessage{}}}, from)
	tr.UndeliverableMessage(pubsubMessage(testBlockTopic))
	tr.ThrottlePeer(from)
	tr.ThrottlePeer(from)

	gotTx, gotBlock, control, throttled := tr.snapshot()
	wantTx := GossipDrops{DropValidationQueueFull: 2, DropSendQueueFull: 2}
	wantBlock := GossipDrops{DropValidationThrottled: 1, DropSendQueueFull: 1, DropUndeliverable: 1}
	if gotTx != wantTx || gotBlock != wantBlock || control != 1 || throttled != 2 {
		t.Fatalf("tx %v block %v control %d throttled %d; want tx %v block %v control 1 throttled 2",
			gotTx, gotBlock, control, throttled, wantTx, wantBlock)
	}
	if gotTx.Total() != 4 {
		t.Fatalf("tx total %d, want 4", gotTx.Total())
	}
	// Sampled: the first drop is logged at once, with its reason.
	if out := logs.String(); !strings.Contains(out, "gossip dropped messages under load") || !strings.Contains(out, "reason=validation_queue_full") {
		t.Fatalf("no warning for the drops; log:\n%s", out)
	}
	var none *dropTracer // a service whose gossip never started
	if tx, block, c, th := none.snapshot(); tx.Total()+block.Total()+c+th != 0 {
		t.Fatal("a nil tracer reported drops")
	}
}

// newLoopbackHost is a libp2p host on 127.0.0.1, closed with the test.
func newLoopbackHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// gossipService is a Service with what gossipOptions needs: a router
// made with its options counts its drops in s.drops, as a node's does.
func gossipService() *Service {
	cfg := Config{}
	cfg.EnsureDefaults()
	return &Service{cfg: cfg, guard: newGuard(cfg.BanDuration, cfg.Now), log: slog.New(slog.DiscardHandler)}
}

// waitUntil polls cond until it holds, failing the test after d (a bound
// for a slow machine, not a performance limit).
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A receiver with the node's gossip options whose validation cannot keep
// up (one worker, a queue of one, a validator held back) drops what
// arrives meanwhile: the tracer counts
// each of those under the transaction topic, and every published message
// is either delivered or counted.
func TestGossipValidationQueueFullIsCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sendHost, recvHost := newLoopbackHost(t), newLoopbackHost(t)
	// The sender's outbound queue holds every message, so under load the
	// sender drops none of them itself.
	sender, err := pubsub.NewGossipSub(ctx, sendHost, pubsub.WithPeerOutboundQueueSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	// The node's own options, with the queue and workers shrunk.
	recv := gossipService()
	receiver, err := pubsub.NewGossipSub(ctx, recvHost, append(recv.gossipOptions(testTxTopic, testBlockTopic),
		pubsub.WithValidateQueueSize(1), pubsub.WithValidateWorkers(1))...)
	if err != nil {
		t.Fatal(err)
	}
	tr := recv.drops
	release := make(chan struct{})
	// Inline: the validator runs on the one worker, so while it waits
	// nothing else leaves the queue.
	err = receiver.RegisterTopicValidator(testTxTopic, func(ctx context.Context, _ peer.ID, _ *pubsub.Message) bool {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return true
	}, pubsub.WithValidatorInline(true))
	if err != nil {
		t.Fatal(err)
	}
	recvTopic, err := receiver.Join(testTxTopic)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := recvTopic.Subscribe(pubsub.WithBufferSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	sendTopic, err := sender.Join(testTxTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := sendHost.Connect(ctx, peer.AddrInfo{ID: recvHost.ID(), Addrs: recvHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the sender to see the receiver's subscription", func() bool {
		return len(sendTopic.ListPeers()) == 1
	})

	const published = 64
	for i := range published {
		if err := sendTopic.Publish(ctx, fmt.Appendf(nil, "batch %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	queueFull := func() uint64 { tx, _, _, _ := tr.snapshot(); return tx[DropValidationQueueFull] }
	// The first message holds the worker and the second the queue: about
	// 62 are dropped, however slowly they arrive.
	waitUntil(t, 30*time.Second, "most messages to be dropped as the validation queue is full", func() bool {
		return queueFull() >= published/2
	})
	close(release)
	delivered := map[string]bool{}
	for uint64(len(delivered))+queueFull() < published {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("%d delivered and %d counted dropped of %d published: %v", len(delivered), queueFull(), published, err)
		}
		delivered[string(m.Data)] = true
	}
	if tx, block, _, _ := tr.snapshot(); tx[DropValidationThrottled]+tx[DropUndeliverable]+block.Total() != 0 {
		t.Fatalf("drops counted under another reason or topic: tx %v block %v", tx, block)
	}
}

// A peer that subscribes and then never reads fills its outbound queue at
// a sender with the node's gossip options:
// what the sender cannot queue for it is counted as send_queue_full under
// the message's topic.
func TestGossipSendQueueFullIsCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sendHost, stalled := newLoopbackHost(t), newLoopbackHost(t)
	// The node's own options, with the outbound queue shrunk.
	send := gossipService()
	sender, err := pubsub.NewGossipSub(ctx, sendHost, append(send.gossipOptions(testTxTopic, testBlockTopic),
		pubsub.WithPeerOutboundQueueSize(4))...)
	if err != nil {
		t.Fatal(err)
	}
	tr := send.drops
	sendTopic, err := sender.Join(testTxTopic)
	if err != nil {
		t.Fatal(err)
	}
	// The stalled peer speaks gossipsub just enough: it takes the sender's
	// stream and never reads it (so the stream's flow-control window fills
	// and the sender's writer blocks), and announces its subscription.
	var held []network.Stream
	var heldMu sync.Mutex
	stalled.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) {
		heldMu.Lock()
		defer heldMu.Unlock()
		held = append(held, s)
	})
	if err := stalled.Connect(ctx, peer.AddrInfo{ID: sendHost.ID(), Addrs: sendHost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := stalled.NewStream(ctx, sendHost.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	subscribe, topic := true, testTxTopic
	hello, err := proto.Marshal(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: &subscribe, Topicid: &topic}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(hello))), hello...)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the sender to see the stalled peer's subscription", func() bool {
		return len(sendTopic.ListPeers()) == 1
	})

	sendQueueFull := func() uint64 { tx, _, _, _ := tr.snapshot(); return tx[DropSendQueueFull] }
	// 16 KiB messages: the stream's window (256 KiB unless the reader
	// reads) and the queue of 4 are full after some 20; the bound is far
	// above that, so the loop ends at the first drop.
	published := 0
	for ; published < 2000 && sendQueueFull() == 0; published++ {
		data := make([]byte, 16<<10) // pubsub keeps it until sent
		binary.BigEndian.PutUint32(data, uint32(published))
		if err := sendTopic.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		if published >= 64 {
			time.Sleep(time.Millisecond) // let the router's loop run
		}
	}
	waitUntil(t, 30*time.Second, "a message dropped as the stalled peer's queue is full", func() bool { return sendQueueFull() > 0 })
	t.Logf("first drop after %d messages", published)
	if _, block, _, _ := tr.snapshot(); block.Total() != 0 {
		t.Fatalf("block topic drops %v, nothing was published there", block)
	}
}
