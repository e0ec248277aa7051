package h1server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h2server"
)

// selfSigned returns a certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "h1server test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// protoHandler answers with the request's protocol and whether it came
// over TLS.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	tlsState := "plain"
	if r.TLS != nil {
		tlsState = "tls"
	}
	io.WriteString(w, r.Proto+" "+tlsState)
})

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTLSNextProto serves HTTP/1.1 and, through TLSNextProto, HTTP/2 on
// one TLS listener, as the proxy wires it.
func TestTLSNextProto(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, NextProtos: []string{"h2", "http/1.1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2 := &h2server.Server{ErrorLog: quietLogger()}
	states := &recorder[http.ConnState]{}
	s := &Server{
		Handler:   protoHandler,
		ErrorLog:  quietLogger(),
		ConnState: func(_ net.Conn, st http.ConnState) { states.add(st) },
		TLSNextProto: map[string]func(net.Conn){
			"h2": func(c net.Conn) {
				h2.ServeConn(c, &h2server.ServeConnOpts{Handler: protoHandler})
			},
		},
	}
	s.RegisterOnShutdown(func() { h2.Shutdown(context.Background()) })
	done := make(chan error, 1)
	go func() { done <- s.Serve(tls.NewListener(ln, cfg)) }()
	url := "https://" + ln.Addr().String() + "/"
	clientTLS := &tls.Config{InsecureSkipVerify: true}

	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}}
	if got := get(t, h1, url); got != "HTTP/1.1 tls" {
		t.Errorf("HTTP/1.1 client: %q", got)
	}
	h1.CloseIdleConnections()
	h2c := &http.Client{Transport: &http2.Transport{TLSClientConfig: clientTLS}}
	if got := get(t, h2c, url); got != "HTTP/2.0 tls" {
		t.Errorf("HTTP/2 client: %q", got)
	}

	// Shutdown tells the HTTP/2 connection to go away (GOAWAY) and
	// waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
	var news, closes int
	for _, st := range states.get() {
		switch st {
		case http.StateNew:
			news++
		case http.StateClosed:
			closes++
		}
	}
	if news != 2 || closes != 2 {
		t.Errorf("states %v", states.get())
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2 := &http2.Server{}
	s := &Server{
		Handler:  protoHandler,
		ErrorLog: quietLogger(),
		H2CPriorKnowledge: func(c net.Conn) {
			h2.ServeConn(c, &http2.ServeConnOpts{Handler: protoHandler})
		},
	}
	go s.Serve(ln)
	defer s.Close()
	url := "http://" + ln.Addr().String() + "/"

	prior := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	if got := get(t, prior, url); got != "HTTP/2.0 plain" {
		t.Errorf("prior knowledge client: %q", got)
	}
	if got := get(t, http.DefaultClient, url); got != "HTTP/1.1 plain" {
		t.Errorf("HTTP/1.1 client: %q", got)
	}
	// A request starting like the preface but diverging is HTTP/1.
	c := dial(t, ln.Addr().String())
	c.send("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
	if r := c.read("PRI"); r.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Errorf("status %d", r.StatusCode)
	}
}

// TestH2CUpgradeViaHijack does what the proxy does for "Upgrade: h2c":
// the handler hijacks the connection, answers 101 and serves HTTP/2 on
// it with the upgrading request as stream 1.
func TestH2CUpgradeViaHijack(t *testing.T) {
	h2 := &http2.Server{}
	var handler http.HandlerFunc
	handler = func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "h2c" {
			// Stream 1 (the upgrading request, still marked HTTP/1.1 by
			// x/net) or a later HTTP/2 request.
			io.WriteString(w, "h2 "+r.URL.Path)
			return
		}
		settings, err := base64.RawURLEncoding.DecodeString(r.Header.Get("Http2-Settings"))
		if err != nil {
			t.Errorf("settings: %v", err)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
		r.Header.Del("Connection")
		r.Body = http.NoBody
		h2.ServeConn(&bufferedConn{Conn: conn, r: brw.Reader}, &http2.ServeConnOpts{
			Context:        context.WithoutCancel(r.Context()),
			Handler:        handler,
			UpgradeRequest: r,
			Settings:       settings,
		})
	}
	ts := startOurs(t, handler, testConfig{})
	c := dial(t, ts.addr)
	c.send("GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c.send(http2.ClientPreface)
	fr := http2.NewFramer(c.nc, c.br)
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
			hs, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil || f.StreamID != 1 || hs[0].Value != "200" {
				t.Fatalf("stream %d headers %v %v", f.StreamID, hs, err)
			}
		case *http2.DataFrame:
			if got := string(f.Data()); got != "h2 /up" {
				t.Fatalf("data %q", got)
			}
			return
		}
	}
}

// bufferedConn is a net.Conn whose reads come first from a reader holding
// bytes already read from it (as in the proxy).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
