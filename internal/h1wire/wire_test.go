package h1wire

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

func TestCanonicalName(t *testing.T) {
	for _, name := range []string{"host", "HOST", "content-type", "X-FOO-bar", "x_y", "a", "Accept", "sec-websocket-key", "www-authenticate", strings.Repeat("a-", 40)} {
		got, ok := CanonicalName(name)
		if !ok || got != http.CanonicalHeaderKey(name) {
			t.Errorf("CanonicalName(%q) = %q, %v; want %q", name, got, ok, http.CanonicalHeaderKey(name))
		}
	}
	for _, name := range []string{"", "a b", "a:b", "é", "a\x00"} {
		if _, ok := CanonicalName(name); ok {
			t.Errorf("CanonicalName(%q) accepted", name)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CanonicalName("content-type") }); n != 0 {
		t.Errorf("interned name allocates %v times", n)
	}
}

func TestTokenBytes(t *testing.T) {
	const tchar = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for c := 0; c < 256; c++ {
		want := strings.IndexByte(tchar, byte(c)) >= 0
		if got := IsTokenByte(byte(c)); got != want {
			t.Errorf("IsTokenByte(%q) = %v", rune(c), got)
		}
		wantValue := c == '\t' || c >= ' ' && c != 0x7f
		if got := ValidValueByte(byte(c)); got != wantValue {
			t.Errorf("ValidValueByte(%q) = %v", rune(c), got)
		}
		if got := ValidFieldValue(string([]byte{byte(c)})); got != wantValue {
			t.Errorf("ValidFieldValue(%q) = %v", rune(c), got)
		}
	}
	if ValidToken("") || !ValidToken("GET") || ValidToken("GE T") {
		t.Error("ValidToken")
	}
}

func TestLists(t *testing.T) {
	var got []string
	ForEachToken(" a ,, b\t,c,", func(s string) { got = append(got, s) })
	if d := cmp.Diff([]string{"a", "b", "c"}, got); d != "" {
		t.Errorf("ForEachToken (-want +got)\n%s", d)
	}
	if !HasToken([]string{"x", "keep-alive, Close"}, "close") || HasToken([]string{"closed"}, "close") {
		t.Error("HasToken")
	}
	if TrimOWS(" \t a b \t") != "a b" || TrimOWS(" \t ") != "" {
		t.Error("TrimOWS")
	}
}

func TestValidHost(t *testing.T) {
	for _, h := range []string{"", "example.com", "example.com:8080", "a:", "[::1]", "[::1]:80", "127.0.0.1:65535", "xn--bcher-kva.example"} {
		if !ValidHost(h) {
			t.Errorf("ValidHost(%q) = false", h)
		}
	}
	for _, h := range []string{"a b", "a\r\nX: y", "a:123456", "a:b", "[::1", "[::1]x", "a]", "[[::1]]", "a\x7f", "a/b", "é"} {
		if ValidHost(h) {
			t.Errorf("ValidHost(%q) = true", h)
		}
	}
}

func TestReadBlockLimits(t *testing.T) {
	for _, c := range []struct {
		in        string
		lineMax   int
		max       int
		startLine bool
		want      error
	}{
		{"GET / HTTP/1.1\r\n\r\n", 100, 100, true, nil},
		{"GET / HTTP/1.1\r\n\r\n", 14, 100, true, nil},
		{"GET / HTTP/1.1\r\n\r\n", 13, 100, true, ErrLineTooLong},
		{"GET / HTTP/1.1\r\n\r\n", 100, 18, true, nil},
		{"GET / HTTP/1.1\r\n\r\n", 100, 17, true, ErrBlockTooLong},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\n", 100, 23, true, ErrBlockTooLong},
		{"GET / HTTP/1.1\r\n", 100, 100, true, io.ErrUnexpectedEOF},
		{"GET / HTTP/1.1\n\r\n", 100, 100, true, ErrBareLF},
		{"\r\n", 100, 100, true, ErrEmptyStart},
		{"\r\n", 100, 100, false, nil},
		{"", 100, 100, true, io.EOF},
	} {
		br := bufio.NewReaderSize(strings.NewReader(c.in), 16)
		_, err := ReadBlock(br, c.lineMax, c.max, c.startLine, nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%q lineMax %d max %d: %v, want %v", c.in, c.lineMax, c.max, err, c.want)
		}
	}
}

