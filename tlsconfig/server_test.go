package tlsconfig

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// serveOne serves a single certificate for svc.test with opts and returns
// the address and a client config trusting it.
func serveOne(t *testing.T, opts ServerOptions) (string, *tls.Config) {
	t.Helper()
	c := issue(t, nil, leafSpec{cn: "svc", dns: []string{"svc.test"}}).cert
	s := NewStore(StoreOptions{})
	if err := s.Update(Certificate{Cert: c}); err != nil {
		t.Fatal(err)
	}
	cfg, err := NewServerConfig(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, cfg), &tls.Config{ServerName: "svc.test", RootCAs: pool(c)}
}

func TestALPN(t *testing.T) {
	tests := []struct {
		name    string
		server  Protocols
		client  []string
		want    string
		wantErr string
	}{
		{"h2 preferred", H2AndHTTP11, []string{"http/1.1", "h2"}, "h2", ""},
		{"http/1.1 client", H2AndHTTP11, []string{"http/1.1"}, "http/1.1", ""},
		{"no ALPN", H2AndHTTP11, nil, "", ""},
		{"h1-only server", HTTP11Only, []string{"h2", "http/1.1"}, "http/1.1", ""},
		{"h1-only server, h2-only client", HTTP11Only, []string{"h2"}, "", "no application protocol"},
		{"h2-only server", H2Only, []string{"h2", "http/1.1"}, "h2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, client := serveOne(t, ServerOptions{Protocols: tt.server})
			client.NextProtos = tt.client
			c, err := dial(t, addr, client)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
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

func TestVersionsAndCiphers(t *testing.T) {
	addr, client12 := serveOne(t, ServerOptions{})
	addr13, client13 := serveOne(t, ServerOptions{MinVersion: tls.VersionTLS13})
	clients := map[string]*tls.Config{addr: client12, addr13: client13}
	type result struct {
		Version uint16
		Suite   uint16
		// Err is the error of a refused handshake; "remote error" means
		// the server refused it, not the client.
		Err string
	}
	tests := []struct {
		name   string
		addr   string
		min    uint16
		max    uint16
		suites []uint16
		want   result
	}{
		{"TLS 1.3", addr, 0, 0, nil, result{Version: tls.VersionTLS13, Suite: tls.TLS_AES_128_GCM_SHA256}},
		{"TLS 1.2 AEAD", addr, 0, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			result{Version: tls.VersionTLS12, Suite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
		{"TLS 1.2 CBC refused", addr, 0, tls.VersionTLS12, []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, result{Err: "remote error: tls: handshake failure"}},
		{"TLS 1.1 refused", addr, tls.VersionTLS10, tls.VersionTLS11, nil, result{Err: "remote error: tls: protocol version not supported"}},
		{"TLS 1.0 refused", addr, tls.VersionTLS10, tls.VersionTLS10, nil, result{Err: "remote error: tls: protocol version not supported"}},
		{"TLS 1.2 refused by 1.3 minimum", addr13, 0, tls.VersionTLS12, nil, result{Err: "remote error: tls: protocol version not supported"}},
		{"TLS 1.3 with 1.3 minimum", addr13, 0, 0, nil, result{Version: tls.VersionTLS13, Suite: tls.TLS_AES_128_GCM_SHA256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := clients[tt.addr].Clone()
			client.MinVersion, client.MaxVersion, client.CipherSuites = tt.min, tt.max, tt.suites
			c, err := dial(t, tt.addr, client)
			var got result
			if err != nil {
				got.Err = err.Error()
			} else {
				st := c.ConnectionState()
				got.Version, got.Suite = st.Version, st.CipherSuite
				// TLS 1.3's suite depends on the CPU's AES support; all
				// three are AEAD, so any of them stands for "TLS 1.3 AEAD".
				switch got.Suite {
				case tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256:
					got.Suite = tls.TLS_AES_128_GCM_SHA256
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestServerConfigContents(t *testing.T) {
	cfg, err := NewServerConfig(NewStore(StoreOptions{}), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("cipher suite %s is not ECDHE with an AEAD", name)
		}
	}
	if diff := cmp.Diff([]tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}, cfg.CurvePreferences); diff != "" {
		t.Errorf("CurvePreferences (-want +got):\n%s", diff)
	}
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
		t.Errorf("MinVersion %#x, %d Certificates, GetCertificate set %t", cfg.MinVersion, len(cfg.Certificates), cfg.GetCertificate != nil)
	}
}

func TestNewServerConfigErrors(t *testing.T) {
	s := NewStore(StoreOptions{})
	tests := []struct {
		store *Store
		opts  ServerOptions
		want  string
	}{
		{nil, ServerOptions{}, "store: nil"},
		{s, ServerOptions{MinVersion: tls.VersionTLS11}, "ServerOptions.MinVersion"},
		{s, ServerOptions{Protocols: Protocols(9)}, "ServerOptions.Protocols"},
	}
	for _, tt := range tests {
		if _, err := NewServerConfig(tt.store, tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewServerConfig(%v, %+v) error %v, want one containing %q", tt.store, tt.opts, err, tt.want)
		}
	}
}

// TestHTTPServer serves net/http over a config from NewServerConfig: h2 by
// default, HTTP/1.1 when both the config and the server say so.
func TestHTTPServer(t *testing.T) {
	tests := []struct {
		name      string
		protocols Protocols
		h1Only    bool
		want      string
	}{
		{"h2", H2AndHTTP11, false, "HTTP/2.0"},
		{"http/1.1 only", HTTP11Only, true, "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := issue(t, nil, leafSpec{cn: "svc", dns: []string{"svc.test"}}).cert
			s := NewStore(StoreOptions{})
			if err := s.Update(Certificate{Cert: c}); err != nil {
				t.Fatal(err)
			}
			cfg, err := NewServerConfig(s, ServerOptions{Protocols: tt.protocols})
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, r.Proto)
				}),
				TLSConfig:         cfg,
				ReadHeaderTimeout: 5 * time.Second,
			}
			if tt.h1Only {
				srv.Protocols = new(http.Protocols)
				srv.Protocols.SetHTTP1(true)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.ServeTLS(ln, "", "") }()
			t.Cleanup(func() { srv.Close() })

			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{ServerName: "svc.test", RootCAs: pool(c)},
				ForceAttemptHTTP2: true,
			}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != tt.want || string(body) != tt.want {
				t.Errorf("response proto %q, server saw %q, want %q", resp.Proto, body, tt.want)
			}
		})
	}
}
