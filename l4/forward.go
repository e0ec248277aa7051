package l4

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/maglev"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// Defaults of [Options].
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultIdleTimeout    = time.Hour
	// DefaultHelloTimeout is also the longest HelloTimeout allowed.
	DefaultHelloTimeout = 10 * time.Second
)

// Options configures a [Forwarder].
type Options struct {
	// ConnectTimeout bounds connecting to one endpoint; default
	// DefaultConnectTimeout. A failed or timed-out connect tries another
	// endpoint, up to three in all.
	ConnectTimeout time.Duration
	// IdleTimeout closes a stream on which no byte moved either way this
	// long; default DefaultIdleTimeout, negative for none.
	IdleTimeout time.Duration
	// HelloTimeout bounds reading the ClientHello of a TLS listener;
	// default and maximum DefaultHelloTimeout.
	HelloTimeout time.Duration
	// MaxHelloBytes caps the ClientHello records read; default
	// [MaxHelloBytes].
	MaxHelloBytes int
	// Logger receives connection errors at debug level; nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the forwarder's metrics; nil registers them in
	// a registry of the forwarder's own, returned by
	// [Forwarder.Registry].
	Registerer prometheus.Registerer
	// UDPIdleTimeout ends a UDP session in which no datagram moved
	// either way this long; zero or negative means
	// DefaultUDPIdleTimeout. A session always ends when idle: each holds
	// a socket.
	UDPIdleTimeout time.Duration
	// MaxUDPSessions caps the UDP sessions open at once, over all
	// sockets given to ServePacket: a datagram that would open one more
	// is dropped and counted (result session_limit), so that a flood of
	// source addresses cannot exhaust the process's file descriptors.
	// Zero or negative means DefaultMaxUDPSessions.
	MaxUDPSessions int
	// Dial opens a connection to an endpoint ("tcp", or "udp" for a UDP
	// session's socket); nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Results of a connection, the result label of
// rauta_stream_connections_total.
const (
	resultForwarded = "forwarded"
	resultNoRoute   = "no_route"
	resultBadHello  = "bad_hello"
	resultHandshake = "tls_handshake_failed"
	resultNoBackend = "invalid_backend"
	resultNoHealthy = "no_healthy_endpoint"
	resultConnect   = "connect_failed"
	resultUpTLS     = "backend_tls_failed"
	resultShutdown  = "shut_down"
)

// ErrClosed is returned by [Forwarder.Apply] and [Forwarder.Serve] after
// [Forwarder.Shutdown].
var ErrClosed = errors.New("l4: forwarder shut down")

// Forwarder forwards TCP streams and TLS connections to backends of an
// upstream set. It serves a [Config] given by [Forwarder.Apply], which it
// swaps with one atomic store; the connections a Go program accepts are
// handed to it with [Forwarder.Serve] or [Forwarder.ServeConn].
//
// A Forwarder is safe for concurrent use.
type Forwarder struct {
	opts     Options
	log      *slog.Logger
	registry *prometheus.Registry
	m        *metrics

	applyMu sync.Mutex
	snap    atomic.Pointer[snapshot]

	mu      sync.Mutex // guards streams, serving, packets and closed
	streams map[*stream]struct{}
	serving map[net.Listener]struct{}
	packets map[*packetServer]struct{}
	closed  bool
	wg      sync.WaitGroup // connections, packet sockets and UDP sessions being served
	udpOpen atomic.Int64   // UDP sessions open or being opened
}

// New returns a Forwarder serving nothing; call [Forwarder.Apply].
func New(opts Options) *Forwarder {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.HelloTimeout <= 0 || opts.HelloTimeout > DefaultHelloTimeout {
		opts.HelloTimeout = DefaultHelloTimeout
	}
	if opts.MaxHelloBytes <= 0 {
		opts.MaxHelloBytes = MaxHelloBytes
	}
	if opts.UDPIdleTimeout <= 0 {
		opts.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if opts.MaxUDPSessions <= 0 {
		opts.MaxUDPSessions = DefaultMaxUDPSessions
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	f := &Forwarder{opts: opts, log: opts.Logger, streams: make(map[*stream]struct{}), serving: make(map[net.Listener]struct{}),
		packets: make(map[*packetServer]struct{})}
	if f.log == nil {
		f.log = slog.Default()
	}
	reg := opts.Registerer
	if reg == nil {
		f.registry = prometheus.NewRegistry()
		reg = f.registry
	}
	f.m = newMetrics(reg)
	f.snap.Store(&snapshot{ports: map[string]*portTable{}})
	return f
}

// Registry returns the registry holding the forwarder's metrics when
// Options.Registerer was nil, else nil.
func (f *Forwarder) Registry() *prometheus.Registry { return f.registry }

// snapshot is an immutable compiled Config.
type snapshot struct {
	ports  map[string]*portTable
	routes map[string]bool // "listener\x00namespace/name" of every route served
}

// portKind is what the listeners of one port must share: TCP, UDP, or
// TLS (TLSPassthrough for both TLS protocols).
func portKind(p Protocol) Protocol {
	if p == TLSTerminate {
		return TLSPassthrough
	}
	return p
}

// portTable routes the connections of one port.
type portTable struct {
	tls       bool
	udp       bool          // datagrams, served by ServePacket only
	listeners *router.Table // one pseudo-route per listener, by hostname
	routes    *router.Table
}

// compiledListener is the router Value of a listener's pseudo-route.
type compiledListener struct {
	name     string
	protocol Protocol
	tls      *tls.Config
}

// compiledRoute is the router Value of a route's rule.
type compiledRoute struct {
	label string // "namespace/name"
	refs  []compiledRef
	total uint64
}

type compiledRef struct {
	name    string
	backend *upstream.Backend // nil: unknown, its share is refused
	weight  uint64
	// tls is the backend's client TLS configuration without ALPN (the
	// stream is not HTTP), or nil when the backend is plaintext. Only
	// connections a TLSTerminate listener took use it.
	tls *tls.Config
}

func (r *compiledRoute) pick() *compiledRef {
	switch {
	case r.total == 0:
		return nil
	case len(r.refs) == 1:
		return &r.refs[0]
	}
	n := rand.Uint64N(r.total)
	for i := range r.refs {
		if n < r.refs[i].weight {
			return &r.refs[i]
		}
		n -= r.refs[i].weight
	}
	return &r.refs[len(r.refs)-1]
}

// ApplyError lists the parts of a Config that are not served; the rest is.
type ApplyError struct {
	// Listeners maps a listener name to why it is not served.
	Listeners map[string]error
	// Routes lists the routes left out, or the references of routes
	// served that were refused, and why.
	Routes []error
}

// Error implements error.
func (e *ApplyError) Error() string {
	var b strings.Builder
	b.WriteString("l4 configuration partly rejected:")
	for _, k := range slices.Sorted(maps.Keys(e.Listeners)) {
		b.WriteString("\n  ")
		b.WriteString(e.Listeners[k].Error())
	}
	for _, err := range e.Routes {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Apply makes cfg the configuration in effect, with backends resolved in
// backends (as [upstream.Set.Sync] returns them; call Apply again after
// each Sync). Connections in progress stay on the backend they reached;
// a connection whose route is no longer attached to its listener in cfg
// is closed. Invalid listeners and routes are reported in an *ApplyError
// and left out.
func (f *Forwarder) Apply(cfg Config, backends map[string]*upstream.Backend) error {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return ErrClosed
	}
	snap, aerr := compile(&cfg, backends)
	f.snap.Store(snap)
	f.dropStreams(snap)
	f.dropSessions(snap)
	if len(aerr.Listeners)+len(aerr.Routes) > 0 {
		return aerr
	}
	return nil
}

// compile builds a snapshot, leaving out what is invalid.
func compile(cfg *Config, backends map[string]*upstream.Backend) (*snapshot, *ApplyError) {
	aerr := &ApplyError{Listeners: make(map[string]error)}
	snap := &snapshot{ports: make(map[string]*portTable), routes: make(map[string]bool)}
	type port struct {
		listeners []router.Route
		routes    []router.Route
		protocol  Protocol
	}
	ports := make(map[string]*port)
	byName := make(map[string]*port)
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Name == "" || byName[l.Name] != nil {
			aerr.Listeners[fmt.Sprintf("listeners[%d]", i)] = fmt.Errorf("listeners[%d]: name %q empty or used twice", i, l.Name)
			continue
		}
		if l.Protocol > UDP {
			aerr.Listeners[l.Name] = fmt.Errorf("listener %q: protocol: unknown value %v", l.Name, l.Protocol)
			continue
		}
		if l.Protocol == TLSTerminate && l.TLS == nil {
			aerr.Listeners[l.Name] = fmt.Errorf("listener %q: tls: required for protocol TLSTerminate", l.Name)
			continue
		}
		if (l.Protocol == TCP || l.Protocol == UDP) && l.Hostname != "" {
			aerr.Listeners[l.Name] = fmt.Errorf("listener %q: hostname: %v listeners have none", l.Name, l.Protocol)
			continue
		}
		p := ports[l.Port]
		switch {
		case p == nil:
			p = &port{protocol: l.Protocol}
			ports[l.Port] = p
		case portKind(p.protocol) != portKind(l.Protocol):
			aerr.Listeners[l.Name] = fmt.Errorf("listener %q: protocol %v conflicts with %v on port %q", l.Name, l.Protocol, p.protocol, l.Port)
			continue
		case l.Protocol == TCP || l.Protocol == UDP:
			aerr.Listeners[l.Name] = fmt.Errorf("listener %q: port %q has a %v listener already", l.Name, l.Port, l.Protocol)
			continue
		}
		lr := router.Route{Name: l.Name, Rules: []router.Rule{{Value: &compiledListener{name: l.Name, protocol: l.Protocol, tls: l.TLS}}}}
		if l.Hostname != "" {
			lr.Hostnames = []string{l.Hostname}
		}
		if err := router.Compile([]router.Route{lr}).Err(); err != nil {
			aerr.Listeners[l.Name] = fmt.Errorf("listener %q: hostname: %w", l.Name, err)
			continue
		}
		p.listeners = append(p.listeners, lr)
		byName[l.Name] = p
	}
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		label := r.Namespace + "/" + r.Name
		var lists []string
		var p *port
		for _, ln := range r.Listeners {
			lp := byName[ln]
			if lp == nil {
				aerr.Routes = append(aerr.Routes, fmt.Errorf("route %s: listeners: no listener %q", label, ln))
				continue
			}
			if p != nil && lp != p {
				aerr.Routes = append(aerr.Routes, fmt.Errorf("route %s: listeners: %q is on another port than %q; give each port its own route", label, ln, lists[0]))
				continue
			}
			p = lp
			lists = append(lists, ln)
		}
		if p == nil {
			continue
		}
		if (p.protocol == TCP || p.protocol == UDP) && len(r.Hostnames) > 0 {
			aerr.Routes = append(aerr.Routes, fmt.Errorf("route %s: hostnames: a %v listener does not see server names", label, p.protocol))
			continue
		}
		cr := &compiledRoute{label: label}
		for _, ref := range r.Backends {
			b := backends[ref.Backend]
			cref := compiledRef{name: ref.Backend, backend: b, weight: uint64(ref.Weight)}
			if b != nil && b.TLS() != nil {
				cref.tls = b.TLS().Clone()
				cref.tls.NextProtos = nil
			}
			cr.refs = append(cr.refs, cref)
			cr.total += uint64(ref.Weight)
		}
		rr := router.Route{Namespace: r.Namespace, Name: r.Name, CreationTime: r.CreationTime, Listeners: lists,
			Hostnames: r.Hostnames, HostnameOrigins: r.HostnameOrigins, Rules: []router.Rule{{Value: cr}}}
		if err := router.Compile([]router.Route{rr}).Err(); err != nil {
			aerr.Routes = append(aerr.Routes, fmt.Errorf("route %s: %w", label, err))
			continue
		}
		p.routes = append(p.routes, rr)
		for _, ln := range lists {
			snap.routes[ln+"\x00"+label] = true
		}
	}
	for key, p := range ports {
		lt := router.Compile(p.listeners)
		rt := router.Compile(p.routes)
		if err := errors.Join(lt.Err(), rt.Err()); err != nil {
			// Each part compiled alone; together they cannot fail.
			aerr.Routes = append(aerr.Routes, fmt.Errorf("port %q: %w", key, err))
			continue
		}
		snap.ports[key] = &portTable{tls: portKind(p.protocol) == TLSPassthrough, udp: p.protocol == UDP, listeners: lt, routes: rt}
	}
	return snap, aerr
}

// Serve accepts connections on ln and serves each with
// [Forwarder.ServeConn] as connections of port, until ln fails or is
// closed, or the forwarder is shut down. It returns the accept error, or
// ErrClosed after Shutdown.
func (f *Forwarder) Serve(ln net.Listener, port string) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	f.serving[ln] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.serving, ln)
		f.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			f.mu.Lock()
			closed := f.closed
			f.mu.Unlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				f.log.Warn("accept", "port", port, "error", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go f.ServeConn(c, port)
	}
}

