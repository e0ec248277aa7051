package h1server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type startFunc = func(testing.TB, http.Handler, testConfig) *testServer

// textHandler answers every request with body, as text/plain (set, so
// that net/http does not sniff).
func textHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	})
}

func TestKeepAlive(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("hello"), testConfig{})
		c := dial(t, ts.addr)
		for i := range 3 {
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			r := c.read("GET")
			if r.StatusCode != 200 || r.body != "hello" || r.Close || r.ContentLength != 5 {
				t.Fatalf("request %d: %d %q close=%v CL=%d", i, r.StatusCode, r.body, r.Close, r.ContentLength)
			}
			if r.Header.Get("Date") == "" {
				t.Error("no Date")
			}
		}
	})
}

func TestPipelining(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" +
			"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n" +
			"GET /4 HTTP/1.1\r\nHost: x\r\n\r\n")
		var got []string
		for _, m := range []string{"GET", "POST", "POST", "GET"} {
			got = append(got, c.read(m).body)
		}
		want := []string{"GET /1 ", "POST /2 body", "POST /3 ab", "GET /4 "}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("(-want +got)\n%s", d)
		}
	})
}

func TestHTTP10(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		big := strings.Repeat("b", 10000)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			if r.URL.Path == "/big" {
				io.WriteString(w, big)
				return
			}
			io.WriteString(w, "small")
		}), testConfig{})

		t.Run("close by default", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("GET / HTTP/1.0\r\n\r\n")
			if r := c.read("GET"); r.body != "small" {
				t.Fatalf("body %q", r.body)
			}
			if !c.closed(5 * time.Second) {
				t.Error("connection not closed")
			}
		})
		t.Run("keep-alive", func(t *testing.T) {
			c := dial(t, ts.addr)
			for range 2 {
				c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
				head := c.rawHead()
				if !strings.Contains(head, "\r\nConnection: keep-alive\r\n") || !strings.Contains(head, "\r\nContent-Length: 5\r\n") {
					t.Fatalf("head %q", head)
				}
				io.ReadFull(c.br, make([]byte, 5))
			}
		})
		t.Run("unknown length ends with the connection", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			head := c.rawHead()
			if strings.Contains(head, "Content-Length") || strings.Contains(head, "chunked") || strings.Contains(head, "keep-alive") {
				t.Fatalf("head %q", head)
			}
			rest, err := io.ReadAll(c.br)
			if err != nil || string(rest) != big {
				t.Fatalf("body of %d bytes, %v", len(rest), err)
			}
		})
	})
}

func TestConnectionClose(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("x"), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if r := c.read("GET"); !r.Close {
			t.Error("no Connection: close")
		}
		if !c.closed(5 * time.Second) {
			t.Error("connection not closed")
		}
	})
}

func TestHandlerConnectionClose(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read("GET"); !r.Close || r.body != "bye" {
			t.Errorf("close %v body %q", r.Close, r.body)
		}
		if !c.closed(5 * time.Second) {
			t.Error("connection not closed")
		}
	})
}

func TestChunkedRequestBody(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s|%v|%d|%v|%s", b, err, r.ContentLength, r.TransferEncoding, r.Trailer.Get("X-Sum"))
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n")
		if r := c.read("POST"); r.body != "hello world|<nil>|-1|[chunked]|11" {
			t.Errorf("got %q", r.body)
		}
	})
}

func TestResponseFraming(t *testing.T) {
	for _, c := range []struct {
		name     string
		size     int
		flush    bool
		declared bool
		wantCL   int64 // -1: chunked
	}{
		{"empty", 0, false, false, 0},
		{"small", 64, false, false, 64},
		{"medium", 1500, false, false, 1500},
		{"large", 20000, false, false, -1},
		{"flushed", 64, true, false, -1},
		{"declared large", 20000, false, true, 20000},
		{"declared flushed", 64, true, true, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEachImpl(t, func(t *testing.T, start startFunc) {
				body := strings.Repeat("z", c.size)
				ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/plain")
					if c.declared {
						w.Header().Set("Content-Length", strconv.Itoa(c.size))
					}
					half := c.size / 2
					io.WriteString(w, body[:half])
					if c.flush {
						w.(http.Flusher).Flush()
					}
					io.WriteString(w, body[half:])
				}), testConfig{})
				conn := dial(t, ts.addr)
				for range 2 {
					conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
					r := conn.read("GET")
					if r.body != body || r.ContentLength != c.wantCL {
						t.Fatalf("body of %d bytes, CL %d (TE %v); want %d bytes, CL %d", len(r.body), r.ContentLength, r.TransferEncoding, c.size, c.wantCL)
					}
					if c.wantCL < 0 && !cmp.Equal(r.TransferEncoding, []string{"chunked"}) {
						t.Fatalf("TE %v", r.TransferEncoding)
					}
				}
			})
		})
	}
}

