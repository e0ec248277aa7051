package l4

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// Defaults of the UDP fields of [Options].
const (
	// DefaultUDPIdleTimeout ends a session after a minute without a
	// datagram either way: long enough for a client that polls, short
	// enough that sessions of clients that left (every DNS query from a
	// fresh source port, say) give their sockets back soon.
	DefaultUDPIdleTimeout = 60 * time.Second
	// DefaultMaxUDPSessions caps the sessions open at once. Each holds one
	// socket (a file descriptor) and one goroutine, and no buffer while
	// it waits.
	DefaultMaxUDPSessions = 16384
)

// maxDatagram is the largest UDP payload (65535 less the IPv4 and UDP
// headers is 65507; IPv6 allows 65527): buffers this size never truncate.
const maxDatagram = 65535

// Results of a UDP session, the result label of rauta_udp_sessions_total
// beside the stream results it shares (no_route, invalid_backend,
// no_healthy_endpoint, connect_failed, shut_down).
const (
	resultOpened       = "opened"
	resultSessionLimit = "session_limit"
)

// Reasons a UDP session ends, the reason label of
// rauta_udp_session_ends_total.
const (
	endIdle         = "idle"
	endRefused      = "backend_refused" // ICMP port unreachable or another socket error
	endEndpointGone = "endpoint_gone"   // removed from its backend or unhealthy
	endRouteRemoved = "route_removed"
	endListenerGone = "listener_closed" // the socket given to ServePacket closed
	endShutdown     = "shut_down"
)

// Reasons of rauta_udp_dropped_datagrams_total beyond the refusals of a
// session (whose results are reasons too).
const (
	dropUpstreamWrite = "upstream_write_failed"
	dropClientWrite   = "client_write_failed"
)

var datagramPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// packetServer is one socket given to ServePacket and its sessions.
type packetServer struct {
	f    *Forwarder
	pc   net.PacketConn
	udp  *net.UDPConn // pc when it is one: reads and writes without allocating
	port string

	mu       sync.Mutex
	sessions map[netip.AddrPort]*session
}

// session is the traffic of one client address: its own socket to one
// endpoint, and a goroutine reading the endpoint's answers.
type session struct {
	ps         *packetServer
	key        string // "listener\x00namespace/name", as streams
	listener   string
	route      string
	client     netip.AddrPort
	clientAddr net.Addr // for a PacketConn that is not a *net.UDPConn
	up         net.Conn
	m          *upstream.Member
	tk         breaker.Ticket
	settled    atomic.Bool  // the breaker ticket was handed back
	last       atomic.Int64 // unix nanoseconds of the last datagram either way
	once       sync.Once

	upDatagrams, upBytes, downDatagrams, downBytes prometheus.Counter
}

// ServePacket forwards the datagrams that arrive on pc as traffic of
// port, until pc fails or is closed or the forwarder is shut down; the
// sessions of pc end with it. It returns the read error, or ErrClosed
// after Shutdown.
//
// The datagrams of one client address (IP and port) make a session. The
// first one picks the route of the port's UDP listener, a backend by the
// route's weights and an endpoint of it (round robin by weight, or Maglev
// over the client's IP), and opens a socket of the session's own to that
// endpoint; the client's datagrams go out on it, and what the endpoint
// sends back to it is sent to the client from pc. A session ends after
// Options.UDPIdleTimeout without a datagram either way; when the
// endpoint refuses a datagram (ICMP port unreachable, which counts
// against its breaker); at its next datagram when its endpoint has left
// its backend or fails its health checks, the datagram opening a new
// session; when its route is no longer attached to its listener; or with
// pc. At most Options.MaxUDPSessions are open at once: past it, a
// datagram that would open one is dropped and counted.
func (f *Forwarder) ServePacket(pc net.PacketConn, port string) error {
	ps := &packetServer{f: f, pc: pc, port: port, sessions: make(map[netip.AddrPort]*session)}
	ps.udp, _ = pc.(*net.UDPConn)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.packets[ps] = struct{}{}
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.packets, ps)
		f.mu.Unlock()
		reason := endShutdown
		if !f.isClosed() {
			reason = endListenerGone
		}
		for _, s := range ps.all() {
			s.end(reason)
		}
	}()
	buf := make([]byte, maxDatagram)
	var delay time.Duration
	for {
		n, client, err := ps.read(buf)
		if err != nil {
			if f.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// An error of one datagram (a truncated read, an ICMP error
			// some systems report on the listening socket) is not the
			// socket's end; back off in case it persists.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.log.Debug("udp read", "port", port, "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if client.IsValid() {
			ps.forward(buf[:n], client)
		}
	}
}

