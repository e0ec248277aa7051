package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// WildcardMode says how many labels the "*" of a wildcard hostname stands for.
type WildcardMode uint8

const (
	// WildcardOneLabel makes "*.example.com" match exactly one extra label:
	// "a.example.com" but not "a.b.example.com" nor "example.com". These are
	// the semantics of wildcard certificates (RFC 6125, crypto/x509), so a
	// client verifying the served certificate agrees with the selection.
	WildcardOneLabel WildcardMode = iota
	// WildcardAnyLabels makes "*.example.com" match one or more extra labels:
	// "a.example.com" and "a.b.example.com", but not "example.com". These are
	// the semantics of a Gateway API listener hostname. The most specific
	// (longest) wildcard wins. Note that a certificate whose SAN is
	// "*.example.com" does not verify for "a.b.example.com" in standard
	// clients; use this mode when the Hostnames of a Certificate are listener
	// hostnames rather than certificate names.
	WildcardAnyLabels
)

// String returns the constant's name.
func (m WildcardMode) String() string {
	switch m {
	case WildcardOneLabel:
		return "WildcardOneLabel"
	case WildcardAnyLabels:
		return "WildcardAnyLabels"
	}
	return fmt.Sprintf("WildcardMode(%d)", uint8(m))
}

// Fallback says what the store does when no hostname selects a certificate.
type Fallback uint8

const (
	// FallbackDefault serves the default certificate.
	FallbackDefault Fallback = iota
	// FallbackReject fails the handshake with an unrecognized_name alert
	// (RFC 6066, section 3).
	FallbackReject
)

// String returns the constant's name.
func (f Fallback) String() string {
	switch f {
	case FallbackDefault:
		return "FallbackDefault"
	case FallbackReject:
		return "FallbackReject"
	}
	return fmt.Sprintf("Fallback(%d)", uint8(f))
}

// Match says how [Store.Lookup] selected a certificate.
type Match uint8

const (
	// MatchNone means no certificate was selected: the handshake is refused.
	MatchNone Match = iota
	// MatchExact means a hostname equal to the server name selected it.
	MatchExact
	// MatchWildcard means a wildcard hostname selected it.
	MatchWildcard
	// MatchDefault means the default certificate was served because the
	// server name was missing or matched nothing.
	MatchDefault
)

// String returns the constant's name.
func (m Match) String() string {
	switch m {
	case MatchNone:
		return "MatchNone"
	case MatchExact:
		return "MatchExact"
	case MatchWildcard:
		return "MatchWildcard"
	case MatchDefault:
		return "MatchDefault"
	}
	return fmt.Sprintf("Match(%d)", uint8(m))
}

// Certificate is one certificate of a [Store] and the hostnames that select it.
type Certificate struct {
	// Hostnames select this certificate by SNI. Each is an exact name
	// ("www.example.com") or a wildcard whose leftmost label is "*"
	// ("*.example.com"); case and one trailing dot are ignored. When empty,
	// the DNS names of the certificate's subject alternative names are used.
	// When several certificates claim the same hostname, the first wins.
	Hostnames []string
	// Cert is the certificate chain and private key. It must not be
	// modified once handed to the store.
	Cert *tls.Certificate
	// Default marks the certificate served when the client sends no server
	// name or one that matches nothing (subject to the store's Fallback
	// settings). At most one certificate may be marked; when none is, the
	// first certificate is the default.
	Default bool
}

// StoreOptions configures a [Store]. The zero value selects one-label
// wildcards and serves the default certificate when SNI is missing or
// unknown.
type StoreOptions struct {
	// Wildcard is how many labels "*" matches.
	Wildcard WildcardMode
	// MissingSNI is what to do when the client sends no server name (for
	// example when it connects to an IP address).
	MissingSNI Fallback
	// UnknownSNI is what to do when the server name matches no hostname.
	UnknownSNI Fallback
	// OnReject, if set, is called on the handshake path with the client's
	// server name each time a handshake is refused because no certificate
	// was selected. It must be fast and safe for concurrent use (a counter,
	// for example).
	OnReject func(serverName string)
}

