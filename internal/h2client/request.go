package h2client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h1wire"
	"github.com/rauta/rauta/internal/h2wire"
)

// reqHead is what checkRequest worked out of a request for its HEADERS.
type reqHead struct {
	method, scheme, authority, path string
	cl                              int64 // content-length to send, -1 for none
	te                              bool  // send "te: trailers"
	size                            uint64
}

// checkRequest validates what the request's header block will carry, so
// that encoding it (which changes the connection's HPACK state) cannot
// fail half way. Fields that HTTP/2 forbids or that the client writes
// itself are left out; invalid names or values refuse the request.
func checkRequest(req *http.Request, scheme string) (reqHead, error) {
	var h reqHead
	h.method = req.Method
	if h.method == "" {
		h.method = http.MethodGet
	}
	if !h1wire.ValidToken(h.method) {
		return h, fmt.Errorf("h2client: invalid method %q", h.method)
	}
	if req.URL == nil {
		return h, errors.New("h2client: request without URL")
	}
	h.authority = req.Host
	if h.authority == "" {
		h.authority = req.URL.Host
	}
	if !h1wire.ValidHost(h.authority) {
		return h, fmt.Errorf("h2client: invalid authority %q", h.authority)
	}
	if h.method != http.MethodConnect {
		h.scheme = scheme
		h.path = requestPath(req.URL)
		for i := 0; i < len(h.path); i++ {
			if b := h.path[i]; b <= ' ' || b == 0x7f {
				return h, fmt.Errorf("h2client: invalid path %q", h.path)
			}
		}
	} else if h.authority == "" {
		return h, errors.New("h2client: CONNECT without authority")
	}
	h.size = fieldSize(":method", h.method) + fieldSize(":authority", h.authority) +
		fieldSize(":scheme", h.scheme) + fieldSize(":path", h.path)
	for k, vv := range req.Header {
		lk, send := requestField(k)
		if !send {
			continue
		}
		if !h2wire.ValidFieldName(lk) {
			return h, fmt.Errorf("h2client: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !h1wire.ValidFieldValue(v) {
				return h, fmt.Errorf("h2client: invalid value for header field %q", k)
			}
			h.size += fieldSize(lk, v)
		}
	}
	h.te = h1wire.HasToken(req.Header["Te"], "trailers")
	hasBody := req.Body != nil && req.Body != http.NoBody
	h.cl = -1
	switch {
	case hasBody && req.ContentLength > 0:
		h.cl = req.ContentLength
	case !hasBody:
		switch h.method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			h.cl = 0
		}
	}
	for k := range req.Trailer {
		if lk, send := requestField(k); !send || !h2wire.ValidFieldName(lk) {
			return h, fmt.Errorf("h2client: invalid trailer field %q", k)
		}
	}
	return h, nil
}

// requestPath is the :path of u: its escaped path and query, as
// URL.RequestURI gives them, without allocating for a path that needs no
// escaping and has no query.
func requestPath(u *url.URL) string {
	if u.Opaque != "" {
		return u.RequestURI()
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.ForceQuery || u.RawQuery != "" {
		return p + "?" + u.RawQuery
	}
	return p
}

// fieldSize is a field's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it.
func fieldSize(name, value string) uint64 { return uint64(len(name) + len(value) + 32) }

// requestField returns the wire name of a request field and whether it is
// sent as it is: Host, the framing fields, the connection-specific ones
// and TE are not (TE goes as "te: trailers" when it asks for them).
func requestField(k string) (string, bool) {
	if h2wire.ConnectionSpecific(k) {
		return "", false
	}
	lk := h2wire.Lower(k)
	switch lk {
	case "host", "content-length", "te", "trailer":
		return "", false
	}
	return lk, true
}

// writeRequestHeadersLocked encodes the request's header block.
func (c *Conn) writeRequestHeadersLocked(id uint32, req *http.Request, h reqHead, end bool) {
	c.hbuf.Reset()
	c.field(":method", h.method)
	c.field(":authority", h.authority)
	if h.method != http.MethodConnect {
		c.field(":scheme", h.scheme)
		c.field(":path", h.path)
	}
	for k, vv := range req.Header {
		lk, send := requestField(k)
		if !send {
			continue
		}
		sensitive := neverIndexed(lk)
		for _, v := range vv {
			c.enc.WriteField(hpack.HeaderField{Name: lk, Value: v, Sensitive: sensitive})
		}
	}
	if h.te {
		c.field("te", "trailers")
	}
	if len(req.Trailer) > 0 {
		keys := make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			keys = append(keys, k)
		}
		c.field("trailer", strings.Join(keys, ", "))
	}
	if h.cl >= 0 {
		c.field("content-length", strconv.FormatInt(h.cl, 10))
	}
	h2wire.WriteBlock(c.wfr, id, c.hbuf.Bytes(), c.peerFrame, end)
}

