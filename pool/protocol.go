package pool

import (
	"crypto/tls"
	"fmt"
	"net"
)

// Protocol is the protocol an endpoint transport speaks to its backend.
type Protocol uint8

const (
	// HTTP1 is HTTP/1.1 over cleartext TCP.
	HTTP1 Protocol = iota
	// H2C is HTTP/2 over cleartext TCP with prior knowledge (no Upgrade
	// dance), as used for appProtocol kubernetes.io/h2c.
	H2C
	// H2 is HTTP/2 over TLS, negotiated with ALPN "h2". A backend that does
	// not select "h2" is spoken to with HTTP/1.1 over TLS instead.
	H2
	// HTTP1TLS is HTTP/1.1 over TLS (ALPN "http/1.1").
	HTTP1TLS
)

// String returns the protocol's name as used in metrics labels:
// "http1", "h2c", "h2" or "http1-tls".
func (p Protocol) String() string {
	switch p {
	case HTTP1:
		return "http1"
	case H2C:
		return "h2c"
	case H2:
		return "h2"
	case HTTP1TLS:
		return "http1-tls"
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// TLS reports whether the protocol runs over TLS.
func (p Protocol) TLS() bool { return p == H2 || p == HTTP1TLS }

func (p Protocol) valid() bool { return p <= HTTP1TLS }

// Key identifies an endpoint transport in a [Pool]. Two keys are equal when
// their address, protocol and TLS configuration pointer are equal: a new
// *tls.Config (for example after a CA rotation) gives a new transport, and
// the old one is pruned by [Pool.Retain] once no configuration refers to it.
type Key struct {
	// Address is the backend endpoint as "ip:port" (or "host:port").
	Address string
	// Protocol is the protocol spoken to the endpoint.
	Protocol Protocol
	// TLS is the client TLS configuration for H2 and HTTP1TLS; it must be
	// nil for HTTP1 and H2C. A nil TLS for a TLS protocol means a default
	// configuration (system roots, server name taken from Address).
	// The pool never modifies it; it clones it once per endpoint.
	TLS *tls.Config
}

// String returns "protocol://address", for logs.
func (k Key) String() string { return k.Protocol.String() + "://" + k.Address }

func (k Key) validate() error {
	if !k.Protocol.valid() {
		return fmt.Errorf("pool: key %s: Protocol: unknown value %d", k.Address, uint8(k.Protocol))
	}
	if _, _, err := net.SplitHostPort(k.Address); err != nil {
		return fmt.Errorf("pool: key Address %q: %w", k.Address, err)
	}
	if k.TLS != nil && !k.Protocol.TLS() {
		return fmt.Errorf("pool: key %s: TLS: set for cleartext protocol %s", k.Address, k.Protocol)
	}
	return nil
}
