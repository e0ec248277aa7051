// Package pool holds the transports a gateway uses to reach its backends:
// one [Endpoint] per backend address, protocol and TLS configuration, kept
// in a [Pool] so that connections outlive configuration changes.
//
// A proxy compiles each configuration into tables that hold *Endpoint
// values obtained with [Pool.Get], and after publishing a new configuration
// calls [Pool.Retain] with the keys it still uses. Endpoints that are no
// longer named close their idle connections; requests in flight on them,
// and upgraded connections such as WebSockets, finish undisturbed.
//
// # Protocols
//
// [HTTP1] and [HTTP1TLS] use a client written for this package rather than
// net/http.Transport. Each request runs synchronously in the caller's
// goroutine: it takes the most recently used idle connection (a LIFO stack,
// which keeps a small hot set of connections and lets the rest expire),
// writes the request head and, for small bodies of known length, the body
// with one flush, and reads the response head from the connection's reused
// buffered reader. No goroutine or channel is involved per request, and a
// GET costs a handful of allocations (see BenchmarkHTTP1RoundTrip). Bodies
// of unknown length (sent chunked), bodies over 64 KiB and bodies after
// "Expect: 100-continue" are written by a goroutine while the response is
// read, so that a backend answering early, or streaming while it reads,
// cannot deadlock the exchange. Response bodies stream: each Read returns
// what has arrived. The connection goes back to the idle stack as soon as
// the body has been read to its end (the last Read returns the final bytes
// with io.EOF); a body closed early is discarded if the rest (at most
// 4 KiB) is already in the connection's read buffer, and its connection is
// closed otherwise.
//
// [H2C] (HTTP/2 with prior knowledge over cleartext) and [H2] (HTTP/2 over
// TLS with ALPN "h2") use rauta's own HTTP/2 client (internal/h2client):
// each endpoint keeps a few connections, and a request takes a stream on the
// first one with room under the backend's SETTINGS_MAX_CONCURRENT_STREAMS.
// When none has room, one connection is dialed and the requests that need
// it wait for that dial instead of each dialing its own. The frames of
// concurrent requests leave in one write without a writer goroutine (see
// BenchmarkH2CRoundTripParallel against net/http's Transport). Streams that
// the backend refused (REFUSED_STREAM, or above its GOAWAY) fail with a
// [NotSentError]. An [H2] backend that does not select "h2" is spoken to
// with HTTP/1.1 over TLS, through the package's HTTP/1.1 client, for a
// minute before h2 is offered again; the request that discovered it is sent
// that way too. Requests asking for an Upgrade (WebSocket) always use
// HTTP/1.1, on the same address, since the HTTP/2 client does not carry
// extended CONNECT.
//
// # Semantics for a proxy
//
// The transport sends exactly the request it is given: it adds no
// User-Agent and no Accept-Encoding, and does not decompress. It writes the
// Host header from Request.Host (else URL.Host) and the framing headers
// (Content-Length, Transfer-Encoding, Trailer) itself, ignoring any in
// Request.Header, and refuses header names and values that could split the
// request. Hop-by-hop headers are the caller's business.
//
// Informational responses (100 Continue, 103 Early Hints) are delivered to
// the Got1xxResponse hook of the request's httptrace.ClientTrace and
// skipped. A 101 Switching Protocols response to a request that asked for
// an Upgrade returns the connection as the response Body, an
// io.ReadWriteCloser (reads return any bytes already received first); from
// then on the request's context no longer governs it, and it counts as in
// use until closed. Response trailers are announced in Response.Trailer
// and filled in when the body reaches io.EOF, as with net/http.
//
// The request's context bounds the whole exchange: its deadline is set on
// the connection and its cancellation closes the connection; errors then
// wrap the context's error. [Options.ResponseHeaderTimeout] bounds the wait
// for the response head.
//
// # Failures and retries
//
// A failure before any byte of the request reached the backend (dial, TLS
// handshake, connection limit, a write refused outright) is a
// [NotSentError]: any request may be retried elsewhere, provided its body
// can be replayed. Other failures may have reached the backend.
//
// A backend may close an idle keep-alive connection just as a request is
// sent on it. A connection idle for more than a second is probed with a
// non-blocking peek before use (on Linux and the BSDs), which catches most
// such closes at the cost of one system call. When a reused connection
// still fails with no byte of response received, the request is retried
// once on a new connection if nothing was written, or if it is idempotent
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or carrying an Idempotency-Key)
// and its body is nil or replayable with Request.GetBody. A POST that was
// written is never retried here: the backend may have acted on it. Over
// HTTP/2, a bodyless request whose stream the backend did not take (a
// GOAWAY crossing it, REFUSED_STREAM) is sent once more on a connection
// with room; with a body it fails with a [NotSentError].
//
// # Parsing backend responses
//
// Backends are not trusted. The response parser refuses, with an error
// wrapping [ErrMalformedResponse], and closes the connection on:
// Content-Length together with Transfer-Encoding; differing Content-Length
// values (identical repeats are merged); lengths that are not plain
// decimal; transfer-codings other than a single "chunked", or chunked in
// HTTP/1.0; chunk sizes that are not 1 to 16 hex digits fitting an int64,
// chunk extensions that do not follow RFC 9112's grammar, and chunk data
// not followed by CRLF; a trailer field Content-Length,
// Transfer-Encoding, Trailer or Host; obsolete line folding; lines not ended by CRLF and bare CRs;
// invalid field names (whitespace before the colon included) and control
// characters in values; header or trailer sections larger than
// [Options.MaxResponseHeaderBytes]; status lines that are not HTTP/1.x with
// a three-digit code of at least 100; a 101 to a request without Upgrade;
// more than 16 informational responses. A body cut short by the backend
// closing the connection fails with io.ErrUnexpectedEOF.
//
// These wire rules are those of the package internal/h1wire, the same
// that rauta's server applies to requests.
//
// Header values are substrings of one string per response head and keys
// are canonicalised without allocating when already canonical, so parsing
// a head costs a fixed few allocations whatever its number of fields.
//
// # Limits and statistics
//
// [Options] sets the dial timeout, the idle timeout, the idle connections
// kept, the connections allowed per endpoint (failing fast with
// [ErrEndpointBusy], or waiting up to [Options.ConnWaitTimeout]), and the
// requests and lifetime allowed per connection. [Endpoint.SetLimits]
// overrides the connection limit, the idle timeout and the per-connection
// limits for one endpoint ([Limits]), at any time and without disturbing
// requests in flight: a proxy gives each backend's endpoints the limits of
// that backend. Idle connections are closed by one timer per pool, running
// only while some connection is idle at the shortest period their
// endpoints need, and when found expired on the idle stack; a connection
// that has carried its last request, or outlived its lifetime, is closed
// when its exchange ends.
// [Endpoint.Stats] and [Pool.Stats] give atomic counters for metrics: open,
// idle and in-use connections, requests in flight, dials, dial errors,
// reuses, requests, failures and retries. For HTTP/2 endpoints Idle and
// InUse count only their HTTP/1.1 side (fallback and upgrades), and the
// connection limit does not apply to HTTP/2 connections.
package pool
