package pool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rauta/rauta/internal/h1wire"
	"github.com/rauta/rauta/internal/httpsem"
)

// max1xx bounds the informational responses accepted before a final one.
const max1xx = 16

// drainMax is the most body left unread at Close that is discarded (from
// bytes already received only) so that the connection can be reused.
const drainMax = 4 << 10

type bodyKind uint8

const (
	bodyNone    bodyKind = iota
	bodyLength           // Content-Length
	bodyChunked          // Transfer-Encoding: chunked
	bodyEOF              // delimited by the backend closing the connection
)

type chunkState uint8

const (
	csSize    chunkState = iota // expecting a chunk-size line
	csData                      // inside chunk data, x.remaining bytes left
	csDataEnd                   // expecting the CRLF after chunk data
	csTrailer                   // expecting the trailer section
	csDone
)

const (
	stOpen    uint8 = iota
	stReading       // a Read is in progress
	stClosing       // Close was called during a Read; the connection was closed
	stDone
)

// exchange is one request and response on a connection. It is allocated
// once per attempt; the response and its body state live in it, and it is
// the response Body.
type exchange struct {
	resp      http.Response
	h         *h1   // nil when parsing without a pool (fuzzing)
	c         *conn // nil when parsing without a pool
	br        *bufio.Reader
	maxHeader int
	stop      func() bool // unregisters the context's AfterFunc
	deadline  bool        // a deadline from the context was set on the connection
	ctx       context.Context
	dl        time.Time // the context's deadline when deadline is set
	keepAlive bool
	rht       bool // a response header deadline is set on the connection
	wfailed   bool // writing the request failed part way
	aw        *asyncWriter

	mu        sync.Mutex
	state     uint8
	err       error // returned by reads once done (nil: io.EOF)
	kind      bodyKind
	cs        chunkState
	remaining int64
}