// neverIndexed reports the fields kept out of the HPACK dynamic table
// (RFC 7541 section 7.1.3): a proxy multiplexes the requests of many
// clients on one connection, and one client's requests must not let it
// probe another's credentials through the table.
func neverIndexed(name string) bool {
	switch name {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	return false
}

func (c *Conn) field(name, value string) {
	c.enc.WriteField(hpack.HeaderField{Name: name, Value: value})
}

// bodyBufs holds the buffers request bodies are read into.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// writeBody sends the request body, then its trailers or END_STREAM,
// within the server's flow control windows. It runs on its own goroutine
// so that the response can arrive, and stream, while it does.
func (s *stream) writeBody() {
	req := s.req
	defer req.Body.Close()
	if h1wire.HasToken(req.Header["Expect"], "100-continue") && !s.awaitContinue() {
		return
	}
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	buf := *bp
	var sent int64
	for {
		n, err := req.Body.Read(buf)
		sent += int64(n)
		if cl := req.ContentLength; cl > 0 && (sent > cl || err == io.EOF && sent < cl) {
			s.abort(fmt.Errorf("h2client: request body of %d bytes, ContentLength %d: %w", sent, cl, io.ErrUnexpectedEOF))
			return
		}
		if err != nil && err != io.EOF {
			s.abort(fmt.Errorf("h2client: reading request body: %w", err))
			return
		}
		end := err == io.EOF && len(req.Trailer) == 0
		if (n > 0 || end) && !s.sendData(buf[:n], end) {
			return
		}
		if err == io.EOF {
			if !end {
				s.sendTrailers()
			}
			return
		}
	}
}

// awaitContinue waits for 100 Continue, a final response, or
// ExpectContinueTimeout; it reports whether the body should be sent.
func (s *stream) awaitContinue() bool {
	c := s.c
	t := time.AfterFunc(c.cfg.ExpectContinueTimeout, func() {
		c.mu.Lock()
		s.waitTimer = true
		s.cond.Broadcast()
		c.mu.Unlock()
	})
	defer t.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for !s.got100 && !s.gotResp && !s.waitTimer && !s.stopSend {
		s.cond.Wait()
	}
	if s.stopSend {
		return false
	}
	if s.gotResp && !s.got100 {
		// The server answered without asking for the body: the
		// request ends here, without it.
		if c.streams[s.id] == s {
			c.wfr.WriteRSTStream(s.id, http2.ErrCodeCancel)
			s.stopSendingLocked()
			c.flushLocked(false)
			if s.remoteEnd {
				c.streamEndedLocked(s)
			}
		}
		return false
	}
	return true
}

// sendData sends p as DATA frames as the windows allow, the last with
// END_STREAM if end; it reports false when the stream stopped sending.
func (s *stream) sendData(p []byte, end bool) bool {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s.stopSend || c.closed {
			return false
		}
		// A window may be negative after the server lowered
		// SETTINGS_INITIAL_WINDOW_SIZE; an empty END_STREAM needs none.
		n := max(min(int64(len(p)), s.sendWindow, c.sendWindow, int64(c.peerFrame)), 0)
		if n == 0 && len(p) > 0 {
			s.sending = true
			s.cond.Wait()
			s.sending = false
			continue
		}
		last := end && int(n) == len(p)
		c.wfr.WriteData(s.id, last, p[:n])
		s.sendWindow -= n
		c.sendWindow -= n
		p = p[n:]
		if last {
			s.endLocalLocked()
		}
		c.flushLocked(false)
		if len(p) == 0 {
			return true
		}
	}
}

// sendTrailers ends the stream with the request's trailers.
func (s *stream) sendTrailers() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.stopSend || c.closed {
		return
	}
	c.hbuf.Reset()
	for k, vv := range s.req.Trailer {
		lk, _ := requestField(k)
		for _, v := range vv {
			if h1wire.ValidFieldValue(v) {
				c.field(lk, v)
			}
		}
	}
	h2wire.WriteBlock(c.wfr, s.id, c.hbuf.Bytes(), c.peerFrame, true)
	s.endLocalLocked()
	c.flushLocked(false)
}

// endLocalLocked notes the END_STREAM just queued.
func (s *stream) endLocalLocked() {
	s.localEnd = true
	s.stopSend = true
	if s.remoteEnd {
		s.c.streamEndedLocked(s)
	}
}

// abort resets the stream after its request body failed.
func (s *stream) abort(err error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams[s.id] == s {
		c.resetLocked(s, http2.ErrCodeCancel, err)
	}
}
