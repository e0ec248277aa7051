package h1server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rauta/rauta/internal/h1wire"
)

// Connection states, for Shutdown.
const (
	stateNew       int32 = iota // accepted; no request read yet
	stateIdle                   // waiting for the next request
	stateActive                 // reading a request or running its handler
	stateClosing                // Shutdown woke it to close
	stateHandedOff              // served by TLSNextProto or H2CPriorKnowledge
)

// aLongTimeAgo is a deadline in the past, used to wake a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// drainTimeout bounds the time spent discarding an unread request body
// when no ReadTimeout is set.
const drainTimeout = 5 * time.Second

// lingerTimeout bounds the wait for a client to close after an error
// response, so that the response is not lost to a TCP reset.
const lingerTimeout = 500 * time.Millisecond

// h2Preface is the HTTP/2 client connection preface (RFC 9113 section 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// connReader is the reader under a connection's bufio.Reader: it first
// returns the byte a disconnect watch may have read.
type connReader struct {
	c       *conn
	hasByte bool
	buf     [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.hasByte {
		if len(p) == 0 {
			return 0, nil
		}
		p[0] = r.buf[0]
		r.hasByte = false
		return 1, nil
	}
	return r.c.rwc.Read(p)
}

// writeBufs is what a connection needs only while it serves a request:
// the buffered writer and the space a response body is held back in.
// They go back to the server's pool while the connection is idle.
type writeBufs struct {
	bw  *bufio.Writer
	pre [preSize]byte
}

// conn is one client connection. Its request, URL, header map, response
// and context are reused from one request to the next; see the package
// documentation for what that asks of handlers.
type conn struct {
	srv        *Server
	rwc        net.Conn
	remoteAddr string
	tlsState   *tls.ConnectionState
	acceptedAt int64 // unix nanoseconds

	bufr  *bufio.Reader
	cr    connReader
	wb    *writeBufs
	armFn func()

	base      context.Context    // the connection's values (LocalAddrContextKey)
	cmu       sync.Mutex         // guards cancel
	cancel    context.CancelFunc // the current request's
	req       *http.Request
	blank     http.Request // the zero request, copied per request
	url       url.URL
	sink      fieldSink
	teChunked [1]string
	resp      response
	body      *body
	hd        head
	lastBody  bool // the previous request had a body
	rdl       bool // a read deadline is set
	wdl       bool // the handler set a write deadline
	readStart time.Time
	scratch   []byte

	state       atomic.Int32
	hijacked    atomic.Bool
	broken      atomic.Bool // the connection must not be reused
	bodyDone    atomic.Bool // the request body was read to its end (or there is none)
	canContinue atomic.Bool // "100 Continue" may still be sent
	wmu         sync.Mutex  // serialises "100 Continue" with 1xx and the head

	// The disconnect watch. running and seq are read by the server's
	// sweeper without mu; the rest is guarded by mu.
	running    atomic.Bool
	seq        atomic.Uint64 // requests started
	seen       uint64        // seq at the sweeper's previous look (sweeper only)
	mu         sync.Mutex
	watching   bool
	abortWatch bool
	watchDone  chan struct{}
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, acceptedAt: time.Now().UnixNano()}
	if ra := rwc.RemoteAddr(); ra != nil {
		c.remoteAddr = ra.String()
	}
	c.cr.c = c
	c.base = context.WithValue(context.Background(), http.LocalAddrContextKey, rwc.LocalAddr())
	c.req = new(http.Request)
	c.sink.h = make(http.Header)
	c.armFn = c.armHeaderDeadline
	return c
}

// serve runs the connection until it closes, is hijacked or is handed
// over.
// newContext gives the request about to be read its own context, a child
// of the connection's. Each request gets a new context.Context (as with
// net/http): code may keep watching a request's context after the handler
// returns, so one value is never reused for another request.
func (c *conn) newContext() {
	ctx, cancel := context.WithCancel(c.base)
	c.req = c.blank.WithContext(ctx)
	c.cmu.Lock()
	c.cancel = cancel
	c.cmu.Unlock()
}

