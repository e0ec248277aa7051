package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// limitsProxy serves one HTTP listener forwarding to an echo backend under
// lim, with the given server.
func limitsProxy(t *testing.T, server ServerImpl, lim Limits) (*Proxy, string) {
	t.Helper()
	backend := echoBackend(t, "b")
	p := newTestProxy(t, Options{Server: server, Limits: lim})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {addrOf(backend)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	a, ok := p.Addr("gw/http")
	if !ok {
		t.Fatal("listener gw/http not bound")
	}
	return p, a.String()
}

// dialFrom opens a connection to addr from the loopback address src (any
// address of 127.0.0.0/8 is local on Linux).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a keep-alive GET on c and reports whether a 200 came back
// (an error means the connection was closed without an answer).
func roundTripOn(c net.Conn, br *bufio.Reader) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: limits.test\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	return err
}

// servedConn is a client connection that was answered once.
type servedConn struct {
	c  net.Conn
	br *bufio.Reader
}

func serve(t *testing.T, src, addr string) (servedConn, error) {
	t.Helper()
	c := dialFrom(t, src, addr)
	br := bufio.NewReader(c)
	return servedConn{c, br}, roundTripOn(c, br)
}

// refused reports whether a connection from src was closed without an
// answer.
func refused(t *testing.T, src, addr string) bool {
	t.Helper()
	_, err := serve(t, src, addr)
	return err != nil && !isTimeoutErr(err)
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5s", what)
		}
	}
}

// TestMaxConnsPerListener holds 3 connections open on a port limited to
// 3: a fourth is closed unanswered and counted; once one of the three
// closes, a new connection is served again. Both server options.
func TestMaxConnsPerListener(t *testing.T) {
	for _, server := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		t.Run(server.String(), func(t *testing.T) {
			p, addr := limitsProxy(t, server, Limits{MaxConnsPerListener: 3})
			var held []servedConn
			for i := range 3 {
				sc, err := serve(t, "127.0.0.1", addr)
				if err != nil {
					t.Fatalf("connection %d under the limit: %v", i, err)
				}
				held = append(held, sc)
			}
			if !refused(t, "127.0.0.1", addr) {
				t.Fatal("a fourth connection was served past MaxConnsPerListener 3")
			}
			got, _ := metricValue(t, p, "rauta_connections_refused_total", map[string]string{"reason": "listener_limit"})
			if got != 1 {
				t.Errorf("rauta_connections_refused_total{reason=listener_limit} = %v; want 1", got)
			}
			// The held connections still work.
			for i, sc := range held {
				if err := roundTripOn(sc.c, sc.br); err != nil {
					t.Errorf("held connection %d: %v", i, err)
				}
			}
			held[0].c.Close()
			// The server notices the close on its next read; until then
			// the place is taken.
			eventually(t, "a new connection served after one closed", func() bool {
				_, err := serve(t, "127.0.0.1", addr)
				return err == nil
			})
		})
	}
}

// TestMaxConnsPerClient limits each client address to 2 connections: a
// third from the same address is refused and counted, while other
// addresses are served; without the limit (the default), one address may
// open more.
func TestMaxConnsPerClient(t *testing.T) {
	p, addr := limitsProxy(t, ServerRauta, Limits{MaxConnsPerClient: 2})
	for i := range 2 {
		if _, err := serve(t, "127.0.0.2", addr); err != nil {
			t.Fatalf("connection %d from 127.0.0.2: %v", i, err)
		}
	}
	if !refused(t, "127.0.0.2", addr) {
		t.Fatal("a third connection from 127.0.0.2 was served past MaxConnsPerClient 2")
	}
	for _, src := range []string{"127.0.0.3", "127.0.0.4"} {
		for i := range 2 {
			if _, err := serve(t, src, addr); err != nil {
				t.Fatalf("connection %d from %s: %v", i, src, err)
			}
		}
	}
	if got, _ := metricValue(t, p, "rauta_connections_refused_total", map[string]string{"reason": "client_limit"}); got != 1 {
		t.Errorf("rauta_connections_refused_total{reason=client_limit} = %v; want 1", got)
	}
	if got, _ := metricValue(t, p, "rauta_connections_refused_total", map[string]string{"reason": "listener_limit"}); got != 0 {
		t.Errorf("rauta_connections_refused_total{reason=listener_limit} = %v; want 0", got)
	}

	_, open := limitsProxy(t, ServerRauta, Limits{})
	for i := range 6 {
		if _, err := serve(t, "127.0.0.2", open); err != nil {
			t.Fatalf("default limits: connection %d from one address: %v", i, err)
		}
	}
}

// TestReadHeaderTimeoutE2E sends half a request head and stalls: the
// connection is closed after Limits.ReadHeaderTimeout, not before, while a
// whole head sent in time is answered. Both server options.
func TestReadHeaderTimeoutE2E(t *testing.T) {
	const timeout = 400 * time.Millisecond
	for _, server := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		t.Run(server.String(), func(t *testing.T) {
			_, addr := limitsProxy(t, server, Limits{ReadHeaderTimeout: timeout})
			c := dialFrom(t, "127.0.0.1", addr)
			start := time.Now()
			if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: limits.test\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, err := io.ReadAll(c)
			took := time.Since(start)
			if isTimeoutErr(err) {
				t.Fatalf("the connection was still open after 10s (read %q)", b)
			}
			// net/http answers 408 before it closes; h1server closes.
			if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
				t.Errorf("answer to a stalled head %q; want nothing or 408", b)
			}
			if took < timeout-50*time.Millisecond {
				t.Errorf("closed after %v, before ReadHeaderTimeout %v", took, timeout)
			}
			if _, err := serve(t, "127.0.0.1", addr); err != nil {
				t.Errorf("a whole head: %v", err)
			}
		})
	}
}

// TestBodyReadTimeout sets the proxy-wide Limits.BodyReadTimeout: a body
// that stalls past it is answered 408, the backend never receives a whole
// request, and the reason is counted; a route's RequestLimits.ReadTimeout
// wins over it.
func TestBodyReadTimeout(t *testing.T) {
	backend := newBodyFaultBackend(t)
	p := newTestProxy(t, Options{Limits: Limits{BodyReadTimeout: 300 * time.Millisecond}})
	cfg := simpleConfig(map[string][]string{"b": {backend.addr}},
		Rule{Matches: prefix("/patient/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}, RequestLimits: RequestLimits{ReadTimeout: 5 * time.Second}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	a, _ := p.Addr("gw/http")
	post := func(path string, pause time.Duration) (int, time.Duration) {
		c := dialFrom(t, "127.0.0.1", a.String())
		c.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: limits.test\r\nContent-Length: 10\r\n\r\nhello")
		go func() {
			time.Sleep(pause)
			io.WriteString(c, "world")
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode, time.Since(start)
	}
	if code, took := post("/stalls", 5*time.Second); code != http.StatusRequestTimeout || took > 4500*time.Millisecond {
		t.Errorf("stalled body: %d after %v; want 408 before the rest of the body", code, took)
	}
	if whole, _ := backend.seen("/stalls"); whole != 0 {
		t.Errorf("the backend received %d whole requests for the stalled body; want 0", whole)
	}
	if code, _ := post("/patient/upload", 600*time.Millisecond); code != http.StatusOK {
		t.Errorf("body within the route's ReadTimeout: %d; want 200", code)
	}
	if got, _ := metricValue(t, p, "rauta_gateway_responses_total", map[string]string{"reason": "request_timeout"}); got != 1 {
		t.Errorf("rauta_gateway_responses_total{reason=request_timeout} = %v; want 1", got)
	}
}
