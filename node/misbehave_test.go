package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// forgeBlock builds and signs an empty block by key on parent at slot.
func forgeBlock(c *cluster, key keys.Signer, parent koinos.Digest, height uint64, stateRoot koinos.Digest, slot uint64) *protocol.Block {
	h := &protocol.BlockHeader{
		Previous: parent.Multihash(), Height: height, Timestamp: c.g.Params().GenesisTimeMs + slot*c.g.Params().BlockIntervalMs,
		PreviousStateMerkleRoot: stateRoot.Multihash(), TransactionMerkleRoot: sigverify.TransactionMerkleRoot(nil).Multihash(),
		Signer: key.Address().Bytes(),
	}
	id := koinos.BlockID(h)
	return &protocol.Block{Id: id.Multihash(), Header: h, Signature: key.Sign(id)}
}

// A producer that signs two blocks at one height loses fork choice on
// every honest node: both blocks reach everyone, and no head chain keeps
// either.
func TestDoubleProducerLoses(t *testing.T) {
	c := newCluster(t, 4, 0, 200*time.Millisecond)
	for i := 0; i < 3; i++ { // producer 3 is the test's, and it cheats
		c.add(i)
	}
	waitFor(t, 30*time.Second, "irreversibility with three of four", func() bool { return c.minLIB() >= 3 })
	v := c.nodes[0].n.Chain().View()
	cheat := c.producers[3]
	interval := c.g.Params().BlockIntervalMs
	s := (v.HeadTime-c.g.Params().GenesisTimeMs)/interval + 1
	for c.nodes[0].n.Chain().ScheduledProducer(s) != cheat.Address() {
		s++
	}
	a := forgeBlock(c, cheat, v.Head.ID, v.Head.Height+1, v.HeadStateRoot, s)
	b := forgeBlock(c, cheat, v.Head.ID, v.Head.Height+1, v.HeadStateRoot, s+4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.nodes[0].n.SubmitBlock(ctx, a); err != nil {
		t.Fatalf("first block: %v", err)
	}
	if _, err := c.nodes[1].n.SubmitBlock(ctx, b); err != nil {
		t.Fatalf("second block: %v", err)
	}
	ida, _ := koinos.ParseMultihash(a.Id)
	idb, _ := koinos.ParseMultihash(b.Id)
	waitFor(t, 20*time.Second, "both blocks on every node, neither on a head chain", func() bool {
		for _, m := range c.nodes {
			ha, _ := m.n.Store().HasBlock(ida)
			hb, _ := m.n.Store().HasBlock(idb)
			if !ha || !hb {
				return false
			}
			head := m.n.Chain().View().Head
			if head.Height < v.Head.Height+3 {
				return false
			}
			at, err := m.n.Store().BlockIDAt(head.ID, v.Head.Height+1)
			if err != nil || at == ida || at == idb {
				return false
			}
		}
		return true
	})
	if _, ok := c.sameChain(v.Head.Height + 1); !ok {
		t.Fatal("the honest nodes disagree after the double production")
	}
}

// evilPeer is a libp2p host that speaks Ember's protocols badly.
type evilPeer struct {
	t      *testing.T
	h      host.Host
	ps     *pubsub.PubSub
	status func() *p2ppb.Status // what it answers and sends
	topics map[string]*pubsub.Topic
}

func newEvilPeer(t *testing.T, status func() *p2ppb.Status) *evilPeer {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New), libp2p.Muxer(yamux.ID, yamux.DefaultTransport), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	e := &evilPeer{t: t, h: h, status: status, topics: map[string]*pubsub.Topic{}}
	h.SetStreamHandler("/ember/status/1", func(s network.Stream) {
		defer s.Close()
		r := bufio.NewReader(s)
		if _, err := readTestFrame(r); err != nil {
			return
		}
		b, _ := e.status().MarshalVT()
		writeTestFrame(s, b)
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); h.Close() })
	e.ps, err = pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readTestFrame(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 1<<20 {
		return nil, fmt.Errorf("bad frame: %v", err)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

func writeTestFrame(w io.Writer, b []byte) {
	w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	w.Write(b)
}

func (e *evilPeer) connect(m *member) {
	e.t.Helper()
	ai, err := peer.AddrInfoFromString(m.n.Network().Addrs()[0])
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.h.Connect(ctx, *ai); err != nil {
		e.t.Fatal(err)
	}
}

func (e *evilPeer) publish(topic string, msg []byte) {
	e.t.Helper()
	tp := e.topics[topic]
	if tp == nil {
		var err error
		if tp, err = e.ps.Join(topic); err != nil {
			e.t.Fatal(err)
		}
		e.topics[topic] = tp
	}
	// Flood publishing reaches every peer known to be subscribed.
	waitFor(e.t, 5*time.Second, "a subscribed peer", func() bool { return len(tp.ListPeers()) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Publish(ctx, msg); err != nil {
		e.t.Fatal(err)
	}
}

// banned reports whether m banned the evil peer (and dropped it).
func (e *evilPeer) banned(m *member) bool {
	return m.n.Network().Stats().BansEver > 0 && e.h.Network().Connectedness(m.n.Network().ID()) != network.Connected
}

func honestStatus(m *member) func() *p2ppb.Status {
	return func() *p2ppb.Status {
		v := m.n.Chain().View()
		return &p2ppb.Status{Version: 1, ChainId: v.ChainID().Multihash(), Head: &p2ppb.BlockRef{Id: v.Head.ID.Multihash(), Height: v.Head.Height},
			HeadTime: v.HeadTime, LastIrreversible: &p2ppb.BlockRef{Id: v.LIB.ID.Multihash(), Height: v.LIB.Height}, Agent: "evil"}
	}
}

func topicOf(m *member, kind string) string {
	d := m.n.Chain().View().ChainID()
	return fmt.Sprintf("/ember/%x/%s/1", d[:8], kind)
}

// Peers that gossip invalid transactions or blocks, lie about their head
// or lower it are banned, while the honest peers go on; a peer of another
// chain is refused at the handshake.
func TestMisbehavingPeersAreBanned(t *testing.T) {
	c := newCluster(t, 1, 2, 100*time.Millisecond)
	prod := c.add(0)
	follower := c.add(-1)
	waitFor(t, 20*time.Second, "a few blocks", func() bool { return follower.head() >= 5 })
	to := keys.Ed25519FromSeed(seed("recipient")).Address()

	t.Run("invalid transactions", func(t *testing.T) {
		e := newEvilPeer(t, honestStatus(prod))
		e.connect(prod)
		bad := c.transfer(0, to, 1, 1)
		bad.Signatures[0][10] ^= 0xff
		waitFor(t, 10*time.Second, "the handshake", func() bool { return prod.n.Network().Stats().Peers >= 2 })
		for i := 0; i < 8 && !e.banned(prod); i++ {
			bad.Signatures[0][11] = byte(i) // a new message each time
			msg, _ := (&p2ppb.TxBatch{Transactions: []*protocol.Transaction{bad}}).MarshalVT()
			e.publish(topicOf(prod, "tx"), msg)
			time.Sleep(100 * time.Millisecond)
		}
		waitFor(t, 10*time.Second, "the ban", func() bool { return e.banned(prod) })
	})

	t.Run("invalid blocks", func(t *testing.T) {
		e := newEvilPeer(t, honestStatus(follower))
		e.connect(follower)
		waitFor(t, 10*time.Second, "the handshake", func() bool { return follower.n.Network().Stats().Peers >= 2 })
		stranger := keys.Ed25519FromSeed(seed("stranger"))
		for i := 0; i < 8 && !e.banned(follower); i++ {
			v := follower.n.Chain().View()
			slot := (v.HeadTime-c.g.Params().GenesisTimeMs)/c.g.Params().BlockIntervalMs + 1 + uint64(i)
			b := forgeBlock(c, stranger, v.Head.ID, v.Head.Height+1, v.HeadStateRoot, slot)
			msg, _ := (&p2ppb.CompactBlock{Header: b.Header, Signature: b.Signature}).MarshalVT()
			e.publish(topicOf(follower, "block"), msg)
			time.Sleep(100 * time.Millisecond)
		}
		waitFor(t, 10*time.Second, "the ban", func() bool { return e.banned(follower) })
	})

	t.Run("lowered irreversible block", func(t *testing.T) {
		var calls atomic.Int32
		e := newEvilPeer(t, func() *p2ppb.Status {
			st := honestStatus(prod)()
			if calls.Add(1)%2 == 0 { // every other answer claims an older one
				st.LastIrreversible = &p2ppb.BlockRef{Height: 0}
			}
			return st
		})
		e.connect(prod)
		waitFor(t, 20*time.Second, "the ban", func() bool { return e.banned(prod) })
	})

	t.Run("lowered head", func(t *testing.T) {
		var calls atomic.Int32
		e := newEvilPeer(t, func() *p2ppb.Status {
			st := honestStatus(prod)()
			if calls.Add(1)%2 == 0 { // every other answer falls back to block 1
				st.Head = &p2ppb.BlockRef{Id: koinos.Sum256([]byte("older")).Multihash(), Height: 1}
				st.LastIrreversible = st.Head
			}
			return st
		})
		e.connect(prod)
		waitFor(t, 20*time.Second, "the ban", func() bool { return e.banned(prod) })
	})

	t.Run("a head it cannot serve", func(t *testing.T) {
		e := newEvilPeer(t, func() *p2ppb.Status {
			st := honestStatus(follower)()
			st.Head = &p2ppb.BlockRef{Id: koinos.Sum256([]byte("nowhere")).Multihash(), Height: st.Head.Height + 50}
			return st
		})
		// It answers the fork point honestly (genesis) and then has no
		// blocks for the head it claimed.
		e.h.SetStreamHandler("/ember/sync/1", func(s network.Stream) {
			defer s.Close()
			b, err := readTestFrame(bufio.NewReader(s))
			if err != nil {
				return
			}
			var req p2ppb.SyncRequest
			req.UnmarshalVT(b)
			var resp *p2ppb.SyncResponse
			if req.GetForkPoint() != nil {
				resp = &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_ForkPoint{ForkPoint: &p2ppb.ForkPointResponse{
					Common: &p2ppb.BlockRef{Height: 0}, Head: e.status().Head}}}
			} else {
				resp = &p2ppb.SyncResponse{Response: &p2ppb.SyncResponse_Error{Error: "unknown head"}}
			}
			out, _ := resp.MarshalVT()
			writeTestFrame(s, append([]byte{0}, out...))
		})
		e.connect(follower)
		waitFor(t, 20*time.Second, "the ban", func() bool { return e.banned(follower) })
	})

	// CometBFT's blocksync stalled on a peer that claimed a height it
	// never served. This one claims a head far above and speaks no sync
	// protocol at all: the producer must not wait on it (it would count
	// itself behind and skip its slots for as long as the peer stayed),
	// and the peer is banned for the claim.
	t.Run("a head it never serves", func(t *testing.T) {
		e := newEvilPeer(t, func() *p2ppb.Status {
			st := honestStatus(prod)()
			st.Head = &p2ppb.BlockRef{Id: koinos.Sum256([]byte("unserved")).Multihash(), Height: st.Head.Height + 100}
			return st
		})
		from := prod.head()
		e.connect(prod)
		waitFor(t, 30*time.Second, "the ban", func() bool { return e.banned(prod) })
		waitFor(t, 10*time.Second, "production past the lie", func() bool { return prod.head() > from+3 })
	})

	t.Run("another chain", func(t *testing.T) {
		other := newCluster(t, 1, 0, 100*time.Millisecond)
		stranger := other.add(0)
		bans := prod.n.Network().Stats().BansEver
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The node dials it as an operator's mistake would.
		_ = prod.n.Network().Connect(ctx, stranger.n.Network().Addrs()[0])
		waitFor(t, 10*time.Second, "the handshake refusal", func() bool { return prod.n.Network().Stats().BansEver > bans })
		if prod.n.Network().Stats().Peers != 1 {
			t.Fatalf("peers %d: the stranger was kept", prod.n.Network().Stats().Peers)
		}
	})

	// The honest pair went on: the follower keeps up and a transaction
	// submitted to it is included by the producer.
	tx := c.transfer(1, to, 5, 1)
	if err := follower.submit(tx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "an honest transaction through the follower", func() bool { return prod.included(tx.Id) > 0 })
	top := prod.head()
	waitFor(t, 10*time.Second, "the follower to keep up with the producer", func() bool {
		return follower.n.Network().Stats().Peers >= 1 && follower.head() >= top
	})
}
