package pool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Handler answers with the protocol, the body, and a trailer.
func h2Handler(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") == "echo" {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
		return
	}
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Trailer", "Grpc-Status")
	fmt.Fprintf(w, "%s %s %s", r.Proto, r.Host, body)
	w.(http.Flusher).Flush()
	w.Header().Set("Grpc-Status", "0")
}

func newH2CServer(t *testing.T) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(h2Handler))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetHTTP1(true)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestH2C(t *testing.T) {
	s := newH2CServer(t)
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, H2C)
	for i := 0; i < 3; i++ {
		req := newRequest(t, "POST", "/", strings.NewReader("data"))
		resp, err := e.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "HTTP/2.0 backend.test data" || resp.ProtoMajor != 2 {
			t.Fatalf("got %s %q, %v", resp.Proto, body, err)
		}
		if diff := cmp.Diff(http.Header{"Grpc-Status": {"0"}}, resp.Trailer); diff != "" {
			t.Errorf("trailer (-want +got):\n%s", diff)
		}
	}
	// Concurrent requests multiplex on the one connection.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			roundTrip(t, e, newRequest(t, "GET", "/", nil))
		}()
	}
	wg.Wait()
	st := e.Stats()
	want := Stats{Address: st.Address, Protocol: H2C, Open: 1, Dials: 1, Requests: 23}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestH2CUpgradeUsesHTTP1(t *testing.T) {
	s := newH2CServer(t)
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, H2C)
	req := newRequest(t, "GET", "/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := e.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rwc := resp.Body.(io.ReadWriteCloser)
	defer rwc.Close()
	io.WriteString(rwc, "over http/1.1")
	buf := make([]byte, len("over http/1.1"))
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "over http/1.1" {
		t.Fatalf("echo %q, %v", buf, err)
	}
}

func TestH2CStreaming(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "last")
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	defer s.Close()
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, H2C)
	resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 16)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "first" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	if st := e.Stats(); st.InFlight != 1 {
		t.Errorf("InFlight = %d during the body", st.InFlight)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "last" {
		t.Fatalf("rest %q", rest)
	}
	if st := e.Stats(); st.InFlight != 0 {
		t.Errorf("InFlight = %d after the body", st.InFlight)
	}
}

func TestH2OverTLS(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(h2Handler))
	s.EnableHTTP2 = true
	s.StartTLS()
	defer s.Close()
	p := newTestPool(t, Options{})
	e, err := p.Get(Key{Address: s.Listener.Addr().String(), Protocol: H2, TLS: testTLS(s)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		req := newRequest(t, "PUT", "/", strings.NewReader("tls"))
		_, body, resp := roundTrip(t, e, req)
		if body != "HTTP/2.0 backend.test tls" || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
			t.Fatalf("body %q, TLS %+v", body, resp.TLS)
		}
	}
	if st := e.Stats(); st.Dials != 1 || st.Open != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v", st)
	}
	p.Retain(nil)
	eventually(t, "the idle h2 connection to close", func() bool { return e.Stats().Open == 0 })
}

func TestH2FallbackToHTTP1(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(h2Handler))
	s.EnableHTTP2 = false // ALPN offers http/1.1 only
	s.StartTLS()
	defer s.Close()
	var logs bytes.Buffer
	p := newTestPool(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	e, err := p.Get(Key{Address: s.Listener.Addr().String(), Protocol: H2, TLS: testTLS(s)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		// A body that cannot be replayed survives the failed h2 attempt.
		req := newRequest(t, "POST", "/", onlyReader{strings.NewReader("fallback")})
		_, body, resp := roundTrip(t, e, req)
		if body != "HTTP/1.1 backend.test fallback" || resp.ProtoMajor != 1 {
			t.Fatalf("request %d: %s %q", i, resp.Proto, body)
		}
	}
	st := e.Stats()
	want := Stats{Address: st.Address, Protocol: H2, Open: 1, Idle: 1, Dials: 1, Reused: 2, Requests: 3}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if n := strings.Count(logs.String(), "did not negotiate h2"); n != 1 {
		t.Errorf("fallback logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestH2NotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newTestPool(t, Options{})
	for _, proto := range []Protocol{H2C, H2} {
		e, _ := p.Get(Key{Address: addr, Protocol: proto})
		_, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
		if !NotSent(err) {
			t.Errorf("%v: dial failure %v is not a NotSentError", proto, err)
		}
		if st := e.Stats(); st.DialErrors == 0 || st.Failures != 1 {
			t.Errorf("%v: stats %+v", proto, st)
		}
	}
}

func TestH2ResponseHeaderTimeout(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	defer s.Close()
	p := newTestPool(t, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	e := endpoint(t, p, s.URL, H2C)
	_, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if !errors.Is(err, ErrResponseHeaderTimeout) {
		t.Fatalf("got %v, want ErrResponseHeaderTimeout", err)
	}
}

func TestH2RetireClosesAfterInFlight(t *testing.T) {
	gate := make(chan struct{})
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-gate:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "last")
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	defer s.Close()
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, H2C)
	resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	p.Retain(nil)
	time.Sleep(20 * time.Millisecond)
	if st := e.Stats(); st.Open != 1 || st.InFlight != 1 {
		t.Fatalf("Retain disturbed a stream in flight: %+v", st)
	}
	close(gate)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "firstlast" {
		t.Fatalf("body %q, %v", body, err)
	}
	eventually(t, "the retired endpoint's connection to close", func() bool { return e.Stats().Open == 0 })
}

// TestH2GoAwayRetriedOnNewConnection: a backend connection that goes away
// (GOAWAY naming no stream) as a bodyless request reaches it costs the
// request nothing: it is sent again on a new connection.
func TestH2GoAwayRetriedOnNewConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			first := conns.Add(1) == 1
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				if _, err := io.ReadFull(br, make([]byte, len(http2.ClientPreface))); err != nil {
					return
				}
				fr := http2.NewFramer(nc, br)
				fr.WriteSettings()
				var hb bytes.Buffer
				enc := hpack.NewEncoder(&hb)
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					h, ok := f.(*http2.HeadersFrame)
					if !ok {
						continue
					}
					if first {
						fr.WriteGoAway(0, http2.ErrCodeNo, nil)
						continue
					}
					hb.Reset()
					enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
					fr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.StreamID, BlockFragment: hb.Bytes(), EndHeaders: true})
					fr.WriteData(h.StreamID, true, []byte("second connection"))
				}
			}()
		}
	}()
	p := newTestPool(t, Options{})
	e := endpoint(t, p, "http://"+ln.Addr().String(), H2C)
	_, body, _ := roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if body != "second connection" {
		t.Fatalf("body %q", body)
	}
	if st := e.Stats(); st.Retries != 1 || st.Dials != 2 || st.Failures != 0 || st.Requests != 1 {
		t.Errorf("stats %+v", st)
	}
	// A request with a body is not resent here: the caller, which knows
	// whether it can replay it, gets a NotSentError.
	conns.Store(0)
	e2 := endpoint(t, newTestPool(t, Options{}), "http://"+ln.Addr().String(), H2C)
	_, err = e2.RoundTrip(newRequest(t, "POST", "/", strings.NewReader("body")))
	if !NotSent(err) {
		t.Fatalf("POST on a connection going away: %v, want a NotSentError", err)
	}
}
