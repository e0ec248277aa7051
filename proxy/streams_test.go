package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/tlsconfig"
	"github.com/rauta/rauta/upstream"
)

// streamBackend is a TCP server on loopback counting its connections.
type streamBackend struct {
	ln    net.Listener
	conns atomic.Int64
}

func newStreamBackend(t *testing.T, handle func(net.Conn)) *streamBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &streamBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns.Add(1)
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return b
}

func (b *streamBackend) addr() string { return b.ln.Addr().String() }

// tlsBackend terminates TLS with its own certificate for hosts and
// answers its name.
func tlsBackend(t *testing.T, name string, hosts ...string) (*streamBackend, *x509.Certificate) {
	t.Helper()
	cert, _, _, err := tlsconfig.SelfSigned(hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return newStreamBackend(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		io.WriteString(tc, name)
		tc.Close()
	}), cert.Leaf
}

func streamRoute(name, listener string, hostnames []string, backends ...string) l4.Route {
	r := l4.Route{Namespace: "ns", Name: name, Listeners: []string{listener}, Hostnames: hostnames,
		CreationTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, b := range backends {
		r.Backends = append(r.Backends, l4.BackendRef{Backend: b, Weight: 1})
	}
	return r
}

func backendAt(name string, addrs ...string) Backend {
	b := Backend{Spec: upstream.Spec{Name: name}}
	for _, a := range addrs {
		b.Endpoints = append(b.Endpoints, upstream.Endpoint{Address: a})
	}
	return b
}

func listenerAddr(t *testing.T, p *Proxy, name string) string {
	t.Helper()
	a, ok := p.Addr(name)
	if !ok {
		t.Fatalf("listener %q not bound", name)
	}
	return a.String()
}

func readToEnd(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestStreamTLSPassthrough: through the proxy's own listener, TLS is
// passed through by SNI (exact before wildcard) and the certificate the
// client verifies is the backend's own; an unknown name and bad
// ClientHellos are closed without reaching a backend.
func TestStreamTLSPassthrough(t *testing.T) {
	exact, exactCert := tlsBackend(t, "exact", "db.example.com")
	wild, wildCert := tlsBackend(t, "wild", "*.example.com")
	p := newTestProxy(t, Options{Streams: l4.Options{HelloTimeout: 500 * time.Millisecond}})
	err := p.Apply(Config{
		Listeners: []Listener{{Name: "gw/tls", Address: "127.0.0.1", Protocol: TLS, Passthrough: true}},
		StreamRoutes: []l4.Route{
			streamRoute("wild", "gw/tls", []string{"*.example.com"}, "wild"),
			streamRoute("exact", "gw/tls", []string{"db.example.com"}, "exact"),
		},
		Backends: []Backend{backendAt("exact", exact.addr()), backendAt("wild", wild.addr())},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := listenerAddr(t, p, "gw/tls")
	dial := func(sni string, root *x509.Certificate) (string, error) {
		roots := x509.NewCertPool()
		roots.AddCert(root)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: roots})
		if err != nil {
			return "", err
		}
		defer c.Close()
		if got := c.ConnectionState().PeerCertificates[0]; !got.Equal(root) {
			return "", errors.New("the client saw another certificate than the backend's")
		}
		return readToEnd(c)
	}
	if got, err := dial("db.example.com", exactCert); err != nil || got != "exact" {
		t.Errorf("db.example.com: %q, %v", got, err)
	}
	if got, err := dial("web.example.com", wildCert); err != nil || got != "wild" {
		t.Errorf("web.example.com: %q, %v", got, err)
	}
	seen := exact.conns.Load() + wild.conns.Load()
	if _, err := dial("other.test", wildCert); err == nil {
		t.Error("a name no route takes was forwarded")
	}
	for name, bad := range map[string][]byte{
		"plaintext": []byte("GET / HTTP/1.1\r\nHost: db.example.com\r\n\r\n"),
		"malformed": {22, 3, 1, 0, 5, 1, 0, 0, 1, 0},
		"slow":      {22, 3},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(bad)
		if got, _ := readToEnd(c); got != "" {
			t.Errorf("%s: got %q, want the connection closed", name, got)
		}
		c.Close()
	}
	if got := exact.conns.Load() + wild.conns.Load(); got != seen {
		t.Errorf("backends saw %d connections that should have been refused", got-seen)
	}
}

// TestStreamTCPHalfClose: through the proxy's TCP listener, a stream is
// forwarded with half-close both ways.
func TestStreamTCPHalfClose(t *testing.T) {
	be := newStreamBackend(t, func(c net.Conn) {
		b, err := io.ReadAll(c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "%d bytes, last %q", len(b), b[len(b)-3:])
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	p := newTestProxy(t, Options{})
	err := p.Apply(Config{
		Listeners:    []Listener{{Name: "gw/tcp", Address: "127.0.0.1", Protocol: TCP}},
		StreamRoutes: []l4.Route{streamRoute("r", "gw/tcp", nil, "b")},
		Backends:     []Backend{backendAt("b", be.addr())},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", listenerAddr(t, p, "gw/tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := strings.Repeat("0123456789", 50_000) + "end"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if got, err := readToEnd(c); err != nil || got != `500003 bytes, last "end"` {
		t.Errorf("got %q, %v", got, err)
	}
}

// TestStreamConfigChange: an Apply that keeps a stream's route keeps the
// stream, even when the HTTP side changes; one that removes the route
// closes it; HTTP and TCP listeners serve side by side from one Config.
func TestStreamConfigChange(t *testing.T) {
	echo := newStreamBackend(t, func(c net.Conn) { io.Copy(c, c) })
	web := echoBackend(t, "web")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"web": {addrOf(web)}}, Rule{Backends: []BackendRef{{Backend: "web", Weight: 1}}})
	cfg.Listeners = append(cfg.Listeners, Listener{Name: "gw/tcp", Address: "127.0.0.1", Protocol: TCP})
	cfg.StreamRoutes = []l4.Route{streamRoute("echo", "gw/tcp", nil, "echo")}
	cfg.Backends = append(cfg.Backends, backendAt("echo", echo.addr()))
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", listenerAddr(t, p, "gw/tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoes := func(msg string) error {
		if _, err := io.WriteString(c, msg); err != nil {
			return err
		}
		b := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if string(b) != msg {
			return fmt.Errorf("echo %q", b)
		}
		return nil
	}
	if err := echoes("first"); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/"); code != 200 || body != "web" {
		t.Errorf("HTTP beside TCP: %d %q", code, body)
	}

	cfg2 := cfg
	cfg2.Routes = nil // the HTTP side changes
	if err := p.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	if err := echoes("second"); err != nil {
		t.Fatalf("a stream whose route stayed was dropped: %v", err)
	}

	cfg3 := cfg2
	cfg3.StreamRoutes = nil
	if err := p.Apply(cfg3); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the stream of a removed route is still open")
	}
}

// TestStreamTLSTerminate: a TLS listener without passthrough terminates
// with its own certificate and forwards the plaintext; a passthrough
// listener shares its port for another name.
func TestStreamTLSTerminate(t *testing.T) {
	plain := newStreamBackend(t, func(c net.Conn) {
		b := make([]byte, 5)
		io.ReadFull(c, b)
		fmt.Fprintf(c, "plain %s", b)
	})
	pass, passCert := tlsBackend(t, "passed", "pass.example.com")
	cert := selfSigned(t, "term.example.com")
	p := newTestProxy(t, Options{})
	err := p.Apply(Config{
		Listeners: []Listener{
			{Name: "gw/term", Address: "127.0.0.1", Port: 0, Protocol: TLS, Hostname: "term.example.com", Certificates: []Certificate{cert}},
			{Name: "gw/pass", Address: "127.0.0.1", Port: 0, Protocol: TLS, Hostname: "pass.example.com", Passthrough: true},
		},
		StreamRoutes: []l4.Route{streamRoute("t", "gw/term", nil, "plain"), streamRoute("p", "gw/pass", nil, "pass")},
		Backends:     []Backend{backendAt("plain", plain.addr()), backendAt("pass", pass.addr())},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := listenerAddr(t, p, "gw/term")
	if other := listenerAddr(t, p, "gw/pass"); other != addr {
		t.Fatalf("the two TLS listeners do not share a port: %s and %s", addr, other)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert.CertPEM)
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "term.example.com", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "hello")
	if got, err := readToEnd(c); err != nil || got != "plain hello" {
		t.Errorf("terminated: %q, %v", got, err)
	}
	c.Close()
	roots2 := x509.NewCertPool()
	roots2.AddCert(passCert)
	c2, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "pass.example.com", RootCAs: roots2})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readToEnd(c2); err != nil || got != "passed" {
		t.Errorf("passed through: %q, %v", got, err)
	}
	c2.Close()
}

// TestStreamTLSTerminateReencrypt: through the proxy's own listener, a
// TLS listener that terminates forwards to a BackendTLS backend over a
// TLS connection of its own: the backend sees the configured server
// name, no ALPN and the client certificate, and the client the plaintext
// answer; a passthrough listener on the same port routed to the same
// backend passes the client's own TLS through.
func TestStreamTLSTerminateReencrypt(t *testing.T) {
	beCert := selfSigned(t, "backend.internal", "pass.example.com")
	beKP, err := tls.X509KeyPair(beCert.CertPEM, beCert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	clientCert := selfSigned(t, "gateway.client")
	be := newStreamBackend(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{beKP}, ClientAuth: tls.RequestClientCert, NextProtos: []string{"h2", "http/1.1"}})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() != nil {
			return
		}
		st := tc.ConnectionState()
		client := "none"
		if len(st.PeerCertificates) > 0 {
			client = st.PeerCertificates[0].DNSNames[0]
		}
		b := make([]byte, 5)
		io.ReadFull(tc, b)
		fmt.Fprintf(tc, "sni=%s alpn=%q client=%s data=%s", st.ServerName, st.NegotiatedProtocol, client, b)
		tc.CloseWrite()
	})
	front := selfSigned(t, "term.example.com")
	secure := backendAt("secure", be.addr())
	secure.Protocol = BackendTLS
	secure.TLS = &BackendTLSConfig{ServerName: "backend.internal", CACertificates: beCert.CertPEM, ClientCertificate: &clientCert}
	p := newTestProxy(t, Options{})
	err = p.Apply(Config{
		Listeners: []Listener{
			{Name: "gw/term", Address: "127.0.0.1", Port: 0, Protocol: TLS, Hostname: "term.example.com", Certificates: []Certificate{front}},
			{Name: "gw/pass", Address: "127.0.0.1", Port: 0, Protocol: TLS, Hostname: "pass.example.com", Passthrough: true},
		},
		StreamRoutes: []l4.Route{streamRoute("t", "gw/term", nil, "secure"), streamRoute("p", "gw/pass", nil, "secure")},
		Backends:     []Backend{secure},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := listenerAddr(t, p, "gw/term")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(front.CertPEM)
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "term.example.com", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "hello")
	if got, err := readToEnd(c); err != nil || got != `sni=backend.internal alpn="" client=gateway.client data=hello` {
		t.Errorf("terminated and re-encrypted: %q, %v", got, err)
	}
	c.Close()
	beRoots := x509.NewCertPool()
	beRoots.AppendCertsFromPEM(beCert.CertPEM)
	c2, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "pass.example.com", RootCAs: beRoots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, "again")
	if got, err := readToEnd(c2); err != nil || got != `sni=pass.example.com alpn="http/1.1" client=none data=again` {
		t.Errorf("passed through: %q, %v", got, err)
	}
	c2.Close()
}

