package p2p

import (
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testPeer returns the peer id of a fresh identity key.
func testPeer(t testing.TB) peer.ID {
	t.Helper()
	k, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	id, err := PeerID(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testConn is the network.ConnMultiaddrs of a connection from remote.
type testConn struct{ local, remote ma.Multiaddr }

func (c testConn) LocalMultiaddr() ma.Multiaddr  { return c.local }
func (c testConn) RemoteMultiaddr() ma.Multiaddr { return c.remote }

func connFrom(t testing.TB, remote string) testConn {
	t.Helper()
	r, err := ma.NewMultiaddr(remote)
	if err != nil {
		t.Fatal(err)
	}
	return testConn{local: ma.StringCast("/ip4/127.0.0.1/tcp/8888"), remote: r}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestGuardScoreDecays(t *testing.T) {
	clk := newTestClock()
	g := newGuard(time.Hour, clk.now)
	p, q := testPeer(t), testPeer(t)

	steps := []struct {
		advance   time.Duration
		points    float64
		wantScore float64 // after the step
		wantBan   bool
	}{
		{0, penaltyBadResponse, 60_000, false},
		{scoreHalfLife, 0, 30_000, false}, // halved after one half-life
		{0, penaltyInvalidTxs, 60_000, false},
		{2 * scoreHalfLife, penaltyTimeout, 20_000, false}, // 60,000/4 + 5,000
		{0, penaltyMalformed, 50_000, false},
		{0, penaltyTimeout, 55_000, false},
		{0, 40_000, 95_000, false},
		{0, 5_000, 100_000, true}, // banScore exactly bans
	}
	for i, st := range steps {
		clk.advance(st.advance)
		banned, score := g.penalize(p, netip.Addr{}, st.points)
		if banned != st.wantBan || !near(score, st.wantScore) {
			t.Fatalf("step %d: penalize = banned %v, score %.1f; want %v, %.1f", i, banned, score, st.wantBan, st.wantScore)
		}
		if !banned && !near(g.score(p), st.wantScore) {
			t.Fatalf("step %d: score = %.1f, want %.1f", i, g.score(p), st.wantScore)
		}
	}
	if !g.peerBanned(p) {
		t.Fatal("a peer at banScore is not banned")
	}
	if g.score(p) != 0 {
		t.Fatalf("a banned peer's score = %v, want it reset to 0", g.score(p))
	}
	if g.score(q) != 0 || g.peerBanned(q) {
		t.Fatal("another peer was scored or banned")
	}

	// Many small penalties spread out never ban: a timeout every 10
	// minutes settles near 10,000.
	for range 100 {
		clk.advance(scoreHalfLife)
		if banned, _ := g.penalize(q, netip.Addr{}, penaltyTimeout); banned {
			t.Fatal("a timeout every half-life banned a peer")
		}
	}
	if s := g.score(q); s < 9_000 || s > 10_000 {
		t.Fatalf("steady score of a timeout per half-life = %.0f, want about 10,000", s)
	}
	// The clock going back does not raise a score.
	before := g.score(q)
	clk.advance(-time.Hour)
	if s := g.score(q); s != before {
		t.Fatalf("score after the clock went back = %v, want %v", s, before)
	}
}

func TestGuardBanExpires(t *testing.T) {
	clk := newTestClock()
	const banFor = 30 * time.Minute
	g := newGuard(banFor, clk.now)
	p := testPeer(t)
	ip := netip.MustParseAddr("8.8.8.8")
	if banned, _ := g.penalize(p, ip, 2*penaltyInvalidBlock); !banned {
		t.Fatal("two invalid blocks did not ban")
	}
	from := ma.StringCast("/ip4/8.8.8.8/tcp/4001")
	if !g.peerBanned(p) || !g.ipBanned(from) {
		t.Fatalf("banned: peer %v, ip %v; want both", g.peerBanned(p), g.ipBanned(from))
	}
	if active, total := g.banCounts(); active != 1 || total != 1 {
		t.Fatalf("banCounts = %d, %d; want 1, 1", active, total)
	}
	clk.advance(banFor - time.Nanosecond)
	if !g.peerBanned(p) || !g.ipBanned(from) {
		t.Fatal("the ban ended early")
	}
	clk.advance(time.Nanosecond)
	if g.peerBanned(p) || g.ipBanned(from) {
		t.Fatalf("after banFor: peer banned %v, ip banned %v; want neither", g.peerBanned(p), g.ipBanned(from))
	}
	if active, total := g.banCounts(); active != 0 || total != 1 {
		t.Fatalf("banCounts = %d, %d; want 0, 1", active, total)
	}

	// banFor: a duration of its own, or the configured one.
	q := testPeer(t)
	g.banFor(q, netip.Addr{}, time.Minute)
	clk.advance(time.Minute)
	if g.peerBanned(q) {
		t.Fatal("a one-minute ban lasted longer")
	}
	g.banFor(q, netip.Addr{}, 0)
	clk.advance(banFor - time.Second)
	if !g.peerBanned(q) {
		t.Fatal("banFor(0) did not use the configured duration")
	}
	// ban: at once, for the configured duration.
	r := testPeer(t)
	g.ban(r, netip.Addr{})
	if !g.peerBanned(r) {
		t.Fatal("ban did not ban")
	}
	clk.advance(banFor)
	if g.peerBanned(r) {
		t.Fatal("ban outlasted banFor")
	}
}

func TestGuardIPBanOnlyPublic(t *testing.T) {
	tests := []struct {
		ip       string
		from     string // the address a connection comes from
		ipBanned bool
	}{
		{"8.8.8.8", "/ip4/8.8.8.8/tcp/4001", true},
		{"8.8.8.8", "/ip4/8.8.8.8/udp/4001/quic-v1", true},
		{"8.8.8.8", "/ip6/::ffff:8.8.8.8/tcp/4001", true}, // the same address, IPv4-mapped
		{"2001:4860::8888", "/ip6/2001:4860::8888/tcp/4001", true},
		{"127.0.0.1", "/ip4/127.0.0.1/tcp/4001", false},
		{"::1", "/ip6/::1/tcp/4001", false},
		{"10.1.2.3", "/ip4/10.1.2.3/tcp/4001", false},
		{"172.16.0.9", "/ip4/172.16.0.9/tcp/4001", false},
		{"192.168.1.20", "/ip4/192.168.1.20/tcp/4001", false},
		{"fd00::1", "/ip6/fd00::1/tcp/4001", false},
		{"0.0.0.0", "/ip4/0.0.0.0/tcp/4001", false},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			g := newGuard(time.Hour, newTestClock().now)
			p := testPeer(t)
			g.ban(p, netip.MustParseAddr(tt.ip))
			if !g.peerBanned(p) {
				t.Fatal("peer not banned")
			}
			c := connFrom(t, tt.from)
			if got := g.ipBanned(c.remote); got != tt.ipBanned {
				t.Fatalf("ipBanned(%s) = %v, want %v", tt.from, got, tt.ipBanned)
			}
			// Another peer from that address is refused only when the
			// address is banned.
			if got := g.InterceptAccept(c); got != !tt.ipBanned {
				t.Fatalf("InterceptAccept from %s = %v, want %v", tt.from, got, !tt.ipBanned)
			}
			if got := g.InterceptSecured(network.DirInbound, testPeer(t), c); got != !tt.ipBanned {
				t.Fatalf("InterceptSecured of another peer from %s = %v, want %v", tt.from, got, !tt.ipBanned)
			}
		})
	}

	// No address (a peer not in the table): the id alone is banned.
	g := newGuard(time.Hour, newTestClock().now)
	p := testPeer(t)
	g.ban(p, netip.Addr{})
	if !g.peerBanned(p) || len(g.mu.ipBans) != 0 {
		t.Fatalf("ban without an address: peer banned %v, ip bans %v", g.peerBanned(p), g.mu.ipBans)
	}
}

func TestGuardUnban(t *testing.T) {
	clk := newTestClock()
	g := newGuard(time.Hour, clk.now)
	p := testPeer(t)
	ip := netip.MustParseAddr("1.2.3.4")
	from := ma.StringCast("/ip4/1.2.3.4/tcp/4001")
	g.penalize(p, ip, penaltyInvalidBlock)
	g.ban(p, ip)
	g.unban(p)
	if g.peerBanned(p) || g.ipBanned(from) {
		t.Fatalf("after unban: peer banned %v, ip banned %v", g.peerBanned(p), g.ipBanned(from))
	}
	if g.score(p) != 0 {
		t.Fatalf("after unban the score is %v, want 0", g.score(p))
	}
	if !g.InterceptPeerDial(p) || !g.InterceptAddrDial(p, from) || !g.InterceptAccept(testConn{remote: from}) ||
		!g.InterceptSecured(network.DirInbound, p, testConn{remote: from}) {
		t.Fatal("the gater still refuses an unbanned peer")
	}
	// Unbanning a peer never banned is harmless.
	g.unban(testPeer(t))
}

func TestGuardGater(t *testing.T) {
	g := newGuard(time.Hour, newTestClock().now)
	banned, other := testPeer(t), testPeer(t)
	g.ban(banned, netip.MustParseAddr("9.9.9.9"))
	bannedAddr := ma.StringCast("/ip4/9.9.9.9/tcp/4001")
	otherAddr := ma.StringCast("/ip4/9.9.9.10/tcp/4001")
	dnsAddr := ma.StringCast("/dns4/example.com/tcp/4001")

	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"dial banned peer", g.InterceptPeerDial(banned), false},
		{"dial other peer", g.InterceptPeerDial(other), true},
		{"dial banned peer at another address", g.InterceptAddrDial(banned, otherAddr), false},
		{"dial other peer at the banned address", g.InterceptAddrDial(other, bannedAddr), false},
		{"dial other peer at another address", g.InterceptAddrDial(other, otherAddr), true},
		{"dial other peer by dns name", g.InterceptAddrDial(other, dnsAddr), true},
		{"accept from the banned address", g.InterceptAccept(testConn{remote: bannedAddr}), false},
		{"accept from another address", g.InterceptAccept(testConn{remote: otherAddr}), true},
		{"accept without an address", g.InterceptAccept(testConn{}), true},
		{"secure banned peer from another address", g.InterceptSecured(network.DirInbound, banned, testConn{remote: otherAddr}), false},
		{"secure banned peer outbound", g.InterceptSecured(network.DirOutbound, banned, testConn{remote: otherAddr}), false},
		{"secure other peer from the banned address", g.InterceptSecured(network.DirInbound, other, testConn{remote: bannedAddr}), false},
		{"secure other peer from another address", g.InterceptSecured(network.DirInbound, other, testConn{remote: otherAddr}), true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if ok, _ := g.InterceptUpgraded(nil); !ok {
		t.Error("InterceptUpgraded refused")
	}
}

// Peers that misbehave once under ever new ids (an id costs nothing) do
// not grow the guard without bound: decayed scores and expired bans are
// pruned, the bans in force and the recent scores kept.
func TestGuardPrunesForgottenPeers(t *testing.T) {
	clk := newTestClock()
	g := newGuard(time.Hour, clk.now)
	for i := 0; i < 200; i++ {
		p := testPeer(t)
		if i%2 == 0 {
			g.penalize(p, netip.Addr{}, penaltyMalformed) // scored, not banned
		} else {
			g.ban(p, netip.MustParseAddr("203.0.113.9"))
		}
	}
	if scores, bans := g.tracked(); scores != 100 || bans != 100 {
		t.Fatalf("tracked %d scores, %d bans; want 100 and 100", scores, bans)
	}
	g.prune()
	if scores, bans := g.tracked(); scores != 100 || bans != 100 {
		t.Fatalf("pruned what is recent: %d scores, %d bans", scores, bans)
	}
	kept := testPeer(t)
	clk.advance(59 * time.Minute)
	g.penalize(kept, netip.Addr{}, penaltyMalformed)
	clk.advance(2 * time.Minute) // the bans expired; the old scores decayed 61 min (6 half-lives)
	g.prune()
	if scores, bans := g.tracked(); scores != 101 || bans != 0 {
		t.Fatalf("after an hour: %d scores, %d bans; want 101 (decayed to 1/64, still above %d) and 0", scores, bans, forgetBelow)
	}
	clk.advance(3 * time.Hour)
	g.prune()
	if scores, _ := g.tracked(); scores != 0 {
		t.Fatalf("after four hours: %d scores, want 0", scores)
	}
	if len(g.mu.ipBans) != 0 || len(g.mu.banIP) != 0 || len(g.mu.banWhy) != 0 {
		t.Fatalf("expired address bans kept: %d, %d, %d", len(g.mu.ipBans), len(g.mu.banIP), len(g.mu.banWhy))
	}
}
