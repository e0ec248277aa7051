package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
)

// mtlsFixture is a server certificate, two client CAs and a client
// certificate issued by each.
type mtlsFixture struct {
	server        *tls.Certificate
	caA, caB      *testCA
	clientA       *tls.Certificate // issued by caA
	clientB       *tls.Certificate // issued by caB
	serverOnlyByA *tls.Certificate // issued by caA, extended key usage serverAuth only
}

func newMTLSFixture(t *testing.T) *mtlsFixture {
	t.Helper()
	f := &mtlsFixture{
		server: issue(t, nil, leafSpec{cn: "svc", dns: []string{"svc.test"}}).cert,
		caA:    newTestCA(t, "client CA A"),
		caB:    newTestCA(t, "client CA B"),
	}
	f.clientA = issue(t, f.caA, leafSpec{cn: "client a"}).cert
	f.clientB = issue(t, f.caB, leafSpec{cn: "client b"}).cert
	// A certificate for servers only must not authenticate a client.
	f.serverOnlyByA = issue(t, f.caA, leafSpec{cn: "server only", ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}).cert
	return f
}

// serveMTLS serves the fixture's server certificate with client
// authentication a and returns the address, the store and a client config
// trusting the server (with no client certificate).
func serveMTLS(t *testing.T, f *mtlsFixture, a ClientAuth) (string, *Store, *tls.Config) {
	t.Helper()
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: f.server}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetClientAuth(a); err != nil {
		t.Fatal(err)
	}
	cfg, err := NewServerConfig(s, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, cfg), s, &tls.Config{ServerName: "svc.test", RootCAs: pool(f.server)}
}

// exchange dials addr with client presenting cert (none when nil) and
// echoes a message: with TLS 1.3 the server's verdict on the client
// certificate arrives after the client's handshake, with the first read.
// It reports whether the client was asked for a certificate.
func exchange(t *testing.T, addr string, client *tls.Config, cert *tls.Certificate) (asked bool, err error) {
	t.Helper()
	client = client.Clone()
	client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}
	c, err := dial(t, addr, client)
	if err != nil {
		return asked, err
	}
	return asked, echo(c, "hello")
}

func TestClientAuthHandshakes(t *testing.T) {
	f := newMTLSFixture(t)
	type verdict struct {
		asked bool
		ok    bool
	}
	tests := []struct {
		name string
		mode ClientAuthMode
		cert func() *tls.Certificate
		want verdict
	}{
		{"none: not asked", ClientAuthNone, func() *tls.Certificate { return f.clientA }, verdict{false, true}},
		{"require: valid certificate", ClientAuthRequireValid, func() *tls.Certificate { return f.clientA }, verdict{true, true}},
		{"require: certificate of another CA", ClientAuthRequireValid, func() *tls.Certificate { return f.clientB }, verdict{true, false}},
		{"require: no certificate", ClientAuthRequireValid, func() *tls.Certificate { return nil }, verdict{true, false}},
		{"require: certificate not for client auth", ClientAuthRequireValid, func() *tls.Certificate { return f.serverOnlyByA }, verdict{true, false}},
		{"insecure: valid certificate", ClientAuthAllowInsecure, func() *tls.Certificate { return f.clientA }, verdict{true, true}},
		{"insecure: certificate of another CA", ClientAuthAllowInsecure, func() *tls.Certificate { return f.clientB }, verdict{true, true}},
		{"insecure: no certificate", ClientAuthAllowInsecure, func() *tls.Certificate { return nil }, verdict{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ClientAuth{Mode: tt.mode}
			if tt.mode != ClientAuthNone {
				a.CACertificates = f.caA.pem
			}
			addr, _, client := serveMTLS(t, f, a)
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				c := client.Clone()
				c.MaxVersion = v
				asked, err := exchange(t, addr, c, tt.cert())
				if got := (verdict{asked, err == nil}); got != tt.want {
					t.Errorf("TLS %#x: asked %t, ok %t (error %v); want asked %t, ok %t", v, got.asked, got.ok, err, tt.want.asked, tt.want.ok)
				}
			}
		})
	}
}