// roundTrip sends req on a connection of h and reads the response head.
func (h *h1) roundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeReqBody(req)
		return nil, errorf(h.addr, "request", errors.New("nil URL"))
	}
	host := req.Host
	if host == "" {
		if host = req.URL.Host; host == "" {
			host = h.addr
		}
	}
	if !h1wire.ValidHost(host) {
		closeReqBody(req)
		return nil, errorf(h.addr, "request", fmt.Errorf("invalid Host %q", clip(host)))
	}
	if req.Method != "" && !h1wire.ValidToken(req.Method) {
		closeReqBody(req)
		return nil, errorf(h.addr, "request", fmt.Errorf("invalid method %q", clip(req.Method)))
	}
	body := req.Body
	if body == http.NoBody {
		body = nil
	}
	if body == nil && req.ContentLength > 0 {
		return nil, errorf(h.addr, "request", fmt.Errorf("ContentLength %d with a nil Body", req.ContentLength))
	}
	ctx := req.Context()
	h.st.requests.Add(1)
	h.st.inFlight.Add(1)
	touched := false
	for attempt := 0; ; attempt++ {
		c, err := h.getConn(ctx, attempt > 0)
		if err == nil {
			var resp *http.Response
			var retry bool
			resp, retry, err = h.exchange(ctx, c, req, host, body, &touched)
			if err == nil {
				return resp, nil
			}
			if retry && attempt == 0 {
				if body != nil && touched {
					if req.GetBody == nil {
						retry = false
					} else if nb, gerr := req.GetBody(); gerr != nil {
						retry = false
					} else {
						body.Close()
						body, touched = nb, false
					}
				}
				if retry {
					h.st.retry.Add(1)
					continue
				}
			}
		}
		h.st.inFlight.Add(-1)
		h.st.failures.Add(1)
		if body != nil {
			body.Close()
		}
		return nil, err
	}
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// exchange runs one attempt. retry reports that the attempt failed in a way
// that is safe and worth retrying once on a fresh connection: nothing was
// written, or the reused connection was found dead before any response byte
// and the request is idempotent.
func (h *h1) exchange(ctx context.Context, c *conn, req *http.Request, host string, body io.ReadCloser, touched *bool) (resp *http.Response, retry bool, err error) {
	cfg := &h.p.cfg
	x := &exchange{h: h, c: c, br: c.br, maxHeader: cfg.MaxResponseHeaderBytes}
	reused := c.uses > 0
	c.uses++
	read0, written0 := c.nread, c.nwritten

	if ctx.Done() != nil {
		if err := ctx.Err(); err != nil {
			h.put(c)
			return nil, false, &NotSentError{Addr: h.addr, Err: err}
		}
		x.stop = context.AfterFunc(ctx, c.closeFn)
	}
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		c.nc.SetDeadline(dl)
		x.deadline, x.dl = true, dl
	}
	x.ctx = ctx

	cl, chunked := int64(-1), false
	if body == nil {
		switch req.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			cl = 0
		}
	} else if req.ContentLength > 0 && len(req.Trailer) == 0 {
		cl = req.ContentLength
	} else {
		// Unknown length, or trailers to send: chunked.
		chunked = true
	}
	upgrade := isUpgrade(req)
	expect := body != nil && h1wire.HasToken(req.Header["Expect"], "100-continue")
	async := body != nil && !upgrade && (expect || chunked || cl > syncBodyMax)

	if err := writeHead(c.bw, req, host, cl, chunked); err != nil {
		x.abort()
		return nil, false, errorf(h.addr, "write request", err)
	}
	var rerr, werr error
	if body != nil && !async {
		*touched = true
		n := cl
		if chunked {
			n = -1
		}
		rerr, werr = writeBody(c.bw, body, n, req.Trailer)
	}
	if rerr == nil && werr == nil {
		werr = c.bw.Flush()
	}
	if rerr != nil {
		x.abort()
		return nil, false, errorf(h.addr, "write request", fmt.Errorf("%w: %w", ErrRequestBody, rerr))
	}
	if werr != nil && c.nwritten == written0 {
		x.abort()
		if ctx.Err() != nil {
			werr = ctx.Err()
		}
		return nil, ctx.Err() == nil, &NotSentError{Addr: h.addr, Err: werr}
	}
	if async && werr == nil {
		*touched = true
		x.aw = startAsyncWrite(c, body, cl, chunked, req.Trailer, expect, cfg.ExpectContinueTimeout)
	} else if body != nil && werr == nil {
		body.Close()
	}
	// On a partial write failure the backend may still have answered (say,
	// 413 before reading the body) before closing: read what it sent.

	rht := cfg.ResponseHeaderTimeout
	if rht > 0 {
		t := time.Now().Add(rht)
		if hasDeadline && dl.Before(t) {
			t = dl
		}
		c.nc.SetReadDeadline(t)
		x.rht = true
	}
	x.wfailed = werr != nil
	if c.br.Buffered() == 0 {
		// The request was just written: let the other ready goroutines
		// run while the backend answers, so that the first read finds
		// the response instead of failing with EAGAIN and parking in
		// the network poller (a system call and a wake-up saved per
		// request under load; with nothing else to run this returns at
		// once).
		runtime.Gosched()
	}
	resp, err = x.readResponse(req, upgrade)
	if err != nil {
		x.abort()
		nothing := c.nread == read0
		retry = reused && nothing && ctx.Err() == nil && !isTimeout(err) && x.aw == nil &&
			(c.nwritten == written0 || httpsem.Idempotent(req))
		switch {
		case x.ctxErr(err) != nil:
			err = x.ctxErr(err)
		case rht > 0 && isTimeout(err) && (!hasDeadline || time.Now().Before(dl)):
			err = ErrResponseHeaderTimeout
		case x.aw != nil && x.aw.failed.Load():
			err = x.aw.err
		case werr != nil && !retry:
			return nil, false, errorf(h.addr, "write request", werr)
		case nothing && err == io.EOF:
			err = fmt.Errorf("backend closed the connection before responding: %w", err)
		}
		return nil, retry, errorf(h.addr, "read response", err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return x.upgraded(ctx)
	}
	return resp, false, nil
}

