package l4

import (
	"crypto/tls"
	"strconv"
	"time"
)

// Protocol is what a [Listener] does with a connection.
type Protocol uint8

// Listener protocols.
const (
	// TCP forwards the stream as it comes to a backend of the port's
	// route.
	TCP Protocol = iota
	// TLSPassthrough reads the client's TLS ClientHello, picks the route
	// by its server name (SNI), and forwards the bytes untouched, the
	// ClientHello included: the backend terminates TLS.
	TLSPassthrough
	// TLSTerminate reads the ClientHello and picks the route by SNI as
	// TLSPassthrough does, then completes the handshake with the
	// listener's TLS configuration and forwards the decrypted stream.
	TLSTerminate
	// UDP forwards the datagrams of each client address, a session, to
	// a backend of the port's route; see [Forwarder.ServePacket].
	UDP
)

// String returns "TCP", "TLSPassthrough", "TLSTerminate" or "UDP".
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case TLSPassthrough:
		return "TLSPassthrough"
	case TLSTerminate:
		return "TLSTerminate"
	case UDP:
		return "UDP"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Config is what a [Forwarder] serves: listeners grouped by the socket
// they share, and the routes attached to them.
type Config struct {
	// Listeners are named; several may share a Port.
	Listeners []Listener `json:"listeners"`
	// Routes attach to listeners by name.
	Routes []Route `json:"routes"`
}

// Listener is one listener of a port.
type Listener struct {
	// Name identifies the listener; routes name it.
	Name string `json:"name"`
	// Port is the key of the socket the listener shares with others of
	// the same Port, as given to [Forwarder.Serve] or
	// [Forwarder.ServeConn] ("0.0.0.0:443", say).
	Port string `json:"port"`
	// Protocol is what the listener does with a connection. The
	// listeners of one Port are either one TCP listener, one UDP
	// listener, or TLS listeners (passthrough and terminating ones may be
	// mixed, told apart by Hostname).
	Protocol Protocol `json:"protocol"`
	// Hostname, for TLS listeners, is the server name the listener
	// takes: an exact name or a wildcard ("*.example.com"); empty takes
	// any. Among the listeners of a port, a connection goes to the one
	// whose Hostname matches its SNI most specifically (an exact name,
	// then the longest wildcard, then none), by the rules of package
	// router.
	Hostname string `json:"hostname,omitempty"`
	// TLS is the server configuration a TLSTerminate listener completes
	// handshakes with.
	TLS *tls.Config `json:"-"`
}

// Route sends the connections of its listeners to weighted backends:
// a TCPRoute, a UDPRoute (whose sessions it shares out as connections),
// or a TLSRoute, whose hostnames pick it by SNI.
type Route struct {
	// Namespace and Name identify the route; metrics carry
	// "{Namespace}/{Name}".
	Namespace string `json:"namespace"`
	// Name is the route's name within Namespace.
	Name string `json:"name"`
	// CreationTime ranks routes of equal hostnames: the oldest wins.
	CreationTime time.Time `json:"creationTime"`
	// Listeners are the names of the listeners the route is attached to.
	Listeners []string `json:"listeners"`
	// Hostnames are the route's effective hostnames for TLS listeners
	// (already intersected with the listener's, as
	// router.IntersectHostnames computes them); empty matches any
	// server name, and a connection without SNI. TCP and UDP routes
	// have none.
	Hostnames []string `json:"hostnames,omitempty"`
	// HostnameOrigins are the route's own hostnames each effective
	// hostname came from, for precedence (router.Route.HostnameOrigins).
	HostnameOrigins []string `json:"hostnameOrigins,omitempty"`
	// Backends share the route's connections by weight. A reference
	// whose Backend the forwarder does not know takes its share and
	// closes it: the connection is refused.
	Backends []BackendRef `json:"backends"`
}

// BackendRef is a weighted reference to a backend of the upstream set.
type BackendRef struct {
	// Backend names an upstream.Backend.
	Backend string `json:"backend"`
	// Weight is the reference's share; zero takes no connections.
	Weight uint32 `json:"weight"`
}
