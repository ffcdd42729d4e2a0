package p2p

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	k, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	id := testPeer(t).String()
	good := func() Config {
		c := Config{
			Identity: k,
			Listen:   []string{"/ip4/0.0.0.0/tcp/8888", "/ip4/0.0.0.0/udp/8888/quic-v1"},
			Peers:    []string{"/ip4/10.0.0.2/tcp/8888/p2p/" + id, "/dns4/node.example/tcp/8888/p2p/" + id},
			Announce: []string{"/ip4/203.0.113.5/tcp/8888"},
		}
		c.EnsureDefaults()
		return c
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string // "" when valid
	}{
		{"good", func(*Config) {}, ""},
		{"no peers", func(c *Config) { c.Peers = nil }, ""},
		{"largest sync batch", func(c *Config) { c.SyncBatchBytes = maxSyncBatchBytes }, ""},
		{"no identity", func(c *Config) { c.Identity = nil }, "no identity key"},
		{"no listen address", func(c *Config) { c.Listen = nil }, "p2p.listen is empty"},
		{"listen not a multiaddr", func(c *Config) { c.Listen = []string{"0.0.0.0:8888"} }, `"0.0.0.0:8888" is not a multiaddr`},
		{"listen bad ip", func(c *Config) { c.Listen = []string{"/ip4/300.0.0.1/tcp/8888"} }, "is not a multiaddr"},
		{"listen bad port", func(c *Config) { c.Listen = append(c.Listen, "/ip4/0.0.0.0/tcp/70000") }, "is not a multiaddr"},
		{"announce not a multiaddr", func(c *Config) { c.Announce = []string{"node.example:8888"} }, "is not a multiaddr"},
		{"static peer without id", func(c *Config) { c.Peers = []string{"/ip4/10.0.0.2/tcp/8888"} }, "must be a multiaddr ending in /p2p/<peer id>"},
		{"static peer with a bad id", func(c *Config) { c.Peers = []string{"/ip4/10.0.0.2/tcp/8888/p2p/notapeerid"} }, "p2p.peers"},
		{"static peer not a multiaddr", func(c *Config) { c.Peers = []string{"10.0.0.2:8888"} }, "p2p.peers"},
		{"sync batch too large", func(c *Config) { c.SyncBatchBytes = maxSyncBatchBytes + 1 }, "p2p.sync_batch_bytes must be at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStaticPeers(t *testing.T) {
	a, b := testPeer(t), testPeer(t)
	got, err := staticPeers([]string{
		"/ip4/10.0.0.2/tcp/8888/p2p/" + a.String(),
		"/ip4/10.0.0.3/tcp/8888/p2p/" + b.String(),
		"/ip6/fd00::2/tcp/8888/p2p/" + a.String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("staticPeers = %d peers, want 2: %v", len(got), got)
	}
	if got[0].ID != a || got[1].ID != b {
		t.Fatalf("staticPeers ids = %s, %s; want %s, %s in the order given", got[0].ID, got[1].ID, a, b)
	}
	var addrs []string
	for _, m := range got[0].Addrs {
		addrs = append(addrs, m.String())
	}
	if want := "/ip4/10.0.0.2/tcp/8888 /ip6/fd00::2/tcp/8888"; strings.Join(addrs, " ") != want {
		t.Fatalf("addresses of %s = %v, want %s", a, addrs, want)
	}
	if len(got[1].Addrs) != 1 {
		t.Fatalf("addresses of %s = %v, want one", b, got[1].Addrs)
	}
	// A bare /p2p/<id> names the peer with no address.
	got, err = staticPeers([]string{"/p2p/" + a.String()})
	if err != nil || len(got) != 1 || got[0].ID != a || len(got[0].Addrs) != 0 {
		t.Fatalf("staticPeers(/p2p/<id>) = %v, %v", got, err)
	}
	if got, err := staticPeers(nil); err != nil || len(got) != 0 {
		t.Fatalf("staticPeers(nil) = %v, %v", got, err)
	}
}
