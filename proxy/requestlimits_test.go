package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// bodyRecorder is a backend that reads every request body to its end and
// notes, per path, how many bodies arrived whole and how many broken.
type bodyRecorder struct {
	mu     sync.Mutex
	whole  map[string]int
	broken map[string]int
}

func newBodyRecorder(t *testing.T) (*bodyRecorder, string) {
	br := &bodyRecorder{whole: map[string]int{}, broken: map[string]int{}}
	s := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		br.mu.Lock()
		if err != nil {
			br.broken[r.URL.Path]++
		} else {
			br.whole[r.URL.Path]++
		}
		br.mu.Unlock()
		if err == nil {
			io.WriteString(w, "ok")
		}
	}))
	return br, s.addr()
}

// counts returns the whole and broken bodies seen for path, waiting a
// moment for a backend handler still reading.
func (br *bodyRecorder) counts(path string) (whole, broken int) {
	time.Sleep(50 * time.Millisecond)
	br.mu.Lock()
	defer br.mu.Unlock()
	return br.whole[path], br.broken[path]
}

// serverCases are the client protocols and proxy servers request limits
// are tested with: rauta's HTTP/1.1 server and x/net's HTTP/2 server, and
// net/http's for both (ServerNetHTTP).
var serverCases = []struct {
	name   string
	h2     bool
	server ServerImpl
}{
	{"h1", false, ServerRauta},
	{"h2", true, ServerRauta},
	{"h1-net-http", false, ServerNetHTTP},
	{"h2-net-http", true, ServerNetHTTP},
}