// TestStreamListenerErrors: TCP and TLS listener fields that make no
// sense are refused, naming the listener and field.
func TestStreamListenerErrors(t *testing.T) {
	p := newTestProxy(t, Options{})
	for _, tc := range []struct {
		l    Listener
		want string
	}{
		{Listener{Name: "a", Protocol: TCP, Hostname: "a.example.com"}, `listener "a": hostname`},
		{Listener{Name: "b", Protocol: TLS}, `listener "b": certificates: required`},
		{Listener{Name: "c", Protocol: TLS, Passthrough: true, Certificates: []Certificate{selfSigned(t, "c.example.com")}}, `listener "c": certificates: a passthrough`},
		{Listener{Name: "d", Protocol: HTTP, Passthrough: true}, `listener "d": passthrough`},
		{Listener{Name: "e", Protocol: TCP, Unbound: true}, `listener "e": unbound`},
	} {
		err := p.Apply(Config{Listeners: []Listener{tc.l}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
}

// TestStreamSharesBackendState: an HTTP route and a TCP route to the same
// backend share its endpoint state: the endpoint the health check takes
// out is skipped by both.
func TestStreamSharesBackendState(t *testing.T) {
	web := echoBackend(t, "web")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(nil, Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	cfg.Listeners = append(cfg.Listeners, Listener{Name: "gw/tcp", Address: "127.0.0.1", Protocol: TCP})
	cfg.StreamRoutes = []l4.Route{streamRoute("r", "gw/tcp", nil, "b")}
	b := backendAt("b", deadAddr, addrOf(web))
	b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthTCP, Interval: 20 * time.Millisecond, UnhealthyThreshold: 1}
	b.CircuitBreaker = &upstream.CircuitBreaker{Disabled: true}
	cfg.Backends = []Backend{b}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.snap.Load().backends["b"].up.Table().Find([]byte(deadAddr)).Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("the dead endpoint stayed healthy")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// With the breaker off, only the health check keeps the dead endpoint
	// out of the pick: every stream and every request reaches web.
	for range 10 {
		c, err := net.Dial("tcp", listenerAddr(t, p, "gw/tcp"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		got, _ := readToEnd(c)
		c.Close()
		if !strings.HasSuffix(got, "web") {
			t.Fatalf("stream answered %q", got)
		}
		if code, body, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/"); code != 200 || body != "web" {
			t.Fatalf("request answered %d %q", code, body)
		}
	}
}
