package p2p

import (
	"log/slog"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/emberchain/ember/internal/logsample"
)

// Gossipsub drops messages under load without a word unless a tracer is
// installed: a received message when the validation queue is full or too
// many validations run at once, an outgoing RPC when a peer's outbound
// queue is full (a slow or stalled peer), a delivered message when a
// subscription is not read fast enough. dropTracer counts each of these
// by topic and reason for Stats (ember_p2p_gossip_dropped_total) and
// warns, sampled, so an operator sees the network shed load instead of
// guessing why blocks or transactions arrive late.

// Why gossipsub dropped a message; the names are the metric's reason label.
const (
	DropValidationQueueFull = iota // received, not validated: the validation queue (1,024) was full
	DropValidationThrottled        // received, not validated: too many validations of its topic at once
	DropSendQueueFull              // not sent to a peer: its outbound queue (256 RPCs) was full (pubsub's DropRPC also covers, rarely, an oversized RPC or a peer just gone)
	DropUndeliverable              // validated, not handed to this node's subscription (read too slowly)
	numDropReasons
)

// DropReasons name the reasons, by index.
var DropReasons = [numDropReasons]string{"validation_queue_full", "validation_throttled", "send_queue_full", "undeliverable"}

// The topics drops are counted by; control holds outgoing RPCs that carried
// no message (gossipsub's control messages and subscriptions, which it
// retries), other a topic that is not this chain's.
const (
	dropTopicTx = iota
	dropTopicBlock
	dropTopicControl
	dropTopicOther
	numDropTopics
)

// GossipDrops are messages gossipsub dropped, per reason (DropReasons),
// for one topic.
type GossipDrops [numDropReasons]uint64

// Total is the drops of every reason.
func (d GossipDrops) Total() uint64 {
	var n uint64
	for _, v := range d {
		n += v
	}
	return n
}

// dropTracer is a pubsub.RawTracer that counts drops; it ignores every
// other event.
type dropTracer struct {
	txTopic, blockTopic string
	counts              [numDropTopics][numDropReasons]atomic.Uint64
	// throttledRPCs are RPCs whose messages were ignored because the
	// router throttled their sender (gossipsub's peer gater).
	throttledRPCs atomic.Uint64
	log           *slog.Logger
	warns         logsample.Sampler
}

func newDropTracer(txTopic, blockTopic string, log *slog.Logger) *dropTracer {
	return &dropTracer{txTopic: txTopic, blockTopic: blockTopic, log: log}
}

func (t *dropTracer) topicIndex(topic string) int {
	switch topic {
	case t.txTopic:
		return dropTopicTx
	case t.blockTopic:
		return dropTopicBlock
	}
	return dropTopicOther
}

// dropTopicNames name the topic indexes, for logs.
var dropTopicNames = [numDropTopics]string{"tx", "block", "control", "other"}

func (t *dropTracer) count(topic, reason int, n uint64, p peer.ID) {
	total := t.counts[topic][reason].Add(n)
	t.warns.Warn(t.log, "gossip dropped messages under load", "topic", dropTopicNames[topic], "reason", DropReasons[reason],
		"peer", p.String(), "dropped_total", total)
}

// snapshot returns the counts of the tx and block topics, and of control
// RPCs dropped on the way out.
func (t *dropTracer) snapshot() (tx, block GossipDrops, control, throttled uint64) {
	if t == nil {
		return
	}
	for r := range numDropReasons {
		tx[r] = t.counts[dropTopicTx][r].Load()
		block[r] = t.counts[dropTopicBlock][r].Load()
	}
	return tx, block, t.counts[dropTopicControl][DropSendQueueFull].Load(), t.throttledRPCs.Load()
}

func (t *dropTracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectValidationQueueFull:
		t.count(t.topicIndex(msg.GetTopic()), DropValidationQueueFull, 1, msg.ReceivedFrom)
	case pubsub.RejectValidationThrottled:
		t.count(t.topicIndex(msg.GetTopic()), DropValidationThrottled, 1, msg.ReceivedFrom)
	}
	// Rejected and ignored by the validators: gossipStats counts those.
}

func (t *dropTracer) DropRPC(rpc *pubsub.RPC, p peer.ID) {
	msgs := rpc.GetPublish()
	if len(msgs) == 0 {
		t.count(dropTopicControl, DropSendQueueFull, 1, p)
		return
	}
	var byTopic [numDropTopics]uint64
	for _, m := range msgs {
		byTopic[t.topicIndex(m.GetTopic())]++
	}
	for topic, n := range byTopic {
		if n > 0 {
			t.count(topic, DropSendQueueFull, n, p)
		}
	}
}

func (t *dropTracer) UndeliverableMessage(msg *pubsub.Message) {
	t.count(t.topicIndex(msg.GetTopic()), DropUndeliverable, 1, msg.ReceivedFrom)
}

func (t *dropTracer) ThrottlePeer(p peer.ID) {
	n := t.throttledRPCs.Add(1)
	t.warns.Warn(t.log, "gossip ignored a throttled peer's messages", "peer", p.String(), "throttled_total", n)
}

func (t *dropTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *dropTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *dropTracer) Join(string)                                          {}
func (t *dropTracer) Leave(string)                                         {}
func (t *dropTracer) Graft(peer.ID, string)                                {}
func (t *dropTracer) Prune(peer.ID, string)                                {}
func (t *dropTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *dropTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *dropTracer) DuplicateMessage(*pubsub.Message)                     {}
func (t *dropTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *dropTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *dropTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}

var _ pubsub.RawTracer = (*dropTracer)(nil)
