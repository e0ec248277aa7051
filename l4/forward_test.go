package l4

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rauta/rauta/tlsconfig"
	"github.com/rauta/rauta/upstream"
)

// backend is a TCP server on loopback that counts its connections and
// serves each with handle.
type backend struct {
	ln    net.Listener
	conns atomic.Int64
}

func newBackend(t *testing.T, handle func(net.Conn)) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{ln: ln}
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

func (b *backend) addr() string { return b.ln.Addr().String() }

// named answers every connection with its name and closes it.
func named(name string) func(net.Conn) {
	return func(c net.Conn) { io.WriteString(c, name) }
}

// tlsNamed terminates TLS with a certificate for hosts and answers its
// name.
func tlsNamed(t *testing.T, name string, hosts ...string) (func(net.Conn), *x509.Certificate) {
	cert, _, _, err := tlsconfig.SelfSigned(hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		io.WriteString(tc, name)
		tc.Close()
	}, cert.Leaf
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// rig is a forwarder with its upstream set, serving ports on loopback.
type rig struct {
	t     *testing.T
	f     *Forwarder
	set   *upstream.Set
	addrs map[string]string // port key -> bound address
}

func newRig(t *testing.T, opts Options, ports ...string) *rig {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &rig{t: t, f: New(opts), set: upstream.NewSet(upstream.Options{Logger: opts.Logger}), addrs: map[string]string{}}
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.addrs[p] = ln.Addr().String()
		go r.f.Serve(ln, p)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.f.Shutdown(ctx)
		r.set.Close()
	})
	return r
}

func (r *rig) apply(cfg Config, specs ...upstream.Spec) {
	r.t.Helper()
	bs, errs := r.set.Sync(specs, nil)
	if len(errs) > 0 {
		r.t.Fatalf("Sync: %v", errs)
	}
	r.set.Settle()
	if err := r.f.Apply(cfg, bs); err != nil {
		r.t.Fatalf("Apply: %v", err)
	}
}

func spec(name string, addrs ...string) upstream.Spec {
	s := upstream.Spec{Name: name}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, upstream.Endpoint{Address: a})
	}
	return s
}

