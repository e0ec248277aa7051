package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseBackends(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "127.0.0.1:1,127.0.0.1:2", want: []string{"127.0.0.1:1", "127.0.0.1:2"}},
		{in: " 127.0.0.1:1 , ,[::1]:3", want: []string{"127.0.0.1:1", "[::1]:3"}},
		{in: "", wantErr: true},
		{in: ",", wantErr: true},
		{in: "127.0.0.1", wantErr: true},
		{in: ":80", wantErr: true},
		{in: "host:", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseBackends(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseBackends(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseBackends(%q): %v", tt.in, err)
			continue
		}
		var hosts []string
		for _, u := range got {
			if u.Scheme != "http" {
				t.Errorf("parseBackends(%q): scheme %q, want http", tt.in, u.Scheme)
			}
			hosts = append(hosts, u.Host)
		}
		if diff := cmp.Diff(tt.want, hosts); diff != "" {
			t.Errorf("parseBackends(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	tests := []struct{ name, listen, tlsListen, cert, key, backends string }{
		{name: "no listener", backends: "127.0.0.1:1"},
		{name: "tls without cert", tlsListen: "127.0.0.1:0", backends: "127.0.0.1:1"},
		{name: "no backends", listen: "127.0.0.1:0"},
	}
	for _, tt := range tests {
		if err := run(tt.listen, tt.tlsListen, tt.cert, tt.key, tt.backends, logger); err == nil {
			t.Errorf("%s: run returned nil, want an error", tt.name)
		}
	}
}

// namedBackend answers with its name so a test can see which backend served.
func namedBackend(t *testing.T, name string) *url.URL {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func get(t *testing.T, c *http.Client, u string) (body, proto string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %q", u, resp.StatusCode, b)
	}
	return string(b), resp.Proto
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeRoundRobinH1AndH2(t *testing.T) {
	targets := []*url.URL{namedBackend(t, "one"), namedBackend(t, "two")}
	logger := slog.New(slog.DiscardHandler)
	certFile, keyFile, pool := writeCert(t)

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	secure, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, plain, secure, certFile, keyFile, newProxy(targets, logger), logger)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	h1 := &http.Client{Transport: &http.Transport{}}
	defer h1.CloseIdleConnections()
	var got []string
	for range 4 {
		body, proto := get(t, h1, "http://"+plain.Addr().String()+"/")
		got = append(got, body+" "+proto)
	}
	want := []string{"one HTTP/1.1", "two HTTP/1.1", "one HTTP/1.1", "two HTTP/1.1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clear-text responses mismatch (-want +got):\n%s", diff)
	}

	h2 := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	defer h2.CloseIdleConnections()
	got = got[:0]
	for range 2 {
		body, proto := get(t, h2, "https://"+secure.Addr().String()+"/")
		got = append(got, body+" "+proto)
	}
	// The counter is shared by both listeners: four requests went before.
	want = []string{"one HTTP/2.0", "two HTTP/2.0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TLS responses mismatch (-want +got):\n%s", diff)
	}
}

func TestProxyBadGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	ln.Close()
	rec := httptest.NewRecorder()
	newProxy([]*url.URL{dead}, slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusBadGateway {
		t.Errorf("status = %d, want %d", rec.Code, http.StatusBadGateway)
	}
}

func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n")
	}))
	defer backend.Close()
	u, err := url.Parse(backend.URL)
	if err != nil {
		b.Fatal(err)
	}
	p := newProxy([]*url.URL{u}, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
