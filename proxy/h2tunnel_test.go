package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rauta/rauta/internal/wsframe"
)

// wsRead reads one frame through the proxy's WebSocket tests, checking
// that it is masked exactly when it comes from a client.
func wsRead(br *bufio.Reader, wantMasked bool) (op byte, payload []byte, err error) {
	f, err := wsframe.Read(br, 4<<20)
	if err == nil && f.Masked != wantMasked {
		err = fmt.Errorf("websocket: frame masked %v, want %v", f.Masked, wantMasked)
	}
	return f.Op, f.Payload, err
}

// wsBackend is an HTTP/1.1 WebSocket echo server. What it does after the
// handshake depends on the path: /chat echoes text frames and answers a
// close frame with one, then closes; /reset resets its connection after
// the first message; /refuse answers 403, /ignore 200 without upgrading,
// /badaccept a 101 with a wrong Sec-WebSocket-Accept.
type wsBackend struct {
	*httpTestServer
	handshakes chan http.Header // the handshake requests' headers
	ended      chan error       // how each /chat session ended
}

func newWSBackend(t *testing.T) *wsBackend {
	b := &wsBackend{handshakes: make(chan http.Header, 16), ended: make(chan error, 16)}
	b.httpTestServer = newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Method", r.Method)
		b.handshakes <- h
		switch r.URL.Path {
		case "/refuse":
			http.Error(w, "no", http.StatusForbidden)
			return
		case "/ignore":
			io.WriteString(w, "not a websocket")
			return
		}
		key := r.Header.Get("Sec-WebSocket-Key")
		if r.Method != http.MethodGet || key == "" || r.Header.Get("Sec-WebSocket-Version") != "13" ||
			!strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "not a WebSocket handshake", http.StatusBadRequest)
			return
		}
		accept := wsframe.Accept(key)
		if r.URL.Path == "/badaccept" {
			accept = wsframe.Accept("something else")
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
			accept, r.Header.Get("Sec-WebSocket-Protocol"))
		if brw.Flush() != nil {
			return
		}
		for {
			op, payload, err := wsRead(brw.Reader, true)
			if err != nil {
				b.ended <- err
				return
			}
			switch op {
			case 0x8: // close: answer it, then close the connection
				wsframe.Write(c, 0x8, payload, false)
				b.ended <- nil
				return
			case 0x1:
				if r.URL.Path == "/reset" {
					c.(*net.TCPConn).SetLinger(0)
					return
				}
				if err := wsframe.Write(c, 0x1, payload, false); err != nil {
					b.ended <- err
					return
				}
			}
		}
	}))
	return b
}

// h2Tunnel is one extended CONNECT (RFC 8441) on a connection of its
// own, driven frame by frame: net/http's client refuses the :protocol
// pseudo-header. It reads frames on a goroutine, acknowledges SETTINGS and
// PING, gives back the window of every DATA frame it receives, and hands
// the stream's DATA to Read; END_STREAM is io.EOF, RST_STREAM an
// http2.StreamError. Its writes do not count the server's windows: the
// tests send far less than the 1 MiB the proxy grants.
type h2Tunnel struct {
	c      net.Conn
	fr     *http2.Framer
	wmu    sync.Mutex
	status int
	header http.Header
	head   chan struct{} // closed when the response head (or the end) came
	pr     *io.PipeReader
	pw     *io.PipeWriter
}

