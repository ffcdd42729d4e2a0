package byzantine

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/emberchain/ember/netio/p2p"
	p2ppb "github.com/emberchain/ember/proto/ember/p2p"
)

// identity is one of the byzantine process's peers: a libp2p host with a
// fresh key, connected to every honest node, speaking Ember's protocols
// through netio/p2p's wire functions, and misbehaving as its act says.
type identity struct {
	net *devnet
	log *slog.Logger
	h   host.Host
	ps  *pubsub.PubSub

	// lie turns the status an honest node sent into the one this peer
	// answers with (its n-th answer to that node, from 0); nil echoes it
	// with an honest head.
	lie func(node int, n int, theirs *p2ppb.Status) *p2ppb.Status

	mu      sync.Mutex
	heard   map[peer.ID]*p2ppb.Status // the latest status each honest node sent
	answers map[peer.ID]int
	sent    atomic.Int64 // misbehaving messages sent
}

func newIdentity(ctx context.Context, net *devnet, log *slog.Logger) (*identity, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport), libp2p.Security(noise.ID, noise.New), libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent("ember-e2e-byzantine"), libp2p.DisableRelay(), libp2p.DisableMetrics(), libp2p.Ping(false))
	if err != nil {
		return nil, fmt.Errorf("byzantine: libp2p host: %w", err)
	}
	id := &identity{net: net, log: log.With("peer", h.ID().String()), h: h, heard: map[peer.ID]*p2ppb.Status{}, answers: map[peer.ID]int{}}
	// Flood publishing reaches every subscribed honest node directly, so
	// each one judges every message itself.
	id.ps, err = pubsub.NewGossipSub(ctx, h, pubsub.WithFloodPublish(true), pubsub.WithMaxMessageSize(4<<20), pubsub.WithPeerOutboundQueueSize(4096))
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("byzantine: gossipsub: %w", err)
	}
	h.SetStreamHandler(p2p.ProtocolStatus, id.handleStatus)
	return id, nil
}

// handleStatus answers an honest node's status (its handshake and head
// polls) with this peer's, lying as the act says.
func (id *identity) handleStatus(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := p2p.ReadFrame(bufio.NewReader(s), p2p.MaxStatusBytes)
	if err != nil {
		s.Reset()
		return
	}
	var theirs p2ppb.Status
	if err := theirs.UnmarshalVT(b); err != nil {
		s.Reset()
		return
	}
	p := s.Conn().RemotePeer()
	id.mu.Lock()
	id.heard[p] = &theirs
	n := id.answers[p]
	id.answers[p]++
	id.mu.Unlock()
	ours := echo(&theirs)
	if id.lie != nil {
		ours = id.lie(id.net.nodeOf(p), n, &theirs)
		id.sent.Add(1)
	}
	out, _ := ours.MarshalVT()
	_ = p2p.WriteFrame(s, out)
}

// echo is an honest status: the honest node's own chain, as if this peer
// were exactly as far as it.
func echo(theirs *p2ppb.Status) *p2ppb.Status {
	return &p2ppb.Status{Version: theirs.Version, ChainId: theirs.ChainId, Head: theirs.Head, HeadTime: theirs.HeadTime,
		LastIrreversible: theirs.LastIrreversible, Agent: "ember-e2e-byzantine"}
}

// connect dials every honest node and waits (at most wait) until each
// has shaken hands (sent this peer its status).
func (id *identity) connect(ctx context.Context, wait time.Duration) error {
	for i, ai := range id.net.peers {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := id.h.Connect(cctx, ai)
		cancel()
		if err != nil {
			return fmt.Errorf("byzantine: dial node%d: %w", i, err)
		}
	}
	deadline := time.Now().Add(wait)
	for {
		id.mu.Lock()
		n := len(id.heard)
		id.mu.Unlock()
		if n == len(id.net.peers) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("byzantine: %d of %d nodes shook hands within %s", n, len(id.net.peers), wait)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// latest is the most recent status heard from node i (nil before its
// handshake).
func (id *identity) latest(i int) *p2ppb.Status {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.heard[id.net.peers[i].ID]
}

// best is the highest head heard from any honest node.
func (id *identity) best() *p2ppb.Status {
	id.mu.Lock()
	defer id.mu.Unlock()
	var out *p2ppb.Status
	for _, st := range id.heard {
		if out == nil || st.GetHead().GetHeight() > out.GetHead().GetHeight() {
			out = st
		}
	}
	return out
}

// droppedBy lists the honest nodes this peer is no longer connected to.
func (id *identity) droppedBy() []int {
	var out []int
	for i, ai := range id.net.peers {
		if id.h.Network().Connectedness(ai.ID) != network.Connected {
			out = append(out, i)
		}
	}
	return out
}

// refusedBy lists the honest nodes that refuse a new connection from this
// peer (a dial fails: the connection gater of a node that banned it).
func (id *identity) refusedBy(ctx context.Context) []int {
	var out []int
	for i, ai := range id.net.peers {
		if id.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		cctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "is it banned"), 3*time.Second)
		err := id.h.Connect(cctx, ai)
		cancel()
		if err != nil {
			out = append(out, i)
			continue
		}
		// Accepted at first: a node's gater may refuse only after the
		// security handshake, and the node closes it at once.
		_ = sleep(ctx, 300*time.Millisecond)
		if id.h.Network().Connectedness(ai.ID) != network.Connected {
			out = append(out, i)
		}
	}
	return out
}

func (id *identity) close() { id.h.Close() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
