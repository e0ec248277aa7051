package h2server

import (
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/h2wire"
)

// headerBlock is a header block being read: a HEADERS frame and its
// CONTINUATION frames.
type headerBlock struct {
	id        uint32
	endStream bool
	frames    int
	bytes     int
	size      uint32 // decoded size, RFC 9113 section 6.5.2
	fields    []hpack.HeaderField
	sawReg    bool
	invalid   bool // a field that makes the request malformed
	tooLarge  bool // over MaxHeaderListSize: answered 431
	bomb      bool // over bombFactor times MaxHeaderListSize
	selfDep   bool
}

// onField receives the decoded fields of the block being read.
func (c *conn) onField(f hpack.HeaderField) {
	hb := &c.hb
	hb.size += f.Size()
	if hb.size > c.maxList {
		if uint64(hb.size) > uint64(c.maxList)*bombFactor {
			hb.bomb = true
			c.dec.SetEmitEnabled(false)
			return
		}
		hb.tooLarge = true
		return
	}
	if hb.invalid || hb.tooLarge {
		return
	}
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		hb.invalid = true
		return
	}
	if strings.HasPrefix(f.Name, ":") {
		if hb.sawReg {
			hb.invalid = true
			return
		}
	} else {
		hb.sawReg = true
		if !h2wire.ValidFieldName(f.Name) {
			hb.invalid = true
			return
		}
	}
	hb.fields = append(hb.fields, f)
}

