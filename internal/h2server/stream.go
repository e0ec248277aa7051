package h2server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// errBodyLength is the body read error of a request whose DATA do not add
// up to its content-length.
var errBodyLength = errors.New("h2server: request body length differs from its content-length")

// stream is one request and its response. The fields after mu's comment
// are guarded by the connection's mu.
type stream struct {
	c      *conn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request
	url    url.URL     // req.URL
	body   requestBody // req.Body, when the request has one
	w      responseWriter
	// method is the request's, kept aside: a handler may change req.
	method string

	// Guarded by c.mu.
	remoteClosed bool // END_STREAM received, or reset
	localClosed  bool // END_STREAM sent, or reset
	reset        bool // reset either way, or the connection gone

	// The request body.
	in            []byte
	inOff         int
	inErr         error
	bodyClosed    bool
	recvWindow    int64
	unacked       int64
	declLen       int64 // content-length, or -1
	recvd         int64
	trailer       http.Header
	gotTrailers   []hpack.HeaderField // canonical names, for trailer
	needsContinue bool
	rcond         sync.Cond

	// The response.
	sendWindow  int64
	sendHigh    int64 // the largest sendWindow has been
	dataFrames  int64 // as conn.dataFrames, for the stream
	hdrs        []hdrBlock
	hdrBuf      [2]hdrBlock // hdrs' first backing array
	finalQueued bool
	out         []byte
	outBuf      *outBuf // out's first backing array, from outBufs
	outOff      int
	outEnd      bool // the handler is done: END_STREAM after out and trailers
	trailers    []hpack.HeaderField
	queued      bool // on c.ready
	blocked     bool // waiting for a window
	writeErr    error
	wcond       sync.Cond
	readTimer   *time.Timer
	writeTimer  *time.Timer
}

// hdrBlock is a header block waiting for the writer.
type hdrBlock struct {
	fields []hpack.HeaderField
	final  bool
}

func (c *conn) newStreamLocked(id uint32, endStream bool) *stream {
	s := &stream{
		c:            c,
		id:           id,
		declLen:      -1,
		recvWindow:   streamWindow,
		sendWindow:   int64(c.peerInitWindow),
		remoteClosed: endStream,
	}
	s.hdrs = s.hdrBuf[:0]
	s.rcond.L = &c.mu
	s.wcond.L = &c.mu
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	c.streams[id] = s
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	return s
}

// outBuf is the space a response body is queued in, up to holdBytes
// without growing; outBufs holds those of finished streams.
type outBuf [holdBytes]byte

var outBufs = sync.Pool{New: func() any { return new(outBuf) }}

// appendOutLocked queues body bytes, starting in a pooled buffer.
func (s *stream) appendOutLocked(p []byte) {
	if s.out == nil {
		s.outBuf = outBufs.Get().(*outBuf)
		s.out = s.outBuf[:0]
	}
	s.out = append(s.out, p...)
}

// dropOutLocked lets go of the queued body and gives its pooled buffer
// back: the writer has copied what it sent, and no Write comes after.
func (s *stream) dropOutLocked() {
	s.out, s.outOff = nil, 0
	if s.outBuf != nil {
		outBufs.Put(s.outBuf)
		s.outBuf = nil
	}
}

// start runs the handler of a new stream on its own goroutine.
func (s *stream) start(req *http.Request) {
	c := s.c
	s.req = req.WithContext(s.ctx)
	s.method = req.Method
	s.trailer = req.Trailer
	s.w = responseWriter{s: s, clen: -1}
	c.handlers++
	if d := c.srv.WriteTimeout; d > 0 {
		s.writeTimer = time.AfterFunc(d, s.onWriteTimeout)
	}
	select {
	case idleWorkers <- s:
	default:
		go worker(s)
	}
}

// workerIdle is how long a handler goroutine with nothing to do waits for
// another stream before it exits.
const workerIdle = time.Second

// idleWorkers hands streams to handler goroutines that finished theirs
// and wait (for up to workerIdle) for another: a goroutine whose stack
// has grown to what the handlers need serves many requests, instead of
// each request starting a goroutine and growing its stack again.
var idleWorkers = make(chan *stream)

// worker runs the handler of s, then of the streams handed to it while
// it waits.
func worker(s *stream) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		s.c.runHandler(s)
		s = nil
		t.Reset(workerIdle)
		select {
		case s = <-idleWorkers:
		case <-t.C:
			return
		}
	}
}

// respondLocked answers a stream with a status and no body, without a
// handler.
func (s *stream) respondLocked(code int) {
	s.hdrs = append(s.hdrs, hdrBlock{fields: []hpack.HeaderField{{Name: ":status", Value: statusString(code)}}, final: true})
	s.finalQueued = true
	s.outEnd = true
	s.bodyClosed = true
	s.c.readyLocked(s)
}