func route(name string, listener string, hostnames []string, refs ...BackendRef) Route {
	return Route{Namespace: "ns", Name: name, Listeners: []string{listener}, Hostnames: hostnames, Backends: refs,
		CreationTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func ref(name string) BackendRef { return BackendRef{Backend: name, Weight: 1} }

// readAll reads a connection to its end with a deadline.
func readAll(t *testing.T, c net.Conn) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestTCPHalfClose: a TCP stream is forwarded with half-close in both
// directions: the client sends a request and shuts its write side; the
// backend reads to EOF, answers, and shuts its own; the client reads the
// whole answer to EOF.
func TestTCPHalfClose(t *testing.T) {
	be := newBackend(t, func(c net.Conn) {
		got, err := io.ReadAll(c) // to the client's half-close
		if err != nil {
			return
		}
		fmt.Fprintf(c, "backend read %d bytes: %s", len(got), bytes.ToUpper(got[:5]))
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	r := newRig(t, Options{}, "tcp")
	r.apply(Config{Listeners: []Listener{{Name: "l", Port: "tcp", Protocol: TCP}}, Routes: []Route{route("r", "l", nil, ref("b"))}}, spec("b", be.addr()))

	c, err := net.Dial("tcp", r.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := append([]byte("hello"), bytes.Repeat([]byte("x"), 200_000)...)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "backend read 200005 bytes: HELLO"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	up := value(r.f.m.bytes.WithLabelValues("l", "ns/r", "upstream"))
	down := value(r.f.m.bytes.WithLabelValues("l", "ns/r", "downstream"))
	if up != 200005 || down != float64(len(got)) {
		t.Errorf("bytes: upstream %v, downstream %v", up, down)
	}
	if n := value(r.f.m.conns.WithLabelValues("l", "ns/r", resultForwarded)); n != 1 {
		t.Errorf("forwarded connections: %v", n)
	}
}

// TestTLSPassthroughBySNI: TLS is passed through by SNI, exact names
// before wildcards, and the certificate the client verifies is the
// backend's own; a name no route takes closes the connection without
// reaching a backend.
func TestTLSPassthroughBySNI(t *testing.T) {
	exactH, exactCert := tlsNamed(t, "exact", "api.example.com")
	wildH, wildCert := tlsNamed(t, "wild", "*.example.com")
	exact, wild := newBackend(t, exactH), newBackend(t, wildH)
	r := newRig(t, Options{}, "tls")
	cfg := Config{
		Listeners: []Listener{{Name: "l", Port: "tls", Protocol: TLSPassthrough}},
		Routes: []Route{
			route("wild", "l", []string{"*.example.com"}, ref("wild")),
			route("exact", "l", []string{"api.example.com"}, ref("exact")),
		},
	}
	r.apply(cfg, spec("exact", exact.addr()), spec("wild", wild.addr()))

	dial := func(sni string, root *x509.Certificate) (string, *x509.Certificate, error) {
		pool := x509.NewCertPool()
		pool.AddCert(root)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", r.addrs["tls"], &tls.Config{ServerName: sni, RootCAs: pool})
		if err != nil {
			return "", nil, err
		}
		defer c.Close()
		body, err := readAll(t, c)
		return body, c.ConnectionState().PeerCertificates[0], err
	}
	if body, cert, err := dial("api.example.com", exactCert); err != nil || body != "exact" || !cert.Equal(exactCert) {
		t.Errorf("api.example.com: %q, %v", body, err)
	}
	if body, cert, err := dial("WWW.Example.com", wildCert); err != nil || body != "wild" || !cert.Equal(wildCert) {
		t.Errorf("www.example.com: %q, %v", body, err)
	}
	before := exact.conns.Load() + wild.conns.Load()
	if _, _, err := dial("example.org", wildCert); err == nil {
		t.Error("a name no route takes was forwarded")
	}
	if got := exact.conns.Load() + wild.conns.Load(); got != before {
		t.Errorf("a backend saw the unrouted connection (%d -> %d)", before, got)
	}
	if n := value(r.f.m.conns.WithLabelValues("l", "", resultNoRoute)); n != 1 {
		t.Errorf("no_route connections: %v", n)
	}
}

// TestBadClientHello: a connection whose ClientHello is malformed, too
// large, too slow or absent is closed without reaching a backend.
func TestBadClientHello(t *testing.T) {
	be := newBackend(t, named("b"))
	r := newRig(t, Options{HelloTimeout: 300 * time.Millisecond, MaxHelloBytes: 1024}, "tls")
	r.apply(Config{Listeners: []Listener{{Name: "l", Port: "tls", Protocol: TLSPassthrough}}, Routes: []Route{route("r", "l", nil, ref("b"))}}, spec("b", be.addr()))

	big := clientHello(t, &tls.Config{ServerName: strings.Repeat("a", 60) + ".example.com", NextProtos: bigALPN(), InsecureSkipVerify: true})
	for name, tc := range map[string]struct {
		send  []byte
		close bool // the client closes its write side after sending
	}{
		"http":      {send: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")},
		"malformed": {send: []byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}},
		"too large": {send: big},
		"slow":      {send: []byte{22, 3, 1}},
		"truncated": {send: []byte{22, 3, 1, 0, 100, 1}, close: true},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", r.addrs["tls"])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.send)
			if tc.close {
				c.(*net.TCPConn).CloseWrite()
			}
			start := time.Now()
			got, _ := readAll(t, c)
			if got != "" {
				t.Fatalf("got %q, want the connection closed", got)
			}
			if name == "slow" && time.Since(start) < 250*time.Millisecond {
				t.Errorf("a slow hello was closed after %v, before the hello timeout", time.Since(start))
			}
		})
	}
	if n := be.conns.Load(); n != 0 {
		t.Errorf("the backend saw %d connections", n)
	}
	if n := value(r.f.m.conns.WithLabelValues("", "", resultBadHello)); n != 5 {
		t.Errorf("bad_hello connections: %v, want 5", n)
	}
}

func bigALPN() []string {
	var out []string
	for i := range 40 {
		out = append(out, fmt.Sprintf("protocol-%02d-%s", i, strings.Repeat("p", 20)))
	}
	return out
}

// TestTLSTerminate: a TLSTerminate listener completes the handshake with
// its own certificate and forwards the plaintext; a passthrough listener
// on the same port takes another name (mixed mode).
func TestTLSTerminate(t *testing.T) {
	plain := newBackend(t, func(c net.Conn) {
		b := make([]byte, 4)
		io.ReadFull(c, b)
		fmt.Fprintf(c, "plaintext %s", b)
	})
	passH, passCert := tlsNamed(t, "passed", "pass.example.com")
	pass := newBackend(t, passH)
	cert, _, _, err := tlsconfig.SelfSigned([]string{"term.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, Options{}, "tls")
	r.apply(Config{
		Listeners: []Listener{
			{Name: "term", Port: "tls", Protocol: TLSTerminate, Hostname: "term.example.com", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}},
			{Name: "pass", Port: "tls", Protocol: TLSPassthrough, Hostname: "pass.example.com"},
		},
		Routes: []Route{route("t", "term", nil, ref("plain")), route("p", "pass", nil, ref("pass"))},
	}, spec("plain", plain.addr()), spec("pass", pass.addr()))

	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	c, err := tls.Dial("tcp", r.addrs["tls"], &tls.Config{ServerName: "term.example.com", RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "ping")
	if got, err := readAll(t, c); err != nil || got != "plaintext ping" {
		t.Errorf("terminated: %q, %v", got, err)
	}
	c.Close()
	pool2 := x509.NewCertPool()
	pool2.AddCert(passCert)
	c2, err := tls.Dial("tcp", r.addrs["tls"], &tls.Config{ServerName: "pass.example.com", RootCAs: pool2})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, c2); err != nil || got != "passed" {
		t.Errorf("passed through: %q, %v", got, err)
	}
	c2.Close()
}

// TestTLSTerminateReencrypt: a TLSTerminate listener whose backend has a
// TLS transport opens TLS of its own toward the endpoint, with the
// transport's server name, verification and no ALPN, and forwards the
// stream re-encrypted; a passthrough listener routed to the same backend
// still passes the client's own TLS through; an endpoint whose
// certificate fails verification gets no plaintext and the client's
// connection is closed, counted as backend_tls_failed.
func TestTLSTerminateReencrypt(t *testing.T) {
	beCert, _, _, err := tlsconfig.SelfSigned([]string{"backend.internal", "pass.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var plainSeen atomic.Int64 // bytes that reached a backend without TLS
	tlsBackend := func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{beCert}, NextProtos: []string{"h2", "x-other"}})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			var rh tls.RecordHeaderError
			if errors.As(err, &rh) {
				plainSeen.Add(1)
			}
			return
		}
		st := tc.ConnectionState()
		b := make([]byte, 4)
		if _, err := io.ReadFull(tc, b); err != nil {
			return
		}
		fmt.Fprintf(tc, "tls sni=%s alpn=%q data=%s", st.ServerName, st.NegotiatedProtocol, b)
		tc.CloseWrite()
		io.Copy(io.Discard, tc)
	}
	good, bad := newBackend(t, tlsBackend), newBackend(t, tlsBackend)
	frontCert, _, _, err := tlsconfig.SelfSigned([]string{"term.example.com", "bad.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(beCert.Leaf)
	otherCert, _, _, err := tlsconfig.SelfSigned([]string{"backend.internal"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wrongRoots := x509.NewCertPool()
	wrongRoots.AddCert(otherCert.Leaf)
	transport := func(sp *upstream.Spec) upstream.Transport {
		pool := roots
		if sp.Name == "bad" {
			pool = wrongRoots
		}
		return upstream.Transport{Key: "tls-" + sp.Name, TLS: func() (*tls.Config, error) {
			return &tls.Config{ServerName: "backend.internal", RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}}, nil
		}}
	}
	r := newRig(t, Options{}, "tls")
	bs, errs := r.set.Sync([]upstream.Spec{spec("good", good.addr()), spec("bad", bad.addr())}, transport)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	r.set.Settle()
	err = r.f.Apply(Config{
		Listeners: []Listener{
			{Name: "term", Port: "tls", Protocol: TLSTerminate, Hostname: "term.example.com", TLS: &tls.Config{Certificates: []tls.Certificate{frontCert}}},
			{Name: "badterm", Port: "tls", Protocol: TLSTerminate, Hostname: "bad.example.com", TLS: &tls.Config{Certificates: []tls.Certificate{frontCert}}},
			{Name: "pass", Port: "tls", Protocol: TLSPassthrough, Hostname: "pass.example.com"},
		},
		Routes: []Route{route("t", "term", nil, ref("good")), route("b", "badterm", nil, ref("bad")), route("p", "pass", nil, ref("good"))},
	}, bs)
	if err != nil {
		t.Fatal(err)
	}

	frontRoots := x509.NewCertPool()
	frontRoots.AddCert(frontCert.Leaf)
	c, err := tls.Dial("tcp", r.addrs["tls"], &tls.Config{ServerName: "term.example.com", RootCAs: frontRoots})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "ping")
	if got, err := readAll(t, c); err != nil || got != `tls sni=backend.internal alpn="" data=ping` {
		t.Errorf("terminated and re-encrypted: %q, %v", got, err)
	}
	c.Close()

	// Passthrough to the same backend: the client's handshake reaches it.
	c2, err := tls.Dial("tcp", r.addrs["tls"], &tls.Config{ServerName: "pass.example.com", RootCAs: roots, NextProtos: []string{"x-other"}})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c2, "pong")
	if got, err := readAll(t, c2); err != nil || got != `tls sni=pass.example.com alpn="x-other" data=pong` {
		t.Errorf("passed through: %q, %v", got, err)
	}
	c2.Close()

	// An endpoint that fails verification: the client is closed after
	// its own handshake, and nothing reached the backend in plaintext.
	c3, err := tls.Dial("tcp", r.addrs["tls"], &tls.Config{ServerName: "bad.example.com", RootCAs: frontRoots})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c3, "leak")
	if got, _ := readAll(t, c3); got != "" {
		t.Errorf("unverified backend: the client read %q", got)
	}
	c3.Close()
	if n := value(r.f.m.conns.WithLabelValues("badterm", "ns/b", resultUpTLS)); n != 1 {
		t.Errorf("backend_tls_failed connections: %v", n)
	}
	if n := plainSeen.Load(); n != 0 {
		t.Errorf("%d connections reached a backend in plaintext", n)
	}
}

// TestBackendWeights: connections are shared by reference weight; a
// zero weight takes none, and an unknown backend's share is refused.
func TestBackendWeights(t *testing.T) {
	a, b, z := newBackend(t, named("a")), newBackend(t, named("b")), newBackend(t, named("z"))
	r := newRig(t, Options{}, "tcp")
	r.apply(Config{
		Listeners: []Listener{{Name: "l", Port: "tcp", Protocol: TCP}},
		Routes: []Route{route("r", "l", nil, BackendRef{Backend: "a", Weight: 1}, BackendRef{Backend: "b", Weight: 3},
			BackendRef{Backend: "z", Weight: 0}, BackendRef{Backend: "missing", Weight: 1})},
	}, spec("a", a.addr()), spec("b", b.addr()), spec("z", z.addr()))
	count := map[string]int{}
	const n = 500
	for range n {
		c, err := net.Dial("tcp", r.addrs["tcp"])
		if err != nil {
			t.Fatal(err)
		}
		got, _ := readAll(t, c)
		c.Close()
		count[got]++
	}
	// Shares 1/5, 3/5, 0 and 1/5 (refused: nothing read); generous bounds.
	if count["a"] < 50 || count["a"] > 150 || count["b"] < 230 || count["b"] > 370 || count["z"] != 0 || count[""] < 50 || count[""] > 150 {
		t.Errorf("connections by backend: %v", count)
	}
	if got := value(r.f.m.conns.WithLabelValues("l", "ns/r", resultNoBackend)); int(got) != count[""] {
		t.Errorf("invalid_backend %v, refused %d", got, count[""])
	}
}

// TestIdleTimeout: a stream on which nothing moves is closed after the
// idle timeout; one that keeps moving bytes in one direction only is not.
func TestIdleTimeout(t *testing.T) {
	be := newBackend(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	r := newRig(t, Options{IdleTimeout: 300 * time.Millisecond}, "tcp")
	r.apply(Config{Listeners: []Listener{{Name: "l", Port: "tcp", Protocol: TCP}}, Routes: []Route{route("r", "l", nil, ref("b"))}}, spec("b", be.addr()))

	busy, err := net.Dial("tcp", r.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	idle, err := net.Dial("tcp", r.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// busy sends a byte every 100ms for 1s, while nothing comes back.
	for range 10 {
		if _, err := busy.Write([]byte{'x'}); err != nil {
			t.Fatalf("a stream moving bytes was closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle stream: read %v, want EOF", err)
	}
	busy.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := busy.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("busy stream: %v, want still open (a read timeout)", err)
	}
}

// TestApplyKeepsStreams: a new configuration keeps the streams of routes
// that stay, and closes those whose route went away.
func TestApplyKeepsStreams(t *testing.T) {
	echo := newBackend(t, func(c net.Conn) { io.Copy(c, c) })
	r := newRig(t, Options{}, "tcp")
	cfg := Config{Listeners: []Listener{{Name: "l", Port: "tcp", Protocol: TCP}}, Routes: []Route{route("r", "l", nil, ref("b"))}}
	r.apply(cfg, spec("b", echo.addr()))
	c, err := net.Dial("tcp", r.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(msg string) error {
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
	if err := roundTrip("one"); err != nil {
		t.Fatal(err)
	}
	// Same route, another backend added: the stream stays.
	cfg.Routes[0].Backends = append(cfg.Routes[0].Backends, ref("other"))
	r.apply(cfg, spec("b", echo.addr()), spec("other", echo.addr()))
	if err := roundTrip("two"); err != nil {
		t.Fatalf("stream dropped by a change that kept its route: %v", err)
	}
	// The route goes away: the stream is closed.
	cfg.Routes[0].Name = "renamed"
	r.apply(cfg, spec("b", echo.addr()))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("stream of a removed route: %v, want closed", err)
	}
	waitFor(t, func() bool { return r.f.Streams() == 0 }, "the closed stream to be untracked")
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestEndpointPolicies: the backend policies of the upstream set apply to
// streams: a refused endpoint is tried on another, its breaker opens, and
// the per-endpoint connection limit refuses a stream over it.
func TestEndpointPolicies(t *testing.T) {
	good := newBackend(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	r := newRig(t, Options{}, "tcp")
	s := spec("b", deadAddr, good.addr())
	s.Connections.MaxPerEndpoint = 2
	r.apply(Config{Listeners: []Listener{{Name: "l", Port: "tcp", Protocol: TCP}}, Routes: []Route{route("r", "l", nil, ref("b"))}}, s)

	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range 2 {
		c, err := net.Dial("tcp", r.addrs["tcp"])
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		waitFor(t, func() bool { return good.conns.Load() == int64(i+1) }, "stream %d to reach the good endpoint", i)
	}
	// Both slots of the good endpoint are taken, the other refuses: the
	// third stream is closed.
	c, err := net.Dial("tcp", r.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readAll(t, c); got != "" || good.conns.Load() != 2 {
		t.Errorf("a stream over the limit was forwarded")
	}
	c.Close()
	if n := value(r.f.m.conns.WithLabelValues("l", "ns/r", resultConnect)); n != 1 {
		t.Errorf("connect_failed: %v", n)
	}
}

func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestApplyErrors: invalid listeners and routes are reported, naming them
// and the field, and the rest is served.
func TestApplyErrors(t *testing.T) {
	f := New(Options{Logger: slog.New(slog.DiscardHandler)})
	err := f.Apply(Config{
		Listeners: []Listener{
			{Name: "tcp", Port: "a", Protocol: TCP},
			{Name: "tcp2", Port: "a", Protocol: TCP},
			{Name: "tls", Port: "a", Protocol: TLSPassthrough},
			{Name: "term", Port: "b", Protocol: TLSTerminate},
			{Name: "badhost", Port: "c", Protocol: TLSPassthrough, Hostname: "bad_host"},
		},
		Routes: []Route{
			route("nolistener", "nope", nil),
			route("tcphost", "tcp", []string{"a.example.com"}),
		},
	}, nil)
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("err %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`listener "tcp2": port "a" has a TCP listener already`,
		`listener "tls": protocol TLSPassthrough conflicts with TCP`,
		`listener "term": tls: required`,
		`listener "badhost": hostname`,
		`route ns/nolistener: listeners: no listener "nope"`,
		`route ns/tcphost: hostnames`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if f.snap.Load().ports["a"] == nil {
		t.Error("the valid listener is not served")
	}
}

// TestShutdown: Shutdown refuses new connections and waits for streams
// until its context ends, then closes them.
func TestShutdown(t *testing.T) {
	echo := newBackend(t, func(c net.Conn) { io.Copy(c, c) })
	r := newRig(t, Options{}, "tcp")
	r.apply(Config{Listeners: []Listener{{Name: "l", Port: "tcp", Protocol: TCP}}, Routes: []Route{route("r", "l", nil, ref("b"))}}, spec("b", echo.addr()))
	c, err := net.Dial("tcp", r.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "x")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var serr error
	wg.Go(func() { serr = r.f.Shutdown(ctx) })
	wg.Wait()
	if !errors.Is(serr, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v, want the deadline (a stream was open)", serr)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Errorf("stream after Shutdown: %v, want closed", err)
	}
	if _, err := net.Dial("tcp", r.addrs["tcp"]); err == nil {
		// The listener is closed; a dial may still succeed on some
		// systems' backlog, but nothing serves it.
		t.Log("dial after Shutdown succeeded")
	}
}
