package h1server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFullDuplex(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			if err := rc.EnableFullDuplex(); err != nil {
				t.Errorf("EnableFullDuplex: %v", err)
			}
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(200)
			rc.Flush()
			buf := make([]byte, 10)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					w.Write([]byte(strings.ToUpper(string(buf[:n]))))
					rc.Flush()
				}
				if err != nil {
					return
				}
			}
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, word := range []string{"ping", "pong"} {
			c.send(fmt.Sprintf("%x\r\n%s\r\n", len(word), word))
			got := make([]byte, len(word))
			if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != strings.ToUpper(word) {
				t.Fatalf("echo %q %v", got, err)
			}
		}
		c.send("0\r\n\r\n")
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
			t.Fatalf("rest %q %v", rest, err)
		}
	})
}

func TestEarlyFlushDiscardsUntouchedBody(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "early")
			w.(http.Flusher).Flush()
			b, err := io.ReadAll(r.Body)
			io.WriteString(w, fmt.Sprintf(" %d %v", len(b), err))
		}), testConfig{})
		c := dial(t, ts.addr)
		for range 2 {
			c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
			if r := c.read("POST"); r.body != "early 0 "+http.ErrBodyReadAfterClose.Error() || r.Close {
				t.Fatalf("body %q close %v", r.body, r.Close)
			}
		}
	})
}

func TestWatchAbortedWhenHandlerReturns(t *testing.T) {
	// The handler waits on its context long enough for a disconnect
	// watch to start, then returns: the connection goes on serving.
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				select {
				case <-r.Context().Done():
					t.Error("context cancelled")
				case <-time.After(100 * time.Millisecond):
				}
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, r.URL.Path)
		}), testConfig{})
		c := dial(t, ts.addr)
		for _, p := range []string{"/slow", "/fast", "/slow", "/fast"} {
			c.send("GET " + p + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := c.read("GET"); r.body != p {
				t.Fatalf("got %q, want %q", r.body, p)
			}
		}
	})
}

func TestTolerateCRLFAfterBody(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("ok"), testConfig{})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.read("POST")
		if r := c.read("GET"); r.StatusCode != 200 {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
}

func TestCloseClosesActive(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		started := make(chan struct{})
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-r.Context().Done()
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started
		ts.close()
		if !c.closed(5 * time.Second) {
			t.Error("active connection kept open by Close")
		}
	})
}

func TestDisconnectCheckDisabled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	result := make(chan error, 1)
	s := &Server{
		ErrorLog:                quietLogger(),
		DisconnectCheckInterval: -1,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				result <- errors.New("cancelled with the check disabled")
			case <-time.After(300 * time.Millisecond):
				result <- nil
			}
		}),
	}
	go s.Serve(ln)
	defer s.Close()
	c := dial(t, ln.Addr().String())
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	c.nc.Close()
	if err := <-result; err != nil {
		t.Error(err)
	}
}

func TestBodyClosedByHandlerIsDrained(t *testing.T) {
	readErr := make(chan error, 1)
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			r.Body.Close()
			_, err := r.Body.Read(make([]byte, 1))
			readErr <- err
		}
		io.WriteString(w, r.URL.Path)
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("POST /close HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("POST"); r.Close {
		t.Error("connection not kept")
	}
	if r := c.read("GET"); r.body != "/next" {
		t.Errorf("next %q", r.body)
	}
	if err := <-readErr; !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("read after Close: %v", err)
	}
}

func TestClientDisconnectTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	result := make(chan error, 1)
	s := &Server{
		ErrorLog:                quietLogger(),
		DisconnectCheckInterval: 10 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil {
				t.Error("no TLS state")
			}
			close(started)
			select {
			case <-r.Context().Done():
				result <- nil
			case <-time.After(10 * time.Second):
				result <- errors.New("not cancelled")
			}
		}),
	}
	go s.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}))
	defer s.Close()
	tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	tc.Close()
	if err := <-result; err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentClients mixes request shapes over many connections at
// once; with -race it checks the reuse of per-connection state.
func TestConcurrentClients(t *testing.T) {
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("X-Path", r.URL.Path)
		if r.URL.Query().Get("flush") != "" {
			w.(http.Flusher).Flush()
		}
		w.Write(b)
		w.Write([]byte(r.Header.Get("X-Tag")))
	}), testConfig{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			c := dial(t, ts.addr)
			for i := range 40 {
				tag := fmt.Sprintf("g%di%d", g, i)
				body := strings.Repeat("b", rng.IntN(9000))
				q := ""
				if rng.IntN(3) == 0 {
					q = "?flush=1"
				}
				var req string
				if rng.IntN(2) == 0 {
					req = "POST /" + tag + q + " HTTP/1.1\r\nHost: x\r\nX-Tag: " + tag + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
				} else {
					req = "POST /" + tag + q + " HTTP/1.1\r\nHost: x\r\nX-Tag: " + tag + "\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(body), body) + "0\r\n\r\n"
					if body == "" {
						req = "POST /" + tag + q + " HTTP/1.1\r\nHost: x\r\nX-Tag: " + tag + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
					}
				}
				c.send(req)
				r, err := c.tryRead("POST")
				if err != nil {
					t.Errorf("%s: %v", tag, err)
					return
				}
				if r.body != body+tag || r.Header.Get("X-Path") != "/"+tag {
					t.Errorf("%s: body of %d bytes, path %q", tag, len(r.body), r.Header.Get("X-Path"))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestHeadAndNotModifiedLengths(t *testing.T) {
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
		if r.Method == http.MethodGet {
			w.WriteHeader(http.StatusNotModified)
		}
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
	if h := c.rawHead(); !strings.Contains(h, "Content-Length: 1234\r\n") {
		t.Errorf("HEAD head %q", h)
	}
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if h := c.rawHead(); !strings.HasPrefix(h, "HTTP/1.1 304") || !strings.Contains(h, "Content-Length: 1234\r\n") {
		t.Errorf("304 head %q", h)
	}
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.StatusCode != 304 {
		t.Errorf("connection not reusable: %d", r.StatusCode)
	}
}

func TestShutdownClosesNewIdleAfterGrace(t *testing.T) {
	// A connection that never sends a request is not waited for beyond
	// the grace period; one that is mid-request is.
	if testing.Short() {
		t.Skip("waits for the grace period")
	}
	// Shutdown must see the connection: wait until the server has
	// accepted it (dial returns once the kernel has, which is earlier).
	accepted := make(chan struct{}, 1)
	ts := startOurs(t, textHandler("x"), testConfig{connState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}})
	c := dial(t, ts.addr)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not accept the connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), newConnGrace+5*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := ts.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < newConnGrace-time.Second {
		t.Errorf("new connection closed after %v", d)
	}
	if !c.closed(time.Second) {
		t.Error("not closed")
	}
}