// cancelRequest cancels the current request's context.
func (c *conn) cancelRequest() {
	c.cmu.Lock()
	f := c.cancel
	c.cmu.Unlock()
	if f != nil {
		f()
	}
}

// finishContext cancels the context of the request that just ended.
func (c *conn) finishContext() { c.cancelRequest() }

func (c *conn) serve() {
	s := c.srv
	if tc, ok := c.rwc.(*tls.Conn); ok {
		if !c.handshake(tc) {
			return
		}
	}
	c.bufr = s.getReader(&c.cr)
	for first := true; ; first = false {
		if !c.waitForRequest(first) {
			c.close()
			return
		}
		if first && c.tlsState == nil && s.H2CPriorKnowledge != nil {
			ok, err := c.sawH2Preface()
			if err != nil {
				c.close()
				return
			}
			if ok {
				c.handOff(s.H2CPriorKnowledge, &replayConn{Conn: c.rwc, r: c.bufr})
				return
			}
		}
		if !c.serveRequest() {
			if !c.hijacked.Load() {
				c.close()
			}
			return
		}
	}
}

// handshake runs the TLS handshake and hands the connection to
// TLSNextProto when ALPN chose a protocol there. It reports whether the
// connection goes on as HTTP/1.
func (c *conn) handshake(tc *tls.Conn) bool {
	s := c.srv
	d := time.Duration(0)
	for _, t := range []time.Duration{s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout} {
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	if d > 0 {
		tc.SetDeadline(time.Now().Add(d))
	}
	if err := tc.HandshakeContext(context.Background()); err != nil {
		s.logger().Debug("h1server: TLS handshake error", "remote", c.remoteAddr, "error", err)
		c.close()
		return false
	}
	if d > 0 {
		tc.SetDeadline(time.Time{})
	}
	st := tc.ConnectionState()
	c.tlsState = &st
	if p := st.NegotiatedProtocol; p != "" && p != "http/1.1" {
		if fn := s.TLSNextProto[p]; fn != nil {
			c.handOff(fn, tc)
			return false
		}
	}
	return true
}

// handOff gives the connection to another protocol's server and closes
// it when that returns.
func (c *conn) handOff(fn func(net.Conn), nc net.Conn) {
	s := c.srv
	c.state.Store(stateHandedOff)
	c.rwc.SetDeadline(time.Time{})
	s.connState(c.rwc, http.StateActive)
	defer func() {
		c.rwc.Close()
		s.connState(c.rwc, http.StateClosed)
		s.conns.Remove(c)
	}()
	fn(nc)
}

// replayConn is a net.Conn whose first reads return bytes the server
// already read from it (the HTTP/2 preface).
type replayConn struct {
	net.Conn
	r *bufio.Reader
}

func (rc *replayConn) Read(p []byte) (int, error) {
	if rc.r != nil {
		if rc.r.Buffered() > 0 {
			return rc.r.Read(p)
		}
		rc.r = nil
	}
	return rc.Conn.Read(p)
}

// sawH2Preface reports whether the connection starts with the HTTP/2
// preface, reading no further than needed to tell.
func (c *conn) sawH2Preface() (bool, error) {
	armed := false
	for {
		n := c.bufr.Buffered()
		b, _ := c.bufr.Peek(n)
		m := min(n, len(h2Preface))
		if string(b[:m]) != h2Preface[:m] {
			return false, nil
		}
		if m == len(h2Preface) {
			return true, nil
		}
		if !armed {
			c.armHeaderDeadline()
			armed = true
		}
		if _, err := c.bufr.Peek(n + 1); err != nil {
			return false, err
		}
	}
}

// setReadDeadline sets the read deadline, skipping the call when a zero
// deadline is already in effect.
func (c *conn) setReadDeadline(t time.Time) {
	if t.IsZero() && !c.rdl {
		return
	}
	c.rwc.SetReadDeadline(t)
	c.rdl = !t.IsZero()
}

// waitForRequest waits for the first byte of the next request. It reports
// false when the connection should close: the client closed it or was
// idle too long, or the server is shutting down.
func (c *conn) waitForRequest(first bool) bool {
	s := c.srv
	var d time.Duration
	if first {
		d = s.ReadHeaderTimeout
		if d <= 0 {
			d = s.ReadTimeout
		}
	} else {
		d = s.IdleTimeout
		if d <= 0 {
			d = s.ReadTimeout
		}
	}
	var dl time.Time
	if d > 0 {
		dl = time.Now().Add(d)
	}
	c.setReadDeadline(dl)
	st := stateNew
	if !first {
		st = stateIdle
		c.state.Store(stateIdle)
		s.connState(c.rwc, http.StateIdle)
	}
	// Shutting down, an idle connection is closed at once; a new one is
	// left its grace period to send its first request (the sweeper closes
	// it after newConnGrace), whether Shutdown began before or after this
	// goroutine got here.
	if s.conns.IsShut() && !first {
		return false
	}
	if c.bufr.Buffered() == 0 {
		// The response was just written: the client's next request is
		// rarely in yet. Letting the other ready goroutines run first
		// gives it time to arrive, so that the read below finds it rather
		// than costing a read system call that fails with EAGAIN and a
		// trip through the network poller; with nothing else to run the
		// yield returns at once.
		runtime.Gosched()
		if _, err := c.bufr.Peek(1); err != nil {
			return false
		}
	}
	if !c.state.CompareAndSwap(st, stateActive) {
		return false
	}
	if s.ReadTimeout > 0 {
		c.readStart = time.Now()
	}
	s.connState(c.rwc, http.StateActive)
	return true
}

// armHeaderDeadline sets the deadline for the rest of a request head. It
// runs only when the head did not arrive with its first bytes.
func (c *conn) armHeaderDeadline() {
	s := c.srv
	var dl time.Time
	if d := s.ReadHeaderTimeout; d > 0 {
		dl = time.Now().Add(d)
	}
	if s.ReadTimeout > 0 {
		if t := c.readStart.Add(s.ReadTimeout); dl.IsZero() || t.Before(dl) {
			dl = t
		}
	}
	c.setReadDeadline(dl)
}

// serveRequest reads one request and serves it. It reports whether the
// connection can serve another.
func (c *conn) serveRequest() bool {
	s := c.srv
	c.seq.Add(1)
	c.newContext()
	if err := c.readRequest(); err != nil {
		c.failRequest(err)
		return false
	}
	if c.body != nil {
		var dl time.Time
		if s.ReadTimeout > 0 {
			dl = c.readStart.Add(s.ReadTimeout)
		}
		c.setReadDeadline(dl)
	}
	if s.WriteTimeout > 0 {
		c.rwc.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
	} else if c.wdl {
		c.rwc.SetWriteDeadline(time.Time{})
		c.wdl = false
	}
	c.wb = s.getWriteBufs(c.rwc)
	w := &c.resp
	w.reset(c, c.req)
	w.pre = c.wb.pre[:0]

	c.running.Store(true)
	panicked := c.runHandler(w)
	c.endHandler(false)

	if c.hijacked.Load() {
		c.releaseBody(false)
		c.finishContext()
		return false
	}
	// No "100 Continue" from a goroutine the handler left behind.
	c.disableContinue()
	if panicked {
		c.releaseBody(true)
		c.finishContext()
		s.putWriteBufs(c.wb)
		c.wb = nil
		return false
	}
	c.settleBody(true)
	c.finishContext()
	w.finish()
	keep := !w.closeAfter && !c.broken.Load() && !s.conns.IsShut()
	c.resetRequest()
	s.putWriteBufs(c.wb)
	c.wb = nil
	return keep
}

// runHandler calls the handler, recovering a panic: http.ErrAbortHandler
// silently, anything else with a log entry. It reports whether the handler
// panicked.
func (c *conn) runHandler(w *response) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logger().Error("h1server: panic serving request", "remote", c.remoteAddr, "panic", v, "stack", string(buf))
			}
		}
	}()
	h := c.srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	h.ServeHTTP(w, c.req)
	return false
}