func TestStreamingFlush(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		release := make(chan struct{})
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "first")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
			<-release
			io.WriteString(w, "second")
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
			t.Fatalf("first part %q %v", buf, err)
		}
		close(release)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "second" {
			t.Fatalf("rest %q %v", rest, err)
		}
	})
}

func TestResponseTrailers(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Declared")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "body")
			w.Header().Set("X-Declared", "d")
			w.Header().Set(http.TrailerPrefix+"X-Late", "l")
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read("GET")
		want := http.Header{"X-Declared": {"d"}, "X-Late": {"l"}}
		if d := cmp.Diff(want, r.Trailer); d != "" || r.body != "body" {
			t.Errorf("body %q trailer (-want +got)\n%s", r.body, d)
		}
	})
}

func TestExpectContinue(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/reject" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "text/plain")
			w.Write(b)
		}), testConfig{})

		t.Run("read", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
			if r := c.read("PUT"); r.StatusCode != http.StatusContinue {
				t.Fatalf("status %d, want 100", r.StatusCode)
			}
			c.send("data")
			if r := c.read("PUT"); r.StatusCode != 200 || r.body != "data" || r.Close {
				t.Fatalf("status %d body %q close %v", r.StatusCode, r.body, r.Close)
			}
		})
		t.Run("not read", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("PUT /reject HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
			if r := c.read("PUT"); r.StatusCode != http.StatusUnauthorized || !r.Close {
				t.Fatalf("status %d close %v, want 401 and close", r.StatusCode, r.Close)
			}
		})
	})
}

func TestExpectationFailed(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("x"), testConfig{})
		c := dial(t, ts.addr)
		c.send("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\nx")
		if r := c.read("PUT"); r.StatusCode != http.StatusExpectationFailed {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
}

func TestHijack(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		states := &recorder[http.ConnState]{}
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
				t.Errorf("Write after Hijack: %v", err)
			}
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo: " + line)
			brw.Flush()
		}), testConfig{connState: func(_ net.Conn, st http.ConnState) { states.add(st) }})
		c := dial(t, ts.addr)
		// The first line after the head arrives with it: it must be in
		// the hijacker's reader.
		c.send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nping\n")
		if r := c.rawHead(); !strings.HasPrefix(r, "HTTP/1.1 101 ") {
			t.Fatalf("head %q", r)
		}
		line, err := c.br.ReadString('\n')
		if err != nil || line != "echo: ping\n" {
			t.Fatalf("got %q %v", line, err)
		}
		if !c.closed(5 * time.Second) {
			t.Fatal("not closed")
		}
		want := []http.ConnState{http.StateNew, http.StateActive, http.StateHijacked}
		if d := cmp.Diff(want, states.get()); d != "" {
			t.Errorf("states (-want +got)\n%s", d)
		}
	})
}

func TestHEAD(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("hello"), testConfig{})
		c := dial(t, ts.addr)
		c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read("HEAD"); r.ContentLength != 5 || r.body != "" {
			t.Fatalf("HEAD: CL %d body %q", r.ContentLength, r.body)
		}
		if r := c.read("GET"); r.body != "hello" {
			t.Fatalf("GET after HEAD: %q", r.body)
		}
	})
}

func TestInformational(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Add("Link", "</b.js>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "done")
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		var links [][]string
		for range 2 {
			r := c.read("GET")
			if r.StatusCode != http.StatusEarlyHints {
				t.Fatalf("status %d, want 103", r.StatusCode)
			}
			links = append(links, r.Header["Link"])
		}
		r := c.read("GET")
		links = append(links, r.Header["Link"])
		want := [][]string{{"</a.css>; rel=preload"}, {"</a.css>; rel=preload", "</b.js>; rel=preload"}, {"</a.css>; rel=preload", "</b.js>; rel=preload"}}
		if d := cmp.Diff(want, links); d != "" || r.body != "done" {
			t.Errorf("body %q links (-want +got)\n%s", r.body, d)
		}
	})
}

