package pool

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rauta/rauta/internal/h1wire"
)

// wireErr wraps an error of the wire format (one of h1wire's) in
// ErrMalformedResponse, and returns the errors of the connection as they
// are.
func wireErr(err error) error {
	switch err {
	case h1wire.ErrBlockTooLong, h1wire.ErrLineTooLong:
		return malformed("header section larger than the configured limit")
	case h1wire.ErrBareLF, h1wire.ErrBareCR, h1wire.ErrEmptyStart, h1wire.ErrObsFold,
		h1wire.ErrFieldName, h1wire.ErrFieldValue, h1wire.ErrTrailerField,
		h1wire.ErrBadChunk, h1wire.ErrChunkLineLong:
		return malformed("%w", err)
	}
	return err
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

// readHead reads and parses a status line and header section of at most
// max bytes.
func readHead(br *bufio.Reader, max int) (respHead, error) {
	var h respHead
	s, err := h1wire.ReadBlock(br, max, max, true, nil)
	if err != nil {
		return h, wireErr(err)
	}
	line, fields := h1wire.StartLine(s)
	if err := h.parseStatusLine(line); err != nil {
		return h, err
	}
	hdr, err := parseFields(fields, strings.Count(fields, "\r\n")-1, &h)
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
		if !h1wire.ValidFieldValue(line[13:]) {
			return malformed("status line %q: control character in reason", clip(line))
		}
	}
	h.code = code
	h.status = line[9:]
	return nil
}

// parseFields parses the field lines of a response head (n lines, from
// h1wire.StartLine) into a header map whose keys and values are
// substrings of the head, and interprets the framing fields
// (Content-Length, Transfer-Encoding, Connection, Trailer).
func parseFields(fields string, n int, h *respHead) (http.Header, error) {
	h.contentLength = -1
	hdr := make(http.Header, n)
	vals := make([]string, n)
	var te, cl int // count of Transfer-Encoding / Content-Length lines
	for i := 0; ; i++ {
		key, value, rest, err := h1wire.NextField(fields)
		if err != nil {
			return nil, wireErr(err)
		}
		if key == "" {
			break
		}
		fields = rest
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
			h1wire.ForEachToken(value, func(t string) {
				if strings.EqualFold(t, "close") {
					h.connClose = true
				} else if strings.EqualFold(t, "keep-alive") {
					h.keepAlive = true
				}
			})
		case "Trailer":
			var bad error
			h1wire.ForEachToken(value, func(t string) {
				name, ok := h1wire.CanonicalName(t)
				if !ok {
					bad = malformed("invalid Trailer field name %q", clip(t))
					return
				}
				if h.trailer == nil {
					h.trailer = make(http.Header)
				}
				h.trailer[name] = nil
			})
			if bad != nil {
				return nil, bad
			}
			continue // not kept in the header, as net/http does
		}
		vals[i] = value
		if vv, ok := hdr[key]; ok {
			hdr[key] = append(vv, value)
		} else {
			hdr[key] = vals[i : i+1 : i+1]
		}
	}
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
		elem = h1wire.TrimOWS(elem)
		x, ok := h1wire.ParseLength(elem)
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
