package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/netio/p2p"
	"github.com/emberchain/ember/node"
)

// runNode starts a node of g in-process, with a network when withP2P.
func runNode(t *testing.T, g *genesis.Genesis, key keys.Signer, withP2P bool) *node.Node {
	t.Helper()
	cfg := node.Config{DataDir: t.TempDir(), Genesis: g, ProducerKey: key}
	if withP2P {
		id, err := p2p.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		cfg.P2P = &p2p.Config{Identity: id, Listen: []string{"/ip4/127.0.0.1/tcp/0"}}
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-n.Started():
	case err := <-done:
		t.Fatalf("node stopped at start: %v", err)
	}
	return n
}

func call(t *testing.T, s *Server, method, path string, q url.Values) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(rec, httptest.NewRequest(method, path+"?"+q.Encode(), nil))
	return rec
}

// The admin listener lists the peers, dials one, bans and unbans it, and
// refuses bad input with 400 (404 without a network).
func TestNetworkRoutes(t *testing.T) {
	prod := keys.Ed25519FromSeed(make([]byte, 32))
	g, err := genesis.Dev(genesis.DevOptions{Producers: []koinos.Address{prod.Address()}, BlockIntervalMs: 200, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	a, b := runNode(t, g, prod, true), runNode(t, g, nil, true)
	s := New(Config{Listen: "127.0.0.1:0"}, a, NewMetrics())
	peers := func() []p2p.PeerInfo {
		rec := call(t, s, http.MethodGet, "/p2p/peers", nil)
		var out []p2p.PeerInfo
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("GET /p2p/peers: %d %s", rec.Code, rec.Body)
		}
		return out
	}
	if got := peers(); len(got) != 0 {
		t.Fatalf("peers before any dial: %+v", got)
	}
	if rec := call(t, s, http.MethodPost, "/p2p/connect", url.Values{"addr": {b.Network().Addrs()[0]}}); rec.Code != http.StatusNoContent {
		t.Fatalf("connect: %d %s", rec.Code, rec.Body)
	}
	bid := b.Network().ID().String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ps := peers(); len(ps) == 1 && ps[0].ID == bid && ps[0].Handshake {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer b never listed after its handshake: %+v", peers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec := call(t, s, http.MethodPost, "/p2p/ban", url.Values{"peer": {bid}, "for": {"1m"}}); rec.Code != http.StatusNoContent {
		t.Fatalf("ban: %d %s", rec.Code, rec.Body)
	}
	if st := a.Network().Stats(); st.Banned != 1 || len(peers()) != 0 {
		t.Fatalf("after the ban: %d bans, peers %+v", st.Banned, peers())
	}
	bans := func() []p2p.Ban {
		rec := call(t, s, http.MethodGet, "/p2p/bans", nil)
		var out []p2p.Ban
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("GET /p2p/bans: %d %s", rec.Code, rec.Body)
		}
		return out
	}
	if got := bans(); len(got) != 1 || got[0].Peer != bid || got[0].Why != "by request" || time.Until(got[0].Until) > time.Minute {
		t.Fatalf("bans after the ban: %+v", got)
	}
	if rec := call(t, s, http.MethodPost, "/p2p/unban", url.Values{"peer": {bid}}); rec.Code != http.StatusNoContent || a.Network().Stats().Banned != 0 {
		t.Fatalf("unban: %d %s", rec.Code, rec.Body)
	}
	if got := bans(); len(got) != 0 {
		t.Fatalf("bans after the unban: %+v", got)
	}
	for _, tc := range []struct {
		path string
		q    url.Values
	}{
		{"/p2p/ban", url.Values{"peer": {"not-a-peer"}}},
		{"/p2p/ban", url.Values{"peer": {bid}, "for": {"forever"}}},
		{"/p2p/ban", url.Values{"peer": {bid}, "for": {"-1m"}}},
		{"/p2p/unban", url.Values{}},
		{"/p2p/connect", url.Values{"addr": {"/ip4/127.0.0.1/tcp/1"}}},
	} {
		if rec := call(t, s, http.MethodPost, tc.path, tc.q); rec.Code != http.StatusBadRequest {
			t.Errorf("POST %s?%s: %d, want 400", tc.path, tc.q.Encode(), rec.Code)
		}
	}
	alone := New(Config{Listen: "127.0.0.1:0"}, runNode(t, g, nil, false), NewMetrics())
	if rec := call(t, alone, http.MethodGet, "/p2p/peers", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("GET /p2p/peers without a network: %d", rec.Code)
	}
}