// Store selects a server certificate by SNI. Its contents are an immutable
// snapshot replaced atomically by [Store.Update], so a handshake takes no
// lock and sees either the old or the new set of certificates, never a mix.
// It also holds the validation of client certificates, replaced atomically
// by [Store.SetClientAuth]; the zero value asks for none.
//
// The zero value is an empty store with the default [StoreOptions]; it
// refuses every handshake until the first Update. A Store must not be copied
// after first use. Its methods are safe for concurrent use.
type Store struct {
	opts StoreOptions
	snap atomic.Pointer[snapshot]
	auth atomic.Pointer[clientAuthState] // nil: no client certificates
}

// NewStore returns an empty store with the given options.
func NewStore(opts StoreOptions) *Store {
	return &Store{opts: opts}
}

// snapshot is one published, never modified, set of certificates.
type snapshot struct {
	exact map[string]*tls.Certificate
	// wild is keyed by the wildcard without its "*." prefix.
	wild map[string]*tls.Certificate
	def  *tls.Certificate
}

// maxHostnameLen is the longest DNS name in presentation form, without the
// trailing dot (RFC 1035, section 2.3.4).
const maxHostnameLen = 253

// Update replaces the store's certificates with certs, atomically. On error
// nothing changes and the previous certificates keep being served. An empty
// certs removes every certificate, so every handshake is refused.
// Handshakes already under way, and connections already established, are
// unaffected.
func (s *Store) Update(certs ...Certificate) error {
	sn, err := buildSnapshot(certs)
	if err != nil {
		return fmt.Errorf("tlsconfig: %w", err)
	}
	s.snap.Store(sn)
	return nil
}

// ValidateCertificates reports whether certs would be accepted by [Store.Update],
// without changing anything.
func ValidateCertificates(certs ...Certificate) error {
	if _, err := buildSnapshot(certs); err != nil {
		return fmt.Errorf("tlsconfig: %w", err)
	}
	return nil
}

func buildSnapshot(certs []Certificate) (*snapshot, error) {
	sn := &snapshot{
		exact: make(map[string]*tls.Certificate),
		wild:  make(map[string]*tls.Certificate),
	}
	defIndex := -1
	for i, c := range certs {
		if c.Default {
			if defIndex >= 0 {
				return nil, fmt.Errorf("certs[%d].Default: certs[%d] is already the default", i, defIndex)
			}
			defIndex = i
		}
	}
	if defIndex < 0 && len(certs) > 0 {
		defIndex = 0
	}
	for i, c := range certs {
		cert, err := prepareCert(c.Cert)
		if err != nil {
			return nil, fmt.Errorf("certs[%d].Cert: %w", i, err)
		}
		names, field := c.Hostnames, "Hostnames"
		if len(names) == 0 {
			names, field = cert.Leaf.DNSNames, "Cert (DNS SANs)"
			if len(names) == 0 && i != defIndex {
				return nil, fmt.Errorf("certs[%d].Hostnames: empty, and the certificate has no DNS names; only the default certificate may have no hostnames", i)
			}
		}
		for j, name := range names {
			h, err := normalizeHostname(name, true)
			if err != nil {
				return nil, fmt.Errorf("certs[%d].%s[%d]: %w", i, field, j, err)
			}
			m, key := sn.exact, h
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				m, key = sn.wild, rest
			}
			if _, dup := m[key]; !dup {
				m[key] = cert
			}
		}
		if i == defIndex {
			sn.def = cert
		}
	}
	return sn, nil
}

