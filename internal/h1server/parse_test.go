package h1server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Outcomes of a parse case besides a status code.
const (
	accept  = 0
	bodyErr = -1 // the head is accepted; reading the body fails
)

// parseCase is one request and what the server makes of it. stricter
// marks the inputs net/http accepts and this package refuses on purpose;
// TestParseMatchesNetHTTP keeps the column honest.
type parseCase struct {
	name     string
	raw      string
	want     int // accept, bodyErr or the refusal's status code
	stricter bool
	check    func(t *testing.T, p *parsed, raw string)
}

const hostA = "Host: a\r\n"

var parseCases = []parseCase{
	// Accepted.
	{name: "minimal", raw: "GET / HTTP/1.1\r\n" + hostA + "\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		r := p.req
		got := []any{r.Method, r.RequestURI, r.URL.Path, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Host, r.ContentLength, r.Body == http.NoBody, r.Close, len(r.Header)}
		want := []any{"GET", "/", "/", "HTTP/1.1", 1, 1, "a", int64(0), true, false, 0}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("(-want +got)\n%s", d)
		}
	}},
	{name: "http10 without host", raw: "GET /p?q=1 HTTP/1.0\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.URL.RawQuery != "q=1" || p.req.Host != "" || !p.req.Close {
			t.Errorf("query %q host %q close %v", p.req.URL.RawQuery, p.req.Host, p.req.Close)
		}
	}},
	{name: "http10 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.Close {
			t.Error("Close set for a keep-alive HTTP/1.0 request")
		}
	}},
	{name: "connection close", raw: "GET / HTTP/1.1\r\n" + hostA + "Connection: foo, close\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if !p.req.Close {
			t.Error("Close not set")
		}
	}},
	{name: "asterisk form", raw: "OPTIONS * HTTP/1.1\r\n" + hostA + "\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.URL.Path != "*" {
			t.Errorf("path %q", p.req.URL.Path)
		}
	}},
	{name: "authority form", raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.URL.Host != "example.com:443" || p.req.Host != "example.com:443" || p.req.URL.Scheme != "" {
			t.Errorf("URL %#v host %q", p.req.URL, p.req.Host)
		}
	}},
	{name: "authority form ipv6", raw: "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", want: accept},
	{name: "absolute form wins over Host", raw: "GET http://example.com/x?y HTTP/1.1\r\nHost: other\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.Host != "example.com" || p.req.URL.Path != "/x" || p.req.URL.Scheme != "http" {
			t.Errorf("host %q URL %v", p.req.Host, p.req.URL)
		}
	}},
	{name: "percent-encoded path", raw: "GET /a%2Fb%20c HTTP/1.1\r\n" + hostA + "\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.URL.Path != "/a/b c" || p.req.URL.RawPath != "/a%2Fb%20c" {
			t.Errorf("path %q raw %q", p.req.URL.Path, p.req.URL.RawPath)
		}
	}},
	{name: "force query", raw: "GET /a? HTTP/1.1\r\n" + hostA + "\r\n", want: accept},
	{name: "content length body", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 3\r\n\r\nabcNEXT", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if string(p.body) != "abc" || p.req.ContentLength != 3 || p.consumed != len(raw)-4 {
			t.Errorf("body %q CL %d consumed %d", p.body, p.req.ContentLength, p.consumed)
		}
	}},
	{name: "content length zero", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 0\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.req.Body != http.NoBody {
			t.Error("body is not http.NoBody")
		}
	}},
	{name: "chunked", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\nNEXT", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		r := p.req
		if string(p.body) != "abc0123456789abcdef" || r.ContentLength != -1 || !cmp.Equal(r.TransferEncoding, []string{"chunked"}) || r.Header["Transfer-Encoding"] != nil {
			t.Errorf("body %q CL %d TE %v header %v", p.body, r.ContentLength, r.TransferEncoding, r.Header)
		}
	}},
	{name: "chunked case-insensitive", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", want: accept},
	{name: "chunk extensions", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked\r\n\r\n3;a=b;c;d=\"x \\\" y\" ; e = f\r\nabc\r\n0;z\r\n\r\n", want: accept},
	{name: "chunk size leading zeros", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked\r\n\r\n0003\r\nabc\r\n0\r\n\r\n", want: accept},
	{name: "chunked trailers", raw: "POST / HTTP/1.1\r\n" + hostA + "Trailer: X-Sum, x-other\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Sum: 42\r\nX-Extra:  e \r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		want := http.Header{"X-Sum": {"42"}, "X-Other": nil, "X-Extra": {"e"}}
		if d := cmp.Diff(want, p.req.Trailer); d != "" {
			t.Errorf("trailer (-want +got)\n%s", d)
		}
		if _, ok := p.req.Header["Trailer"]; ok {
			t.Error("Trailer left in the header")
		}
	}},
	{name: "header forms", raw: "GET / HTTP/1.1\r\n" + hostA + "content-type:  text/plain \r\nx-custom-thing:v\r\nX-Multi: 1\r\nx-multi: 2\r\nX-Empty:\r\nX-Obs-Text: caf\xc3\xa9\r\nX-Tab: a\tb\r\n\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		want := http.Header{
			"Content-Type":   {"text/plain"},
			"X-Custom-Thing": {"v"},
			"X-Multi":        {"1", "2"},
			"X-Empty":        {""},
			"X-Obs-Text":     {"caf\xc3\xa9"},
			"X-Tab":          {"a\tb"},
		}
		if d := cmp.Diff(want, p.req.Header); d != "" {
			t.Errorf("header (-want +got)\n%s", d)
		}
	}},
	{name: "expect continue", raw: "PUT / HTTP/1.1\r\n" + hostA + "Expect: 100-Continue\r\nContent-Length: 1\r\n\r\nx", want: accept},
	{name: "ipv6 host", raw: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", want: accept},
	{name: "empty host", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n", want: accept},
	{name: "extension method", raw: "PURGE /x HTTP/1.1\r\n" + hostA + "\r\n", want: accept},
	{name: "pipelined rest untouched", raw: "GET / HTTP/1.1\r\n" + hostA + "\r\nGET /2 HTTP/1.1\r\n" + hostA + "\r\n", want: accept, check: func(t *testing.T, p *parsed, raw string) {
		if p.consumed != len("GET / HTTP/1.1\r\n"+hostA+"\r\n") {
			t.Errorf("consumed %d", p.consumed)
		}
	}},

	// Request line.
	{name: "bare LF everywhere", raw: "GET / HTTP/1.1\nHost: a\n\n", want: 400, stricter: true},
	{name: "bare LF in header", raw: "GET / HTTP/1.1\r\nHost: a\n\r\n", want: 400, stricter: true},
	{name: "bare LF ends head", raw: "GET / HTTP/1.1\r\n" + hostA + "\n", want: 400, stricter: true},
	{name: "bare CR in value", raw: "GET / HTTP/1.1\r\nHost: a\rX-Y: z\r\n\r\n", want: 400},
	{name: "bare CR ending line", raw: "GET / HTTP/1.1\r\n" + hostA + "X: y\r\r\n\r\n", want: 400},
	{name: "empty request line", raw: "\r\nGET / HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "double space", raw: "GET  / HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "trailing space", raw: "GET / HTTP/1.1 \r\n" + hostA + "\r\n", want: 400},
	{name: "tab separator", raw: "GET\t/ HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "space in target", raw: "GET /a b HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "no version", raw: "GET /\r\n" + hostA + "\r\n", want: 400},
	{name: "method not token", raw: "G(T / HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "empty method", raw: " / HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "http2 version", raw: "GET / HTTP/2.0\r\n" + hostA + "\r\n", want: 505},
	{name: "http2 preface", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", want: 505, stricter: true},
	{name: "http12 version", raw: "GET / HTTP/1.2\r\n" + hostA + "\r\n", want: 505, stricter: true},
	{name: "http09 version", raw: "GET / HTTP/0.9\r\n" + hostA + "\r\n", want: 505},
	{name: "lowercase version", raw: "GET / http/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "long version", raw: "GET / HTTP/1.10\r\n" + hostA + "\r\n", want: 400},
	{name: "fragment", raw: "GET /a#b HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "DEL in target", raw: "GET /a\x7f HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "control in target", raw: "GET /a\x01 HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "non-ASCII target", raw: "GET /caf\xc3\xa9 HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "bad percent escape", raw: "GET /a%zz HTTP/1.1\r\n" + hostA + "\r\n", want: 400},
	{name: "asterisk with GET", raw: "GET * HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "authority form with GET", raw: "GET example.com:80 HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "CONNECT with path", raw: "CONNECT /x HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "CONNECT without port", raw: "CONNECT example.com HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "CONNECT with userinfo", raw: "CONNECT u@example.com:443 HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "CONNECT without host", raw: "CONNECT example.com:443 HTTP/1.1\r\n\r\n", want: 400, stricter: true},
	{name: "ftp scheme", raw: "GET ftp://x/ HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "userinfo", raw: "GET http://user@x/ HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "absolute form without host", raw: "GET http:///x HTTP/1.1\r\n" + hostA + "\r\n", want: 400, stricter: true},
	{name: "request line too long", raw: "GET /" + strings.Repeat("a", DefaultMaxRequestLineBytes) + " HTTP/1.1\r\n" + hostA + "\r\n", want: 414, stricter: true},
	{name: "head too large", raw: "GET / HTTP/1.1\r\n" + hostA + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 70) + "\r\n", want: 431, stricter: true},

	// Header fields.
	{name: "missing host", raw: "GET / HTTP/1.1\r\n\r\n", want: 400},
	{name: "two hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: 400},
	{name: "two equal hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", want: 400},
	{name: "host with space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", want: 400},
	{name: "host with bad port", raw: "GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", want: 400, stricter: true},
	{name: "host with path", raw: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", want: 400},
	{name: "obs-fold", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A: 1\r\n 2\r\n\r\n", want: 400, stricter: true},
	{name: "obs-fold tab", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A: 1\r\n\t2\r\n\r\n", want: 400, stricter: true},
	{name: "leading space first field", raw: "GET / HTTP/1.1\r\n " + hostA + "\r\n", want: 400},
	{name: "space before colon", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A : 1\r\n\r\n", want: 400},
	{name: "empty name", raw: "GET / HTTP/1.1\r\n" + hostA + ": 1\r\n\r\n", want: 400},
	{name: "no colon", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A\r\n\r\n", want: 400},
	{name: "NUL in name", raw: "GET / HTTP/1.1\r\n" + hostA + "X\x00A: 1\r\n\r\n", want: 400},
	{name: "non-token name", raw: "GET / HTTP/1.1\r\n" + hostA + "X(A): 1\r\n\r\n", want: 400},
	{name: "NUL in value", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A: a\x00b\r\n\r\n", want: 400},
	{name: "control in value", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A: a\x01b\r\n\r\n", want: 400},
	{name: "DEL in value", raw: "GET / HTTP/1.1\r\n" + hostA + "X-A: a\x7fb\r\n\r\n", want: 400},

	// Framing.
	{name: "length not a number", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: abc\r\n\r\n", want: 400},
	{name: "length negative", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: -1\r\n\r\n", want: 400},
	{name: "length with plus", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: +1\r\n\r\nx", want: 400},
	{name: "length hex", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 0x1\r\n\r\nx", want: 400},
	{name: "length list", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 1, 1\r\n\r\nx", want: 400},
	{name: "length inner space", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 1 1\r\n\r\nx", want: 400},
	{name: "length empty", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length:\r\n\r\n", want: 400},
	{name: "length overflow", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 99999999999999999999\r\n\r\n", want: 400},
	{name: "length twice equal", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", want: 400, stricter: true},
	{name: "length twice different", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy", want: 400},
	{name: "length and chunked", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 400, stricter: true},
	{name: "chunked and length", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", want: 400, stricter: true},
	{name: "gzip coding", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: gzip\r\n\r\n", want: 501},
	{name: "gzip then chunked", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", want: 501},
	{name: "chunked twice in list", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", want: 501},
	{name: "two TE fields", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 501},
	{name: "identity coding", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: identity\r\n\r\n", want: 501},
	{name: "empty TE", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding:\r\n\r\n", want: 501},
	{name: "TE with parameter", raw: "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", want: 501},
	{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\nx", want: 400, stricter: true},
	{name: "trailer declares length", raw: "POST / HTTP/1.1\r\n" + hostA + "Trailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 400},
	{name: "expect other", raw: "PUT / HTTP/1.1\r\n" + hostA + "Expect: something\r\nContent-Length: 1\r\n\r\nx", want: 417},
	{name: "expect list", raw: "PUT / HTTP/1.1\r\n" + hostA + "Expect: 100-continue, x\r\nContent-Length: 1\r\n\r\nx", want: 417, stricter: true},
	{name: "expect empty", raw: "PUT / HTTP/1.1\r\n" + hostA + "Expect:\r\nContent-Length: 1\r\n\r\nx", want: 417, stricter: true},

	// Bodies.
	{name: "truncated length body", raw: "POST / HTTP/1.1\r\n" + hostA + "Content-Length: 5\r\n\r\nabc", want: bodyErr},
	{name: "chunk size not hex", raw: chunkedHead + "g\r\nx\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk size empty", raw: chunkedHead + "\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk size 0x", raw: chunkedHead + "0x1\r\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk size negative", raw: chunkedHead + "-1\r\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk size too many digits", raw: chunkedHead + "00000000000000001\r\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk size overflows int64", raw: chunkedHead + "8000000000000000\r\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk size trailing space", raw: chunkedHead + "1 \r\na\r\n0\r\n\r\n", want: bodyErr, stricter: true},
	{name: "chunk size leading space", raw: chunkedHead + " 1\r\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk ext empty", raw: chunkedHead + "1;\r\na\r\n0\r\n\r\n", want: bodyErr, stricter: true},
	{name: "chunk ext no name", raw: chunkedHead + "1;=x\r\na\r\n0\r\n\r\n", want: bodyErr, stricter: true},
	{name: "chunk ext no value", raw: chunkedHead + "1;a=\r\na\r\n0\r\n\r\n", want: bodyErr, stricter: true},
	{name: "chunk ext bad quote", raw: chunkedHead + "1;a=\"x\r\na\r\n0\r\n\r\n", want: bodyErr, stricter: true},
	{name: "chunk ext control", raw: chunkedHead + "1;a\x01\r\na\r\n0\r\n\r\n", want: bodyErr, stricter: true},
	{name: "chunk data too long", raw: chunkedHead + "1\r\nab\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk data without CRLF", raw: chunkedHead + "1\r\na0\r\n\r\n", want: bodyErr},
	{name: "chunk line bare LF", raw: chunkedHead + "1\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunk line bare CR", raw: chunkedHead + "1\r;a\r\na\r\n0\r\n\r\n", want: bodyErr},
	{name: "chunked truncated", raw: chunkedHead + "5\r\nab", want: bodyErr},
	{name: "chunked no last chunk", raw: chunkedHead + "1\r\na\r\n", want: bodyErr},
	{name: "chunked no final CRLF", raw: chunkedHead + "0\r\n", want: bodyErr},
	{name: "trailer length", raw: chunkedHead + "0\r\nContent-Length: 5\r\n\r\n", want: bodyErr, stricter: true},
	{name: "trailer TE", raw: chunkedHead + "0\r\nTransfer-Encoding: chunked\r\n\r\n", want: bodyErr, stricter: true},
	{name: "trailer host", raw: chunkedHead + "0\r\nHost: evil\r\n\r\n", want: bodyErr, stricter: true},
	{name: "trailer obs-fold", raw: chunkedHead + "0\r\nX-A: 1\r\n 2\r\n\r\n", want: bodyErr, stricter: true},
	{name: "trailer bare LF", raw: chunkedHead + "0\r\nX-A: 1\n\r\n", want: bodyErr},
	{name: "trailer NUL", raw: chunkedHead + "0\r\nX-A: \x00\r\n\r\n", want: bodyErr},
}

const chunkedHead = "POST / HTTP/1.1\r\n" + hostA + "Transfer-Encoding: chunked\r\n\r\n"

func runParseCase(t *testing.T, c parseCase, r io.Reader) {
	t.Helper()
	p, err := parseRaw([]byte(c.raw), r)
	switch {
	case c.want == accept:
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		if c.check != nil {
			c.check(t, p, c.raw)
		}
	case c.want == bodyErr:
		if err == nil {
			t.Fatalf("accepted, body %q", p.body)
		}
		if statusOf(err) != 0 && statusOf(err) != 400 {
			t.Fatalf("body error %v, want a read error", err)
		}
	default:
		if got := statusOf(err); got != c.want {
			t.Fatalf("status %d (%v), want %d", got, err, c.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) { runParseCase(t, c, nil) })
	}
}

// TestParseRequestOneByte feeds every case one byte per read: the scanner
// must find the same line ends when they straddle reads.
func TestParseRequestOneByte(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			runParseCase(t, c, iotest.OneByteReader(strings.NewReader(c.raw)))
		})
	}
}

// TestParseRequestOverTCP sends every case to a server and checks the
// status: the handler's 200 for accepted heads, the refusal's code
// otherwise.
func TestParseRequestOverTCP(t *testing.T) {
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(499)
			return
		}
		io.WriteString(w, "ok")
	}), testConfig{maxHeaderBytes: 64 << 10})
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			conn := dial(t, ts.addr)
			conn.send(c.raw)
			if c.want == bodyErr {
				// Truncated bodies end with the client's half.
				conn.nc.(*net.TCPConn).CloseWrite()
			}
			method := strings.SplitN(c.raw, " ", 2)[0]
			resp, err := conn.tryRead(method)
			for err == nil && resp.StatusCode == http.StatusContinue {
				resp, err = conn.tryRead(method)
			}
			switch {
			case c.want == accept:
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("got %v %v, want 200", resp, err)
				}
			case c.want == bodyErr:
				// The handler sees the error; the connection is not
				// reused.
				if err == nil && resp.StatusCode != 499 {
					t.Fatalf("status %d, want 499", resp.StatusCode)
				}
				if !conn.closed(2 * time.Second) {
					t.Fatal("connection kept open after a body error")
				}
			default:
				if err != nil {
					t.Fatalf("reading response: %v", err)
				}
				if resp.StatusCode != c.want || !resp.Close {
					t.Fatalf("status %d close %v, want %d and close", resp.StatusCode, resp.Close, c.want)
				}
			}
		})
	}
}

func TestParseTargetMatchesURL(t *testing.T) {
	for _, target := range []string{"/", "/a/b", "/a?b=c&d", "/a?", "/a??", "//x", "/a;b=c", "/@:!$&'()*+,;=", "/a%20b", "/%2F", "/a'b", "/a\"b", "/{x}", "/a|b", "/a^b", "/a\\b", "/a?q=%zz"} {
		var u url.URL
		if err := parseTarget("GET", target, &u); err != nil {
			t.Errorf("%q: %v", target, err)
			continue
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, &u); d != "" {
			t.Errorf("%q (-url +ours)\n%s", target, d)
		}
	}
}

func TestReadBlockLimits(t *testing.T) {
	for _, c := range []struct {
		in      string
		lineMax int
		max     int
		want    error
	}{
		{"GET / HTTP/1.1\r\n\r\n", 100, 100, nil},
		{"GET / HTTP/1.1\r\n\r\n", 14, 100, nil},
		{"GET / HTTP/1.1\r\n\r\n", 13, 100, errLineTooLong},
		{"GET / HTTP/1.1\r\n\r\n", 100, 18, nil},
		{"GET / HTTP/1.1\r\n\r\n", 100, 17, errHeaderTooLarge},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\n", 100, 23, errHeaderTooLarge},
		{"GET / HTTP/1.1\r\n", 100, 100, io.ErrUnexpectedEOF},
		{"", 100, 100, io.EOF},
	} {
		br := bufio.NewReaderSize(strings.NewReader(c.in), 16)
		_, err := readHead(br, c.lineMax, c.max, nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%q lineMax %d max %d: %v, want %v", c.in, c.lineMax, c.max, err, c.want)
		}
	}
}

// TestParseAllocs checks the cost of a typical request head: one string.
func TestParseAllocs(t *testing.T) {
	raw := "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\nAccept: */*\r\naccept-encoding: gzip\r\nX-Custom: 1\r\n\r\n"
	rd := strings.NewReader(raw)
	br := bufio.NewReaderSize(rd, readBufferSize)
	sink := fieldSink{h: make(http.Header)}
	var u url.URL
	allocs := testing.AllocsPerRun(200, func() {
		rd.Reset(raw)
		br.Reset(rd)
		clear(sink.h)
		sink.vals = sink.vals[:0]
		s, err := readHead(br, 1000, 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		var hd head
		if err := parseHead(s, &hd, &sink, &u); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations per request head, want 1", allocs)
	}
}
