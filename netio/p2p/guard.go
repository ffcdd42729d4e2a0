package p2p

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Misbehaviour costs a peer points on a score that decays by half every
// scoreHalfLife (Koinos keeps such a score per IP with a 30-minute
// half-life). At banScore the peer is disconnected and banned for
// Config.BanDuration: by peer id, and by IP unless the IP is loopback,
// private, link-local or carrier-grade NAT (publicIP: where many honest
// nodes may share one address, as in a devnet).
// The values are chosen so that two invalid blocks (or bad responses, or
// lies) within about five minutes, four invalid transaction batches within
// about three, or twenty timed-out requests in a short while ban a peer,
// while a rare slow response never does.
const (
	banScore      = 100_000
	scoreHalfLife = 10 * time.Minute

	penaltyMalformed    = 30_000 // a message that does not decode or is not of the form asked for
	penaltyInvalidBlock = 60_000 // a block whose signatures, roots or rules fail
	penaltyInvalidTxs   = 30_000 // a gossip batch with transactions whose signatures or form fail
	penaltyBadResponse  = 60_000 // a sync or fetch response that is not what was asked for
	penaltyLie          = 60_000 // a head it cannot serve, a head or last irreversible block that went back
	penaltyTimeout      = 5_000  // a request not answered in time
)

// guard keeps the peers' error scores and the bans, and is the host's
// connection gater, so a banned peer can neither dial in nor be dialled.
type guard struct {
	banTime time.Duration
	now     func() time.Time

	mu struct {
		sync.Mutex
		scores   map[peer.ID]decaying
		peerBans map[peer.ID]time.Time
		ipBans   map[netip.Addr]time.Time
		banIP    map[peer.ID]netip.Addr // the address each peer was banned with
		banWhy   map[peer.ID]string     // why each peer was banned, for operators
		bans     uint64                 // bans ever imposed
	}
}

type decaying struct {
	value float64
	at    time.Time
}

func newGuard(banFor time.Duration, now func() time.Time) *guard {
	g := &guard{banTime: banFor, now: now}
	g.mu.scores = map[peer.ID]decaying{}
	g.mu.peerBans = map[peer.ID]time.Time{}
	g.mu.ipBans = map[netip.Addr]time.Time{}
	g.mu.banIP = map[peer.ID]netip.Addr{}
	g.mu.banWhy = map[peer.ID]string{}
	return g
}

func (d decaying) valueAt(t time.Time) float64 {
	el := t.Sub(d.at)
	if el <= 0 {
		return d.value
	}
	return d.value * math.Exp2(-float64(el)/float64(scoreHalfLife))
}

// penalize adds points to a peer's score and reports whether it crossed
// banScore, in which case the peer is banned (by id, and by ip when one is
// given and is public).
func (g *guard) penalize(p peer.ID, ip netip.Addr, points float64) (banned bool, score float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	s := g.mu.scores[p].valueAt(now) + points
	g.mu.scores[p] = decaying{value: s, at: now}
	if s < banScore {
		return false, s
	}
	g.banLocked(p, ip, now)
	delete(g.mu.scores, p)
	return true, s
}

// ban bans a peer at once (another chain, another protocol).
func (g *guard) ban(p peer.ID, ip netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.banLocked(p, ip, g.now())
}

// banFor bans a peer for d (the configured duration when d <= 0).
func (g *guard) banFor(p peer.ID, ip netip.Addr, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d <= 0 {
		d = g.banTime
	}
	g.banUntilLocked(p, ip, g.now().Add(d))
}

// unban lifts a peer's ban and the ban of the address it was banned with.
func (g *guard) unban(p peer.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.mu.peerBans, p)
	delete(g.mu.scores, p)
	delete(g.mu.banWhy, p)
	if ip, ok := g.mu.banIP[p]; ok {
		delete(g.mu.ipBans, ip)
		delete(g.mu.banIP, p)
	}
}

func (g *guard) banLocked(p peer.ID, ip netip.Addr, now time.Time) {
	g.banUntilLocked(p, ip, now.Add(g.banTime))
}

func (g *guard) banUntilLocked(p peer.ID, ip netip.Addr, until time.Time) {
	g.mu.peerBans[p] = until
	if publicIP(ip) {
		g.mu.ipBans[ip] = until
		g.mu.banIP[p] = ip
	}
	g.mu.bans++
}