func (c *conn) runHandler(s *stream) {
	panicked := true
	defer func() {
		if panicked {
			v := recover()
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logger().Error("h2server: panic serving "+c.remoteAddr, "panic", fmt.Sprint(v), "stack", string(buf))
			}
		}
		s.w.finish(panicked)
		c.mu.Lock()
		c.handlers--
		c.armIdleLocked()
		c.maybeDoneLocked()
		c.mu.Unlock()
	}()
	c.handler.ServeHTTP(&s.w, s.req)
	panicked = false
}

func (s *stream) setBodyErrLocked(err error) {
	if s.inErr == nil {
		s.inErr = err
	}
	s.rcond.Broadcast()
}

// returnLocked gives n bytes of the stream's receive window back to the
// client, in WINDOW_UPDATEs of at least half the window.
func (s *stream) returnLocked(n int64) {
	s.unacked += n
	if s.unacked >= streamWindow/2 && !s.remoteClosed {
		s.c.queueCtrlLocked(ctrlFrame{kind: ctrlWindowUpdate, stream: s.id, incr: uint32(s.unacked)})
		s.recvWindow += s.unacked
		s.unacked = 0
	}
}

// appendIn adds received bytes to the body buffer, reusing its space.
func (s *stream) appendIn(data []byte) {
	if s.inOff > 0 && cap(s.in)-len(s.in) < len(data) {
		n := copy(s.in, s.in[s.inOff:])
		s.in, s.inOff = s.in[:n], 0
	}
	s.in = append(s.in, data...)
}

// closeBodyLocked ends the handler's use of the request body: the bytes
// it did not read are given back to the connection's window.
func (s *stream) closeBodyLocked() {
	if s.bodyClosed {
		return
	}
	s.bodyClosed = true
	if n := int64(len(s.in) - s.inOff); n > 0 {
		s.in, s.inOff = nil, 0
		s.c.returnConnLocked(n)
		s.returnLocked(n)
	}
	s.in = nil
	s.rcond.Broadcast()
}

func (s *stream) stopTimersLocked() {
	if s.readTimer != nil {
		s.readTimer.Stop()
	}
	if s.writeTimer != nil {
		s.writeTimer.Stop()
	}
}

func (s *stream) onWriteTimeout() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.localClosed {
		c.resetStreamLocked(s.id, http2.ErrCodeInternal)
		s.writeErr = os.ErrDeadlineExceeded
	}
}

// requestBody is the Body of a request with one.
type requestBody struct {
	s *stream
}

// Read reads the request body. A body the client reset fails with an
// http2.StreamError, one whose DATA do not match its content-length with
// an error, one past its read deadline with os.ErrDeadlineExceeded.
func (b *requestBody) Read(p []byte) (int, error) {
	s := b.s
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.needsContinue {
		s.needsContinue = false
		if !s.finalQueued && !s.reset && s.inErr == nil {
			s.hdrs = append(s.hdrs, hdrBlock{fields: []hpack.HeaderField{{Name: ":status", Value: "100"}}})
			c.readyLocked(s)
		}
	}
	for s.inOff == len(s.in) && s.inErr == nil && !s.bodyClosed {
		s.rcond.Wait()
	}
	if s.bodyClosed {
		return 0, http.ErrBodyReadAfterClose
	}
	if s.inOff < len(s.in) {
		n := copy(p, s.in[s.inOff:])
		s.inOff += n
		if s.inOff == len(s.in) {
			s.in, s.inOff = s.in[:0], 0
		}
		c.returnConnLocked(int64(n))
		s.returnLocked(int64(n))
		return n, nil
	}
	if s.inErr == io.EOF && s.gotTrailers != nil {
		for _, f := range s.gotTrailers {
			s.trailer[f.Name] = append(s.trailer[f.Name], f.Value)
		}
		s.gotTrailers = nil
	}
	return 0, s.inErr
}

// Close ends reading; it never blocks.
func (b *requestBody) Close() error {
	b.s.c.mu.Lock()
	b.s.closeBodyLocked()
	b.s.c.mu.Unlock()
	return nil
}

// setReadDeadline arms (or, with the zero time, disarms) the body's read
// deadline.
func (s *stream) setReadDeadline(t time.Time) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.readTimer != nil {
		s.readTimer.Stop()
		s.readTimer = nil
	}
	if t.IsZero() {
		return
	}
	expire := func() {
		c.mu.Lock()
		s.setBodyErrLocked(os.ErrDeadlineExceeded)
		c.mu.Unlock()
	}
	d := time.Until(t)
	if d <= 0 {
		s.setBodyErrLocked(os.ErrDeadlineExceeded)
		return
	}
	s.readTimer = time.AfterFunc(d, expire)
}

// setWriteDeadline arms (or disarms) the response's write deadline.
func (s *stream) setWriteDeadline(t time.Time) {
	c := s.c
	c.mu.Lock()
	if s.writeTimer != nil {
		s.writeTimer.Stop()
		s.writeTimer = nil
	}
	c.mu.Unlock()
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if d <= 0 {
		s.onWriteTimeout()
		return
	}
	c.mu.Lock()
	s.writeTimer = time.AfterFunc(d, s.onWriteTimeout)
	c.mu.Unlock()
}
