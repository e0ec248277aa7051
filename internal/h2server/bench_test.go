package h2server

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rauta/rauta/internal/h2load"
	"github.com/rauta/rauta/tlsconfig"
)

// benchBody is the load benchmarks' response body.
var benchBody = bytes.Repeat([]byte("x"), 64)

// benchHandler answers with a 64-byte body and a Content-Type.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"text/plain"}
	w.Write(benchBody)
})

// syscallConn counts the reads and writes of a server connection.
type syscallConn struct {
	net.Conn
	reads, writes *atomic.Int64
}

func (c syscallConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

func (c syscallConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServeLoad drives the server as bench/compare's h2load does:
// 16 connections with 16 GET streams in flight on each, h2c and h2 over
// TLS, a 64-byte response. The client (internal/h2load) allocates next to
// nothing, so allocs/op are the server's; reads/op and writes/op count
// the server's calls on the TCP connection (under TLS: records batched
// into one write count once); cpu-ns/op is the whole process's.
func BenchmarkServeLoad(b *testing.B) {
	const conns, streams = 16, 16
	cert, _, _, err := tlsconfig.SelfSigned([]string{"bench.example"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	for _, useTLS := range []bool{false, true} {
		name := "h2c"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			var reads, writes atomic.Int64
			srv := &Server{Handler: benchHandler, ErrorLog: quietLogger(), IdleTimeout: time.Minute, HandshakeTimeout: 10 * time.Second}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					var c net.Conn = syscallConn{nc, &reads, &writes}
					if useTLS {
						c = tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
					}
					wg.Go(func() {
						if tc, ok := c.(*tls.Conn); ok {
							if err := tc.Handshake(); err != nil {
								tc.Close()
								return
							}
						}
						srv.ServeConn(c, nil)
					})
				}
			})
			defer func() {
				ln.Close()
				srv.Close()
				wg.Wait()
			}()
			req := h2load.Request{Scheme: "http", Authority: "bench.example", Path: "/bench/path", Header: [][2]string{{"user-agent", "h2load"}, {"accept", "*/*"}}}
			clients := make([]*h2load.Conn, conns)
			for i := range clients {
				nc, err := net.Dial("tcp", ln.Addr().String())
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
				// One round first: the handshake and SETTINGS are not
				// the steady state measured.
				if err := clients[i].Run(streams, streams); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			reads.Store(0)
			writes.Store(0)
			cpu0 := processCPU()
			b.ResetTimer()
			if err := h2load.RunAll(clients, b.N, streams); err != nil {
				b.Error(err)
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(reads.Load())/float64(b.N), "reads/op")
			b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
		})
	}
}