// readResponse reads informational responses (delivering them to the
// request's httptrace.ClientTrace.Got1xxResponse) and then the final
// response head, and sets up the body. A response without a body has
// already released its connection when this returns.
func (x *exchange) readResponse(req *http.Request, upgrade bool) (*http.Response, error) {
	var hd respHead
	var err error
	for n := 0; ; n++ {
		hd, err = readHead(x.br, x.maxHeader)
		if err != nil {
			return nil, err
		}
		if hd.code >= 200 || hd.code == http.StatusSwitchingProtocols {
			break
		}
		if n >= max1xx {
			return nil, malformed("more than %d informational responses", max1xx)
		}
		if hd.code == http.StatusContinue && x.aw != nil {
			x.aw.proceed(true)
		}
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(hd.code, textproto.MIMEHeader(hd.header)); err != nil {
				return nil, fmt.Errorf("Got1xxResponse: %w", err)
			}
		}
	}
	if x.aw != nil {
		x.aw.proceed(false)
	}
	if x.rht {
		// The head is in: from now on only the context's deadline applies.
		x.c.nc.SetReadDeadline(x.dl)
	}
	r := &x.resp
	r.Status = hd.status
	r.StatusCode = hd.code
	r.Proto = hd.proto
	r.ProtoMajor, r.ProtoMinor = hd.major, hd.minor
	r.Header = hd.header
	r.Request = req
	if x.c != nil {
		r.TLS = x.c.tlsState
	}
	x.keepAlive = !hd.connClose && (hd.minor >= 1 || hd.keepAlive) && !req.Close && !x.wfailed
	switch {
	case hd.code == http.StatusSwitchingProtocols:
		if !upgrade {
			return nil, malformed("101 Switching Protocols to a request without Upgrade")
		}
		x.keepAlive = false
		r.Body = http.NoBody // replaced by upgraded
	case req.Method == http.MethodHead || hd.code < 200 || hd.code == http.StatusNoContent || hd.code == http.StatusNotModified:
		if req.Method == http.MethodHead {
			r.ContentLength = hd.contentLength
		} else if hd.chunked || hd.contentLength > 0 {
			// A body that must not be there may be on the wire anyway.
			x.keepAlive = false
		}
		r.Body = http.NoBody
		x.state = stDone
		x.finish(true)
	case hd.chunked:
		x.kind = bodyChunked
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		r.Trailer = hd.trailer
		r.Body = x
	case hd.contentLength == 0:
		r.Body = http.NoBody
		x.state = stDone
		x.finish(true)
	case hd.contentLength > 0:
		x.kind = bodyLength
		x.remaining = hd.contentLength
		r.ContentLength = hd.contentLength
		r.Body = x
	default:
		x.kind = bodyEOF
		x.keepAlive = false
		r.ContentLength = -1
		r.Body = x
	}
	r.Close = !x.keepAlive
	return r, nil
}

// abort closes the connection of a failed attempt.
func (x *exchange) abort() {
	if x.aw != nil {
		x.aw.proceed(false)
	}
	if x.stop != nil {
		x.stop()
	}
	if x.h != nil {
		x.h.discard(x.c, false)
	}
}

// finish ends a successful exchange once its body is done: the connection
// goes back to the idle stack when reuse is set and everything allows it,
// and is closed otherwise.
func (x *exchange) finish(reuse bool) {
	if x.h == nil {
		return
	}
	c := x.c
	if x.stop != nil && !x.stop() {
		reuse = false // the context fired and closed the connection
	}
	if x.aw != nil && !x.aw.wait(reuse && x.keepAlive) {
		reuse = false
	}
	if !x.keepAlive {
		reuse = false
	}
	if reuse && x.deadline && c.nc.SetDeadline(time.Time{}) != nil {
		reuse = false
	}
	x.h.st.inFlight.Add(-1)
	if reuse {
		x.h.put(c)
	} else {
		x.h.discard(c, false)
	}
}

