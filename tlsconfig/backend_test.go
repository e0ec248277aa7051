package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"testing"
)

// backendServer serves cert on loopback, records the SNI of each
// handshake, and, when clientCA is set, requires a client certificate
// signed by it.
type backendServer struct {
	addr string
	mu   sync.Mutex
	sni  []string
}

func newBackendServer(t *testing.T, cert *tls.Certificate, clientCA *testCA) *backendServer {
	t.Helper()
	b := &backendServer{}
	cfg := &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			b.mu.Lock()
			b.sni = append(b.sni, hello.ServerName)
			b.mu.Unlock()
			return cert, nil
		},
	}
	if clientCA != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(clientCA.cert)
	}
	b.addr = serve(t, cfg)
	return b
}

func (b *backendServer) lastSNI() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.sni) == 0 {
		return ""
	}
	return b.sni[len(b.sni)-1]
}

func TestBackendVerification(t *testing.T) {
	ca := newTestCA(t, "backend CA")
	otherCA := newTestCA(t, "other CA")
	const spiffe = "spiffe://cluster.local/ns/shop/sa/cart"
	srv := newBackendServer(t, issue(t, ca, leafSpec{cn: "backend", dns: []string{"backend.test", "*.svc.test"}, uris: []string{spiffe}}).cert, nil)

	tests := []struct {
		name    string
		opts    BackendOptions
		wantErr string
	}{
		{"hostname", BackendOptions{ServerName: "backend.test", CACertificates: ca.pem}, ""},
		{"hostname, mixed case and trailing dot", BackendOptions{ServerName: "Backend.Test.", CACertificates: ca.pem}, ""},
		{"hostname via wildcard SAN", BackendOptions{ServerName: "cart.svc.test", CACertificates: ca.pem}, ""},
		{"wrong CA", BackendOptions{ServerName: "backend.test", CACertificates: otherCA.pem}, "certificate signed by unknown authority"},
		{"wrong hostname", BackendOptions{ServerName: "other.test", CACertificates: ca.pem}, "not other.test"},
		{"SAN hostname replaces ServerName", BackendOptions{ServerName: "sni-only.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANHostname, Value: "backend.test"}}}, ""},
		{"SAN hostname, one of several", BackendOptions{ServerName: "backend.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANHostname, Value: "nope.test"}, {Type: SANHostname, Value: "x.svc.test"}}}, ""},
		{"SAN URI", BackendOptions{ServerName: "backend.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANURI, Value: spiffe}}}, ""},
		{"wrong SAN hostname", BackendOptions{ServerName: "backend.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANHostname, Value: "wrong.test"}}}, "SubjectAltNames: none of [wrong.test]"},
		{"wrong SAN URI", BackendOptions{ServerName: "backend.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANURI, Value: "spiffe://cluster.local/ns/shop/sa/other"}}}, "SubjectAltNames: none of"},
		{"SAN matches but wrong CA", BackendOptions{ServerName: "backend.test", CACertificates: otherCA.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANHostname, Value: "backend.test"}}}, "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := NewBackendConfig(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tls.Dial("tcp", srv.addr, cfg)
			if err == nil {
				defer c.Close()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("dial error %v, want one containing %q", err, tt.wantErr)
			}
			wantSNI := strings.ToLower(strings.TrimSuffix(tt.opts.ServerName, "."))
			if got := srv.lastSNI(); got != wantSNI {
				t.Errorf("backend saw SNI %q, want %q", got, wantSNI)
			}
		})
	}
}

func TestBackendALPNAndClientCertificate(t *testing.T) {
	ca := newTestCA(t, "backend CA")
	clientCA := newTestCA(t, "client CA")
	srv := newBackendServer(t, issue(t, ca, leafSpec{cn: "backend", dns: []string{"backend.test"}}).cert, clientCA)
	clientCert := issue(t, clientCA, leafSpec{cn: "gateway"}).cert
	tests := []struct {
		name       string
		protocols  Protocols
		clientCert *tls.Certificate
		want       string
		wantErr    bool
	}{
		{"h2 and http/1.1", H2AndHTTP11, clientCert, "h2", false},
		{"http/1.1 only", HTTP11Only, clientCert, "http/1.1", false},
		{"h2 only", H2Only, clientCert, "h2", false},
		{"no client certificate", H2AndHTTP11, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := NewBackendConfig(BackendOptions{
				ServerName:        "backend.test",
				CACertificates:    ca.pem,
				Protocols:         tt.protocols,
				ClientCertificate: tt.clientCert,
			})
			if err != nil {
				t.Fatal(err)
			}
			c, err := tls.Dial("tcp", srv.addr, cfg)
			if err != nil {
				if !tt.wantErr {
					t.Fatal(err)
				}
				return
			}
			defer c.Close()
			// With TLS 1.3 the server checks the client certificate after
			// the client's handshake completes: a round trip surfaces it.
			err = echo(c, "ping")
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "certificate required") {
					t.Fatalf("error %v, want the server to require a certificate", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ConnectionState().NegotiatedProtocol; got != tt.want {
				t.Errorf("negotiated %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewBackendConfigErrors(t *testing.T) {
	ca := newTestCA(t, "ca")
	key := issue(t, nil, leafSpec{cn: "k"})
	tests := []struct {
		name string
		opts BackendOptions
		want string
	}{
		{"no server name", BackendOptions{CACertificates: ca.pem}, "BackendOptions.ServerName: required"},
		{"wildcard server name", BackendOptions{ServerName: "*.test", CACertificates: ca.pem}, "BackendOptions.ServerName"},
		{"both roots", BackendOptions{ServerName: "a.test", CACertificates: ca.pem, SystemRoots: true}, "mutually exclusive"},
		{"no roots", BackendOptions{ServerName: "a.test"}, "one of CACertificates and SystemRoots is required"},
		{"bad CA PEM", BackendOptions{ServerName: "a.test", CACertificates: key.keyPEM}, "BackendOptions.CACertificates: no CERTIFICATE"},
		{"bad SAN hostname", BackendOptions{ServerName: "a.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Value: "a.test"}, {Value: "bad name"}}}, "SubjectAltNames[1].Value"},
		{"SAN URI without scheme", BackendOptions{ServerName: "a.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANURI, Value: "cluster.local/ns"}}}, "needs a scheme"},
		{"SAN URI without body", BackendOptions{ServerName: "a.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANURI, Value: "spiffe:"}}}, "needs a scheme"},
		{"SAN type", BackendOptions{ServerName: "a.test", CACertificates: ca.pem,
			SubjectAltNames: []SubjectAltName{{Type: SANType(7), Value: "a.test"}}}, "SubjectAltNames[0].Type"},
		{"protocols", BackendOptions{ServerName: "a.test", CACertificates: ca.pem, Protocols: Protocols(5)}, "BackendOptions.Protocols"},
		{"min version", BackendOptions{ServerName: "a.test", CACertificates: ca.pem, MinVersion: tls.VersionTLS10}, "BackendOptions.MinVersion"},
		{"client certificate", BackendOptions{ServerName: "a.test", CACertificates: ca.pem,
			ClientCertificate: &tls.Certificate{Certificate: key.cert.Certificate}}, "BackendOptions.ClientCertificate: no private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := NewBackendConfig(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if cfg != nil {
				t.Error("config returned with an error")
			}
		})
	}
}

func TestBackendSystemRoots(t *testing.T) {
	cfg, err := NewBackendConfig(BackendOptions{ServerName: "example.com", SystemRoots: true})
	if _, sysErr := x509.SystemCertPool(); sysErr != nil {
		if err == nil || !strings.Contains(err.Error(), "BackendOptions.SystemRoots") {
			t.Fatalf("no system roots here (%v), but NewBackendConfig error = %v", sysErr, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs != nil || cfg.InsecureSkipVerify || cfg.ServerName != "example.com" {
		t.Errorf("RootCAs %v, InsecureSkipVerify %t, ServerName %q; want system roots with verification of example.com", cfg.RootCAs, cfg.InsecureSkipVerify, cfg.ServerName)
	}
}

// TestBackendClientCertificateUnlisted checks that the client certificate
// is presented even when the backend's request lists other authorities.
func TestBackendClientCertificateUnlisted(t *testing.T) {
	ca := newTestCA(t, "backend CA")
	listed, issuer := newTestCA(t, "listed CA"), newTestCA(t, "issuer CA")
	serverCert := issue(t, ca, leafSpec{cn: "backend", dns: []string{"backend.test"}}).cert
	clientCert := issue(t, issuer, leafSpec{cn: "gateway"}).cert
	cfg, err := NewBackendConfig(BackendOptions{ServerName: "backend.test", CACertificates: ca.pem, ClientCertificate: clientCert})
	if err != nil {
		t.Fatal(err)
	}
	listedPool := x509.NewCertPool()
	listedPool.AddCert(listed.cert)
	srvConn, cliConn := tcpPair(t)
	seen := make(chan []*x509.Certificate, 1)
	go func() {
		tc := tls.Server(srvConn, &tls.Config{Certificates: []tls.Certificate{*serverCert}, ClientAuth: tls.RequestClientCert, ClientCAs: listedPool})
		if tc.Handshake() != nil {
			close(seen)
			return
		}
		seen <- tc.ConnectionState().PeerCertificates
	}()
	if err := tls.Client(cliConn, cfg).Handshake(); err != nil {
		t.Fatal(err)
	}
	got, ok := <-seen
	if !ok || len(got) != 1 || !got[0].Equal(clientCert.Leaf) {
		t.Fatalf("server saw %d peer certificates (handshake ok %t), want the gateway's", len(got), ok)
	}
}
