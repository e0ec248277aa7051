package h2client

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h2wire"
)

// Config holds a connection's limits and timeouts. The zero value is
// usable: zero fields take the defaults given.
type Config struct {
	// MaxHeaderListSize bounds a response's header section, and its
	// trailer section, as RFC 9113 section 6.5.2 counts their size. It is
	// announced to the server. Zero means 64 KiB.
	MaxHeaderListSize uint32

	// StreamWindow is the receive window of each stream: how much of a
	// response body the server may send before the reader takes it.
	// Zero means 1 MiB.
	StreamWindow int32

	// ConnWindow is the receive window of the whole connection. Zero
	// means 16 MiB.
	ConnWindow int32

	// IdleTimeout closes a connection that has carried no stream for
	// this long. Zero or negative means never.
	IdleTimeout time.Duration

	// ReadIdleTimeout is the time without a frame from the server after
	// which the connection is checked with a PING. Zero or negative
	// disables the check.
	ReadIdleTimeout time.Duration

	// PingTimeout is how long that PING may go unanswered before the
	// connection is closed. Zero means 15s.
	PingTimeout time.Duration

	// ResponseHeaderTimeout bounds the wait for a response's header after
	// its request's header was written. Zero means no limit.
	ResponseHeaderTimeout time.Duration

	// ExpectContinueTimeout is how long a request with
	// "Expect: 100-continue" waits for 100 Continue before it sends its
	// body anyway. Zero means 1s.
	ExpectContinueTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = 64 << 10
	}
	if c.StreamWindow <= 0 {
		c.StreamWindow = 1 << 20
	}
	if c.ConnWindow <= 0 {
		c.ConnWindow = 16 << 20
	}
	c.IdleTimeout = max(c.IdleTimeout, 0)
	c.ReadIdleTimeout = max(c.ReadIdleTimeout, 0)
	if c.PingTimeout <= 0 {
		c.PingTimeout = 15 * time.Second
	}
	if c.ExpectContinueTimeout <= 0 {
		c.ExpectContinueTimeout = time.Second
	}
	return c
}

// Protocol defaults that hold until the server's SETTINGS say otherwise
// (RFC 9113 section 6.5.2); maxStreamsUnknown is the concurrency assumed
// before the server states its own, as most clients do.
const (
	initialWindow     = 65535
	initialMaxFrame   = 16384
	maxWindow         = 1<<31 - 1
	maxStreamsUnknown = 100
	readBufferSize    = 32 << 10
	// maxInlineRounds is how many write rounds a request's goroutine
	// does for the connection before it leaves the rest to a goroutine.
	maxInlineRounds = 4
)

// Conn is one HTTP/2 client connection. Its methods are safe for
// concurrent use.
type Conn struct {
	nc  net.Conn
	cfg Config
	tls *tls.ConnectionState // of a TLS connection, given to responses

	// Reading goroutine only.
	br          *bufio.Reader
	fr          *http2.Framer
	names       h2wire.Names
	gotSettings bool
	readDone    chan struct{}
	sawFrame    atomic.Bool // a frame arrived since the last health check

	mu         sync.Mutex
	streams    map[uint32]*stream
	nextID     uint32
	reserved   int
	maxStreams uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	maxList    uint32 // the server's SETTINGS_MAX_HEADER_LIST_SIZE (0: none)
	peerWindow int32  // the server's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  uint32 // the server's SETTINGS_MAX_FRAME_SIZE
	sendWindow int64  // connection send window
	recvWindow int64  // what the server may still send on the connection
	recvUnack  int64  // consumed, not yet given back
	goingAway  bool   // GOAWAY received: no new streams
	goAwayID   uint32
	shut       bool // Shutdown: no new streams, close once idle
	closed     bool
	closeErr   error
	idleSince  time.Time
	idleArmed  bool
	idleTimer  *time.Timer
	pingOut    bool
	pingTimer  *time.Timer
	checkTimer *time.Timer

	// Writing, under mu: frames are encoded into wbuf; a writer swaps it
	// out and writes it without the lock.
	wbuf    []byte
	spare   []byte
	writing bool
	queued  int64 // bytes ever appended to wbuf
	sent    int64 // bytes ever written to nc
	wfr     *http2.Framer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
}

