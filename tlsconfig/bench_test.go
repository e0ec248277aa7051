package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
)

// benchStore holds 1,000 exact names and 100 wildcards, a realistic
// multi-tenant listener.
func benchStore(tb testing.TB, opts StoreOptions) *Store {
	tb.Helper()
	cert := issue(tb, nil, leafSpec{cn: "bench"}).cert
	certs := make([]Certificate, 0, 1100)
	for i := range 1000 {
		certs = append(certs, Certificate{Hostnames: []string{fmt.Sprintf("host%d.example.com", i)}, Cert: cert})
	}
	for i := range 100 {
		certs = append(certs, Certificate{Hostnames: []string{fmt.Sprintf("*.zone%d.example.com", i)}, Cert: cert})
	}
	s := NewStore(opts)
	if err := s.Update(certs...); err != nil {
		tb.Fatal(err)
	}
	return s
}

var lookupCases = []struct {
	name, serverName string
	anyLabels        bool
	want             Match
}{
	{"exact", "host500.example.com", false, MatchExact},
	{"exact-mixed-case", "Host500.Example.COM", false, MatchExact},
	{"wildcard", "api.zone42.example.com", false, MatchWildcard},
	{"wildcard-any-labels-deep", "a.b.c.zone42.example.com", true, MatchWildcard},
	{"unknown-default", "nobody.example.net", false, MatchDefault},
}

func BenchmarkLookup(b *testing.B) {
	stores := map[bool]*Store{
		false: benchStore(b, StoreOptions{}),
		true:  benchStore(b, StoreOptions{Wildcard: WildcardAnyLabels}),
	}
	for _, bc := range lookupCases {
		b.Run(bc.name, func(b *testing.B) {
			s := stores[bc.anyLabels]
			if _, m := s.Lookup(bc.serverName); m != bc.want {
				b.Fatalf("Lookup(%q) = %v, want %v", bc.serverName, m, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Lookup(bc.serverName)
			}
		})
	}
}

func BenchmarkGetCertificate(b *testing.B) {
	s := benchStore(b, StoreOptions{})
	for _, bc := range lookupCases[:3] {
		b.Run(bc.name, func(b *testing.B) {
			hello := &tls.ClientHelloInfo{ServerName: bc.serverName}
			b.ReportAllocs()
			for b.Loop() {
				if c, _ := s.GetCertificate(hello); c == nil {
					b.Fatal("no certificate")
				}
			}
		})
	}
}

// TestLookupDoesNotAllocate holds the hot-path rule: selecting a
// certificate allocates nothing.
func TestLookupDoesNotAllocate(t *testing.T) {
	stores := map[bool]*Store{
		false: benchStore(t, StoreOptions{}),
		true:  benchStore(t, StoreOptions{Wildcard: WildcardAnyLabels}),
	}
	for _, bc := range lookupCases {
		s := stores[bc.anyLabels]
		if n := testing.AllocsPerRun(100, func() { s.Lookup(bc.serverName) }); n != 0 {
			t.Errorf("%s: %v allocations per Lookup, want 0", bc.name, n)
		}
	}
}

// BenchmarkHandshake measures a full TLS 1.3 handshake (ECDSA P-256) with a
// NewServerConfig config, in memory: the cost a new client connection pays,
// both sides included. "mlkem" is what a current Go client or browser
// negotiates (X25519MLKEM768), "x25519" a classic client.
func BenchmarkHandshake(b *testing.B) {
	cert := issue(b, nil, leafSpec{cn: "h", dns: []string{"h.test"}}).cert
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: cert}); err != nil {
		b.Fatal(err)
	}
	srvCfg, err := NewServerConfig(s, ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		curves []tls.CurveID
	}{
		{"mlkem", nil},
		{"x25519", []tls.CurveID{tls.X25519}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cliCfg := &tls.Config{ServerName: "h.test", RootCAs: pool(cert), NextProtos: []string{"h2"}, CurvePreferences: bc.curves}
			b.ReportAllocs()
			for b.Loop() {
				c1, c2 := net.Pipe()
				errc := make(chan error, 1)
				go func() { errc <- tls.Server(c2, srvCfg).Handshake() }()
				if err := tls.Client(c1, cliCfg).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				c1.Close()
				c2.Close()
			}
		})
	}
}

// BenchmarkGetConfigForClient measures what client authentication adds to
// a handshake before crypto: the per-handshake config selection.
func BenchmarkGetConfigForClient(b *testing.B) {
	ca := newTestCA(b, "bench client CA")
	for _, mode := range []ClientAuthMode{ClientAuthNone, ClientAuthRequireValid} {
		b.Run(mode.String(), func(b *testing.B) {
			s := NewStore(StoreOptions{})
			a := ClientAuth{Mode: mode}
			if mode != ClientAuthNone {
				a.CACertificates = ca.pem
			}
			if err := s.SetClientAuth(a); err != nil {
				b.Fatal(err)
			}
			cfg, err := NewServerConfig(s, ServerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			hello := &tls.ClientHelloInfo{ServerName: "svc.test"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cfg.GetConfigForClient(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
