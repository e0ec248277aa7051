package pool

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// echoHandler answers with what it received, as "key=value" lines.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprintf(w, "method=%s\nuri=%s\nhost=%s\ncl=%d\nte=%s\nx=%s\nbody=%s\n",
		r.Method, r.RequestURI, r.Host, r.ContentLength, strings.Join(r.TransferEncoding, ","),
		r.Header.Get("X-Test"), body)
}

// onlyReader hides any type information from http.NewRequest, so that the
// body's length is unknown.
type onlyReader struct{ io.Reader }

func TestHTTP1Requests(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(echoHandler))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	big := strings.Repeat("0123456789", 10000) // 100 kB, written concurrently
	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		host   string
		want   string
	}{
		{"get", "GET", "/a/b?q=1&r=%20", nil, "",
			"method=GET\nuri=/a/b?q=1&r=%20\nhost=backend.test\ncl=0\nte=\nx=1\nbody=\n"},
		{"get with host", "GET", "/", nil, "other.example",
			"method=GET\nuri=/\nhost=other.example\ncl=0\nte=\nx=1\nbody=\n"},
		{"post empty", "POST", "/p", nil, "",
			"method=POST\nuri=/p\nhost=backend.test\ncl=0\nte=\nx=1\nbody=\n"},
		{"post content-length", "POST", "/p", strings.NewReader("hello"), "",
			"method=POST\nuri=/p\nhost=backend.test\ncl=5\nte=\nx=1\nbody=hello\n"},
		{"put chunked", "PUT", "/p", onlyReader{strings.NewReader("streamed")}, "",
			"method=PUT\nuri=/p\nhost=backend.test\ncl=-1\nte=chunked\nx=1\nbody=streamed\n"},
		{"post large", "POST", "/big", strings.NewReader(big), "",
			"method=POST\nuri=/big\nhost=backend.test\ncl=100000\nte=\nx=1\nbody=" + big + "\n"},
		{"delete", "DELETE", "/d", nil, "",
			"method=DELETE\nuri=/d\nhost=backend.test\ncl=0\nte=\nx=1\nbody=\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := newRequest(t, tt.method, tt.path, tt.body)
			req.Header.Set("X-Test", "1")
			if tt.host != "" {
				req.Host = tt.host
			}
			code, body, _ := roundTrip(t, e, req)
			if code != 200 {
				t.Fatalf("status %d", code)
			}
			if diff := cmp.Diff(tt.want, body); diff != "" {
				t.Errorf("echo mismatch (-want +got):\n%s", diff)
			}
		})
	}
	st := e.Stats()
	if st.Dials != 1 {
		t.Errorf("Dials = %d, want 1 (keep-alive across all requests)", st.Dials)
	}
}

func TestHTTP1ResponseFraming(t *testing.T) {
	large := strings.Repeat("x", 300<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(large)))
		io.WriteString(w, large)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(304) })
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
	})
	s, _ := newServer(t, mux)
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	tests := []struct {
		method, path string
		code         int
		cl           int64
		body         string
	}{
		{"GET", "/length", 200, int64(len(large)), large},
		{"GET", "/chunked", 200, -1, "part0;part1;part2;part3;part4;"},
		{"GET", "/empty", 200, 0, ""},
		{"GET", "/nocontent", 204, 0, ""},
		{"GET", "/notmodified", 304, 0, ""},
		{"HEAD", "/head", 200, 1234, ""},
		{"GET", "/length", 200, int64(len(large)), large},
	}
	for _, tt := range tests {
		code, body, resp := roundTrip(t, e, newRequest(t, tt.method, tt.path, nil))
		if code != tt.code || resp.ContentLength != tt.cl || body != tt.body {
			t.Errorf("%s %s: got %d, ContentLength %d, %d body bytes; want %d, %d, %d",
				tt.method, tt.path, code, resp.ContentLength, len(body), tt.code, tt.cl, len(tt.body))
		}
	}
	if st := e.Stats(); st.Dials != 1 || st.Reused != uint64(len(tests)-1) {
		t.Errorf("Dials, Reused = %d, %d; want 1, %d", st.Dials, st.Reused, len(tests)-1)
	}
}

