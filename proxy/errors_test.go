package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// TestGatewayAnswers checks the status codes the gateway itself answers
// with: no route, bad path, invalid backend, no endpoint, backend down,
// timeout.
func TestGatewayAnswers(t *testing.T) {
	a := echoBackend(t, "a")
	slow := echoSlow(t, 2*time.Second)
	dead := deadAddr(t)
	p := newTestProxy(t, Options{})
	cfg := Config{
		Listeners: []Listener{{Name: "l", Address: "127.0.0.1", Protocol: HTTP}},
		Routes: []Route{{Namespace: "ns", Name: "r", Listeners: []string{"l"}, Rules: []Rule{
			{Matches: prefix("/ok"), Backends: []BackendRef{{Backend: "a", Weight: 1}}},
			{Matches: prefix("/invalid"), Backends: []BackendRef{{Backend: "", Weight: 1}}},
			{Matches: prefix("/missing"), Backends: []BackendRef{{Backend: "not-configured", Weight: 1}}},
			{Matches: prefix("/none")},
			{Matches: prefix("/empty"), Backends: []BackendRef{{Backend: "empty", Weight: 1}}},
			{Matches: prefix("/dead"), Backends: []BackendRef{{Backend: "dead", Weight: 1}}},
			{Matches: prefix("/slow"), Backends: []BackendRef{{Backend: "slow", Weight: 1}},
				Timeouts: Timeouts{Request: 200 * time.Millisecond}},
			{Matches: prefix("/slowbackend"), Backends: []BackendRef{{Backend: "slow", Weight: 1}},
				Timeouts: Timeouts{BackendRequest: 200 * time.Millisecond}},
		}}},
		Backends: []Backend{
			{Spec: upstream.Spec{Name: "a", Endpoints: []upstream.Endpoint{{Address: addrOf(a)}}}},
			{Spec: upstream.Spec{Name: "empty"}},
			{Spec: upstream.Spec{Name: "dead", Endpoints: []upstream.Endpoint{{Address: dead}}, CircuitBreaker: &upstream.CircuitBreaker{Disabled: true}}},
			{Spec: upstream.Spec{Name: "slow", Endpoints: []upstream.Endpoint{{Address: slow.addr()}}}},
		},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "l")
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/ok", 200},
		{"/nothing-here", 404},
		{"/ok/%2e%2e/%2fadmin", 400},
		{"/invalid", 500},
		{"/missing", 500},
		{"/none", 500},
		{"/empty", 503},
		{"/dead", 502},
		{"/slow", 504},
		{"/slowbackend", 504},
	} {
		start := time.Now()
		code, body, _ := get(t, http.DefaultClient, base+tc.path)
		if code != tc.code {
			t.Errorf("GET %s: %d %q, want %d", tc.path, code, body, tc.code)
		}
		if strings.HasPrefix(tc.path, "/slow") && time.Since(start) > time.Second {
			t.Errorf("GET %s took %v; the timeout is 200ms", tc.path, time.Since(start))
		}
	}
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "rauta_gateway_responses_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			reasons[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	for r, want := range map[string]float64{"no_route": 1, "bad_request": 1, "invalid_backend": 3, "no_healthy_endpoint": 1, "upstream_error": 1, "timeout": 2} {
		if reasons[r] != want {
			t.Errorf("rauta_gateway_responses_total{reason=%q} = %v, want %v (all: %v)", r, reasons[r], want, reasons)
		}
	}
}