func (c *conn) processHeaders(f *http2.HeadersFrame) error {
	if f.StreamID%2 == 0 {
		return protoErr()
	}
	c.hb = headerBlock{id: f.StreamID, endStream: f.StreamEnded(), fields: c.hb.fields[:0]}
	if f.HasPriority() && f.Priority.StreamDep == f.StreamID {
		c.hb.selfDep = true
	}
	c.dec.SetEmitEnabled(true)
	return c.fragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *conn) processContinuation(f *http2.ContinuationFrame) error {
	return c.fragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// fragment decodes one fragment of a header block.
func (c *conn) fragment(frag []byte, end bool) error {
	hb := &c.hb
	hb.frames++
	hb.bytes += len(frag)
	if hb.frames > c.maxFrames || uint64(hb.bytes) > 2*uint64(c.maxList)+16<<10 {
		return limitErr(ContinuationFlood)
	}
	if len(frag) == 0 && !end {
		if !c.empties.take(time.Now().UnixNano(), rate(c.srv.EmptyFramesPerSecond, DefaultEmptyFramesPerSecond)) {
			return limitErr(EmptyFrameFlood)
		}
	}
	if _, err := c.dec.Write(frag); err != nil {
		if errors.Is(err, hpack.ErrStringLength) {
			// One string longer than the whole header list may be.
			return limitErr(HPACKBomb)
		}
		return connError{code: http2.ErrCodeCompression, limit: numLimits}
	}
	if hb.bomb {
		return limitErr(HPACKBomb)
	}
	if !end {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return connError{code: http2.ErrCodeCompression, limit: numLimits}
	}
	return c.endHeaders()
}

// endHeaders acts on a complete header block: a new request, or the
// trailers of one.
func (c *conn) endHeaders() error {
	hb := &c.hb
	id := hb.id
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		if s.remoteClosed {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
		}
		if !hb.endStream || hb.invalid || hb.selfDep {
			return http2.StreamError{StreamID: id, Code: errCodeProtocol}
		}
		return c.trailersLocked(s, hb)
	}
	if id <= c.maxID {
		return protoErr()
	}
	if c.draining {
		// After GOAWAY, new streams are ignored (RFC 9113 section 6.8).
		return nil
	}
	c.maxID = id
	if hb.invalid || hb.selfDep {
		return http2.StreamError{StreamID: id, Code: errCodeProtocol}
	}
	max := int(c.srv.maxStreams())
	if len(c.streams) >= max || c.handlers >= max {
		c.srv.hit(ConcurrentStreams)
		if !c.resets.take(time.Now().UnixNano(), rate(c.srv.ResetsPerSecond, DefaultResetsPerSecond)) {
			return limitErr(RapidReset)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	if hb.tooLarge {
		c.srv.hit(HeaderListSize)
		s := c.newStreamLocked(id, hb.endStream)
		s.respondLocked(http.StatusRequestHeaderFieldsTooLarge)
		return nil
	}
	// The request is built here and copied once, with its context, by
	// start; its URL lives in the stream.
	var req http.Request
	var u url.URL
	if err := c.newRequest(hb, &req, &u); err != nil {
		c.srv.logger().Debug("h2server: malformed request", "remote", c.remoteAddr, "error", err)
		return http2.StreamError{StreamID: id, Code: errCodeProtocol, Cause: err}
	}
	s := c.newStreamLocked(id, hb.endStream)
	s.url = u
	req.URL = &s.url
	if v := req.Header["Content-Length"]; len(v) > 0 {
		s.declLen = req.ContentLength
	}
	if hb.endStream {
		req.ContentLength = 0
		req.Body = http.NoBody
		if s.declLen > 0 {
			c.removeStreamLocked(s)
			s.cancel()
			return http2.StreamError{StreamID: id, Code: errCodeProtocol}
		}
	} else {
		s.body.s = s
		req.Body = &s.body
		s.needsContinue = httpguts.HeaderValuesContainsToken(req.Header["Expect"], "100-continue")
		if s.needsContinue {
			delete(req.Header, "Expect")
		}
	}
	s.start(&req)
	return nil
}

// trailersLocked takes the trailers of a request body.
func (c *conn) trailersLocked(s *stream, hb *headerBlock) error {
	for _, f := range hb.fields {
		if strings.HasPrefix(f.Name, ":") {
			return http2.StreamError{StreamID: s.id, Code: errCodeProtocol}
		}
	}
	if s.trailer != nil {
		// Kept aside: they reach req.Trailer on the goroutine that
		// reads the body to its end, as net/http's contract wants (the
		// map may be read before then, to declare trailers upstream).
		for _, f := range hb.fields {
			k := c.names.Canonical(f.Name)
			if _, ok := s.trailer[k]; ok {
				s.gotTrailers = append(s.gotTrailers, hpack.HeaderField{Name: k, Value: f.Value})
			}
		}
	}
	c.endBodyLocked(s)
	return nil
}

// connectionFields are the fields RFC 9113 section 8.2.2 forbids.
var connectionFields = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"transfer-encoding": true, "upgrade": true,
}

// errors naming why a request is malformed.
var (
	errPseudo        = errors.New("unknown, duplicate or missing pseudo-header field")
	errConnectionHdr = errors.New("connection-specific header field")
	errTE            = errors.New(`te other than "trailers"`)
	errPath          = errors.New("invalid :path")
	errMethod        = errors.New("invalid :method")
	errAuthority     = errors.New("invalid :authority or host")
	errContentLength = errors.New("invalid or differing content-length")
)

// newRequest fills r and its URL u (r.URL is left for the caller to
// point at u) from a header block, refusing what RFC 9113 section 8 calls
// malformed.
func (c *conn) newRequest(hb *headerBlock, r *http.Request, u *url.URL) error {
	var method, scheme, authority, path, protocol string
	var seen uint8
	nReg := 0
	for _, f := range hb.fields {
		if !strings.HasPrefix(f.Name, ":") {
			nReg++
			continue
		}
		var bit uint8
		switch f.Name {
		case ":method":
			bit, method = 1, f.Value
		case ":scheme":
			bit, scheme = 2, f.Value
		case ":authority":
			bit, authority = 4, f.Value
		case ":path":
			bit, path = 8, f.Value
		case ":protocol":
			if !c.srv.EnableConnectProtocol {
				// Extended CONNECT is not offered.
				return errPseudo
			}
			bit, protocol = 16, f.Value
		default:
			// :status and others.
			return errPseudo
		}
		if seen&bit != 0 {
			return errPseudo
		}
		seen |= bit
	}
	if method == "" || !validFieldNameAnyCase(method) {
		return errMethod
	}
	connect := method == http.MethodConnect
	extended := seen&16 != 0 // extended CONNECT, RFC 8441 section 4
	switch {
	case extended:
		if !connect || !validFieldNameAnyCase(protocol) || path == "" || authority == "" || scheme != "http" && scheme != "https" {
			return errPseudo
		}
	case connect:
		if seen&(2|8) != 0 || authority == "" {
			return errPseudo
		}
	case path == "" || scheme != "http" && scheme != "https":
		return errPseudo
	}

	h := make(http.Header, nReg)
	// The first value of each name is a one-element slice of vals, so
	// that a request costs one slice for its values, not one per field;
	// the capacity limit makes a second value copy, not overwrite.
	vals := make([]string, nReg)
	for _, f := range hb.fields {
		if strings.HasPrefix(f.Name, ":") {
			continue
		}
		if connectionFields[f.Name] {
			return errConnectionHdr
		}
		if f.Name == "te" && f.Value != "trailers" {
			return errTE
		}
		k := c.names.Canonical(f.Name)
		if vv, ok := h[k]; ok {
			h[k] = append(vv, f.Value)
			continue
		}
		vals[0] = f.Value
		h[k], vals = vals[:1:1], vals[1:]
	}
	if cookies := h["Cookie"]; len(cookies) > 1 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if hosts := h["Host"]; len(hosts) > 0 {
		if len(hosts) > 1 || authority != "" && hosts[0] != authority {
			return errAuthority
		}
		if authority == "" {
			authority = hosts[0]
		}
		delete(h, "Host")
	}
	if strings.IndexByte(authority, '@') >= 0 || authority != "" && !httpguts.ValidHostHeader(authority) {
		return errAuthority
	}

	*r = http.Request{
		Method:     method,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     h,
		Host:       authority,
		RemoteAddr: c.remoteAddr,
	}
	if scheme == "https" || connect && !extended {
		r.TLS = c.tlsState
	}
	if extended {
		// Where net/http and x/net put it.
		h[":protocol"] = []string{protocol}
	}
	if connect && !extended {
		*u = url.URL{Host: authority}
		r.RequestURI = authority
	} else {
		if !validPath(path) || !parsePath(path, u) {
			return errPath
		}
		r.RequestURI = path
	}
	r.ContentLength = -1
	if v := h["Content-Length"]; len(v) > 0 {
		for _, x := range v[1:] {
			if x != v[0] {
				return errContentLength
			}
		}
		n, err := strconv.ParseUint(v[0], 10, 63)
		if err != nil || v[0][0] == '+' {
			return errContentLength
		}
		r.ContentLength = int64(n)
		if len(v) > 1 {
			// Equal values: one is kept, as x/net and net/http do.
			h["Content-Length"] = v[:1]
		}
	}
	for _, v := range h["Trailer"] {
		for key := range strings.SplitSeq(v, ",") {
			key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key))
			switch key {
			case "", "Transfer-Encoding", "Trailer", "Content-Length":
			default:
				if r.Trailer == nil {
					r.Trailer = make(http.Header)
				}
				r.Trailer[key] = nil
			}
		}
	}
	delete(h, "Trailer")
	return nil
}