// clientFor returns a client speaking HTTP/1.1 or, with h2, HTTP/2 with
// prior knowledge over cleartext.
func clientFor(h2 bool) *http.Client {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if h2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// post sends body to url; with chunked set the body has no Content-Length
// (HTTP/1.1 chunked, HTTP/2 DATA frames without content-length).
func post(t *testing.T, c *http.Client, url string, body []byte, chunked bool) (int, string) {
	t.Helper()
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(bytes.NewReader(body)) // hides the length
	}
	req, err := http.NewRequest(http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMaxBodyBytes checks 413 for bodies over the limit in effect: the
// rule's over the listener's, the listener's over Options.Limits. A body
// whose Content-Length says so never reaches the backend; a body without
// one that crosses the limit reaches it broken, never whole. Over HTTP/1.1
// and HTTP/2.
func TestMaxBodyBytes(t *testing.T) {
	for _, tc := range serverCases {
		h2, server := tc.h2, tc.server
		t.Run(tc.name, func(t *testing.T) {
			rec, backend := newBodyRecorder(t)
			p := newTestProxy(t, Options{Server: server, Limits: Limits{MaxBodyBytes: 30}})
			rule := func(path string, max int64) Rule {
				return Rule{Matches: prefix(path), Backends: []BackendRef{{Backend: "a", Weight: 1}}, RequestLimits: RequestLimits{MaxBodyBytes: max}}
			}
			cfg := simpleConfig(map[string][]string{"a": {backend}}, rule("/small", 0), rule("/big", 100))
			cfg.Listeners[0].RequestLimits.MaxBodyBytes = 10
			cfg.Listeners = append(cfg.Listeners, Listener{Name: "plain", Address: "127.0.0.2", Protocol: HTTP})
			cfg.Routes[0].Listeners = append(cfg.Routes[0].Listeners, "plain")
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			c := clientFor(h2)
			base, plain := baseURL(t, p, "gw/http"), baseURL(t, p, "plain")
			body := bytes.Repeat([]byte("x"), 50)
			type result struct {
				Code          int
				Whole, Broken int
			}
			check := func(url, path string, body []byte, chunked bool, want result) {
				t.Helper()
				code, _ := post(t, c, url+path, body, chunked)
				w0, b0 := rec.counts(path)
				got := result{Code: code, Whole: w0, Broken: b0}
				// A body cut short may also never reach the backend, if the
				// limit trips before the request is sent.
				if want.Broken == 1 && got.Broken == 0 {
					got.Broken = 1
				}
				if got != want {
					t.Errorf("POST %s%s (%d bytes, chunked %v): %+v; want %+v", url, path, len(body), chunked, got, want)
				}
				rec.mu.Lock()
				clear(rec.whole)
				clear(rec.broken)
				rec.mu.Unlock()
			}
			check(base, "/small", body, false, result{Code: 413})
			check(base, "/small", body, true, result{Code: 413, Broken: 1})
			check(base, "/small", body[:10], true, result{Code: 200, Whole: 1})
			check(base, "/big", body, false, result{Code: 200, Whole: 1})
			check(base, "/big", body, true, result{Code: 200, Whole: 1})
			check(plain, "/small", body, false, result{Code: 413})
			check(plain, "/small", body[:30], true, result{Code: 200, Whole: 1})
			check(plain, "/big", body, true, result{Code: 200, Whole: 1})
		})
	}
}

// stalledBody is a request body that sends its first bytes and then
// nothing until closed (the client transport closes it once the response
// has come).
type stalledBody struct {
	first   []byte
	release chan struct{}
	once    sync.Once
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.release
	return 0, errors.New("released")
}

func (b *stalledBody) Close() error {
	b.once.Do(func() { close(b.release) })
	return nil
}

// TestRequestReadTimeout checks that a body still arriving when the
// ReadTimeout in effect expires is answered 408 and its backend request
// aborted: the backend never sees a whole body. Over HTTP/1.1 and HTTP/2.
func TestRequestReadTimeout(t *testing.T) {
	for _, tc := range serverCases {
		h2, server := tc.h2, tc.server
		t.Run(tc.name, func(t *testing.T) {
			rec, backend := newBodyRecorder(t)
			p := newTestProxy(t, Options{Server: server})
			cfg := simpleConfig(map[string][]string{"a": {backend}},
				Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
			cfg.Routes[0].RequestLimits.ReadTimeout = 300 * time.Millisecond
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			body := &stalledBody{first: []byte("partial"), release: make(chan struct{})}
			defer body.Close()
			req, err := http.NewRequest(http.MethodPost, baseURL(t, p, "gw/http")+"/upload", body)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := clientFor(h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			elapsed := time.Since(start)
			if resp.StatusCode != http.StatusRequestTimeout || string(msg) != "request body timeout\n" {
				t.Errorf("answer %d %q; want 408", resp.StatusCode, msg)
			}
			if elapsed < 300*time.Millisecond || elapsed > 3*time.Second {
				t.Errorf("answered after %v; want about 300ms", elapsed)
			}
			if whole, _ := rec.counts("/upload"); whole != 0 {
				t.Errorf("backend received %d whole bodies; want the request aborted", whole)
			}
		})
	}
}

// TestRequestWriteTimeout checks that a response still being written when
// the WriteTimeout in effect expires, counted from its first byte, is cut
// off. Over HTTP/1.1 and HTTP/2.
func TestRequestWriteTimeout(t *testing.T) {
	for _, tc := range serverCases {
		h2, server := tc.h2, tc.server
		t.Run(tc.name, func(t *testing.T) {
			backend := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// A slow first byte does not count against the timeout.
				time.Sleep(400 * time.Millisecond)
				for range 40 {
					io.WriteString(w, "tick\n")
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}))
			p := newTestProxy(t, Options{Server: server, Limits: Limits{WriteTimeout: 100 * time.Millisecond}})
			cfg := simpleConfig(map[string][]string{"a": {backend.addr()}},
				Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
			cfg.Listeners[0].RequestLimits.WriteTimeout = 300 * time.Millisecond
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := clientFor(h2).Get(baseURL(t, p, "gw/http") + "/stream")
			if err != nil {
				t.Fatalf("GET: %v (the listener's WriteTimeout must replace the proxy-wide one)", err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			elapsed := time.Since(start)
			if err == nil {
				t.Errorf("the whole response arrived (%d bytes in %v); want it cut off", len(got), elapsed)
			}
			if n := strings.Count(string(got), "tick"); n == 0 || n > 10 {
				t.Errorf("received %d ticks before the cut; want a few (300ms at one per 50ms)", n)
			}
			if elapsed > 1500*time.Millisecond {
				t.Errorf("cut off after %v; want about 700ms", elapsed)
			}
		})
	}
}