func echoSlow(t testing.TB, d time.Duration) *httpTestServer {
	return newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		io.WriteString(w, "slow")
	}))
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// TestPanicRecovered checks that a panic in a request (here in a user
// filter) is answered with 500, counted, and leaves the proxy serving.
func TestPanicRecovered(t *testing.T) {
	a := echoBackend(t, "a")
	reg := &filters.Registry{}
	if err := reg.Register("example.com", "Panic", func(filters.ExtensionRef) (filters.Filter, error) {
		return panicFilter{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	p := newTestProxy(t, Options{Filters: reg})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/panic"), Filters: []filters.Spec{{Type: filters.TypeExtensionRef, ExtensionRef: &filters.ExtensionRef{Group: "example.com", Kind: "Panic", Name: "p"}}},
			Backends: []BackendRef{{Backend: "a", Weight: 1}}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	if code, _, _ := get(t, http.DefaultClient, base+"/panic"); code != 500 {
		t.Errorf("panicking request: %d, want 500", code)
	}
	if code, body, _ := get(t, http.DefaultClient, base+"/fine"); code != 200 || body != "a" {
		t.Errorf("after the panic: %d %q", code, body)
	}
	mfs, _ := p.Registry().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "rauta_panics_recovered_total" && mf.GetMetric()[0].GetCounter().GetValue() != 1 {
			t.Errorf("panics counted: %v", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
}

type panicFilter struct{}

func (panicFilter) Request(w http.ResponseWriter, r *http.Request, info filters.RequestInfo) bool {
	panic("boom")
}
func (panicFilter) Response(h http.Header, r *http.Request) {}

// TestApplyPartialReject checks that an invalid route is reported and the
// rest of the configuration still serves.
func TestApplyPartialReject(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathRegularExpression, Value: "(["}}}, Backends: []BackendRef{{Backend: "a", Weight: 1}}},
		Rule{Matches: prefix("/good"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	err := p.Apply(cfg)
	var aerr *ApplyError
	if !errors.As(err, &aerr) || len(aerr.Routes) == 0 {
		t.Fatalf("Apply = %v, want an *ApplyError naming the route", err)
	}
	if !strings.Contains(err.Error(), "ns") && !strings.Contains(err.Error(), "default/r") {
		t.Errorf("error does not name the route: %v", err)
	}
	if code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/good"); code != 200 {
		t.Errorf("valid rule: %d", code)
	}
	// A structurally invalid config is refused whole; the old one serves.
	bad := cfg
	bad.Listeners = append(bad.Listeners, bad.Listeners[0])
	if err := p.Apply(bad); err == nil {
		t.Fatal("duplicate listener names accepted")
	}
	if code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/good"); code != 200 {
		t.Errorf("after a refused config: %d", code)
	}
}

// TestRateLimit checks 429 with Retry-After once the burst is spent.
func TestRateLimit(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}, RateLimits: []RateLimit{{Rate: 0.5, Burst: 3}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for i := range 3 {
		if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 200 {
			t.Fatalf("request %d within burst: %d", i, code)
		}
	}
	code, _, h := get(t, http.DefaultClient, base+"/")
	if code != 429 || h.Get("Retry-After") != "2" {
		t.Fatalf("over the limit: %d Retry-After=%q, want 429 and 2", code, h.Get("Retry-After"))
	}
	// The bucket survives a configuration change that keeps the limit.
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 429 {
		t.Errorf("after re-applying the same limit: %d, want 429 (bucket kept)", code)
	}
}

// TestWeights checks that traffic splits by backendRef weight and that a
// zero weight gets nothing.
func TestWeights(t *testing.T) {
	a, b, c := echoBackend(t, "a"), echoBackend(t, "b"), echoBackend(t, "c")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}, "b": {addrOf(b)}, "c": {addrOf(c)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 80}, {Backend: "b", Weight: 20}, {Backend: "c", Weight: 0}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	counts := map[string]int{}
	const n = 1000
	for range n {
		_, body, _ := get(t, http.DefaultClient, base+"/")
		counts[body]++
	}
	if counts["c"] != 0 {
		t.Errorf("weight 0 got %d requests", counts["c"])
	}
	if got := float64(counts["a"]) / n; got < 0.74 || got > 0.86 {
		t.Errorf("weight 80/100 got share %.3f (%v)", got, counts)
	}
}

// TestRetryOnDeadEndpoint checks that a request to an endpoint that refuses
// connections is retried on another one, invisibly to the client.
func TestRetryOnDeadEndpoint(t *testing.T) {
	a := echoBackend(t, "a")
	dead := deadAddr(t)
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a), dead}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for i := range 50 {
		if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	// POST with a body is retried too when nothing was sent.
	for i := range 20 {
		resp, err := http.Post(base+"/", "text/plain", strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %d: %d", i, resp.StatusCode)
		}
	}
}

// TestRetryCodes checks the rule retry policy on response codes.
func TestRetryCodes(t *testing.T) {
	var calls atomic.Int32
	flaky := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 != 0 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, "ok")
	}))
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"f": {flaky.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "f", Weight: 1}},
			Retry: &RetryPolicy{Attempts: 2, Codes: []int{503}, Backoff: time.Millisecond}})
	cfg.Backends[0].CircuitBreaker = &upstream.CircuitBreaker{Disabled: true}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	code, body, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/")
	if code != 200 || body != "ok" || calls.Load() != 3 {
		t.Errorf("got %d %q after %d calls, want 200 ok after 3", code, body, calls.Load())
	}
}