// ServeConn serves one accepted connection of port and closes it: it
// picks the listener and route (by SNI on TLS ports), connects to an
// endpoint of a backend of the route and forwards bytes both ways until
// both sides have finished, an error or the idle timeout. A connection
// that cannot be routed is closed without reaching any backend.
func (f *Forwarder) ServeConn(c net.Conn, port string) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		// Counted before the close, as refuse does: a client that sees
		// the close finds it counted.
		f.m.conns.WithLabelValues("", "", resultShutdown).Inc()
		c.Close()
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	defer f.wg.Done()
	f.m.active.Inc()
	defer f.m.active.Dec()

	snap := f.snap.Load()
	pt := snap.ports[port]
	if pt == nil || pt.udp {
		f.refuse(c, "", "", resultNoRoute, "no stream listener on port", "port", port)
		return
	}
	var sni string
	var hello []byte
	if pt.tls {
		c.SetReadDeadline(time.Now().Add(f.opts.HelloTimeout))
		h, raw, err := ReadClientHello(c, f.opts.MaxHelloBytes)
		if err != nil {
			f.refuse(c, "", "", resultBadHello, "ClientHello", "port", port, "error", err)
			return
		}
		c.SetReadDeadline(time.Time{})
		sni, hello = h.ServerName, raw
	}
	req := router.Request{Host: sni, Path: "/"}
	lres, err := pt.listeners.Match(&req)
	if err != nil {
		f.refuse(c, "", "", resultNoRoute, "no listener for server name", "port", port, "sni", sni)
		return
	}
	cl := lres.Rule.Value.(*compiledListener)
	req.Listener = cl.name
	rres, err := pt.routes.Match(&req)
	if err != nil {
		f.refuse(c, cl.name, "", resultNoRoute, "no route", "listener", cl.name, "sni", sni)
		return
	}
	cr := rres.Rule.Value.(*compiledRoute)
	ref := cr.pick()
	if ref == nil || ref.backend == nil {
		name := ""
		if ref != nil {
			name = ref.name
		}
		f.refuse(c, cl.name, cr.label, resultNoBackend, "invalid backend", "route", cr.label, "backend", name)
		return
	}

	client := c
	if cl.protocol == TLSTerminate {
		tc := tls.Server(&replayConn{Conn: c, pending: hello}, cl.tls)
		c.SetDeadline(time.Now().Add(f.opts.HelloTimeout))
		if err := tc.Handshake(); err != nil {
			f.refuse(c, cl.name, cr.label, resultHandshake, "TLS handshake", "listener", cl.name, "error", err)
			return
		}
		c.SetDeadline(time.Time{})
		client, hello = tc, nil
	}

	var upTLS *tls.Config
	if cl.protocol == TLSTerminate {
		upTLS = ref.tls
	}
	up, m, tk, err := f.connect("tcp", remoteHost(c), ref.backend, upTLS)
	if err != nil {
		result := resultConnect
		switch {
		case errors.Is(err, errNoHealthy):
			result = resultNoHealthy
		case errors.As(err, new(*upstreamTLSError)):
			result = resultUpTLS
		}
		f.refuse(client, cl.name, cr.label, result, "connect", "route", cr.label, "backend", ref.name, "error", err)
		return
	}
	m.Done(tk, true)
	defer m.Release()
	if len(hello) > 0 {
		if _, err := up.Write(hello); err != nil {
			up.Close()
			f.refuse(client, cl.name, cr.label, resultConnect, "replay ClientHello", "backend", ref.name, "error", err)
			return
		}
	}
	f.m.conns.WithLabelValues(cl.name, cr.label, resultForwarded).Inc()
	s := &stream{key: cl.name + "\x00" + cr.label, client: client, up: up}
	if !f.track(s) {
		s.close()
		return
	}
	defer f.untrack(s)
	s.run(f.opts.IdleTimeout, f.m.bytes.WithLabelValues(cl.name, cr.label, "upstream"), f.m.bytes.WithLabelValues(cl.name, cr.label, "downstream"))
}

