package h1server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rauta/rauta/internal/h1wire"
	"golang.org/x/net/http/httpguts"
)

// preSize is how much body a handler may write before the response head
// is committed: a handler that writes at most this much and returns gets a
// Content-Length; one that writes more (or flushes) gets chunked framing
// (HTTP/1.1) or a close-delimited body (HTTP/1.0).
const preSize = 4 << 10

// response is the http.ResponseWriter of a request. It is part of its
// connection and reused for every request of it.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header

	status      int
	wroteHeader bool // a final status was set
	committed   bool // the head (with framing) is in the write buffer
	chunking    bool
	isHead      bool
	handlerDone bool
	closeAfter  bool // close the connection after this response
	fullDuplex  bool
	hasDate     bool
	trailers    bool // trailers declared (Trailer or http.TrailerPrefix)

	cl      int64 // Content-Length declared by the handler, or -1
	written int64 // body bytes accepted from the handler
	pre     []byte

	connField    []string // the handler's Connection values
	trailerField []string // the handler's Trailer values
	err          error    // first write error
}

func (w *response) reset(c *conn, req *http.Request) {
	hdr := w.header
	*w = response{c: c, req: req, header: hdr, cl: -1, isHead: req.Method == http.MethodHead}
	if w.header == nil {
		w.header = make(http.Header)
	}
}

// Header returns the response header map.
func (w *response) Header() http.Header { return w.header }

func (w *response) logf(format string, args ...any) {
	w.c.srv.logger().Warn(fmt.Sprintf(format, args...), "remote", w.c.remoteAddr)
}

