package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// quietLogger discards logs unless -v is given.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestProxy returns a proxy that is shut down at the end of the test.
func newTestProxy(t testing.TB, opts Options) *Proxy {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	p := New(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// echoBackend is an httptest server that answers with its name, the
// request's method, path and selected headers.
func echoBackend(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-XFP", r.Header.Get("X-Forwarded-Proto"))
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// addrOf returns the host:port of an httptest server.
func addrOf(s *httptest.Server) string {
	return strings.TrimPrefix(strings.TrimPrefix(s.URL, "http://"), "https://")
}

// simpleConfig is one HTTP listener on an ephemeral port with one route
// whose rules forward to the named backends.
func simpleConfig(backends map[string][]string, rules ...Rule) Config {
	cfg := Config{
		Listeners: []Listener{{Name: "gw/http", Address: "127.0.0.1", Port: 0, Protocol: HTTP}},
		Routes:    []Route{{Namespace: "default", Name: "r", Listeners: []string{"gw/http"}, Rules: rules}},
	}
	for name, addrs := range backends {
		b := Backend{Spec: upstream.Spec{Name: name}}
		for _, a := range addrs {
			b.Endpoints = append(b.Endpoints, upstream.Endpoint{Address: a})
		}
		cfg.Backends = append(cfg.Backends, b)
	}
	return cfg
}

func prefix(p string) []router.Match {
	return []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: p}}}
}

// baseURL returns http://addr of a listener.
func baseURL(t testing.TB, p *Proxy, listener string) string {
	t.Helper()
	if suiteMount != "" {
		return mountedURL(t, p, listener)
	}
	a, ok := p.Addr(listener)
	if !ok {
		t.Fatalf("listener %q not bound", listener)
	}
	return "http://" + a.String()
}

// get performs a GET and returns status, body and headers.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// httpTestServer is an httptest.Server with a helper for its address.
type httpTestServer struct{ *httptest.Server }

func newHTTPTestServer(t testing.TB, h http.Handler) *httpTestServer {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return &httpTestServer{s}
}

func (s *httpTestServer) addr() string { return addrOf(s.Server) }

func routerRequest(host, path, method string) router.Request {
	return router.Request{Host: host, Path: path, Method: method}
}
