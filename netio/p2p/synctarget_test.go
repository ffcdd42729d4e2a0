package p2p

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/engine/chain"
	"github.com/emberchain/ember/engine/koinos"
)

// viewNode is the node as pickTarget sees it: a view and the blocks it
// holds.
type viewNode struct {
	Node // not called by pickTarget otherwise
	view *chain.View
	has  map[koinos.Digest]bool
}

func (n *viewNode) View() *chain.View              { return n.view }
func (n *viewNode) HasBlock(id koinos.Digest) bool { return n.has[id] }

func testRef(name string, height uint64) blockRef {
	return blockRef{id: sha256.Sum256(fmt.Appendf(nil, "%s %d", name, height)), height: height}
}

// pickTarget syncs from a peer whose chain may win fork choice here and
// whose head this node lacks: a higher head, or a higher last irreversible
// block at any height (fork choice ranks irreversibility first); among
// several, the one ranked first by irreversibility, then height, then the
// latest status.
func TestPickTarget(t *testing.T) {
	ourHead, ourLIB := testRef("ours", 20), testRef("our lib", 7)
	known := testRef("known", 21) // a block this node holds, above its head
	type status struct {
		head, lib blockRef
		avoided   bool
		age       time.Duration
	}
	tests := []struct {
		name  string
		peers []status
		want  int // index of the peer picked, -1 for none
	}{
		{"no peers", nil, -1},
		{"the same head", []status{{head: ourHead, lib: ourLIB}}, -1},
		{"a lower head, lower irreversibility", []status{{head: testRef("low", 18), lib: testRef("low lib", 6)}}, -1},
		{"a lower head, the same irreversibility", []status{{head: testRef("low", 19), lib: ourLIB}}, -1},
		{"a higher head", []status{{head: testRef("high", 21), lib: ourLIB}}, 0},
		{"a higher head this node holds", []status{{head: known, lib: ourLIB}}, -1},
		{"the same height, higher irreversibility", []status{{head: testRef("level", 20), lib: testRef("their lib", 8)}}, 0},
		{"a lower head, higher irreversibility", []status{{head: testRef("low", 15), lib: testRef("their lib", 9)}}, 0},
		{"higher irreversibility, avoided", []status{{head: testRef("level", 20), lib: testRef("their lib", 8), avoided: true}}, -1},
		{"irreversibility ranks before height", []status{
			{head: testRef("tall", 30), lib: testRef("lib a", 8)},
			{head: testRef("level", 20), lib: testRef("lib b", 9)},
		}, 1},
		{"then height", []status{
			{head: testRef("short", 22), lib: testRef("lib a", 9)},
			{head: testRef("tall", 24), lib: testRef("lib b", 9)},
		}, 1},
		{"then the latest status", []status{
			{head: testRef("new", 24), lib: testRef("lib a", 9)},
			{head: testRef("old", 24), lib: testRef("lib b", 9), age: time.Second},
		}, 0},
	}
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := &viewNode{
				view: &chain.View{Head: chain.Topology{ID: ourHead.id, Height: ourHead.height}, LIB: chain.Topology{ID: ourLIB.id, Height: ourLIB.height}},
				has:  map[koinos.Digest]bool{ourHead.id: true, ourLIB.id: true, known.id: true},
			}
			cfg := Config{}
			cfg.EnsureDefaults()
			cfg.Now = func() time.Time { return now }
			s := &Service{cfg: cfg, node: node, log: slog.New(slog.NewTextHandler(io.Discard, nil)), peers: newPeerTable()}
			ids := make([]peer.ID, len(tc.peers))
			for i, st := range tc.peers {
				ids[i] = peer.ID(rune('a' + i))
				s.peers.add(ids[i], netip.MustParseAddr("127.0.0.1"))
				s.peers.setStatus(ids[i], peerStatus{head: st.head, lib: st.lib, at: now.Add(-st.age)}, true)
				if st.avoided {
					s.peers.avoid(ids[i], now.Add(time.Minute))
				}
			}
			got, _, ok := s.pickTarget()
			switch {
			case tc.want < 0 && ok:
				t.Fatalf("picked peer %q, want none", got)
			case tc.want >= 0 && !ok:
				t.Fatalf("picked none, want peer %d", tc.want)
			case tc.want >= 0 && got != ids[tc.want]:
				t.Fatalf("picked peer %q, want %q", got, ids[tc.want])
			}
		})
	}
}