// WriteHeader sends an informational (1xx other than 101) response at
// once, or records the final status and the header fields as they are
// now: changes to the map after WriteHeader only matter for trailers.
func (w *response) WriteHeader(code int) {
	if w.c.hijacked.Load() {
		w.logf("h1server: WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		w.logf("h1server: superfluous WriteHeader call")
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.c.disableContinue()
	w.wroteHeader = true
	w.status = code
	bw := w.c.wb.bw
	writeStatusLine(bw, code)
	for k, vv := range w.header {
		switch k {
		case "Content-Length":
			if len(vv) > 0 {
				if n, ok := h1wire.ParseLength(h1wire.TrimOWS(vv[0])); ok {
					w.cl = n
				} else {
					w.logf("h1server: invalid Content-Length %q", vv[0])
				}
			}
			continue
		case "Transfer-Encoding":
			continue
		case "Connection":
			w.connField = vv
			continue
		case "Date":
			w.hasDate = true
		case "Trailer":
			w.trailerField = vv
			w.trailers = w.trailers || len(vv) > 0
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.trailers = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
}

// writeInformational writes a 1xx response with the current header fields.
// Like net/http, it does not clear the header map (RFC 8297).
func (w *response) writeInformational(code int) {
	c := w.c
	if code == http.StatusContinue {
		c.disableContinue()
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	bw := c.wb.bw
	writeStatusLine(bw, code)
	for k, vv := range w.header {
		if k == "Content-Length" || k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		w.fail(err)
	}
}

// bodyAllowed reports whether the status allows a body (RFC 9110
// section 6.4.1).
func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

// Write writes body bytes. Before the head is committed they are held
// back (up to preSize) so that a short response gets a Content-Length and
// goes out with its head in one write.
func (w *response) Write(p []byte) (int, error) {
	if err := w.beforeWrite(len(p)); err != nil {
		return 0, err
	}
	if w.isHead {
		return len(p), nil
	}
	if !w.committed {
		if w.cl < 0 && len(w.pre)+len(p) <= preSize {
			w.pre = append(w.pre, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	return w.writeBody(p)
}

// WriteString is Write for a string, without converting it.
func (w *response) WriteString(s string) (int, error) {
	if err := w.beforeWrite(len(s)); err != nil {
		return 0, err
	}
	if w.isHead {
		return len(s), nil
	}
	if !w.committed {
		if w.cl < 0 && len(w.pre)+len(s) <= preSize {
			w.pre = append(w.pre, s...)
			return len(s), nil
		}
		w.commit(false)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(s) == 0 {
		return 0, nil
	}
	bw := w.c.wb.bw
	if w.chunking {
		writeChunkHeader(bw, len(s))
	}
	n, err := bw.WriteString(s)
	if err == nil && w.chunking {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.fail(err)
	}
	return n, err
}

// beforeWrite does what every body write starts with: the implicit 200,
// the checks, and the byte count.
func (w *response) beforeWrite(n int) error {
	if w.c.hijacked.Load() {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return w.err
	}
	if w.cl >= 0 && w.written+int64(n) > w.cl {
		return http.ErrContentLength
	}
	w.written += int64(n)
	return nil
}

func (w *response) writeBody(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	bw := w.c.wb.bw
	if w.chunking {
		writeChunkHeader(bw, len(p))
	}
	n, err := bw.Write(p)
	if err == nil && w.chunking {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.fail(err)
	}
	return n, err
}

// fail records a write error: the client is gone or too slow. The
// request's context is cancelled and the connection will be closed.
func (w *response) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.closeAfter = true
	w.c.clientGone()
}

// commit writes the framing fields and the end of the head, then any
// held-back body. final is set when the handler has returned, so the
// whole body is known.
func (w *response) commit(final bool) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c := w.c
	if !final && !w.fullDuplex {
		// Like net/http: a handler that answers without having read the
		// request body gets it discarded first, so that a client that
		// sends its whole request before reading cannot deadlock with us.
		c.settleBody(false)
	}
	if c.mustClose() {
		w.closeAfter = true
	}
	if h1wire.HasToken(w.connField, "close") {
		w.closeAfter = true
	}
	bw := c.wb.bw
	switch {
	case w.status == http.StatusSwitchingProtocols:
		// The handler takes the connection over (or it is closed).
		w.closeAfter = true
	case !bodyAllowed(w.status):
		if w.status == http.StatusNotModified && w.cl >= 0 {
			writeLength(bw, w.cl)
		}
	case w.isHead:
		if w.cl >= 0 {
			writeLength(bw, w.cl)
		} else if final && !w.trailers && w.written > 0 && w.written <= preSize {
			writeLength(bw, w.written)
		}
	case w.cl >= 0:
		if final && w.written != w.cl {
			w.closeAfter = true
		}
		writeLength(bw, w.cl)
	case final && !w.trailers:
		writeLength(bw, int64(len(w.pre)))
	case w.req.ProtoMinor >= 1:
		w.chunking = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		// HTTP/1.0 without a length: the body ends when the connection
		// does.
		w.closeAfter = true
	}
	switch {
	case w.status == http.StatusSwitchingProtocols:
		for _, v := range w.connField {
			writeField(bw, "Connection", v)
		}
	case w.closeAfter:
		if w.req.ProtoMinor >= 1 {
			bw.WriteString("Connection: close\r\n")
		}
	case w.req.ProtoMinor == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	default:
		for _, v := range w.connField {
			writeField(bw, "Connection", v)
		}
	}
	if !w.hasDate {
		bw.WriteString("Date: ")
		bw.Write(c.srv.date())
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	w.committed = true
	if len(w.pre) > 0 {
		pre := w.pre
		w.pre = w.pre[:0]
		w.writeBody(pre)
	}
}

// finish completes the response after the handler returned: the held-back
// body, the last chunk and trailers, and the flush.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	} else if w.cl >= 0 && w.written != w.cl && bodyAllowed(w.status) && !w.isHead {
		// A declared length not met: the client must not wait for the
		// rest on this connection.
		w.closeAfter = true
	}
	bw := w.c.wb.bw
	if w.chunking && w.err == nil {
		bw.WriteString("0\r\n")
		w.writeTrailers(bw)
		bw.WriteString("\r\n")
	}
	if w.err == nil {
		if err := bw.Flush(); err != nil {
			w.fail(err)
		}
	}
}

// writeTrailers writes the trailer fields: those declared in the Trailer
// field, and those set with the http.TrailerPrefix prefix. Fields not
// allowed in trailers (RFC 9110 section 6.5.1) are dropped.
func (w *response) writeTrailers(bw *bufio.Writer) {
	var seen [8]string
	nseen := 0
	for _, v := range w.trailerField {
		h1wire.ForEachToken(v, func(k string) {
			k = http.CanonicalHeaderKey(k)
			if !httpguts.ValidHeaderFieldName(k) || !httpguts.ValidTrailerHeader(k) {
				return
			}
			for _, s := range seen[:nseen] {
				if s == k {
					return
				}
			}
			if nseen < len(seen) {
				seen[nseen] = k
				nseen++
			}
			for _, val := range w.header[k] {
				writeField(bw, k, val)
			}
		})
	}
	for k, vv := range w.header {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok {
			continue
		}
		name = http.CanonicalHeaderKey(name)
		if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidTrailerHeader(name) {
			continue
		}
		for _, v := range vv {
			writeField(bw, name, v)
		}
	}
}

// Flush sends what the handler wrote so far. It commits the head: a
// response flushed before the handler returns has no Content-Length
// unless the handler set one.
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush returning the write error, for
// http.ResponseController.
func (w *response) FlushError() error {
	if w.c.hijacked.Load() {
		return http.ErrHijacked
	}
	if !w.committed {
		w.commit(false)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.c.wb.bw.Flush(); err != nil {
		w.fail(err)
		return err
	}
	return nil
}

// Hijack hands the connection to the handler: the net.Conn with its
// deadlines cleared, and a ReadWriter whose reader holds any bytes already
// read after the request head. A response head written with WriteHeader
// is sent first. The server neither reads, writes nor closes the
// connection afterwards, and ConnState reports http.StateHijacked.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.c.hijack(w)
}

// SetReadDeadline sets the connection's read deadline, for
// http.ResponseController. It lasts until the handler returns.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rdl = true
	return w.c.rwc.SetReadDeadline(t)
}

// SetWriteDeadline sets the connection's write deadline, for
// http.ResponseController. It lasts until the handler returns.
func (w *response) SetWriteDeadline(t time.Time) error {
	w.c.wdl = true
	return w.c.rwc.SetWriteDeadline(t)
}

// EnableFullDuplex lets the handler keep reading the request body after it
// started the response, for http.ResponseController. Reading the body while
// writing the response is always possible; this only stops the server from
// discarding an untouched body when the head is flushed early.
func (w *response) EnableFullDuplex() error {
	w.fullDuplex = true
	return nil
}

// Wire helpers --------------------------------------------------------

// The helpers below format numbers into bw.AvailableBuffer, which costs no
// allocation while the buffer has room.

func writeStatusLine(bw *bufio.Writer, code int) {
	b := append(bw.AvailableBuffer(), "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	b = append(b, '\r', '\n')
	bw.Write(b)
}

// writeField writes one field line. Like net/http, it replaces CR and LF
// in the value by spaces (so a value cannot start a new line) and trims
// surrounding white space.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	v = trimSpaceCRLF(v)
	clean := true
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			clean = false
			break
		}
	}
	if clean {
		bw.WriteString(v)
	} else {
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			bw.WriteByte(c)
		}
	}
	bw.WriteString("\r\n")
}

// trimSpaceCRLF removes leading and trailing spaces, tabs, CRs and LFs.
func trimSpaceCRLF(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '\r' || v[0] == '\n') {
		v = v[1:]
	}
	for len(v) > 0 {
		c := v[len(v)-1]
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			break
		}
		v = v[:len(v)-1]
	}
	return v
}

// writeLength writes a Content-Length field.
func writeLength(bw *bufio.Writer, n int64) {
	b := append(bw.AvailableBuffer(), "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\r', '\n')
	bw.Write(b)
}

func writeChunkHeader(bw *bufio.Writer, n int) {
	b := strconv.AppendUint(bw.AvailableBuffer(), uint64(n), 16)
	b = append(b, '\r', '\n')
	bw.Write(b)
}
