package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/emberchain/ember/netio/p2p"
)

// repeatedFlag collects a flag given several times (--peer A --peer B).
type repeatedFlag []string

func (r *repeatedFlag) String() string { return strings.Join(*r, " ") }

func (r *repeatedFlag) Set(v string) error {
	*r = append(*r, v)
	return nil
}

// parsePeer checks a static peer's address, named by flag in errors: a
// multiaddr with a transport to dial and the peer id to expect there. It
// returns the canonical form (/ipfs/ is written /p2p/).
func parsePeer(flag, s string) (*peer.AddrInfo, string, error) {
	const want = "expected /ip4/HOST/tcp/PORT/p2p/PEER-ID"
	info, err := peer.AddrInfoFromString(s)
	if err != nil {
		return nil, "", fmt.Errorf("%s %q: %v (%s)", flag, s, err, want)
	}
	if len(info.Addrs) == 0 {
		return nil, "", fmt.Errorf("%s %q names a peer id but no address to dial (%s)", flag, s, want)
	}
	m, _ := ma.NewMultiaddr(s) // parsed above
	return info, m.String(), nil
}

// parseListen checks a p2p listen address, named by flag in errors: an IP
// address and a TCP or UDP port, without a peer id (the node's comes from
// its identity key). It returns the canonical form.
func parseListen(flag, s string) (string, error) {
	const want = "expected e.g. /ip4/127.0.0.1/tcp/8888"
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return "", fmt.Errorf("%s %q: %v (%s)", flag, s, err, want)
	}
	if _, err := m.ValueForProtocol(ma.P_P2P); err == nil {
		return "", fmt.Errorf("%s %q: a listen address takes no /p2p/ part; the peer id comes from the identity key", flag, s)
	}
	if _, err := manet.ToIP(m); err != nil {
		return "", fmt.Errorf("%s %q: no /ip4/ or /ip6/ address to listen on (%s)", flag, s, want)
	}
	_, tcpErr := m.ValueForProtocol(ma.P_TCP)
	_, udpErr := m.ValueForProtocol(ma.P_UDP)
	if tcpErr != nil && udpErr != nil {
		return "", fmt.Errorf("%s %q: no /tcp/ or /udp/ port to listen on (%s)", flag, s, want)
	}
	return m.String(), nil
}

// checkHostPort checks a host:port listen address given by flag; empty is
// allowed and turns the listener off.
func checkHostPort(flag, s string) error {
	if s == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
		return fmt.Errorf("%s must be host:port (e.g. 127.0.0.1:8080), or empty to turn the listener off; got %q", flag, s)
	}
	return nil
}

// peerAddress is the address other nodes dial to reach this one on a
// listen address, with a hint when the address as written cannot be
// dialled from elsewhere.
func peerAddress(listen string, id peer.ID) (addr, hint string) {
	addr = listen + "/p2p/" + id.String()
	m, err := ma.NewMultiaddr(listen)
	if err != nil {
		return addr, ""
	}
	if manet.IsIPUnspecified(m) {
		return addr, "replace the unspecified IP with one the other nodes can reach"
	}
	for _, proto := range []int{ma.P_TCP, ma.P_UDP} {
		if port, err := m.ValueForProtocol(proto); err == nil && port == "0" {
			return addr, "port 0 is picked anew at each start: set a fixed port for others to dial"
		}
	}
	return addr, ""
}

// loadIdentity reads this node's p2p identity key, creating it on first
// use, and returns its peer id.
func loadIdentity(path string) (peer.ID, error) {
	k, err := p2p.LoadOrCreateIdentity(path)
	if err != nil {
		return "", err
	}
	return p2p.PeerID(k)
}