func TestReadBlockLargeHead(t *testing.T) {
	// A head larger than the reader's buffer takes the slow path and
	// leaves the bytes after it in the reader.
	head := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 100) + "\r\n"
	br := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(head+"REST")), 16)
	got, err := ReadBlock(br, 1000, 1<<20, true, nil)
	if err != nil || got != head {
		t.Fatalf("ReadBlock: %v, equal %v", err, got == head)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "REST" {
		t.Errorf("rest %q", rest)
	}
}

func TestNextField(t *testing.T) {
	for _, c := range []struct {
		in          string
		name, value string
		err         error
	}{
		{"a: b\r\n\r\n", "A", "b", nil},
		{"X-Y:\t b c \t\r\n\r\n", "X-Y", "b c", nil},
		{"\r\n", "", "", nil},
		{" a: b\r\n\r\n", "", "", ErrObsFold},
		{"a b: c\r\n\r\n", "", "", ErrFieldName},
		{": c\r\n\r\n", "", "", ErrFieldName},
		{"abc\r\n\r\n", "", "", ErrFieldName},
		{"a: b\x00\r\n\r\n", "", "", ErrFieldValue},
		{"a: b\rc\r\n\r\n", "", "", ErrBareCR},
	} {
		name, value, _, err := NextField(c.in)
		if name != c.name || value != c.value || err != c.err {
			t.Errorf("NextField(%q) = %q, %q, %v; want %q, %q, %v", c.in, name, value, err, c.name, c.value, c.err)
		}
	}
}

