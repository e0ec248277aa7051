package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/tlsconfig"
	"github.com/rauta/rauta/upstream"
)

// validateStream checks the fields that TCP, TLS and UDP listeners use
// differently from HTTP ones. Errors name the listener and the field.
func (l *Listener) validateStream() error {
	stream := isStream(l.Protocol)
	plain := l.Protocol == TCP || l.Protocol == UDP
	switch {
	case l.Passthrough && l.Protocol != TLS:
		return fmt.Errorf("listener %q: passthrough: only TLS listeners pass TLS through", l.Name)
	case !stream:
		return nil
	case l.Unbound:
		return fmt.Errorf("listener %q: unbound: only HTTP and HTTPS listeners can be mounted in another server", l.Name)
	case plain && l.Hostname != "":
		return fmt.Errorf("listener %q: hostname: a %v listener sees no server name", l.Name, l.Protocol)
	case plain && len(l.Certificates) > 0:
		return fmt.Errorf("listener %q: certificates: a %v listener does not terminate TLS", l.Name, l.Protocol)
	case l.Passthrough && len(l.Certificates) > 0:
		return fmt.Errorf("listener %q: certificates: a passthrough listener does not terminate TLS", l.Name)
	case l.Protocol == TLS && !l.Passthrough && len(l.Certificates) == 0:
		return fmt.Errorf("listener %q: certificates: required to terminate TLS (or set passthrough)", l.Name)
	}
	return nil
}

// isStream reports whether a listener protocol is served by the stream
// forwarder rather than the request path.
func isStream(p ListenerProtocol) bool { return p == TCP || p == TLS || p == UDP }

// newStreams returns the proxy's stream forwarder: Options.Streams with
// the proxy's logger and metrics registry.
func (p *Proxy) newStreams(reg prometheus.Registerer) *l4.Forwarder {
	o := p.opts.Streams
	o.Logger = p.log
	o.Registerer = reg
	return l4.New(o)
}

// applyStreams gives the forwarder the TCP, TLS and UDP listeners that are
// bound and the stream routes, with the backends of snap. What it cannot
// serve is added to aerr.
func (p *Proxy) applyStreams(cfg *Config, snap *snapshot, aerr *ApplyError) {
	var sc l4.Config
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if !isStream(l.Protocol) || aerr.Listeners[l.Name] != nil {
			continue
		}
		if _, bound := p.listeners.ports[portKey(l)]; !bound {
			continue
		}
		sl := l4.Listener{Name: l.Name, Port: portKey(l), Hostname: l.Hostname}
		switch {
		case l.Protocol == TCP:
			sl.Protocol = l4.TCP
		case l.Protocol == UDP:
			sl.Protocol = l4.UDP
		case l.Passthrough:
			sl.Protocol = l4.TLSPassthrough
		default:
			sl.Protocol = l4.TLSTerminate
			g := &portGroup{key: sl.Port, listeners: []*Listener{l}}
			certs := certificatesFor(g, aerr.Listeners)
			if aerr.Listeners[l.Name] != nil {
				continue
			}
			store := tlsconfig.NewStore(tlsconfig.StoreOptions{})
			if err := store.Update(certs...); err != nil {
				aerr.Listeners[l.Name] = fmt.Errorf("listener %q: certificates: %w", l.Name, err)
				continue
			}
			tc, err := tlsconfig.NewServerConfig(store, tlsconfig.ServerOptions{})
			if err != nil {
				aerr.Listeners[l.Name] = fmt.Errorf("listener %q: %w", l.Name, err)
				continue
			}
			tc.NextProtos = nil // the stream is not HTTP: no ALPN
			sl.TLS = tc
		}
		sc.Listeners = append(sc.Listeners, sl)
	}
	sc.Routes = cfg.StreamRoutes
	backends := make(map[string]*upstream.Backend, len(snap.backends))
	for name, bs := range snap.backends {
		backends[name] = bs.up
	}
	err := p.streams.Apply(sc, backends)
	var serr *l4.ApplyError
	switch {
	case errors.As(err, &serr):
		for k, v := range serr.Listeners {
			aerr.Listeners[k] = v
		}
		aerr.Routes = append(aerr.Routes, serr.Routes...)
	case err != nil:
		aerr.Routes = append(aerr.Routes, err)
	}
}

// streamServer serves a bound TCP or TLS port with the proxy's forwarder,
// behind the server interface of the listener manager.
type streamServer struct {
	f    *l4.Forwarder
	port string
	ln   net.Listener
}

// Serve forwards the connections of the port until the listener closes.
func (s *streamServer) Serve(ln net.Listener) error {
	err := s.f.Serve(ln, s.port)
	if errors.Is(err, l4.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return http.ErrServerClosed
	}
	return err
}

// Shutdown stops accepting. The port's streams end with their routes
// (Apply) or with the forwarder's own Shutdown.
func (s *streamServer) Shutdown(context.Context) error { return s.ln.Close() }

// Close stops accepting.
func (s *streamServer) Close() error { return s.ln.Close() }

// bindPacket opens the socket of a UDP port group and serves its
// datagrams with the proxy's forwarder.
func (m *listenerManager) bindPacket(g *portGroup) (*boundPort, error) {
	p := m.p
	pc, err := net.ListenPacket("udp", bindAddress(g.key))
	if err != nil {
		return nil, fmt.Errorf("bind %s/UDP: %w", bindAddress(g.key), err)
	}
	bp := &boundPort{key: g.key, protocol: g.protocol, pc: pc, srv: packetServer{pc}, done: make(chan struct{})}
	go func() {
		defer close(bp.done)
		err := p.streams.ServePacket(pc, g.key)
		if err != nil && !errors.Is(err, l4.ErrClosed) && !errors.Is(err, net.ErrClosed) {
			p.log.Error("listener stopped", "address", g.key, "error", err)
		}
	}()
	p.log.Info("listening", "address", pc.LocalAddr().String(), "protocol", g.protocol.String())
	return bp, nil
}

// packetServer is the server of a bound UDP port for the listener
// manager: closing the socket ends the port's sessions.
type packetServer struct{ pc net.PacketConn }

// Serve is not used: bindPacket serves the socket.
func (s packetServer) Serve(net.Listener) error {
	return errors.New("proxy: a UDP port has no stream listener")
}

// Shutdown closes the socket; a datagram protocol has nothing to drain.
func (s packetServer) Shutdown(context.Context) error { return s.pc.Close() }

// Close closes the socket.
func (s packetServer) Close() error { return s.pc.Close() }