func TestHTTP1StreamingResponse(t *testing.T) {
	release := make(chan struct{})
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
			return // the test failed; do not hang
		}
		io.WriteString(w, "last")
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "first" {
		t.Fatalf("first read = %q, %v; want the first chunk before the backend sends the last", buf[:n], err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "last" {
		t.Fatalf("rest = %q, %v", rest, err)
	}
}

func TestHTTP1StreamingRequest(t *testing.T) {
	got := make(chan string, 4)
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		var all []byte
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				got <- string(buf[:n])
				all = append(all, buf[:n]...)
			}
			if err != nil {
				break
			}
		}
		fmt.Fprintf(w, "received %q", all)
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	pr, pw := io.Pipe()
	req := newRequest(t, "POST", "/", pr)
	done := make(chan error, 1)
	go func() {
		_, body, _ := roundTrip(t, e, req)
		if body != `received "onetwo"` {
			done <- fmt.Errorf("body %q", body)
			return
		}
		done <- nil
	}()
	pw.Write([]byte("one"))
	select {
	case c := <-got:
		if c != "one" {
			t.Fatalf("backend read %q first", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backend did not receive the first chunk before the last was written")
	}
	pw.Write([]byte("two"))
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHTTP1Trailers(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "Grpc-Status, Echo-Trailer")
		w.Write(body)
		w.(http.Flusher).Flush()
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("Echo-Trailer", r.Trailer.Get("Client-Trailer"))
		w.Header().Set(http.TrailerPrefix+"Undeclared", "yes")
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	req := newRequest(t, "POST", "/", onlyReader{strings.NewReader("payload")})
	req.Trailer = http.Header{"Client-Trailer": {"from-client"}}
	resp, err := e.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(http.Header{"Grpc-Status": nil, "Echo-Trailer": nil}, resp.Trailer); diff != "" {
		t.Errorf("declared trailers before the body (-want +got):\n%s", diff)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "payload" {
		t.Fatalf("body %q, %v", body, err)
	}
	want := http.Header{"Grpc-Status": {"0"}, "Echo-Trailer": {"from-client"}, "Undeclared": {"yes"}}
	if diff := cmp.Diff(want, resp.Trailer); diff != "" {
		t.Errorf("trailers after the body (-want +got):\n%s", diff)
	}
}

func TestHTTP1Informational(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hints" {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
			return
		}
		body, _ := io.ReadAll(r.Body) // sends 100 Continue
		w.Write(body)
	}))
	p := newTestPool(t, Options{ExpectContinueTimeout: 5 * time.Second})
	e := endpoint(t, p, s.URL, HTTP1)

	type info struct {
		Code int
		Link string
	}
	var got []info
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, info{code, h.Get("Link")})
		return nil
	}}

	req := newRequest(t, "GET", "/hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	code, body, _ := roundTrip(t, e, req)
	if code != 200 || body != "page" {
		t.Fatalf("got %d %q", code, body)
	}

	start := time.Now()
	req = newRequest(t, "PUT", "/continue", strings.NewReader("after continue"))
	req.Header.Set("Expect", "100-continue")
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	code, body, _ = roundTrip(t, e, req)
	if code != 200 || body != "after continue" {
		t.Fatalf("got %d %q", code, body)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the body waited %v: it was not sent on 100 Continue", d)
	}
	want := []info{{103, "</style.css>; rel=preload"}, {100, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("1xx responses (-want +got):\n%s", diff)
	}
}

func TestHTTP1ExpectRejected(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge) // without reading the body
	}))
	p := newTestPool(t, Options{ExpectContinueTimeout: 5 * time.Second})
	e := endpoint(t, p, s.URL, HTTP1)
	body := &countingReader{r: strings.NewReader(strings.Repeat("z", 1<<20))}
	req := newRequest(t, "POST", "/", body)
	req.Header.Set("Expect", "100-continue")
	code, _, _ := roundTrip(t, e, req)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", code)
	}
	if n := body.n(); n != 0 {
		t.Errorf("%d body bytes read although the backend refused before 100 Continue", n)
	}
}

