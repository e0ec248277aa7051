package tlsconfig

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
)

// refLookup is a slow, obviously correct model of Store.Lookup for the
// hostnames of fuzzStore, returning the common name and match kind.
func refLookup(name string, anyLabels bool) lookupResult {
	exact := map[string]string{"www.example.com": "www", "default.test": "def"}
	wild := map[string]string{"example.com": "wild", "api.example.com": "apiwild", "org": "org"}
	def := lookupResult{"def", MatchDefault}
	if name == "" {
		return def
	}
	n := strings.TrimSuffix(name, ".")
	if n == "" || len(n) > maxHostnameLen {
		return def
	}
	// ASCII case folding only: SNI carries A-labels, and Unicode folding
	// would let "\u212a" (Kelvin sign) stand for "k".
	b := []byte(n)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	n = string(b)
	if cn, ok := exact[n]; ok {
		return lookupResult{cn, MatchExact}
	}
	best, bestLen := "", -1
	for suffix, cn := range wild {
		if !strings.HasSuffix(n, "."+suffix) {
			continue
		}
		prefix := n[:len(n)-len(suffix)-1]
		if prefix == "" || prefix[0] == '.' || (!anyLabels && strings.Contains(prefix, ".")) {
			continue
		}
		if len(suffix) > bestLen {
			best, bestLen = cn, len(suffix)
		}
	}
	if bestLen >= 0 {
		return lookupResult{best, MatchWildcard}
	}
	return def
}

func FuzzLookup(f *testing.F) {
	for _, s := range []string{
		"", ".", "www.example.com", "WWW.example.COM.", "a.b.example.com", "x.y.api.example.com",
		".example.com", "a..example.com", "b.org", "org", "\u212aey.example.com", "www.example.com..",
		strings.Repeat("a", 250) + ".org",
	} {
		f.Add(s)
	}
	one := fuzzStore(f, StoreOptions{})
	anyLabels := fuzzStore(f, StoreOptions{Wildcard: WildcardAnyLabels})
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := lookup(one, name), refLookup(name, false); got != want {
			t.Errorf("WildcardOneLabel Lookup(%q) = %v, model says %v", name, got, want)
		}
		if got, want := lookup(anyLabels, name), refLookup(name, true); got != want {
			t.Errorf("WildcardAnyLabels Lookup(%q) = %v, model says %v", name, got, want)
		}
	})
}

func fuzzStore(tb testing.TB, opts StoreOptions) *Store {
	tb.Helper()
	mk := func(cn string) *tls.Certificate { return issue(tb, nil, leafSpec{cn: cn}).cert }
	s := NewStore(opts)
	if err := s.Update(
		Certificate{Hostnames: []string{"www.example.com"}, Cert: mk("www")},
		Certificate{Hostnames: []string{"*.example.com"}, Cert: mk("wild")},
		Certificate{Hostnames: []string{"*.api.example.com"}, Cert: mk("apiwild")},
		Certificate{Hostnames: []string{"*.org"}, Cert: mk("org")},
		Certificate{Hostnames: []string{"default.test"}, Cert: mk("def"), Default: true},
	); err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzHostname checks that any hostname the store accepts is then found:
// an exact name by itself in any case with a trailing dot, a wildcard by a
// name one label longer.
func FuzzHostname(f *testing.F) {
	for _, s := range []string{"a.test", "*.example.com", "Mixed.Case.", "*", "a.*.b", "-x.test", "_srv.a-b.test", "a..b"} {
		f.Add(s)
	}
	cert := issue(f, nil, leafSpec{cn: "h"}).cert
	f.Fuzz(func(t *testing.T, h string) {
		s := NewStore(StoreOptions{UnknownSNI: FallbackReject, MissingSNI: FallbackReject})
		if err := s.Update(Certificate{Hostnames: []string{h}, Cert: cert}); err != nil {
			return
		}
		n := strings.TrimSuffix(strings.ToLower(h), ".")
		probe, want := strings.ToUpper(n)+".", MatchExact
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			probe, want = "X."+rest, MatchWildcard
		}
		if len(strings.TrimSuffix(probe, ".")) > maxHostnameLen {
			return // a wildcard of maximum length has no longer name to match
		}
		if c, m := s.Lookup(probe); c == nil || m != want {
			t.Errorf("hostname %q accepted, but Lookup(%q) = %v, want %v", h, probe, m, want)
		}
	})
}

// FuzzLoadKeyPair feeds arbitrary PEM to the loader: it must not panic,
// and whatever it accepts must be a consistent key pair.
func FuzzLoadKeyPair(f *testing.F) {
	good := issue(f, nil, leafSpec{cn: "f", dns: []string{"f.test"}})
	other := issue(f, nil, leafSpec{cn: "g"})
	f.Add(good.certPEM, good.keyPEM)
	f.Add(good.certPEM, other.keyPEM)
	f.Add(append(append([]byte{}, good.keyPEM...), good.certPEM...), good.keyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		c, err := LoadKeyPair(certPEM, keyPEM, KeyPairOptions{AllowExpired: true})
		if err != nil {
			if c != nil {
				t.Error("certificate returned with an error")
			}
			return
		}
		signer, ok := c.PrivateKey.(crypto.Signer)
		if !ok || c.Leaf == nil || len(c.Certificate) == 0 || !publicKeyMatches(c.Leaf.PublicKey, signer) {
			t.Errorf("accepted an inconsistent key pair: %+v", c)
		}
	})
}

// FuzzClientAuth feeds arbitrary CA bundles to the client authentication
// setting: it must not panic, must refuse what holds no certificate, and
// what it accepts must trust every certificate of the bundle.
func FuzzClientAuth(f *testing.F) {
	ca := newTestCA(f, "fuzz CA")
	f.Add(ca.pem, uint8(ClientAuthRequireValid))
	f.Add(append(append([]byte("junk\n"), ca.pem...), ca.pem...), uint8(ClientAuthAllowInsecure))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"), uint8(ClientAuthRequireValid))
	f.Add([]byte{}, uint8(ClientAuthNone))
	f.Fuzz(func(t *testing.T, bundle []byte, mode uint8) {
		st, err := buildClientAuth(ClientAuth{Mode: ClientAuthMode(mode), CACertificates: bundle})
		if err != nil {
			if st != nil {
				t.Error("state returned with an error")
			}
			return
		}
		if ClientAuthMode(mode) == ClientAuthNone {
			if st != nil || len(bundle) != 0 {
				t.Errorf("ClientAuthNone accepted with a bundle of %d bytes or gave a state", len(bundle))
			}
			return
		}
		certs, _, err := parseCertificates(bundle)
		if err != nil {
			t.Fatalf("accepted a bundle the parser refuses: %v", err)
		}
		if st.mode != ClientAuthMode(mode) {
			t.Errorf("mode %v, want %v", st.mode, ClientAuthMode(mode))
		}
		for _, c := range certs {
			if _, err := c.Verify(x509.VerifyOptions{Roots: st.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil && !errors.As(err, new(x509.CertificateInvalidError)) {
				t.Errorf("a certificate of the bundle is not trusted: %v", err)
			}
		}
	})
}
