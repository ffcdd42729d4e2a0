package byzantine

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/netio/p2p"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// claimAbove is how far above the honest heads the lying acts claim
// theirs: far beyond the lag at which a node counts itself behind and
// stops producing to catch up.
const claimAbove = 100

// actor plays one act with one identity.
type actor struct {
	id       *identity
	cfg      Config
	act      string
	stranger keys.Signer // signs its blocks and transactions: a key no one funded or scheduled
	dups     atomic.Int64
	syncN    atomic.Int64 // sync responses given
	// commons is the common block this peer named to each node in its
	// last fork point answer (under id.mu).
	commons map[peer.ID]*p2ppb.BlockRef
}

func newActor(id *identity, cfg Config, act string) *actor {
	seed := make([]byte, 32)
	_, _ = rand.Read(seed) // crypto/rand.Read never fails
	stranger := keys.Ed25519FromSeed(seed)
	a := &actor{id: id, cfg: cfg, act: act, stranger: stranger, commons: map[peer.ID]*p2ppb.BlockRef{}}
	switch act {
	case ActLoweredHead:
		// Every other answer claims a head claimAbove blocks above the
		// node's, the others fall back to the node's last irreversible
		// block: the claimed height goes up and down.
		id.lie = func(_ int, n int, theirs *p2ppb.Status) *p2ppb.Status {
			if n%2 == 0 {
				return claimHigh(theirs, id.net.g.Params().BlockIntervalMs)
			}
			st := echo(theirs)
			st.Head, st.HeadTime = theirs.LastIrreversible, 0
			return st
		}
	case ActUnservedHead:
		id.lie = func(_ int, _ int, theirs *p2ppb.Status) *p2ppb.Status {
			return claimHigh(theirs, id.net.g.Params().BlockIntervalMs)
		}
	case ActLyingSync:
		id.lie = func(_ int, _ int, theirs *p2ppb.Status) *p2ppb.Status {
			return claimHigh(theirs, id.net.g.Params().BlockIntervalMs)
		}
		id.h.SetStreamHandler(p2p.ProtocolSync, a.handleLyingSync)
	}
	return a
}

// claimHigh is the node's status with a head claimAbove blocks higher,
// with an id no one has.
func claimHigh(theirs *p2ppb.Status, intervalMs uint64) *p2ppb.Status {
	st := echo(theirs)
	h := theirs.GetHead().GetHeight() + claimAbove
	st.Head = &p2ppb.BlockRef{Id: koinos.Sum256(fmt.Appendf(nil, "byzantine head %d", h)).Multihash(), Height: h}
	st.HeadTime = theirs.HeadTime + claimAbove*intervalMs
	return st
}

func (a *actor) play(ctx context.Context) error {
	if err := a.id.connect(ctx, 10*time.Second); err != nil {
		return err
	}
	switch a.act {
	case ActBadSignature, ActBadMerkle, ActWrongParent:
		return a.sendBlocks(ctx)
	case ActTxFlood:
		return a.floodTxs(ctx)
	case ActLoweredHead, ActUnservedHead, ActLyingSync:
		return a.lie(ctx)
	}
	return fmt.Errorf("byzantine: unknown act %q", a.act)
}

// dropped reports whether every honest node has closed this peer's
// connections.
func (a *actor) dropped() bool { return len(a.id.droppedBy()) == len(a.id.net.peers) }

// join joins a gossip topic and waits until an honest node is seen
// subscribed to it.
func (a *actor) join(ctx context.Context, kind string) (*pubsub.Topic, error) {
	tp, err := a.id.ps.Join(p2p.TopicName(a.id.net.g.ChainID(), kind))
	if err != nil {
		return nil, err
	}
	for len(tp.ListPeers()) < len(a.id.net.peers) {
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			if len(tp.ListPeers()) > 0 {
				return tp, nil
			}
			return nil, fmt.Errorf("byzantine: no honest node subscribed to %s: %w", kind, err)
		}
	}
	return tp, nil
}

