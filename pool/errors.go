package pool

import (
	"errors"
	"fmt"
)

var (
	// ErrEndpointBusy is returned (wrapped in a [NotSentError]) when an
	// endpoint already has Options.MaxConnsPerEndpoint connections open and
	// none became available within Options.ConnWaitTimeout.
	ErrEndpointBusy = errors.New("pool: endpoint at its connection limit")

	// ErrPoolClosed is returned by [Pool.Get] after [Pool.Close].
	ErrPoolClosed = errors.New("pool: closed")

	// ErrResponseHeaderTimeout is returned when the backend did not send the
	// response header within Options.ResponseHeaderTimeout.
	ErrResponseHeaderTimeout = errors.New("pool: timeout awaiting response headers")

	// ErrRequestBody wraps an error reading the request body (the client
	// went away, or the body was shorter than its ContentLength). It is the
	// caller's side that failed, not the backend.
	ErrRequestBody = errors.New("pool: reading request body")

	// ErrMalformedResponse wraps every refusal of a backend response that
	// breaks HTTP/1.1 framing or syntax (see the package documentation).
	ErrMalformedResponse = errors.New("pool: malformed response")

	// ErrH2NotNegotiated is the cause recorded when an H2 backend did not
	// select "h2" with ALPN; the request is then sent with HTTP/1.1 over TLS.
	ErrH2NotNegotiated = errors.New("pool: backend did not negotiate h2")
)

// NotSentError reports a failure that happened before any byte of the
// request reached the backend: a dial or TLS handshake failure, a connection
// limit, or a write that was refused outright. Such a request may be retried
// on any endpoint whatever its method, provided its body can be replayed
// (http.Request.GetBody) or was nil.
type NotSentError struct {
	// Addr is the endpoint address.
	Addr string
	// Err is the underlying failure.
	Err error
}

// Error implements error.
func (e *NotSentError) Error() string {
	return fmt.Sprintf("pool: %s: request not sent: %v", e.Addr, e.Err)
}

// Unwrap returns the underlying failure.
func (e *NotSentError) Unwrap() error { return e.Err }

// NotSent reports whether err (or an error it wraps) is a [NotSentError]:
// the request failed before any of it was written to a backend.
func NotSent(err error) bool {
	var ns *NotSentError
	return errors.As(err, &ns)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedResponse}, args...)...)
}