func TestReadTrailer(t *testing.T) {
	for _, c := range []struct {
		in   string
		want http.Header
		err  error
	}{
		{"\r\nNEXT", nil, nil},
		{"a: 1\r\nA: 2\r\nb: 3\r\n\r\nNEXT", http.Header{"A": {"1", "2"}, "B": {"3"}}, nil},
		{"Content-Length: 1\r\n\r\n", nil, ErrTrailerField},
		{"transfer-encoding: chunked\r\n\r\n", nil, ErrTrailerField},
		{"Trailer: a\r\n\r\n", nil, ErrTrailerField},
		{"Host: a\r\n\r\n", nil, ErrTrailerField},
		{"a: 1\r\n", nil, io.ErrUnexpectedEOF},
		{"", nil, io.ErrUnexpectedEOF},
		{strings.Repeat("a: 1\r\n", 20) + "\r\n", nil, ErrBlockTooLong},
	} {
		br := bufio.NewReader(strings.NewReader(c.in))
		var h http.Header
		err := ReadTrailer(br, 100, &h)
		if err != c.err {
			t.Errorf("ReadTrailer(%q): %v, want %v", c.in, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if d := cmp.Diff(c.want, h); d != "" {
			t.Errorf("ReadTrailer(%q) (-want +got)\n%s", c.in, d)
		}
		if rest, _ := io.ReadAll(br); string(rest) != "NEXT" {
			t.Errorf("ReadTrailer(%q) left %q", c.in, rest)
		}
	}
}

func TestParseChunkLine(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int64
		okay bool
	}{
		{"0", 0, true}, {"a", 10, true}, {"FF", 255, true}, {"7fffffffffffffff", 1<<63 - 1, true}, {"000000000000000a", 10, true},
		{"1;a", 1, true}, {"1 ;a", 1, true}, {"1; a = b", 1, true}, {"1;a=\"\"", 1, true}, {"1;a=\"\\\"\"", 1, true}, {"5 ; ext=1", 5, true},
		{"", 0, false}, {"x", 0, false}, {"1 ", 0, false}, {"5\t", 0, false}, {"1;", 0, false}, {"1;a=", 0, false}, {"1;a b", 0, false},
		{";ext", 0, false}, {"5x", 0, false}, {"0x5", 0, false}, {" 5", 0, false}, {"1;a\x01", 0, false}, {"1;a=\"\x7f\"", 0, false},
		{"8000000000000000", 0, false}, {"10000000000000000", 0, false}, {"1;a=\"x", 0, false}, {"1,2", 0, false}, {"0;a ", 0, false}, {"0;a=b ", 0, false}, {"0;a ;b", 0, true},
	} {
		n, ok := ParseChunkLine([]byte(c.in))
		if ok != c.okay || ok && n != c.n {
			t.Errorf("ParseChunkLine(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.okay)
		}
	}
}

func TestReadChunk(t *testing.T) {
	for _, c := range []struct {
		in      string
		size    int64
		lineLen int
		err     error
	}{
		{"1a;x=y\r\n", 26, 8, nil},
		{"1a\n", 0, 0, ErrBadChunk},
		{"1\ra\r\n", 0, 0, ErrBadChunk},
		{"1a", 0, 0, io.ErrUnexpectedEOF},
		{strings.Repeat("0", 40) + "1\r\n", 0, 0, ErrChunkLineLong},
	} {
		size, n, err := ReadChunkSize(bufio.NewReaderSize(strings.NewReader(c.in), 16))
		if size != c.size || n != c.lineLen || err != c.err {
			t.Errorf("ReadChunkSize(%q) = %d, %d, %v; want %d, %d, %v", c.in, size, n, err, c.size, c.lineLen, c.err)
		}
	}
	for in, want := range map[string]error{"\r\nx": nil, "\n": io.ErrUnexpectedEOF, "x\r\n": ErrBadChunk, "": io.ErrUnexpectedEOF} {
		if err := ReadChunkEnd(bufio.NewReader(strings.NewReader(in))); err != want {
			t.Errorf("ReadChunkEnd(%q) = %v, want %v", in, err, want)
		}
	}
}

func TestBuffered(t *testing.T) {
	for _, c := range []struct {
		in            string
		line, trailer bool
	}{
		{"", false, false},
		{"1a\r", false, false},
		{"1a\r\n", true, false},
		{"\r\n", true, true},
		{"a: b\r\n", true, false},
		{"a: b\r\n\r\n", true, true},
	} {
		br := bufio.NewReader(strings.NewReader(c.in))
		br.Peek(len(c.in))
		if LineBuffered(br) != c.line || TrailerBuffered(br) != c.trailer {
			t.Errorf("%q: LineBuffered %v, TrailerBuffered %v; want %v, %v", c.in, LineBuffered(br), TrailerBuffered(br), c.line, c.trailer)
		}
	}
}

func TestParseLength(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int64
		okay bool
	}{
		{"0", 0, true}, {"123", 123, true}, {"9223372036854775807", 1<<63 - 1, true}, {"007", 7, true},
		{"", 0, false}, {"9223372036854775808", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1.0", 0, false}, {"99999999999999999999", 0, false},
	} {
		n, ok := ParseLength(c.in)
		if ok != c.okay || ok && n != c.n {
			t.Errorf("ParseLength(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.okay)
		}
	}
}

func TestReadAtMost(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("abcdef"))
	p := make([]byte, 4)
	if n, err := ReadAtMost(br, p, 2); n != 2 || err != nil || string(p[:n]) != "ab" {
		t.Errorf("ReadAtMost(2) = %d, %v, %q", n, err, p[:n])
	}
	if n, err := ReadAtMost(br, p, 10); n != 4 || err != nil || string(p[:n]) != "cdef" {
		t.Errorf("ReadAtMost(10) = %d, %v, %q", n, err, p[:n])
	}
}
