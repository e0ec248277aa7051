package h2server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h2wire"
)

const (
	errCodeNo       = http2.ErrCodeNo
	errCodeProtocol = http2.ErrCodeProtocol
	errCodeCalm     = http2.ErrCodeEnhanceYourCalm

	maxWindow = 1<<31 - 1
	// goAwayLinger is how long a connection is read (and the frames
	// dropped) after its last GOAWAY, so that the client reads the GOAWAY
	// before the close.
	goAwayLinger = time.Second
	// drainPingTimeout bounds the wait for the acknowledgement of the
	// PING that follows the first GOAWAY of a graceful close: without
	// it by then, the final GOAWAY goes out anyway.
	drainPingTimeout = time.Second
	// maxStreamID is the largest stream identifier, the last stream of
	// the first GOAWAY of a graceful close.
	maxStreamID = 1<<31 - 1
	// maxEncoderTable bounds the HPACK table used for responses.
	maxEncoderTable = 4096
	// readBufferSize sizes a connection's read buffer.
	readBufferSize = 16 << 10
)

var (
	errConnClosed   = errors.New("h2server: connection closed")
	errStreamClosed = errors.New("h2server: stream closed")
	errHandlerDone  = errors.New("h2server: write after the handler returned")
)

// ctrlKind is the kind of a queued control frame.
type ctrlKind uint8

const (
	ctrlSettings ctrlKind = iota
	ctrlSettingsAck
	ctrlPing
	ctrlPingAck
	ctrlRST
	ctrlWindowUpdate
	ctrlGoAway
)

// drainPingData is the payload of the PING of a graceful close.
var drainPingData = [8]byte{'h', '2', 'd', 'r', 'a', 'i', 'n', 0}

// ctrlFrame is a control frame waiting for the writer.
type ctrlFrame struct {
	kind   ctrlKind
	stream uint32
	code   http2.ErrCode
	incr   uint32
	data   [8]byte
}

// connError is a connection error: GOAWAY with code, then close.
type connError struct {
	code  http2.ErrCode
	limit Limit // numLimits when no limit was hit
}

func (e connError) Error() string { return "h2server: connection error " + e.code.String() }

func protoErr() error { return connError{code: errCodeProtocol, limit: numLimits} }

func limitErr(l Limit) error { return connError{code: errCodeCalm, limit: l} }

// conn is one HTTP/2 connection.
type conn struct {
	srv        *Server
	rwc        net.Conn
	handler    http.Handler
	ctx        context.Context
	cancel     context.CancelFunc
	remoteAddr string
	tlsState   *tls.ConnectionState

	// Read side: the reading goroutine only.
	br          *bufio.Reader
	fr          *http2.Framer
	dec         *hpack.Decoder
	hb          headerBlock
	gotSettings bool
	prefaceRead bool
	resets      budget
	priorities  budget
	empties     budget
	names       h2wire.Names
	maxList     uint32
	maxFrames   int

	mu       sync.Mutex
	wcond    sync.Cond // the writer waits on it
	taken    sync.Cond // the writer took the control frames queued
	writing  bool      // the writer is in Write (or it failed)
	streams  map[uint32]*stream
	maxID    uint32 // highest client stream ID seen
	handlers int    // handler goroutines running
	// The client's settings and the send windows.
	peerInitWindow int32
	peerMaxFrame   uint32
	peerTable      uint32
	tableChanged   bool
	sendWindow     int64
	sendHigh       int64 // the largest sendWindow has been
	dataFrames     int64 // DATA frames written, less small WINDOW_UPDATEs that gave back their window
	// The receive window of the connection: what the client may still
	// send, and what was consumed but not yet granted again.
	recvWindow  int64
	recvUnacked int64
	ctrl        []ctrlFrame
	ready       []*stream
	windowUps   budget // WINDOW_UPDATE frames; guarded by mu as the writer credits it
	goAwaySent  bool   // the last GOAWAY was queued
	drainPing   bool   // the first GOAWAY and its PING were queued, not the last
	drainTimer  *time.Timer
	draining    bool // the last GOAWAY sent: close once the streams are done
	closing     bool // write what is queued, then stop
	fatal       bool // a connection error: the reader drops what follows
	dead        bool // the connection is gone
	idleTimer   *time.Timer
	hsTimer     *time.Timer

	// Write side: the writer goroutine only.
	wbuf       bytes.Buffer
	wfr        *http2.Framer
	enc        *hpack.Encoder
	hbuf       bytes.Buffer
	writerDone chan struct{}
}

