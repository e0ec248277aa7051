package h2server

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// diffRequest is a request as sent by the differential test: a header
// list, and what follows it.
type diffRequest struct {
	fields    []hpack.HeaderField
	endStream bool   // END_STREAM on HEADERS
	body      string // DATA, when not endStream
	trailers  []hpack.HeaderField
}

// decodeDiffRequest reads a fuzz input: a flags byte (bit 0 END_STREAM on
// HEADERS, bit 1 trailers, bits 2-4 the body length), then fields, one a
// line, as name=value; after a line "--" the trailers.
func decodeDiffRequest(data []byte) diffRequest {
	var r diffRequest
	if len(data) == 0 {
		return r
	}
	flags := data[0]
	r.endStream = flags&1 != 0
	if !r.endStream {
		r.body = strings.Repeat("b", int(flags>>2&7))
	}
	inTrailers := false
	for line := range strings.SplitSeq(string(data[1:]), "\n") {
		if line == "--" {
			inTrailers = flags&2 != 0 && !r.endStream
			if !inTrailers {
				break
			}
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		f := hpack.HeaderField{Name: name, Value: value}
		if inTrailers {
			r.trailers = append(r.trailers, f)
		} else {
			r.fields = append(r.fields, f)
		}
	}
	return r
}

// diffResult is what a server made of a request.
type diffResult struct {
	served bool   // the handler ran
	req    string // the request as the handler saw it
	status string // how the stream ended, for the log
}

// recordHandler describes the request it gets and answers 200.
func recordHandler(got chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// What was read before a failure is not compared.
			body = nil
		}
		if len(r.Header["Host"]) == 1 && r.Header.Get("Host") == r.Host {
			// x/net keeps a Host field equal to the request's host,
			// this server drops it (as net/http does for HTTP/1).
			delete(r.Header, "Host")
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s host=%q proto=%s len=%d body=%q bodyErr=%v\n",
			r.Method, r.URL.String(), r.RequestURI, r.Host, r.Proto, r.ContentLength, body, err != nil)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range r.Header {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, "%s: %q\n", k, r.Header[k])
		}
		if err == nil {
			fmt.Fprintf(&b, "trailer: %v\n", r.Trailer)
		}
		got <- b.String()
	})
}

// runDiff sends req to a server serving one net.Pipe connection.
func runDiff(t *testing.T, serve func(net.Conn, http.Handler), req diffRequest) diffResult {
	got := make(chan string, 1)
	client, server := net.Pipe()
	defer client.Close()
	go serve(server, recordHandler(got))
	client.SetDeadline(time.Now().Add(5 * time.Second))
	fr := http2.NewFramer(client, client)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	encode := func(fs []hpack.HeaderField) []byte {
		hbuf.Reset()
		for _, f := range fs {
			enc.WriteField(f)
		}
		return bytes.Clone(hbuf.Bytes())
	}
	go func() {
		io.WriteString(client, http2.ClientPreface)
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: encode(req.fields), EndHeaders: true, EndStream: req.endStream})
		if req.endStream {
			return
		}
		if len(req.trailers) == 0 {
			fr.WriteData(1, true, []byte(req.body))
			return
		}
		fr.WriteData(1, false, []byte(req.body))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: encode(req.trailers), EndHeaders: true, EndStream: true})
	}()
	dec := hpack.NewDecoder(4096, nil)
	res := diffResult{status: "no answer"}
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			res.status = "closed: " + err.Error()
			break
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			fs, _ := dec.DecodeFull(f.HeaderBlockFragment())
			for _, hf := range fs {
				if hf.Name == ":status" {
					res.status = hf.Value
				}
			}
			done = f.StreamEnded()
		case *http2.DataFrame:
			done = f.StreamEnded()
		case *http2.RSTStreamFrame:
			res.status, done = "RST "+f.ErrCode.String(), true
		case *http2.GoAwayFrame:
			res.status, done = "GOAWAY "+f.ErrCode.String(), true
		}
	}
	// A handler that ran reported before its response ended; one whose
	// stream was reset as its body came may still be on its way.
	wait := time.Duration(0)
	if !req.endStream && (strings.HasPrefix(res.status, "RST") || strings.HasPrefix(res.status, "GOAWAY")) {
		wait = 100 * time.Millisecond
	}
	select {
	case res.req = <-got:
		res.served = true
	default:
		select {
		case res.req = <-got:
			res.served = true
		case <-time.After(wait):
		}
	}
	return res
}

func serveOurs(c net.Conn, h http.Handler) {
	(&Server{Handler: h, ErrorLog: quietLogger()}).ServeConn(c, nil)
}

func serveXNet(c net.Conn, h http.Handler) {
	(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Handler: h})
}

