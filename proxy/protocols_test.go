package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/tlsconfig"
	"github.com/rauta/rauta/upstream"
)

func selfSigned(t testing.TB, hosts ...string) Certificate {
	t.Helper()
	_, certPEM, keyPEM, err := tlsconfig.SelfSigned(hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return Certificate{Name: hosts[0], CertPEM: certPEM, KeyPEM: keyPEM}
}

// tlsClient returns a client that accepts any server certificate and
// records the one it saw, speaking h2 when forceH2.
func tlsClient(serverName string, seen *[]string, h2 bool) *http.Client {
	tc := &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if seen != nil {
				*seen = append(*seen, strings.Join(cs.PeerCertificates[0].DNSNames, ","))
			}
			return nil
		},
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: seen != nil}
	tr.Protocols = new(http.Protocols)
	if h2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestHTTPSNIAndRotation(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := Config{
		Listeners: []Listener{
			{Name: "https-a", Address: "127.0.0.1", Protocol: HTTPS, Hostname: "a.example.com", Certificates: []Certificate{selfSigned(t, "a.example.com")}},
			{Name: "https-b", Address: "127.0.0.1", Protocol: HTTPS, Hostname: "*.b.example.com", Certificates: []Certificate{selfSigned(t, "*.b.example.com")}},
		},
		Routes:   []Route{{Namespace: "ns", Name: "r", Listeners: []string{"https-a", "https-b"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "a", Weight: 1}}}}}},
		Backends: []Backend{{Spec: upstream.Spec{Name: "a", Endpoints: []upstream.Endpoint{{Address: addrOf(a)}}}}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	addr, _ := p.Addr("https-a")
	url := "https://" + addr.String() + "/"
	for _, tc := range []struct{ sni, want string }{
		{"a.example.com", "a.example.com"},
		{"x.b.example.com", "*.b.example.com"},
		{"unknown.example.org", "a.example.com"}, // the default: first certificate
	} {
		var seen []string
		c := tlsClient(tc.sni, &seen, false)
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = tc.sni
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("SNI %s: %v", tc.sni, err)
		}
		resp.Body.Close()
		if len(seen) != 1 || seen[0] != tc.want {
			t.Errorf("SNI %s: served %v, want %s", tc.sni, seen, tc.want)
		}
		if resp.StatusCode == 404 && tc.sni == "unknown.example.org" {
			continue // no listener serves that host
		}
		if resp.Header.Get("X-Seen-XFP") != "https" {
			t.Errorf("X-Forwarded-Proto = %q", resp.Header.Get("X-Seen-XFP"))
		}
	}

	// An open h2 connection keeps working across a certificate rotation,
	// and new handshakes see the new certificate.
	h2c := tlsClient("a.example.com", nil, true)
	resp, err := h2c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("ALPN h2: got %s", resp.Proto)
	}
	cfg.Listeners[0].Certificates = []Certificate{selfSigned(t, "a.example.com", "rotated.example.com")}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	var seen []string
	c := tlsClient("a.example.com", &seen, false)
	resp, err = c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(seen) != 1 || seen[0] != "a.example.com,rotated.example.com" {
		t.Errorf("after rotation served %v", seen)
	}
	resp, err = h2c.Get(url)
	if err != nil {
		t.Fatalf("h2 connection after rotation: %v", err)
	}
	resp.Body.Close()

	// TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, ServerName: "a.example.com"})
	if err == nil {
		conn.Close()
		t.Error("TLS 1.1 handshake accepted")
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"a": {addrOf(a)}}, Rule{Backends: []BackendRef{{Backend: "a", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr}).Get(baseURL(t, p, "gw/http") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "a" {
		t.Errorf("got %s %q", resp.Proto, body)
	}
}

// TestH2CUpgrade speaks the RFC 7540 Upgrade dance by hand.
func TestH2CUpgrade(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"a": {addrOf(a)}}, Rule{Backends: []BackendRef{{Backend: "a", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	addr, _ := p.Addr("gw/http")
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, br)
	fr.WriteSettings()
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if f.StreamID != 1 {
				t.Fatalf("HEADERS on stream %d", f.StreamID)
			}
			hs, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			if hs[0].Name != ":status" || hs[0].Value != "200" {
				t.Fatalf("stream 1 answered %v", hs)
			}
			return
		}
	}
}

