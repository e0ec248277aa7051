package h1server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"

	"github.com/rauta/rauta/internal/h1server"
)

func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &h1server.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "hello, %s", r.URL.Path)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go srv.Serve(ln)

	resp, err := http.Get("http://" + ln.Addr().String() + "/world")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, resp.ContentLength, string(body))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx))
	// Output:
	// 200 OK 13 hello, /world
	// <nil>
}

// This example serves HTTP/1.1 with this package and HTTP/2 with
// golang.org/x/net/http2, on a TLS listener (ALPN "h2") and, for
// cleartext, with prior knowledge. Shutdown sends HTTP/2 connections a
// GOAWAY through the http.Server that http2.ConfigureServer registered
// the HTTP/2 server with.
func ExampleServer_http2() {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	h2 := &http2.Server{MaxConcurrentStreams: 250}
	base := &http.Server{}
	if err := http2.ConfigureServer(base, h2); err != nil {
		fmt.Println(err)
		return
	}
	serveH2 := func(c net.Conn) {
		h2.ServeConn(c, &http2.ServeConnOpts{Handler: handler, BaseConfig: base})
	}
	srv := &h1server.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.Default(),
		TLSNextProto:      map[string]func(net.Conn){"h2": serveH2},
		H2CPriorKnowledge: serveH2,
	}
	srv.RegisterOnShutdown(func() { base.Shutdown(context.Background()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	var certs []tls.Certificate // the server's certificates
	tlsConfig := &tls.Config{Certificates: certs, NextProtos: []string{"h2", "http/1.1"}}
	go srv.Serve(tls.NewListener(ln, tlsConfig))
	srv.Shutdown(context.Background())
}
