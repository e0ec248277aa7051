package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		large  int
		method string
		path   string
		body   string
		want   int
	}{
		{name: "default size", size: 64, large: 1 << 20, method: http.MethodGet, path: "/any/path", want: 64},
		{name: "empty body", size: 0, method: http.MethodGet, path: "/", want: 0},
		{name: "post with body", size: 10, method: http.MethodPost, path: "/x", body: "hello", want: 10},
		{name: "one byte", size: 1, method: http.MethodHead, path: "/", want: 1},
		{name: "large path", size: 64, large: 1 << 20, method: http.MethodGet, path: "/large", want: 1 << 20},
		{name: "below large path", size: 64, large: 1 << 20, method: http.MethodGet, path: "/large/x", want: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := newHandler(tt.size, tt.large)
			if err != nil {
				t.Fatalf("newHandler(%d, %d): %v", tt.size, tt.large, err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			h.ServeHTTP(rec, req)

			type result struct {
				Status        int
				ContentLength string
				BodyLen       int
			}
			got := result{rec.Code, rec.Header().Get("Content-Length"), rec.Body.Len()}
			want := result{http.StatusOK, strconv.Itoa(tt.want), tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response mismatch (-want +got):\n%s", diff)
			}
			if n, _ := io.Copy(io.Discard, req.Body); n != 0 {
				t.Errorf("request body not drained: %d bytes left", n)
			}
		})
	}
}

func TestHandlerNegativeSize(t *testing.T) {
	if _, err := newHandler(-1, 0); err == nil {
		t.Error("newHandler(-1, 0): want an error, got nil")
	}
	if _, err := newHandler(0, -1); err == nil {
		t.Error("newHandler(0, -1): want an error, got nil")
	}
}

func TestNewServerErrors(t *testing.T) {
	cert, key := writeCert(t)
	tests := []struct {
		name string
		cfg  config
		want string
	}{
		{"cert without key", config{cert: cert}, "cert, key: give both or neither"},
		{"key without cert", config{key: key}, "cert, key: give both or neither"},
		{"h2c with TLS", config{cert: cert, key: key, h2c: true}, "h2c: not with cert"},
		{"missing files", config{cert: cert + ".none", key: key}, "cert \""},
		{"negative size", config{size: -1}, "size: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newServer(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("newServer: got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// serveOn starts the server cfg describes on a loopback port and returns
// its address.
func serveOn(t *testing.T, cfg config) string {
	t.Helper()
	srv, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// get fetches url with c and returns the protocol and the body's length.
func get(t *testing.T, c *http.Client, url string) (string, int) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	return resp.Proto, int(n)
}

func TestServeH2C(t *testing.T) {
	addr := serveOn(t, config{size: 64, large: 100 << 10, h2c: true})
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	h1 := &http.Transport{}
	defer h1.CloseIdleConnections()
	for _, tt := range []struct {
		tr        *http.Transport
		path      string
		wantProto string
		wantLen   int
	}{
		{h2c, "/", "HTTP/2.0", 64},
		{h2c, "/large", "HTTP/2.0", 100 << 10},
		{h1, "/", "HTTP/1.1", 64},
	} {
		proto, n := get(t, &http.Client{Transport: tt.tr, Timeout: 10 * time.Second}, "http://"+addr+tt.path)
		if proto != tt.wantProto || n != tt.wantLen {
			t.Errorf("GET %s: got %s with %d bytes, want %s with %d", tt.path, proto, n, tt.wantProto, tt.wantLen)
		}
	}
}

func TestServeDefaultIsHTTP1Only(t *testing.T) {
	addr := serveOn(t, config{size: 64})
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	c := &http.Client{Transport: h2c, Timeout: 10 * time.Second}
	if resp, err := c.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("h2c request to a backend without -h2c: got %s %d, want an error", resp.Proto, resp.StatusCode)
	}
}

func TestServeTLS(t *testing.T) {
	cert, key := writeCert(t)
	addr := serveOn(t, config{size: 64, large: 1 << 20, cert: cert, key: key})
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: h2}
		defer tr.CloseIdleConnections()
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		proto, n := get(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://"+addr+"/large")
		if proto != want || n != 1<<20 {
			t.Errorf("GET /large over TLS: got %s with %d bytes, want %s with %d", proto, n, want, 1<<20)
		}
	}
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key to PEM files and returns their paths.
func writeCert(t *testing.T) (string, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func BenchmarkHandler(b *testing.B) {
	h, err := newHandler(64, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
