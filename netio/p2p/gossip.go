package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/events"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// validateTimeout bounds one gossip validation: a block's may fetch the
// transactions it lacks, then verify and apply it.
const validateTimeout = 10 * time.Second

// gossipStats count gossip outcomes, per topic.
type gossipStats struct {
	txAccepted, txRejected, txIgnored          atomic.Uint64
	blockAccepted, blockRejected, blockIgnored atomic.Uint64
	txsPublished, batchesPublished, blocksAnn  atomic.Uint64
	backlogDropped, resent                     atomic.Uint64
	rebuiltLocal, fetchedTxs, fetchedWhole     atomic.Uint64
	eventsLagged                               atomic.Uint64
}

func (s *Service) topicName(kind string) string { return TopicName(s.node.View().ChainID(), kind) }

// startGossip starts the gossipsub router, with its peer scoring fed by
// the application's error score, and joins the two topics.
func (s *Service) startGossip() error {
	txTopic, blockTopic := s.topicName(TopicTx), s.topicName(TopicBlock)
	ps, err := pubsub.NewGossipSub(s.life, s.host, s.gossipOptions(txTopic, blockTopic)...)
	if err != nil {
		return fmt.Errorf("p2p: gossip: %w", err)
	}
	s.ps = ps
	if err := ps.RegisterTopicValidator(txTopic, s.validateTxs, pubsub.WithValidatorTimeout(validateTimeout)); err != nil {
		return fmt.Errorf("p2p: gossip: %w", err)
	}
	if err := ps.RegisterTopicValidator(blockTopic, s.validateBlock, pubsub.WithValidatorTimeout(validateTimeout)); err != nil {
		return fmt.Errorf("p2p: gossip: %w", err)
	}
	if s.txTopic, err = ps.Join(txTopic); err != nil {
		return fmt.Errorf("p2p: gossip: %w", err)
	}
	if s.blockTopic, err = ps.Join(blockTopic); err != nil {
		return fmt.Errorf("p2p: gossip: %w", err)
	}
	// Subscribing is what makes the router take the topics' messages;
	// the validators do the work, so the subscriptions are only drained.
	for _, t := range []*pubsub.Topic{s.txTopic, s.blockTopic} {
		sub, err := t.Subscribe(pubsub.WithBufferSize(256))
		if err != nil {
			return fmt.Errorf("p2p: gossip: %w", err)
		}
		go func() {
			<-s.life.Done()
			sub.Cancel()
		}()
		go func() {
			for {
				if _, err := sub.Next(s.life); err != nil {
					return
				}
			}
		}()
	}
	return nil
}

// gossipOptions are the router's options for the two topics: peer scoring
// fed by the application's error score, signed messages, the queues, and
// the tracer that counts what they drop (it becomes s.drops).
func (s *Service) gossipOptions(txTopic, blockTopic string) []pubsub.Option {
	topicScore := func(w float64) *pubsub.TopicScoreParams {
		return &pubsub.TopicScoreParams{
			TopicWeight: w, TimeInMeshWeight: 0.01, TimeInMeshQuantum: time.Second, TimeInMeshCap: 300,
			FirstMessageDeliveriesWeight: 1, FirstMessageDeliveriesDecay: pubsub.ScoreParameterDecay(10 * time.Minute), FirstMessageDeliveriesCap: 50,
			InvalidMessageDeliveriesWeight: -100, InvalidMessageDeliveriesDecay: pubsub.ScoreParameterDecay(time.Hour),
		}
	}
	params := &pubsub.PeerScoreParams{
		Topics:        map[string]*pubsub.TopicScoreParams{blockTopic: topicScore(1), txTopic: topicScore(0.5)},
		TopicScoreCap: 100,
		// Gossipsub scores on its own (invalid deliveries, behaviour); the
		// application's error score counts too, a hundredth of it, so a
		// peer near the ban threshold stops getting gossip from this node.
		AppSpecificScore:  func(p peer.ID) float64 { return -s.guard.score(p) / 100 },
		AppSpecificWeight: 1,
		// Many honest devnet nodes share 127.0.0.1; gossipsub does not
		// count loopback for colocation anyway.
		IPColocationFactorWeight: -10, IPColocationFactorThreshold: 4,
		BehaviourPenaltyWeight: -1, BehaviourPenaltyThreshold: 6, BehaviourPenaltyDecay: pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval: time.Second, DecayToZero: 0.01, RetainScore: 10 * time.Minute,
	}
	s.drops = newDropTracer(txTopic, blockTopic, s.log)
	thresholds := &pubsub.PeerScoreThresholds{GossipThreshold: -500, PublishThreshold: -1000, GraylistThreshold: -2500, AcceptPXThreshold: 10, OpportunisticGraftThreshold: 1}
	return []pubsub.Option{
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerExchange(false),
		// A node's own messages go to every subscribed peer at once, not
		// only its mesh: the producer's block reaches each peer in one hop.
		pubsub.WithFloodPublish(true),
		// Static peers are direct peers: always sent every message.
		pubsub.WithDirectPeers(s.static),
		pubsub.WithMaxMessageSize(s.cfg.MaxMessageSize),
		// Message ids are gossipsub's own (author and sequence number), not
		// the content's hash: a batch gossiped again (resend.go) must not
		// be taken for the one before, which its publisher has seen.
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithPeerOutboundQueueSize(256),
		// What the two queues above (and the per-topic validation limit)
		// shed is counted and logged, not dropped silently.
		pubsub.WithRawTracer(s.drops),
	}
}

