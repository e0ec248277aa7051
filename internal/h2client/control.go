package h2client

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

func (c *Conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return ConnError{Code: http2.ErrCode(ce), Reason: "invalid setting " + st.String()}
			}
			return err
		}
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			c.maxStreams = st.Val
		case http2.SettingMaxFrameSize:
			c.peerFrame = st.Val
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(st.Val)
		case http2.SettingMaxHeaderListSize:
			c.maxList = st.Val
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - int64(c.peerWindow)
			for _, s := range c.streams {
				s.sendWindow += delta
				if s.sendWindow > maxWindow {
					return ConnError{Code: http2.ErrCodeFlowControl, Reason: "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window"}
				}
				if delta > 0 {
					s.cond.Broadcast()
				}
			}
			c.peerWindow = int32(st.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.wfr.WriteSettingsAck()
	c.flushLocked(true)
	return nil
}

func (c *Conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		if f.Increment == 0 {
			return protocolError("WINDOW_UPDATE of 0 on the connection")
		}
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return ConnError{Code: http2.ErrCodeFlowControl, Reason: "connection window over 2^31-1"}
		}
		for _, s := range c.streams {
			if s.sending {
				s.cond.Broadcast()
			}
		}
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID >= c.nextID {
			return protocolError("WINDOW_UPDATE on an idle stream")
		}
		return nil
	}
	if f.Increment == 0 {
		c.resetLocked(s, http2.ErrCodeProtocol, malformed("WINDOW_UPDATE of 0 on stream %d", s.id))
		return nil
	}
	s.sendWindow += int64(f.Increment)
	if s.sendWindow > maxWindow {
		c.resetLocked(s, http2.ErrCodeFlowControl, malformed("stream %d window over 2^31-1", s.id))
		return nil
	}
	s.cond.Broadcast()
	return nil
}

func (c *Conn) processRST(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID >= c.nextID {
			return protocolError("RST_STREAM on an idle stream")
		}
		return nil
	}
	switch {
	case f.ErrCode == http2.ErrCodeRefusedStream && !s.gotResp:
		s.failLocked(notProcessed(StreamResetError{Code: f.ErrCode}))
	case f.ErrCode == http2.ErrCodeNo && s.remoteEnd:
		// The response is complete and the server wants no more of the
		// request body (RFC 9113 section 8.1).
		s.stopSendingLocked()
	default:
		s.failLocked(StreamResetError{Code: f.ErrCode})
	}
	c.streamEndedLocked(s)
	return nil
}

func (c *Conn) processGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goingAway = true
	c.goAwayID = f.LastStreamID
	cause := ConnError{Code: f.ErrCode, Remote: true}
	for id, s := range c.streams {
		if id > f.LastStreamID {
			s.failLocked(notProcessed(fmt.Errorf("stream %d above the server's GOAWAY: %w", id, cause)))
			delete(c.streams, id)
		}
	}
	if len(c.streams) == 0 && c.reserved == 0 {
		c.closeLocked(notProcessed(cause))
	}
}

// streamFailed resets a stream whose frame the framer refused.
func (c *Conn) streamFailed(id uint32, code http2.ErrCode, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		c.resetLocked(s, code, err)
		return
	}
	c.wfr.WriteRSTStream(id, code)
	c.flushLocked(true)
}

// resetLocked resets a stream from this side: RST_STREAM with code, the
// stream's reader and writer fail with err.
func (c *Conn) resetLocked(s *stream, code http2.ErrCode, err error) {
	s.failLocked(err)
	c.wfr.WriteRSTStream(s.id, code)
	c.flushLocked(true)
	c.streamEndedLocked(s)
}

// consumedLocked gives back n bytes of the connection window, with a
// WINDOW_UPDATE once half the window is due; it reports whether a frame
// was queued.
func (c *Conn) consumedLocked(n int64) bool {
	c.recvUnack += n
	if c.recvUnack < int64(c.cfg.ConnWindow)/2 || c.closed {
		return false
	}
	c.wfr.WriteWindowUpdate(0, uint32(c.recvUnack))
	c.recvWindow += c.recvUnack
	c.recvUnack = 0
	return true
}