func TestBodylessStatuses(t *testing.T) {
	for _, code := range []int{http.StatusNoContent, http.StatusNotModified} {
		forEachImpl(t, func(t *testing.T, start startFunc) {
			var writeErr error
			ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(code)
				_, writeErr = io.WriteString(w, "body")
			}), testConfig{})
			c := dial(t, ts.addr)
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			head := c.rawHead()
			if !strings.HasPrefix(head, "HTTP/1.1 "+strconv.Itoa(code)) || strings.Contains(head, "Content-Length") || strings.Contains(head, "Transfer-Encoding") {
				t.Fatalf("head %q", head)
			}
			if !errors.Is(writeErr, http.ErrBodyNotAllowed) {
				t.Errorf("Write: %v", writeErr)
			}
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := c.read("GET"); r.StatusCode != code {
				t.Errorf("second status %d", r.StatusCode)
			}
		})
	}
}

func TestContentLengthMismatch(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		var overErr error
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			if r.URL.Path == "/over" {
				_, overErr = io.WriteString(w, "0123456789x")
				return
			}
			io.WriteString(w, "short")
		}), testConfig{})

		for _, path := range []string{"/over", "/short"} {
			c := dial(t, ts.addr)
			c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, err := c.tryRead("GET"); err == nil {
				t.Errorf("%s: short body read without error", path)
			}
			if !c.closed(5 * time.Second) {
				t.Errorf("%s: connection kept after a short body", path)
			}
		}
		if !errors.Is(overErr, http.ErrContentLength) {
			t.Errorf("writing past Content-Length: %v", overErr)
		}
	})
}

func TestUnreadBody(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("ok"), testConfig{})
		t.Run("small is discarded", func(t *testing.T) {
			c := dial(t, ts.addr)
			for range 2 {
				c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("a", 1000))
				if r := c.read("POST"); r.body != "ok" || r.Close {
					t.Fatalf("body %q close %v", r.body, r.Close)
				}
			}
			c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.read("POST")
			if r := c.read("GET"); r.body != "ok" {
				t.Fatalf("after chunked: %q", r.body)
			}
		})
		t.Run("large closes", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + strings.Repeat("a", 1000))
			if r := c.read("POST"); r.body != "ok" || !r.Close {
				t.Fatalf("body %q close %v", r.body, r.Close)
			}
		})
	})
}

func TestConnStates(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		states := &recorder[http.ConnState]{}
		closed := make(chan struct{})
		ts := start(t, textHandler("x"), testConfig{connState: func(_ net.Conn, st http.ConnState) {
			states.add(st)
			if st == http.StateClosed {
				close(closed)
			}
		}})
		c := dial(t, ts.addr)
		for range 2 {
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.read("GET")
		}
		c.nc.Close()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatal("no StateClosed")
		}
		want := []http.ConnState{http.StateNew, http.StateActive, http.StateIdle, http.StateActive, http.StateIdle, http.StateClosed}
		if d := cmp.Diff(want, states.get()); d != "" {
			t.Errorf("(-want +got)\n%s", d)
		}
	})
}

func TestShutdown(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		started := make(chan struct{})
		release := make(chan struct{})
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				close(started)
				<-release
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "done")
		}), testConfig{})

		idle := dial(t, ts.addr)
		idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		idle.read("GET")

		busy := dial(t, ts.addr)
		busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started

		shut := make(chan error, 1)
		go func() { shut <- ts.shutdown(context.Background()) }()

		if !idle.closed(5 * time.Second) {
			t.Error("idle connection not closed")
		}
		waitFor(t, func() bool {
			c, err := net.DialTimeout("tcp", ts.addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned %v with a request in flight", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if r := busy.read("GET"); r.body != "done" || !r.Close {
			t.Errorf("in-flight response %q close %v", r.body, r.Close)
		}
		select {
		case err := <-shut:
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Shutdown did not return")
		}
	})
}

func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReadHeaderTimeout(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("x"), testConfig{readHeaderTimeout: 100 * time.Millisecond})
		t.Run("first request", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("GET / HTTP/1.1\r\n")
			if !c.closed(5 * time.Second) {
				t.Error("slow head not cut off")
			}
		})
		t.Run("later request", func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.read("GET")
			time.Sleep(200 * time.Millisecond) // idle is not limited by it
			c.send("GET / HTTP/1.1\r\n")
			if !c.closed(5 * time.Second) {
				t.Error("slow head not cut off")
			}
		})
	})
}

func TestIdleTimeout(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		ts := start(t, textHandler("x"), testConfig{idleTimeout: 100 * time.Millisecond})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.read("GET")
		t0 := time.Now()
		if !c.closed(5 * time.Second) {
			t.Fatal("idle connection kept")
		}
		if d := time.Since(t0); d < 50*time.Millisecond {
			t.Errorf("closed after %v", d)
		}
	})
}

func TestReadTimeoutBody(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		errs := make(chan error, 1)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(r.Body)
			errs <- err
		}), testConfig{readTimeout: 200 * time.Millisecond})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
		select {
		case err := <-errs:
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("body error %v, want a timeout", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("body read not cut off")
		}
	})
}

