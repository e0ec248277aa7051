package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
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

// TestRequestIDs covers each combination of request IDs and trace context
// being kept, generated or disabled: generated IDs are well-formed, set on
// the right headers and independent of each other.
func TestRequestIDs(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name             string
		opts             Options
		in               http.Header
		trusted          bool
		wantReq, keepReq bool // a request ID is set; it is the incoming one
		wantTrace        bool // a traceparent is forwarded
		keepTrace        bool // it is the incoming one
		sampled          bool
	}{
		{name: "both generated", in: http.Header{}, wantReq: true, wantTrace: true},
		{name: "both generated, sampled", opts: Options{Tracing: Tracing{Sampled: true}}, in: http.Header{}, wantReq: true, wantTrace: true, sampled: true},
		{name: "incoming kept", opts: Options{RequestIDs: RequestIDs{TrustIncoming: true}},
			in: http.Header{"X-Request-Id": {"abc"}, "Traceparent": {tp}}, wantReq: true, keepReq: true, wantTrace: true, keepTrace: true},
		{name: "trusted client", in: http.Header{"X-Request-Id": {"abc"}}, trusted: true, wantReq: true, keepReq: true, wantTrace: true},
		{name: "untrusted replaced", in: http.Header{"X-Request-Id": {"abc"}, "Traceparent": {"00-zz"}, "Tracestate": {"k=v"}}, wantReq: true, wantTrace: true},
		{name: "request IDs off", opts: Options{RequestIDs: RequestIDs{Disabled: true}}, in: http.Header{}, wantTrace: true},
		{name: "tracing off", opts: Options{Tracing: Tracing{Disabled: true}}, in: http.Header{"Traceparent": {"00-zz"}}, wantReq: true},
		{name: "no new traces", opts: Options{Tracing: Tracing{NoNewTraces: true}}, in: http.Header{"Traceparent": {"00-zz"}, "Tracestate": {"k=v"}}, wantReq: true},
		{name: "both off", opts: Options{RequestIDs: RequestIDs{Disabled: true}, Tracing: Tracing{Disabled: true}}, in: http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logger = quietLogger(t)
			p := New(tc.opts)
			r := &http.Request{Header: tc.in.Clone()}
			w := httptest.NewRecorder()
			reqID, traceID := p.requestIDs(w, r, tc.trusted)
			switch {
			case !tc.wantReq:
				if reqID != "" || r.Header["X-Request-Id"] != nil || w.Header()["X-Request-Id"] != nil {
					t.Errorf("request ID %q set with request IDs off", reqID)
				}
			case tc.keepReq:
				if reqID != "abc" || r.Header.Get("X-Request-Id") != "abc" || w.Header().Get("X-Request-Id") != "abc" {
					t.Errorf("incoming request ID not kept: %q", reqID)
				}
			default:
				if len(reqID) != 32 || !lowerHex(reqID) || r.Header.Get("X-Request-Id") != reqID || w.Header().Get("X-Request-Id") != reqID {
					t.Errorf("generated request ID %q, headers %q %q", reqID, r.Header["X-Request-Id"], w.Header()["X-Request-Id"])
				}
			}
			got := r.Header["Traceparent"]
			switch {
			case tc.opts.Tracing.Disabled:
				// Trace context passes through untouched.
				if traceID != "" || !slices.Equal(got, tc.in["Traceparent"]) {
					t.Errorf("trace ID %q, traceparent %q with tracing off", traceID, got)
				}
			case !tc.wantTrace:
				if traceID != "" || got != nil || r.Header["Tracestate"] != nil {
					t.Errorf("trace ID %q, traceparent %q, tracestate %q: want none", traceID, got, r.Header["Tracestate"])
				}
			case tc.keepTrace:
				if traceID != "4bf92f3577b34da6a3ce929d0e0e4736" || len(got) != 1 || got[0] != tp {
					t.Errorf("incoming trace context not kept: %q %q", traceID, got)
				}
			default:
				if len(got) != 1 {
					t.Fatalf("traceparent %q", got)
				}
				id, ok := parseTraceparent(got[0])
				if !ok || id != traceID || r.Header["Tracestate"] != nil {
					t.Errorf("generated traceparent %q (valid %v), trace ID %q, tracestate %q", got[0], ok, traceID, r.Header["Tracestate"])
				}
				if flag := got[0][53:]; flag != map[bool]string{false: "00", true: "01"}[tc.sampled] {
					t.Errorf("traceparent flags %q, sampled %v", flag, tc.sampled)
				}
				if tc.wantReq && !tc.keepReq && strings.Contains(got[0], reqID) {
					t.Errorf("trace context %q reuses the request ID %q", got[0], reqID)
				}
			}
			if tc.wantReq && tc.wantTrace {
				// The two header values share a backing array: appending
				// to one must not change the other.
				r.Header["X-Request-Id"] = append(r.Header["X-Request-Id"], "x")
				if r.Header["Traceparent"][0] != got[0] {
					t.Errorf("appending to the request ID changed the traceparent")
				}
			}
		})
	}
}