func newConn(s *Server, c net.Conn, opts *ServeConnOpts) *conn {
	parent := opts.Context
	if parent == nil {
		parent = context.Background()
	}
	h := opts.Handler
	if h == nil {
		h = s.Handler
	}
	if h == nil {
		h = http.DefaultServeMux
	}
	ctx, cancel := context.WithCancel(parent)
	sc := &conn{
		srv:            s,
		rwc:            c,
		handler:        h,
		ctx:            ctx,
		cancel:         cancel,
		remoteAddr:     c.RemoteAddr().String(),
		streams:        make(map[uint32]*stream),
		peerInitWindow: 65535,
		peerMaxFrame:   16384,
		sendWindow:     65535,
		sendHigh:       65535,
		recvWindow:     connWindow,
		maxList:        s.maxHeaderList(),
		maxFrames:      s.maxBlockFrames(),
		writerDone:     make(chan struct{}),
	}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		sc.tlsState = &st
	}
	sc.wcond.L = &sc.mu
	sc.taken.L = &sc.mu
	sc.br = bufio.NewReaderSize(c, readBufferSize)
	sc.fr = http2.NewFramer(nil, sc.br)
	sc.fr.SetMaxReadFrameSize(s.maxFrame())
	sc.fr.SetReuseFrames()
	sc.dec = hpack.NewDecoder(4096, sc.onField)
	sc.dec.SetMaxStringLength(int(sc.maxList))
	sc.wfr = http2.NewFramer(&sc.wbuf, nil)
	sc.enc = hpack.NewEncoder(&sc.hbuf)
	return sc
}

// serve runs the connection: it starts the writer and reads frames until
// the connection ends.
func (c *conn) serve(opts *ServeConnOpts) {
	defer c.cleanup()
	s := c.srv
	c.ctrl = append(c.ctrl, ctrlFrame{kind: ctrlSettings})
	c.ctrl = append(c.ctrl, ctrlFrame{kind: ctrlWindowUpdate, incr: connWindow - 65535})
	go c.writeLoop()
	if d := s.handshakeTimeout(); d > 0 {
		c.hsTimer = time.AfterFunc(d, c.onHandshakeTimeout)
	}
	if s.IdleTimeout > 0 {
		c.idleTimer = time.AfterFunc(s.IdleTimeout, c.onIdle)
	}
	if opts.UpgradeRequest != nil {
		if err := c.upgrade(opts); err != nil {
			c.connFail(err)
			c.drainReads()
			return
		}
	}

	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		if err == nil {
			s.logger().Debug("h2server: bad connection preface", "remote", c.remoteAddr)
			c.connFail(protoErr())
			c.drainReads()
		}
		return
	}
	c.mu.Lock()
	c.prefaceRead = true
	c.mu.Unlock()

	for {
		f, err := c.fr.ReadFrame()
		if err == nil {
			err = c.process(f)
		} else {
			err = c.readError(err)
		}
		if err == nil {
			continue
		}
		var se http2.StreamError
		if errors.As(err, &se) {
			c.mu.Lock()
			full := !c.roomLocked()
			if !full {
				c.resetStreamLocked(se.StreamID, se.Code)
			}
			c.mu.Unlock()
			if !full {
				continue
			}
			err = limitErr(ControlQueue)
		}
		var ce connError
		if errors.As(err, &ce) {
			c.connFail(ce)
			c.drainReads()
			return
		}
		// The connection is gone (EOF, a reset, a deadline after GOAWAY).
		s.logger().Debug("h2server: connection ended", "remote", c.remoteAddr, "error", err)
		return
	}
}

// readError maps an error of the Framer to the error to handle.
func (c *conn) readError(err error) error {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		return connError{code: http2.ErrCode(ce), limit: numLimits}
	case errors.Is(err, http2.ErrFrameTooLarge):
		return connError{code: http2.ErrCodeFrameSize, limit: numLimits}
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A frame too short for its type (a parse error), or the
		// connection cut mid-frame: FRAME_SIZE_ERROR either way.
		return connError{code: http2.ErrCodeFrameSize, limit: numLimits}
	}
	var se http2.StreamError
	if errors.As(err, &se) {
		return se
	}
	return err
}