func TestWriteTimeout(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		errs := make(chan error, 1)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, 64<<10)
			for {
				if _, err := w.Write(buf); err != nil {
					errs <- err
					return
				}
			}
		}), testConfig{writeTimeout: 200 * time.Millisecond})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
		select {
		case err := <-errs:
			if err == nil {
				t.Error("no error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("write not cut off")
		}
	})
}

func TestClientDisconnectCancelsContext(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		started := make(chan struct{})
		result := make(chan error, 1)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				result <- r.Context().Err()
			case <-time.After(10 * time.Second):
				result <- errors.New("context not cancelled")
			}
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		<-started
		t0 := time.Now()
		c.nc.Close()
		if err := <-result; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		t.Logf("cancelled %v after the client closed", time.Since(t0))
	})
}

func TestClientDisconnectWithBody(t *testing.T) {
	// The body is read to its end, then the handler waits: the client
	// leaving is noticed.
	forEachImpl(t, func(t *testing.T, start startFunc) {
		started := make(chan struct{})
		result := make(chan error, 1)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			close(started)
			select {
			case <-r.Context().Done():
				result <- nil
			case <-time.After(10 * time.Second):
				result <- errors.New("context not cancelled")
			}
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
		<-started
		c.nc.Close()
		if err := <-result; err != nil {
			t.Fatal(err)
		}
	})
}

func TestSlowHandlerKeepsPipelinedRequest(t *testing.T) {
	// A watch that reads the next request's first byte must keep it.
	forEachImpl(t, func(t *testing.T, start startFunc) {
		first := make(chan struct{})
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				close(first)
				select {
				case <-r.Context().Done():
					t.Error("context cancelled while the client waits")
				case <-time.After(300 * time.Millisecond):
				}
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, r.URL.Path)
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		<-first
		time.Sleep(100 * time.Millisecond)
		c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read("GET"); r.body != "/slow" {
			t.Fatalf("first %q", r.body)
		}
		if r := c.read("GET"); r.body != "/next" {
			t.Fatalf("second %q", r.body)
		}
	})
}

func TestContextEndsWithHandler(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		var (
			mu      sync.Mutex
			derived context.Context
			ran     = make(chan struct{})
		)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithCancel(r.Context())
			_ = cancel
			mu.Lock()
			derived = ctx
			mu.Unlock()
			context.AfterFunc(r.Context(), func() { close(ran) })
			if r.Context().Err() != nil {
				t.Error("context cancelled early")
			}
			if r.Context().Value(http.LocalAddrContextKey) == nil {
				t.Error("no LocalAddrContextKey")
			}
			io.WriteString(w, "x")
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.read("GET")
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("AfterFunc did not run")
		}
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(derived.Err(), context.Canceled) {
			t.Errorf("derived context: %v", derived.Err())
		}
	})
}

func TestRequestFields(t *testing.T) {
	forEachImpl(t, func(t *testing.T, start startFunc) {
		got := make(chan []any, 1)
		ts := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got <- []any{r.Method, r.Host, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Proto, r.RemoteAddr, r.TLS == nil, r.Header.Get("X-A"), r.Header["Host"]}
		}), testConfig{})
		c := dial(t, ts.addr)
		c.send("GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nX-A: b\r\n\r\n")
		c.read("GET")
		want := []any{"GET", "example.com", "/p?q=1", "/p", "q=1", "HTTP/1.1", c.nc.LocalAddr().String(), true, "b", []string(nil)}
		if d := cmp.Diff(want, <-got); d != "" {
			t.Errorf("(-want +got)\n%s", d)
		}
	})
}

// logBuffer is a slog handler target safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPanic(t *testing.T) {
	var logs logBuffer
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), testConfig{log: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, path := range []string{"/abort", "/boom"} {
		c := dial(t, ts.addr)
		c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := c.tryRead("GET"); err == nil {
			t.Errorf("%s: got a response", path)
		}
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "boom") })
	if s := logs.String(); strings.Contains(s, "abort") || strings.Count(s, "panic serving request") != 1 || !strings.Contains(s, "goroutine") {
		t.Errorf("logs:\n%s", s)
	}
}

