package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rauta/rauta/internal/h1server"
	"github.com/rauta/rauta/internal/h2server"
	"github.com/rauta/rauta/tlsconfig"
)

// portKey identifies the socket a group of listeners binds: address:port.
// Listeners with port 0 share one ephemeral port per address and protocol,
// so an HTTP and an HTTPS listener asking for port 0 get a port each.
func portKey(l *Listener) string {
	if l.Unbound {
		return unboundKey(l.Name)
	}
	k := net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
	if l.Port == 0 || l.Protocol == UDP { // a UDP socket is apart from the TCP one of its port
		k += "/" + l.Protocol.String()
	}
	return k
}

// bindAddress is the address to listen on for a port key.
func bindAddress(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return key
}

// boundPort is one bound socket with its server. It outlives configuration
// changes as long as some listener still wants its address and protocol.
type boundPort struct {
	key      string
	protocol ListenerProtocol
	ln       net.Listener
	pc       net.PacketConn // UDP, instead of ln
	srv      server
	certs    *tlsconfig.Store // HTTPS only
	done     chan struct{}    // closed when Serve returns
}

// server serves a bound port: h1server (the default) or net/http.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// newFastServer serves HTTP/1.1 with h1server and HTTP/2 (ALPN h2 over TLS,
// h2c with prior knowledge) with h2server (ServerRauta).
func newFastServer(p *Proxy, g *portGroup, h http.Handler, lim Limits, tc *tls.Config) server {
	h2 := p.newH2Server(lim)
	serveH2 := func(c net.Conn) { h2.ServeConn(c, &h2server.ServeConnOpts{Handler: h}) }
	srv := &h1server.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          p.log,
		ConnState:         p.metrics.connState(g.key),
	}
	srv.RegisterOnShutdown(func() { h2.Shutdown(context.Background()) })
	if tc != nil {
		srv.TLSNextProto = map[string]func(net.Conn){"h2": serveH2}
	} else {
		srv.H2CPriorKnowledge = serveH2
	}
	return srv
}