// stricter reports whether a request has something this server refuses
// and x/net's serves: a :path with bytes RFC 3986 does not allow
// unencoded (space, controls, non-ASCII, "#"), a :method that is not a
// token, content-length values that are not plain digits, or differ; a
// body whose END_STREAM comes on HEADERS despite a non-zero
// content-length; a Host field that differs from :authority.
func stricter(r diffRequest) bool {
	var cls, hosts []string
	authority := ""
	for _, f := range r.fields {
		switch f.Name {
		case ":authority":
			authority = f.Value
		case "host":
			hosts = append(hosts, f.Value)
		case ":path":
			if f.Value != "*" && strings.ContainsFunc(f.Value, func(c rune) bool { return c <= ' ' || c >= 0x7f || c == '#' }) {
				return true
			}
		case ":method":
			if !validFieldNameAnyCase(f.Value) {
				return true
			}
		case "content-length":
			cls = append(cls, f.Value)
		}
	}
	for _, v := range cls {
		if v != cls[0] || v == "" || strings.Trim(v, "0123456789") != "" {
			return true
		}
	}
	for _, h := range hosts {
		if authority != "" && h != authority {
			return true
		}
	}
	if r.endStream && len(cls) > 0 && strings.Trim(cls[0], "0") != "" {
		return true
	}
	return false
}

// checkDiff compares the two servers on one request.
func checkDiff(t *testing.T, req diffRequest) {
	ours := runDiff(t, serveOurs, req)
	theirs := runDiff(t, serveXNet, req)
	switch {
	case ours.served && theirs.served:
		if ours.req != theirs.req {
			t.Errorf("request %+v parsed differently:\nours:  %s\nx/net: %s", req, ours.req, theirs.req)
		}
	case ours.served:
		t.Errorf("request %+v: served by ours, refused by x/net (%s)", req, theirs.status)
	case theirs.served && !stricter(req):
		t.Errorf("request %+v: refused by ours (%s), served by x/net:\n%s", req, ours.status, theirs.req)
	}
}

// diffSeeds are requests at the edges of RFC 9113's rules.
var diffSeeds = []string{
	"\x01:method=GET\n:scheme=https\n:authority=a.example\n:path=/x?y=1",
	"\x01:method=GET\n:scheme=http\n:path=/\nhost=b.example",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\ncookie=a=1\ncookie=b=2",
	"\x01:method=OPTIONS\n:scheme=http\n:authority=a\n:path=*",
	"\x01:method=CONNECT\n:authority=a:443",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\nte=trailers",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\nte=gzip",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\nconnection=close",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/a b",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\nX-Up=1",
	"\x01:method=GET\n:scheme=http\nx=1\n:authority=a\n:path=/",
	"\x01:method=GET\n:method=GET\n:scheme=http\n:authority=a\n:path=/",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\n:protocol=websocket",
	"\x01:method=GET\n:scheme=http\n:authority=u@a\n:path=/",
	"\x01:method=GET\n:scheme=http\n:authority=a\n:path=/\nhost=c",
	"\x0c:method=POST\n:scheme=http\n:authority=a\n:path=/\ncontent-length=3",
	"\x0c:method=POST\n:scheme=http\n:authority=a\n:path=/\ncontent-length=5",
	"\x0c:method=POST\n:scheme=http\n:authority=a\n:path=/\ncontent-length=3\ncontent-length=3",
	"\x0c:method=POST\n:scheme=http\n:authority=a\n:path=/\ncontent-length=3\ncontent-length=4",
	"\x0e:method=POST\n:scheme=http\n:authority=a\n:path=/\ntrailer=x-t\n--\nx-t=1",
	"\x0e:method=POST\n:scheme=http\n:authority=a\n:path=/\n--\n:path=/",
	"\x08:method=POST\n:scheme=http\n:authority=a\n:path=/\nexpect=100-continue",
}

// TestDifferential runs the seeds through both servers.
func TestDifferential(t *testing.T) {
	for _, s := range diffSeeds {
		checkDiff(t, decodeDiffRequest([]byte(s)))
	}
}

// FuzzDifferential compares the request parsing of this server with
// x/net's on fuzzed header lists, bodies and trailers. This server may
// refuse more (see stricter); it must never serve what x/net refuses, and
// what both serve must reach the handler alike.
func FuzzDifferential(f *testing.F) {
	for _, s := range diffSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if p := os.Getenv("H2_FUZZ_SLOW_LOG"); p != "" {
			start := time.Now()
			defer func() {
				if d := time.Since(start); d > time.Second {
					fl, _ := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
					fmt.Fprintf(fl, "%v %q\n", d, data)
					fl.Close()
				}
			}()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			checkDiff(t, decodeDiffRequest(data))
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			panic(fmt.Sprintf("request %q: no outcome in 30s", data))
		}
	})
}
