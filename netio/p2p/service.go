package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/sigverify"
)

// The request/response protocols. Each stream carries one request and one
// response.
const (
	protoStatus protocol.ID = "/ember/status/1"
	protoSync   protocol.ID = "/ember/sync/1"
	protoFetch  protocol.ID = "/ember/fetch/1"
)

// Version is the protocol version sent in the handshake; a peer on another
// version is disconnected.
const Version = 1

// Service is the network: the libp2p host, the handshake, gossip of
// transactions and blocks, and block sync. It runs under the node's
// supervisor (Start, then Run).
type Service struct {
	cfg     Config
	node    Node
	log     *slog.Logger
	chainID []byte // multihash
	static  []peer.AddrInfo

	guard *guard
	bw    *metrics.BandwidthCounter
	index *txIndex
	peers *peerTable

	host       host.Host
	ps         *pubsub.PubSub
	txTopic    *pubsub.Topic
	blockTopic *pubsub.Topic
	// life ends when Run returns: the pubsub router and the loops run
	// under it.
	life     context.Context
	stopLife context.CancelFunc
	serve    chan struct{} // semaphore of requests being served
	// txq is the gossip backlog: locally admitted transactions waiting to
	// be batched (maxBacklog).
	txq chan *sigverify.VerifiedTx
	// pending are the locally submitted transactions gossiped and not yet
	// in a block (resend.go).
	pending unconfirmed
	// syncWake asks the sync loop to look at the peers' heads now.
	syncWake chan struct{}
	// redialNow asks the redial loop to dial the static peers now.
	redialNow chan struct{}

	// syncing: a peer's head is far enough ahead that this node is
	// catching up; transaction gossip pauses and the producer waits.
	syncing atomic.Bool
	// settled: the first status round after start is done (or timed out),
	// so the node knows whether it is behind before it produces.
	settled  atomic.Bool
	startAt  time.Time
	syncStat syncStats

	gossip gossipStats
	// drops counts what gossipsub shed under load (set by startGossip).
	drops *dropTracer
	// conflicts counts fork point answers whose chain lacks this node's
	// last irreversible block.
	conflicts atomic.Uint64
	// serveBusy counts requests answered "busy" (serving slots full).
	serveBusy atomic.Uint64
	wg        sync.WaitGroup
}

// New checks the configuration and prepares the service; Start opens the
// sockets.
func New(cfg Config, n Node) (*Service, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	static, _ := staticPeers(cfg.Peers)
	s := &Service{
		cfg: cfg, node: n, log: cfg.Logger.With("service", "p2p"), static: static,
		chainID:   n.View().ChainID().Multihash(),
		guard:     newGuard(cfg.BanDuration, cfg.Now),
		bw:        metrics.NewBandwidthCounter(),
		index:     newTxIndex(txIndexSize),
		serve:     make(chan struct{}, cfg.ServeRequests),
		txq:       make(chan *sigverify.VerifiedTx, maxBacklog),
		syncWake:  make(chan struct{}, 1),
		redialNow: make(chan struct{}, 1),
	}
	s.peers = newPeerTable()
	// With no static peer there is no one to hear from before producing.
	s.settled.Store(len(static) == 0)
	return s, nil
}

// ID is this node's peer id.
func (s *Service) ID() peer.ID {
	id, _ := peer.IDFromPrivateKey(s.cfg.Identity)
	return id
}

// Addrs are the addresses peers can dial this node at, each ending in
// /p2p/<id>; empty before Start.
func (s *Service) Addrs() []string {
	if s.host == nil {
		return nil
	}
	var out []string
	for _, a := range s.host.Addrs() {
		out = append(out, a.String()+"/p2p/"+s.host.ID().String())
	}
	return out
}