// connFail sends GOAWAY for a connection error and stops serving: the
// writer writes what is queued and the GOAWAY, then stops.
func (c *conn) connFail(err error) {
	var ce connError
	if !errors.As(err, &ce) {
		ce = connError{code: http2.ErrCodeInternal, limit: numLimits}
	}
	if ce.limit < numLimits {
		c.srv.hit(ce.limit)
	}
	c.srv.logger().Debug("h2server: connection error", "remote", c.remoteAddr, "code", ce.code)
	c.mu.Lock()
	c.fatal = true
	c.queueGoAwayLocked(ce.code)
	c.closing = true
	c.wcond.Signal()
	c.mu.Unlock()
}

// drainReads reads and drops what the client still sends, until the
// writer, done, sets a deadline or the client closes.
func (c *conn) drainReads() {
	io.Copy(io.Discard, c.br)
}

// cleanup runs when the reading goroutine is done: every stream is told
// the connection is gone, the writer stops, the connection is closed.
func (c *conn) cleanup() {
	c.mu.Lock()
	c.dead = true
	c.closing = true
	for _, s := range c.streams {
		c.closeStreamLocked(s, errConnClosed)
	}
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	if c.hsTimer != nil {
		c.hsTimer.Stop()
	}
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	c.wcond.Signal()
	c.mu.Unlock()
	c.rwc.Close()
	<-c.writerDone
	c.cancel()
}

func (c *conn) queueGoAwayLocked(code http2.ErrCode) {
	if c.goAwaySent && code == errCodeNo {
		return
	}
	c.goAwaySent = true
	c.queueCtrlLocked(ctrlFrame{kind: ctrlGoAway, stream: c.maxID, code: code})
}

// drain starts a graceful close in two phases (RFC 9113 section 6.8): a
// first GOAWAY (NO_ERROR) with the largest stream identifier, so that
// the client opens no more streams, and a PING; streams the client opened
// before it read them are still served. At the PING's acknowledgement
// (one round trip later), or after drainPingTimeout, the last GOAWAY
// names the last stream taken (finishDrain); the connection closes once
// the streams taken are done.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.goAwaySent || c.drainPing {
		return
	}
	c.drainPing = true
	c.queueCtrlLocked(ctrlFrame{kind: ctrlGoAway, stream: maxStreamID, code: errCodeNo})
	c.queueCtrlLocked(ctrlFrame{kind: ctrlPing, data: drainPingData})
	c.drainTimer = time.AfterFunc(drainPingTimeout, c.finishDrain)
}

// finishDrain sends the last GOAWAY of a graceful close.
func (c *conn) finishDrain() {
	c.mu.Lock()
	pending := c.drainPing
	c.drainPing = false
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	c.mu.Unlock()
	if pending {
		c.goAway(errCodeNo, true)
	}
}

// goAway sends the last GOAWAY at once, from outside the reading
// goroutine: graceful (NO_ERROR: the streams taken finish, new ones are
// ignored), or not (the connection closes once the GOAWAY is written).
func (c *conn) goAway(code http2.ErrCode, graceful bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return
	}
	c.queueGoAwayLocked(code)
	c.draining = true
	if !graceful {
		c.closing = true
	}
	c.maybeDoneLocked()
	c.wcond.Signal()
}

// maybeDoneLocked closes a draining connection whose streams are done.
func (c *conn) maybeDoneLocked() {
	if c.draining && len(c.streams) == 0 && c.handlers == 0 {
		c.closing = true
		c.wcond.Signal()
	}
}

// armIdleLocked starts the idle timer when no stream is left.
func (c *conn) armIdleLocked() {
	if c.idleTimer != nil && len(c.streams) == 0 && c.handlers == 0 {
		c.idleTimer.Reset(c.srv.IdleTimeout)
	}
}

func (c *conn) onIdle() {
	c.mu.Lock()
	idle := len(c.streams) == 0 && c.handlers == 0 && !c.dead && !c.draining && !c.drainPing
	c.mu.Unlock()
	if idle {
		c.srv.hit(IdleTimeoutLimit)
		c.drain()
	}
}

