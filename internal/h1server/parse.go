package h1server

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// protoError is a request the server refuses: the status code it answers
// with and a fixed reason. The reason never echoes client input.
type protoError struct {
	code   int
	reason string
}

func (e *protoError) Error() string { return "h1server: " + e.reason }

func badRequest(reason string) *protoError { return &protoError{http.StatusBadRequest, reason} }

// Errors of the request head. They are values, compared by identity in
// tests, and never modified.
var (
	errBareLF          = badRequest("line not terminated by CRLF")
	errBareCR          = badRequest("bare CR in request head")
	errEmptyRequest    = badRequest("empty request line")
	errRequestLine     = badRequest("malformed request line")
	errMethod          = badRequest("invalid method")
	errTarget          = badRequest("invalid request target")
	errVersion         = badRequest("malformed HTTP version")
	errVersionNotSupp  = &protoError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
	errLineTooLong     = &protoError{http.StatusRequestURITooLong, "request line too long"}
	errHeaderTooLarge  = &protoError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
	errObsFold         = badRequest("obsolete line folding")
	errFieldName       = badRequest("invalid header field name")
	errFieldValue      = badRequest("invalid header field value")
	errNoHost          = badRequest("missing Host header")
	errManyHosts       = badRequest("more than one Host header")
	errBadHost         = badRequest("malformed Host header")
	errContentLength   = badRequest("invalid Content-Length")
	errManyLengths     = badRequest("more than one Content-Length")
	errLengthAndTE     = badRequest("both Content-Length and Transfer-Encoding")
	errTEOn10          = badRequest("Transfer-Encoding in an HTTP/1.0 request")
	errTEUnsupported   = &protoError{http.StatusNotImplemented, "unsupported Transfer-Encoding"}
	errBadTrailerDecl  = badRequest("forbidden field declared in Trailer")
	errExpectation     = &protoError{http.StatusExpectationFailed, "unsupported expectation"}
	errBadChunk        = badRequest("malformed chunked encoding")
	errChunkLineLong   = badRequest("chunk line too long")
	errChunkOverhead   = badRequest("chunked encoding contains too much non-data")
	errBadTrailerField = badRequest("forbidden field in trailer")
)

// Head scanning --------------------------------------------------------

// blockScan is the state of the search for the end of a header block. Its
// offsets count from the first byte of the block.
type blockScan struct {
	pos       int  // bytes scanned
	lineStart int  // offset of the line being scanned
	prevCR    bool // the byte at pos-1 is CR
	lines     int  // complete non-empty lines seen
	end       int  // offset just past the terminating empty line, once found
}

// scan looks for line ends in win, which holds the block's bytes from
// offset base. It reports whether the block is complete. Every LF must be
// preceded by CR. With requestLine set, the first line is a request line
// of at most lineMax bytes, and an empty first line is an error;
// otherwise an empty first line ends an empty block (a trailer section).
func (s *blockScan) scan(win []byte, base, lineMax, max int, requestLine bool) (bool, error) {
	for {
		rel := s.pos - base
		i := bytes.IndexByte(win[rel:], '\n')
		if i < 0 {
			if len(win) > rel {
				s.prevCR = win[len(win)-1] == '\r'
			}
			s.pos = base + len(win)
			if requestLine && s.lines == 0 && s.pos-s.lineStart > lineMax+1 {
				return false, errLineTooLong
			}
			if s.pos >= max {
				return false, errHeaderTooLarge
			}
			return false, nil
		}
		nl := rel + i
		cr := s.prevCR
		if nl > rel {
			cr = win[nl-1] == '\r'
		}
		if !cr {
			return false, errBareLF
		}
		lineLen := base + nl - 1 - s.lineStart
		next := base + nl + 1
		if next > max {
			if requestLine && s.lines == 0 && lineLen > lineMax {
				return false, errLineTooLong
			}
			return false, errHeaderTooLarge
		}
		if lineLen == 0 {
			if requestLine && s.lines == 0 {
				return false, errEmptyRequest
			}
			s.end = next
			return true, nil
		}
		if requestLine && s.lines == 0 && lineLen > lineMax {
			return false, errLineTooLong
		}
		s.lines++
		s.lineStart = next
		s.pos = next
		s.prevCR = false
	}
}

