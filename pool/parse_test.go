package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rauta/rauta/internal/h1wire"
)

// parseResponse runs the response parser over data, as the transport does
// on a connection, and reads the whole body.
func parseResponse(data []byte, method string, maxHeader int) (*http.Response, []byte, error) {
	br := bufio.NewReaderSize(bytes.NewReader(data), 4<<10)
	x := &exchange{br: br, maxHeader: maxHeader}
	req := &http.Request{Method: method, URL: &url.URL{Path: "/"}, Header: http.Header{}}
	resp, err := x.readResponse(req, false)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestParseAccepted(t *testing.T) {
	tests := []struct {
		name   string
		method string
		in     string
		code   int
		header http.Header
		body   string
	}{
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  padded \t\r\n\r\nhello",
			200, http.Header{"Content-Length": {"5"}, "X-A": {"padded"}}, "hello"},
		{"no reason phrase", "GET", "HTTP/1.1 204\r\n\r\n", 204, http.Header{}, ""},
		{"repeated equal lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
			200, http.Header{"Content-Length": {"2"}}, "ok"},
		{"length list", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok",
			200, http.Header{"Content-Length": {"2"}}, "ok"},
		{"lower-case names", "GET", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-multi: a\r\nX-Multi: b\r\n\r\nok",
			200, http.Header{"Content-Length": {"2"}, "X-Multi": {"a", "b"}}, "ok"},
		{"chunked with extensions and trailer", "GET",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nTrailer: T\r\n\r\n" +
				"5;name=\"v\"\r\nhello\r\nA ; x\r\n, world!!!\r\n0\r\nT: done\r\n\r\n",
			200, http.Header{}, "hello, world!!!"},
		{"until close", "GET", "HTTP/1.1 200 OK\r\n\r\nall of it", 200, http.Header{}, "all of it"},
		{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, http.Header{"Content-Length": {"1"}}, "x"},
		{"head with length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",
			200, http.Header{"Content-Length": {"99"}}, ""},
		{"1xx skipped", "GET", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			200, http.Header{"Content-Length": {"0"}}, ""},
		{"empty value", "GET", "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
			200, http.Header{"X-Empty": {""}, "Content-Length": {"0"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := parseResponse([]byte(tt.in), tt.method, 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || string(body) != tt.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tt.code, tt.body)
			}
			if diff := cmp.Diff(tt.header, resp.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

// malformedResponses are refused, whether in the head or in the body.
var malformedResponses = []struct{ name, in string }{
	{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{"chunked and length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{"differing lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
	{"differing length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"},
	{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
	{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"},
	{"hex length", "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello"},
	{"empty length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"},
	{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"},
	{"gzip transfer-coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
	{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"chunked in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
	{"invalid chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
	{"negative chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"},
	{"empty chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"},
	{"overflowing chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n"},
	{"chunk size junk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n"},
	{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"},
	{"chunk size bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"},
	{"chunk size trailing space", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"},
	{"chunk extension without name", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;=1\r\nhello\r\n0\r\n\r\n"},
	{"Content-Length in trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n"},
	{"control in chunk extension", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n"},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
	{"obs-fold tab", "HTTP/1.1 200 OK\r\nX-A: a\r\n\tb\r\nContent-Length: 0\r\n\r\n"},
	{"obs-fold in trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n"},
	{"bare LF line", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"},
	{"bare LF header", "HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n"},
	{"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n"},
	{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n"},
	{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
	{"empty name", "HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n"},
	{"no colon", "HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 0\r\n\r\n"},
	{"header too large", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 2<<10) + "\r\nContent-Length: 0\r\n\r\n"},
	{"HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"short status", "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"},
	{"long status", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"},
	{"status below 100", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"},
	{"not HTTP", "ICY 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"control in reason", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n"},
	{"101 without upgrade", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"},
	{"too many 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", max1xx+2) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	{"truncated head", "HTTP/1.1 200 OK\r\nContent-Len"},
	{"truncated chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"},
}

func TestParseMalformed(t *testing.T) {
	for _, tt := range malformedResponses {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := parseResponse([]byte(tt.in), "GET", 1<<10)
			if err == nil {
				t.Fatalf("accepted: status %d, header %v, body %q", resp.StatusCode, resp.Header, body)
			}
			if !errors.Is(err, ErrMalformedResponse) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("error %v is neither ErrMalformedResponse nor io.ErrUnexpectedEOF", err)
			}
		})
	}
}

// TestMalformedFromBackend sends each malformed response from a raw TCP
// backend through an endpoint: each is refused and its connection closed.
func TestMalformedFromBackend(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/"))
		io.WriteString(c, malformedResponses[i].in)
	})
	p := newTestPool(t, Options{MaxResponseHeaderBytes: 1 << 10})
	e, _ := p.Get(Key{Address: b.addr(), Protocol: HTTP1})
	for i, tt := range malformedResponses {
		resp, err := e.RoundTrip(newRequest(t, "GET", fmt.Sprintf("/%d", i), nil))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if st := e.Stats(); st.Open != 0 || st.Reused != 0 || st.InFlight != 0 {
		t.Errorf("connections survived malformed responses: %+v", st)
	}
}

// serialize writes resp back with Content-Length framing and sorted fields.
func serialize(resp *http.Response, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %s\r\n", resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Content-Length" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.0 404 Not Found\r\n\r\ngone"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc"), true)
	for _, m := range malformedResponses[:8] {
		f.Add([]byte(m.in), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		resp, body, err := parseResponse(data, method, 4<<10)
		if err != nil {
			return
		}
		if resp.StatusCode < 200 || resp.StatusCode > 999 {
			t.Fatalf("final status %d", resp.StatusCode)
		}
		if _, ok := resp.Header["Transfer-Encoding"]; ok {
			t.Fatal("Transfer-Encoding left in the header")
		}
		for k, vv := range resp.Header {
			if !h1wire.ValidToken(k) {
				t.Fatalf("invalid field name %q", k)
			}
			for _, v := range vv {
				if !h1wire.ValidFieldValue(v) || h1wire.TrimOWS(v) != v {
					t.Fatalf("invalid value %q for %q", v, k)
				}
			}
		}
		if cl := resp.ContentLength; cl >= 0 && !head && int64(len(body)) != cl {
			t.Fatalf("ContentLength %d, body %d bytes", cl, len(body))
		}
		if vv := resp.Header["Content-Length"]; len(vv) > 1 {
			t.Fatalf("Content-Length not normalised: %q", vv)
		}
		if head && len(body) > 0 {
			t.Fatal("body for HEAD")
		}
		// What we accept re-serialises into something we parse the same.
		again, body2, err := parseResponse(serialize(resp, body), "GET", 1<<20)
		if err != nil {
			t.Fatalf("re-parsing our own serialisation: %v", err)
		}
		if again.StatusCode != resp.StatusCode || !bytes.Equal(body, body2) {
			t.Fatalf("re-parse differs: %d %q vs %d %q", again.StatusCode, body2, resp.StatusCode, body)
		}
		h := resp.Header.Clone()
		h["Content-Length"] = again.Header["Content-Length"]
		if diff := cmp.Diff(h, again.Header); diff != "" {
			t.Fatalf("re-parsed header differs:\n%s", diff)
		}
		// Where net/http accepts the same bytes, it frames them the same.
		if std, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method}); err == nil && std.StatusCode >= 200 {
			sb, err := io.ReadAll(std.Body)
			if err == nil && (std.StatusCode != resp.StatusCode || !bytes.Equal(sb, body)) {
				t.Fatalf("net/http reads %d %q, we read %d %q", std.StatusCode, sb, resp.StatusCode, body)
			}
		}
	})
}