type countingReader struct {
	mu    sync.Mutex
	r     io.Reader
	count int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.count += n
	c.mu.Unlock()
	return n, err
}

func (c *countingReader) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

func TestHTTP1Upgrade(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.WriteString("greeting;") // arrives with the 101: must not be lost
		brw.Flush()
		io.Copy(conn, brw)
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	req := newRequest(t, "GET", "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := e.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body %T is not an io.ReadWriteCloser", resp.Body)
	}
	if _, err := io.WriteString(rwc, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("greeting;ping"))
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "greeting;ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if st := e.Stats(); st.InUse != 1 || st.Open != 1 || st.InFlight != 0 {
		t.Errorf("while upgraded: %+v", st)
	}
	rwc.Close()
	if st := e.Stats(); st.InUse != 0 || st.Open != 0 {
		t.Errorf("after Close: %+v", st)
	}

	// A 101 to a request that did not ask for it is refused.
	req = newRequest(t, "GET", "/", nil)
	req.Header.Set("Upgrade", "echo") // no Connection: Upgrade
	resp, err = e.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 101 {
			t.Fatal("101 accepted without an Upgrade request")
		}
	}
}

func TestHTTP1KeepAliveReuse(t *testing.T) {
	s, cc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	const n = 20
	for i := 0; i < n; i++ {
		roundTrip(t, e, newRequest(t, "GET", "/", nil))
	}
	// A body closed before EOF but fully received is drained and reused.
	resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	resp.Body.Close()
	st := e.Stats()
	want := Stats{Address: st.Address, Protocol: HTTP1, Open: 1, Idle: 1, Dials: 1, Reused: n, Requests: n + 1}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got := cc.count(); got != 1 {
		t.Errorf("backend saw %d connections, want 1", got)
	}
}

func TestHTTP1UnreadBodyClosesConn(t *testing.T) {
	release := make(chan struct{})
	s, cc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-release
	}))
	defer close(release)
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the rest of the body is not there: cannot drain
	if st := e.Stats(); st.Open != 0 || st.InUse != 0 || st.Idle != 0 {
		t.Errorf("after early Close: %+v", st)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}
	_ = cc
}

func TestHTTP1IdleTimeout(t *testing.T) {
	s, cc := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	p := newTestPool(t, Options{IdleTimeout: 50 * time.Millisecond})
	e := endpoint(t, p, s.URL, HTTP1)
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if st := e.Stats(); st.Idle != 1 {
		t.Fatalf("Idle = %d after a request", st.Idle)
	}
	eventually(t, "the janitor to close the idle connection", func() bool {
		st := e.Stats()
		return st.Open == 0 && st.Idle == 0
	})
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if st := e.Stats(); st.Dials != 2 || cc.count() != 2 {
		t.Errorf("Dials = %d, backend connections = %d; want 2, 2", st.Dials, cc.count())
	}
}

func TestHTTP1MaxIdle(t *testing.T) {
	gate := make(chan struct{})
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-gate }))
	p := newTestPool(t, Options{MaxIdlePerEndpoint: 2})
	e := endpoint(t, p, s.URL, HTTP1)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	eventually(t, "four requests in flight", func() bool { return e.Stats().InUse == 4 })
	close(gate)
	wg.Wait()
	if st := e.Stats(); st.Idle != 2 || st.Open != 2 {
		t.Errorf("Idle, Open = %d, %d; want 2, 2", st.Idle, st.Open)
	}
}