func (c *conn) onHandshakeTimeout() {
	c.mu.Lock()
	if c.gotSettingsLocked() || c.dead {
		c.mu.Unlock()
		return
	}
	preface := c.prefaceRead
	c.mu.Unlock()
	c.srv.hit(HandshakeTimeoutLimit)
	if !preface {
		c.rwc.Close()
		return
	}
	c.goAway(errCodeProtocol, false)
}

// gotSettingsLocked reports whether the client's first SETTINGS frame
// arrived; hsTimer is nil from then on.
func (c *conn) gotSettingsLocked() bool { return c.hsTimer == nil }

func (c *conn) queueCtrlLocked(f ctrlFrame) {
	c.ctrl = append(c.ctrl, f)
	c.wcond.Signal()
}

// process handles one frame on the reading goroutine.
func (c *conn) process(f http2.Frame) error {
	if !c.gotSettings {
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			return protoErr()
		}
		c.gotSettings = true
		c.mu.Lock()
		if c.hsTimer != nil {
			c.hsTimer.Stop()
			c.hsTimer = nil
		}
		c.mu.Unlock()
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.HeadersFrame:
		return c.processHeaders(f)
	case *http2.ContinuationFrame:
		return c.processContinuation(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.processRST(f)
	case *http2.PingFrame:
		if f.IsAck() {
			if f.Data == drainPingData {
				c.finishDrain()
			}
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.queueAnswerLocked(ctrlFrame{kind: ctrlPingAck, data: f.Data}, PingFlood)
	case *http2.PriorityFrame:
		if !c.priorities.take(time.Now().UnixNano(), rate(c.srv.PrioritiesPerSecond, DefaultPrioritiesPerSecond)) {
			return limitErr(PriorityFlood)
		}
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: errCodeProtocol}
		}
		return nil
	case *http2.GoAwayFrame:
		c.goAway(errCodeNo, true)
		return nil
	case *http2.PushPromiseFrame:
		return protoErr()
	}
	// Unknown frame types (and PRIORITY_UPDATE) are ignored.
	return nil
}

// roomLocked reports whether a control frame answering the client may be
// queued: fewer than MaxQueuedControlFrames wait. A full queue that the
// writer has not yet taken while it is not writing (it was not scheduled
// yet) is waited for; one that fills while the writer is in Write, which
// does not return while the client does not read, is not.
func (c *conn) roomLocked() bool {
	limit := c.srv.maxQueuedControl()
	for len(c.ctrl) >= limit && !c.writing && !c.dead && !c.closing {
		c.wcond.Signal()
		c.taken.Wait()
	}
	return len(c.ctrl) < limit
}

// queueAnswerLocked queues a control frame that answers one of the
// client's, unless MaxQueuedControlFrames wait already: the client sends
// faster than it reads the answers, and limit l closes the connection.
func (c *conn) queueAnswerLocked(f ctrlFrame, l Limit) error {
	if !c.roomLocked() {
		return limitErr(l)
	}
	c.queueCtrlLocked(f)
	return nil
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var iw initialWindow
	err := f.ForeachSetting(func(st http2.Setting) error {
		return c.applySettingLocked(st, &iw)
	})
	if err == nil {
		err = c.applyInitialWindowLocked(iw)
	}
	if err != nil {
		return err
	}
	return c.queueAnswerLocked(ctrlFrame{kind: ctrlSettingsAck}, SettingsFlood)
}

// initialWindow gathers the SETTINGS_INITIAL_WINDOW_SIZE values of one
// SETTINGS frame, applied together once the frame is read: the work of
// a frame is one pass over the streams, however many values it holds.
type initialWindow struct {
	set       bool
	peak, val uint32 // the largest value and the last
}

// applySettingLocked applies one of the client's settings, in order;
// SETTINGS_INITIAL_WINDOW_SIZE is gathered into iw.
func (c *conn) applySettingLocked(st http2.Setting, iw *initialWindow) error {
	if err := st.Valid(); err != nil {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			return connError{code: http2.ErrCode(ce), limit: numLimits}
		}
		return protoErr()
	}
	switch st.ID {
	case http2.SettingHeaderTableSize:
		c.peerTable = min(st.Val, maxEncoderTable)
		c.tableChanged = true
	case http2.SettingInitialWindowSize:
		if !iw.set || st.Val > iw.peak {
			iw.peak = st.Val
		}
		iw.set, iw.val = true, st.Val
	case http2.SettingMaxFrameSize:
		c.peerMaxFrame = st.Val
	}
	return nil
}

