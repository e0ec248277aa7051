package h2client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// stream is one request and its response. Its fields are guarded by the
// connection's lock.
type stream struct {
	c    *Conn
	id   uint32
	req  *http.Request
	cond sync.Cond // on c.mu: the request's goroutine, its body's reader and writer wait on it

	hdrAt int64 // c.queued before the HEADERS: the request reached the server only if c.sent passed it

	// Receiving.
	resp       *http.Response
	gotResp    bool
	got100     bool
	n1xx       int
	in         []byte // body bytes received, not yet read
	inOff      int
	recvd      int64 // body bytes received
	recvWindow int64
	recvUnack  int64 // read, not yet given back to the stream window
	remoteEnd  bool
	trailer    http.Header
	err        error // the stream failed: its reader gets err
	bodyGone   bool  // the response body was closed (or the stream failed): DATA is dropped

	// Sending.
	sendWindow int64
	sending    bool // a body writer waits for window
	localEnd   bool // END_STREAM or RST_STREAM sent
	stopSend   bool // the body must not be sent (any more)
	waitTimer  bool // the 100-continue wait timed out

	stopCtx   func() bool
	headTimer *time.Timer
	body      body // the response body, allocated with the stream
}

// failLocked makes the stream fail with err: its waiters wake, its body
// writer stops, and what it received unread goes back to the connection.
func (s *stream) failLocked(err error) {
	if s.err == nil {
		s.err = err
	}
	s.stopSendingLocked()
	if !s.bodyGone {
		s.bodyGone = true
		// What the reader will never take goes back to the connection.
		if left := int64(len(s.in) - s.inOff); left > 0 && s.c.consumedLocked(left) {
			s.c.flushLocked(true)
		}
		s.in, s.inOff = nil, 0
	}
	s.cond.Broadcast()
}

// stopSendingLocked stops the request body.
func (s *stream) stopSendingLocked() {
	s.stopSend = true
	s.localEnd = true
	s.cond.Broadcast()
}

// endRemoteLocked notes END_STREAM from the server, checking the body
// length against content-length.
func (s *stream) endRemoteLocked() {
	s.remoteEnd = true
	r := s.resp
	if cl := r.ContentLength; cl >= 0 && s.recvd != cl && s.req.Method != http.MethodHead && r.StatusCode != http.StatusNotModified {
		s.c.resetLocked(s, http2.ErrCodeProtocol, malformed("body of %d bytes, content-length %d, on stream %d", s.recvd, cl, s.id))
		return
	}
	if s.localEnd {
		s.c.streamEndedLocked(s)
	}
}

// RoundTrip sends req on a new stream and returns the response once its
// header has arrived; the body streams as it comes. It uses the place
// taken by a preceding successful [Conn.Reserve], and takes one itself
// otherwise. The request's context bounds the exchange, body included.
// req.URL gives :path, req.Host (else req.URL.Host) :authority; :scheme
// is that of the connection, "https" over TLS and "http" otherwise.
func (c *Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		c.release()
		closeBody(req)
		return nil, notProcessed(err)
	}
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
	}
	hdr, err := checkRequest(req, scheme)
	if err != nil {
		c.release()
		closeBody(req)
		return nil, notProcessed(err)
	}
	s := &stream{c: c, req: req, recvWindow: int64(c.cfg.StreamWindow)}
	s.cond.L = &c.mu

	c.mu.Lock()
	if c.reserved > 0 {
		// A reservation holds through Shutdown.
		c.reserved--
	} else if !c.openLocked() || uint32(len(c.streams)) >= c.maxStreams {
		c.mu.Unlock()
		closeBody(req)
		return nil, notProcessed(ErrNoCapacity)
	}
	if c.closed || c.goingAway {
		err := c.closeErr
		if err == nil {
			err = ErrNoCapacity
		}
		c.unusedLocked()
		c.mu.Unlock()
		closeBody(req)
		return nil, notProcessed(err)
	}
	if c.maxList > 0 && hdr.size > uint64(c.maxList) {
		c.unusedLocked()
		c.mu.Unlock()
		closeBody(req)
		return nil, notProcessed(fmt.Errorf("h2client: request header list of %d bytes over the server's limit of %d", hdr.size, c.maxList))
	}
	s.id = c.nextID
	c.nextID += 2
	s.sendWindow = int64(c.peerWindow)
	s.hdrAt = c.queued
	c.writeRequestHeadersLocked(s.id, req, hdr, !hasBody)
	if !hasBody {
		s.localEnd = true
	}
	c.streams[s.id] = s
	if hasBody {
		// Started before the write: a body already at hand (a gRPC
		// message, say) gets its DATA into the write of its HEADERS.
		go s.writeBody()
	}
	c.flushLocked(false)
	if s.err == nil && c.cfg.ResponseHeaderTimeout > 0 {
		s.headTimer = time.AfterFunc(c.cfg.ResponseHeaderTimeout, s.onHeaderTimeout)
	}
	c.mu.Unlock()

	if ctx.Done() != nil {
		s.stopCtx = context.AfterFunc(ctx, func() { s.cancel(ctx.Err()) })
	}
	c.mu.Lock()
	for !s.gotResp && s.err == nil {
		s.cond.Wait()
	}
	if s.headTimer != nil {
		s.headTimer.Stop()
	}
	if s.err != nil && !s.gotResp {
		err := s.err
		c.mu.Unlock()
		s.finish()
		return nil, err
	}
	resp := s.resp
	empty := s.remoteEnd && len(s.in) == 0 && s.trailer == nil
	c.mu.Unlock()
	if empty && resp.ContentLength <= 0 {
		resp.Body = http.NoBody
		s.finish()
		return resp, nil
	}
	s.body.s = s
	resp.Body = &s.body
	return resp, nil
}