// Read reads the response body.
func (x *exchange) Read(p []byte) (int, error) {
	x.mu.Lock()
	if x.state != stOpen {
		err := x.err
		x.mu.Unlock()
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	x.state = stReading
	x.mu.Unlock()

	n, err := x.readBody(p)

	x.mu.Lock()
	if x.state == stClosing {
		x.state = stDone
		x.mu.Unlock()
		x.finish(false)
		return n, http.ErrBodyReadAfterClose
	}
	if err != nil {
		x.state = stDone
		if err != io.EOF {
			if x.h != nil {
				if cerr := x.ctxErr(err); cerr != nil {
					err = cerr
				}
				err = errorf(x.h.addr, "read response body", err)
			}
			x.err = err
		}
		x.mu.Unlock()
		x.finish(err == io.EOF)
		return n, err
	}
	x.state = stOpen
	x.mu.Unlock()
	return n, nil
}

// Close closes the response body. Unless the rest of the body is small
// and already received, the connection is closed rather than reused. A
// Close concurrent with a Read closes the connection to unblock it.
func (x *exchange) Close() error {
	x.mu.Lock()
	switch x.state {
	case stReading:
		x.state = stClosing
		x.err = http.ErrBodyReadAfterClose
		x.mu.Unlock()
		if x.c != nil {
			x.c.nc.Close()
		}
		return nil
	case stClosing, stDone:
		x.err = http.ErrBodyReadAfterClose
		x.mu.Unlock()
		return nil
	}
	x.state = stDone
	x.err = http.ErrBodyReadAfterClose
	x.mu.Unlock()
	x.finish(x.drain())
	return nil
}

func (x *exchange) readBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	switch x.kind {
	case bodyLength:
		n, err := h1wire.ReadAtMost(x.br, p, x.remaining)
		x.remaining -= int64(n)
		if x.remaining == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			return n, fmt.Errorf("backend closed the connection with %d bytes of body unread: %w", x.remaining, io.ErrUnexpectedEOF)
		}
		return n, err
	case bodyChunked:
		return x.readChunked(p)
	case bodyEOF:
		return x.br.Read(p)
	}
	return 0, io.EOF
}

func (x *exchange) readChunked(p []byte) (int, error) {
	if x.cs != csData {
		if err := x.advance(false); err != nil {
			return 0, err
		}
		if x.cs == csDone {
			return 0, io.EOF
		}
	}
	n, err := h1wire.ReadAtMost(x.br, p, x.remaining)
	x.remaining -= int64(n)
	if x.remaining == 0 {
		x.cs = csDataEnd
		// Look ahead, without blocking, for the end of the body so that the
		// last data comes with io.EOF and the connection is released at once.
		if aerr := x.advance(true); aerr != nil {
			return n, aerr
		}
		if x.cs == csDone {
			return n, io.EOF
		}
		return n, nil
	}
	if err == io.EOF {
		return n, fmt.Errorf("backend closed the connection inside a chunk: %w", io.ErrUnexpectedEOF)
	}
	return n, err
}