// NewConn starts an HTTP/2 connection on nc, which must be connected to
// the server (with TLS and ALPN "h2" already negotiated, or in clear text
// with prior knowledge). It writes the connection preface and the
// client's SETTINGS, and starts the reading goroutine. It fails, closing
// nc, if the preface cannot be written.
func NewConn(nc net.Conn, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	c := &Conn{
		nc:         nc,
		cfg:        cfg,
		readDone:   make(chan struct{}),
		streams:    make(map[uint32]*stream),
		nextID:     1,
		maxStreams: maxStreamsUnknown,
		peerWindow: initialWindow,
		peerFrame:  initialMaxFrame,
		sendWindow: initialWindow,
		recvWindow: int64(cfg.ConnWindow),
		idleSince:  time.Now(),
	}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		c.tls = &st
	}
	c.br = bufio.NewReaderSize(nc, readBufferSize)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(1 << 20)
	c.fr.MaxHeaderListSize = cfg.MaxHeaderListSize
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.wfr = http2.NewFramer((*wbufWriter)(c), nil)
	c.enc = hpack.NewEncoder(&c.hbuf)

	c.wbuf = append(c.wbuf, http2.ClientPreface...)
	c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(cfg.StreamWindow)},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cfg.MaxHeaderListSize},
	)
	if d := cfg.ConnWindow - initialWindow; d > 0 {
		c.wfr.WriteWindowUpdate(0, uint32(d))
	}
	if _, err := nc.Write(c.wbuf); err != nil {
		nc.Close()
		return nil, fmt.Errorf("h2client: writing the connection preface: %w", err)
	}
	c.sent = int64(len(c.wbuf))
	c.queued = c.sent
	c.wbuf = c.wbuf[:0]
	c.mu.Lock()
	c.armIdleLocked()
	if cfg.ReadIdleTimeout > 0 {
		c.checkTimer = time.AfterFunc(cfg.ReadIdleTimeout, c.healthCheck)
	}
	c.mu.Unlock()
	go c.readLoop()
	return c, nil
}

// Reserve takes a place for one new stream, reporting whether the
// connection can take it: it is open, not going away, and below the
// server's limit of concurrent streams. A successful Reserve must be
// followed by one RoundTrip, which uses the place.
func (c *Conn) Reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.openLocked() || uint32(len(c.streams)+c.reserved) >= c.maxStreams {
		return false
	}
	c.reserved++
	return true
}

// openLocked reports whether new streams may start.
func (c *Conn) openLocked() bool {
	return !c.closed && !c.goingAway && !c.shut && c.nextID < maxWindow
}

// Usable reports whether the connection may carry new streams (now or
// once some of its streams end): it is neither closed nor going away.
func (c *Conn) Usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.openLocked()
}

// Streams returns the number of streams open or reserved.
func (c *Conn) Streams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams) + c.reserved
}

// Shutdown stops new streams and closes the connection once its streams
// have ended (at once if it has none).
func (c *Conn) Shutdown() {
	c.mu.Lock()
	c.shut = true
	if len(c.streams) == 0 && c.reserved == 0 && !c.closed {
		c.goAwayLocked()
	}
	c.mu.Unlock()
}

// CloseIdle closes the connection if it carries no stream (and none is
// reserved), reporting whether it did.
func (c *Conn) CloseIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.streams) > 0 || c.reserved > 0 {
		return false
	}
	c.goAwayLocked()
	return true
}