// release gives back a reservation that RoundTrip will not use.
func (c *Conn) release() {
	c.mu.Lock()
	if c.reserved > 0 {
		c.reserved--
		c.unusedLocked()
	}
	c.mu.Unlock()
}

// unusedLocked follows a reservation given up: a connection left without
// streams is closed if it was shut down, and idles otherwise.
func (c *Conn) unusedLocked() {
	if len(c.streams) > 0 || c.reserved > 0 || c.closed {
		return
	}
	if c.shut || c.goingAway {
		c.goAwayLocked()
		return
	}
	c.idleSince = time.Now()
	c.armIdleLocked()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// cancel resets the stream when the request's context ends.
func (s *stream) cancel(err error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[s.id] == s {
		c.resetLocked(s, http2.ErrCodeCancel, err)
		return
	}
	if s.err == nil && !(s.remoteEnd && len(s.in) == s.inOff) {
		s.failLocked(err)
	}
}

func (s *stream) onHeaderTimeout() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.gotResp && c.streams[s.id] == s {
		c.resetLocked(s, http2.ErrCodeCancel, ErrResponseHeaderTimeout)
	}
}

// finish releases what the stream holds once its exchange is over.
func (s *stream) finish() {
	if s.stopCtx != nil {
		s.stopCtx()
	}
}

// body is a response body.
type body struct {
	s      *stream
	mu     sync.Mutex // Close against Read
	closed bool
	done   bool
}

// Read returns the body bytes received so far, waiting for some; the last
// bytes come with io.EOF, after which the trailers are in
// Response.Trailer.
func (b *body) Read(p []byte) (int, error) {
	s := b.s
	c := s.c
	c.mu.Lock()
	for len(s.in) == s.inOff && !s.remoteEnd && s.err == nil {
		s.cond.Wait()
	}
	if len(s.in) > s.inOff {
		n := copy(p, s.in[s.inOff:])
		s.inOff += n
		if s.inOff == len(s.in) {
			s.in, s.inOff = s.in[:0], 0
		}
		queued := c.consumedLocked(int64(n))
		if !s.remoteEnd && s.err == nil {
			s.recvUnack += int64(n)
			if s.recvUnack >= int64(c.cfg.StreamWindow)/2 {
				c.wfr.WriteWindowUpdate(s.id, uint32(s.recvUnack))
				s.recvWindow += s.recvUnack
				s.recvUnack = 0
				queued = true
			}
		}
		if queued {
			c.flushLocked(false)
		}
		var err error
		if len(s.in) == 0 && s.remoteEnd && s.err == nil {
			err = io.EOF
		}
		c.mu.Unlock()
		if err != nil {
			b.eof()
		}
		return n, err
	}
	err := s.err
	c.mu.Unlock()
	if err == nil {
		b.eof()
		return 0, io.EOF
	}
	b.end()
	return 0, err
}

// eof publishes the trailers and ends the exchange.
func (b *body) eof() {
	s := b.s
	s.c.mu.Lock()
	t := s.trailer
	s.c.mu.Unlock()
	if len(t) > 0 {
		if s.resp.Trailer == nil {
			s.resp.Trailer = make(http.Header, len(t))
		}
		for k, vv := range t {
			s.resp.Trailer[k] = vv
		}
	}
	b.end()
}

func (b *body) end() {
	b.mu.Lock()
	done := b.done
	b.done = true
	b.mu.Unlock()
	if !done {
		b.s.finish()
	}
}

// Close ends the body; a stream still receiving is reset with CANCEL.
func (b *body) Close() error {
	s := b.s
	c := s.c
	c.mu.Lock()
	if c.streams[s.id] == s {
		// Still receiving, or still sending the request body.
		c.resetLocked(s, http2.ErrCodeCancel, errBodyClosed)
	} else if !s.bodyGone {
		s.failLocked(errBodyClosed)
	}
	c.mu.Unlock()
	b.end()
	return nil
}

var errBodyClosed = errors.New("h2client: read on closed response body")
