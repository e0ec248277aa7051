package proxy

import (
	"fmt"
	"net/http"
)

// Handler returns an http.Handler serving the routes of the named listener
// of the configuration in effect, for a program to mount in its own
// [http.Server], behind its own middleware or under its own listener. It
// serves the request path of the proxy's own listeners (routing, limits,
// filters, balancing, retries, session persistence, upgrades) and loads the
// snapshot for every request, so a Config applied while requests run
// reaches the next request; the name need not be in the Config yet.
//
// The listener is usually [Listener].Unbound, with no Address or Port; a
// listener the proxy binds can be mounted too, and is then served in both
// places. A request is taken as HTTPS when the mounting server saw TLS
// (r.TLS is set) or the listener's Protocol is HTTPS. While the name names
// no listener of the Config in effect, or one that could not be served,
// requests are answered 404 with reason no_route, like a request that no
// route matches.
//
// The handler needs the server's support for what it serves: hijacking
// (http.Hijacker) for protocol upgrades such as WebSocket over HTTP/1.1,
// flushing for streamed responses. [Proxy.Shutdown] does not wait for the
// requests of mounted handlers: shut the mounting server down first. A
// request that reaches the handler after Shutdown is answered 503 with
// reason shut_down.
func (p *Proxy) Handler(listener string) http.Handler {
	return &portHandler{p: p, listener: listener}
}

// unboundKey is the key of an Unbound listener's table in a snapshot: never
// a bindable address, and one per listener.
func unboundKey(name string) string { return "unbound/" + name }

// validateUnbound checks that an Unbound listener asks for nothing only a
// bound socket has.
func (l *Listener) validateUnbound() error {
	if !l.Unbound {
		return nil
	}
	switch {
	case l.Address != "":
		return fmt.Errorf("listener %q: address: must be empty on an unbound listener", l.Name)
	case l.Port != 0:
		return fmt.Errorf("listener %q: port: must be 0 on an unbound listener", l.Name)
	case len(l.Certificates) > 0:
		return fmt.Errorf("listener %q: certificates: an unbound listener's TLS is the mounting server's", l.Name)
	case l.ClientValidation != nil:
		return fmt.Errorf("listener %q: clientValidation: an unbound listener's TLS is the mounting server's", l.Name)
	}
	return nil
}
