package h2client

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

var (
	// ErrMalformedResponse wraps every refusal of a response that breaks
	// HTTP/2's rules for fields and framing.
	ErrMalformedResponse = errors.New("h2client: malformed response")

	// ErrResponseHeaderTimeout is returned when the response header did
	// not arrive within Config.ResponseHeaderTimeout.
	ErrResponseHeaderTimeout = errors.New("h2client: timeout awaiting response headers")

	// ErrConnClosed is the cause of failures of streams on a connection
	// that was closed by [Conn.Close] or after an error.
	ErrConnClosed = errors.New("h2client: connection closed")

	// ErrNoCapacity is returned (satisfying [NotProcessed]) by a
	// RoundTrip on a connection that can take no new stream: going away,
	// closed, or at the server's limit of concurrent streams.
	ErrNoCapacity = errors.New("h2client: connection cannot take a new stream")
)

// notProcessedError marks a failure that the server guarantees, or that
// the client knows, happened before the request was processed.
type notProcessedError struct{ err error }

func (e *notProcessedError) Error() string { return e.err.Error() }
func (e *notProcessedError) Unwrap() error { return e.err }

// NotProcessed reports whether err (or an error it wraps) says that the
// request was not processed by the server: it may be sent again, whatever
// its method, if its body can be replayed.
func NotProcessed(err error) bool {
	var np *notProcessedError
	return errors.As(err, &np)
}

func notProcessed(err error) error { return &notProcessedError{err: err} }

// StreamResetError is the failure of a stream that the server reset with
// RST_STREAM.
type StreamResetError struct {
	// Code is the error code the server gave.
	Code http2.ErrCode
}

// Error implements error.
func (e StreamResetError) Error() string {
	return fmt.Sprintf("h2client: stream reset by the server: %v", e.Code)
}

// ConnError is the failure of every stream of a connection that ended
// with a connection error, detected here (Remote false, after which the
// client sent GOAWAY with Code) or announced by the server in a GOAWAY
// (Remote true).
type ConnError struct {
	// Code is the HTTP/2 error code of the connection's end.
	Code http2.ErrCode
	// Remote is true when the server ended the connection.
	Remote bool
	// Reason says what broke the protocol, when the client found it.
	Reason string
}

// Error implements error.
func (e ConnError) Error() string {
	who := "client"
	if e.Remote {
		who = "server"
	}
	if e.Reason != "" {
		return fmt.Sprintf("h2client: connection error (%s, by the %s): %s", e.Code, who, e.Reason)
	}
	return fmt.Sprintf("h2client: connection error (%s, by the %s)", e.Code, who)
}

func protocolError(reason string) ConnError {
	return ConnError{Code: http2.ErrCodeProtocol, Reason: reason}
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedResponse}, args...)...)
}