// consumeEvents turns the node's events into gossip: locally submitted
// transactions into batches, locally produced blocks into compact block
// announcements; every admitted transaction goes into the index compact
// blocks are rebuilt from.
func (s *Service) consumeEvents(ctx context.Context, sub *events.Subscription) {
	for {
		ev, err := sub.Next(ctx)
		var lag *events.LagError
		switch {
		case errors.As(err, &lag):
			// Backpressure failed (this loop stalled): what was missed
			// stays in the mempool and the store; peers get the blocks by
			// sync and the transactions when they are included.
			s.gossip.eventsLagged.Add(lag.To - lag.From + 1)
			s.log.Warn("gossip fell behind the node's events", "missed", lag.To-lag.From+1)
			continue
		case err != nil:
			return
		}
		switch ev.Kind {
		case events.TxAdmitted:
			for _, v := range ev.Txs {
				s.index.add(v.Tx())
			}
			if ev.Origin == events.Local || ev.Origin == events.Restored {
				s.enqueueTxs(ev.Txs)
			}
		case events.BlockAccepted:
			s.pending.included(ev.Block.Block.Transactions)
			if ev.Origin == events.Local {
				s.announce(ctx, ev.Block)
			}
		}
	}
}

func (s *Service) enqueueTxs(txs []*sigverify.VerifiedTx) {
	for _, v := range txs {
		select {
		case s.txq <- v:
		default:
			// The backlog is full (the node syncs for long, or gossip
			// cannot keep up): the transaction stays in this node's
			// mempool and is included when this node produces.
			s.gossip.backlogDropped.Add(1)
		}
	}
}

// txBatchLoop publishes the backlog in batches: when a batch is full or
// txBatchDelay after its first transaction. While the node syncs it holds
// the backlog (transaction gossip pauses).
func (s *Service) txBatchLoop(ctx context.Context) {
	var batch []*protocol.Transaction
	var sent []*sigverify.VerifiedTx
	size := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	recheck := time.NewTicker(100 * time.Millisecond)
	defer recheck.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		b, err := (&p2ppb.TxBatch{Transactions: batch}).MarshalVT()
		if err == nil {
			err = s.txTopic.Publish(ctx, b)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("publish transaction batch", "txs", len(batch), "err", err)
		} else if err == nil {
			s.gossip.batchesPublished.Add(1)
			s.gossip.txsPublished.Add(uint64(len(batch)))
		}
		s.pending.sent(sent, s.cfg.Now())
		batch, sent, size = batch[:0:0], sent[:0:0], 0
	}
	for {
		in := s.txq
		if s.syncing.Load() {
			in = nil // hold the backlog until caught up
		}
		select {
		case <-ctx.Done():
			return
		case v := <-in:
			tx := v.Tx()
			n := tx.SizeVT()
			if size+n > txBatchBytes {
				flush()
			}
			if len(batch) == 0 {
				timer.Reset(txBatchDelay)
			}
			batch = append(batch, tx)
			sent = append(sent, v)
			size += n
			if len(batch) >= txBatchMax {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		case <-recheck.C:
			// Re-check the sync state.
		}
	}
}

