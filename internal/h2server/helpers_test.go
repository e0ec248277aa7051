package h2server

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// testServer is a Server on a loopback listener, serving h2c with prior
// knowledge, with the limits it enforced counted.
type testServer struct {
	srv    *Server
	addr   string
	ln     net.Listener
	limits [numLimits]atomic.Int64
	wg     sync.WaitGroup
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves h with s (nil for a zero Server) on 127.0.0.1.
func startServer(t testing.TB, s *Server, h http.Handler) *testServer {
	t.Helper()
	if s == nil {
		s = &Server{}
	}
	s.Handler = h
	if s.ErrorLog == nil {
		s.ErrorLog = quietLogger()
	}
	ts := &testServer{srv: s}
	s.OnLimit = func(l Limit) { ts.limits[l].Add(1) }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.ln, ts.addr = ln, ln.Addr().String()
	ts.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Go(func() { s.ServeConn(c, nil) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.Close()
		ts.wg.Wait()
	})
	return ts
}

func (ts *testServer) hits(l Limit) int64 { return ts.limits[l].Load() }

// client returns an HTTP/2 client for the server (h2c, prior knowledge).
func (ts *testServer) client() *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func (ts *testServer) url(path string) string { return "http://" + ts.addr + path }

// checkServes fails the test unless a new connection gets an answer from
// the server: a limit enforced on one connection leaves others serving.
func (ts *testServer) checkServes(t *testing.T) {
	t.Helper()
	c := ts.client()
	defer c.CloseIdleConnections()
	resp, err := c.Get(ts.url("/other"))
	if err != nil {
		t.Fatalf("another connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another connection: status %d", resp.StatusCode)
	}
}

// okHandler answers 200 "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	io.WriteString(w, "ok")
})

// rawConn is an HTTP/2 client connection driven frame by frame.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	dec  *hpack.Decoder
	// lastBlock is the last response header block read.
	lastBlock []byte
}

// dialRaw connects and sends the preface and an empty SETTINGS frame.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawConn{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.fr.SetMaxReadFrameSize(1 << 20)
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	rc.dec = hpack.NewDecoder(4096, nil)
	io.WriteString(c, http2.ClientPreface)
	rc.fr.WriteSettings()
	return rc
}

// block encodes a header list; pairs of name and value.
func (rc *rawConn) block(fields ...string) []byte {
	rc.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(rc.hbuf.Bytes())
}

// get is the header list of a GET of path.
func get(path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "test.local", ":path", path}
}

// request sends a header block as one HEADERS frame.
func (rc *rawConn) request(id uint32, end bool, fields ...string) {
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.block(fields...), EndHeaders: true, EndStream: end})
}

// event is what a raw client saw for a stream or the connection.
type event struct {
	status  int  // the final response status, if any
	rst     bool // RST_STREAM
	code    http2.ErrCode
	goAway  bool   // GOAWAY
	closed  bool   // the connection ended
	body    []byte // DATA until END_STREAM
	headers []hpack.HeaderField
}

// await reads frames (acknowledging nothing: writes may come from
// another goroutine) until stream id ends (END_STREAM
// or RST_STREAM), a GOAWAY, or the connection ends. id 0 waits for GOAWAY
// or the end.
func (rc *rawConn) await(id uint32) event {
	rc.t.Helper()
	var ev event
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			ev.closed = true
			return ev
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			ev.goAway, ev.code = true, f.ErrCode
			return ev
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				ev.rst, ev.code = true, f.ErrCode
				return ev
			}
		case *http2.HeadersFrame:
			rc.lastBlock = bytes.Clone(f.HeaderBlockFragment())
			fields, err := rc.dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				rc.t.Fatalf("decoding a response: %v", err)
			}
			if f.StreamID != id {
				continue
			}
			ev.headers = append(ev.headers, fields...)
			for _, hf := range fields {
				if hf.Name == ":status" && hf.Value[0] != '1' {
					ev.status = atoi(hf.Value)
				}
			}
			if f.StreamEnded() {
				return ev
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				ev.body = append(ev.body, f.Data()...)
				if f.StreamEnded() {
					return ev
				}
			}
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, b := range []byte(s) {
		n = n*10 + int(b-'0')
	}
	return n
}

func newEncoder(w io.Writer) *hpack.Encoder { return hpack.NewEncoder(w) }
func newDecoder() *hpack.Decoder            { return hpack.NewDecoder(4096, nil) }
