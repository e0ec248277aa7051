package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Causes of a request body's failure that the gateway answers itself.
const (
	bodyOK       uint32 = iota
	bodyTooLarge        // more than the limit: 413
	bodyTimeout         // not received in time: 408
)

// errBodyTooLarge is returned by reads of a request body past its limit.
var errBodyTooLarge = errors.New("proxy: request body larger than its limit")

// limitedBody is a request body under [RequestLimits]: it fails reads past
// MaxBodyBytes and notes why a read failed, so that the upstream request is
// aborted (its body never ends) and the client answered 413 or 408.
type limitedBody struct {
	rc    io.ReadCloser
	left  int64 // bytes still allowed; < 0 means no size limit
	cause atomic.Uint32
	eof   atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
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
	case err != nil && isTimeoutErr(err):
		b.cause.CompareAndSwap(bodyOK, bodyTimeout)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// isTimeoutErr reports whether err is a read deadline expiring.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// limitRequest applies the request limits in effect for a request (req,
// with Options.Limits under it). It answers 413 and reports false for a
// body whose Content-Length is over the limit; otherwise it arms the read
// deadline and wraps the body as needed.
func (p *Proxy) limitRequest(w http.ResponseWriter, r *http.Request, req RequestLimits, x *exchange) bool {
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
	wrap := maxBody > 0 && r.ContentLength < 0
	if req.ReadTimeout > 0 {
		if err := http.NewResponseController(w).SetReadDeadline(x.start.Add(req.ReadTimeout)); err == nil {
			wrap = true
		}
	}
	if wrap {
		b := &limitedBody{rc: r.Body, left: -1}
		if maxBody > 0 && r.ContentLength < 0 {
			b.left = maxBody
		}
		r.Body = b
		x.body = b
	}
	return true
}

// bodyFailed answers a request whose body failed under its limits, when it
// did (413 or 408), and reports whether it did.
func (p *Proxy) bodyFailed(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	if x.body == nil {
		return false
	}
	c := x.body.cause.Load()
	if c == bodyOK {
		return false
	}
	p.failBody(w, r, x, c)
	return true
}

// failBody answers 413 or 408. An HTTP/1 connection is closed afterwards:
// the rest of the body is not worth reading.
func (p *Proxy) failBody(w http.ResponseWriter, r *http.Request, x *exchange, cause uint32) {
	if r.ProtoMajor == 1 {
		w.Header()["Connection"] = []string{"close"}
	}
	if cause == bodyTooLarge {
		x.fail(w, http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, "request body too large\n")
		return
	}
	x.fail(w, http.StatusRequestTimeout, ReasonRequestTimeout, "request body timeout\n")
}

// startResponse runs as the response head is written: the write deadline
// of a WriteTimeout starts now, and with net/http's server a read deadline
// no longer needed is cleared (its connection reader would otherwise take
// the deadline for a client gone).
func (p *Proxy) startResponse(w http.ResponseWriter, x *exchange) {
	rc := http.NewResponseController(w)
	if x.writeTimeout > 0 {
		rc.SetWriteDeadline(time.Now().Add(x.writeTimeout))
	}
	if x.body != nil && p.opts.StdlibServer && x.body.eof.Load() {
		rc.SetReadDeadline(time.Time{})
	}
}