// refuse closes a connection that is not forwarded and counts why.
func (f *Forwarder) refuse(c net.Conn, listener, route, result, msg string, args ...any) {
	f.m.conns.WithLabelValues(listener, route, result).Inc()
	c.Close()
	f.log.Debug("stream refused: "+msg, append(args, "client", c.RemoteAddr().String(), "result", result)...)
}

var errNoHealthy = errors.New("no healthy endpoint")

// upstreamTLSError is a failed TLS handshake with an endpoint.
type upstreamTLSError struct {
	addr string
	err  error
}

func (e *upstreamTLSError) Error() string {
	return fmt.Sprintf("endpoint %s: TLS handshake: %v", e.addr, e.err)
}

func (e *upstreamTLSError) Unwrap() error { return e.err }

// maxConnects bounds the endpoints tried for one connection.
const maxConnects = 3

// connect dials an endpoint of b admitted by its health, breaker and
// stream limit over network ("tcp" or "udp"): by Maglev over the client
// host when the backend balances so, else round robin, and with tc
// non-nil completes a TLS handshake with it (within the same
// ConnectTimeout). A failed dial or handshake counts against the
// endpoint's breaker and tries another. The endpoint returned holds a
// stream slot (Release it) and the breaker ticket of the attempt, which
// the caller settles with Done or Cancel.
func (f *Forwarder) connect(network, clientHost string, b *upstream.Backend, tc *tls.Config) (net.Conn, *upstream.Member, breaker.Ticket, error) {
	t := b.Table()
	var hash uint64
	hasKey := false
	if t.Maglev() != nil && t.Key().Source == upstream.KeyClientAddress && clientHost != "" {
		hash, hasKey = maglev.HashString(clientHost), true
	}
	var tried *upstream.Member
	var lastErr error
	for range min(t.Len(), maxConnects) {
		m, tk := t.Pick(hash, hasKey, tried)
		if m == nil {
			break
		}
		tried = m
		if !m.Acquire() {
			m.Cancel(tk)
			lastErr = fmt.Errorf("endpoint %s: at its connection limit", m.Addr())
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), f.opts.ConnectTimeout)
		up, err := f.opts.Dial(ctx, network, m.Addr())
		if err == nil && tc != nil {
			tlsUp := tls.Client(up, tc)
			if herr := tlsUp.HandshakeContext(ctx); herr != nil {
				up.Close()
				err = &upstreamTLSError{addr: m.Addr(), err: herr}
			} else {
				up = tlsUp
			}
		}
		cancel()
		if err != nil {
			m.Done(tk, false)
			m.Release()
			lastErr = err
			continue
		}
		return up, m, tk, nil
	}
	if lastErr == nil {
		lastErr = errNoHealthy
	}
	return nil, nil, breaker.Ticket{}, lastErr
}