// wsOverH2 opens a WebSocket over HTTP/2 to addr: it waits for the
// server's SETTINGS, which must offer extended CONNECT, sends the
// request and waits for the response head. With useTLS it speaks h2 over
// TLS (ALPN), else h2c with prior knowledge.
func wsOverH2(t *testing.T, addr string, useTLS bool, path, protocol string) *h2Tunnel {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		var tc *tls.Conn
		tc, err = tls.Dial("tcp", addr, &tls.Config{ServerName: "ws.example", InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN %q, want h2", tc.ConnectionState().NegotiatedProtocol)
		}
		c = tc
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	h := &h2Tunnel{c: c, fr: http2.NewFramer(c, c), header: http.Header{}, head: make(chan struct{})}
	h.pr, h.pw = io.Pipe()
	io.WriteString(c, http2.ClientPreface)
	h.fr.WriteSettings()
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	if v, _ := sf.Value(http2.SettingEnableConnectProtocol); v != 1 {
		t.Fatalf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d, want 1", v)
	}
	h.fr.WriteSettingsAck()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, kv := range [][2]string{{":method", "CONNECT"}, {":protocol", protocol}, {":scheme", "http"}, {":authority", "ws.local"}, {":path", path},
		{"sec-websocket-version", "13"}, {"sec-websocket-protocol", "chat"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hbuf.Bytes(), EndHeaders: true})
	go h.readLoop()
	<-h.head
	return h
}

func (h *h2Tunnel) readLoop() {
	dec := hpack.NewDecoder(4096, nil)
	gotHead := false
	endHead := func() {
		if !gotHead {
			gotHead = true
			close(h.head)
		}
	}
	defer endHead()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.pw.CloseWithError(err)
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.wmu.Lock()
				h.fr.WriteSettingsAck()
				h.wmu.Unlock()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				h.wmu.Lock()
				h.fr.WritePing(true, f.Data)
				h.wmu.Unlock()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				h.pw.CloseWithError(err)
				return
			}
			if !gotHead {
				for _, hf := range fields {
					if hf.Name == ":status" {
						if hf.Value[0] == '1' {
							break
						}
						h.status = atoiStatus(hf.Value)
					} else {
						h.header.Add(hf.Name, hf.Value)
					}
				}
				if h.status != 0 {
					endHead()
				}
			}
			if f.StreamEnded() {
				h.pw.Close()
			}
		case *http2.DataFrame:
			data := bytes.Clone(f.Data())
			if n := uint32(len(data)); n > 0 {
				h.wmu.Lock()
				h.fr.WriteWindowUpdate(0, n)
				h.fr.WriteWindowUpdate(1, n)
				h.wmu.Unlock()
				h.pw.Write(data)
			}
			if f.StreamEnded() {
				h.pw.Close()
			}
		case *http2.RSTStreamFrame:
			h.pw.CloseWithError(http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
		case *http2.GoAwayFrame:
			h.pw.CloseWithError(fmt.Errorf("GOAWAY %v", f.ErrCode))
		}
	}
}

// Read reads the stream's DATA.
func (h *h2Tunnel) Read(p []byte) (int, error) { return h.pr.Read(p) }

// Write sends DATA frames of at most 16 KiB.
func (h *h2Tunnel) Write(p []byte) (int, error) {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	for off := 0; off < len(p); off += 16 << 10 {
		if err := h.fr.WriteData(1, false, p[off:min(len(p), off+16<<10)]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// closeWrite ends the client's side with END_STREAM.
func (h *h2Tunnel) closeWrite() {
	h.wmu.Lock()
	h.fr.WriteData(1, true, nil)
	h.wmu.Unlock()
}

// reset resets the stream (CANCEL).
func (h *h2Tunnel) reset() {
	h.wmu.Lock()
	h.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	h.wmu.Unlock()
}

// TestWebSocketOverHTTP2 runs real WebSocket sessions through the proxy
// over HTTP/2 (RFC 8441) to an HTTP/1.1 backend: the handshake is carried
// as an HTTP/1.1 upgrade, messages go both ways (a large one too, past
// the flow-control windows), the close handshake ends the stream with
// END_STREAM both ways; a client reset closes the backend connection, a
// backend connection reset resets the stream; and a backend or route that
// does not upgrade is answered with an error, never a 200.
func TestWebSocketOverHTTP2(t *testing.T) {
	backend := newWSBackend(t)
	p := newTestProxy(t, Options{Limits: Limits{WriteTimeout: 200 * time.Millisecond}})
	cfg := simpleConfig(map[string][]string{"ws": {backend.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "ws", Weight: 1}}})
	cfg.Routes[0].Rules[0].Matches[0].Method = http.MethodGet // routed as the HTTP/1.1 handshake
	cfg.Listeners = append(cfg.Listeners, Listener{Name: "gw/https", Address: "127.0.0.1", Protocol: HTTPS,
		Certificates: []Certificate{selfSigned(t, "ws.example")}})
	cfg.Routes[0].Listeners = append(cfg.Routes[0].Listeners, "gw/https")
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	a, _ := p.Addr("gw/http")
	addr := a.String()

	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("session tls=%v", useTLS), func(t *testing.T) {
			wsSession(t, p, backend, useTLS)
		})
	}

	t.Run("client end", func(t *testing.T) {

		// The client's END_STREAM is a FIN to the backend, which ends its
		// side in turn.
		ws := wsOverH2(t, addr, false, "/chat", "websocket")
		<-backend.handshakes
		ws.closeWrite()
		if err := <-backend.ended; err != io.EOF {
			t.Errorf("backend read %v after the client's END_STREAM, want EOF", err)
		}
		if n, err := io.Copy(io.Discard, ws); n != 0 || err != nil {
			t.Errorf("stream: %d bytes, %v; want END_STREAM", n, err)
		}
	})

	t.Run("client reset", func(t *testing.T) {
		ws := wsOverH2(t, addr, false, "/chat", "websocket")
		<-backend.handshakes
		if ws.status != 200 {
			t.Fatalf("status %d", ws.status)
		}
		wsframe.Write(ws, 0x1, []byte("ping"), true)
		if _, got, err := wsRead(bufio.NewReader(ws), false); err != nil || string(got) != "ping" {
			t.Fatalf("echo: %q %v", got, err)
		}
		ws.reset()
		select {
		case err := <-backend.ended:
			if err == nil {
				t.Error("backend saw a close handshake; want its connection closed")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the backend connection outlived the client's reset")
		}
	})

	t.Run("backend reset", func(t *testing.T) {
		ws := wsOverH2(t, addr, false, "/reset", "websocket")
		<-backend.handshakes
		if ws.status != 200 {
			t.Fatalf("status %d", ws.status)
		}
		wsframe.Write(ws, 0x1, []byte("boom"), true)
		_, err := io.ReadAll(ws)
		var se http2.StreamError
		if !errors.As(err, &se) || se.Code != http2.ErrCodeConnect {
			t.Errorf("stream after the backend's reset: %v, want RST_STREAM CONNECT_ERROR", err)
		}
	})

	t.Run("refused", func(t *testing.T) {
		for path, want := range map[string]int{"/refuse": 403, "/ignore": 502, "/badaccept": 502} {
			ws := wsOverH2(t, addr, false, path, "websocket")
			<-backend.handshakes
			body, _ := io.ReadAll(ws)
			if ws.status != want {
				t.Errorf("%s: status %d %q, want %d", path, ws.status, body, want)
			}
		}
		if ws := wsOverH2(t, addr, false, "/chat", "connect-udp"); ws.status != http.StatusNotImplemented {
			t.Errorf(":protocol connect-udp: status %d, want 501", ws.status)
		}
	})

	t.Run("route", func(t *testing.T) {
		// A route that does not match the handshake (it takes POST only)
		// leaves the request unrouted.
		cfg := simpleConfig(map[string][]string{"ws": {backend.addr()}},
			Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "ws", Weight: 1}}})
		cfg.Routes[0].Rules[0].Matches[0].Method = http.MethodPost
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		if ws := wsOverH2(t, addr, false, "/chat", "websocket"); ws.status != http.StatusNotFound {
			t.Errorf("status %d, want 404", ws.status)
		}
		select {
		case h := <-backend.handshakes:
			t.Errorf("the backend was asked: %v", h)
		default:
		}
	})
}

