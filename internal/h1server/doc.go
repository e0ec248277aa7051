// Package h1server is an HTTP/1.1 server for http.Handlers that costs less
// per request than net/http's and parses requests at least as strictly.
//
// A Server serves each connection on one goroutine, with buffers taken
// from pools, and reuses the connection's URL, header maps and
// ResponseWriter from one request to the next. A request costs four
// allocations: the head as one string (which header names and values are
// cut from), the http.Request, and its context with its cancel function; a
// request body one more (see below). Responses are
// written without per-request allocation: the head and a short body leave
// in one write, at the end of the handler or on Flush.
//
// # Handler contract
//
// Because of that reuse, a handler (and any goroutine it started) must not
// use the *http.Request, its Header, URL or Context, nor the
// ResponseWriter, after ServeHTTP returned. Strings taken from them stay
// valid (they are never overwritten); values reached through
// context.WithoutCancel(r.Context()) stay valid; contexts derived from
// r.Context() are cancelled when the handler returns, as with net/http.
// Copy (http.Request.Clone, http.Header.Clone) what must outlive the
// handler.
//
// The request body is allocated per request and taken back when the
// handler returns: a goroutine still reading it (an HTTP client streaming
// it upstream, say) gets http.ErrBodyReadAfterClose, or an error if it was
// blocked in a read, never bytes of the next request. Body reads may come
// from any goroutine; Close never blocks.
//
// # Context and client disconnects
//
// Each request has its own context (a child of the connection's, made
// with context.WithCancel, so contexts derived from it need no watching
// goroutine). r.Context() is cancelled when the handler returns, when a read
// or write on the connection fails, and when the client is seen to close the
// connection while the handler runs. net/http finds the latter with a
// read in the background of every request; this package does not pay
// that per request. Instead, a sweeper looks at running handlers every
// DisconnectCheckInterval (100 ms by default), and a handler that has been
// running for a whole interval and whose request body has been read to its
// end gets a read on its connection. EOF or an
// error cancels the context; a byte (a pipelined request) is kept for the
// next request; the read is aborted when the handler returns. So a slow
// handler learns of a disconnect within one to two intervals, and a fast
// one costs nothing. As with net/http, a client that half-closes its side
// after sending the request is taken to have gone.
//
// # Parsing
//
// Requests are refused, with the status given, when:
//
//   - a line does not end in CRLF, or holds a bare CR (400);
//   - the request line is not exactly method SP target SP version (400),
//     the method is not a token (400), the version is not HTTP/1.0 or
//     HTTP/1.1 (505 for another well-formed version, else 400), or it is
//     longer than MaxRequestLineBytes (414);
//   - the target holds controls, spaces, non-ASCII bytes or "#", or does
//     not have the form its method needs: authority form (host:port) for
//     CONNECT only, "*" for OPTIONS only, origin form or absolute form
//     (http or https, with a host and no userinfo) otherwise (400);
//   - the head is larger than MaxHeaderBytes (431);
//   - a header line is folded (obs-fold), has no colon, has white space
//     before the colon, a name that is not a token, or a value with NUL,
//     CR, LF, DEL or another control other than HTAB (400);
//   - an HTTP/1.1 request has no Host, any request has more than one, or
//     its value is not a valid host[:port] (400);
//   - Content-Length is not 1*DIGIT fitting an int64, or appears more
//     than once, even with equal values (400);
//   - Transfer-Encoding comes with Content-Length, or in an HTTP/1.0
//     request (400), or is anything but a single "chunked" (501);
//   - Trailer declares Content-Length, Transfer-Encoding or Trailer (400);
//   - Expect is anything but a single "100-continue" (417).
//
// Chunked bodies need CRLF line ends, 1 to 16 hex digits fitting an
// int64, well-formed chunk extensions (ignored), CRLF after each chunk's
// data, and at most 16 KiB of framing overhead beyond the data; a trailer
// field Content-Length, Transfer-Encoding, Trailer or Host is refused.
// Such errors surface as body read errors and close the connection. The
// rules of lines, fields, chunks, trailers, tokens and hosts are those of
// the package internal/h1wire, which pool applies to responses too. These
// rules are stricter than net/http's in the cases listed in the tests
// (TestStricterThanNetHTTP); in every other case the parse agrees with
// http.ReadRequest, as a differential fuzz test checks. One empty line is
// tolerated before a request that follows one with a body. Unlike
// net/http, Pragma: no-cache does not add a Cache-Control field.
//
// # Responses
//
// The ResponseWriter implements http.Flusher, http.Hijacker,
// io.StringWriter and the methods http.ResponseController uses
// (FlushError, SetReadDeadline, SetWriteDeadline, EnableFullDuplex).
// Framing follows net/http: a handler-set Content-Length is used (writes
// beyond it fail with http.ErrContentLength, and a shortfall closes the
// connection); a handler that writes at most 4 KiB and returns gets a
// Content-Length; otherwise HTTP/1.1 responses are chunked and HTTP/1.0
// ones end with the connection. HEAD responses carry no body, 1xx, 204
// and 304 none either. WriteHeader with a 1xx code other than 101 sends an
// informational response at once (the header map is not cleared, as with
// net/http). Trailers are those declared in the Trailer field and those
// set with http.TrailerPrefix, sent after a chunked body. A Date field is
// added unless the handler set the key. A handler-set Transfer-Encoding is
// ignored (the server frames the body). Unlike net/http, no Content-Type
// is sniffed: a response has the Content-Type its handler set, or none.
//
// A request body the handler did not read is discarded, up to
// MaxUnreadBodyBytes, before the connection serves another request;
// beyond that, or when "100 Continue" was expected but never sent, the
// response carries "Connection: close". A body the handler never touched
// is discarded before an early Flush sends the head, as net/http does,
// unless EnableFullDuplex was called; reading the body while the response
// streams always works.
//
// A panic in the handler closes the connection; http.ErrAbortHandler does
// so silently, any other value is logged with its stack.
//
// # HTTP/2
//
// HTTP/2 is not served here: TLSNextProto receives connections that
// negotiated "h2" with ALPN, and H2CPriorKnowledge cleartext connections
// that begin with the HTTP/2 preface; both can be given to
// internal/h2server's (or golang.org/x/net/http2's) Server.ServeConn.
// Upgrade: h2c requests reach the handler, which can hijack the connection.
// When H2CPriorKnowledge is set, a cleartext connection whose first line
// is not HTTP/1 (no "HTTP/" version: a broken HTTP/2 preface, say) is
// closed without an answer, as RFC 9113 section 3.4 wants.
package h1server
