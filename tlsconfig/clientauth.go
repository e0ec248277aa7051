package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// ClientAuthMode says whether a server asks clients for a certificate, and
// which connections it accepts (mutual TLS).
type ClientAuthMode uint8

const (
	// ClientAuthNone asks for no client certificate.
	ClientAuthNone ClientAuthMode = iota
	// ClientAuthRequireValid asks for a client certificate and requires
	// one that verifies against the trusted certificate authorities, for
	// client authentication (extended key usage clientAuth, or none); the
	// handshake fails without one. This is the Gateway API frontend
	// validation mode AllowValidOnly.
	ClientAuthRequireValid
	// ClientAuthAllowInsecure asks for a client certificate but accepts the
	// connection without one, or with one that does not verify: nothing is
	// verified, and the certificates presented, if any, are in the
	// connection state's PeerCertificates (with no VerifiedChains). This is
	// the Gateway API frontend validation mode AllowInsecureFallback, which
	// leaves client authorization to the backend.
	ClientAuthAllowInsecure
)

// String returns the constant's name.
func (m ClientAuthMode) String() string {
	switch m {
	case ClientAuthNone:
		return "ClientAuthNone"
	case ClientAuthRequireValid:
		return "ClientAuthRequireValid"
	case ClientAuthAllowInsecure:
		return "ClientAuthAllowInsecure"
	}
	return fmt.Sprintf("ClientAuthMode(%d)", uint8(m))
}

// ClientAuth is the client certificate validation of a [Store]'s
// handshakes. The zero value asks for no client certificate.
type ClientAuth struct {
	// Mode says whether a certificate is asked for and required.
	Mode ClientAuthMode
	// CACertificates is a PEM bundle of the certificate authorities trusted
	// to sign client certificates; blocks other than CERTIFICATE are
	// skipped. It is required unless Mode is ClientAuthNone, and is then
	// also the list of acceptable authorities sent to clients in the
	// certificate request.
	CACertificates []byte
}

// clientAuthState is one published, never modified, client authentication
// setting of a Store.
type clientAuthState struct {
	mode ClientAuthMode
	pool *x509.CertPool
	// derived caches the config handed to handshakes, made from the
	// listener's config on first use.
	derived atomic.Pointer[derivedConfig]
}

// derivedConfig is the config made from base for one clientAuthState.
type derivedConfig struct {
	base, cfg *tls.Config
}

// buildClientAuth checks a and returns its state; nil for ClientAuthNone.
func buildClientAuth(a ClientAuth) (*clientAuthState, error) {
	switch a.Mode {
	case ClientAuthNone:
		if len(a.CACertificates) > 0 {
			return nil, errors.New("ClientAuth.CACertificates: set, but Mode is ClientAuthNone")
		}
		return nil, nil
	case ClientAuthRequireValid, ClientAuthAllowInsecure:
	default:
		return nil, fmt.Errorf("ClientAuth.Mode: unknown value %d", uint8(a.Mode))
	}
	if len(a.CACertificates) == 0 {
		return nil, fmt.Errorf("ClientAuth.CACertificates: required with Mode %v", a.Mode)
	}
	certs, _, err := parseCertificates(a.CACertificates)
	if err != nil {
		return nil, fmt.Errorf("ClientAuth.CACertificates: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &clientAuthState{mode: a.Mode, pool: pool}, nil
}

// SetClientAuth replaces the client certificate validation of the store's
// handshakes, atomically, keeping its certificates. On error nothing
// changes. Like [Store.Update], it takes effect for new handshakes only,
// and only on configs made by [NewServerConfig].
//
// A TLS session resumed from a ticket is held to the validation in effect
// when it resumes: crypto/tls resumes a session only when its client
// certificate chain still verifies against the current authorities, and
// never resumes a session without a client certificate when one is
// required.
func (s *Store) SetClientAuth(a ClientAuth) error {
	st, err := buildClientAuth(a)
	if err != nil {
		return fmt.Errorf("tlsconfig: %w", err)
	}
	s.auth.Store(st)
	return nil
}

// ValidateClientAuth reports whether a would be accepted by
// [Store.SetClientAuth], without changing anything.
func ValidateClientAuth(a ClientAuth) error {
	if _, err := buildClientAuth(a); err != nil {
		return fmt.Errorf("tlsconfig: %w", err)
	}
	return nil
}

// ClientAuthMode returns the mode of the store's client certificate
// validation.
func (s *Store) ClientAuthMode() ClientAuthMode {
	if st := s.auth.Load(); st != nil {
		return st.mode
	}
	return ClientAuthNone
}

// configForClient returns the config a handshake on base uses: nil (base
// itself) when no client certificate is asked for, else a copy of base
// that asks for one. The copy is made once per SetClientAuth. It shares
// base's session ticket keys (crypto/tls uses the original config's keys
// when the returned one has none of its own), so sessions resume across a
// change of setting as far as the checks of SetClientAuth allow.
func (s *Store) configForClient(base *tls.Config) *tls.Config {
	st := s.auth.Load()
	if st == nil {
		return nil
	}
	if d := st.derived.Load(); d != nil && d.base == base {
		return d.cfg
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = nil
	cfg.ClientCAs = st.pool
	switch st.mode {
	case ClientAuthRequireValid:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthAllowInsecure:
		cfg.ClientAuth = tls.RequestClientCert
	}
	st.derived.Store(&derivedConfig{base: base, cfg: cfg})
	return cfg
}