func TestBodyTakenBackAfterHandler(t *testing.T) {
	// A goroutine the handler left behind reads the body after the
	// handler returned: it gets an error, never the next request.
	late := make(chan error, 1)
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leak" {
			body := r.Body
			go func() {
				time.Sleep(100 * time.Millisecond)
				n, err := body.Read(make([]byte, 100))
				if n > 0 {
					err = fmt.Errorf("read %d bytes", n)
				}
				late <- err
			}()
		}
		io.WriteString(w, r.URL.Path)
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("POST /leak HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
	c.read("POST")
	c.send("POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + strings.Repeat("n", 200))
	if r := c.read("POST"); r.body != "/next" {
		t.Fatalf("next %q", r.body)
	}
	if err := <-late; !errors.Is(err, http.ErrBodyReadAfterClose) {
		t.Errorf("late read: %v", err)
	}
}

func TestBodyReaderBlockedWhenHandlerReturns(t *testing.T) {
	// The goroutine is blocked in a read when the handler returns: it is
	// woken with an error and the connection is closed.
	readErr := make(chan error, 1)
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inRead := make(chan struct{})
		go func() {
			close(inRead)
			_, err := io.ReadAll(r.Body)
			readErr <- err
		}()
		<-inRead
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "early answer")
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	if r := c.read("POST"); r.body != "early answer" || !r.Close {
		t.Fatalf("body %q close %v", r.body, r.Close)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader still blocked")
	}
}

func TestMaxHeaderBytes(t *testing.T) {
	ts := startOurs(t, textHandler("x"), testConfig{maxHeaderBytes: 1024})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 1100) + "\r\n\r\n")
	if r := c.read("GET"); r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", r.StatusCode)
	}
	c = dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 900) + "\r\n\r\n")
	if r := c.read("GET"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
}

func TestLargeHeadSpanningReads(t *testing.T) {
	got := make(chan int, 1)
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- len(r.Header["X-Pad"])
	}), testConfig{})
	c := dial(t, ts.addr)
	head := "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 200)+"\r\n", 100) + "\r\n"
	for i := 0; i < len(head); i += 1000 {
		c.send(head[i:min(i+1000, len(head))])
		time.Sleep(time.Millisecond)
	}
	c.read("GET")
	if n := <-got; n != 100 {
		t.Errorf("%d X-Pad values", n)
	}
}

func TestRequestStateNotShared(t *testing.T) {
	// Headers, trailers and URLs of one request do not leak into the
	// next on the same connection.
	got := &recorder[string]{}
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		got.add(fmt.Sprintf("%s %v %v %v", r.URL, r.Header, r.Trailer, r.TransferEncoding))
		w.Header().Set("X-Path", r.URL.Path)
		w.Header().Add("X-Count", strconv.Itoa(len(w.Header())))
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("POST /a?x HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: t\r\n\r\n")
	r1 := c.read("POST")
	c.send("GET /b HTTP/1.1\r\nHost: x\r\nX-Two: 2\r\n\r\n")
	r2 := c.read("GET")
	want := []string{"/a?x map[X-One:[1]] map[X-T:[t]] [chunked]", "/b map[X-Two:[2]] map[] []"}
	if d := cmp.Diff(want, got.get()); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if r1.Header.Get("X-Path") != "/a" || r2.Header.Get("X-Path") != "/b" || r2.Header.Get("X-Count") != "1" {
		t.Errorf("response headers %v / %v", r1.Header, r2.Header)
	}
}

func TestResponseHeaderSanitised(t *testing.T) {
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Split"] = []string{"a\r\nInjected: yes"}
		w.Header()["Bad Name"] = []string{"v"}
		w.Header().Set("Transfer-Encoding", "gzip")
		io.WriteString(w, "x")
	}), testConfig{})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	head := c.rawHead()
	if strings.Contains(head, "\r\nInjected") || strings.Contains(head, "Bad Name") || strings.Contains(head, "gzip") || !strings.Contains(head, "X-Split: a  Injected: yes\r\n") {
		t.Errorf("head %q", head)
	}
}

func TestDateCached(t *testing.T) {
	s := &Server{}
	a := s.date()
	if _, err := time.Parse(http.TimeFormat, string(a)); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { s.date() }); n > 0.1 {
		t.Errorf("%v allocations per Date", n)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	s := &Server{ErrorLog: quietLogger()}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

func TestWriteHeaderMisuse(t *testing.T) {
	var logs logBuffer
	ts := startOurs(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		w.WriteHeader(202)
		w.Header().Set("X-After", "1") // after WriteHeader: not sent
		io.WriteString(w, "x")
	}), testConfig{log: slog.New(slog.NewTextHandler(&logs, nil))})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("GET")
	if r.StatusCode != 201 || r.Header.Get("X-After") != "" {
		t.Errorf("status %d header %v", r.StatusCode, r.Header)
	}
	if !strings.Contains(logs.String(), "superfluous") {
		t.Errorf("logs %q", logs.String())
	}
}