// TestClientAuthPeerCertificates checks what the server sees of the client
// certificate: verified chains with ClientAuthRequireValid, the bare
// certificate with ClientAuthAllowInsecure.
func TestClientAuthPeerCertificates(t *testing.T) {
	f := newMTLSFixture(t)
	for _, tt := range []struct {
		mode     ClientAuthMode
		cert     *tls.Certificate
		verified bool
	}{
		{ClientAuthRequireValid, f.clientA, true},
		{ClientAuthAllowInsecure, f.clientA, false},
		{ClientAuthAllowInsecure, f.clientB, false},
	} {
		s := NewStore(StoreOptions{})
		if err := s.Update(Certificate{Cert: f.server}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetClientAuth(ClientAuth{Mode: tt.mode, CACertificates: f.caA.pem}); err != nil {
			t.Fatal(err)
		}
		cfg, err := NewServerConfig(s, ServerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan tls.ConnectionState, 1)
		srv, cli := tcpPair(t)
		go func() {
			tc := tls.Server(srv, cfg)
			if tc.Handshake() == nil {
				got <- tc.ConnectionState()
			}
			close(got)
		}()
		// GetClientCertificate presents the certificate whatever the
		// acceptable authorities listed by the server.
		cert := tt.cert
		client := &tls.Config{ServerName: "svc.test", RootCAs: pool(f.server),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }}
		cc := tls.Client(cli, client)
		if err := cc.Handshake(); err != nil {
			t.Fatalf("%v: client handshake: %v", tt.mode, err)
		}
		cs, ok := <-got
		if !ok {
			t.Fatalf("%v: server handshake failed", tt.mode)
		}
		if len(cs.PeerCertificates) != 1 || !cs.PeerCertificates[0].Equal(tt.cert.Leaf) {
			t.Errorf("%v: server saw %d peer certificates, want the client's", tt.mode, len(cs.PeerCertificates))
		}
		if (len(cs.VerifiedChains) > 0) != tt.verified {
			t.Errorf("%v: %d verified chains, want verified %t", tt.mode, len(cs.VerifiedChains), tt.verified)
		}
		cc.Close()
	}
}

// TestSetClientAuthHotSwap changes the validation of a listening config:
// new handshakes follow the new setting, and the CA can be replaced.
func TestSetClientAuthHotSwap(t *testing.T) {
	f := newMTLSFixture(t)
	addr, s, client := serveMTLS(t, f, ClientAuth{})
	steps := []struct {
		auth   ClientAuth
		cert   *tls.Certificate
		wantOK bool
	}{
		{ClientAuth{}, nil, true},
		{ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caA.pem}, nil, false},
		{ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caA.pem}, f.clientA, true},
		{ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caB.pem}, f.clientA, false},
		{ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caB.pem}, f.clientB, true},
		{ClientAuth{Mode: ClientAuthAllowInsecure, CACertificates: f.caB.pem}, f.clientA, true},
		{ClientAuth{}, nil, true},
	}
	for i, st := range steps {
		if err := s.SetClientAuth(st.auth); err != nil {
			t.Fatal(err)
		}
		if got := s.ClientAuthMode(); got != st.auth.Mode {
			t.Errorf("step %d: ClientAuthMode %v, want %v", i, got, st.auth.Mode)
		}
		_, err := exchange(t, addr, client, st.cert)
		if (err == nil) != st.wantOK {
			t.Errorf("step %d (%v): error %v, want ok %t", i, st.auth.Mode, err, st.wantOK)
		}
	}
}

// TestClientAuthResumption checks that a session ticket does not carry a
// client past a stricter setting: a session made without a verified
// certificate does not resume once one is required, and one made with a
// certificate of a CA no longer trusted does not resume either.
func TestClientAuthResumption(t *testing.T) {
	f := newMTLSFixture(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		addr, s, client := serveMTLS(t, f, ClientAuth{Mode: ClientAuthAllowInsecure, CACertificates: f.caA.pem})
		client.MaxVersion = v
		client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		// A session with the certificate of CA B, accepted insecurely.
		if _, err := exchange(t, addr, client, f.clientB); err != nil {
			t.Fatalf("TLS %#x: first connection: %v", v, err)
		}
		// It resumes while the setting stays.
		c, err := dial(t, addr, client)
		if err != nil {
			t.Fatal(err)
		}
		if err := echo(c, "again"); err != nil {
			t.Fatal(err)
		}
		if !c.ConnectionState().DidResume {
			t.Fatalf("TLS %#x: the session did not resume under the same setting", v)
		}
		// Once CA A is required, the session must not let the client in.
		if err := s.SetClientAuth(ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caA.pem}); err != nil {
			t.Fatal(err)
		}
		asked, err := exchange(t, addr, client, f.clientB)
		if err == nil {
			t.Errorf("TLS %#x: a session made under AllowInsecure admitted a CA B client once CA A is required", v)
		}
		if !asked {
			t.Errorf("TLS %#x: the client was not asked for a certificate (a resumption?)", v)
		}
		// A valid session under CA A stops resuming once CA B replaces it.
		if _, err := exchange(t, addr, client, f.clientA); err != nil {
			t.Fatalf("TLS %#x: CA A client: %v", v, err)
		}
		if err := s.SetClientAuth(ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caB.pem}); err != nil {
			t.Fatal(err)
		}
		if _, err := exchange(t, addr, client, f.clientA); err == nil {
			t.Errorf("TLS %#x: a session verified under CA A resumed once only CA B is trusted", v)
		}
	}
}