// remoteHost is the host part of a connection's remote address.
func remoteHost(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return ""
	}
	return host
}

// replayConn reads pending bytes (the ClientHello already read) before
// the connection's own.
type replayConn struct {
	net.Conn
	pending []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// track registers a stream so that Apply and Shutdown can close it; false
// when the forwarder shut down or the stream's route went away meanwhile.
func (f *Forwarder) track(s *stream) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || !f.snap.Load().routes[s.key] {
		return false
	}
	f.streams[s] = struct{}{}
	return true
}

func (f *Forwarder) untrack(s *stream) {
	f.mu.Lock()
	delete(f.streams, s)
	f.mu.Unlock()
}

// dropStreams closes the streams whose route is not in snap.
func (f *Forwarder) dropStreams(snap *snapshot) {
	f.mu.Lock()
	var drop []*stream
	for s := range f.streams {
		if !snap.routes[s.key] {
			drop = append(drop, s)
		}
	}
	f.mu.Unlock()
	for _, s := range drop {
		s.close()
	}
}

// Streams returns the number of streams being forwarded.
func (f *Forwarder) Streams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

// Shutdown stops the forwarder: the listeners given to Serve are closed,
// connections not yet forwarding are refused, and streams are left to
// finish until ctx ends, when those still open are closed. The sockets
// given to ServePacket are closed and their UDP sessions end at once (a
// datagram protocol has no end to wait for). It returns ctx's error if
// streams had to be closed.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	for ln := range f.serving {
		ln.Close()
	}
	for ps := range f.packets {
		ps.pc.Close()
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	f.mu.Lock()
	streams := slices.Collect(func(yield func(*stream) bool) {
		for s := range f.streams {
			if !yield(s) {
				return
			}
		}
	})
	f.mu.Unlock()
	for _, s := range streams {
		s.close()
	}
	<-done
	return ctx.Err()
}