// readRequest reads and parses a request head and sets up c.req.
func (c *conn) readRequest() error {
	s := c.srv
	if c.lastBody && c.bufr.Buffered() >= 2 {
		// RFC 9112 section 2.2: tolerate one CRLF after a request body
		// (old clients add it after POST data).
		if b, _ := c.bufr.Peek(2); b[0] == '\r' && b[1] == '\n' {
			c.bufr.Discard(2)
		}
	}
	str, err := readHead(c.bufr, s.maxRequestLine(), s.maxHeaderBytes(), c.armFn)
	if err != nil {
		return err
	}
	hd := &c.hd
	if err := parseHead(str, hd, &c.sink, &c.url); err != nil {
		return err
	}
	c.body = fillRequest(c.req, hd, &c.url, c.sink.h, c.bufr, c, s.maxTrailerBytes(), c.teChunked[:])
	if c.body != nil && hd.expectContinue {
		c.canContinue.Store(true)
	}
	c.bodyDone.Store(c.body == nil)
	c.lastBody = c.body != nil
	return nil
}

// fillRequest sets r's fields from a parsed head and returns its body (nil
// when there is none: r.Body is http.NoBody then). c may be nil outside a
// server. te is a one-element array for r.TransferEncoding.
func fillRequest(r *http.Request, hd *head, u *url.URL, h http.Header, br *bufio.Reader, c *conn, trailerMax int, te []string) *body {
	r.Method = hd.method
	r.URL = u
	r.RequestURI = hd.target
	if hd.minor == 1 {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	} else {
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	}
	r.Header = h
	r.Host = hd.host
	r.Close = hd.close
	if c != nil {
		r.RemoteAddr = c.remoteAddr
		r.TLS = c.tlsState
	}
	var b *body
	switch {
	case hd.chunked:
		b = &body{br: br, c: c, req: r, chunked: true, trailerMax: trailerMax}
		r.ContentLength = -1
		te[0] = "chunked"
		r.TransferEncoding = te[:1:1]
		if len(hd.trailer) > 0 {
			r.Trailer = make(http.Header)
			for _, v := range hd.trailer {
				h1wire.ForEachToken(v, func(k string) { r.Trailer[http.CanonicalHeaderKey(k)] = nil })
			}
		}
	case hd.length > 0:
		b = &body{br: br, c: c, req: r, n: hd.length}
		r.ContentLength = hd.length
	}
	if b == nil {
		r.Body = http.NoBody
		return nil
	}
	r.Body = b
	b.cont = hd.expectContinue
	return b
}