func TestHTTP1MaxConns(t *testing.T) {
	gate := make(chan struct{})
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		if r.URL.Path == "/slow" {
			<-gate
		}
	}))
	t.Run("fail fast", func(t *testing.T) {
		p := newTestPool(t, Options{MaxConnsPerEndpoint: 1})
		e := endpoint(t, p, s.URL, HTTP1)
		resp, err := e.RoundTrip(newRequest(t, "GET", "/held", nil))
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.RoundTrip(newRequest(t, "GET", "/", nil))
		if !errors.Is(err, ErrEndpointBusy) || !NotSent(err) {
			t.Fatalf("second request: %v; want ErrEndpointBusy, not sent", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		roundTrip(t, e, newRequest(t, "GET", "/", nil))
	})
	t.Run("wait", func(t *testing.T) {
		p := newTestPool(t, Options{MaxConnsPerEndpoint: 2, ConnWaitTimeout: 5 * time.Second})
		e := endpoint(t, p, s.URL, HTTP1)
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := e.RoundTrip(newRequest(t, "GET", "/slow", nil))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		eventually(t, "two requests on the wire and four waiting", func() bool {
			st := e.Stats()
			return st.InUse == 2 && st.InFlight == 6
		})
		if st := e.Stats(); st.Open != 2 {
			t.Errorf("Open = %d over the limit of 2", st.Open)
		}
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if st := e.Stats(); st.Dials != 2 || st.Open != 2 {
			t.Errorf("Dials, Open = %d, %d; want 2, 2", st.Dials, st.Open)
		}
	})
	t.Run("wait times out", func(t *testing.T) {
		p := newTestPool(t, Options{MaxConnsPerEndpoint: 1, ConnWaitTimeout: 20 * time.Millisecond})
		e := endpoint(t, p, s.URL, HTTP1)
		resp, err := e.RoundTrip(newRequest(t, "GET", "/held", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, err = e.RoundTrip(newRequest(t, "GET", "/", nil))
		if !errors.Is(err, ErrEndpointBusy) || !NotSent(err) {
			t.Fatalf("got %v, want ErrEndpointBusy", err)
		}
	})
}

func TestHTTP1BackendClosesMidResponse(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	p := newTestPool(t, Options{})
	e, _ := p.Get(Key{Address: b.addr(), Protocol: HTTP1})
	for i := 0; i < 2; i++ {
		resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || string(body) != "0123456789" {
			t.Fatalf("read %q, %v; want the partial body and io.ErrUnexpectedEOF", body, err)
		}
		resp.Body.Close()
	}
	if st := e.Stats(); st.Dials != 2 || st.Reused != 0 || st.Open != 0 {
		t.Errorf("a broken connection was reused: %+v", st)
	}
	if n := b.accepted(); n != 2 {
		t.Errorf("backend accepted %d connections, want 2", n)
	}
}

// closingBackend answers each request on a connection, then closes the
// connection after it was answered close times in total: the next request
// on it meets a dead idle connection.
func closingBackend(t *testing.T) *rawBackend {
	return newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// Close as a backend with a short keep-alive timeout does.
	})
}

func TestHTTP1DeadIdleConnRetry(t *testing.T) {
	b := closingBackend(t)
	p := newTestPool(t, Options{})
	e, _ := p.Get(Key{Address: b.addr(), Protocol: HTTP1})
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	eventually(t, "the backend to close", func() bool { return b.accepted() == 1 })
	time.Sleep(20 * time.Millisecond) // the FIN is in our socket now

	// Idempotent: retried on a new connection, transparently.
	code, body, _ := roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if code != 200 || body != "ok" {
		t.Fatalf("got %d %q", code, body)
	}
	// A replayable POST body with GetBody is retried only if idempotent.
	time.Sleep(20 * time.Millisecond)
	code, body, _ = roundTrip(t, e, newRequest(t, "PUT", "/", strings.NewReader("put body")))
	if code != 200 || body != "ok" {
		t.Fatalf("PUT: got %d %q", code, body)
	}
	time.Sleep(20 * time.Millisecond)
	_, err := e.RoundTrip(newRequest(t, "POST", "/", strings.NewReader("post body")))
	if err == nil {
		t.Fatal("POST on a dead connection succeeded: it was retried although it is not idempotent")
	}
	if NotSent(err) {
		t.Errorf("POST error %v claims the request was not sent", err)
	}
	st := e.Stats()
	if st.Retries != 2 || st.Failures != 1 {
		t.Errorf("Retries, Failures = %d, %d; want 2, 1", st.Retries, st.Failures)
	}
}

func TestHTTP1LivenessCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the liveness threshold")
	}
	b := closingBackend(t)
	p := newTestPool(t, Options{})
	e, _ := p.Get(Key{Address: b.addr(), Protocol: HTTP1})
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	time.Sleep(livenessCheckAfter + 50*time.Millisecond)
	// The dead connection is found before use: even a POST goes through.
	code, _, _ := roundTrip(t, e, newRequest(t, "POST", "/", strings.NewReader("x")))
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if st := e.Stats(); st.Retries != 0 || st.Dials != 2 {
		t.Errorf("Retries, Dials = %d, %d; want 0, 2", st.Retries, st.Dials)
	}
}

