package h1server

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rauta/rauta/internal/conntrack"
)

// Defaults of the Server limits.
const (
	// DefaultMaxHeaderBytes is the default MaxHeaderBytes, as net/http's.
	DefaultMaxHeaderBytes = http.DefaultMaxHeaderBytes
	// DefaultMaxRequestLineBytes is the default MaxRequestLineBytes.
	DefaultMaxRequestLineBytes = 16 << 10
	// DefaultMaxUnreadBodyBytes is the default MaxUnreadBodyBytes, as
	// net/http's.
	DefaultMaxUnreadBodyBytes = 256 << 10
	// DefaultDisconnectCheckInterval is the default
	// DisconnectCheckInterval.
	DefaultDisconnectCheckInterval = 100 * time.Millisecond

	// maxTrailerBytes bounds a request's trailer section (as the size of
	// net/http's read buffer bounds it).
	maxTrailerBytes = 4 << 10
	// readBufferSize and writeBufferSize size a connection's buffers.
	readBufferSize  = 4 << 10
	writeBufferSize = 8 << 10
	// newConnGrace is how long Shutdown lets a new connection, which has
	// not sent a request yet, live: it may be sending one right now.
	newConnGrace = 5 * time.Second
)

// A Server serves HTTP/1.0 and HTTP/1.1 on net.Listeners. Its fields
// configure it and must not change once Serve was called; the zero value
// serves http.DefaultServeMux with net/http's defaults. A Server must not
// be copied after first use.
type Server struct {
	// Handler serves the requests; nil means http.DefaultServeMux.
	Handler http.Handler

	// ReadHeaderTimeout bounds reading a request head, from its first
	// byte (for the first request of a connection: from the accept).
	// Zero means ReadTimeout; both zero mean no limit.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, from
	// its first byte. Zero means no limit.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the
	// request head. Zero means no limit.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Zero means ReadTimeout; both zero mean no limit.
	IdleTimeout time.Duration

	// MaxHeaderBytes bounds a request head (request line and header
	// fields, line ends included); larger heads get 431. Zero means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxRequestLineBytes bounds the request line; longer ones get 414.
	// Zero means DefaultMaxRequestLineBytes.
	MaxRequestLineBytes int
	// MaxUnreadBodyBytes is how much of a request body the handler did
	// not read the server discards to keep the connection; with more
	// left, the connection is closed. Zero means
	// DefaultMaxUnreadBodyBytes; negative means never discard.
	MaxUnreadBodyBytes int64
	// DisconnectCheckInterval is how often handlers are looked at for
	// client disconnects; see the package documentation. Zero means
	// DefaultDisconnectCheckInterval; negative disables the check.
	DisconnectCheckInterval time.Duration

	// ErrorLog receives panics (Error), handler misuse (Warn), accept
	// errors (Error) and refused requests and TLS handshake failures
	// (Debug). Nil means slog.Default().
	ErrorLog *slog.Logger
	// ConnState, if set, is called when a connection changes state, as
	// with net/http: StateNew, StateActive and StateIdle for each request,
	// then StateHijacked or StateClosed exactly once.
	ConnState func(net.Conn, http.ConnState)
	// TLSNextProto maps an ALPN protocol name to the function that serves
	// a *tls.Conn that negotiated it ("h2" for HTTP/2). The function owns
	// the connection until it returns; the server closes it then.
	TLSNextProto map[string]func(net.Conn)
	// H2CPriorKnowledge, if set, serves cleartext connections that start
	// with the HTTP/2 preface. The connection it gets replays the bytes
	// already read, preface included. The server closes it when the
	// function returns.
	H2CPriorKnowledge func(net.Conn)

	conns conntrack.Set[*conn]

	// mu guards the fields below; it is taken before conns' own lock.
	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	onShutdown []func()
	sweeping   bool
	stopSweep  chan struct{}

	dateNow atomic.Pointer[dateStamp]
	readers sync.Pool // *bufio.Reader
	writers sync.Pool // *writeBufs
}

// dateStamp is a formatted Date value for one second.
type dateStamp struct {
	sec int64
	b   [len(http.TimeFormat)]byte
}

// date returns the current Date header value, formatted once per second.
func (s *Server) date() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := s.dateNow.Load(); d != nil && d.sec == sec {
		return d.b[:]
	}
	d := &dateStamp{sec: sec}
	now.UTC().AppendFormat(d.b[:0], http.TimeFormat)
	s.dateNow.Store(d)
	return d.b[:]
}

func (s *Server) logger() *slog.Logger {
	if s.ErrorLog != nil {
		return s.ErrorLog
	}
	return slog.Default()
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return DefaultMaxHeaderBytes
}

func (s *Server) maxRequestLine() int {
	if s.MaxRequestLineBytes > 0 {
		return s.MaxRequestLineBytes
	}
	return DefaultMaxRequestLineBytes
}

