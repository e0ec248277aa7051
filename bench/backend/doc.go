// Command backend is the origin server of the whole-system benchmark
// (bench/compare): a minimal net/http server that answers every request with
// the same small body, so that the proxy in front of it, not the origin, is
// what a run measures.
//
// Usage:
//
//	backend -addr 127.0.0.1:20001 [-size 64] [-large 1048576] [-h2c | -cert FILE -key FILE]
//
// Every request, whatever its method or path, is answered 200 with a body of
// -size bytes, Content-Type text/plain and an explicit Content-Length; a
// request for the path /large is answered the same way with -large bytes
// (the large-body cases). The request body, if any, is read and discarded so
// the connection can be reused.
//
// By default the server speaks HTTP/1.1 keep-alive in clear text. With -h2c
// it also serves HTTP/2 in clear text to clients with prior knowledge (the
// h2c-backend case); with -cert and -key it serves TLS instead, negotiating
// h2 or http/1.1 by ALPN (the origin of the TLS passthrough cases, which
// terminates the TLS the client started).
package main