// read reads one datagram and its source, unmapped so that an IPv4
// client has one key whatever the socket's family.
func (ps *packetServer) read(buf []byte) (int, netip.AddrPort, error) {
	if ps.udp != nil {
		n, ap, err := ps.udp.ReadFromUDPAddrPort(buf)
		return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
	}
	n, addr, err := ps.pc.ReadFrom(buf)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return n, netip.AddrPort{}, nil
	}
	ap := ua.AddrPort()
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// writeTo sends a datagram to a session's client from the listening
// socket.
func (ps *packetServer) writeTo(b []byte, s *session) error {
	if ps.udp != nil {
		_, err := ps.udp.WriteToUDPAddrPort(b, s.client)
		return err
	}
	_, err := ps.pc.WriteTo(b, s.clientAddr)
	return err
}

// all returns the sessions of the socket.
func (ps *packetServer) all() []*session {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]*session, 0, len(ps.sessions))
	for _, s := range ps.sessions {
		out = append(out, s)
	}
	return out
}

// forward sends a client's datagram on its session, opening one when the
// client has none or its endpoint has gone.
func (ps *packetServer) forward(b []byte, client netip.AddrPort) {
	ps.mu.Lock()
	s := ps.sessions[client]
	ps.mu.Unlock()
	if s != nil && (s.m.Removed() || !s.m.Healthy()) {
		s.end(endEndpointGone)
		s = nil
	}
	if s == nil {
		if s = ps.open(client, len(b)); s == nil {
			return
		}
	}
	s.last.Store(time.Now().UnixNano())
	if _, err := s.up.Write(b); err != nil {
		ps.f.m.udpDropped.WithLabelValues(s.listener, s.route, dropUpstreamWrite).Inc()
		if isRefused(err) {
			s.fail()
		}
		return
	}
	s.upDatagrams.Inc()
	s.upBytes.Add(float64(len(b)))
}

// open starts the session of a client whose first datagram has size
// bytes, or counts why it cannot and returns nil.
func (ps *packetServer) open(client netip.AddrPort, size int) *session {
	f := ps.f
	refuse := func(listener, route, result, msg string, args ...any) *session {
		f.m.udpSessions.WithLabelValues(listener, route, result).Inc()
		f.m.udpDropped.WithLabelValues(listener, route, result).Inc()
		f.log.Debug("udp session refused: "+msg, append(args, "port", ps.port, "client", client.String(), "result", result, "bytes", size)...)
		return nil
	}
	pt := f.snap.Load().ports[ps.port]
	if pt == nil || !pt.udp {
		return refuse("", "", resultNoRoute, "no UDP listener on port")
	}
	req := router.Request{Path: "/"}
	lres, err := pt.listeners.Match(&req)
	if err != nil {
		return refuse("", "", resultNoRoute, "no listener")
	}
	listener := lres.Rule.Value.(*compiledListener).name
	req.Listener = listener
	rres, err := pt.routes.Match(&req)
	if err != nil {
		return refuse(listener, "", resultNoRoute, "no route")
	}
	cr := rres.Rule.Value.(*compiledRoute)
	ref := cr.pick()
	if ref == nil || ref.backend == nil {
		name := ""
		if ref != nil {
			name = ref.name
		}
		return refuse(listener, cr.label, resultNoBackend, "invalid backend", "route", cr.label, "backend", name)
	}
	if f.udpOpen.Add(1) > int64(f.opts.MaxUDPSessions) {
		f.udpOpen.Add(-1)
		return refuse(listener, cr.label, resultSessionLimit, "at MaxUDPSessions", "max", f.opts.MaxUDPSessions)
	}
	up, m, tk, err := f.connect("udp", client.Addr().String(), ref.backend, nil)
	if err != nil {
		f.udpOpen.Add(-1)
		result := resultConnect
		if errors.Is(err, errNoHealthy) {
			result = resultNoHealthy
		}
		return refuse(listener, cr.label, result, "connect", "route", cr.label, "backend", ref.name, "error", err)
	}
	s := &session{ps: ps, key: listener + "\x00" + cr.label, listener: listener, route: cr.label, client: client, up: up, m: m, tk: tk,
		upDatagrams:   f.m.udpDatagrams.WithLabelValues(listener, cr.label, "upstream"),
		upBytes:       f.m.udpBytes.WithLabelValues(listener, cr.label, "upstream"),
		downDatagrams: f.m.udpDatagrams.WithLabelValues(listener, cr.label, "downstream"),
		downBytes:     f.m.udpBytes.WithLabelValues(listener, cr.label, "downstream"),
	}
	if ps.udp == nil {
		s.clientAddr = net.UDPAddrFromAddrPort(client)
	}
	s.last.Store(time.Now().UnixNano())

	// Registered under the socket's lock, with the route checked against
	// the snapshot in effect: Apply stores its snapshot before it looks
	// for sessions to end under the same lock, so a session is either
	// seen by it or sees its snapshot.
	f.mu.Lock()
	closed := f.closed
	if !closed {
		f.wg.Add(1)
	}
	f.mu.Unlock()
	ps.mu.Lock()
	ok := !closed && f.snap.Load().routes[s.key]
	if ok {
		ps.sessions[client] = s
	}
	ps.mu.Unlock()
	if !ok {
		up.Close()
		m.Cancel(tk)
		m.Release()
		f.udpOpen.Add(-1)
		if !closed {
			f.wg.Done()
		}
		return refuse(listener, cr.label, resultShutdown, "route removed or forwarder shut down")
	}
	f.m.udpSessions.WithLabelValues(listener, cr.label, resultOpened).Inc()
	f.m.udpActive.Inc()
	go s.run()
	return s
}