// stream is one forwarded connection pair.
type stream struct {
	key        string
	client, up net.Conn
	once       sync.Once
	last       atomic.Int64 // unix nanoseconds of the last byte moved
}

func (s *stream) close() {
	s.once.Do(func() {
		s.client.Close()
		s.up.Close()
	})
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// run copies both ways until both directions end. A direction that ends
// cleanly (EOF) half-closes its destination so the other direction can
// still finish; an error on either closes both.
func (s *stream) run(idle time.Duration, upBytes, downBytes prometheus.Counter) {
	s.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.pipe(s.up, s.client, idle, upBytes)
	}()
	s.pipe(s.client, s.up, idle, downBytes)
	<-done
	s.close()
}

// pipe copies src to dst. It returns after half-closing dst on EOF, or
// after closing both on an error or idle timeout.
func (s *stream) pipe(dst, src net.Conn, idle time.Duration, counter prometheus.Counter) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			s.last.Store(time.Now().UnixNano())
			if idle > 0 {
				dst.SetWriteDeadline(time.Now().Add(idle))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				s.close()
				return
			}
			counter.Add(float64(n))
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && idle > 0 {
			// The other direction may have moved bytes meanwhile: the
			// stream is idle only when neither did.
			if time.Since(time.Unix(0, s.last.Load())) < idle {
				continue
			}
		}
		if err == io.EOF {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
		}
		s.close()
		return
	}
}

