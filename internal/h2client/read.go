package h2client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"

	"golang.org/x/net/http2"

	"github.com/rauta/rauta/internal/h1wire"
	"github.com/rauta/rauta/internal/h2wire"
)

// readLoop reads frames until the connection ends.
func (c *Conn) readLoop() {
	defer close(c.readDone)
	err := c.readFrames()
	var ce ConnError
	if errors.As(err, &ce) && !ce.Remote {
		c.connFail(ce)
		return
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("h2client: server closed the connection: %w", ErrConnClosed)
	} else if !errors.Is(err, ErrConnClosed) && !errors.As(err, &ce) {
		err = fmt.Errorf("h2client: read: %w: %w", ErrConnClosed, err)
	}
	c.mu.Lock()
	c.closeLocked(err)
	c.mu.Unlock()
}

// readFrames reads and processes frames; it returns what ended the
// connection.
func (c *Conn) readFrames() error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A header block that hpack decoded but x/net found
				// malformed: the stream is reset, the connection goes on.
				c.streamFailed(se.StreamID, se.Code, malformed("%v", se))
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				reason := "refused by the framer"
				if d := c.fr.ErrorDetail(); d != nil {
					reason = d.Error()
				}
				return ConnError{Code: http2.ErrCode(ce), Reason: reason}
			}
			if errors.Is(err, http2.ErrFrameTooLarge) {
				return ConnError{Code: http2.ErrCodeFrameSize, Reason: "frame too large"}
			}
			c.mu.Lock()
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return ErrConnClosed
			}
			return err
		}
		c.sawFrame.Store(true)
		if !c.gotSettings {
			sf, ok := f.(*http2.SettingsFrame)
			if !ok || sf.IsAck() {
				return protocolError("first frame from the server is not SETTINGS")
			}
			c.gotSettings = true
		}
		if err := c.process(f); err != nil {
			return err
		}
	}
}

func (c *Conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.processRST(f)
	case *http2.PingFrame:
		c.mu.Lock()
		if f.IsAck() {
			if c.pingOut {
				c.pingOut = false
				c.pingTimer.Stop()
			}
		} else {
			c.wfr.WritePing(true, f.Data)
			c.flushLocked(true)
		}
		c.mu.Unlock()
	case *http2.GoAwayFrame:
		c.processGoAway(f)
	case *http2.PushPromiseFrame:
		return protocolError("PUSH_PROMISE with push disabled")
	}
	// PRIORITY and unknown frame types are ignored.
	return nil
}

// max1xx bounds the informational responses accepted before the final one.
const max1xx = 16

func (c *Conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return protocolError("HEADERS on a server-initiated stream")
	}
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		idle := id >= c.nextID
		c.mu.Unlock()
		if idle {
			return protocolError("HEADERS on an idle stream")
		}
		// A stream reset here; hpack has decoded the block, which keeps
		// the decoder in step.
		return nil
	}
	if s.remoteEnd {
		c.resetLocked(s, http2.ErrCodeStreamClosed, malformed("HEADERS after END_STREAM on stream %d", id))
		c.mu.Unlock()
		return nil
	}
	if f.Truncated {
		c.resetLocked(s, http2.ErrCodeCancel, malformed("header section over %d bytes", c.cfg.MaxHeaderListSize))
		c.mu.Unlock()
		return nil
	}
	if s.gotResp {
		err := c.trailersLocked(s, f)
		if err != nil {
			c.resetLocked(s, http2.ErrCodeProtocol, err)
		}
		c.mu.Unlock()
		return nil
	}
	req := s.req
	c.mu.Unlock()

	// Decoding the response needs no lock: only this goroutine touches a
	// stream's response before it is published.
	resp, code, err := c.decodeResponse(f, req)
	if err != nil {
		c.mu.Lock()
		if c.streams[id] == s {
			c.resetLocked(s, http2.ErrCodeProtocol, err)
		}
		c.mu.Unlock()
		return nil
	}
	if resp == nil {
		return c.informational(s, f, code)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[id] != s || s.err != nil {
		return nil
	}
	s.resp = resp
	s.gotResp = true
	if f.StreamEnded() {
		s.endRemoteLocked()
	}
	s.cond.Broadcast()
	return nil
}

// informational handles a 1xx response: 100 lets a waiting body go, the
// others go to the request's Got1xxResponse hook.
func (c *Conn) informational(s *stream, f *http2.MetaHeadersFrame, code int) error {
	c.mu.Lock()
	if c.streams[s.id] != s {
		c.mu.Unlock()
		return nil
	}
	s.n1xx++
	if f.StreamEnded() || code == http.StatusSwitchingProtocols || s.n1xx > max1xx {
		c.resetLocked(s, http2.ErrCodeProtocol, malformed("informational response %d on stream %d", code, s.id))
		c.mu.Unlock()
		return nil
	}
	if code == http.StatusContinue {
		s.got100 = true
		s.cond.Broadcast()
	}
	c.mu.Unlock()
	if trace := httptrace.ContextClientTrace(s.req.Context()); trace != nil && trace.Got1xxResponse != nil {
		h := make(textproto.MIMEHeader)
		for _, hf := range f.RegularFields() {
			k := c.names.Canonical(hf.Name)
			h[k] = append(h[k], hf.Value)
		}
		if err := trace.Got1xxResponse(code, h); err != nil {
			c.mu.Lock()
			if c.streams[s.id] == s {
				c.resetLocked(s, http2.ErrCodeCancel, err)
			}
			c.mu.Unlock()
		}
	}
	return nil
}