// failRequest answers a request that could not be read: a protocol error
// gets its status and the connection is closed; a read error (the client
// went away, a timeout) just closes it.
func (c *conn) failRequest(err error) {
	var pe *protoError
	if !errors.As(err, &pe) {
		return
	}
	s := c.srv
	s.logger().Debug("h1server: bad request", "remote", c.remoteAddr, "status", pe.code, "reason", pe.reason)
	if pe == errVersion && c.tlsState == nil && s.H2CPriorKnowledge != nil && c.seq.Load() == 1 {
		// The first line of a cleartext connection that also serves h2c
		// is neither HTTP/1 nor the HTTP/2 preface: an HTTP/2 client
		// with a broken preface, or no HTTP client at all. RFC 9113
		// section 3.4 wants the connection closed, not an answer in a
		// protocol the client may not speak.
		return
	}
	text := http.StatusText(pe.code)
	msg := strconv.Itoa(pe.code) + " " + text + ": " + pe.reason
	resp := "HTTP/1.1 " + strconv.Itoa(pe.code) + " " + text +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(msg)) +
		"\r\nConnection: close\r\n\r\n" + msg
	wt := s.WriteTimeout
	if wt <= 0 {
		wt = drainTimeout
	}
	c.rwc.SetWriteDeadline(time.Now().Add(wt))
	if _, err := c.rwc.Write([]byte(resp)); err != nil {
		return
	}
	c.linger()
}