// sendBlocks gossips an invalid block on the best head heard every
// blockEvery, until every node dropped this peer.
func (a *actor) sendBlocks(ctx context.Context) error {
	tp, err := a.join(ctx, p2p.TopicBlock)
	if err != nil {
		return err
	}
	const blockEvery = 300 * time.Millisecond
	for i := 0; !a.dropped(); i++ {
		st := a.id.best()
		b, err := a.forge(st, uint64(i))
		if err != nil {
			return err
		}
		msg, _ := (&p2ppb.CompactBlock{Header: b.Header, Signature: b.Signature}).MarshalVT()
		if err := tp.Publish(ctx, msg); err != nil {
			return err
		}
		a.id.sent.Add(1)
		if err := sleep(ctx, blockEvery); err != nil {
			return err
		}
	}
	return nil
}

// forge builds the act's invalid block on head st, the i-th one.
func (a *actor) forge(st *p2ppb.Status, i uint64) (*protocol.Block, error) {
	g := a.id.net.g.Params()
	head, err := koinos.ParseMultihash(st.GetHead().GetId())
	if err != nil {
		return nil, fmt.Errorf("byzantine: the honest head's id: %w", err)
	}
	slot := (st.HeadTime-g.GenesisTimeMs)/g.BlockIntervalMs + 1 + i%4
	producers := a.id.net.g.Producers()
	h := &protocol.BlockHeader{
		Previous: head.Multihash(), Height: st.Head.Height + 1, Timestamp: g.GenesisTimeMs + slot*g.BlockIntervalMs,
		PreviousStateMerkleRoot: koinos.Sum256(fmt.Appendf(nil, "byzantine state %d", i)).Multihash(),
		TransactionMerkleRoot:   sigverify.TransactionMerkleRoot(nil).Multihash(),
		Signer:                  a.stranger.Address().Bytes(),
	}
	switch a.act {
	case ActBadSignature:
		// Claims the slot's producer, signed by another key.
		h.Signer = producers[slot%uint64(len(producers))].Bytes()
	case ActBadMerkle:
		h.TransactionMerkleRoot = koinos.Sum256(fmt.Appendf(nil, "not these transactions %d", i)).Multihash()
	case ActWrongParent:
		h.Height = st.Head.Height + 3 + i%5
	}
	id := koinos.BlockID(h)
	return &protocol.Block{Id: id.Multihash(), Header: h, Signature: a.stranger.Sign(id)}, nil
}