// applyInitialWindowLocked applies the SETTINGS_INITIAL_WINDOW_SIZE values
// of one frame as if one after the other: each moves every stream's send
// window by its difference from the one before, so the windows end moved
// by the last value's difference, and overflow (a FLOW_CONTROL_ERROR) at
// the largest value if at all.
func (c *conn) applyInitialWindowLocked(iw initialWindow) error {
	if !iw.set {
		return nil
	}
	peak := int64(iw.peak) - int64(c.peerInitWindow)
	delta := int64(iw.val) - int64(c.peerInitWindow)
	for _, s := range c.streams {
		if s.sendWindow+peak > maxWindow {
			return connError{code: http2.ErrCodeFlowControl, limit: numLimits}
		}
		s.sendWindow += delta
		if delta > 0 && s.blocked {
			s.blocked = false
			c.readyLocked(s)
		}
	}
	c.peerInitWindow = int32(iw.val)
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A WINDOW_UPDATE that gives back what the server's DATA used (to a
	// window below the largest it has been, by at least 1 KiB, back to
	// that size, or in a piece for a DATA frame the server wrote, as
	// grpc-go gives back each message) is free; others spend the flood
	// budget. Small pieces are bounded by the server's own DATA frames.
	window, high, pieces := c.sendWindow, &c.sendHigh, &c.dataFrames
	if s := c.streams[f.StreamID]; s != nil {
		window, high, pieces = s.sendWindow, &s.sendHigh, &s.dataFrames
		*high = max(*high, int64(c.peerInitWindow))
	}
	incr := int64(f.Increment)
	useful := window < *high && (incr >= 1<<10 || window+incr >= *high || *pieces > 0)
	if useful && incr < 1<<10 && window+incr < *high {
		*pieces--
	}
	*high = max(*high, window+incr)
	if !useful && !c.windowUps.take(time.Now().UnixNano(), rate(c.srv.WindowUpdatesPerSecond, DefaultWindowUpdatesPerSecond)) {
		return limitErr(WindowUpdateFlood)
	}
	if f.StreamID == 0 {
		if c.sendWindow+int64(f.Increment) > maxWindow {
			return connError{code: http2.ErrCodeFlowControl, limit: numLimits}
		}
		c.sendWindow += int64(f.Increment)
		for _, s := range c.streams {
			if s.blocked {
				s.blocked = false
				c.readyLocked(s)
			}
		}
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.maxID {
			return protoErr()
		}
		return nil
	}
	if s.sendWindow+int64(f.Increment) > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	s.sendWindow += int64(f.Increment)
	if s.blocked {
		s.blocked = false
		c.readyLocked(s)
	}
	return nil
}