// newStdlibServer serves with net/http (ServerNetHTTP).
func newStdlibServer(p *Proxy, g *portGroup, h http.Handler, lim Limits, tc *tls.Config) server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		ConnState:         p.metrics.connState(g.key),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: lim.MaxConcurrentStreams,
			MaxReadFrameSize:     lim.MaxReadFrameSize,
		},
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if tc != nil {
		srv.TLSConfig = tc
		srv.Protocols.SetHTTP2(true)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

// listenerManager binds, keeps and releases ports as configurations come and
// go. Its methods are called with the proxy's apply lock held.
type listenerManager struct {
	p     *Proxy
	mu    sync.Mutex // guards ports for readers outside Apply (Addr)
	ports map[string]*boundPort
}

// portGroup is the desired state of one port, computed from a Config.
type portGroup struct {
	key       string
	protocol  ListenerProtocol
	listeners []*Listener
	unbound   bool // one Unbound listener, served by Proxy.Handler only
}

// groupListeners groups a Config's listeners by address:port. Listeners of
// different protocols on one port conflict, and so do HTTPS listeners whose
// client validation differs from that of the port's first listener (the
// handshake, which validates clients, comes before the request names a
// listener); the later ones are reported and left out.
func groupListeners(ls []Listener) (map[string]*portGroup, map[string]error) {
	groups := make(map[string]*portGroup)
	errs := make(map[string]error)
	for i := range ls {
		l := &ls[i]
		k := portKey(l)
		g := groups[k]
		switch {
		case g == nil:
			g = &portGroup{key: k, protocol: l.Protocol, unbound: l.Unbound}
			groups[k] = g
		case g.protocol != l.Protocol:
			errs[l.Name] = fmt.Errorf("listener %q: protocol %v conflicts with %v on %s", l.Name, l.Protocol, g.protocol, k)
			continue
		case !l.ClientValidation.equal(g.listeners[0].ClientValidation):
			errs[l.Name] = fmt.Errorf("listener %q: clientValidation differs from that of listener %q on %s; client certificates are validated per port", l.Name, g.listeners[0].Name, k)
			continue
		}
		g.listeners = append(g.listeners, l)
	}
	return groups, errs
}

// clientAuthFor returns the client certificate validation of an HTTPS port
// group: that of its first listener, which the others share.
func clientAuthFor(g *portGroup) tlsconfig.ClientAuth {
	v := g.listeners[0].ClientValidation
	if v == nil {
		return tlsconfig.ClientAuth{}
	}
	a := tlsconfig.ClientAuth{Mode: tlsconfig.ClientAuthRequireValid, CACertificates: v.CACertificates}
	if v.Mode == AllowInsecureFallback {
		a.Mode = tlsconfig.ClientAuthAllowInsecure
	}
	return a
}

// certificatesFor builds the SNI store contents of an HTTPS port group. A
// certificate that fails to load is reported against its listener, and the
// others are still served.
func certificatesFor(g *portGroup, errs map[string]error) []tlsconfig.Certificate {
	var out []tlsconfig.Certificate
	for _, l := range g.listeners {
		for _, c := range l.Certificates {
			kp, err := tlsconfig.LoadKeyPair(c.CertPEM, c.KeyPEM, tlsconfig.KeyPairOptions{})
			if err != nil {
				if errs[l.Name] == nil {
					errs[l.Name] = fmt.Errorf("listener %q: certificate %q: %w", l.Name, c.Name, err)
				}
				continue
			}
			// The certificate's own names select it; a listener hostname
			// adds nothing the certificate does not cover.
			out = append(out, tlsconfig.Certificate{Cert: kp})
		}
	}
	return out
}

// apply binds the ports the groups need, updates certificates of ports that
// stay, and shuts down ports no longer wanted. It returns an error per
// listener that could not be served.
func (m *listenerManager) apply(groups map[string]*portGroup, errs map[string]error) {
	for k, bp := range m.ports {
		g := groups[k]
		if g == nil || g.protocol != bp.protocol {
			m.release(bp)
		}
	}
	for k, g := range groups {
		if g.unbound {
			continue
		}
		var certs []tlsconfig.Certificate
		if g.protocol == HTTPS {
			certs = certificatesFor(g, errs)
		}
		bp := m.ports[k]
		if bp == nil {
			var err error
			bp, err = m.bind(g)
			if err != nil {
				for _, l := range g.listeners {
					if errs[l.Name] == nil {
						errs[l.Name] = err
					}
				}
				continue
			}
			m.mu.Lock()
			m.ports[k] = bp
			m.mu.Unlock()
		}
		if bp.certs != nil {
			// Client validation first: a port that cannot validate clients
			// as configured serves nobody rather than everybody.
			if err := bp.certs.SetClientAuth(clientAuthFor(g)); err != nil {
				for _, l := range g.listeners {
					if errs[l.Name] == nil {
						errs[l.Name] = fmt.Errorf("listener %q: clientValidation %q: %w", l.Name, l.ClientValidation.Name, err)
					}
				}
				certs = nil
			}
			if err := bp.certs.Update(certs...); err != nil {
				for _, l := range g.listeners {
					if errs[l.Name] == nil {
						errs[l.Name] = fmt.Errorf("listener %q: certificates: %w", l.Name, err)
					}
				}
			}
		}
	}
}

// bind opens the socket of a port group and starts serving it.
func (m *listenerManager) bind(g *portGroup) (*boundPort, error) {
	p := m.p
	if g.protocol == UDP {
		return m.bindPacket(g)
	}
	ln, err := net.Listen("tcp", bindAddress(g.key))
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", g.key, err)
	}
	lim := p.opts.Limits.withDefaults()
	ln = p.metrics.limitConns(ln, g.key, lim)
	bp := &boundPort{key: g.key, protocol: g.protocol, ln: ln, done: make(chan struct{})}
	if isStream(g.protocol) {
		srv := &streamServer{f: p.streams, port: g.key, ln: ln}
		bp.srv = srv
		go func() {
			defer close(bp.done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("listener stopped", "address", g.key, "error", err)
			}
		}()
		p.log.Info("listening", "address", ln.Addr().String(), "protocol", g.protocol.String())
		return bp, nil
	}
	handler := &portHandler{p: p, key: g.key, tls: g.protocol == HTTPS}
	var tc *tls.Config
	if g.protocol == HTTPS {
		bp.certs = tlsconfig.NewStore(tlsconfig.StoreOptions{})
		tc, err = tlsconfig.NewServerConfig(bp.certs, tlsconfig.ServerOptions{})
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("tls config for %s: %w", g.key, err)
		}
	}
	var srv server
	switch p.opts.Server {
	case ServerRauta:
		srv = newFastServer(p, g, handler, lim, tc)
	case ServerNetHTTP:
		srv = newStdlibServer(p, g, handler, lim, tc)
	default:
		ln.Close()
		return nil, fmt.Errorf("listener %s: Options.Server is %v, neither ServerRauta nor ServerNetHTTP", g.key, p.opts.Server)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	bp.srv = srv
	go func() {
		defer close(bp.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("listener stopped", "address", g.key, "error", err)
		}
	}()
	p.log.Info("listening", "address", ln.Addr().String(), "protocol", g.protocol.String())
	return bp, nil
}

// release stops accepting on a port and lets its requests finish within the
// shutdown timeout, in the background.
func (m *listenerManager) release(bp *boundPort) {
	m.mu.Lock()
	delete(m.ports, bp.key)
	m.mu.Unlock()
	timeout := m.p.opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := bp.srv.Shutdown(ctx); err != nil {
			bp.srv.Close()
		}
	}()
	m.p.log.Info("listener released", "address", bp.key)
}