// run sends the endpoint's datagrams to the client until the session
// ends.
func (s *session) run() {
	f := s.ps.f
	defer f.wg.Done()
	idle := f.opts.UDPIdleTimeout
	r := newDatagramReader(s.up)
	for {
		s.up.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
		bp, n, err := r.read()
		if err == nil {
			s.last.Store(time.Now().UnixNano())
			if !s.settled.Swap(true) {
				s.m.Done(s.tk, true) // the endpoint answers
			}
			werr := s.ps.writeTo((*bp)[:n], s)
			datagramPool.Put(bp)
			if werr != nil {
				f.m.udpDropped.WithLabelValues(s.listener, s.route, dropClientWrite).Inc()
				continue
			}
			s.downDatagrams.Inc()
			s.downBytes.Add(float64(n))
			continue
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The client may have sent meanwhile: the session is idle
			// only when neither side did.
			if time.Since(time.Unix(0, s.last.Load())) < idle {
				continue
			}
			s.end(endIdle)
		case errors.Is(err, net.ErrClosed):
			s.end(endShutdown) // ended elsewhere already: a no-op
		default:
			f.log.Debug("udp session", "route", s.route, "endpoint", s.m.Addr(), "error", err)
			s.fail()
		}
		return
	}
}

// fail ends a session whose endpoint refused a datagram, counting it
// against the endpoint's breaker unless the endpoint answered before.
func (s *session) fail() {
	if !s.settled.Swap(true) {
		s.m.Done(s.tk, false)
	}
	s.end(endRefused)
}

// end closes the session once, for reason.
func (s *session) end(reason string) {
	s.once.Do(func() {
		ps, f := s.ps, s.ps.f
		ps.mu.Lock()
		if ps.sessions[s.client] == s {
			delete(ps.sessions, s.client)
		}
		ps.mu.Unlock()
		s.up.Close()
		if !s.settled.Swap(true) {
			s.m.Cancel(s.tk) // no answer and no error: nothing learnt
		}
		s.m.Release()
		f.udpOpen.Add(-1)
		f.m.udpActive.Dec()
		f.m.udpEnds.WithLabelValues(s.listener, s.route, reason).Inc()
	})
}

// isRefused reports whether err is the endpoint refusing datagrams (an
// ICMP port or host unreachable reported on the connected socket).
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// dropSessions ends the UDP sessions whose route is not in snap.
func (f *Forwarder) dropSessions(snap *snapshot) {
	f.mu.Lock()
	servers := make([]*packetServer, 0, len(f.packets))
	for ps := range f.packets {
		servers = append(servers, ps)
	}
	f.mu.Unlock()
	for _, ps := range servers {
		for _, s := range ps.all() {
			if !snap.routes[s.key] {
				s.end(endRouteRemoved)
			}
		}
	}
}

// Sessions returns the number of UDP sessions open.
func (f *Forwarder) Sessions() int { return int(f.udpOpen.Load()) }

func (f *Forwarder) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}