// TestBackendProtocols forwards to an h2c backend and to a TLS backend
// that negotiates h2, checking what the backend saw.
func TestBackendProtocols(t *testing.T) {
	protoHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	h2cSrv := httptest.NewUnstartedServer(protoHandler)
	h2cSrv.Config.Protocols = new(http.Protocols)
	h2cSrv.Config.Protocols.SetUnencryptedHTTP2(true)
	h2cSrv.Start()
	defer h2cSrv.Close()

	tlsSrv := httptest.NewUnstartedServer(protoHandler)
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})

	p := newTestProxy(t, Options{})
	cfg := Config{
		Listeners: []Listener{{Name: "l", Address: "127.0.0.1", Protocol: HTTP}},
		Routes: []Route{{Namespace: "ns", Name: "r", Listeners: []string{"l"}, Rules: []Rule{
			{Matches: prefix("/h2c"), Backends: []BackendRef{{Backend: "h2c", Weight: 1}}},
			{Matches: prefix("/tls"), Backends: []BackendRef{{Backend: "tls", Weight: 1}}},
			{Matches: prefix("/badca"), Backends: []BackendRef{{Backend: "badca", Weight: 1}}},
		}}},
		Backends: []Backend{
			{Spec: upstream.Spec{Name: "h2c", Endpoints: []upstream.Endpoint{{Address: addrOf(h2cSrv)}}}, Protocol: BackendH2C},
			{Spec: upstream.Spec{Name: "tls", Endpoints: []upstream.Endpoint{{Address: addrOf(tlsSrv)}}}, Protocol: BackendTLS, TLS: &BackendTLSConfig{ServerName: "example.com", CACertificates: caPEM}},
			{Spec: upstream.Spec{Name: "badca", Endpoints: []upstream.Endpoint{{Address: addrOf(tlsSrv)}}}, Protocol: BackendTLS, TLS: &BackendTLSConfig{ServerName: "example.com", CACertificates: pemOf(t, selfSigned(t, "other"))}},
		},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "l")
	for path, want := range map[string]string{"/h2c": "HTTP/2.0", "/tls": "HTTP/2.0"} {
		code, body, _ := get(t, http.DefaultClient, base+path)
		if code != 200 || body != want {
			t.Errorf("%s: %d %q, want %s", path, code, body, want)
		}
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/badca"); code != 502 {
		t.Errorf("backend with an untrusted certificate: %d, want 502", code)
	}
}

func pemOf(t testing.TB, c Certificate) []byte { return c.CertPEM }

// TestUpgradeSurvivesSwap tunnels a WebSocket-style upgrade and keeps it
// open across configuration changes, including removing its route.
func TestUpgradeSurvivesSwap(t *testing.T) {
	ws := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo
	}))
	other := echoBackend(t, "other")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"ws": {ws.addr()}}, Rule{Backends: []BackendRef{{Backend: "ws", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	addr, _ := p.Addr("gw/http")
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q: got %q, %v", msg, buf, err)
		}
	}
	echo("hello")
	for i := range 5 {
		cfg2 := simpleConfig(map[string][]string{"other": {addrOf(other)}}, Rule{Backends: []BackendRef{{Backend: "other", Weight: 1}}})
		if i%2 == 0 {
			cfg2 = cfg
		}
		if err := p.Apply(cfg2); err != nil {
			t.Fatal(err)
		}
		echo(fmt.Sprintf("after swap %d", i))
	}
}

// TestStreaming checks that response chunks reach the client as the
// backend flushes them, and request bodies reach the backend as the client
// sends them.
func TestStreaming(t *testing.T) {
	release := make(chan struct{})
	gotFirst := make(chan string, 1)
	backend := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			buf := make([]byte, 5)
			io.ReadFull(r.Body, buf)
			gotFirst <- string(buf)
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "done")
			return
		}
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second")
	}))
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {backend.addr()}}, Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	resp, err := http.Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	readDone := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, buf); readDone <- err }()
	select {
	case err := <-readDone:
		if err != nil || string(buf) != "first" {
			t.Fatalf("first chunk %q, %v", buf, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first chunk not delivered before the backend finished")
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(rest) != "second" {
		t.Errorf("rest %q", rest)
	}

	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, "hello")
		select {
		case got := <-gotFirst:
			if got != "hello" {
				pw.CloseWithError(fmt.Errorf("backend got %q", got))
				return
			}
		case <-time.After(5 * time.Second):
			pw.CloseWithError(fmt.Errorf("backend did not see the first part of the body"))
			return
		}
		io.WriteString(pw, " world")
		pw.Close()
	}()
	resp, err = http.Post(base+"/upload", "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "done" {
		t.Errorf("upload: %d %q", resp.StatusCode, body)
	}
}