// TestUnknownExtensionAnswers500 checks that a rule whose filters fail to
// compile answers 500 (never skipping the filter) while other rules serve.
func TestUnknownExtensionAnswers500(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/ext"), Filters: []filters.Spec{{Type: filters.TypeExtensionRef, ExtensionRef: &filters.ExtensionRef{Group: "example.com", Kind: "Missing", Name: "m"}}},
			Backends: []BackendRef{{Backend: "a", Weight: 1}}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	if err := p.Apply(cfg); err == nil {
		t.Error("unknown ExtensionRef not reported")
	}
	base := baseURL(t, p, "gw/http")
	if code, _, _ := get(t, http.DefaultClient, base+"/ext"); code != 500 {
		t.Errorf("rule with an unknown filter: %d, want 500", code)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/other"); code != 200 {
		t.Errorf("other rule: %d", code)
	}
}

// TestRetryOnBackendTimeout checks that with a retry policy an attempt that
// exceeds the backend request timeout is retried (HTTPRouteRetryBackendTimeout)
// and a connection that fails mid-request too (HTTPRouteRetryConnectionError).
func TestRetryOnBackendTimeout(t *testing.T) {
	var calls atomic.Int32
	b := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			time.Sleep(500 * time.Millisecond)
		case 2:
			// Drop the connection without an answer.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, "ok")
	}))
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"b": {b.addr()}},
		Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}},
			Timeouts: Timeouts{BackendRequest: 150 * time.Millisecond},
			Retry:    &RetryPolicy{Attempts: 2, Backoff: time.Millisecond}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", baseURL(t, p, "gw/http")+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || calls.Load() != 3 {
		t.Errorf("got %d %q after %d attempts, want 200 ok after 3", resp.StatusCode, body, calls.Load())
	}
}

// TestRetryIdempotencyKey checks the single default retry of a request that
// failed after it was sent: a POST carrying an Idempotency-Key is retried
// like a GET, a POST without one is not (the backend may have acted on it).
func TestRetryIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	// The first request to each path is read, then its connection closed
	// without an answer; later ones are answered.
	flaky := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		first := hits[r.URL.Path] == 1
		mu.Unlock()
		if first {
			c, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			c.Close()
			return
		}
		io.WriteString(w, "ok")
	}))
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"f": {flaky.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "f", Weight: 1}}})
	cfg.Backends[0].CircuitBreaker = &upstream.CircuitBreaker{Disabled: true}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	tests := []struct {
		method, path, key string
		code, hits        int
	}{
		{http.MethodPost, "/keyed", "order-1", 200, 2},
		{http.MethodPost, "/unkeyed", "", 502, 1},
		{http.MethodGet, "/get", "", 200, 2},
		{http.MethodPatch, "/patch-keyed", "patch-1", 200, 2},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, base+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.key != "" {
			req.Header.Set("Idempotency-Key", tt.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		mu.Lock()
		n := hits[tt.path]
		mu.Unlock()
		if resp.StatusCode != tt.code || n != tt.hits {
			t.Errorf("%s %s (Idempotency-Key %q): %d after %d backend hits, want %d after %d",
				tt.method, tt.path, tt.key, resp.StatusCode, n, tt.code, tt.hits)
		}
	}
}

// TestRetryZeroAttempts shows a retry policy of zero attempts disabling
// every retry (Gateway API v1.7: an explicit zero MUST disable retries):
// a connection refused is answered 502 instead of being tried on the other
// endpoint, while the same backend under a rule without a policy fails
// over and always answers 200.
func TestRetryZeroAttempts(t *testing.T) {
	a := echoBackend(t, "a")
	dead := deadAddr(t)
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a), dead}},
		Rule{Matches: prefix("/none"), Backends: []BackendRef{{Backend: "a", Weight: 1}}, Retry: &RetryPolicy{Attempts: 0}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg.Backends[0].CircuitBreaker = &upstream.CircuitBreaker{Disabled: true}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	codes := map[int]int{}
	for range 20 {
		code, _, _ := get(t, http.DefaultClient, base+"/none")
		codes[code]++
	}
	// Round robin over two endpoints sends some of the 20 to the dead one.
	if codes[502] == 0 || codes[200] == 0 || codes[502]+codes[200] != 20 {
		t.Errorf("zero attempts: answers %v, want some 502 (no failover) and the rest 200", codes)
	}
	for i := range 20 {
		if code, _, _ := get(t, http.DefaultClient, base+"/other"); code != 200 {
			t.Fatalf("without a policy, request %d: %d, want 200 (failover)", i, code)
		}
	}
}
