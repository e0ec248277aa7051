package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rauta/rauta/internal/h2load"
	"github.com/rauta/rauta/internal/h2server"
	"github.com/rauta/rauta/upstream"
)

// cannedBackend is a loopback HTTP/1.1 server that answers every request
// with the same 64-byte response, allocating nothing per request, so that
// benchmarks measure the proxy alone.
func cannedBackend(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	body := bytes.Repeat([]byte("x"), 64)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n" + string(body))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 4096)
				for {
					// Read a bodyless request head.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// rawClient is a keep-alive HTTP/1.1 client that allocates nothing per
// request.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
}

func newRawClient(tb testing.TB, addr, path string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawClient{
		c:   c,
		br:  bufio.NewReaderSize(c, 8192),
		req: []byte("GET " + path + " HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\n\r\n"),
		buf: make([]byte, 8192),
	}
}

// do sends one request and reads the response; it returns the status.
func (rc *rawClient) do() (int, error) {
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, err
	}
	status := 0
	length := 0
	first := true
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			status, _ = strconv.Atoi(string(line[9:12]))
			first = false
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && (line[0] == 'C' || line[0] == 'c') && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
	if _, err := io.ReadFull(rc.br, rc.buf[:length]); err != nil {
		return 0, err
	}
	return status, nil
}

