package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestHTTP2WriteTimeoutPerStream checks that Limits.WriteTimeout bounds
// each HTTP/2 stream of rauta's server, as it bounds an HTTP/1 response:
// a client that stops reading one response (it gives that stream no
// window) has that stream reset once the timeout has passed, while the
// connection's other streams are served, before and after.
func TestHTTP2WriteTimeoutPerStream(t *testing.T) {
	const timeout = 300 * time.Millisecond
	big := bytes.Repeat([]byte("x"), 1<<20)
	backend := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		io.WriteString(w, "ok")
	}))
	p := newTestProxy(t, Options{Limits: Limits{WriteTimeout: timeout}})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {backend.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	a, _ := p.Addr("gw/http")
	h := dialH2(t, a.String())
	// Streams get a 1 KiB window; the connection keeps its 64 KiB.
	h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 10})

	type streamSeen struct {
		status int
		body   []byte
		ended  bool
		reset  http2.ErrCode
		rst    bool
		at     time.Time
	}
	seen := map[uint32]*streamSeen{}
	// readUntil reads frames until done reports true for the stream.
	readUntil := func(id uint32, done func(*streamSeen) bool) *streamSeen {
		t.Helper()
		for {
			if s := seen[id]; s != nil && done(s) {
				return s
			}
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatalf("waiting on stream %d: %v", id, err)
			}
			st := seen[f.Header().StreamID]
			if st == nil && f.Header().StreamID != 0 {
				st = &streamSeen{}
				seen[f.Header().StreamID] = st
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					h.fr.WriteSettingsAck()
				}
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v: the connection must stay up", f.ErrCode)
			case *http2.HeadersFrame:
				fields, err := h.dec.DecodeFull(f.HeaderBlockFragment())
				if err != nil {
					t.Fatal(err)
				}
				for _, hf := range fields {
					if hf.Name == ":status" {
						st.status = atoiStatus(hf.Value)
					}
				}
				st.ended = st.ended || f.StreamEnded()
			case *http2.DataFrame:
				st.body = append(st.body, f.Data()...)
				st.ended = st.ended || f.StreamEnded()
				// Give the connection window back, never the stream's.
				if n := len(f.Data()); n > 0 {
					h.fr.WriteWindowUpdate(0, uint32(n))
				}
			case *http2.RSTStreamFrame:
				st.rst, st.reset, st.at = true, f.ErrCode, time.Now()
			}
		}
	}
	small := func(id uint32) {
		t.Helper()
		h.headers(id, "/small", "", true)
		s := readUntil(id, func(s *streamSeen) bool { return s.ended || s.rst })
		if s.rst || s.status != 200 || string(s.body) != "ok" {
			t.Fatalf("stream %d: status %d, body %q, reset %v; want 200 ok", id, s.status, s.body, s.rst)
		}
	}

	start := time.Now()
	h.headers(1, "/big", "", true)
	s1 := readUntil(1, func(s *streamSeen) bool { return len(s.body) >= 1<<10 || s.rst })
	if s1.status != 200 {
		t.Fatalf("stream 1: status %d, want 200", s1.status)
	}
	small(3) // the stalled stream holds no other
	s1 = readUntil(1, func(s *streamSeen) bool { return s.rst || s.ended })
	if !s1.rst || s1.reset != http2.ErrCodeInternal {
		t.Fatalf("stalled stream: ended %v, reset %v (%v); want RST_STREAM INTERNAL_ERROR", s1.ended, s1.rst, s1.reset)
	}
	if d := s1.at.Sub(start); d < timeout {
		t.Errorf("stalled stream reset after %v, before the WriteTimeout of %v", d, timeout)
	}
	if len(s1.body) > 1<<10 {
		t.Errorf("stalled stream got %d bytes with a 1 KiB window", len(s1.body))
	}
	small(5) // and the connection serves on
}

func atoiStatus(s string) int {
	n := 0
	for _, b := range []byte(s) {
		n = n*10 + int(b-'0')
	}
	return n
}

// TestGracefulShutdownHTTP2 shuts the proxy down while an HTTP/2
// connection (net/http's client) has streams in flight: Shutdown waits for
// them, each gets its whole answer, and a request after it is refused.
func TestGracefulShutdownHTTP2(t *testing.T) {
	const streams = 3
	started := make(chan struct{}, streams)
	release := make(chan struct{})
	backend := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "held")
	}))
	p := New(Options{Logger: quietLogger(t)})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {backend.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	client := clientFor(true)
	results := make(chan string, streams)
	for range streams {
		go func() {
			resp, err := client.Get(base + "/hold")
			if err != nil {
				results <- err.Error()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%s %d %s %v", resp.Proto, resp.StatusCode, b, err)
		}()
	}
	for range streams {
		<-started
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with streams in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for range streams {
		if got := <-results; got != "HTTP/2.0 200 held <nil>" {
			t.Errorf("stream in flight: %s", got)
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if resp, err := client.Get(base + "/hold"); err == nil {
		resp.Body.Close()
		t.Errorf("request after Shutdown: %s", resp.Status)
	}
}
