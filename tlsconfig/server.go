package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// Protocols selects the application protocols offered with ALPN.
type Protocols uint8

const (
	// H2AndHTTP11 offers "h2" and "http/1.1", preferring h2.
	H2AndHTTP11 Protocols = iota
	// HTTP11Only offers only "http/1.1".
	HTTP11Only
	// H2Only offers only "h2" (for example to a gRPC backend).
	H2Only
)

// String returns the constant's name.
func (p Protocols) String() string {
	switch p {
	case H2AndHTTP11:
		return "H2AndHTTP11"
	case HTTP11Only:
		return "HTTP11Only"
	case H2Only:
		return "H2Only"
	}
	return fmt.Sprintf("Protocols(%d)", uint8(p))
}

// NextProtos returns the ALPN protocol identifiers for p, in order of
// preference, as a new slice; nil for an unknown value.
func (p Protocols) NextProtos() []string {
	switch p {
	case H2AndHTTP11:
		return []string{"h2", "http/1.1"}
	case HTTP11Only:
		return []string{"http/1.1"}
	case H2Only:
		return []string{"h2"}
	}
	return nil
}

// ServerOptions configures [NewServerConfig]. The zero value offers h2 and
// HTTP/1.1 with TLS 1.2 as the minimum version.
type ServerOptions struct {
	// Protocols is what ALPN offers to clients.
	Protocols Protocols
	// MinVersion is the lowest TLS version accepted: tls.VersionTLS12 (the
	// default when zero) or tls.VersionTLS13.
	MinVersion uint16
}

// modernCipherSuites returns the TLS 1.2 suites offered: ECDHE key exchange
// with an AEAD only. TLS 1.3 suites are not configurable in crypto/tls and
// are all AEAD. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 is the suite HTTP/2
// requires (RFC 9113, section 9.2.2).
func modernCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// curvePreferences returns the key exchanges accepted: X25519 and P-256,
// plus the X25519MLKEM768 hybrid post-quantum exchange, which clients that
// support it (Go 1.24+, current browsers) prefer. crypto/tls ignores the
// order of this list and applies its own preference.
func curvePreferences() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
}

func checkMinVersion(v uint16) (uint16, error) {
	switch v {
	case 0:
		return tls.VersionTLS12, nil
	case tls.VersionTLS12, tls.VersionTLS13:
		return v, nil
	}
	return 0, fmt.Errorf("MinVersion %#04x: must be tls.VersionTLS12 or tls.VersionTLS13", v)
}

// NewServerConfig returns a *tls.Config for a listener that terminates TLS
// with certificates selected by store. The config offers the ALPN protocols
// of opts, accepts TLS 1.2 (or 1.3) and newer, offers only ECDHE+AEAD cipher
// suites for TLS 1.2, and the X25519 and P-256 key exchanges (plus the
// X25519MLKEM768 hybrid).
//
// The config reads certificates from store on each handshake, so
// [Store.Update] takes effect for new handshakes without touching the config
// or the listener. The config has no Certificates of its own: when the store
// selects none, the handshake fails with an unrecognized_name alert.
//
// net/http's Server adds "h2" to its TLSConfig's NextProtos when HTTP/2 is
// enabled on it; with [HTTP11Only], also disable HTTP/2 on the server (for
// example with http.Server.Protocols).
func NewServerConfig(store *Store, opts ServerOptions) (*tls.Config, error) {
	if store == nil {
		return nil, errors.New("tlsconfig: store: nil")
	}
	minVersion, err := checkMinVersion(opts.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: ServerOptions.%w", err)
	}
	protos := opts.Protocols.NextProtos()
	if protos == nil {
		return nil, fmt.Errorf("tlsconfig: ServerOptions.Protocols: unknown value %d", uint8(opts.Protocols))
	}
	cfg := &tls.Config{
		GetCertificate:   store.GetCertificate,
		NextProtos:       protos,
		MinVersion:       minVersion,
		CipherSuites:     modernCipherSuites(),
		CurvePreferences: curvePreferences(),
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return store.configForClient(cfg), nil
	}
	return cfg, nil
}