// forgetBelow is the decayed score under which a peer's record is
// dropped: a thousandth of a malformed message, about 2 h after one.
const forgetBelow = penaltyMalformed / 1000

// prune drops the scores that decayed below forgetBelow and the bans and
// address bans that expired. A peer id costs nothing to make, so a
// byzantine peer that comes back under new ids would otherwise grow these
// maps for as long as the node runs; pruned, they hold the peers of the
// last few hours' misbehaviour (and the bans in force) only. The poll loop
// calls it every status round.
func (g *guard) prune() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for p, d := range g.mu.scores {
		if d.valueAt(now) < forgetBelow {
			delete(g.mu.scores, p)
		}
	}
	for p, until := range g.mu.peerBans {
		if !now.Before(until) {
			delete(g.mu.peerBans, p)
			delete(g.mu.banWhy, p)
		}
	}
	for ip, until := range g.mu.ipBans {
		if !now.Before(until) {
			delete(g.mu.ipBans, ip)
		}
	}
	for p, ip := range g.mu.banIP {
		if _, ok := g.mu.ipBans[ip]; !ok {
			delete(g.mu.banIP, p)
		}
	}
}

// tracked is how many peers the guard holds records of (scores, bans).
func (g *guard) tracked() (scores, bans int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.mu.scores), len(g.mu.peerBans)
}

// score is a peer's decayed score now.
func (g *guard) score(p peer.ID) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mu.scores[p].valueAt(g.now())
}

func (g *guard) peerBanned(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.mu.peerBans[p]
	if ok && !g.now().Before(until) {
		delete(g.mu.peerBans, p)
		return false
	}
	return ok
}

func (g *guard) ipBanned(a ma.Multiaddr) bool {
	ip, ok := ipOf(a)
	if !ok {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	until, banned := g.mu.ipBans[ip]
	if banned && !g.now().Before(until) {
		delete(g.mu.ipBans, ip)
		for p, bip := range g.mu.banIP {
			if bip == ip {
				delete(g.mu.banIP, p)
			}
		}
		return false
	}
	return banned
}

// noteWhy records why a banned peer was banned.
func (g *guard) noteWhy(p peer.ID, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.mu.peerBans[p]; ok {
		g.mu.banWhy[p] = why
	}
}

// Ban is a ban in force.
type Ban struct {
	Peer  string    `json:"peer"`
	Until time.Time `json:"until"`
	Why   string    `json:"why"`
}

// bansInForce lists the peer bans in force, by peer id.
func (g *guard) bansInForce() []Ban {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var out []Ban
	for p, until := range g.mu.peerBans {
		if now.Before(until) {
			out = append(out, Ban{Peer: p.String(), Until: until, Why: g.mu.banWhy[p]})
		}
	}
	slices.SortFunc(out, func(a, b Ban) int { return strings.Compare(a.Peer, b.Peer) })
	return out
}

// banCounts returns the bans in force and the bans ever imposed.
func (g *guard) banCounts() (active int, total uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, until := range g.mu.peerBans {
		if now.Before(until) {
			active++
		}
	}
	return active, g.mu.bans
}

// sharedNAT is RFC 6598's carrier-grade NAT range: many subscribers behind
// one address.
var sharedNAT = netip.MustParsePrefix("100.64.0.0/10")

// publicIP reports whether an address is worth banning: one that is not
// shared by many honest nodes (loopback, private, link-local, CGNAT).
func publicIP(ip netip.Addr) bool {
	return ip.IsValid() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedNAT.Contains(ip)
}

func ipOf(a ma.Multiaddr) (netip.Addr, bool) {
	if a == nil {
		return netip.Addr{}, false
	}
	nip, err := manet.ToIP(a)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(nip)
	return ip.Unmap(), ok
}

// The connection gater (connmgr.ConnectionGater).

func (g *guard) InterceptPeerDial(p peer.ID) bool { return !g.peerBanned(p) }

func (g *guard) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return !g.peerBanned(p) && !g.ipBanned(a)
}

func (g *guard) InterceptAccept(c network.ConnMultiaddrs) bool {
	return !g.ipBanned(c.RemoteMultiaddr())
}

func (g *guard) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return !g.peerBanned(p) && !g.ipBanned(c.RemoteMultiaddr())
}

func (g *guard) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