// metrics are the forwarder's Prometheus series. Labels come from the
// configuration only.
type metrics struct {
	conns  *prometheus.CounterVec
	bytes  *prometheus.CounterVec
	active prometheus.Gauge

	udpSessions  *prometheus.CounterVec
	udpEnds      *prometheus.CounterVec
	udpActive    prometheus.Gauge
	udpDatagrams *prometheus.CounterVec
	udpBytes     *prometheus.CounterVec
	udpDropped   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_stream_connections_total",
			Help: "Connections accepted on TCP and TLS listeners, by listener, route and result (forwarded, no_route, bad_hello, tls_handshake_failed, invalid_backend, no_healthy_endpoint, connect_failed, backend_tls_failed, shut_down).",
		}, []string{"listener", "route", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_stream_bytes_total",
			Help: "Bytes forwarded on TCP and TLS listeners, by listener, route and direction (upstream: client to backend; downstream: backend to client).",
		}, []string{"listener", "route", "direction"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rauta_stream_active_connections",
			Help: "Connections open on TCP and TLS listeners, being routed or forwarded.",
		}),
	}
	m.udpSessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_udp_sessions_total",
		Help: "UDP sessions (the datagrams of one client address) by listener, route and result: opened, or why the datagram that would open one was dropped (no_route, invalid_backend, no_healthy_endpoint, connect_failed, session_limit, shut_down).",
	}, []string{"listener", "route", "result"})
	m.udpEnds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_udp_session_ends_total",
		Help: "UDP sessions ended, by listener, route and reason (idle, backend_refused, endpoint_gone, route_removed, listener_closed, shut_down).",
	}, []string{"listener", "route", "reason"})
	m.udpActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rauta_udp_active_sessions",
		Help: "UDP sessions open.",
	})
	m.udpDatagrams = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_udp_datagrams_total",
		Help: "UDP datagrams forwarded, by listener, route and direction (upstream: client to backend; downstream: backend to client).",
	}, []string{"listener", "route", "direction"})
	m.udpBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_udp_bytes_total",
		Help: "UDP payload bytes forwarded, by listener, route and direction (upstream: client to backend; downstream: backend to client).",
	}, []string{"listener", "route", "direction"})
	m.udpDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rauta_udp_dropped_datagrams_total",
		Help: "UDP datagrams dropped, by listener, route and reason: a session refused (the results of rauta_udp_sessions_total), upstream_write_failed or client_write_failed.",
	}, []string{"listener", "route", "reason"})
	reg.MustRegister(m.conns, m.bytes, m.active, m.udpSessions, m.udpEnds, m.udpActive, m.udpDatagrams, m.udpBytes, m.udpDropped)
	return m
}
