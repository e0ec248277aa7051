package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Causes of a request body's failure. Whatever the cause, the upstream
// attempt is aborted (its body never ends, so the backend cannot take the
// request for complete), the request is not retried, and the gateway
// answers itself.
const (
	bodyOK       uint32 = iota
	bodyTooLarge        // more than the limit: 413
	bodyTimeout         // not received in time: 408
	bodyBroken          // malformed framing or cut short: 400, or gone (see bodyFailed)
	bodyGone            // the client's connection failed: no answer
)

// errBodyTooLarge is returned by reads of a request body past its limit.
var errBodyTooLarge = errors.New("proxy: request body larger than its limit")

// limitedBody wraps every request body that has one: it fails reads past
// MaxBodyBytes and notes why a read failed (too large, a read timeout,
// broken framing, the client gone), so that the upstream request is
// aborted (its body never ends) and the client answered 413, 408, 400 or
// not at all.
type limitedBody struct {
	rc       io.ReadCloser
	left     int64 // bytes still allowed; < 0 means no size limit
	deadline bool  // a RequestLimits.ReadTimeout read deadline is armed
	cause    atomic.Uint32
	eof      atomic.Bool
	reading  atomic.Bool // a Read is in progress (an upstream writer's, say)
	touched  atomic.Bool // Read was called: the body may be partly spent
	closed   atomic.Bool // closed on this side, by the upstream attempt
	// h2 is set for HTTP/2 requests, whose servers make a Read in
	// progress fail when the body is closed. An HTTP/1 body's Close does
	// not interrupt a Read (net/http's waits for it, rauta's lets it
	// finish), so there a Read's error is the wire's even when the
	// upstream attempt closed the body meanwhile: a malformed chunk makes
	// the server cancel the request, and the attempt may give up on that
	// cancellation and close the body before the Read has returned.
	h2 bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	b.touched.Store(true)
	b.reading.Store(true)
	defer b.reading.Store(false)
	if b.left >= 0 && int64(len(p)) > b.left+1 {
		// One byte more than allowed tells a body at the limit from one
		// past it.
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if b.left >= 0 {
		if int64(n) > b.left {
			b.cause.CompareAndSwap(bodyOK, bodyTooLarge)
			return 0, errBodyTooLarge
		}
		b.left -= int64(n)
	}
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A body shorter than its Content-Length or cut inside a chunk:
		// the client closed its side early. No close of ours makes a read
		// end this way, so it stays the client's fault even when the
		// upstream attempt closed the body meanwhile.
		b.cause.CompareAndSwap(bodyOK, bodyBroken)
	case err == nil || errors.Is(err, http.ErrBodyReadAfterClose) || b.h2 && b.closed.Load():
		// A body closed on this side (its upstream attempt is over) is
		// not the client's fault, whatever error an HTTP/2 server's body
		// gives a read it interrupted.
	case isTimeoutErr(err):
		b.cause.CompareAndSwap(bodyOK, bodyTimeout)
	case isNetErr(err):
		b.cause.CompareAndSwap(bodyOK, bodyGone)
	default:
		// The server's own error: malformed chunked framing, a body
		// shorter than its Content-Length (io.ErrUnexpectedEOF, the
		// client having closed its side), or an HTTP/2 stream lost with
		// its connection (told apart by the request's context in
		// bodyFailed).
		b.cause.CompareAndSwap(bodyOK, bodyBroken)
	}
	return n, err
}

// Close closes the client's body once an upstream attempt has read from
// it. An attempt that failed before reading any (a refused dial, a dead
// pooled connection) leaves it open, as it found it, for the next
// attempt: the pool closes a request's body on every failure, as
// http.RoundTripper must. The server closes or drains an unread body
// when the handler returns.
func (b *limitedBody) Close() error {
	if !b.touched.Load() {
		return nil
	}
	b.closed.Store(true)
	return b.rc.Close()
}

// unspent reports whether a request's body, if it has one, can still be
// sent whole: no upstream attempt has read from it.
func (x *requestState) unspent() bool { return x.body == nil || !x.body.touched.Load() }

// settle waits, briefly, for a Read in progress on another goroutine to
// return. When the client's side fails, the server cancels the request
// while the body's reader (the upstream writer) is still on its way back
// with the error; the attempt may fail on the cancellation first.
func (b *limitedBody) settle() {
	for i := 0; i < 200 && b.reading.Load() && b.cause.Load() == bodyOK; i++ {
		time.Sleep(time.Millisecond)
	}
}

