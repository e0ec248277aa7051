package h2server

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h2wire"
)

// holdBytes is how much of a body is held, before Flush, so that a
// short response gets a content-length.
const holdBytes = 16 << 10

// responseWriter is a stream's http.ResponseWriter. Its fields belong to
// the handler's goroutine.
type responseWriter struct {
	s           *stream
	header      http.Header
	status      int
	wroteHeader bool
	hdrQueued   bool
	bodyAllowed bool
	tunnel      bool  // a 2xx answer to CONNECT: no content-length
	clen        int64 // the handler's content-length, or -1
	written     int64
	snap        []hpack.HeaderField
	snapBuf     [8]hpack.HeaderField // snap's first backing array
}

var (
	_ http.Flusher        = (*responseWriter)(nil)
	_ io.StringWriter     = (*responseWriter)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
)

// Header returns the response header map.
func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// WriteHeader sends an informational response at once (1xx other than
// 101, which HTTP/2 has not), or sets the final status and takes a copy
// of the header map.
func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h2server: invalid WriteHeader code " + strconv.Itoa(code))
	}
	s := w.s
	if code < 200 {
		if code == http.StatusSwitchingProtocols {
			return
		}
		fields := w.fields(code, false)
		s.c.mu.Lock()
		if !s.reset && !s.finalQueued {
			s.hdrs = append(s.hdrs, hdrBlock{fields: fields})
			s.c.readyLocked(s)
		}
		s.c.mu.Unlock()
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyAllowed = code != http.StatusNoContent && code != http.StatusNotModified && s.method != http.MethodHead
	if s.method == http.MethodConnect && code < 300 {
		// RFC 9110 section 9.3.6: the tunnel's bytes have no length.
		w.tunnel = true
		delete(w.header, "Content-Length")
	}
	if v := w.header["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseUint(v[0], 10, 63); err == nil && code != http.StatusNoContent && code != http.StatusNotModified {
			w.clen = int64(n)
		} else {
			delete(w.header, "Content-Length")
		}
	}
	w.snap = w.fields(code, true)
}

// fields lists a header block: the status and the handler's fields.
func (w *responseWriter) fields(code int, final bool) []hpack.HeaderField {
	var out []hpack.HeaderField
	if final {
		// The final block is taken once per response.
		out = w.snapBuf[:0]
	} else {
		out = make([]hpack.HeaderField, 0, len(w.header)+2)
	}
	out = append(out, hpack.HeaderField{Name: ":status", Value: statusString(code)})
	sawDate := false
	for k, vv := range w.header {
		if h2wire.ConnectionSpecific(k) || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		lk := h2wire.Lower(k)
		if !h2wire.ValidFieldName(lk) {
			continue
		}
		if lk == "date" {
			sawDate = true
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				out = append(out, hpack.HeaderField{Name: lk, Value: v})
			}
		}
	}
	if final && !sawDate {
		out = append(out, hpack.HeaderField{Name: "date", Value: w.s.c.srv.date()})
	}
	return out
}

// Write queues body bytes; it waits while the stream has 64 KiB queued.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed {
		if w.s.method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	s := w.s
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for n < len(p) {
		if s.writeErr != nil {
			return n, s.writeErr
		}
		buffered := len(s.out) - s.outOff
		if buffered >= maxStreamBuffer {
			w.queueHeadersLocked()
			if !s.blocked {
				// A stream blocked by flow control is queued again
				// by the WINDOW_UPDATE that unblocks it.
				c.readyLocked(s)
			}
			s.wcond.Wait()
			continue
		}
		k := min(len(p)-n, maxStreamBuffer-buffered)
		if s.outOff > 0 && cap(s.out)-len(s.out) < k {
			m := copy(s.out, s.out[s.outOff:])
			s.out, s.outOff = s.out[:m], 0
		}
		s.appendOutLocked(p[n : n+k])
		n += k
		w.written += int64(k)
	}
	buffered := len(s.out) - s.outOff
	if !w.hdrQueued && buffered > holdBytes {
		w.queueHeadersLocked()
	}
	if w.hdrQueued && buffered >= int(c.peerMaxFrame) {
		c.readyLocked(s)
	}
	return n, nil
}