// Start opens the listeners and joins the gossip topics. The node is
// reachable when it returns.
func (s *Service) Start(context.Context) error {
	s.life, s.stopLife = context.WithCancel(context.Background())
	h, err := s.newHost()
	if err != nil {
		s.stopLife()
		return err
	}
	s.host = h
	s.startAt = s.cfg.Now()
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { s.connected(c) },
		DisconnectedF: func(_ network.Network, c network.Conn) { s.disconnected(c) },
	})
	h.SetStreamHandler(protoStatus, s.handleStatus)
	h.SetStreamHandler(protoSync, s.handleSync)
	h.SetStreamHandler(protoFetch, s.handleFetch)
	if err := s.startGossip(); err != nil {
		h.Close()
		s.stopLife()
		return err
	}
	s.log.Info("p2p listening", "peer_id", h.ID().String(), "addrs", s.Addrs())
	return nil
}

// Run serves until ctx ends: the event consumer (gossip out), the
// head poll and re-dials, and block sync. Then it closes the host.
func (s *Service) Run(ctx context.Context) error {
	defer s.stopLife()
	sub := s.node.Events().Subscribe("p2p", true)
	defer sub.Close()
	loops := []func(context.Context){
		func(ctx context.Context) { s.consumeEvents(ctx, sub) },
		s.pollLoop,
		s.redialLoop,
		s.syncLoop,
		s.txBatchLoop,
		s.resendLoop,
	}
	lctx, stop := context.WithCancel(s.life)
	for _, l := range loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			l(lctx)
		}()
	}
	<-ctx.Done()
	stop()
	s.wg.Wait()
	err := s.host.Close()
	s.log.Info("p2p stopped")
	return err
}

func (s *Service) newHost() (host.Host, error) {
	rm, err := s.resourceManager()
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(max(s.cfg.MaxPeers*3/4, 1), s.cfg.MaxPeers, connmgr.WithGracePeriod(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(s.cfg.Identity),
		libp2p.ListenAddrStrings(s.cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(s.guard),
		libp2p.BandwidthReporter(s.bw),
		libp2p.UserAgent(s.cfg.Agent),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
	}
	if s.cfg.QUIC {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	if len(s.cfg.Announce) > 0 {
		var ann []ma.Multiaddr
		for _, a := range s.cfg.Announce {
			m, _ := ma.NewMultiaddr(a) // checked by Validate
			ann = append(ann, m)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return ann }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: listen on %v: %w", s.cfg.Listen, err)
	}
	return h, nil
}

// connected starts the handshake with a new peer.
func (s *Service) connected(c network.Conn) {
	p := c.RemotePeer()
	ip, _ := ipOf(c.RemoteMultiaddr())
	if s.peers.add(p, ip) {
		// Not in s.wg: notifications may come while Run waits on it; the
		// handshake ends with the host's life.
		go s.exchangeStatus(s.life, p)
	}
}

func (s *Service) disconnected(c network.Conn) {
	p := c.RemotePeer()
	if s.host.Network().Connectedness(p) != network.Connected {
		s.peers.remove(p)
	}
}

// penalize scores a peer down for misbehaviour and, past the threshold,
// bans and disconnects it.
func (s *Service) penalize(p peer.ID, points float64, why string, args ...any) {
	ip, _ := s.peers.ip(p)
	banned, score := s.guard.penalize(p, ip, points)
	s.log.Warn("peer misbehaved", append([]any{"peer", p.String(), "why", why, "points", points, "score", int(score), "banned", banned}, args...)...)
	if banned {
		s.guard.noteWhy(p, why)
		s.disconnect(p)
	}
}

// banNow bans a peer at once (another chain, another protocol version).
// The connection closes after a moment, so that the status this node just
// sent reaches the peer and it can refuse this node in turn; the gater
// refuses anything new at once.
func (s *Service) banNow(p peer.ID, why string) {
	ip, _ := s.peers.ip(p)
	s.guard.ban(p, ip)
	s.guard.noteWhy(p, why)
	s.peers.remove(p)
	s.log.Warn("peer banned", "peer", p.String(), "why", why, "for", s.cfg.BanDuration)
	time.AfterFunc(banLinger, func() { s.disconnect(p) })
}

// banLinger is how long a connection refused at the handshake stays open.
const banLinger = 500 * time.Millisecond

func (s *Service) disconnect(p peer.ID) {
	s.peers.remove(p)
	if err := s.host.Network().ClosePeer(p); err != nil {
		s.log.Debug("close peer", "peer", p.String(), "err", err)
	}
}

// redialLoop keeps the static peers connected: every redialInterval, and
// at once when a ban is lifted.
func (s *Service) redialLoop(ctx context.Context) {
	if len(s.static) == 0 {
		return
	}
	t := time.NewTicker(redialInterval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, ai := range s.static {
			if ai.ID == s.host.ID() || s.host.Network().Connectedness(ai.ID) == network.Connected || s.guard.peerBanned(ai.ID) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Static peers are worth a dial whatever libp2p's dial
				// backoff says: they are few and chosen.
				dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "static peer"), 5*time.Second)
				defer cancel()
				if err := s.host.Connect(dctx, ai); err != nil && ctx.Err() == nil {
					s.log.Debug("dial static peer", "peer", ai.ID.String(), "err", err)
				}
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.redialNow:
		}
	}
}

// Connect dials a peer at addr (a multiaddr ending in /p2p/<id>); the
// handshake follows. Unlike p2p.peers, the peer is not re-dialled.
func (s *Service) Connect(ctx context.Context, addr string) error {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("p2p: %q must be a multiaddr ending in /p2p/<peer id>: %w", addr, err)
	}
	return s.host.Connect(ctx, *ai)
}