// decodeResponse checks a response header block and builds the response;
// for an informational one it returns a nil response and the code.
func (c *Conn) decodeResponse(f *http2.MetaHeadersFrame, req *http.Request) (*http.Response, int, error) {
	var status string
	for _, pf := range f.PseudoFields() {
		if pf.Name != ":status" || status != "" {
			return nil, 0, malformed("pseudo-field %s in a response", pf.Name)
		}
		status = pf.Value
	}
	code, err := strconv.Atoi(status)
	if len(status) != 3 || err != nil || code < 100 {
		return nil, 0, malformed(":status %q", status)
	}
	if code < 200 {
		return nil, code, nil
	}
	regular := f.RegularFields()
	h := make(http.Header, len(regular))
	// One backing array for the values, cut into one-element slices.
	vals := make([]string, len(regular))
	cl := int64(-1)
	var trailer http.Header
	for i, hf := range regular {
		k := c.names.Canonical(hf.Name)
		if h2wire.ConnectionSpecific(k) {
			return nil, 0, malformed("connection-specific field %s", hf.Name)
		}
		switch k {
		case "Content-Length":
			n, ok := h1wire.ParseLength(hf.Value)
			if !ok || cl >= 0 && n != cl {
				return nil, 0, malformed("content-length %q", hf.Value)
			}
			if cl >= 0 {
				continue // an identical repeat
			}
			cl = n
		case "Trailer":
			h1wire.ForEachToken(hf.Value, func(t string) {
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[http.CanonicalHeaderKey(t)] = nil
			})
		}
		if vv := h[k]; vv != nil {
			h[k] = append(vv, hf.Value)
			continue
		}
		vals[i] = hf.Value
		h[k] = vals[i : i+1 : i+1]
	}
	resp := &http.Response{
		Status:        statusLine(code, status),
		StatusCode:    code,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        h,
		Trailer:       trailer,
		ContentLength: cl,
		Request:       req,
		TLS:           c.tls,
	}
	if f.StreamEnded() && req.Method != http.MethodHead {
		if cl > 0 {
			return nil, 0, malformed("content-length %d with END_STREAM on the header", cl)
		}
		resp.ContentLength = 0
	}
	return resp, code, nil
}

// statusLines holds Response.Status for every code with a text.
var statusLines = func() (t [600]string) {
	for code := range t {
		if txt := http.StatusText(code); txt != "" {
			t[code] = strconv.Itoa(code) + " " + txt
		}
	}
	return
}()

// statusLine returns Response.Status for code, given as status.
func statusLine(code int, status string) string {
	if code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return status + " " + http.StatusText(code)
}

// trailersLocked takes a trailer section, which must end the stream and
// carry no pseudo-field.
func (c *Conn) trailersLocked(s *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		return malformed("second header block without END_STREAM on stream %d", s.id)
	}
	if len(f.PseudoFields()) > 0 {
		return malformed("pseudo-field in trailers on stream %d", s.id)
	}
	regular := f.RegularFields()
	t := make(http.Header, len(regular))
	for _, hf := range regular {
		k := c.names.Canonical(hf.Name)
		if h2wire.ConnectionSpecific(k) {
			return malformed("connection-specific field %s in trailers", hf.Name)
		}
		t[k] = append(t[k], hf.Value)
	}
	s.trailer = t
	s.endRemoteLocked()
	s.cond.Broadcast()
	return nil
}

func (c *Conn) processData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > c.recvWindow {
		return ConnError{Code: http2.ErrCodeFlowControl, Reason: "DATA over the connection window"}
	}
	c.recvWindow -= n
	s := c.streams[id]
	if s == nil || s.bodyGone {
		if s == nil && id >= c.nextID {
			return protocolError("DATA on an idle stream")
		}
		// A stream reset or closed here: nobody reads it.
		if c.consumedLocked(n) {
			c.flushLocked(true)
		}
		return nil
	}
	if !s.gotResp {
		c.resetLocked(s, http2.ErrCodeProtocol, malformed("DATA before the response header on stream %d", id))
		return nil
	}
	if s.remoteEnd {
		c.resetLocked(s, http2.ErrCodeStreamClosed, malformed("DATA after END_STREAM on stream %d", id))
		return nil
	}
	if n > s.recvWindow {
		c.resetLocked(s, http2.ErrCodeFlowControl, malformed("DATA over the window of stream %d", id))
		return nil
	}
	s.recvWindow -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		// Padding is consumed on arrival.
		s.recvUnack += pad
		c.consumedLocked(pad)
	}
	s.recvd += int64(len(data))
	if cl := s.resp.ContentLength; cl >= 0 && s.recvd > cl {
		c.resetLocked(s, http2.ErrCodeProtocol, malformed("more DATA than content-length %d on stream %d", cl, id))
		return nil
	}
	s.in = append(s.in, data...)
	if f.StreamEnded() {
		s.endRemoteLocked()
	}
	s.cond.Broadcast()
	return nil
}
