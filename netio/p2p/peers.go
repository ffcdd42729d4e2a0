package p2p

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/emberchain/ember/engine/koinos"
)

// peerStatus is what a peer last told of its chain, and until when sync
// leaves it out (its chain conflicts with this node's finality, or it did
// not serve the head it claimed: unserved rounds in a row).
type peerStatus struct {
	head       blockRef
	lib        blockRef
	at         time.Time
	avoidUntil time.Time
	unserved   int
}

// polledRefs is the head and last irreversible block a peer gave in its
// last answer to this node's poll (ok false before the first).
type polledRefs struct {
	head, lib blockRef
	ok        bool
}

type blockRef struct {
	id     koinos.Digest
	height uint64
}

// peerInfo is one connected peer.
type peerInfo struct {
	ip        netip.Addr
	status    peerStatus
	polled    polledRefs
	handshake bool // its status was received and matched this chain
}

// peerTable is the connected peers and what they said in the handshake
// and head polls.
type peerTable struct {
	mu    sync.Mutex
	peers map[peer.ID]*peerInfo
}

func newPeerTable() *peerTable { return &peerTable{peers: map[peer.ID]*peerInfo{}} }

// add records a connected peer; false if it was already known.
func (t *peerTable) add(p peer.ID, ip netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.peers[p]; ok {
		return false
	}
	t.peers[p] = &peerInfo{ip: ip}
	return true
}

func (t *peerTable) remove(p peer.ID) {
	t.mu.Lock()
	delete(t.peers, p)
	t.mu.Unlock()
}

func (t *peerTable) ip(p peer.ID) (netip.Addr, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pi, ok := t.peers[p]; ok {
		return pi.ip, true
	}
	return netip.Addr{}, false
}

// ready reports whether a peer completed the handshake.
func (t *peerTable) ready(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	pi, ok := t.peers[p]
	return ok && pi.handshake
}

// setStatus records a peer's status (polled: its answer to this node's
// poll) and returns the last polled one before it, and whether the peer
// had shaken hands before (known false if it is gone).
func (t *peerTable) setStatus(p peer.ID, st peerStatus, polled bool) (prevPolled polledRefs, had bool, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pi, ok := t.peers[p]
	if !ok {
		return polledRefs{}, false, false
	}
	prevPolled, had = pi.polled, pi.handshake
	st.avoidUntil, st.unserved = pi.status.avoidUntil, pi.status.unserved
	pi.status, pi.handshake = st, true
	if polled {
		pi.polled = polledRefs{head: st.head, lib: st.lib, ok: true}
	}
	return prevPolled, had, true
}

// avoid leaves a peer out of sync targets until t (or later, if it is
// already left out longer).
func (t *peerTable) avoid(p peer.ID, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pi, ok := t.peers[p]; ok && until.After(pi.status.avoidUntil) {
		pi.status.avoidUntil = until
	}
}

// unservedRound counts a sync round toward p that got nothing and returns
// how many there were in a row; served resets the count.
func (t *peerTable) unservedRound(p peer.ID) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	pi, ok := t.peers[p]
	if !ok {
		return 0
	}
	pi.status.unserved++
	return pi.status.unserved
}

func (t *peerTable) served(p peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pi, ok := t.peers[p]; ok {
		pi.status.unserved = 0
	}
}

// count is the number of peers that completed the handshake.
func (t *peerTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, pi := range t.peers {
		if pi.handshake {
			n++
		}
	}
	return n
}

// snapshot returns the handshaken peers and their status.
func (t *peerTable) snapshot() map[peer.ID]peerStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[peer.ID]peerStatus, len(t.peers))
	for p, pi := range t.peers {
		if pi.handshake {
			out[p] = pi.status
		}
	}
	return out
}

// resourceManager caps connections at twice MaxPeers (the connection
// manager trims back to MaxPeers) and streams of Ember's protocols per
// peer, over libp2p's scaled defaults for everything else.
func (s *Service) resourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	conns := rcmgr.LimitVal(2 * s.cfg.MaxPeers)
	perPeer := func(in, out int) rcmgr.ResourceLimits {
		return rcmgr.ResourceLimits{StreamsInbound: rcmgr.LimitVal(in), StreamsOutbound: rcmgr.LimitVal(out), Streams: rcmgr.LimitVal(in + out)}
	}
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{Conns: conns + 8, ConnsInbound: conns, ConnsOutbound: conns},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{
			protoStatus: perPeer(4, 4),
			protoSync:   perPeer(2*s.cfg.SyncPeers, 2*s.cfg.SyncPeers),
			protoFetch:  perPeer(16, 16),
		},
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(scaling.AutoScale())))
}