func (c *conn) processRST(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.maxID {
			return protoErr()
		}
		return nil
	}
	if !s.localClosed && !c.resets.take(time.Now().UnixNano(), rate(c.srv.ResetsPerSecond, DefaultResetsPerSecond)) {
		c.closeStreamLocked(s, http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
		return limitErr(RapidReset)
	}
	c.closeStreamLocked(s, http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
	return nil
}

func (c *conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	data := f.Data()
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > c.recvWindow {
		return connError{code: http2.ErrCodeFlowControl, limit: numLimits}
	}
	c.recvWindow -= n
	s := c.streams[id]
	if s == nil || s.remoteClosed {
		if id > c.maxID {
			return protoErr()
		}
		c.returnConnLocked(n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if n > s.recvWindow {
		c.returnConnLocked(n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	if len(data) == 0 && !f.StreamEnded() {
		if !c.empties.take(time.Now().UnixNano(), rate(c.srv.EmptyFramesPerSecond, DefaultEmptyFramesPerSecond)) {
			return limitErr(EmptyFrameFlood)
		}
	}
	s.recvWindow -= n
	if pad := n - int64(len(data)); pad > 0 {
		c.returnConnLocked(pad)
		s.returnLocked(pad)
	}
	s.recvd += int64(len(data))
	if s.declLen >= 0 && s.recvd > s.declLen {
		// More than declared: the stream is reset at once.
		c.returnConnLocked(int64(len(data)))
		s.setBodyErrLocked(errBodyLength)
		c.resetStreamLocked(id, errCodeProtocol)
		return nil
	}
	if s.bodyClosed {
		c.returnConnLocked(int64(len(data)))
		s.returnLocked(int64(len(data)))
	} else if len(data) > 0 {
		s.appendIn(data)
		s.rcond.Signal()
	}
	if f.StreamEnded() {
		c.endBodyLocked(s)
	}
	return nil
}

// endBodyLocked ends a request body at the client's END_STREAM. A body
// shorter than its content-length fails the handler's reads, whose
// answer (400 from a proxy) still reaches the client, as with x/net.
func (c *conn) endBodyLocked(s *stream) {
	if s.declLen >= 0 && s.recvd != s.declLen {
		s.setBodyErrLocked(errBodyLength)
	} else {
		s.setBodyErrLocked(io.EOF)
	}
	c.endRemoteLocked(s)
}

// returnConnLocked gives n bytes of the connection's receive window back
// to the client, in WINDOW_UPDATEs of at least half the window.
func (c *conn) returnConnLocked(n int64) {
	c.recvUnacked += n
	if c.recvUnacked >= connWindow/2 && !c.dead {
		c.queueCtrlLocked(ctrlFrame{kind: ctrlWindowUpdate, incr: uint32(c.recvUnacked)})
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
}

// endRemoteLocked notes the client's END_STREAM.
func (c *conn) endRemoteLocked(s *stream) {
	s.remoteClosed = true
	if s.localClosed {
		c.removeStreamLocked(s)
	}
}

// resetStreamLocked sends RST_STREAM and closes the stream, if open.
func (c *conn) resetStreamLocked(id uint32, code http2.ErrCode) {
	c.queueCtrlLocked(ctrlFrame{kind: ctrlRST, stream: id, code: code})
	if s := c.streams[id]; s != nil {
		c.closeStreamLocked(s, http2.StreamError{StreamID: id, Code: code})
	}
}

// closeStreamLocked ends a stream at once (a reset either way, or the
// connection gone): its body fails with err, its writes fail, its context
// is cancelled.
func (c *conn) closeStreamLocked(s *stream, err error) {
	s.setBodyErrLocked(err)
	if s.writeErr == nil {
		s.writeErr = errStreamClosed
	}
	// Bytes received but never to be read are the connection's again.
	if buffered := int64(len(s.in) - s.inOff); buffered > 0 {
		s.in, s.inOff = s.in[:0], 0
		c.returnConnLocked(buffered)
	}
	s.dropOutLocked()
	s.hdrs = nil
	s.remoteClosed, s.localClosed, s.reset = true, true, true
	s.rcond.Broadcast()
	s.wcond.Broadcast()
	s.stopTimersLocked()
	s.cancel()
	c.removeStreamLocked(s)
}

func (c *conn) removeStreamLocked(s *stream) {
	if c.streams[s.id] != s {
		return
	}
	delete(c.streams, s.id)
	c.armIdleLocked()
	c.maybeDoneLocked()
}

// readyLocked puts a stream on the writer's list.
func (c *conn) readyLocked(s *stream) {
	if s.queued || s.reset {
		return
	}
	s.queued = true
	c.ready = append(c.ready, s)
	c.wcond.Signal()
}

// upgrade serves the request of an h2c Upgrade as stream 1.
func (c *conn) upgrade(opts *ServeConnOpts) error {
	if len(opts.Settings)%6 != 0 {
		return protoErr()
	}
	c.mu.Lock()
	var iw initialWindow
	for b := opts.Settings; len(b) >= 6; b = b[6:] {
		st := http2.Setting{ID: http2.SettingID(uint16(b[0])<<8 | uint16(b[1])), Val: uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])}
		if err := c.applySettingLocked(st, &iw); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	err := c.applyInitialWindowLocked(iw)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	up := opts.UpgradeRequest
	req := &http.Request{
		Method:     up.Method,
		URL:        up.URL,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     up.Header,
		Host:       up.Host,
		RequestURI: up.RequestURI,
		RemoteAddr: c.remoteAddr,
		Body:       http.NoBody,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxID = 1
	s := c.newStreamLocked(1, true)
	s.start(req)
	return nil
}