// Ban disconnects a peer and refuses it for d (an operator's decision, or
// a test's partition). d <= 0 uses the configured ban duration.
func (s *Service) Ban(p peer.ID, d time.Duration) {
	ip, _ := s.peers.ip(p)
	if d <= 0 {
		d = s.cfg.BanDuration
	}
	s.guard.banFor(p, ip, d)
	s.guard.noteWhy(p, "by request")
	s.log.Warn("peer banned", "peer", p.String(), "why", "by request", "for", d)
	s.disconnect(p)
}

// Bans lists the peer bans in force (the admin listener's GET /p2p/bans).
func (s *Service) Bans() []Ban { return s.guard.bansInForce() }

// Unban lifts a ban on a peer (and on its address) and re-dials the static
// peers at once.
func (s *Service) Unban(p peer.ID) {
	s.guard.unban(p)
	s.log.Info("peer unbanned", "peer", p.String())
	select {
	case s.redialNow <- struct{}{}:
	default:
	}
}

// Synced reports whether this node may produce: it has heard every static
// peer's head (or waited long enough for them) and none is far ahead.
func (s *Service) Synced() bool { return s.settled.Load() && !s.syncing.Load() }

// GossipEnabled is p2p.get_gossip_status: connected to at least one peer
// and not catching up.
func (s *Service) GossipEnabled() bool { return s.peers.count() > 0 && !s.syncing.Load() }

// reqDeadline sizes a request's timeout to what it may carry: a base for
// the round trip plus the bytes at a floor rate, so a big batch from a slow
// but honest peer completes while a stalled one is dropped.
func reqDeadline(bytes int) time.Duration {
	const base, floorRate = 3 * time.Second, 2 << 20 // bytes per second
	return base + time.Duration(float64(bytes)/floorRate*float64(time.Second))
}

// acquireServe takes a serving slot, waiting briefly when all are busy.
func (s *Service) acquireServe(ctx context.Context) bool {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case s.serve <- struct{}{}:
		return true
	case <-t.C:
		s.serveBusy.Add(1)
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *Service) releaseServe() { <-s.serve }

// maxBlockResponse bounds a response that carries one whole block.
func (s *Service) maxBlockResponse() int { return s.cfg.MaxBlockBytes + 64<<10 }

func digestOf(b []byte) (koinos.Digest, bool) {
	d, err := koinos.ParseMultihash(b)
	return d, err == nil
}

var errNotServed = errors.New("p2p: request refused: the node is busy")