// BenchmarkProxyHTTP1 measures a GET through a real listener, the whole
// request path and the pooled upstream client, to a canned backend, with
// keep-alive on both sides, with rauta's HTTP/1.1 server and with net/http's.
// allocs/op are the proxy's own: the client and backend allocate nothing.
// The ratelimit variants add limits that never refuse: one on the rule,
// and then one on each of the listener, the route and the rule, one of them
// keyed by client address.
func BenchmarkProxyHTTP1(b *testing.B) {
	never := RateLimit{Rate: 1e8, Burst: 1 << 20}
	for _, tc := range []struct {
		name     string
		server   ServerImpl
		listener []RateLimit
		route    []RateLimit
		rule     []RateLimit
	}{
		{name: "h1server"},
		{name: "net-http", server: ServerNetHTTP},
		{name: "h1server-ratelimit-rule", rule: []RateLimit{never}},
		{name: "h1server-ratelimit-3-levels",
			listener: []RateLimit{{Name: "gw", Rate: 1e8, Burst: 1 << 20}},
			route:    []RateLimit{{Name: "route", Rate: 1e8, Burst: 1 << 20, Key: upstream.HashKey{Source: upstream.KeyClientAddress}}},
			rule:     []RateLimit{never}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			backend := cannedBackend(b)
			p := newTestProxy(b, Options{Server: tc.server})
			cfg := simpleConfig(map[string][]string{"b": {backend}},
				Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}, RateLimits: tc.rule})
			cfg.Listeners[0].RateLimits = tc.listener
			cfg.Routes[0].RateLimits = tc.route
			if err := p.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			addr, _ := p.Addr("gw/http")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rc := newRawClient(b, addr.String(), "/bench/path?q=1")
				defer rc.c.Close()
				for pb.Next() {
					code, err := rc.do()
					if err != nil || code != 200 {
						b.Errorf("status %d, %v", code, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRouteAndPick measures the per-request work that does not touch
// the network: listener selection, route match, backend and endpoint pick.
func BenchmarkRouteAndPick(b *testing.B) {
	p := newTestProxy(b, Options{})
	cfg := simpleConfig(map[string][]string{"b": {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}},
		Rule{Matches: prefix("/api"), Backends: []BackendRef{{Backend: "b", Weight: 1}}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	snap := p.snap.Load()
	var pt *portTable
	for _, v := range snap.ports {
		pt = v
	}
	b.ReportAllocs()
	for b.Loop() {
		req := routerRequest("bench.example", "/api/users/42", "GET")
		req.Listener = pt.listenerFor(req.Host).nameOrEmpty()
		res, err := pt.table.Match(&req)
		if err != nil {
			b.Fatal(err)
		}
		cr := res.Rule.Value.(*compiledRule)
		ref := cr.pickRef()
		ep, t := ref.backend.up.Table().Pick(0, false, nil)
		ep.Done(t, true)
	}
}

// BenchmarkProxyH2 measures GETs over HTTP/2 with TLS (ALPN h2) through
// the proxy to a canned HTTP/1.1 backend, 16 concurrent streams on one
// connection (8 per CPU on a 2-CPU machine), with rauta's own HTTP/2
// server (ServerRauta) and with net/http's (ServerNetHTTP, x/net's server
// as bundled in the standard library). allocs/op include the client's.
func BenchmarkProxyH2(b *testing.B) {
	for _, tc := range []struct {
		name   string
		server ServerImpl
	}{{"h2server", ServerRauta}, {"net-http", ServerNetHTTP}} {
		b.Run(tc.name, func(b *testing.B) {
			backend := cannedBackend(b)
			p := newTestProxy(b, Options{Server: tc.server})
			cfg := Config{
				Listeners: []Listener{{Name: "tls", Address: "127.0.0.1", Protocol: HTTPS, Certificates: []Certificate{selfSigned(b, "bench.example")}}},
				Routes:    []Route{{Namespace: "ns", Name: "r", Listeners: []string{"tls"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "b", Weight: 1}}}}}},
				Backends:  []Backend{{Spec: upstream.Spec{Name: "b", Endpoints: []upstream.Endpoint{{Address: backend}}}}},
			}
			if err := p.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			addr, _ := p.Addr("tls")
			c := tlsClient("bench.example", nil, true)
			defer c.CloseIdleConnections()
			url := "https://" + addr.String() + "/bench/path"
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkProxyH2Load drives the proxy as bench/compare's h2load does:
// 16 connections with 16 GET streams in flight on each, over TLS (ALPN
// h2) and h2c with prior knowledge, through the route to the canned
// HTTP/1.1 backend, with rauta's HTTP/2 server and, beside it, net/http's
// own (ServerNetHTTP: Go's built-in HTTP/2, which x/net's server is
// deprecated in favour of). The client
// (internal/h2load) and the backend allocate next to nothing, so
// allocs/op are the proxy's; cpu-ns/op is the whole process's (client
// and backend included).
func BenchmarkProxyH2Load(b *testing.B) {
	const conns, streams = 16, 16
	for _, useTLS := range []bool{true, false} {
		name, proto := "h2c", HTTP
		if useTLS {
			name, proto = "tls", HTTPS
		}
		for _, srv := range []struct {
			name string
			impl ServerImpl
		}{{"rauta", ServerRauta}, {"net-http", ServerNetHTTP}} {
			b.Run(name+"/"+srv.name, func(b *testing.B) { benchH2Load(b, srv.impl, useTLS, proto, conns, streams, false) })
		}
	}
}

// BenchmarkProxyH2LoadH2CBackend is BenchmarkProxyH2Load's h2c case
// with an h2c backend (rauta's HTTP/2 server answering 64 bytes, in the
// process): the path of a gRPC call, HTTP/2 on both sides, the upstream
// through pool's HTTP/2 client.
func BenchmarkProxyH2LoadH2CBackend(b *testing.B) {
	benchH2Load(b, ServerRauta, false, HTTP, 16, 16, true)
}

// cannedH2CBackend serves h2c with rauta's HTTP/2 server, answering every
// request with a 64-byte body.
func cannedH2CBackend(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	body := bytes.Repeat([]byte("x"), 64)
	srv := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	})}
	tb.Cleanup(func() { srv.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c, nil)
		}
	}()
	return ln.Addr().String()
}

// benchH2Load is one BenchmarkProxyH2Load case: server impl, TLS or h2c,
// backends over HTTP/1.1 or h2c.
func benchH2Load(b *testing.B, impl ServerImpl, useTLS bool, proto ListenerProtocol, conns, streams int, h2cBackend bool) {
	backend, bproto := cannedBackend(b), BackendHTTP1
	if h2cBackend {
		backend, bproto = cannedH2CBackend(b), BackendH2C
	}
	p := newTestProxy(b, Options{Server: impl})
	l := Listener{Name: "l", Address: "127.0.0.1", Protocol: proto}
	if useTLS {
		l.Certificates = []Certificate{selfSigned(b, "bench.example")}
	}
	cfg := Config{
		Listeners: []Listener{l},
		Routes:    []Route{{Namespace: "ns", Name: "r", Listeners: []string{"l"}, Rules: []Rule{{Backends: []BackendRef{{Backend: "b", Weight: 1}}}}}},
		Backends:  []Backend{{Spec: upstream.Spec{Name: "b", Endpoints: []upstream.Endpoint{{Address: backend}}}, Protocol: bproto}},
	}
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	addr, _ := p.Addr("l")
	req := h2load.Request{Scheme: "http", Authority: "bench.example", Path: "/bench/path", Header: [][2]string{{"user-agent", "h2load"}, {"accept", "*/*"}}}
	clients := make([]*h2load.Conn, conns)
	for i := range clients {
		nc, err := net.Dial("tcp", addr.String())
		if err != nil {
			b.Fatal(err)
		}
		if useTLS {
			req.Scheme = "https"
			tc := tls.Client(nc, &tls.Config{ServerName: "bench.example", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
			if err := tc.Handshake(); err != nil {
				b.Fatal(err)
			}
			nc = tc
		}
		clients[i], err = h2load.NewConn(nc, req)
		if err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
		if err := clients[i].Run(streams, streams); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := benchCPU()
	b.ResetTimer()
	if err := h2load.RunAll(clients, b.N, streams); err != nil {
		b.Error(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((benchCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// benchCPU is the process's user and system CPU time so far.
func benchCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