// isTimeoutErr reports whether err is a read deadline expiring.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isNetErr reports whether err comes from the client's connection itself
// (a reset, a closed socket) rather than from the server's parsing.
func isNetErr(err error) bool {
	var ne net.Error
	var se http2.StreamError // the client reset the stream
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.As(err, &se)
}

// limitRequest applies the request limits in effect for a request (req,
// with Options.Limits under it). It answers 413 and reports false for a
// body whose Content-Length is over the limit; otherwise it arms the read
// deadline and wraps the body, if there is one, in a limitedBody.
func (p *Proxy) limitRequest(w http.ResponseWriter, r *http.Request, req RequestLimits, x *requestState) bool {
	maxBody := req.MaxBodyBytes
	if maxBody == 0 {
		maxBody = p.opts.Limits.MaxBodyBytes
	}
	if maxBody > 0 && r.ContentLength > maxBody {
		p.failBody(w, r, x, bodyTooLarge)
		return false
	}
	if req.WriteTimeout > 0 {
		// Counted from the response's first byte (see writeResponse), in
		// place of the server's own WriteTimeout.
		x.writeTimeout = req.WriteTimeout
		if p.opts.Limits.WriteTimeout > 0 {
			http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return true
	}
	b := &limitedBody{rc: r.Body, left: -1, h2: r.ProtoMajor >= 2}
	if maxBody > 0 && r.ContentLength < 0 {
		b.left = maxBody
	}
	readTimeout := req.ReadTimeout
	if readTimeout == 0 {
		readTimeout = p.opts.Limits.BodyReadTimeout
	}
	if readTimeout > 0 {
		b.deadline = http.NewResponseController(w).SetReadDeadline(x.start.Add(readTimeout)) == nil
	}
	r.Body = b
	x.body = b
	return true
}

// bodyFailed answers a request whose upstream attempt failed because
// reading its body failed, when it did, and reports whether it did. Such a
// request is never retried: its body is spent.
func (p *Proxy) bodyFailed(w http.ResponseWriter, r *http.Request, x *requestState) bool {
	if x.body == nil {
		return false
	}
	c := x.body.cause.Load()
	if c == bodyOK && r.Context().Err() != nil {
		x.body.settle()
		c = x.body.cause.Load()
	}
	if c == bodyOK {
		return false
	}
	if c == bodyBroken && r.ProtoMajor == 2 && r.Context().Err() != nil {
		// The HTTP/2 server cancelled the stream as it failed its body:
		// the client's connection is gone. (HTTP/1 servers cancel the
		// request on any body error, a malformed one included: there the
		// error itself tells a client gone from a broken body.)
		c = bodyGone
	}
	p.failBody(w, r, x, c)
	return true
}

// failBody answers 413, 408 or 400, or aborts the response of a client
// gone (499 in the log). An HTTP/1 connection is closed afterwards: the
// rest of the body is not worth reading.
func (p *Proxy) failBody(w http.ResponseWriter, r *http.Request, x *requestState, cause uint32) {
	if cause == bodyGone {
		x.gone()
	}
	if r.ProtoMajor == 1 {
		w.Header()["Connection"] = []string{"close"}
	}
	switch cause {
	case bodyTooLarge:
		x.fail(w, http.StatusRequestEntityTooLarge, reasonBodyTooLarge, "request body too large\n")
	case bodyTimeout:
		x.fail(w, http.StatusRequestTimeout, reasonRequestTimeout, "request body timeout\n")
	default:
		x.fail(w, http.StatusBadRequest, reasonBadBody, "malformed request body\n")
	}
}

// startResponse runs as the response head is written: the write deadline
// of a WriteTimeout starts now, and a read deadline no longer needed (the
// body has been read whole) is cleared. net/http's server needs that — its
// connection reader would otherwise take the deadline for a client gone —
// whether it is the proxy's own (ServerNetHTTP) or a program's own server
// in front of Proxy.Handler; for the other servers clearing it is harmless.
func (p *Proxy) startResponse(w http.ResponseWriter, x *requestState) {
	rc := http.NewResponseController(w)
	if x.writeTimeout > 0 {
		rc.SetWriteDeadline(time.Now().Add(x.writeTimeout))
	}
	if x.body != nil && x.body.deadline && x.body.eof.Load() {
		rc.SetReadDeadline(time.Time{})
	}
}