// TestTrailersAnd1xx checks that trailers (as gRPC uses them) pass
// through HTTP/2 end to end and that 103 Early Hints are relayed.
func TestTrailersAnd1xx(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "final")
			return
		}
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		io.WriteString(w, "payload")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "fine")
	})
	h2cSrv := httptest.NewUnstartedServer(h)
	h2cSrv.Config.Protocols = new(http.Protocols)
	h2cSrv.Config.Protocols.SetUnencryptedHTTP2(true)
	h2cSrv.Config.Protocols.SetHTTP1(true)
	h2cSrv.Start()
	defer h2cSrv.Close()
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(nil, Rule{Matches: prefix("/hints"), Backends: []BackendRef{{Backend: "h1", Weight: 1}}},
		Rule{Backends: []BackendRef{{Backend: "h2c", Weight: 1}}})
	cfg.Backends = []Backend{
		{Spec: upstream.Spec{Name: "h2c", Endpoints: []upstream.Endpoint{{Address: addrOf(h2cSrv)}}}, Protocol: BackendH2C},
		{Spec: upstream.Spec{Name: "h1", Endpoints: []upstream.Endpoint{{Address: addrOf(h2cSrv)}}}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr}
	resp, err := c.Get(baseURL(t, p, "gw/http") + "/grpc")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "payload" || resp.Trailer.Get("Grpc-Status") != "0" || resp.Trailer.Get("Grpc-Message") != "fine" {
		t.Errorf("body %q trailers %v", body, resp.Trailer)
	}

	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", baseURL(t, p, "gw/http")+"/hints", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "final" || len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
		t.Errorf("body %q hints %q", body, hints)
	}
	if resp.Header.Get("Link") != "" {
		t.Errorf("hint header leaked into the final response: %q", resp.Header.Get("Link"))
	}
}

var _ = bytes.NewReader
var _ = x509.NewCertPool

// TestMisdirectedRequest checks 421 for a request whose Host belongs to
// another listener of the port than the one its SNI selected.
func TestMisdirectedRequest(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cert := selfSigned(t, "example.org", "second-example.org", "*.wildcard.org")
	cfg := Config{
		Listeners: []Listener{
			{Name: "https", Address: "127.0.0.1", Protocol: HTTPS, Certificates: []Certificate{cert}},
			{Name: "second", Address: "127.0.0.1", Protocol: HTTPS, Hostname: "second-example.org", Certificates: []Certificate{cert}},
			{Name: "wild", Address: "127.0.0.1", Protocol: HTTPS, Hostname: "*.wildcard.org", Certificates: []Certificate{cert}},
		},
		Routes: []Route{
			{Namespace: "ns", Name: "r1", Listeners: []string{"https"}, Hostnames: []string{"example.org"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "a", Weight: 1}}}}},
			{Namespace: "ns", Name: "r2", Listeners: []string{"second", "wild"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "a", Weight: 1}}}}},
		},
		Backends: []Backend{{Spec: upstream.Spec{Name: "a", Endpoints: []upstream.Endpoint{{Address: addrOf(a)}}}}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	addr, _ := p.Addr("https")
	for _, tc := range []struct {
		sni, host string
		code      int
	}{
		{"example.org", "example.org", 200},
		{"example.org", "second-example.org", 421},
		{"example.org", "unknown-example.org", 404},
		{"second-example.org", "example.org", 421},
		{"third.wildcard.org", "fifth.wildcard.org", 200},
		{"third.wildcard.org", "second-example.org", 421},
		{"unknown-example.org", "example.org", 200},
	} {
		for _, h2 := range []bool{false, true} {
			c := tlsClient(tc.sni, nil, h2)
			req, _ := http.NewRequest("GET", "https://"+addr.String()+"/", nil)
			req.Host = tc.host
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("SNI %s Host %s: %v", tc.sni, tc.host, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("SNI %s Host %s (h2 %v): %d, want %d", tc.sni, tc.host, h2, resp.StatusCode, tc.code)
			}
		}
	}
}
