package proxy

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a connection is refused at accept, labelling
// rauta_connections_refused_total.
const (
	refusedListenerLimit = "listener_limit" // Limits.MaxConnsPerListener
	refusedClientLimit   = "client_limit"   // Limits.MaxConnsPerClient
)

// connLimiter is a net.Listener that holds the client connections of one
// bound port under Limits.MaxConnsPerListener and, per client IP address,
// Limits.MaxConnsPerClient. A connection past a limit is closed as soon as
// it is accepted, before a byte is read (the client sees its connection
// closed with no response), counted, and Accept goes on to the next one. A
// connection counts until it is closed, whoever closes it: the HTTP/1
// server, the HTTP/2 server, or a tunnel that hijacked it.
type connLimiter struct {
	net.Listener
	max       int // per listener; 0 means none
	perClient int // per client address; 0 means none

	mu     sync.Mutex
	n      int
	byAddr map[netip.Addr]int

	refusedListener prometheus.Counter
	refusedClient   prometheus.Counter
}

// limitConns wraps the listener of a port under lim's connection limits,
// or returns it as it is when both are off.
func (m *metrics) limitConns(ln net.Listener, key string, lim Limits) net.Listener {
	if lim.MaxConnsPerListener <= 0 && lim.MaxConnsPerClient <= 0 {
		return ln
	}
	l := &connLimiter{
		Listener:        ln,
		max:             max(lim.MaxConnsPerListener, 0),
		perClient:       max(lim.MaxConnsPerClient, 0),
		refusedListener: m.connsRefused.WithLabelValues(key, refusedListenerLimit),
		refusedClient:   m.connsRefused.WithLabelValues(key, refusedClientLimit),
	}
	if l.perClient > 0 {
		l.byAddr = make(map[netip.Addr]int)
	}
	return l
}

// Accept returns the next connection within the limits, closing the ones
// past them.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var addr netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr().Unmap()
		}
		if refused := l.admit(addr); refused != nil {
			// Counted before the close, so that a client that sees its
			// connection closed finds it counted.
			refused.Inc()
			c.Close()
			continue
		}
		lc := limitedConn{l: l, addr: addr, done: new(atomic.Bool)}
		if tc, ok := c.(*net.TCPConn); ok {
			// Embedding the *net.TCPConn keeps its ReadFrom (splice) for
			// tunnels copying into the client's connection.
			return &limitedTCPConn{TCPConn: tc, limitedConn: lc}, nil
		}
		return &limitedNetConn{Conn: c, limitedConn: lc}, nil
	}
}

// admit counts a new connection from addr, or returns the counter of the
// limit it is past.
func (l *connLimiter) admit(addr netip.Addr) prometheus.Counter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.n >= l.max {
		return l.refusedListener
	}
	if l.perClient > 0 && addr.IsValid() {
		if l.byAddr[addr] >= l.perClient {
			return l.refusedClient
		}
		l.byAddr[addr]++
	}
	l.n++
	return nil
}

// release uncounts a closed connection.
func (l *connLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.perClient > 0 && addr.IsValid() {
		if k := l.byAddr[addr] - 1; k > 0 {
			l.byAddr[addr] = k
		} else {
			delete(l.byAddr, addr)
		}
	}
}

// limitedConn uncounts its connection at its first Close.
type limitedConn struct {
	l    *connLimiter
	addr netip.Addr
	done *atomic.Bool
}

func (c limitedConn) closed() {
	if c.done.CompareAndSwap(false, true) {
		c.l.release(c.addr)
	}
}

// limitedTCPConn is an admitted TCP connection.
type limitedTCPConn struct {
	*net.TCPConn
	limitedConn
}

// Close closes the connection and releases its place under the limits.
func (c *limitedTCPConn) Close() error {
	err := c.TCPConn.Close()
	c.closed()
	return err
}

// limitedNetConn is an admitted connection of another kind.
type limitedNetConn struct {
	net.Conn
	limitedConn
}

// Close closes the connection and releases its place under the limits.
func (c *limitedNetConn) Close() error {
	err := c.Conn.Close()
	c.closed()
	return err
}