// readBlock reads a header block (a request line and header fields, or a
// trailer section) up to and including the empty line that ends it, and
// returns it as one string: the only allocation of a request head. Header
// names and values are substrings of it. arm, if not nil, is called once
// before the first read that may block.
//
// A block that fits in br's buffer is converted in place; a larger one is
// gathered into a temporary slice. Bytes after the block stay in br.
func readBlock(br *bufio.Reader, lineMax, max int, requestLine bool, arm func()) (string, error) {
	var (
		s     blockScan
		big   []byte
		armed bool
	)
	lineMax = min(lineMax, max)
	for {
		n := br.Buffered()
		if n > 0 {
			win, _ := br.Peek(n)
			base := len(big)
			done, err := s.scan(win, base, lineMax, max, requestLine)
			if err != nil {
				return "", err
			}
			if done {
				k := s.end - base
				var out string
				if big == nil {
					out = string(win[:k])
				} else {
					out = string(append(big, win[:k]...))
				}
				br.Discard(k)
				return out, nil
			}
			if n == br.Size() {
				big = append(big, win...)
				br.Discard(n)
			}
		}
		if !armed && arm != nil {
			arm()
			armed = true
		}
		before := br.Buffered()
		if _, err := br.Peek(before + 1); err != nil {
			// Peek fails only when no byte arrived.
			if err == io.EOF && (s.pos > 0 || len(big) > 0 || before > 0) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// Character classes ----------------------------------------------------

// tokenChar marks the bytes of an RFC 9110 token.
var tokenChar = [256]bool{
	'!': true, '#': true, '$': true, '%': true, '&': true, '\'': true, '*': true,
	'+': true, '-': true, '.': true, '^': true, '_': true, '`': true, '|': true, '~': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}

// pathChar marks the bytes an origin-form path may hold without going
// through url.ParseRequestURI: those url.URL.EscapedPath leaves alone
// (unreserved, "$&+,;=:@" and "/"). A path with any other byte (a percent
// escape, say) takes the slow path.
var pathChar = [256]bool{
	'-': true, '.': true, '_': true, '~': true,
	'$': true, '&': true, '+': true, ',': true, ';': true, '=': true, ':': true, '@': true, '/': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true,
	'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true,
	'S': true, 'T': true, 'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true,
	'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true,
	's': true, 't': true, 'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}

// validValueByte reports whether c may appear in a field value: VCHAR,
// obs-text, SP and HTAB. NUL, CR, LF, DEL and other controls may not.
func validValueByte(c byte) bool {
	return c == '\t' || (c >= ' ' && c != 0x7f)
}

// targetByte reports whether c may appear in a request target: visible
// ASCII other than "#". Controls, space, DEL, non-ASCII bytes and a
// fragment are refused.
func targetByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '#'
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// Header names ---------------------------------------------------------

// commonHeaders interns the canonical names of common fields, so that a
// client sending them in another case costs no allocation. It is read-only.
var commonHeaders = func() map[string]string {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Request-Headers", "Access-Control-Request-Method",
		"Authorization", "Cache-Control", "Connection", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location",
		"Content-Range", "Content-Type", "Cookie", "Date", "Dnt", "Early-Data", "Etag",
		"Expect", "Forwarded", "From", "Grpc-Accept-Encoding", "Grpc-Encoding",
		"Grpc-Timeout", "Host", "Http2-Settings", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Keep-Alive", "Link",
		"Max-Forwards", "Origin", "Pragma", "Priority", "Proxy-Authorization",
		"Proxy-Connection", "Range", "Referer", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
		"Sec-Fetch-User", "Sec-Websocket-Extensions", "Sec-Websocket-Key",
		"Sec-Websocket-Protocol", "Sec-Websocket-Version", "Te", "Traceparent",
		"Tracestate", "Trailer", "Transfer-Encoding", "Upgrade",
		"Upgrade-Insecure-Requests", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
		"X-Requested-With",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = n
	}
	return m
}()

// canonicalName validates a field name and returns its canonical form
// (as textproto.CanonicalMIMEHeaderKey would). A name already in canonical
// form is returned as is, a substring of the block; a common name in
// another case is interned; only other names allocate.
func canonicalName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	canon := true
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !tokenChar[c] {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canon = false
		}
		upper = c == '-'
	}
	if canon {
		return name, true
	}
	var stack [64]byte
	var buf []byte
	if len(name) <= len(stack) {
		buf = stack[:len(name)]
	} else {
		buf = make([]byte, len(name))
	}
	upper = true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	if s, ok := commonHeaders[string(buf)]; ok {
		return s, true
	}
	return string(buf), true
}

// Request head ---------------------------------------------------------

// head is what parseHead learns about a request besides the fields it
// stores in the request itself.
type head struct {
	method, target string
	minor          int // HTTP/1.minor
	host           string
	hasHost        bool
	hasLength      bool
	length         int64
	chunked        bool
	close          bool // the connection ends after this request
	keepAlive10    bool // an HTTP/1.0 request asked for keep-alive
	expectContinue bool
	trailer        []string // the Trailer field's values, when chunked
}

// fieldSink receives header fields in order. vals is a reusable backing
// array for one-value fields, so that a request's header map costs no
// allocation per field beyond the map's own.
type fieldSink struct {
	h    http.Header
	vals []string
}

func (f *fieldSink) add(key, v string) {
	if old, ok := f.h[key]; ok {
		f.h[key] = append(old, v)
		return
	}
	n := len(f.vals)
	f.vals = append(f.vals, v)
	f.h[key] = f.vals[n : n+1 : n+1]
}

// parseHead parses a request head returned by readBlock: it fills hd and
// u, and stores the header fields in sink (without Host and
// Transfer-Encoding, as net/http does).
func parseHead(s string, hd *head, sink *fieldSink, u *url.URL) error {
	// readBlock guarantees CRLF line ends, and a non-empty first line.
	eol := strings.Index(s, "\r\n")
	line := s[:eol]
	rest := s[eol+2:]

	sp1 := strings.IndexByte(line, ' ')
	if sp1 < 0 {
		return errRequestLine
	}
	hd.method = line[:sp1]
	if !validMethod(hd.method) {
		return errMethod
	}
	line = line[sp1+1:]
	sp2 := strings.IndexByte(line, ' ')
	if sp2 < 0 {
		return errRequestLine
	}
	hd.target = line[:sp2]
	version := line[sp2+1:]
	switch version {
	case "HTTP/1.1":
		hd.minor = 1
	case "HTTP/1.0":
		hd.minor = 0
	default:
		if len(version) == 8 && strings.HasPrefix(version, "HTTP/") && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]) {
			return errVersionNotSupp
		}
		return errVersion
	}
	if hd.target == "" {
		return errTarget
	}
	for i := 0; i < len(hd.target); i++ {
		if !targetByte(hd.target[i]) {
			return errTarget
		}
	}
	if err := parseTarget(hd.method, hd.target, u); err != nil {
		return err
	}

	var (
		nHost, nLength, nTE, nExpect int
		te, expect                   string
		connection, trailer          bool
	)
	for {
		eol := strings.Index(rest, "\r\n")
		line := rest[:eol]
		rest = rest[eol+2:]
		if line == "" {
			break
		}
		if isOWS(line[0]) {
			return errObsFold
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return errFieldName
		}
		key, ok := canonicalName(line[:colon])
		if !ok {
			return errFieldName
		}
		v := line[colon+1:]
		for i := 0; i < len(v); i++ {
			if !validValueByte(v[i]) {
				if v[i] == '\r' {
					return errBareCR
				}
				return errFieldValue
			}
		}
		v = trimOWS(v)
		switch key {
		case "Host":
			nHost++
			hd.host = v
			continue
		case "Transfer-Encoding":
			nTE++
			te = v
			continue
		case "Content-Length":
			nLength++
			if nLength > 1 {
				return errManyLengths
			}
			n, ok := parseLength(v)
			if !ok {
				return errContentLength
			}
			hd.hasLength, hd.length = true, n
		case "Connection":
			connection = true
		case "Expect":
			nExpect++
			expect = v
		case "Trailer":
			trailer = true
		}
		sink.add(key, v)
	}

	// Host (RFC 9112 section 3.2).
	switch {
	case nHost > 1:
		return errManyHosts
	case nHost == 1:
		if !validHost(hd.host) {
			return errBadHost
		}
		hd.hasHost = true
	case hd.minor == 1:
		return errNoHost
	}
	if u.Host != "" && hd.method != http.MethodConnect {
		// Absolute form: the target's authority wins over Host.
		hd.host = u.Host
	} else if hd.method == http.MethodConnect {
		hd.host = u.Host
	}

	// Framing (RFC 9112 section 6).
	if nTE > 0 {
		switch {
		case hd.minor == 0:
			return errTEOn10
		case nLength > 0:
			return errLengthAndTE
		case nTE > 1 || !strings.EqualFold(te, "chunked"):
			return errTEUnsupported
		}
		hd.chunked = true
	}

	// Persistence (RFC 9112 section 9.3).
	if connection {
		for _, v := range sink.h["Connection"] {
			forEachToken(v, func(t string) {
				if strings.EqualFold(t, "close") {
					hd.close = true
				} else if strings.EqualFold(t, "keep-alive") {
					hd.keepAlive10 = hd.minor == 0
				}
			})
		}
	}
	if hd.minor == 0 && !hd.keepAlive10 {
		hd.close = true
	}
	if hd.close {
		hd.keepAlive10 = false
	}

	// Expectations (RFC 9110 section 10.1.1).
	if nExpect > 0 {
		if nExpect > 1 || !strings.EqualFold(expect, "100-continue") {
			return errExpectation
		}
		hd.expectContinue = hd.minor == 1 && (hd.chunked || hd.length > 0)
	}

	if trailer && hd.chunked {
		vals := sink.h["Trailer"]
		for _, v := range vals {
			bad := false
			forEachToken(v, func(t string) {
				switch k := http.CanonicalHeaderKey(t); k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					bad = true
				}
			})
			if bad {
				return errBadTrailerDecl
			}
		}
		hd.trailer = vals
		delete(sink.h, "Trailer")
	}
	return nil
}

