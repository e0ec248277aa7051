package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// SANType is the kind of a [SubjectAltName].
type SANType uint8

const (
	// SANHostname is a DNS name, matched as crypto/x509 matches a hostname
	// against a certificate (wildcard SANs of the certificate apply).
	SANHostname SANType = iota
	// SANURI is a URI (for example a SPIFFE ID), matched exactly against the
	// certificate's URI SANs.
	SANURI
)

// String returns the constant's name.
func (t SANType) String() string {
	switch t {
	case SANHostname:
		return "SANHostname"
	case SANURI:
		return "SANURI"
	}
	return fmt.Sprintf("SANType(%d)", uint8(t))
}

// SubjectAltName is one name a backend certificate may present, as in a
// BackendTLSPolicy's subjectAltNames.
type SubjectAltName struct {
	// Type says how Value is matched.
	Type SANType
	// Value is the hostname or the URI.
	Value string
}

// BackendOptions configures [NewBackendConfig], following BackendTLSPolicy:
// exactly one of CACertificates and SystemRoots must be set, and
// ServerName is required.
type BackendOptions struct {
	// ServerName is sent as SNI. Unless SubjectAltNames is set, the backend
	// certificate must also be valid for it (BackendTLSPolicy hostname).
	ServerName string
	// CACertificates is a PEM bundle of the certificate authorities trusted
	// to sign the backend certificate (BackendTLSPolicy caCertificateRefs).
	CACertificates []byte
	// SystemRoots trusts the system's certificate authorities
	// (BackendTLSPolicy wellKnownCACertificates: System).
	SystemRoots bool
	// SubjectAltNames, when set, replace ServerName for verification: the
	// backend certificate must present at least one of them. ServerName is
	// then used for SNI only.
	SubjectAltNames []SubjectAltName
	// Protocols is what ALPN offers to the backend. The zero value offers h2
	// and HTTP/1.1; which one was negotiated is in the connection state.
	Protocols Protocols
	// ClientCertificate, if set, is presented when the backend asks for a
	// client certificate, even when the authorities the backend lists in
	// its request do not include the certificate's issuer.
	ClientCertificate *tls.Certificate
	// MinVersion is as in [ServerOptions]; zero means TLS 1.2.
	MinVersion uint16
}

// NewBackendConfig returns a *tls.Config for dialing a TLS backend. The
// chain is always verified; there is no option to skip verification. Cipher
// suites and key exchanges are crypto/tls's client defaults, with TLS 1.2 as
// the minimum version.
//
// When SubjectAltNames is set, the config sets InsecureSkipVerify only to
// replace crypto/tls's hostname check: its VerifyConnection verifies the
// chain against the configured roots and then matches the SANs, on full
// handshakes and resumptions alike.
func NewBackendConfig(opts BackendOptions) (*tls.Config, error) {
	if opts.ServerName == "" {
		return nil, errors.New("tlsconfig: BackendOptions.ServerName: required")
	}
	serverName, err := normalizeHostname(opts.ServerName, false)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: BackendOptions.ServerName: %w", err)
	}
	minVersion, err := checkMinVersion(opts.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: BackendOptions.%w", err)
	}
	protos := opts.Protocols.NextProtos()
	if protos == nil {
		return nil, fmt.Errorf("tlsconfig: BackendOptions.Protocols: unknown value %d", uint8(opts.Protocols))
	}
	var roots *x509.CertPool // nil means the system roots
	switch {
	case len(opts.CACertificates) > 0 && opts.SystemRoots:
		return nil, errors.New("tlsconfig: BackendOptions: CACertificates and SystemRoots are mutually exclusive")
	case len(opts.CACertificates) > 0:
		certs, _, err := parseCertificates(opts.CACertificates)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: BackendOptions.CACertificates: %w", err)
		}
		roots = x509.NewCertPool()
		for _, c := range certs {
			roots.AddCert(c)
		}
	case opts.SystemRoots:
		// Fail now, not on the first dial, when the system has no roots.
		if _, err := x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("tlsconfig: BackendOptions.SystemRoots: %w", err)
		}
	default:
		return nil, errors.New("tlsconfig: BackendOptions: one of CACertificates and SystemRoots is required")
	}
	sans, err := checkSANs(opts.SubjectAltNames)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		ServerName: serverName,
		RootCAs:    roots,
		NextProtos: protos,
		MinVersion: minVersion,
	}
	if opts.ClientCertificate != nil {
		c, err := prepareCert(opts.ClientCertificate)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: BackendOptions.ClientCertificate: %w", err)
		}
		// Presented whatever authorities the backend's certificate request
		// lists: the certificate was configured for this backend, and the
		// backend is the judge of it (crypto/tls would otherwise send none
		// when the list does not name its issuer).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c, nil
		}
	}
	if len(sans) > 0 {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyBySAN(cs, roots, sans)
		}
	}
	return cfg, nil
}

func checkSANs(in []SubjectAltName) ([]SubjectAltName, error) {
	out := make([]SubjectAltName, 0, len(in))
	for i, san := range in {
		switch san.Type {
		case SANHostname:
			h, err := normalizeHostname(san.Value, false)
			if err != nil {
				return nil, fmt.Errorf("tlsconfig: BackendOptions.SubjectAltNames[%d].Value: %w", i, err)
			}
			out = append(out, SubjectAltName{Type: SANHostname, Value: h})
		case SANURI:
			u, err := url.Parse(san.Value)
			if err != nil {
				return nil, fmt.Errorf("tlsconfig: BackendOptions.SubjectAltNames[%d].Value: %w", i, err)
			}
			if u.Scheme == "" || (u.Opaque == "" && u.Host == "" && u.Path == "") {
				return nil, fmt.Errorf("tlsconfig: BackendOptions.SubjectAltNames[%d].Value: URI %q needs a scheme and a scheme-specific part", i, san.Value)
			}
			out = append(out, san)
		default:
			return nil, fmt.Errorf("tlsconfig: BackendOptions.SubjectAltNames[%d].Type: unknown value %d", i, uint8(san.Type))
		}
	}
	return out, nil
}

// verifyBySAN verifies the peer's chain against roots (nil: system roots)
// and requires one of sans on the leaf.
func verifyBySAN(cs tls.ConnectionState, roots *x509.CertPool, sans []SubjectAltName) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsconfig: backend presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("tlsconfig: backend certificate: %w", err)
	}
	for _, san := range sans {
		switch san.Type {
		case SANHostname:
			if leaf.VerifyHostname(san.Value) == nil {
				return nil
			}
		case SANURI:
			for _, u := range leaf.URIs {
				if u.String() == san.Value {
					return nil
				}
			}
		}
	}
	want := make([]string, len(sans))
	for i, s := range sans {
		want[i] = s.Value
	}
	have := make([]string, 0, len(leaf.DNSNames)+len(leaf.URIs))
	have = append(have, leaf.DNSNames...)
	for _, u := range leaf.URIs {
		have = append(have, u.String())
	}
	return fmt.Errorf("tlsconfig: backend certificate: SubjectAltNames: none of [%s] is presented by the certificate (it has [%s])",
		strings.Join(want, " "), strings.Join(have, " "))
}
