package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// scratch is per-connection memory reused to collect a header section
// before it is turned into one string.
type scratch struct {
	buf  []byte
	ends []int // end offset in buf of each line (lines are stored without CRLF)
}

// errHeaderTooLarge is wrapped in ErrMalformedResponse.
var errHeaderTooLarge = errors.New("header section larger than the configured limit")

// readBlock reads one header section (a status line, if any, and header or
// trailer fields) up to and including the empty line that ends it. Line
// contents, without their CRLF, are appended to sc.buf and their end
// offsets to sc.ends. max bounds the bytes read, CRLFs included. A line
// that does not end in CRLF, or holds a CR elsewhere, is refused.
// It returns io.EOF only when the connection ended before any byte.
func readBlock(br *bufio.Reader, sc *scratch, max int) error {
	sc.buf = sc.buf[:0]
	sc.ends = sc.ends[:0]
	total := 0
	start := 0
	for {
		frag, err := br.ReadSlice('\n')
		total += len(frag)
		if total > max {
			return malformed("%w (%d bytes)", errHeaderTooLarge, max)
		}
		sc.buf = append(sc.buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF {
				if total == 0 {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return err
		}
		line := sc.buf[start:]
		n := len(line)
		if n < 2 || line[n-2] != '\r' {
			return malformed("line not terminated by CRLF")
		}
		line = line[:n-2]
		if bytes.IndexByte(line, '\r') >= 0 {
			return malformed("bare CR in header line")
		}
		sc.buf = sc.buf[:start+len(line)]
		if len(line) == 0 {
			return nil
		}
		start = len(sc.buf)
		sc.ends = append(sc.ends, start)
	}
}

// respHead is a parsed response head before body framing is decided.
type respHead struct {
	proto         string
	major, minor  int
	code          int
	status        string
	header        http.Header
	contentLength int64 // -1 when absent
	chunked       bool
	connClose     bool
	keepAlive     bool
	trailer       http.Header // declared with the Trailer field
}

// readHead reads and parses a status line and header section.
func readHead(br *bufio.Reader, sc *scratch, max int) (respHead, error) {
	var h respHead
	if err := readBlock(br, sc, max); err != nil {
		return h, err
	}
	if len(sc.ends) == 0 {
		return h, malformed("empty status line")
	}
	s := string(sc.buf) // the one allocation holding every header string
	if err := h.parseStatusLine(s[:sc.ends[0]]); err != nil {
		return h, err
	}
	hdr, err := parseFields(s, sc.ends, &h)
	if err != nil {
		return h, err
	}
	h.header = hdr
	return h, nil
}

func (h *respHead) parseStatusLine(line string) error {
	// HTTP-version SP 3DIGIT [SP reason-phrase]
	if len(line) < 12 || line[:7] != "HTTP/1." || line[8] != ' ' {
		return malformed("status line %q", clip(line))
	}
	minor := line[7]
	if minor < '0' || minor > '9' {
		return malformed("status line %q: version", clip(line))
	}
	h.proto = line[:8]
	h.major = 1
	h.minor = int(minor - '0')
	code := 0
	for i := 9; i < 12; i++ {
		c := line[i]
		if c < '0' || c > '9' {
			return malformed("status line %q: status code", clip(line))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return malformed("status line %q: status code below 100", clip(line))
	}
	if len(line) > 12 {
		if line[12] != ' ' {
			return malformed("status line %q: status code", clip(line))
		}
		if !validFieldValue(line[13:]) {
			return malformed("status line %q: control character in reason", clip(line))
		}
	}
	h.code = code
	h.status = line[9:]
	return nil
}

// parseFields parses the field lines of s (lines 1.. of ends when h is a
// response head, all lines when h is nil) into a header map whose keys and
// values are substrings of s. With h non-nil it also interprets the framing
// fields (Content-Length, Transfer-Encoding, Connection, Trailer).
func parseFields(s string, ends []int, h *respHead) (http.Header, error) {
	first := 0
	if h != nil {
		first = 1
		h.contentLength = -1
	}
	n := len(ends) - first
	hdr := make(http.Header, n)
	vals := make([]string, n)
	start := 0
	if first == 1 {
		start = ends[0]
	}
	var te, cl int // count of Transfer-Encoding / Content-Length lines
	for i := first; i < len(ends); i++ {
		line := s[start:ends[i]]
		start = ends[i]
		if line[0] == ' ' || line[0] == '\t' {
			return nil, malformed("obsolete line folding")
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, malformed("header line without a field name: %q", clip(line))
		}
		name := line[:colon]
		if !validFieldName(name) {
			return nil, malformed("invalid header field name %q", clip(name))
		}
		value := trimOWS(line[colon+1:])
		if !validFieldValue(value) {
			return nil, malformed("invalid value for header field %q", clip(name))
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if h != nil {
			switch key {
			case "Content-Length":
				cl++
				v, err := parseContentLength(value)
				if err != nil {
					return nil, err
				}
				if h.contentLength >= 0 && v != h.contentLength {
					return nil, malformed("differing Content-Length values")
				}
				h.contentLength = v
			case "Transfer-Encoding":
				te++
				if te > 1 || !strings.EqualFold(value, "chunked") {
					return nil, malformed("unsupported Transfer-Encoding %q", clip(value))
				}
				h.chunked = true
			case "Connection":
				forEachToken(value, func(t string) {
					if strings.EqualFold(t, "close") {
						h.connClose = true
					} else if strings.EqualFold(t, "keep-alive") {
						h.keepAlive = true
					}
				})
			case "Trailer":
				var bad error
				forEachToken(value, func(t string) {
					if !validFieldName(t) {
						bad = malformed("invalid Trailer field name %q", clip(t))
						return
					}
					if h.trailer == nil {
						h.trailer = make(http.Header)
					}
					h.trailer[textproto.CanonicalMIMEHeaderKey(t)] = nil
				})
				if bad != nil {
					return nil, bad
				}
				continue // not kept in the header, as net/http does
			}
		}
		k := i - first
		vals[k] = value
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
		} else {
			hdr[key] = vals[k : k+1 : k+1]
		}
	}
	if h != nil {
		if te > 0 && cl > 0 {
			return nil, malformed("both Transfer-Encoding and Content-Length")
		}
		if te > 0 && h.minor == 0 {
			return nil, malformed("Transfer-Encoding in an HTTP/1.0 response")
		}
		if cl > 1 || (cl == 1 && strings.IndexByte(hdr["Content-Length"][0], ',') >= 0) {
			hdr["Content-Length"] = []string{strconv.FormatInt(h.contentLength, 10)}
		}
		if te > 0 {
			delete(hdr, "Transfer-Encoding")
		}
	}
	return hdr, nil
}

// parseContentLength parses a Content-Length value, which may be a list of
// identical lengths ("42, 42").
func parseContentLength(v string) (int64, error) {
	n := int64(-1)
	for len(v) > 0 {
		elem := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		elem = trimOWS(elem)
		x, ok := parseDecimal(elem)
		if !ok {
			return 0, malformed("invalid Content-Length %q", clip(elem))
		}
		if n >= 0 && x != n {
			return 0, malformed("differing Content-Length values")
		}
		n = x
	}
	if n < 0 {
		return 0, malformed("empty Content-Length")
	}
	return n, nil
}

// parseDecimal parses 1*DIGIT without sign, bounded well below overflow.
func parseDecimal(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseChunkSize parses a chunk-size line without its CRLF:
// 1*HEXDIG [BWS] [";" extensions].
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if i >= 15 {
			return 0, malformed("chunk size too large")
		}
		n = n<<4 | int64(d)
	}
rest:
	if i == 0 {
		return 0, malformed("invalid chunk size line %q", clip(string(line)))
	}
	for ; i < len(line) && (line[i] == ' ' || line[i] == '\t'); i++ {
	}
	if i < len(line) {
		if line[i] != ';' {
			return 0, malformed("invalid chunk size line %q", clip(string(line)))
		}
		for _, c := range line[i+1:] {
			if (c < 0x20 && c != '\t') || c == 0x7f {
				return 0, malformed("control character in chunk extension")
			}
		}
	}
	return n, nil
}

// Token characters (RFC 9110 section 5.6.2) as two 64-bit masks.
const (
	tokenMaskLo uint64 = 0x03ff6cfa00000000 // ! # $ % & ' * + - . 0-9
	tokenMaskHi uint64 = 0x57ffffffc7fffffe // A-Z ^ _ ` a-z | ~
)

func isTokenByte(c byte) bool {
	if c < 64 {
		return tokenMaskLo&(1<<c) != 0
	}
	if c < 128 {
		return tokenMaskHi&(1<<(c-64)) != 0
	}
	return false
}

func validFieldName(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

// validFieldValue refuses control characters other than HTAB, and DEL.
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 {
			if c != '\t' {
				return false
			}
		} else if c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// forEachToken calls f for each non-empty element of a comma-separated list.
func forEachToken(v string, f func(string)) {
	for len(v) > 0 {
		elem := v
		if i := strings.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		if elem = trimOWS(elem); elem != "" {
			f(elem)
		}
	}
}

// hasToken reports whether any value of the field holds token (ASCII
// case-insensitively) in its comma-separated list.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		found := false
		forEachToken(v, func(t string) {
			if strings.EqualFold(t, token) {
				found = true
			}
		})
		if found {
			return true
		}
	}
	return false
}

// clip shortens s for error messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// errorf wraps err with the endpoint address and an operation.
func errorf(addr, op string, err error) error {
	return fmt.Errorf("pool: %s: %s: %w", addr, op, err)
}