// WriteString is Write of a string.
func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// queueHeadersLocked hands the final header block to the writer.
func (w *responseWriter) queueHeadersLocked() {
	s := w.s
	if w.hdrQueued || s.reset {
		return
	}
	w.hdrQueued = true
	s.finalQueued = true
	s.hdrs = append(s.hdrs, hdrBlock{fields: w.snap, final: true})
	w.snap = nil
}

// Flush hands the headers and the body written so far to the writer.
func (w *responseWriter) Flush() { w.FlushError() }

// FlushError is Flush that reports a stream already reset.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	s := w.s
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.writeErr != nil {
		return s.writeErr
	}
	w.queueHeadersLocked()
	s.c.readyLocked(s)
	return nil
}

// SetReadDeadline sets the deadline of request body reads.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	w.s.setReadDeadline(t)
	return nil
}

// SetWriteDeadline sets the time by which the response must be done; the
// stream is reset then.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	w.s.setWriteDeadline(t)
	return nil
}

// EnableFullDuplex does nothing: HTTP/2 streams are full duplex.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// finish ends the response when the handler returns.
func (w *responseWriter) finish(panicked bool) {
	s := w.s
	c := s.c
	if !panicked && !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var trailers []hpack.HeaderField
	if !panicked {
		trailers = w.trailerFields()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.closeBodyLocked()
	s.cancel()
	switch {
	case s.reset:
	case panicked || w.bodyAllowed && w.clen >= 0 && w.written < w.clen:
		// An aborted handler, or a body short of its content-length:
		// the client must not take it for a complete response. A
		// CONNECT tunnel that failed is a CONNECT_ERROR (RFC 9113
		// section 8.5).
		code := http2.ErrCodeInternal
		if s.method == http.MethodConnect {
			code = http2.ErrCodeConnect
		}
		c.resetStreamLocked(s.id, code)
	default:
		if !w.hdrQueued {
			if w.clen < 0 && w.bodyAllowed && !w.tunnel && len(trailers) == 0 && w.header["Trailer"] == nil {
				w.snap = append(w.snap, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(s.out) - s.outOff)})
			}
			w.queueHeadersLocked()
		}
		s.trailers = trailers
		s.outEnd = true
		c.readyLocked(s)
	}
	s.writeErr = errHandlerDone
	if s.writeTimer != nil && s.reset {
		s.writeTimer.Stop()
	}
}

// trailerFields lists the trailers: the fields declared in the Trailer
// field and those set with http.TrailerPrefix, with a value.
func (w *responseWriter) trailerFields() []hpack.HeaderField {
	var out []hpack.HeaderField
	add := func(k string, vv []string) {
		lk := h2wire.Lower(k)
		if !h2wire.ValidFieldName(lk) || h2wire.ConnectionSpecific(k) {
			return
		}
		switch lk {
		case "content-length", "trailer", "te", "host":
			return
		}
		for _, v := range vv {
			if httpguts.ValidHeaderFieldValue(v) {
				out = append(out, hpack.HeaderField{Name: lk, Value: v})
			}
		}
	}
	for _, decl := range w.header["Trailer"] {
		for k := range strings.SplitSeq(decl, ",") {
			k = http.CanonicalHeaderKey(strings.TrimSpace(k))
			if k != "" {
				add(k, w.header[k])
			}
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			add(name, vv)
		}
	}
	return out
}

// statusStrings holds the decimal form of every status code.
var statusStrings = func() (t [1000]string) {
	for i := 100; i < 1000; i++ {
		t[i] = strconv.Itoa(i)
	}
	return
}()

func statusString(code int) string { return statusStrings[code] }

// dateStamp is a formatted Date value for one second.
type dateStamp struct {
	sec int64
	v   string
}

var dateNow atomic.Pointer[dateStamp]

// date returns the current Date field value, formatted once per second.
func (s *Server) date() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateNow.Load(); d != nil && d.sec == sec {
		return d.v
	}
	d := &dateStamp{sec: sec, v: now.UTC().Format(http.TimeFormat)}
	dateNow.Store(d)
	return d.v
}
