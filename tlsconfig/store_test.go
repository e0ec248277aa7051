package tlsconfig

import (
	"crypto/tls"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lookupStore builds a store whose certificates are named by their common
// name, for table tests.
func lookupStore(t *testing.T, opts StoreOptions) *Store {
	t.Helper()
	mk := func(cn string, dns ...string) *tls.Certificate {
		return issue(t, nil, leafSpec{cn: cn, dns: dns}).cert
	}
	s := NewStore(opts)
	err := s.Update(
		Certificate{Cert: mk("www", "www.example.com")},
		Certificate{Cert: mk("wild", "*.example.com")},
		Certificate{Hostnames: []string{"*.API.example.com."}, Cert: mk("apiwild", "whatever.test")},
		Certificate{Hostnames: []string{"*.org"}, Cert: mk("org")},
		Certificate{Hostnames: []string{"default.test"}, Cert: mk("def"), Default: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type lookupResult struct {
	Cert  string
	Match Match
}

func lookup(s *Store, name string) lookupResult {
	c, m := s.Lookup(name)
	if c == nil {
		return lookupResult{Match: m}
	}
	return lookupResult{Cert: c.Leaf.Subject.CommonName, Match: m}
}

func TestLookup(t *testing.T) {
	var (
		www     = lookupResult{"www", MatchExact}
		wild    = lookupResult{"wild", MatchWildcard}
		apiwild = lookupResult{"apiwild", MatchWildcard}
		org     = lookupResult{"org", MatchWildcard}
		def     = lookupResult{"def", MatchDefault}
	)
	tests := []struct {
		name      string
		oneLabel  lookupResult
		anyLabels lookupResult
	}{
		{"www.example.com", www, www},
		{"WWW.Example.COM", www, www},
		{"www.example.com.", www, www},
		{"default.test", lookupResult{"def", MatchExact}, lookupResult{"def", MatchExact}},
		{"a.example.com", wild, wild},
		{"A.EXAMPLE.COM.", wild, wild},
		{"example.com", def, def},
		{"a.b.example.com", def, wild},
		{"x.api.example.com", apiwild, apiwild},
		{"api.example.com", wild, wild},
		{"y.x.api.example.com", def, apiwild},
		{"b.org", org, org},
		{"a.b.org", def, org},
		{"org", def, def},
		{"", def, def},
		{".", def, def},
		{".example.com", def, def},
		{"www.example.com..", def, def},
		{"www.example.co", def, def},
		{"www.example.com.evil", def, def},
		{strings.Repeat("a", 250) + ".org", def, def},
		{strings.Repeat("a", 249) + ".org", org, org},
	}
	one := lookupStore(t, StoreOptions{})
	anyLabels := lookupStore(t, StoreOptions{Wildcard: WildcardAnyLabels})
	for _, tt := range tests {
		if diff := cmp.Diff(tt.oneLabel, lookup(one, tt.name)); diff != "" {
			t.Errorf("WildcardOneLabel Lookup(%q) (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(tt.anyLabels, lookup(anyLabels, tt.name)); diff != "" {
			t.Errorf("WildcardAnyLabels Lookup(%q) (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestLookupFallback(t *testing.T) {
	none := lookupResult{Match: MatchNone}
	def := lookupResult{"def", MatchDefault}
	tests := []struct {
		opts             StoreOptions
		missing, unknown lookupResult
	}{
		{StoreOptions{}, def, def},
		{StoreOptions{MissingSNI: FallbackReject}, none, def},
		{StoreOptions{UnknownSNI: FallbackReject}, def, none},
		{StoreOptions{MissingSNI: FallbackReject, UnknownSNI: FallbackReject}, none, none},
	}
	for _, tt := range tests {
		s := lookupStore(t, tt.opts)
		if diff := cmp.Diff(tt.missing, lookup(s, "")); diff != "" {
			t.Errorf("%+v: missing SNI (-want +got):\n%s", tt.opts, diff)
		}
		if diff := cmp.Diff(tt.unknown, lookup(s, "unknown.test")); diff != "" {
			t.Errorf("%+v: unknown SNI (-want +got):\n%s", tt.opts, diff)
		}
		if diff := cmp.Diff(lookupResult{"www", MatchExact}, lookup(s, "www.example.com")); diff != "" {
			t.Errorf("%+v: known SNI (-want +got):\n%s", tt.opts, diff)
		}
	}
}

func TestStoreZeroValueAndEmpty(t *testing.T) {
	var s Store
	if diff := cmp.Diff(lookupResult{Match: MatchNone}, lookup(&s, "www.example.com")); diff != "" {
		t.Errorf("zero Store (-want +got):\n%s", diff)
	}
	if err := s.Update(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lookupResult{Match: MatchNone}, lookup(&s, "")); diff != "" {
		t.Errorf("empty Store (-want +got):\n%s", diff)
	}
}

func TestUpdateDefaultAndDuplicates(t *testing.T) {
	a := issue(t, nil, leafSpec{cn: "a", dns: []string{"shared.test", "a.test"}}).cert
	b := issue(t, nil, leafSpec{cn: "b", dns: []string{"shared.test", "b.test"}}).cert
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: a}, Certificate{Cert: b}); err != nil {
		t.Fatal(err)
	}
	got := []lookupResult{lookup(s, "shared.test"), lookup(s, "b.test"), lookup(s, "")}
	want := []lookupResult{{"a", MatchExact}, {"b", MatchExact}, {"a", MatchDefault}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first certificate wins and is the default (-want +got):\n%s", diff)
	}
	if err := s.Update(Certificate{Cert: a}, Certificate{Cert: b, Default: true}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(lookupResult{"b", MatchDefault}, lookup(s, "unknown.test")); diff != "" {
		t.Errorf("explicit default (-want +got):\n%s", diff)
	}
}

func TestUpdateParsesLeafWithoutModifyingCaller(t *testing.T) {
	c := issue(t, nil, leafSpec{cn: "noleaf", dns: []string{"noleaf.test"}}).cert
	bare := &tls.Certificate{Certificate: c.Certificate, PrivateKey: c.PrivateKey}
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: bare}); err != nil {
		t.Fatal(err)
	}
	if bare.Leaf != nil {
		t.Error("Update set Leaf on the caller's certificate")
	}
	if diff := cmp.Diff(lookupResult{"noleaf", MatchExact}, lookup(s, "noleaf.test")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestUpdateErrors(t *testing.T) {
	good := issue(t, nil, leafSpec{cn: "good", dns: []string{"good.test"}}).cert
	noNames := issue(t, nil, leafSpec{cn: "nonames"}).cert
	tests := []struct {
		name  string
		certs []Certificate
		want  string
	}{
		{"nil cert", []Certificate{{}}, "certs[0].Cert: nil certificate"},
		{"empty chain", []Certificate{{Cert: &tls.Certificate{PrivateKey: good.PrivateKey}}}, "certs[0].Cert: no certificate in chain"},
		{"no key", []Certificate{{Cert: &tls.Certificate{Certificate: good.Certificate}}}, "certs[0].Cert: no private key"},
		{"bad DER", []Certificate{{Cert: &tls.Certificate{Certificate: [][]byte{{1, 2}}, PrivateKey: good.PrivateKey}}}, "certs[0].Cert: parsing leaf"},
		{"two defaults", []Certificate{{Cert: good, Default: true}, {Cert: good, Default: true}}, "certs[1].Default"},
		{"bare star", []Certificate{{Hostnames: []string{"*"}, Cert: good}}, "certs[0].Hostnames[0]"},
		{"inner star", []Certificate{{Hostnames: []string{"a.*.example.com"}, Cert: good}}, "'*' is allowed only"},
		{"partial star", []Certificate{{Hostnames: []string{"foo*.example.com"}, Cert: good}}, "'*' is allowed only"},
		{"space", []Certificate{{Hostnames: []string{"ok.test", "exa mple.com"}, Cert: good}}, "certs[0].Hostnames[1]"},
		{"hyphen", []Certificate{{Hostnames: []string{"-a.example.com"}, Cert: good}}, "starts or ends with '-'"},
		{"long label", []Certificate{{Hostnames: []string{strings.Repeat("a", 64) + ".test"}, Cert: good}}, "longer than 63"},
		{"long name", []Certificate{{Hostnames: []string{strings.Repeat("a.", 127) + "aa"}, Cert: good}}, "longer than 253"},
		{"empty", []Certificate{{Hostnames: []string{""}, Cert: good}}, "is empty"},
		{"empty label", []Certificate{{Hostnames: []string{"a..b"}, Cert: good}}, "empty label"},
		{"non-ASCII", []Certificate{{Hostnames: []string{"bücher.test"}, Cert: good}}, "invalid character"},
		{"no names, not default", []Certificate{{Cert: good}, {Cert: noNames}}, "certs[1].Hostnames: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStore(StoreOptions{})
			if err := s.Update(Certificate{Cert: good}); err != nil {
				t.Fatal(err)
			}
			err := s.Update(tt.certs...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Update error = %v, want one containing %q", err, tt.want)
			}
			if verr := ValidateCertificates(tt.certs...); verr == nil || verr.Error() != err.Error() {
				t.Errorf("ValidateCertificates = %v, want %v", verr, err)
			}
			if diff := cmp.Diff(lookupResult{"good", MatchExact}, lookup(s, "good.test")); diff != "" {
				t.Errorf("a failed Update changed the store (-want +got):\n%s", diff)
			}
		})
	}
	// A certificate without DNS names is fine as the default.
	if err := ValidateCertificates(Certificate{Cert: noNames}, Certificate{Cert: good}); err != nil {
		t.Errorf("default without names: %v", err)
	}
}

// TestHandshakeSNI selects certificates in real handshakes over loopback.
func TestHandshakeSNI(t *testing.T) {
	www := issue(t, nil, leafSpec{cn: "www", dns: []string{"www.example.com"}}).cert
	wild := issue(t, nil, leafSpec{cn: "wild", dns: []string{"*.example.com"}}).cert
	def := issue(t, nil, leafSpec{cn: "def", dns: []string{"default.test"}}).cert
	certs := []Certificate{{Cert: www}, {Cert: wild}, {Cert: def, Default: true}}

	serveStore := func(opts StoreOptions) string {
		s := NewStore(opts)
		if err := s.Update(certs...); err != nil {
			t.Fatal(err)
		}
		cfg, err := NewServerConfig(s, ServerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, cfg)
	}
	peer := func(addr, serverName string, verify bool) (string, error) {
		cfg := &tls.Config{ServerName: serverName, RootCAs: pool(www, wild, def), InsecureSkipVerify: !verify}
		c, err := dial(t, addr, cfg)
		if err != nil {
			return "", err
		}
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
	}

	addr := serveStore(StoreOptions{})
	tests := []struct {
		serverName string
		verify     bool
		want       string
	}{
		{"www.example.com", true, "www"},
		{"WWW.EXAMPLE.COM", true, "www"},
		{"api.example.com", true, "wild"},
		{"unknown.test", false, "def"},
		{"a.b.example.com", false, "def"},
		{"", false, "def"}, // an IP address: the client sends no SNI
	}
	for _, tt := range tests {
		got, err := peer(addr, tt.serverName, tt.verify)
		if err != nil {
			t.Errorf("ServerName %q: %v", tt.serverName, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ServerName %q: served %q, want %q", tt.serverName, got, tt.want)
		}
	}

	var (
		mu       sync.Mutex
		rejected []string
	)
	strict := serveStore(StoreOptions{
		MissingSNI: FallbackReject,
		UnknownSNI: FallbackReject,
		OnReject: func(name string) {
			mu.Lock()
			rejected = append(rejected, name)
			mu.Unlock()
		},
	})
	for _, name := range []string{"unknown.test", ""} {
		if _, err := peer(strict, name, false); err == nil || !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("strict store, ServerName %q: error %v, want an unrecognized_name alert", name, err)
		}
	}
	if got, err := peer(strict, "www.example.com", true); err != nil || got != "www" {
		t.Errorf("strict store, known name: got %q, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{"unknown.test", ""}, rejected); diff != "" {
		t.Errorf("OnReject calls (-want +got):\n%s", diff)
	}
}

// TestRotation replaces the certificate while a connection is open: new
// handshakes get the new certificate and the open connection keeps working.
func TestRotation(t *testing.T) {
	oldCert := issue(t, nil, leafSpec{cn: "old", dns: []string{"svc.test"}}).cert
	newCert := issue(t, nil, leafSpec{cn: "new", dns: []string{"svc.test"}}).cert
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: oldCert}); err != nil {
		t.Fatal(err)
	}
	cfg, err := NewServerConfig(s, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	client := &tls.Config{ServerName: "svc.test", RootCAs: pool(oldCert, newCert)}

	c1, err := dial(t, addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(c1, "before"); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Certificate{Cert: newCert}); err != nil {
		t.Fatal(err)
	}
	c2, err := dial(t, addr, client)
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "new" {
		t.Errorf("new connection served %q, want new", got)
	}
	if err := echo(c1, "after"); err != nil {
		t.Errorf("existing connection after rotation: %v", err)
	}
	if got := c1.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "old" {
		t.Errorf("existing connection peer %q, want old", got)
	}
	if err := echo(c2, "new"); err != nil {
		t.Error(err)
	}
}

// TestRotationUnderLoad swaps certificates while handshakes run
// concurrently: every handshake succeeds with one of the two certificates.
func TestRotationUnderLoad(t *testing.T) {
	a := issue(t, nil, leafSpec{cn: "a", dns: []string{"svc.test"}}).cert
	b := issue(t, nil, leafSpec{cn: "b", dns: []string{"svc.test"}}).cert
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: a}); err != nil {
		t.Fatal(err)
	}
	cfg, err := NewServerConfig(s, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	client := &tls.Config{ServerName: "svc.test", RootCAs: pool(a, b)}

	var (
		stop  atomic.Bool
		swaps atomic.Int64
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			c := a
			if i%2 == 1 {
				c = b
			}
			if err := s.Update(Certificate{Cert: c}); err != nil {
				t.Error(err)
				return
			}
			swaps.Add(1)
		}
	}()
	var clients sync.WaitGroup
	seen := make([]map[string]int, 4)
	for w := range seen {
		seen[w] = map[string]int{}
		clients.Add(1)
		go func() {
			defer clients.Done()
			for range 15 {
				c, err := dial(t, addr, client)
				if err != nil {
					t.Error(err)
					return
				}
				seen[w][c.ConnectionState().PeerCertificates[0].Subject.CommonName]++
				c.Close()
			}
		}()
	}
	clients.Wait()
	stop.Store(true)
	wg.Wait()
	for w, m := range seen {
		for cn := range m {
			if cn != "a" && cn != "b" {
				t.Errorf("worker %d: served %q", w, cn)
			}
		}
	}
	if swaps.Load() == 0 {
		t.Error("no swap happened during the handshakes")
	}
}