// prepareCert checks c and returns it with Leaf set. When c has no Leaf, a
// shallow copy with the parsed leaf is returned, so the caller's value is
// never modified.
func prepareCert(c *tls.Certificate) (*tls.Certificate, error) {
	if c == nil {
		return nil, errors.New("nil certificate")
	}
	if len(c.Certificate) == 0 {
		return nil, errors.New("no certificate in chain")
	}
	if c.PrivateKey == nil {
		return nil, errors.New("no private key")
	}
	if c.Leaf != nil {
		return c, nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parsing leaf: %w", err)
	}
	cp := *c
	cp.Leaf = leaf
	return &cp, nil
}

// Lookup returns the certificate a handshake with the given server name
// would be served, and how it was selected. A nil certificate (with
// [MatchNone]) means the handshake would be refused. The server name is
// matched case-insensitively and one trailing dot is ignored.
//
// Lookup does not allocate.
func (s *Store) Lookup(serverName string) (*tls.Certificate, Match) {
	sn := s.snap.Load()
	if sn == nil {
		return nil, MatchNone
	}
	if serverName == "" {
		return sn.fallback(s.opts.MissingSNI)
	}
	n := len(serverName)
	if serverName[n-1] == '.' {
		n--
	}
	if n == 0 || n > maxHostnameLen {
		return sn.fallback(s.opts.UnknownSNI)
	}
	var buf [maxHostnameLen]byte
	for i := 0; i < n; i++ {
		c := serverName[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	name := buf[:n]
	if c, ok := sn.exact[string(name)]; ok {
		return c, MatchExact
	}
	if len(sn.wild) > 0 {
		// The label "*" stands for must not be empty.
		if i := bytes.IndexByte(name, '.'); i > 0 {
			rest := name[i+1:]
			for {
				if c, ok := sn.wild[string(rest)]; ok {
					return c, MatchWildcard
				}
				if s.opts.Wildcard != WildcardAnyLabels {
					break
				}
				j := bytes.IndexByte(rest, '.')
				if j < 0 {
					break
				}
				rest = rest[j+1:]
			}
		}
	}
	return sn.fallback(s.opts.UnknownSNI)
}

func (sn *snapshot) fallback(f Fallback) (*tls.Certificate, Match) {
	if f != FallbackDefault || sn.def == nil {
		return nil, MatchNone
	}
	return sn.def, MatchDefault
}

// GetCertificate selects the certificate for a handshake; it has the
// signature of [tls.Config.GetCertificate]. When no certificate is selected
// it returns (nil, nil), which makes crypto/tls refuse the handshake with an
// unrecognized_name alert as long as the [tls.Config] has no Certificates of
// its own (the case for configs made by [NewServerConfig]); the server-side
// error is then "tls: no certificates configured".
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, _ := s.Lookup(hello.ServerName)
	if c == nil && s.opts.OnReject != nil {
		s.opts.OnReject(hello.ServerName)
	}
	return c, nil
}

// normalizeHostname lower-cases name, strips one trailing dot and checks it
// is a DNS name; with wildcard, a leftmost "*" label is allowed.
func normalizeHostname(name string, wildcard bool) (string, error) {
	h := strings.TrimSuffix(name, ".")
	if h == "" {
		return "", fmt.Errorf("hostname %q is empty", name)
	}
	if len(h) > maxHostnameLen {
		return "", fmt.Errorf("hostname %q is longer than %d bytes", name, maxHostnameLen)
	}
	h = strings.ToLower(h)
	rest := h
	if wildcard {
		if h == "*" {
			return "", fmt.Errorf("hostname %q: a bare \"*\" is not a hostname; mark the certificate Default instead", name)
		}
		rest = strings.TrimPrefix(h, "*.")
	}
	for label := range strings.SplitSeq(rest, ".") {
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("hostname %q: %w", name, err)
		}
	}
	return h, nil
}

func checkLabel(label string) error {
	if label == "" {
		return errors.New("empty label")
	}
	if len(label) > 63 {
		return fmt.Errorf("label %q is longer than 63 bytes", label)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case c == '*':
			return fmt.Errorf("label %q: '*' is allowed only as the whole leftmost label", label)
		default:
			return fmt.Errorf("label %q: invalid character %q", label, c)
		}
	}
	return nil
}
