// Package h2client is rauta's HTTP/2 client connection: one [Conn] per
// TCP (or TLS) connection to a backend, carrying many requests at once as
// streams, with the http.RoundTripper contract of net/http. It does not
// dial and does not pool: package pool opens connections, chooses one with
// room for a stream ([Conn.Reserve]) and retires them.
//
// # Writing
//
// There is no writer goroutine. A request encodes its frames into the
// connection's pending buffer under the connection's lock; if no write is
// in progress it writes the buffer itself, and if one is, the writer takes
// the new frames in its next round. Under concurrent load the frames of
// many streams (HEADERS, DATA, WINDOW_UPDATE) leave in one write; a lone
// request costs one write and no goroutine handoff. Control frames that
// the reading goroutine has to send (SETTINGS and PING acknowledgements,
// resets) start a short-lived writer goroutine instead, so that the reader
// never blocks on the socket.
//
// # Reading
//
// One goroutine per connection reads frames. Response headers are decoded
// and validated there: exactly one :status of three digits, lower-case
// field names, no connection-specific fields, one Content-Length value that
// the DATA frames then have to match, trailers only with END_STREAM and
// without pseudo-fields. A response that breaks these fails with an error
// wrapping [ErrMalformedResponse] and its stream is reset; the connection
// and its other streams go on. Informational responses go to the request's
// httptrace.ClientTrace Got1xxResponse hook.
//
// # Flow control
//
// Each stream may receive [Config.StreamWindow] bytes ahead of its reader
// and the connection [Config.ConnWindow]; the windows are given back with
// WINDOW_UPDATE as the response bodies are read, once half a window is
// consumed, so that a slow reader holds back its own stream and nothing
// else. Request bodies are sent within the server's windows by one
// goroutine per request that has a body.
//
// # Failures
//
// Errors that guarantee the server did not process a request — a
// connection closed or going away before the request was written, a
// stream above the server's GOAWAY, REFUSED_STREAM — satisfy
// [NotProcessed], so that a caller may send the request again elsewhere.
// The request's context bounds the whole exchange: cancelling it resets
// the stream. [Config.ReadIdleTimeout] and [Config.PingTimeout] close a
// connection whose server stopped answering.
package h2client