// wsSession runs a WebSocket session over HTTP/2 through the proxy: the
// handshake, messages both ways (one past the flow-control windows), a
// pause longer than the write timeout, and the close handshake.
func wsSession(t *testing.T, p *Proxy, backend *wsBackend, useTLS bool) {
	name := "gw/http"
	if useTLS {
		name = "gw/https"
	}
	a, _ := p.Addr(name)
	ws := wsOverH2(t, a.String(), useTLS, "/chat", "websocket")
	if ws.status != http.StatusOK {
		t.Fatalf("status %d, want 200", ws.status)
	}
	if got := ws.header.Get("Sec-WebSocket-Protocol"); got != "chat" {
		t.Errorf("Sec-WebSocket-Protocol %q, want chat", got)
	}
	for _, k := range []string{"Sec-WebSocket-Accept", "Upgrade", "Connection", "Content-Length"} {
		if v, ok := ws.header[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("%s: %q in the answer", k, v)
		}
	}
	hs := <-backend.handshakes
	if hs.Get("X-Method") != "GET" || hs.Get(":protocol") != "" || hs.Get("Sec-WebSocket-Version") != "13" {
		t.Errorf("backend handshake: %v", hs)
	}
	br := bufio.NewReader(ws)
	for _, msg := range [][]byte{[]byte("hello"), bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16), []byte("bye")} {
		if err := wsframe.Write(ws, 0x1, msg, true); err != nil {
			t.Fatal(err)
		}
		op, got, err := wsRead(br, false)
		if err != nil || op != 0x1 || !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes: op %d, %d bytes, %v", len(msg), op, len(got), err)
		}
	}
	// The write timeout (200ms) bounds responses, not tunnels.
	time.Sleep(400 * time.Millisecond)
	wsframe.Write(ws, 0x1, []byte("still there"), true)
	if op, got, err := wsRead(br, false); err != nil || op != 0x1 || string(got) != "still there" {
		t.Fatalf("after the write timeout: op %d %q %v", op, got, err)
	}
	wsframe.Write(ws, 0x8, []byte{0x03, 0xe8}, true)
	if op, _, err := wsRead(br, false); err != nil || op != 0x8 {
		t.Fatalf("close: op %d, %v", op, err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("after the close handshake: %d bytes, %v; want END_STREAM", n, err)
	}
	ws.closeWrite()
	if err := <-backend.ended; err != nil {
		t.Errorf("backend session: %v", err)
	}
}
