package grpcgw

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// perIPListener bounds the open connections from one client IP
// (rpc.max_conns_per_ip, as fasthttp's MaxConnsPerIP does for JSON-RPC): a
// connection past the bound is closed as soon as it is accepted, before
// its HTTP/2 handshake, and counted in refused.
type perIPListener struct {
	net.Listener
	max     int
	refused *atomic.Uint64

	mu   sync.Mutex
	open map[netip.Addr]int
}

func limitPerIP(ln net.Listener, max int, refused *atomic.Uint64) net.Listener {
	if max <= 0 {
		return ln
	}
	return &perIPListener{Listener: ln, max: max, refused: refused, open: map[netip.Addr]int{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, ok := remoteIP(c)
		if !ok {
			return c, nil // not an IP connection (a unix socket in tests): not bounded
		}
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &perIPConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *perIPListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip) // the map holds only IPs with connections open
	}
}

func remoteIP(c net.Conn) (netip.Addr, bool) {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	return ip.Unmap(), ok
}

// perIPConn gives its slot back once, however often it is closed.
type perIPConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *perIPConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