// linger half-closes the connection and reads until the client closes
// it, briefly, so that unread request bytes do not make the kernel reset
// the connection and destroy the response in flight.
func (c *conn) linger() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	c.rwc.SetReadDeadline(time.Now().Add(lingerTimeout))
	c.rdl = true
	buf := c.scratchBuf()
	for total := 0; total < 256<<10; {
		n, err := c.bufr.Read(buf)
		total += n
		if err != nil {
			return
		}
	}
}

func (c *conn) scratchBuf() []byte {
	if c.scratch == nil {
		c.scratch = make([]byte, 4<<10)
	}
	return c.scratch
}

// writeContinue sends "100 Continue" when the handler first reads a body
// that the client sends only after it.
func (c *conn) writeContinue() {
	if !c.canContinue.Load() {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.canContinue.Load() {
		return
	}
	c.canContinue.Store(false)
	bw := c.wb.bw
	bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	if err := bw.Flush(); err != nil {
		c.clientGone()
	}
}

// disableContinue stops "100 Continue" from being sent: the final
// response has begun.
func (c *conn) disableContinue() {
	if c.canContinue.Load() {
		c.wmu.Lock()
		c.canContinue.Store(false)
		c.wmu.Unlock()
	}
}

// clientGone records that the connection failed or the client left: the
// running handler's context is cancelled and the connection will not be
// reused.
func (c *conn) clientGone() {
	c.broken.Store(true)
	if c.running.Load() {
		c.cancelRequest()
	}
}

// bodyFailed is called when reading the request body failed.
func (c *conn) bodyFailed() { c.clientGone() }

// mustClose reports whether the connection ends after this response.
func (c *conn) mustClose() bool {
	return c.hd.close || c.broken.Load() || c.srv.conns.IsShut()
}

// settleBody deals with a request body the handler did not read to its
// end. At the end of the handler (final), the body is taken back, so any
// goroutine still holding it gets errors, and its rest is discarded, up to
// MaxUnreadBodyBytes, for the connection to be reused. Before that (the
// response head is being sent), a body the handler never touched is
// discarded, like net/http does. A body whose "100 Continue" was never
// sent is not waited for: the connection closes instead.
func (c *conn) settleBody(final bool) {
	b := c.body
	if b == nil {
		return
	}
	w := &c.resp
	if !final {
		if !b.mu.TryLock() {
			return
		}
		defer b.mu.Unlock()
		if b.started || b.eof || b.finished || b.err != nil {
			return
		}
		if b.cont {
			w.closeAfter = true
			return
		}
		c.armDrainDeadline(b)
		if !b.drainLocked(c.srv.maxUnreadBody(), c.scratchBuf()) {
			w.closeAfter = true
			return
		}
		// The handler did not read it and now cannot: as with net/http,
		// later reads fail rather than report an empty body.
		b.finished = true
		return
	}
	b.closed.Store(true)
	if !b.mu.TryLock() {
		// A goroutine the handler left is blocked reading the body: wake
		// it. The connection cannot be reused.
		c.rwc.SetReadDeadline(aLongTimeAgo)
		c.rdl = true
		b.mu.Lock()
		b.finished = true
		b.mu.Unlock()
		w.closeAfter = true
		return
	}
	defer b.mu.Unlock()
	b.finished = true
	if b.eof {
		return
	}
	if b.cont || b.err != nil {
		w.closeAfter = true
		return
	}
	c.armDrainDeadline(b)
	if !b.drainLocked(c.srv.maxUnreadBody(), c.scratchBuf()) {
		w.closeAfter = true
	}
}

// armDrainDeadline bounds the wait for an unread body's rest.
func (c *conn) armDrainDeadline(b *body) {
	if c.srv.ReadTimeout > 0 {
		return // the whole-request deadline is in effect
	}
	if !b.chunked && int64(c.bufr.Buffered()) >= b.n {
		return
	}
	c.setReadDeadline(time.Now().Add(drainTimeout))
}

// releaseBody takes the body back without reading it: after a panic
// (wait set: a goroutine blocked reading it is woken and waited for, so
// that the connection's reader can go back to the pool) or a hijack (the
// connection is the handler's now: a read in progress is left alone).
func (c *conn) releaseBody(wait bool) {
	b := c.body
	if b == nil {
		return
	}
	b.closed.Store(true)
	if !b.mu.TryLock() {
		if !wait {
			return
		}
		c.rwc.SetReadDeadline(aLongTimeAgo)
		c.rdl = true
		b.mu.Lock()
	}
	b.finished = true
	b.mu.Unlock()
}

// resetRequest clears the per-request state for the next request.
func (c *conn) resetRequest() {
	if len(c.sink.h) > 64 {
		c.sink.h = make(http.Header)
	} else {
		clear(c.sink.h)
	}
	clear(c.sink.vals)
	c.sink.vals = c.sink.vals[:0]
	if len(c.resp.header) > 64 {
		c.resp.header = nil
	} else {
		clear(c.resp.header)
	}
	c.resp.pre = nil
	c.resp.connField = nil
	c.resp.trailerField = nil
	c.body = nil
	c.hd = head{}
	c.url = url.URL{}
}

// hijack implements response.Hijack.
func (c *conn) hijack(w *response) (net.Conn, *bufio.ReadWriter, error) {
	if w.handlerDone {
		return nil, nil, errors.New("h1server: Hijack called after the handler returned")
	}
	if c.hijacked.Load() {
		return nil, nil, http.ErrHijacked
	}
	c.disableContinue()
	if w.wroteHeader && !w.committed {
		w.commit(false)
	}
	if err := c.wb.bw.Flush(); err != nil {
		return nil, nil, err
	}
	c.endHandler(true)
	c.rwc.SetDeadline(time.Time{})
	rw := bufio.NewReadWriter(c.bufr, c.wb.bw)
	// The buffers belong to the caller now.
	c.bufr, c.wb = nil, nil
	c.srv.connState(c.rwc, http.StateHijacked)
	c.srv.conns.Remove(c)
	return c.rwc, rw, nil
}

// endHandler stops the disconnect watch, waiting for its read to end.
// With hijack set the connection is being hijacked: no watch may start
// again.
func (c *conn) endHandler(hijack bool) {
	c.mu.Lock()
	if hijack {
		c.hijacked.Store(true)
	} else {
		c.running.Store(false)
	}
	watching := c.watching
	if watching {
		c.abortWatch = true
		c.rwc.SetReadDeadline(aLongTimeAgo)
	}
	done := c.watchDone
	c.mu.Unlock()
	if !watching {
		return
	}
	<-done
	c.mu.Lock()
	c.watching = false
	c.abortWatch = false
	c.watchDone = nil
	c.mu.Unlock()
	c.rdl = true
}

// checkWatch is called by the server's sweeper. A handler that has been
// running since the previous sweep, whose request body has been read and
// whose context someone waits on, gets a read on its connection: EOF or an
// error means the client went away, and cancels the context. A byte read
// is kept for the next request. The read is aborted when the handler
// returns.
func (c *conn) checkWatch() {
	seq := c.seq.Load()
	if seq != c.seen {
		c.seen = seq
		return
	}
	if !c.bodyDone.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running.Load() || c.watching || c.hijacked.Load() || c.seq.Load() != seq || c.broken.Load() {
		return
	}
	c.watching = true
	c.watchDone = make(chan struct{})
	c.rwc.SetReadDeadline(time.Time{})
	go c.watch(c.watchDone)
}

func (c *conn) watch(done chan struct{}) {
	defer close(done)
	n, err := c.rwc.Read(c.cr.buf[:])
	if n > 0 {
		c.cr.hasByte = true
		return
	}
	c.mu.Lock()
	aborted := c.abortWatch
	c.mu.Unlock()
	var ne net.Error
	if aborted && errors.As(err, &ne) && ne.Timeout() {
		return
	}
	c.clientGone()
}

// close closes the connection and returns its buffers.
func (c *conn) close() {
	s := c.srv
	c.rwc.Close()
	s.connState(c.rwc, http.StateClosed)
	s.conns.Remove(c)
	if c.bufr != nil {
		s.putReader(c.bufr)
		c.bufr = nil
	}
	if c.wb != nil {
		s.putWriteBufs(c.wb)
		c.wb = nil
	}
}
