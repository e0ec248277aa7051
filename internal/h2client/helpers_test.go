package h2client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// newH2CServer starts net/http's server with HTTP/2 in clear text (prior
// knowledge) on loopback.
func newH2CServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// dial opens a Conn to addr ("host:port" or an http:// URL).
func dial(t *testing.T, addr string, cfg Config) *Conn {
	t.Helper()
	addr = strings.TrimPrefix(addr, "http://")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConn(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newRequest(t *testing.T, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// get sends req and reads the whole response.
func get(t *testing.T, c *Conn, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

// rawServer is a scripted HTTP/2 server on loopback: each accepted
// connection has its preface read and its frames handled by script.
type rawServer struct {
	ln net.Listener
}

// rawConn is the server side of one connection of a rawServer.
type rawConn struct {
	t   *testing.T
	nc  net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func newRawServer(t *testing.T, script func(rc *rawConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				pre := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(br, pre); err != nil || string(pre) != http2.ClientPreface {
					return
				}
				rc := &rawConn{t: t, nc: nc, fr: http2.NewFramer(nc, br)}
				rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
				rc.enc = hpack.NewEncoder(&rc.buf)
				script(rc)
			}()
		}
	}()
	return &rawServer{ln: ln}
}

func (s *rawServer) addr() string { return s.ln.Addr().String() }

// handshake sends the server's SETTINGS and reads frames until the
// client's first HEADERS, which it returns (nil if the connection ended).
func (rc *rawConn) handshake(settings ...http2.Setting) *http2.MetaHeadersFrame {
	rc.fr.WriteSettings(settings...)
	return rc.nextHeaders()
}

// nextHeaders reads frames until a HEADERS frame, acknowledging SETTINGS.
func (rc *rawConn) nextHeaders() *http2.MetaHeadersFrame {
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return nil
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				rc.fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			return f
		}
	}
}

// headers writes one header block of the given fields (name, value pairs).
func (rc *rawConn) headers(id uint32, end bool, kv ...string) {
	rc.buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndStream: end, EndHeaders: true})
}

// waitFrame reads frames until one satisfies match, or fails the test
// after a while.
func (rc *rawConn) waitFrame(match func(http2.Frame) bool) http2.Frame {
	rc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer rc.nc.SetReadDeadline(time.Time{})
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Errorf("raw server: waiting for a frame: %v", err)
			return nil
		}
		if match(f) {
			return f
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
