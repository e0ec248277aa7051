package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAccessLogRequestIDAndTrace(t *testing.T) {
	seen := make(chan http.Header, 4)
	back := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Write([]byte("hello"))
	}))
	var buf syncBuffer
	p := New(Options{
		Logger:    quietLogger(t),
		AccessLog: AccessLog{Logger: slog.New(slog.NewJSONHandler(&buf, nil))},
	})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {back.addr()}}, Rule{Matches: prefix("/ok"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, _, rh := get(t, http.DefaultClient, base+"/ok", "X-Request-Id", "spoofed", "Traceparent", tp, "Tracestate", "k=v")
	h := <-seen
	id := h.Get("X-Request-Id")
	if id == "" || id == "spoofed" || rh.Get("X-Request-Id") != id {
		t.Errorf("request id: backend %q, client %q (untrusted incoming must be replaced)", id, rh.Get("X-Request-Id"))
	}
	if h.Get("Traceparent") != tp || h.Get("Tracestate") != "k=v" {
		t.Errorf("trace context not forwarded: %q %q", h.Get("Traceparent"), h.Get("Tracestate"))
	}
	get(t, http.DefaultClient, base+"/ok", "Traceparent", "00-zzzz", "Tracestate", "k=v")
	h = <-seen
	if got, ok := parseTraceparent(h.Get("Traceparent")); !ok || h.Get("Tracestate") != "" {
		t.Errorf("invalid traceparent not replaced: %q (%v) tracestate %q", h.Get("Traceparent"), got, h.Get("Tracestate"))
	}
	get(t, http.DefaultClient, base+"/missing")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Shutdown(ctx) // flushes the log
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(lines), buf.String())
	}
	var first, last map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[2]), &last)
	for k, want := range map[string]any{"route": "default/r", "backend": "b", "method": "GET", "path": "/ok", "status": float64(200),
		"response_bytes": float64(5), "request_id": id, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "listener": "gw/http", "upstream": back.addr()} {
		if first[k] != want {
			t.Errorf("record field %s = %v, want %v", k, first[k], want)
		}
	}
	if last["status"] != float64(404) || last["reason"] != "no_route" {
		t.Errorf("gateway answer record: %v", last)
	}
}

func TestParseTraceparent(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"", false},
	} {
		if _, ok := parseTraceparent(tc.in); ok != tc.ok {
			t.Errorf("parseTraceparent(%q) ok=%v, want %v", tc.in, ok, tc.ok)
		}
	}
}

// BenchmarkProxyHTTP1AccessLog is BenchmarkProxyHTTP1 with access logs on
// (JSON to a discarding writer): the cost of logging on the request path.
func BenchmarkProxyHTTP1AccessLog(b *testing.B) {
	backend := cannedBackend(b)
	p := newTestProxy(b, Options{AccessLog: AccessLog{Logger: slog.New(slog.NewJSONHandler(discard{}, nil))}})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {backend}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		b.Fatal(err)
	}
	addr, _ := p.Addr("gw/http")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rc := newRawClient(b, addr.String(), "/bench/path?q=1")
		defer rc.c.Close()
		for pb.Next() {
			if code, err := rc.do(); err != nil || code != 200 {
				b.Errorf("status %d, %v", code, err)
				return
			}
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