// goAwayLocked ends a connection that carries no stream: GOAWAY with
// NO_ERROR, then the close.
func (c *Conn) goAwayLocked() {
	c.wfr.WriteGoAway(0, http2.ErrCodeNo, nil)
	c.closeLocked(ErrConnClosed)
}

// Close closes the connection at once; its streams fail with
// [ErrConnClosed].
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closeLocked(ErrConnClosed)
	c.mu.Unlock()
	return nil
}

// Done returns a channel closed when the connection has ended and its
// reading goroutine has returned.
func (c *Conn) Done() <-chan struct{} { return c.readDone }

// closeLocked ends the connection: every stream fails with err (or, for
// those the server never saw, a NotProcessed form of it) and the socket
// is closed, which stops the reading goroutine.
func (c *Conn) closeLocked(err error) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeErr = err
	for _, s := range c.streams {
		serr := err
		if c.sent <= s.hdrAt {
			serr = notProcessed(err)
		}
		s.failLocked(serr)
	}
	clear(c.streams)
	for _, t := range []*time.Timer{c.idleTimer, c.pingTimer, c.checkTimer} {
		if t != nil {
			t.Stop()
		}
	}
	// Frames still pending (a GOAWAY, say) are written if no write is in
	// progress, within a second; then the socket is closed. Closing a TLS
	// connection outside a Write sends close_notify, which may wait for
	// the socket too: none of it under the lock.
	var last []byte
	if !c.writing && len(c.wbuf) > 0 {
		last = c.wbuf
		c.wbuf = nil
	}
	nc := c.nc
	go func() {
		if len(last) > 0 {
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			nc.Write(last)
		}
		nc.Close()
	}()
}

// connFail ends the connection after a protocol error found here: it
// tells the server with GOAWAY, then closes.
func (c *Conn) connFail(ce ConnError) {
	c.mu.Lock()
	if !c.closed {
		// Servers open no streams here (push is disabled): the last
		// stream ID the client names is 0.
		c.wfr.WriteGoAway(0, ce.Code, nil)
		c.closeLocked(ce)
	}
	c.mu.Unlock()
}

// streamEndedLocked removes an ended stream and, when the connection has
// none left, arms the idle timer or closes a connection shut down or
// going away.
func (c *Conn) streamEndedLocked(s *stream) {
	if c.streams[s.id] != s {
		return
	}
	delete(c.streams, s.id)
	c.unusedLocked()
}

// armIdleLocked makes sure the idle timer will look at the connection.
// The timer is armed once per idle period rather than reset per stream.
func (c *Conn) armIdleLocked() {
	if c.cfg.IdleTimeout <= 0 || c.idleArmed || c.closed {
		return
	}
	c.idleArmed = true
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(c.cfg.IdleTimeout, c.onIdle)
	} else {
		c.idleTimer.Reset(c.cfg.IdleTimeout)
	}
}

func (c *Conn) onIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idleArmed = false
	if c.closed || len(c.streams) > 0 || c.reserved > 0 {
		return
	}
	if left := c.cfg.IdleTimeout - time.Since(c.idleSince); left > 0 {
		c.idleArmed = true
		c.idleTimer.Reset(left)
		return
	}
	c.goAwayLocked()
}

// healthCheck runs every ReadIdleTimeout: without a frame from the server
// since the last run, it sends a PING that must be answered within
// PingTimeout.
func (c *Conn) healthCheck() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if !c.sawFrame.Swap(false) && !c.pingOut {
		c.pingOut = true
		c.wfr.WritePing(false, [8]byte{'r', 'a', 'u', 't', 'a'})
		c.flushLocked(true)
		c.pingTimer = time.AfterFunc(c.cfg.PingTimeout, c.onPingTimeout)
	}
	c.checkTimer.Reset(c.cfg.ReadIdleTimeout)
}

func (c *Conn) onPingTimeout() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pingOut {
		c.closeLocked(fmt.Errorf("h2client: PING unanswered for %v: %w", c.cfg.PingTimeout, ErrConnClosed))
	}
}