// announce gossips a block this node produced (or took over its API) as a
// compact block.
func (s *Service) announce(ctx context.Context, e *chain.BlockEntry) {
	b := e.Block
	sids := make([]byte, shortIDLen*len(b.Transactions))
	for i, tx := range b.Transactions {
		sid, _ := shortID(tx.Id)
		binary.BigEndian.PutUint64(sids[i*shortIDLen:], sid)
	}
	msg, err := (&p2ppb.CompactBlock{Header: b.Header, Signature: b.Signature, ShortIds: sids}).MarshalVT()
	if err == nil {
		err = s.blockTopic.Publish(ctx, msg)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("announce block", "height", e.Height, "err", err)
		}
		return
	}
	s.gossip.blocksAnn.Add(1)
}

// validateTxs checks a gossip batch before it is relayed: decode, form,
// chain, signatures (in the node's verifier, batched), admission to the
// mempool. Invalid transactions reject the batch and cost the sender.
func (s *Service) validateTxs(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.host.ID() {
		return pubsub.ValidationAccept
	}
	if !s.peers.ready(from) || s.syncing.Load() {
		s.gossip.txIgnored.Add(1)
		return pubsub.ValidationIgnore
	}
	var batch p2ppb.TxBatch
	if err := batch.UnmarshalVT(m.Data); err != nil || len(batch.Transactions) == 0 || len(batch.Transactions) > txBatchMax {
		s.gossip.txRejected.Add(1)
		s.penalize(from, penaltyMalformed, "malformed transaction batch", "txs", len(batch.Transactions), "err", err)
		return pubsub.ValidationReject
	}
	for _, tx := range batch.Transactions {
		if tx == nil {
			s.gossip.txRejected.Add(1)
			s.penalize(from, penaltyMalformed, "transaction batch with an empty entry")
			return pubsub.ValidationReject
		}
	}
	errs, faults := s.node.AdmitTransactions(ctx, batch.Transactions, events.Gossip, from.String())
	switch r := batchVerdict(errs, faults); r {
	case pubsub.ValidationReject:
		s.gossip.txRejected.Add(1)
		s.penalize(from, penaltyInvalidTxs, "invalid transactions", "invalid", faults, "of", len(batch.Transactions))
		return r
	case pubsub.ValidationIgnore:
		s.gossip.txIgnored.Add(1)
		return r
	}
	s.gossip.txAccepted.Add(1)
	return pubsub.ValidationAccept
}

// batchVerdict decides a transaction batch's relay from what admitting it
// said of each transaction: rejected (and its sender blamed) when any
// failed verification, relayed only when every one was verified. A batch
// the verifier had no room for (overloaded, the source over its share,
// shutting down) is neither: it is dropped unrelayed and unblamed. Relaying
// it would pass on signatures this node never checked, and a flood of
// invalid ones would then get this node banned by its peers as their
// source (seen in the e2e byzantine scenario's transaction flood).
func batchVerdict(errs []error, faults int) pubsub.ValidationResult {
	if faults > 0 {
		return pubsub.ValidationReject
	}
	for _, err := range errs {
		if err != nil && notVerified(err) {
			return pubsub.ValidationIgnore
		}
	}
	return pubsub.ValidationAccept
}

