package pool

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// benchBackend is a minimal keep-alive HTTP/1.1 server answering every
// bodyless request with a 64-byte body. It allocates nothing per request,
// so that allocations measured are the client's.
func benchBackend(b *testing.B) string {
	body := strings.Repeat("x", 64)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n" + body)
	rb := newRawBackend(b, func(c net.Conn, br *bufio.Reader) {
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
	return rb.addr()
}

func benchRequest(b *testing.B, addr string) *http.Request {
	req, err := http.NewRequest("GET", "http://"+addr+"/bench?q=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("X-Forwarded-For", "192.0.2.1")
	// A cancellable context, as a server's request has.
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return req.WithContext(ctx)
}

func benchTransports(b *testing.B, addr string) map[string]http.RoundTripper {
	p := newTestPool(b, Options{})
	e, err := p.Get(Key{Address: addr, Protocol: HTTP1})
	if err != nil {
		b.Fatal(err)
	}
	std := &http.Transport{
		MaxIdleConns:        1000,
		MaxIdleConnsPerHost: 1000,
		DisableCompression:  true,
	}
	b.Cleanup(std.CloseIdleConnections)
	return map[string]http.RoundTripper{"pool": e, "net-http": std}
}

func doBench(b *testing.B, rt http.RoundTripper, req *http.Request, buf []byte) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.ReadFull(resp.Body, buf)
	if n != 64 || err != nil {
		b.Fatalf("read %d bytes, %v", n, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// BenchmarkHTTP1RoundTrip compares the pool's HTTP/1.1 client with
// net/http.Transport on one keep-alive loopback connection: a GET with a
// few headers and a 64-byte response body.
func BenchmarkHTTP1RoundTrip(b *testing.B) {
	addr := benchBackend(b)
	for _, name := range []string{"pool", "net-http"} {
		b.Run(name, func(b *testing.B) {
			rt := benchTransports(b, addr)[name]
			req := benchRequest(b, addr)
			buf := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				doBench(b, rt, req, buf)
			}
		})
	}
}

// BenchmarkHTTP1RoundTripParallel is BenchmarkHTTP1RoundTrip with
// GOMAXPROCS concurrent clients (one connection each, kept alive).
func BenchmarkHTTP1RoundTripParallel(b *testing.B) {
	addr := benchBackend(b)
	for _, name := range []string{"pool", "net-http"} {
		b.Run(name, func(b *testing.B) {
			rt := benchTransports(b, addr)[name]
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := benchRequest(b, addr)
				buf := make([]byte, 64)
				for pb.Next() {
					doBench(b, rt, req, buf)
				}
			})
		})
	}
}

// BenchmarkReadResponse measures parsing a typical response head and its
// 64-byte body from memory.
func BenchmarkReadResponse(b *testing.B) {
	data := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Date: Fri, 27 Nov 2026 12:00:00 GMT\r\nServer: backend\r\nCache-Control: no-store\r\n" +
		"X-Request-Id: 0123456789abcdef\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64))
	rd := bytes.NewReader(data)
	br := bufio.NewReaderSize(rd, 4<<10)
	req := &http.Request{Method: "GET", Header: http.Header{}}
	buf := make([]byte, 128)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(data)
		br.Reset(rd)
		x := &exchange{br: br, maxHeader: 64 << 10}
		resp, err := x.readResponse(req, false)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := io.ReadFull(resp.Body, buf[:64]); n != 64 {
			b.Fatal("short body")
		}
	}
}