// parseTarget parses a request target into u, checking its form against
// the method: authority form for CONNECT and only CONNECT, asterisk form
// for OPTIONS and only OPTIONS, origin form or absolute form (http and
// https, no userinfo) for the rest.
func parseTarget(method, target string, u *url.URL) error {
	switch {
	case method == http.MethodConnect:
		host, port, ok := strings.Cut(target, ":")
		if target[0] == '[' {
			end := strings.IndexByte(target, ']')
			if end < 0 || end+1 >= len(target) || target[end+1] != ':' {
				return errTarget
			}
			host, port, ok = target[:end+1], target[end+2:], true
		}
		if !ok || host == "" || !validPort(port) || port == "" || strings.ContainsAny(host, "/?@") {
			return errTarget
		}
		pu, err := url.ParseRequestURI("http://" + target)
		if err != nil || pu.Host != target || pu.Path != "" || pu.RawQuery != "" {
			return errTarget
		}
		*u = *pu
		u.Scheme = ""
		return nil
	case target == "*":
		if method != http.MethodOptions {
			return errTarget
		}
		u.Path = "*"
		return nil
	case target[0] == '/':
		path, query, hasQuery := strings.Cut(target, "?")
		fast := true
		for i := 0; i < len(path); i++ {
			if !pathChar[path[i]] {
				fast = false
				break
			}
		}
		if fast {
			u.Path = path
			u.RawQuery = query
			u.ForceQuery = hasQuery && query == ""
			return nil
		}
	default:
		scheme, _, ok := strings.Cut(target, "://")
		if !ok || !(strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
			return errTarget
		}
	}
	pu, err := url.ParseRequestURI(target)
	if err != nil {
		return errTarget
	}
	if target[0] != '/' && (pu.User != nil || pu.Host == "" || !validHost(pu.Host)) {
		return errTarget
	}
	*u = *pu
	return nil
}