// floodTxs first gossips every honest transaction batch it hears again
// Duplicates times for FloodFor (valid, already known: they must cost the
// nodes little and never be included twice), then floods batches of
// transactions with invalid signatures as fast as it can until every node
// dropped it.
func (a *actor) floodTxs(ctx context.Context) error {
	tp, err := a.join(ctx, p2p.TopicTx)
	if err != nil {
		return err
	}
	sub, err := tp.Subscribe(pubsub.WithBufferSize(1024))
	if err != nil {
		return err
	}
	defer sub.Cancel()
	dupCtx, stop := context.WithTimeout(ctx, a.cfg.FloodFor)
	for {
		m, err := sub.Next(dupCtx)
		if err != nil {
			break
		}
		if m.ReceivedFrom == a.id.h.ID() {
			continue
		}
		for range a.cfg.Duplicates {
			if err := tp.Publish(dupCtx, m.Data); err != nil {
				break
			}
			a.dups.Add(1)
		}
	}
	stop()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	a.id.log.Info("byzantine: duplicates sent; now transactions with invalid signatures", "duplicates", a.dups.Load())
	g := a.id.net.g
	const perBatch = 200
	to := keys.Ed25519FromSeed(koinos.Sum256([]byte("byzantine recipient")).Multihash()[2:]).Address()
	nonce := uint64(0)
	for !a.dropped() {
		batch := &p2ppb.TxBatch{}
		for range perBatch {
			nonce++
			tx, err := txbuilder.Transfer(a.stranger, g.TokenID(), to, 1, txbuilder.Header{ChainID: g.ChainID().Multihash(), Nonce: nonce, RcLimit: 1_000_000})
			if err != nil {
				return err
			}
			tx.Signatures[0][7] ^= 0x5a // valid-looking, invalid
			batch.Transactions = append(batch.Transactions, tx)
		}
		msg, _ := batch.MarshalVT()
		if err := tp.Publish(ctx, msg); err != nil {
			return err
		}
		a.id.sent.Add(1)
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// lie waits while the nodes poll this peer's (lying) status every two
// seconds and sync toward its claimed head, until every node dropped it.
func (a *actor) lie(ctx context.Context) error {
	for !a.dropped() {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// handleLyingSync answers fork point requests plausibly (the locator's
// last entry, the node's last irreversible block, as the common block;
// the claimed head) and blocks requests with lies: every other response
// blocks at the wrong heights, the others a chain that links from the
// request's start but whose blocks do not verify (signed by a stranger,
// on a made-up state).
func (a *actor) handleLyingSync(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := p2p.ReadFrame(bufio.NewReader(s), 64<<10)
	if err != nil {
		s.Reset()
		return
	}
	var req p2ppb.SyncRequest
	if err := req.UnmarshalVT(b); err != nil {
		s.Reset()
		return
	}
	p := s.Conn().RemotePeer()
	var resp *p2ppb.SyncResponse
	switch {
	case req.GetForkPoint() != nil:
		loc := req.GetForkPoint().GetLocator()
		theirs := a.id.latest(a.id.net.nodeOf(p))
		if len(loc) == 0 || theirs == nil {
			resp = &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: "no locator"}}
			break
		}
		common := loc[len(loc)-1]
		a.id.mu.Lock()
		a.commons[p] = common
		a.id.mu.Unlock()
		resp = &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_ForkPoint{ForkPoint: &p2ppb.ForkPointResponse{
			Common: common, Head: claimHigh(theirs, a.id.net.g.Params().BlockIntervalMs).Head}}}
	case req.GetBlocks() != nil:
		r := req.GetBlocks()
		a.id.mu.Lock()
		common := a.commons[p]
		a.id.mu.Unlock()
		n := a.syncN.Add(1)
		count := min(int(r.Count), 8)
		var blocks []*protocol.Block
		if n%2 == 1 || common == nil || common.Height+1 != r.FromHeight {
			for i := range count {
				blocks = append(blocks, &protocol.Block{Header: &protocol.BlockHeader{Height: r.FromHeight + 2 + uint64(i)}})
			}
		} else {
			blocks = a.chainOn(common, count)
		}
		resp = &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Blocks{Blocks: &p2ppb.BlocksResponse{Blocks: blocks}}}
		a.id.sent.Add(1)
	default:
		s.Reset()
		return
	}
	out, _ := resp.MarshalVT()
	_ = p2p.WriteFrame(s, p2p.PackBody(out))
}

// chainOn builds count linked blocks on the block common: well formed,
// signed by the stranger, in consecutive slots after it; no node can apply
// them (not scheduled, a made-up state root).
func (a *actor) chainOn(common *p2ppb.BlockRef, count int) []*protocol.Block {
	g := a.id.net.g.Params()
	prev := common.Id
	// From the slot after now's: after every block of the real chain, and
	// not so far ahead that they are only "from the future".
	slot := (uint64(time.Now().UnixMilli())-g.GenesisTimeMs)/g.BlockIntervalMs + 1
	var out []*protocol.Block
	for i := range count {
		h := &protocol.BlockHeader{
			Previous: prev, Height: common.Height + 1 + uint64(i), Timestamp: g.GenesisTimeMs + (slot+uint64(i))*g.BlockIntervalMs,
			PreviousStateMerkleRoot: koinos.Sum256([]byte("byzantine state")).Multihash(),
			TransactionMerkleRoot:   sigverify.TransactionMerkleRoot(nil).Multihash(),
			Signer:                  a.stranger.Address().Bytes(),
		}
		id := koinos.BlockID(h)
		out = append(out, &protocol.Block{Id: id.Multihash(), Header: h, Signature: a.stranger.Sign(id)})
		prev = id.Multihash()
	}
	return out
}
