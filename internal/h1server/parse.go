package h1server

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"

	"github.com/rauta/rauta/internal/h1wire"
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

// wireErrors maps the errors of h1wire to the server's answers.
var wireErrors = map[error]*protoError{
	h1wire.ErrBareLF:        errBareLF,
	h1wire.ErrBareCR:        errBareCR,
	h1wire.ErrEmptyStart:    errEmptyRequest,
	h1wire.ErrLineTooLong:   errLineTooLong,
	h1wire.ErrBlockTooLong:  errHeaderTooLarge,
	h1wire.ErrObsFold:       errObsFold,
	h1wire.ErrFieldName:     errFieldName,
	h1wire.ErrFieldValue:    errFieldValue,
	h1wire.ErrTrailerField:  errBadTrailerField,
	h1wire.ErrBadChunk:      errBadChunk,
	h1wire.ErrChunkLineLong: errChunkLineLong,
}

// wireErr returns the server's answer to an error of h1wire, and other
// errors (those of the connection) as they are.
func wireErr(err error) error {
	if pe, ok := wireErrors[err]; ok {
		return pe
	}
	return err
}

// readHead reads a request head with h1wire.ReadBlock: a request line of
// at most lineMax bytes and a head of at most max bytes. arm, if not nil,
// is called once before the first read that may block.
func readHead(br *bufio.Reader, lineMax, max int, arm func()) (string, error) {
	s, err := h1wire.ReadBlock(br, lineMax, max, true, arm)
	return s, wireErr(err)
}

// Character classes ----------------------------------------------------

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

// targetByte reports whether c may appear in a request target: visible
// ASCII other than "#". Controls, space, DEL, non-ASCII bytes and a
// fragment are refused.
func targetByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '#'
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
	line, rest := h1wire.StartLine(s)

	sp1 := strings.IndexByte(line, ' ')
	if sp1 < 0 {
		return errRequestLine
	}
	hd.method = line[:sp1]
	if !h1wire.ValidToken(hd.method) {
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
		if len(version) == 8 && strings.HasPrefix(version, "HTTP/") && h1wire.IsDigit(version[5]) && version[6] == '.' && h1wire.IsDigit(version[7]) {
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
		key, v, next, err := h1wire.NextField(rest)
		if err != nil {
			return wireErr(err)
		}
		if key == "" {
			break
		}
		rest = next
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
			n, ok := h1wire.ParseLength(v)
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
		if !h1wire.ValidHost(hd.host) {
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
			h1wire.ForEachToken(v, func(t string) {
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
			h1wire.ForEachToken(v, func(t string) {
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
		if !ok || host == "" || !h1wire.ValidPort(port) || port == "" || strings.ContainsAny(host, "/?@") {
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
	if target[0] != '/' && (pu.User != nil || pu.Host == "" || !h1wire.ValidHost(pu.Host)) {
		return errTarget
	}
	*u = *pu
	return nil
}