// advance moves the chunked framing forward to chunk data or the end of the
// body. With nonblock set it uses only bytes already buffered and stops,
// without error, where it would have to wait.
func (x *exchange) advance(nonblock bool) error {
	for {
		switch x.cs {
		case csData:
			if x.remaining > 0 {
				return nil
			}
			x.cs = csDataEnd
		case csDataEnd:
			if nonblock && x.br.Buffered() < 2 {
				return nil
			}
			if err := h1wire.ReadChunkEnd(x.br); err != nil {
				return unexpected(wireErr(err))
			}
			x.cs = csSize
		case csSize:
			if nonblock && !h1wire.LineBuffered(x.br) {
				return nil
			}
			size, _, err := h1wire.ReadChunkSize(x.br)
			if err != nil {
				return unexpected(wireErr(err))
			}
			if size == 0 {
				x.cs = csTrailer
				continue
			}
			x.remaining = size
			x.cs = csData
			return nil
		case csTrailer:
			if nonblock && !h1wire.TrailerBuffered(x.br) {
				return nil
			}
			if err := x.readTrailer(); err != nil {
				return err
			}
			x.cs = csDone
		case csDone:
			return nil
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("backend closed the connection inside a chunked body: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// readTrailer reads the trailer section into the response's Trailer map.
func (x *exchange) readTrailer() error {
	return unexpected(wireErr(h1wire.ReadTrailer(x.br, x.maxHeader, &x.resp.Trailer)))
}

// drain discards the rest of an unread body when it is at most drainMax
// bytes and already received, and reports whether the connection can be
// reused.
func (x *exchange) drain() bool {
	switch x.kind {
	case bodyLength:
		if x.remaining <= drainMax && int64(x.br.Buffered()) >= x.remaining {
			x.br.Discard(int(x.remaining))
			x.remaining = 0
			return true
		}
	case bodyChunked:
		budget := int64(drainMax)
		for {
			if err := x.advance(true); err != nil {
				return false
			}
			switch x.cs {
			case csDone:
				return true
			case csData:
				k := min(x.remaining, int64(x.br.Buffered()), budget)
				if k == 0 {
					return false
				}
				x.br.Discard(int(k))
				x.remaining -= k
				budget -= k
				if x.remaining > 0 {
					return false
				}
			default:
				return false // would block
			}
		}
	}
	return false
}

// upgraded hands the connection of a 101 Switching Protocols response to
// the caller as the response Body, an io.ReadWriteCloser. From then on the
// request's context no longer governs the connection.
func (x *exchange) upgraded(ctx context.Context) (*http.Response, bool, error) {
	if x.stop != nil && !x.stop() {
		x.h.discard(x.c, false)
		return nil, false, errorf(x.h.addr, "upgrade", ctx.Err())
	}
	x.stop = nil
	if x.deadline {
		x.c.nc.SetDeadline(time.Time{})
	}
	x.h.st.inFlight.Add(-1)
	x.resp.Body = &upgradedConn{c: x.c}
	x.resp.ContentLength = -1
	return &x.resp, false, nil
}

// upgradedConn is the Body of a 101 response: reads return the bytes
// already buffered first, then the connection's.
type upgradedConn struct {
	c      *conn
	closed atomic.Bool
}

// Read reads from the switched connection.
func (u *upgradedConn) Read(p []byte) (int, error) { return u.c.br.Read(p) }

// Write writes to the switched connection.
func (u *upgradedConn) Write(p []byte) (int, error) { return u.c.nc.Write(p) }

// Close closes the switched connection.
func (u *upgradedConn) Close() error {
	if u.closed.CompareAndSwap(false, true) {
		u.c.h.discard(u.c, false)
	}
	return nil
}

// CloseWrite half-closes the connection when the transport supports it.
func (u *upgradedConn) CloseWrite() error {
	if cw, ok := u.c.nc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// asyncWriter writes a request body while the response is read.
type asyncWriter struct {
	done   chan error // the write's outcome, buffered
	cont   chan bool  // with Expect: 100-continue, whether to send the body
	sent   bool       // proceed was called (reading goroutine only)
	failed atomic.Bool
	err    error // the request body error, published by failed
}

func startAsyncWrite(c *conn, body io.ReadCloser, cl int64, chunked bool, trailer http.Header, expect bool, wait time.Duration) *asyncWriter {
	aw := &asyncWriter{done: make(chan error, 1)}
	if expect {
		aw.cont = make(chan bool, 1)
	}
	n := cl
	if chunked {
		n = -1
	}
	go aw.run(c, body, n, trailer, wait)
	return aw
}

func (aw *asyncWriter) run(c *conn, body io.ReadCloser, n int64, trailer http.Header, wait time.Duration) {
	defer body.Close()
	if aw.cont != nil {
		t := time.NewTimer(wait)
		select {
		case ok := <-aw.cont:
			t.Stop()
			if !ok {
				aw.done <- errBodyNotSent
				return
			}
		case <-t.C:
		}
	}
	rerr, werr := writeBody(c.bw, body, n, trailer)
	if rerr == nil && werr == nil {
		werr = c.bw.Flush()
	}
	if rerr != nil {
		aw.err = fmt.Errorf("%w: %w", ErrRequestBody, rerr)
		aw.failed.Store(true)
		c.nc.Close() // the backend would wait for the rest forever
		aw.done <- aw.err
		return
	}
	aw.done <- werr
}

// writeWait is how long a finished response waits for its request body's
// writer to finish before giving up on reusing the connection: the backend
// usually answers after reading the whole body, so the writer is about to
// report success.
const writeWait = 50 * time.Millisecond

// wait reports whether the body was written successfully, waiting up to
// writeWait for the writer when patient is set.
func (aw *asyncWriter) wait(patient bool) bool {
	select {
	case err := <-aw.done:
		return err == nil
	default:
	}
	if !patient {
		return false
	}
	t := time.NewTimer(writeWait)
	defer t.Stop()
	select {
	case err := <-aw.done:
		return err == nil
	case <-t.C:
		return false
	}
}

// proceed tells a writer waiting for 100 Continue to send the body (ok) or
// to give up; only the first call counts.
func (aw *asyncWriter) proceed(ok bool) {
	if aw.cont != nil && !aw.sent {
		aw.sent = true
		aw.cont <- ok
	}
}

// ctxErr returns the context's error when err is due to it: the context
// is done, or err is the connection's deadline, set from the context's,
// expiring just before the context notices.
func (x *exchange) ctxErr(err error) error {
	if x.ctx == nil {
		return nil
	}
	if cerr := x.ctx.Err(); cerr != nil {
		return cerr
	}
	if x.deadline && isTimeout(err) && !time.Now().Before(x.dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