// shutdown stops every port and waits for requests to finish until ctx ends.
func (m *listenerManager) shutdown(ctx context.Context) error {
	m.mu.Lock()
	ports := make([]*boundPort, 0, len(m.ports))
	for _, bp := range m.ports {
		ports = append(ports, bp)
	}
	m.ports = map[string]*boundPort{}
	m.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(ports))
	for i, bp := range ports {
		wg.Go(func() {
			if err := bp.srv.Shutdown(ctx); err != nil {
				bp.srv.Close()
				errs[i] = fmt.Errorf("shutdown %s: %w", bp.key, err)
			}
			<-bp.done
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// addr returns the bound address of a port key.
func (m *listenerManager) addr(key string) (net.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	bp := m.ports[key]
	if bp == nil {
		return nil, false
	}
	if bp.pc != nil {
		return bp.pc.LocalAddr(), true
	}
	return bp.ln.Addr(), true
}

// Limits bound what a client can make the proxy hold. Zero fields take the
// defaults noted on each.
//
// Memory per client connection: an idle HTTP/1 connection holds its 4 KiB
// read buffer, its state and its goroutine (about 14 KiB in all, measured
// with 10,000 idle connections; see docs/reliability.md). While it serves
// a request it also holds an 8 KiB write buffer, 4 KiB of held-back
// response body and 4 KiB of scratch space (taken from pools, given back
// when the connection goes idle), and the request head, at most
// MaxHeaderBytes: about 100 KiB at the defaults. An HTTP/2 connection of
// rauta's server (ServerRauta) holds at most 1 MiB of unread request body
// (its connection flow-control window, whatever its streams), a 16 KiB
// read buffer, a frame buffer as large as the largest frame received (at
// most MaxReadFrameSize), and per open stream (at most
// MaxConcurrentStreams) its header fields (at most MaxHeaderBytes), at
// most 64 KiB of response queued for writing and its handler's goroutine:
// about 2.1 MiB plus 140 KiB per stream at the defaults.
// MaxConnsPerListener times these bounds the memory clients can hold on a
// port.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris):
	// a connection that has not sent a whole request head this long after
	// it was accepted, or after the first byte of a later request, is
	// closed; default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; default 0
	// (none: request bodies may stream; route timeouts bound exchanges).
	ReadTimeout time.Duration
	// BodyReadTimeout bounds receiving a request body, from the end of
	// its head, for requests whose listener, route and rule set no
	// RequestLimits.ReadTimeout: a body still arriving then is answered
	// 408 and its backend request aborted. Default 0 (none: gRPC client
	// streams and long uploads are bodies too).
	BodyReadTimeout time.Duration
	// WriteTimeout bounds writing a response; default 0 (none: responses
	// may stream; route timeouts bound exchanges). Over HTTP/2 it bounds
	// each stream, from its request's headers: a stream still writing
	// then is reset (INTERNAL_ERROR) and the connection's other streams
	// go on, so a client that stops reading one response holds no other.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long; default 60s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header section; default 64 KiB.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds the concurrent streams of an HTTP/2
	// connection; default 250.
	MaxConcurrentStreams int
	// MaxReadFrameSize is the largest HTTP/2 frame accepted; default 16 KiB,
	// the protocol's initial frame size.
	MaxReadFrameSize int
	// MaxBodyBytes is the largest request body, answered 413 past it, for
	// requests whose listener, route and rule set no
	// RequestLimits.MaxBodyBytes; default 0 (no limit).
	MaxBodyBytes int64
	// MaxConnsPerListener bounds the client connections open at once on
	// each bound port (the listeners sharing an address and port share
	// it: a connection names its listener only with its first request).
	// A connection past it is closed as soon as it is accepted, before a
	// byte is read, and counted in rauta_connections_refused_total with
	// reason listener_limit. Default DefaultMaxConnsPerListener; negative
	// means no limit.
	MaxConnsPerListener int
	// MaxConnsPerClient bounds the connections one client IP address has
	// open at once on each bound port; past it, a new connection is closed
	// at accept and counted with reason client_limit. Default 0 (no
	// limit: many clients may share an address behind a NAT or a load
	// balancer).
	MaxConnsPerClient int
	// HTTP2 bounds what an HTTP/2 client can make rauta's own HTTP/2
	// server (ServerRauta) do; see [HTTP2Limits].
	HTTP2 HTTP2Limits
}

// DefaultMaxConnsPerListener is the default Limits.MaxConnsPerListener:
// at about 14 KiB per idle HTTP/1 connection, 20,000 of them hold about
// 275 MiB. Raise it, with the process's open-file limit, for more.
const DefaultMaxConnsPerListener = 20000

func (l Limits) withDefaults() Limits {
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 60 * time.Second
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = 250
	}
	if l.MaxReadFrameSize == 0 {
		l.MaxReadFrameSize = 16 << 10
	}
	if l.MaxConnsPerListener == 0 {
		l.MaxConnsPerListener = DefaultMaxConnsPerListener
	}
	return l
}