// notVerified reports whether a verifier error means the transaction was
// never checked: this node's capacity or shutdown, not its content.
func notVerified(err error) bool {
	return errors.Is(err, sigverify.ErrOverloaded) || errors.Is(err, sigverify.ErrSourceLimit) || errors.Is(err, sigverify.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// validateBlock rebuilds an announced block from the transaction index,
// fetching what is missing from the sender, then verifies and applies it;
// only an accepted block is relayed.
func (s *Service) validateBlock(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == s.host.ID() {
		return pubsub.ValidationAccept
	}
	r := s.checkBlock(ctx, from, m.Data)
	switch r {
	case pubsub.ValidationAccept:
		s.gossip.blockAccepted.Add(1)
	case pubsub.ValidationReject:
		s.gossip.blockRejected.Add(1)
	default:
		s.gossip.blockIgnored.Add(1)
	}
	return r
}

func (s *Service) checkBlock(ctx context.Context, from peer.ID, data []byte) pubsub.ValidationResult {
	if !s.peers.ready(from) {
		return pubsub.ValidationIgnore
	}
	var cb p2ppb.CompactBlock
	if err := cb.UnmarshalVT(data); err != nil || cb.Header == nil || len(cb.ShortIds)%shortIDLen != 0 ||
		len(cb.ShortIds)/shortIDLen > s.node.MaxBlockTransactions() {
		s.penalize(from, penaltyMalformed, "malformed compact block", "err", err)
		return pubsub.ValidationReject
	}
	id := koinos.BlockID(cb.Header)
	v := s.node.View()
	if cb.Header.Height <= v.LIB.Height || s.node.HasBlock(id) {
		return pubsub.ValidationIgnore
	}
	parent, ok := digestOf(cb.Header.Previous)
	if !ok {
		s.penalize(from, penaltyMalformed, "compact block with a malformed previous id")
		return pubsub.ValidationReject
	}
	if cb.Header.Height > 1 && !s.node.HasBlock(parent) {
		// A gap: sync fills it from the peers (this block included).
		s.wakeSync()
		return pubsub.ValidationIgnore
	}
	b, local, err := s.rebuild(ctx, from, id, &cb, false)
	if err != nil {
		return s.fetchFailed(from, err)
	}
	_, err = s.node.SubmitBlockFrom(ctx, b, events.Gossip, from.String())
	if verdictOf(err) == blockInvalid && local {
		// Rebuilt from this node's own transactions: a short id may have
		// matched another transaction (or another signature of the same
		// one). The block as the sender has it decides.
		s.log.Debug("rebuilt block did not verify; fetching it whole", "height", cb.Header.Height, "err", err)
		if b, _, err = s.rebuild(ctx, from, id, &cb, true); err != nil {
			return s.fetchFailed(from, err)
		}
		_, err = s.node.SubmitBlockFrom(ctx, b, events.Gossip, from.String())
	}
	switch verdictOf(err) {
	case blockAccepted:
		return pubsub.ValidationAccept
	case blockUnknownParent:
		s.wakeSync()
		return pubsub.ValidationIgnore
	case blockInvalid:
		s.penalize(from, penaltyInvalidBlock, "invalid block", "height", cb.Header.Height, "err", err)
		return pubsub.ValidationReject
	default:
		return pubsub.ValidationIgnore
	}
}

func (s *Service) fetchFailed(from peer.ID, err error) pubsub.ValidationResult {
	switch {
	case errors.Is(err, errTimeout):
		s.penalize(from, penaltyTimeout, "block fetch timed out")
	case errors.Is(err, errBadResponse), errors.Is(err, errFrameTooLarge):
		s.penalize(from, penaltyBadResponse, "bad block fetch response", "err", err)
		return pubsub.ValidationReject
	default:
		s.log.Debug("block fetch failed", "peer", from.String(), "err", err)
	}
	return pubsub.ValidationIgnore
}

// rebuild assembles an announced block: its transactions from the index,
// the missing ones fetched from the sender, or the whole block from the
// sender when it lacks most of them (or whole is set). local reports
// whether any transaction came from the index.
func (s *Service) rebuild(ctx context.Context, from peer.ID, id koinos.Digest, cb *p2ppb.CompactBlock, whole bool) (b *protocol.Block, local bool, err error) {
	n := len(cb.ShortIds) / shortIDLen
	txs := make([]*protocol.Transaction, n)
	var missing []uint32
	if !whole {
		for i := range txs {
			if txs[i] = s.index.get(binary.BigEndian.Uint64(cb.ShortIds[i*shortIDLen:])); txs[i] == nil {
				missing = append(missing, uint32(i))
			}
		}
		whole = len(missing) > n/2
	}
	if whole {
		b, err := s.fetchBlock(ctx, from, id)
		if err != nil {
			return nil, false, err
		}
		s.gossip.fetchedWhole.Add(1)
		return b, false, nil
	}
	if len(missing) > 0 {
		got, err := s.fetchTxs(ctx, from, id, missing)
		if err != nil {
			return nil, false, err
		}
		for j, i := range missing {
			want := binary.BigEndian.Uint64(cb.ShortIds[i*shortIDLen:])
			if sid, ok := shortID(got[j].GetId()); !ok || sid != want {
				return nil, false, fmt.Errorf("%w: transaction %d of block 0x%x is not the one announced", errBadResponse, i, id.Multihash())
			}
			txs[i] = got[j]
		}
		s.gossip.fetchedTxs.Add(uint64(len(missing)))
	}
	s.gossip.rebuiltLocal.Add(1)
	return &protocol.Block{Id: id.Multihash(), Header: cb.Header, Transactions: txs, Signature: cb.Signature}, n > len(missing), nil
}
