package h2server

import (
	"runtime"
	"slices"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h2wire"
)

// streamQuantum is how many DATA bytes one stream may put into a
// scheduling round before the next ready stream's turn.
const streamQuantum = 64 << 10

// writeLoop is the connection's writer: each round it takes the queued
// control frames and the frames of every ready stream, within the flow
// control windows, and writes them with one Write.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var spare []*stream
	c.mu.Lock()
	for {
		for len(c.ctrl) == 0 && len(c.ready) == 0 && !c.closing && !c.dead {
			c.wcond.Wait()
		}
		if c.dead {
			c.taken.Broadcast()
			c.mu.Unlock()
			return
		}
		// Let handlers that are about to queue frames (woken together,
		// or finishing at once) do so, so that they share this round's
		// write.
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
		c.wbuf.Reset()
		spare = c.fillLocked(spare)
		finish := c.closing && len(c.ctrl) == 0 && (len(c.ready) == 0 || c.fatal)
		c.writing = c.wbuf.Len() > 0
		c.taken.Broadcast()
		c.mu.Unlock()
		if c.wbuf.Len() > 0 {
			if _, err := c.rwc.Write(c.wbuf.Bytes()); err != nil {
				c.srv.logger().Debug("h2server: write failed", "remote", c.remoteAddr, "error", err)
				c.rwc.Close()
				c.mu.Lock()
				for _, s := range c.streams {
					if s.writeErr == nil {
						s.writeErr = errConnClosed
					}
					s.wcond.Broadcast()
				}
				c.mu.Unlock()
				return
			}
		}
		if finish {
			// Let the client read the GOAWAY before the close: shut
			// the sending side, and read (dropping frames) until the
			// client closes or a second has passed.
			if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			c.rwc.SetReadDeadline(time.Now().Add(goAwayLinger))
			return
		}
		c.mu.Lock()
		c.writing = false
	}
}

// fillLocked encodes one round of frames into wbuf.
func (c *conn) fillLocked(spare []*stream) []*stream {
	if c.tableChanged {
		c.enc.SetMaxDynamicTableSize(c.peerTable)
		c.tableChanged = false
	}
	for _, f := range c.ctrl {
		switch f.kind {
		case ctrlSettings:
			settings := [...]http2.Setting{
				{ID: http2.SettingMaxFrameSize, Val: c.srv.maxFrame()},
				{ID: http2.SettingMaxConcurrentStreams, Val: c.srv.maxStreams()},
				{ID: http2.SettingInitialWindowSize, Val: streamWindow},
				{ID: http2.SettingMaxHeaderListSize, Val: c.maxList},
				{ID: http2.SettingEnableConnectProtocol, Val: 1},
			}
			n := len(settings) - 1
			if c.srv.EnableConnectProtocol {
				n++
			}
			c.wfr.WriteSettings(settings[:n]...)
		case ctrlSettingsAck:
			c.wfr.WriteSettingsAck()
		case ctrlPing:
			c.wfr.WritePing(false, f.data)
		case ctrlPingAck:
			c.wfr.WritePing(true, f.data)
		case ctrlRST:
			c.wfr.WriteRSTStream(f.stream, f.code)
		case ctrlWindowUpdate:
			c.wfr.WriteWindowUpdate(f.stream, f.incr)
		case ctrlGoAway:
			c.wfr.WriteGoAway(f.stream, f.code, nil)
		}
	}
	clear(c.ctrl)
	c.ctrl = c.ctrl[:0]
	if c.fatal {
		return spare
	}
	pending := c.ready
	c.ready = spare[:0]
	for _, s := range pending {
		s.queued = false
		if c.wbuf.Len() >= maxWriteBatch {
			c.readyLocked(s)
			continue
		}
		c.writeStreamLocked(s)
	}
	clear(pending)
	return pending[:0]
}

// writeStreamLocked encodes what a stream has ready: header blocks, DATA
// within the windows (up to streamQuantum), trailers or END_STREAM.
func (c *conn) writeStreamLocked(s *stream) {
	if s.reset {
		return
	}
	for len(s.hdrs) > 0 {
		b := s.hdrs[0]
		s.hdrs[0] = hdrBlock{}
		s.hdrs = s.hdrs[1:]
		end := b.final && s.outEnd && s.outOff == len(s.out) && len(s.trailers) == 0
		c.writeBlock(s.id, b.fields, end)
		if end {
			c.endLocalLocked(s)
			return
		}
	}
	if !s.finalQueued {
		return
	}
	quantum := streamQuantum
	wrote := false
	for s.outOff < len(s.out) && quantum > 0 {
		n := int64(min(len(s.out)-s.outOff, int(c.peerMaxFrame), quantum))
		n = min(n, s.sendWindow, c.sendWindow)
		if n <= 0 {
			s.blocked = true
			break
		}
		end := s.outEnd && s.outOff+int(n) == len(s.out) && len(s.trailers) == 0
		c.wfr.WriteData(s.id, end, s.out[s.outOff:s.outOff+int(n)])
		wrote = true
		s.outOff += int(n)
		s.sendWindow -= n
		c.sendWindow -= n
		s.dataFrames++
		c.dataFrames++
		quantum -= int(n)
		if end {
			c.endLocalLocked(s)
			return
		}
	}
	if s.outOff == len(s.out) {
		s.out, s.outOff = s.out[:0], 0
	}
	if wrote {
		// Room in the buffer: a handler waiting in Write goes on. One
		// that nothing was taken from stays asleep until a
		// WINDOW_UPDATE lets the writer take some (waking it for
		// nothing would have it queue the stream again, and the two
		// would spin while the stream is blocked).
		s.wcond.Broadcast()
	}
	if s.outOff < len(s.out) {
		if !s.blocked {
			c.readyLocked(s)
		}
		return
	}
	if s.outEnd {
		if len(s.trailers) > 0 {
			c.writeBlock(s.id, s.trailers, true)
		} else {
			c.wfr.WriteData(s.id, true, nil)
		}
		c.endLocalLocked(s)
	}
}

// endLocalLocked notes the END_STREAM just encoded. A client still
// sending its request body is told to stop (RST_STREAM NO_ERROR, RFC 9113
// section 8.1).
func (c *conn) endLocalLocked(s *stream) {
	s.localClosed = true
	s.dropOutLocked()
	s.trailers = nil
	s.stopTimersLocked()
	if !s.remoteClosed {
		c.wfr.WriteRSTStream(s.id, errCodeNo)
		c.closeStreamLocked(s, http2.StreamError{StreamID: s.id, Code: errCodeNo})
		return
	}
	c.removeStreamLocked(s)
}

// writeBlock encodes a header block as HEADERS and CONTINUATION frames.
func (c *conn) writeBlock(id uint32, fields []hpack.HeaderField, end bool) {
	c.hbuf.Reset()
	for _, f := range fields {
		if slices.Contains(c.srv.UniqueFields, f.Name) {
			f.Sensitive = true
		}
		c.enc.WriteField(f)
	}
	h2wire.WriteBlock(c.wfr, id, c.hbuf.Bytes(), c.peerMaxFrame, end)
}
