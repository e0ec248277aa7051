// Command goproxy is the Go baseline of the whole-system benchmark
// (bench/compare): the standard library's httputil.ReverseProxy with a tuned
// http.Transport, round-robining requests over a fixed list of backends.
//
// It is what a Go proxy costs before any of rauta's own work, measured the
// same way as nginx, HAProxy and rauta.
//
// Usage:
//
//	goproxy -backends 127.0.0.1:20001,127.0.0.1:20002 \
//		[-listen 127.0.0.1:20010] \
//		[-tls-listen 127.0.0.1:20011 -cert cert.pem -key key.pem]
//
// -listen serves HTTP/1.1 in clear text; -tls-listen serves TLS with ALPN h2
// and http/1.1 (HTTP/2 by net/http's built-in server). At least one of them is
// required. Requests go to the backends over HTTP/1.1 keep-alive with up to 64
// idle connections kept per backend. The process stops on SIGINT or SIGTERM,
// letting in-flight requests finish for up to five seconds.
package main