func (s *Server) maxTrailerBytes() int { return min(s.maxHeaderBytes(), maxTrailerBytes) }

func (s *Server) maxUnreadBody() int64 {
	switch {
	case s.MaxUnreadBodyBytes > 0:
		return s.MaxUnreadBodyBytes
	case s.MaxUnreadBodyBytes < 0:
		return 0
	}
	return DefaultMaxUnreadBodyBytes
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	if s.ConnState != nil {
		s.ConnState(c, st)
	}
}

func (s *Server) getReader(r io.Reader) *bufio.Reader {
	if v := s.readers.Get(); v != nil {
		br := v.(*bufio.Reader)
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, readBufferSize)
}

func (s *Server) putReader(br *bufio.Reader) {
	br.Reset(nil)
	s.readers.Put(br)
}

func (s *Server) getWriteBufs(w io.Writer) *writeBufs {
	if v := s.writers.Get(); v != nil {
		wb := v.(*writeBufs)
		wb.bw.Reset(w)
		return wb
	}
	return &writeBufs{bw: bufio.NewWriterSize(w, writeBufferSize)}
}

func (s *Server) putWriteBufs(wb *writeBufs) {
	wb.bw.Reset(nil)
	s.writers.Put(wb)
}

// Serve accepts connections on ln and serves each on its own goroutine.
// It returns http.ErrServerClosed after Shutdown or Close, and otherwise
// the error that stopped accepting. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.trackListener(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	var delay time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.conns.IsShut() {
				return http.ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Error("h1server: accept error; retrying", "error", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, rwc)
		if !s.conns.Add(c) {
			rwc.Close()
			return http.ErrServerClosed
		}
		s.connState(rwc, http.StateNew)
		go c.serve()
	}
}

// trackListener adds or removes a listener; adding fails once the server
// is shutting down. The first listener starts the disconnect sweeper.
func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.listeners, ln)
		return true
	}
	if s.conns.IsShut() {
		return false
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	if !s.sweeping {
		every := s.DisconnectCheckInterval
		if every == 0 {
			every = DefaultDisconnectCheckInterval
		}
		if every > 0 {
			s.sweeping = true
			s.stopSweep = make(chan struct{})
			go s.sweep(s.stopSweep, every)
		}
	}
	return true
}

// sweep looks at running handlers every interval; see conn.checkWatch.
func (s *Server) sweep(stop chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var running []*conn
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if len(s.listeners) == 0 && s.conns.Len() == 0 {
			// Nothing to watch: stop until Serve is called again.
			if s.stopSweep == stop {
				s.sweeping = false
				s.stopSweep = nil
			}
			s.mu.Unlock()
			return
		}
		running = running[:0]
		s.conns.Each(func(c *conn) {
			if c.running.Load() {
				running = append(running, c)
			}
		})
		s.mu.Unlock()
		for _, c := range running {
			c.checkWatch()
		}
		clear(running)
	}
}

// RegisterOnShutdown registers a function to call when Shutdown begins,
// in its own goroutine: to tell connections handed to TLSNextProto or
// H2CPriorKnowledge to shut down gracefully, say.
func (s *Server) RegisterOnShutdown(f func()) {
	s.mu.Lock()
	s.onShutdown = append(s.onShutdown, f)
	s.mu.Unlock()
}

// Shutdown stops the server gracefully: it closes the listeners, then
// closes connections as they become idle, and waits until none is left
// or ctx ends (returning ctx's error). Requests in flight finish; their
// responses carry "Connection: close". Connections handed to TLSNextProto
// or H2CPriorKnowledge are waited for (RegisterOnShutdown can tell them to
// finish); hijacked connections are not tracked.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.conns.Shut(nil)
	s.closeListenersLocked()
	for _, f := range s.onShutdown {
		go f()
	}
	s.mu.Unlock()
	if err := s.conns.Wait(ctx, closeIdle); err != nil {
		return err
	}
	s.stopSweeper()
	return nil
}

// closeIdle wakes a connection that is idle (or new past its grace) so
// that it closes.
func closeIdle(c *conn) {
	st := c.state.Load()
	if st == stateIdle || st == stateNew && time.Now().UnixNano()-c.acceptedAt > int64(newConnGrace) {
		if c.state.CompareAndSwap(st, stateClosing) {
			c.rwc.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// Close closes the listeners and every connection at once, handlers
// running or not. Hijacked connections are not affected.
func (s *Server) Close() error {
	s.mu.Lock()
	s.conns.Shut(func(c *conn) { c.rwc.Close() })
	s.closeListenersLocked()
	s.mu.Unlock()
	s.stopSweeper()
	return nil
}

func (s *Server) closeListenersLocked() {
	for ln := range s.listeners {
		(*ln).Close()
		delete(s.listeners, ln)
	}
}

func (s *Server) stopSweeper() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweeping && s.stopSweep != nil {
		close(s.stopSweep)
		s.stopSweep = nil
		s.sweeping = false
	}
}
