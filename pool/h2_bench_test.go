package pool

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rauta/rauta/internal/h2server"
)

// benchH2CBackend serves h2c with rauta's HTTP/2 server, answering every
// request with a 64-byte body.
func benchH2CBackend(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	body := []byte(strings.Repeat("x", 64))
	srv := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	})}
	b.Cleanup(func() { srv.Close() })
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

// BenchmarkH2CRoundTripParallel compares the pool's HTTP/2 client
// (internal/h2client) with net/http's Transport restricted to h2c, both
// to one backend connection, with 16 concurrent requests per CPU — a
// proxy's pattern: many client requests multiplexed onto few backend
// connections. The backend runs in the same process: the difference
// between the two is the client's. writes/op counts the client's write
// calls per request: the batching of concurrent requests' frames.
func BenchmarkH2CRoundTripParallel(b *testing.B) {
	addr := benchH2CBackend(b)
	for _, name := range []string{"pool", "net-http"} {
		b.Run(name, func(b *testing.B) {
			var writes atomic.Int64
			dial := func(ctx context.Context, network, address string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, address)
				if err != nil {
					return nil, err
				}
				return &writeCounter{Conn: c, n: &writes}, nil
			}
			var rt http.RoundTripper
			if name == "pool" {
				rt = endpoint(b, newTestPool(b, Options{DialContext: dial}), "http://"+addr, H2C)
			} else {
				t := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true, DialContext: dial}
				t.Protocols.SetUnencryptedHTTP2(true)
				b.Cleanup(t.CloseIdleConnections)
				rt = t
			}
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				req := benchRequest(b, addr)
				buf := make([]byte, 64)
				for pb.Next() {
					doBench(b, rt, req, buf)
				}
			})
			b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
		})
	}
}

// writeCounter counts the Write calls on a connection: the system calls
// a client spends sending.
type writeCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkH2CRoundTripBody is BenchmarkH2CRoundTripParallel for a POST
// of 133 bytes of unknown length, as a unary gRPC call sends.
func BenchmarkH2CRoundTripBody(b *testing.B) {
	addr := benchH2CBackend(b)
	var writes atomic.Int64
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &writeCounter{Conn: c, n: &writes}, nil
	}
	rt := endpoint(b, newTestPool(b, Options{DialContext: dial}), "http://"+addr, H2C)
	payload := strings.Repeat("m", 133)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64)
		for pb.Next() {
			req := benchRequest(b, addr)
			req.Method = "POST"
			req.Body = io.NopCloser(strings.NewReader(payload))
			req.ContentLength = -1
			doBench(b, rt, req, buf)
		}
	})
	b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
}