// validMethod reports whether m is a token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !tokenChar[m[i]] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseLength parses a Content-Length value: 1*DIGIT, at most 2^63-1.
// Signs, spaces, lists and hexadecimal are refused.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = n*10 + uint64(v[i]-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// validHost checks a Host value: uri-host [ ":" port ], where the host is
// a bracketed IP literal or a name of the characters net/http allows.
func validHost(h string) bool {
	if !httpguts.ValidHostHeader(h) {
		return false
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || strings.ContainsAny(h[1:end], "[]") {
			return false
		}
		rest := h[end+1:]
		if rest == "" {
			return true
		}
		return rest[0] == ':' && validPort(rest[1:])
	}
	if strings.ContainsAny(h, "[]") {
		return false
	}
	_, port, ok := strings.Cut(h, ":")
	if !ok {
		return true
	}
	return validPort(port)
}

// validPort reports whether p is *DIGIT of at most five digits.
func validPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) {
			return false
		}
	}
	return true
}

// forEachToken calls f with each non-empty element of a comma-separated
// list, trimmed of optional whitespace.
func forEachToken(v string, f func(string)) {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = trimOWS(t); t != "" {
			f(t)
		}
	}
}

// hasToken reports whether a comma-separated header holds token, in any
// case.
func hasToken(vals []string, token string) bool {
	found := false
	for _, v := range vals {
		forEachToken(v, func(t string) {
			if strings.EqualFold(t, token) {
				found = true
			}
		})
	}
	return found
}

// parseFields parses a trailer section (field lines and the empty line
// that ends it) into h. It applies the same rules as request header
// fields and refuses the fields that frame or route a message.
func parseFields(s string, h http.Header) error {
	for {
		eol := strings.Index(s, "\r\n")
		line := s[:eol]
		s = s[eol+2:]
		if line == "" {
			return nil
		}
		if isOWS(line[0]) {
			return errObsFold
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return errFieldName
		}
		key, ok := canonicalName(line[:colon])
		if !ok {
			return errFieldName
		}
		v := line[colon+1:]
		for i := 0; i < len(v); i++ {
			if !validValueByte(v[i]) {
				return errFieldValue
			}
		}
		switch key {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
			return errBadTrailerField
		}
		h[key] = append(h[key], trimOWS(v))
	}
}