func TestSetClientAuthErrors(t *testing.T) {
	f := newMTLSFixture(t)
	tests := []struct {
		auth ClientAuth
		want string
	}{
		{ClientAuth{Mode: ClientAuthRequireValid}, "ClientAuth.CACertificates: required"},
		{ClientAuth{Mode: ClientAuthAllowInsecure}, "ClientAuth.CACertificates: required"},
		{ClientAuth{Mode: ClientAuthRequireValid, CACertificates: []byte("not PEM")}, "ClientAuth.CACertificates: no CERTIFICATE"},
		{ClientAuth{Mode: ClientAuthRequireValid, CACertificates: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, "ClientAuth.CACertificates: block 0"},
		{ClientAuth{CACertificates: f.caA.pem}, "Mode is ClientAuthNone"},
		{ClientAuth{Mode: ClientAuthMode(7), CACertificates: f.caA.pem}, "ClientAuth.Mode: unknown value 7"},
	}
	s := NewStore(StoreOptions{})
	if err := s.SetClientAuth(ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caA.pem}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		for name, err := range map[string]error{"SetClientAuth": s.SetClientAuth(tt.auth), "ValidateClientAuth": ValidateClientAuth(tt.auth)} {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s(%v) error %v, want one containing %q", name, tt.auth.Mode, err, tt.want)
			}
		}
	}
	// A refused setting leaves the previous one in force.
	if got := s.ClientAuthMode(); got != ClientAuthRequireValid {
		t.Errorf("after errors ClientAuthMode %v, want ClientAuthRequireValid", got)
	}
	if err := ValidateClientAuth(ClientAuth{Mode: ClientAuthAllowInsecure, CACertificates: append(append([]byte{}, f.caA.pem...), f.caB.pem...)}); err != nil {
		t.Errorf("a bundle of two CAs: %v", err)
	}
}

func TestClientAuthModeString(t *testing.T) {
	for m, want := range map[ClientAuthMode]string{
		ClientAuthNone:          "ClientAuthNone",
		ClientAuthRequireValid:  "ClientAuthRequireValid",
		ClientAuthAllowInsecure: "ClientAuthAllowInsecure",
		ClientAuthMode(9):       "ClientAuthMode(9)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(m), got, want)
		}
	}
}

// TestConfigForClientCached checks that handshakes without client
// authentication use the listener's config itself, and that the copy made
// for a setting is made once.
func TestConfigForClientCached(t *testing.T) {
	f := newMTLSFixture(t)
	s := NewStore(StoreOptions{})
	cfg, err := NewServerConfig(s, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.GetConfigForClient(&tls.ClientHelloInfo{}); got != nil || err != nil {
		t.Fatalf("without client auth: GetConfigForClient = %p, %v; want nil, nil", got, err)
	}
	if err := s.SetClientAuth(ClientAuth{Mode: ClientAuthRequireValid, CACertificates: f.caA.pem}); err != nil {
		t.Fatal(err)
	}
	a, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	b, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if a == nil || a != b {
		t.Fatalf("GetConfigForClient = %p then %p, want one non-nil config", a, b)
	}
	if a.ClientAuth != tls.RequireAndVerifyClientCert || a.ClientCAs == nil || a.GetConfigForClient != nil {
		t.Errorf("derived config: ClientAuth %v, ClientCAs set %t, GetConfigForClient set %t", a.ClientAuth, a.ClientCAs != nil, a.GetConfigForClient != nil)
	}
	if a.MinVersion != cfg.MinVersion || len(a.NextProtos) != len(cfg.NextProtos) || a.GetCertificate == nil {
		t.Errorf("derived config lost the listener's settings")
	}
	if err := s.SetClientAuth(ClientAuth{Mode: ClientAuthAllowInsecure, CACertificates: f.caA.pem}); err != nil {
		t.Fatal(err)
	}
	c, _ := cfg.GetConfigForClient(&tls.ClientHelloInfo{})
	if c == a || c.ClientAuth != tls.RequestClientCert {
		t.Errorf("after a new setting: same config %t, ClientAuth %v", c == a, c.ClientAuth)
	}
}
