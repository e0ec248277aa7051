package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/upstream"
)

// bodyFaultBackend records, per path, the request bodies that reached it
// whole and those whose read failed. It speaks HTTP/1.1 and h2c.
type bodyFaultBackend struct {
	mu     sync.Mutex
	whole  map[string]int
	broken map[string]int
	addr   string
}

func newBodyFaultBackend(t *testing.T) *bodyFaultBackend {
	b := &bodyFaultBackend{whole: map[string]int{}, broken: map[string]int{}}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		b.mu.Lock()
		if err != nil {
			b.broken[r.URL.Path]++
		} else {
			b.whole[r.URL.Path]++
		}
		b.mu.Unlock()
		if err == nil {
			io.WriteString(w, "whole")
		}
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetHTTP1(true)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	b.addr = addrOf(s)
	return b
}

// seen waits a moment for the backend's handler of path to finish and
// returns the whole and broken bodies it saw.
func (b *bodyFaultBackend) seen(path string) (whole, broken int) {
	for deadline := time.Now().Add(300 * time.Millisecond); ; {
		b.mu.Lock()
		whole, broken = b.whole[path], b.broken[path]
		b.mu.Unlock()
		if whole+broken > 0 || time.Now().After(deadline) {
			return whole, broken
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accessRecords collects JSON access log records.
type accessRecords struct{ buf syncBuffer }

// find waits for the record of path and returns it.
func (a *accessRecords) find(t *testing.T, path string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		for line := range strings.SplitSeq(strings.TrimSpace(a.buf.String()), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["path"] == path {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log record for %s in:\n%s", path, a.buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bodyFaultProxy starts a proxy whose route /slow/ has a 300ms request
// read timeout, forwarding to one backend over HTTP/1.1 or h2c.
func bodyFaultProxy(t *testing.T, server ServerImpl, h2c bool, backend string) (*Proxy, *accessRecords) {
	t.Helper()
	logs := &accessRecords{}
	p := newTestProxy(t, Options{Server: server, AccessLog: AccessLog{Logger: slog.New(slog.NewJSONHandler(&logs.buf, nil))}})
	cfg := simpleConfig(map[string][]string{"b": {backend}},
		Rule{Matches: prefix("/slow/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}, RequestLimits: RequestLimits{ReadTimeout: 300 * time.Millisecond}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	if h2c {
		cfg.Backends[0].Protocol = BackendH2C
	}
	// A second endpoint that would take a retry: it must get nothing.
	cfg.Backends[0].Endpoints = append(cfg.Backends[0].Endpoints, upstream.Endpoint{Address: backend})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	return p, logs
}

// TestRequestBodyFaultsHTTP1 sends HTTP/1.1 requests whose bodies fail,
// over a raw connection, to rauta's HTTP/1.1 server and to net/http's,
// forwarding over HTTP/1.1 and h2c. The client must get 400 for broken
// framing or a body cut short, 408 for a body that stalls past the read
// timeout, and nothing when it resets the connection; the backend must
// never receive a whole request; the access log must say why.
func TestRequestBodyFaultsHTTP1(t *testing.T) {
	type fault struct {
		name   string
		path   string
		head   string // after the request line
		body   string
		end    string // "half-close", "reset" or "wait"
		status int    // 0: the client gets nothing
		reason string
		logged int
		// reaches is set when the request head surely reaches the
		// backend before the body fails (a chunked or large body is
		// streamed): the backend must then see its body fail.
		reaches bool
	}
	faults := []fault{
		{name: "bad-chunk-size", path: "/chunk", head: "Transfer-Encoding: chunked\r\n",
			body: "zz\r\nhello\r\n0\r\n\r\n", end: "wait", status: 400, reason: "bad_body", logged: 400, reaches: true},
		{name: "bad-chunk-mid-body", path: "/chunk2", head: "Transfer-Encoding: chunked\r\n",
			body: "5\r\nhello\r\n5\r\nworldXX\r\n0\r\n\r\n", end: "wait", status: 400, reason: "bad_body", logged: 400, reaches: true},
		{name: "chunked-cut-short", path: "/chunk3", head: "Transfer-Encoding: chunked\r\n",
			body: "5\r\nhello\r\n5\r\nwo", end: "half-close", status: 400, reason: "bad_body", logged: 400, reaches: true},
		{name: "short-content-length", path: "/short", head: "Content-Length: 10\r\n",
			body: "hello", end: "half-close", status: 400, reason: "bad_body", logged: 400},
		{name: "short-content-length-large", path: "/short-large", head: "Content-Length: 100000\r\n",
			body: strings.Repeat("x", 70000), end: "half-close", status: 400, reason: "bad_body", logged: 400, reaches: true},
		{name: "client-gone", path: "/gone", head: "Content-Length: 10\r\n",
			body: "hello", end: "reset", reason: "client_gone", logged: 499},
		{name: "client-gone-chunked", path: "/gone-chunked", head: "Transfer-Encoding: chunked\r\n",
			body: "5\r\nhello\r\n", end: "reset", reason: "client_gone", logged: 499, reaches: true},
		{name: "read-timeout", path: "/slow/upload", head: "Content-Length: 10\r\n",
			body: "hello", end: "wait", status: 408, reason: "request_timeout", logged: 408},
	}
	for _, srv := range []struct {
		name   string
		server ServerImpl
	}{{"h1server", ServerRauta}, {"net-http", ServerNetHTTP}} {
		for _, up := range []struct {
			name string
			h2c  bool
		}{{"to-h1", false}, {"to-h2c", true}} {
			t.Run(srv.name+"/"+up.name, func(t *testing.T) {
				backend := newBodyFaultBackend(t)
				p, logs := bodyFaultProxy(t, srv.server, up.h2c, backend.addr)
				addr, _ := p.Addr("gw/http")
				for _, f := range faults {
					t.Run(f.name, func(t *testing.T) {
						c, err := net.Dial("tcp", addr.String())
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close()
						c.SetDeadline(time.Now().Add(5 * time.Second))
						if _, err := io.WriteString(c, "POST "+f.path+" HTTP/1.1\r\nHost: probe.local\r\n"+f.head+"\r\n"+f.body); err != nil {
							t.Fatal(err)
						}
						switch f.end {
						case "half-close":
							c.(*net.TCPConn).CloseWrite()
						case "reset":
							// Let the head and the first bytes reach the
							// backend, then reset the connection.
							time.Sleep(100 * time.Millisecond)
							c.(*net.TCPConn).SetLinger(0)
							c.Close()
						}
						if f.end != "reset" {
							resp, err := http.ReadResponse(bufio.NewReader(c), nil)
							if err != nil {
								t.Fatalf("reading the answer: %v", err)
							}
							msg, _ := io.ReadAll(resp.Body)
							resp.Body.Close()
							if resp.StatusCode != f.status {
								t.Errorf("answer %d %q; want %d", resp.StatusCode, msg, f.status)
							}
							if !resp.Close {
								t.Errorf("answer %d without Connection: close", resp.StatusCode)
							}
						}
						whole, broken := backend.seen(f.path)
						if whole != 0 || broken > 1 {
							t.Errorf("backend received %d whole and %d broken requests; want no whole one and no retry", whole, broken)
						}
						if f.reaches && broken != 1 {
							t.Errorf("backend saw %d requests whose body failed; want 1 (the upstream request cut off)", broken)
						}
						rec := logs.find(t, f.path)
						if rec["status"] != float64(f.logged) || rec["reason"] != f.reason {
							t.Errorf("access log status %v reason %v; want %d %s", rec["status"], rec["reason"], f.logged, f.reason)
						}
					})
				}
				// The metrics count the reasons too.
				for reason, n := range map[string]float64{"bad_body": 5, "client_gone": 2, "request_timeout": 1} {
					if got, _ := metricValue(t, p, "rauta_gateway_responses_total", map[string]string{"reason": reason}); got != n {
						t.Errorf("rauta_gateway_responses_total{reason=%q} = %v; want %v", reason, got, n)
					}
				}
			})
		}
	}
}

// TestRequestBodyFaultsHTTP2 sends HTTP/2 requests whose bodies fail,
// frame by frame, to both server options, forwarding over HTTP/1.1 and
// h2c: a body shorter than its content-length is answered 400; a stream
// the client resets mid-body is reset upstream and logged client_gone; a
// body stalling past the read timeout is answered 408. The backend never
// receives a whole request.
func TestRequestBodyFaultsHTTP2(t *testing.T) {
	for _, srv := range []struct {
		name   string
		server ServerImpl
	}{{"h1server", ServerRauta}, {"net-http", ServerNetHTTP}} {
		for _, up := range []struct {
			name string
			h2c  bool
		}{{"to-h1", false}, {"to-h2c", true}} {
			t.Run(srv.name+"/"+up.name, func(t *testing.T) {
				backend := newBodyFaultBackend(t)
				p, logs := bodyFaultProxy(t, srv.server, up.h2c, backend.addr)
				addr, _ := p.Addr("gw/http")
				h := dialH2(t, addr.String())

				// Content-length 10, five bytes, END_STREAM.
				h.headers(1, "/h2/short", "10", false)
				h.data(1, "hello", true)
				if code := h.status(t, 1); code != 400 {
					t.Errorf("short body: status %d; want 400", code)
				}

				// Five bytes, then RST_STREAM(CANCEL).
				h.headers(3, "/h2/gone", "", false)
				h.data(3, "hello", false)
				time.Sleep(100 * time.Millisecond)
				h.fr.WriteRSTStream(3, http2.ErrCodeCancel)

				// Five bytes, then nothing past the read timeout.
				h.headers(5, "/slow/h2", "10", false)
				h.data(5, "hello", false)
				if code := h.status(t, 5); code != 408 {
					t.Errorf("stalled body: status %d; want 408", code)
				}
				if h.sawHeaders[3] {
					t.Errorf("a response was sent on the stream the client reset")
				}

				for path, want := range map[string][2]any{
					"/h2/short": {float64(400), "bad_body"},
					"/h2/gone":  {float64(499), "client_gone"},
					"/slow/h2":  {float64(408), "request_timeout"},
				} {
					if whole, broken := backend.seen(path); whole != 0 || broken > 1 {
						t.Errorf("%s: backend received %d whole and %d broken requests; want no whole one and no retry", path, whole, broken)
					}
					rec := logs.find(t, path)
					if rec["status"] != want[0] || rec["reason"] != want[1] {
						t.Errorf("%s: access log status %v reason %v; want %v %v", path, rec["status"], rec["reason"], want[0], want[1])
					}
				}
			})
		}
	}
}

// h2Conn is a raw HTTP/2 client connection (h2c with prior knowledge).
type h2Conn struct {
	c          net.Conn
	fr         *http2.Framer
	hbuf       bytes.Buffer
	enc        *hpack.Encoder
	dec        *hpack.Decoder
	sawHeaders map[uint32]bool
}

func dialH2(t *testing.T, addr string) *h2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	h := &h2Conn{c: c, fr: http2.NewFramer(c, c), sawHeaders: map[uint32]bool{}}
	h.enc = hpack.NewEncoder(&h.hbuf)
	h.dec = hpack.NewDecoder(4096, nil)
	io.WriteString(c, http2.ClientPreface)
	h.fr.WriteSettings()
	return h
}

func (h *h2Conn) headers(id uint32, path, length string, end bool) {
	h.hbuf.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "probe.local"}, {":path", path}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if length != "" {
		h.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: length})
	}
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hbuf.Bytes(), EndHeaders: true, EndStream: end})
}

func (h *h2Conn) data(id uint32, s string, end bool) { h.fr.WriteData(id, end, []byte(s)) }

// status reads frames until the response head of stream id and returns
// its status; 0 if the stream was reset instead.
func (h *h2Conn) status(t *testing.T, id uint32) int {
	t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			h.sawHeaders[f.StreamID] = true
			fields, err := h.dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			if f.StreamID != id {
				continue
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					code, _ := strconv.Atoi(hf.Value)
					return code
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return 0
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
}

// TestServerReadTimeoutBody checks that a body stalling past the server's
// own read timeout (Limits.ReadTimeout, no request limits) is answered 408
// and its upstream request cut off, with both server options.
func TestServerReadTimeoutBody(t *testing.T) {
	for _, server := range []ServerImpl{ServerRauta, ServerNetHTTP} {
		t.Run(server.String(), func(t *testing.T) {
			backend := newBodyFaultBackend(t)
			logs := &accessRecords{}
			p := newTestProxy(t, Options{Server: server, Limits: Limits{ReadTimeout: 300 * time.Millisecond},
				AccessLog: AccessLog{Logger: slog.New(slog.NewJSONHandler(&logs.buf, nil))}})
			cfg := simpleConfig(map[string][]string{"b": {backend.addr}}, Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			addr, _ := p.Addr("gw/http")
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "POST /stall HTTP/1.1\r\nHost: probe.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("answer %d; want 408", resp.StatusCode)
			}
			if whole, broken := backend.seen("/stall"); whole != 0 || broken != 1 {
				t.Errorf("backend received %d whole and %d broken requests; want one cut off", whole, broken)
			}
			if rec := logs.find(t, "/stall"); rec["status"] != float64(408) || rec["reason"] != "request_timeout" {
				t.Errorf("access log status %v reason %v; want 408 request_timeout", rec["status"], rec["reason"])
			}
		})
	}
}