// validFieldNameAnyCase reports whether s is a token (a method).
func validFieldNameAnyCase(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return s != ""
}

// parsePath sets u to the URL of an origin-form :path (or "*") that
// validPath accepted, as url.ParseRequestURI would, and reports whether
// it is valid. "*", and a plainPath with a non-empty query or none, are
// taken without allocation; any other goes to url.ParseRequestURI.
func parsePath(p string, u *url.URL) bool {
	if p == "*" {
		*u = url.URL{Path: p}
		return true
	}
	path, query, hasQuery := strings.Cut(p, "?")
	if hasQuery && query == "" || !plainPath(path) {
		v, err := url.ParseRequestURI(p)
		if err != nil {
			return false
		}
		*u = *v
		return true
	}
	*u = url.URL{Path: path, RawQuery: query}
	return true
}

// plainPath reports whether p needs neither unescaping nor escaping by
// net/url: every byte is a letter, a digit, or one of "-._~$&+,;=/:@"
// (net/url escapes the other sub-delimiters), so url.URL's Path is p and
// RawPath empty.
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		b := p[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		default:
			switch b {
			case '-', '.', '_', '~', '$', '&', '+', ',', ';', '=', '/', ':', '@':
			default:
				return false
			}
		}
	}
	return true
}

// validPath reports whether :path is "*" or an origin-form target of
// visible ASCII without a fragment.
func validPath(p string) bool {
	if p == "*" {
		return true
	}
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b <= ' ' || b >= 0x7f || b == '#' {
			return false
		}
	}
	return true
}
