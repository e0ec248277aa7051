// Command backend is the origin server of the whole-system benchmark
// (bench/compare): a minimal net/http server that answers every request with
// the same small body, so that the proxy in front of it, not the origin, is
// what a run measures.
//
// Usage:
//
//	backend -addr 127.0.0.1:20001 [-size 64]
//
// Every request, whatever its method or path, is answered 200 with a body of
// -size bytes, Content-Type text/plain and an explicit Content-Length, over
// HTTP/1.1 keep-alive. The request body, if any, is read and discarded so the
// connection can be reused.
package main