func TestHTTP1NotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p := newTestPool(t, Options{})
	e, _ := p.Get(Key{Address: addr, Protocol: HTTP1})
	_, err = e.RoundTrip(newRequest(t, "POST", "/", strings.NewReader("x")))
	if !NotSent(err) {
		t.Fatalf("dial failure %v is not a NotSentError", err)
	}
	if st := e.Stats(); st.DialErrors != 1 || st.Failures != 1 || st.InFlight != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTP1ContextCancel(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			io.WriteString(w, "head")
			w.(http.Flusher).Flush()
		}
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.RoundTrip(newRequest(t, "GET", "/", nil).WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	resp, err := e.RoundTrip(newRequest(t, "GET", "/body", nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	io.ReadFull(resp.Body, buf)
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("body read survived cancellation")
	}
	resp.Body.Close()
	if st := e.Stats(); st.Open != 0 || st.InUse != 0 || st.InFlight != 0 {
		t.Errorf("after cancellation: %+v", st)
	}
}

func TestHTTP1ResponseHeaderTimeout(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-gate
		}
	}))
	p := newTestPool(t, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	e := endpoint(t, p, s.URL, HTTP1)
	_, err := e.RoundTrip(newRequest(t, "GET", "/slow", nil))
	if !errors.Is(err, ErrResponseHeaderTimeout) {
		t.Fatalf("got %v, want ErrResponseHeaderTimeout", err)
	}
	// The deadline does not outlive the head: a slow body is fine.
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
}

func TestHTTP1EarlyResponseToLargeBody(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	req := newRequest(t, "POST", "/", bytes.NewReader(make([]byte, 8<<20)))
	code, _, _ := roundTrip(t, e, req)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", code)
	}
}

func TestHTTP1RequestBodyError(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(echoHandler))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	boom := errors.New("client went away")
	for _, async := range []bool{false, true} {
		r := io.MultiReader(strings.NewReader("some"), &errReader{boom})
		req := newRequest(t, "POST", "/", r)
		req.ContentLength = 10
		if async {
			req.ContentLength = -1
		}
		_, err := e.RoundTrip(req)
		if !errors.Is(err, ErrRequestBody) || !errors.Is(err, boom) {
			t.Errorf("async=%v: got %v, want ErrRequestBody wrapping the body's error", async, err)
		}
	}
	eventually(t, "connections released", func() bool {
		st := e.Stats()
		return st.InUse == 0 && st.InFlight == 0
	})
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func TestHTTP1RequestValidation(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(echoHandler))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	tests := map[string]func(*http.Request){
		"CRLF in value":  func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nInjected: 1"} },
		"space in name":  func(r *http.Request) { r.Header["X A"] = []string{"a"} },
		"NUL in value":   func(r *http.Request) { r.Header["X-A"] = []string{"a\x00"} },
		"CRLF in host":   func(r *http.Request) { r.Host = "a\r\nb" },
		"space in query": func(r *http.Request) { r.URL.RawQuery = "a b" },
		"bad method":     func(r *http.Request) { r.Method = "GE T" },
	}
	for name, mutate := range tests {
		req := newRequest(t, "GET", "/", nil)
		mutate(req)
		if _, err := e.RoundTrip(req); err == nil {
			t.Errorf("%s: request sent", name)
		}
	}
	// A non-canonical framing header cannot smuggle a second length.
	req := newRequest(t, "POST", "/", strings.NewReader("abc"))
	req.Header["content-length"] = []string{"1"}
	req.Header["transfer-encoding"] = []string{"chunked"}
	_, body, _ := roundTrip(t, e, req)
	if !strings.Contains(body, "cl=3\n") || !strings.Contains(body, "body=abc\n") {
		t.Errorf("framing headers from the caller were sent: %q", body)
	}
}

