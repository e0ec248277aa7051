// Package h2server is an HTTP/2 server for http.Handlers, built on the
// frame codec and HPACK of golang.org/x/net/http2, that owns the frame
// level: it writes the frames of all streams ready in one write per
// scheduling round, and enforces limits that hold under attack.
//
// A Server serves connections handed to ServeConn: ones that negotiated
// "h2" with ALPN, cleartext ones starting with the connection preface (h2c
// with prior knowledge), or ones upgraded from HTTP/1.1 (ServeConnOpts).
// internal/h1server hands it both through its TLSNextProto and
// H2CPriorKnowledge hooks.
//
// # Goroutines
//
// Each connection has one reading goroutine, which decodes frames and
// header blocks and keeps the streams' state; one writer goroutine, which
// takes the queued control frames (SETTINGS and PING acknowledgements,
// WINDOW_UPDATE, RST_STREAM, GOAWAY) and the header blocks and DATA of every
// stream with something to send, up to 64 KiB per stream per round within
// the flow control windows, and writes them with one Write; and a goroutine
// per request running its handler. A handler goroutine whose handler
// returned waits up to a second for another stream (of any connection)
// before it exits, so that under load goroutines and their grown stacks
// are reused rather than made per request. HPACK encoding happens on the
// writer, in the order frames leave; fields named in Server.UniqueFields
// (a request ID) are never indexed.
//
// # Allocation
//
// A request costs, in the server: the HEADERS frame (x/net's Framer), the
// stream, its context (two), the header map (two) and one slice for all
// its field values, and the http.Request (built on the stack and copied
// once by WithContext). The URL, the request body reader, the first header
// blocks and the final response fields live in the stream; paths made of
// characters net/url neither escapes nor unescapes skip
// url.ParseRequestURI. Response bodies are queued in 16 KiB buffers from a
// pool, given back when the stream ends.
//
// # Handler contract
//
// As with internal/h1server, a handler (and any goroutine it started) must
// not use the *http.Request, its Header, URL or Context, nor the
// ResponseWriter, after ServeHTTP returned. The request body is taken back
// when the handler returns: a goroutine still reading it gets
// http.ErrBodyReadAfterClose. r.Context() is cancelled when the handler
// returns, when the client resets the stream and when the connection ends.
//
// A request body fails, so that a proxy aborts its upstream request,
// rather than ending early: with an http2.StreamError when the client
// resets the stream (or the connection fails), with an error when its
// DATA exceed its content-length (the stream is also reset with
// PROTOCOL_ERROR and the context cancelled) or end short of it (the
// handler's answer, a 400 say, still goes out, as with x/net's server),
// with os.ErrDeadlineExceeded past the deadline set with
// http.ResponseController.SetReadDeadline. Request trailers reach
// r.Trailer (the fields it declared) when a read returns io.EOF.
//
// # Flow control
//
// The server grants each stream a 1 MiB window (SETTINGS_INITIAL_WINDOW_SIZE)
// and the connection 1 MiB, and gives bytes back with WINDOW_UPDATE once
// half a window has been read by the handler, so uploads run at line rate
// with at most 1 MiB buffered per connection. Responses follow the
// client's windows; a handler's Write waits while 64 KiB of its stream
// are queued.
//
// # Requests refused
//
// A request that RFC 9113 section 8 calls malformed is refused with
// RST_STREAM PROTOCOL_ERROR, never repaired: unknown, duplicate, missing or
// misplaced pseudo-header fields (:protocol included, unless
// Server.EnableConnectProtocol offers extended CONNECT), upper-case or invalid field names, invalid field values,
// connection-specific fields (Connection, Keep-Alive, Proxy-Connection,
// Transfer-Encoding, Upgrade), TE other than "trailers", a :path that is
// not "*" or origin form of visible ASCII (a space, a control, a byte
// over 0x7e or "#" refuse it), a :method that is not a token, a
// :authority with userinfo or not a valid host, a Host field that differs
// from :authority or appears twice, content-length fields that differ or
// are not digits, a non-zero content-length on a request that ends with
// its HEADERS, and DATA beyond the content-length.
// Multiple Cookie fields are joined with "; " (RFC 9113 section 8.2.3).
//
// # Limits
//
// Each Limit is counted through Server.OnLimit when enforced. Streams
// beyond MaxConcurrentStreams, counting handlers still running after their
// stream was reset, are refused with REFUSED_STREAM; resets and refusals
// spend a per-connection budget (ResetsPerSecond) whose exhaustion closes
// the connection with ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487).
// Header blocks are bounded in frames and bytes (CONTINUATION flood,
// CVE-2024-27316) and in decoded size (431 past MaxHeaderListSize, the
// connection closed past four times that: an HPACK bomb). WINDOW_UPDATE,
// PRIORITY and empty frames each have a budget per second; a WINDOW_UPDATE
// that gives back window the server's DATA used spends none (a small one
// counts against the DATA frames written). SETTINGS and PING frames have
// no rate: each costs its answer, so what is bounded is the control frames
// queued for writing and not yet written (MaxQueuedControlFrames). A
// client whose acknowledgements drain may ping as often as it likes, as
// grpc-go does for each burst of data it receives; one that sends faster
// than it reads the answers fills the queue and is cut off (PingFlood,
// SettingsFlood, or ControlQueue for RST_STREAM answers). HandshakeTimeout and
// IdleTimeout close connections that do not start or no longer work.
//
// # Responses
//
// The ResponseWriter implements http.Flusher, io.StringWriter and the
// methods http.ResponseController uses (FlushError, SetReadDeadline,
// SetWriteDeadline, EnableFullDuplex). A response whose handler wrote at
// most 16 KiB before returning, without Flush, gets a content-length.
// WriteHeader with 1xx (other than 101) sends an informational response
// at once; trailers are those declared in the Trailer field and those set
// with http.TrailerPrefix. A handler that panics, or writes less than its
// content-length, has its stream reset with INTERNAL_ERROR.
// Connection-specific fields set by a handler are dropped.
//
// # Extended CONNECT
//
// With Server.EnableConnectProtocol the server offers extended CONNECT
// (RFC 8441) for WebSockets over HTTP/2 and the like: the request's
// protocol is in r.Header[":protocol"], as net/http presents it, its body
// is the client's side of the tunnel until END_STREAM, and a 2xx answer
// (sent without a content-length) opens the server's side, which the
// handler's return ends. A handler that aborts a CONNECT (panics with
// http.ErrAbortHandler) resets it with CONNECT_ERROR.
//
// Shutdown, and the idle timeout, close a connection gracefully in two
// phases (RFC 9113 section 6.8): a first GOAWAY (NO_ERROR) with the
// largest stream identifier and a PING; at the PING's acknowledgement, one
// round trip later (or after a second without it), the last GOAWAY with
// the last stream taken, the streams the client opened before reading the
// first one included. The connection closes once those streams are done;
// streams opened after the last GOAWAY are ignored, so the client knows
// to retry them elsewhere.
package h2server