func TestHTTP1OverTLS(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}))
	s.EnableHTTP2 = true // the client must still get HTTP/1.1
	s.StartTLS()
	defer s.Close()
	p := newTestPool(t, Options{})
	e, err := p.Get(Key{Address: s.Listener.Addr().String(), Protocol: HTTP1TLS, TLS: testTLS(s)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, body, resp := roundTrip(t, e, newRequest(t, "GET", "/", nil))
		if body != "HTTP/1.1 true" || resp.TLS == nil {
			t.Fatalf("body %q, TLS %v", body, resp.TLS)
		}
	}
	if st := e.Stats(); st.Dials != 1 {
		t.Errorf("Dials = %d", st.Dials)
	}
}

// testTLS trusts a TLS test server's certificate (issued for example.com).
func testTLS(s *httptest.Server) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	return &tls.Config{RootCAs: roots, ServerName: "example.com"}
}

func TestHTTP1Concurrent(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(echoHandler))
	p := newTestPool(t, Options{MaxIdlePerEndpoint: 4})
	e := endpoint(t, p, s.URL, HTTP1)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				var body io.Reader
				method := "GET"
				if i%3 == 0 {
					method, body = "POST", strings.NewReader("payload")
				}
				resp, err := e.RoundTrip(newRequest(t, method, "/", body))
				if err != nil {
					t.Error(err)
					return
				}
				if i%5 == 0 {
					resp.Body.Close() // early close
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	st := e.Stats()
	if st.InUse != 0 || st.InFlight != 0 || st.Open != st.Idle || st.Idle > 4 || st.Failures != 0 {
		t.Errorf("inconsistent stats after the load: %+v", st)
	}
}

// TestHTTP1DeadlineNotLeftOnIdleConn checks that the deadline of a request
// whose response has no body does not stay on the connection it returns to
// the idle stack.
func TestHTTP1DeadlineNotLeftOnIdleConn(t *testing.T) {
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	p := newTestPool(t, Options{ResponseHeaderTimeout: 5 * time.Second})
	e := endpoint(t, p, s.URL, HTTP1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	roundTrip(t, e, newRequest(t, "GET", "/", nil).WithContext(ctx))
	time.Sleep(150 * time.Millisecond)
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if st := e.Stats(); st.Dials != 1 || st.Failures != 0 || st.Retries != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestHTTP1DrainChunkedOnClose(t *testing.T) {
	b := newRawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
		}
	})
	p := newTestPool(t, Options{})
	e, _ := p.Get(Key{Address: b.addr(), Protocol: HTTP1})
	for i := 0; i < 3; i++ {
		resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if st := e.Stats(); st.Dials != 1 || st.Reused != 2 || st.Idle != 1 {
		t.Errorf("a drained chunked body did not keep its connection: %+v", st)
	}
}

func TestHTTP1CloseUnblocksRead(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	s, _ := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
		<-gate
	}))
	p := newTestPool(t, Options{})
	e := endpoint(t, p, s.URL, HTTP1)
	resp, err := e.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 10))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	resp.Body.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("Read succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	eventually(t, "the connection to be released", func() bool {
		st := e.Stats()
		return st.Open == 0 && st.InUse == 0 && st.InFlight == 0
	})
}
