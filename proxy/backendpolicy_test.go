package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/upstream"
)

// metricValue returns the value of the series of a gathered metric whose
// labels include want, and whether there is one.
func metricValue(t testing.TB, p *Proxy, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestMaglevAffinityByQuery keys Maglev on the first value of a query
// parameter, decoded.
func TestMaglevAffinityByQuery(t *testing.T) {
	var eps []string
	for i := range 4 {
		eps = append(eps, addrOf(echoBackend(t, fmt.Sprint("e", i))))
	}
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"m": eps}, Rule{Backends: []BackendRef{{Backend: "m", Weight: 1}}})
	cfg.Backends[0].LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyQuery, Name: "user"}}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	owners := map[string]bool{}
	for u := range 40 {
		user := fmt.Sprint("user ", u)
		_, first, _ := get(t, http.DefaultClient, base+"/?"+url.Values{"user": {user}}.Encode())
		owners[first] = true
		for _, q := range []string{
			"user=" + url.PathEscape(user),                         // %20 rather than +
			"a=1&user=" + url.QueryEscape(user) + "&b=2",           // among other parameters
			"user=" + url.QueryEscape(user) + "&user=someone+else", // the first value counts
		} {
			if _, body, _ := get(t, http.DefaultClient, base+"/?"+q); body != first {
				t.Fatalf("%q went to %s, then with ?%s to %s", user, first, q, body)
			}
		}
	}
	if len(owners) < 3 {
		t.Errorf("40 users landed on only %d endpoints", len(owners))
	}
	// Without the parameter (or with an empty one) requests are balanced
	// round robin.
	seen := map[string]bool{}
	for i := range 8 {
		path := "/"
		if i%2 == 1 {
			path = "/?user="
		}
		_, body, _ := get(t, http.DefaultClient, base+path)
		seen[body] = true
	}
	if len(seen) != 4 {
		t.Errorf("requests without the key reached %d endpoints, want all 4 round robin", len(seen))
	}
}

// TestRateLimitKeyQuery gives each value of a query parameter its own
// bucket.
func TestRateLimitKeyQuery(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}}, Rule{
		Backends:   []BackendRef{{Backend: "a", Weight: 1}},
		RateLimits: []RateLimit{{Rate: 0.001, Burst: 2, Key: upstream.HashKey{Source: upstream.KeyQuery, Name: "tenant"}}},
	})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for i, want := range []int{200, 200, 429} {
		if code, _, _ := get(t, http.DefaultClient, base+"/?tenant=blue"); code != want {
			t.Errorf("tenant blue, request %d: %d, want %d", i+1, code, want)
		}
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/?x=1&tenant=green"); code != 200 {
		t.Errorf("tenant green after blue ran out: %d, want 200", code)
	}
}

// healthBackend is a backend whose /healthz answers code.
func healthBackend(t *testing.T, name string, code int) *httpTestServer {
	return newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(code)
			return
		}
		io.WriteString(w, name)
	}))
}

// TestHealthCheckExpectedStatuses passes an endpoint answering 404 when
// 404 is expected, and fails it otherwise.
func TestHealthCheckExpectedStatuses(t *testing.T) {
	a := healthBackend(t, "a", http.StatusNotFound)
	b := healthBackend(t, "b", http.StatusOK)
	p := newTestProxy(t, Options{})
	check := func(statuses ...upstream.StatusRange) *upstream.HealthCheck {
		return &upstream.HealthCheck{Kind: upstream.HealthHTTP, Path: "/healthz", Interval: 20 * time.Millisecond,
			HealthyThreshold: 1, UnhealthyThreshold: 1, ExpectedStatuses: statuses}
	}
	cfg := simpleConfig(nil,
		Rule{Matches: prefix("/expect-404"), Backends: []BackendRef{{Backend: "expect-404", Weight: 1}}},
		Rule{Matches: prefix("/expect-4xx"), Backends: []BackendRef{{Backend: "expect-4xx", Weight: 1}}},
		Rule{Matches: prefix("/expect-2xx-5xx"), Backends: []BackendRef{{Backend: "expect-2xx-5xx", Weight: 1}}},
		Rule{Matches: prefix("/default"), Backends: []BackendRef{{Backend: "default", Weight: 1}}})
	eps := []upstream.Endpoint{{Address: a.addr()}, {Address: b.addr()}}
	cfg.Backends = []Backend{
		{Spec: upstream.Spec{Name: "expect-404", Endpoints: eps, HealthCheck: check(upstream.StatusRange{Start: 200}, upstream.StatusRange{Start: 404})}},
		{Spec: upstream.Spec{Name: "expect-4xx", Endpoints: eps, HealthCheck: check(upstream.StatusRange{Start: 200}, upstream.StatusRange{Start: 400, End: 499})}},
		{Spec: upstream.Spec{Name: "expect-2xx-5xx", Endpoints: eps, HealthCheck: check(upstream.StatusRange{Start: 200, End: 299}, upstream.StatusRange{Start: 500, End: 599})}},
		{Spec: upstream.Spec{Name: "default", Endpoints: eps, HealthCheck: check()}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	seen := func(path string) map[string]int {
		m := map[string]int{}
		for range 10 {
			_, body, _ := get(t, http.DefaultClient, base+path)
			m[body]++
		}
		return m
	}
	for _, path := range []string{"/default", "/expect-2xx-5xx"} {
		deadline := time.Now().Add(3 * time.Second)
		for m := seen(path); m["a"] > 0; m = seen(path) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the endpoint answering 404 is still picked: %v", path, m)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// After several more intervals, the endpoints expecting 404 were
	// probed as often, and still serve.
	time.Sleep(5 * 20 * time.Millisecond)
	for _, path := range []string{"/expect-404", "/expect-4xx"} {
		if m := seen(path); m["a"] != 5 || m["b"] != 5 {
			t.Errorf("%s: traffic %v, want both endpoints in the pick", path, m)
		}
	}
}

// TestHealthCheckEjectionTime measures how long an endpoint failing its
// health check stays in the pick (at most interval × unhealthyThreshold,
// plus the probe's own latency), and how long it takes to come back.
func TestHealthCheckEjectionTime(t *testing.T) {
	const (
		interval  = 100 * time.Millisecond
		unhealthy = 4
		healthy   = 2
		// slack covers a probe's latency and a loaded machine's
		// scheduling, on top of the bound.
		slack = 300 * time.Millisecond
	)
	type served struct {
		at     time.Time
		probes int64 // failed probes answered before this request
	}
	var failing atomic.Bool
	var failedProbes atomic.Int64
	var lastA atomic.Pointer[served]
	a := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if failing.Load() {
				failedProbes.Add(1)
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		lastA.Store(&served{at: time.Now(), probes: failedProbes.Load()})
		io.WriteString(w, "a")
	}))
	b := echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"ab": {a.addr(), addrOf(b)}}, Rule{Backends: []BackendRef{{Backend: "ab", Weight: 1}}})
	cfg.Backends[0].HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, Path: "/healthz", Interval: interval,
		HealthyThreshold: healthy, UnhealthyThreshold: unhealthy}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for range 4 {
		get(t, http.DefaultClient, base+"/")
	}
	if lastA.Load() == nil {
		t.Fatal("the healthy endpoint a got no traffic")
	}

	start := time.Now()
	failing.Store(true)
	for time.Since(lastA.Load().at) < 3*interval {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the failing endpoint was never taken out")
		}
		get(t, http.DefaultClient, base+"/")
	}
	last := lastA.Load()
	left := last.at.Sub(start)
	t.Logf("failing endpoint left the pick after %v (bound interval %v × unhealthyThreshold %d = %v), having failed %d probes before its last request",
		left.Round(time.Millisecond), interval, unhealthy, interval*unhealthy, last.probes)
	if left > interval*unhealthy+slack {
		t.Errorf("the failing endpoint stayed in the pick %v, over interval × unhealthyThreshold (%v) + %v", left, interval*unhealthy, slack)
	}
	if last.probes < unhealthy-2 {
		t.Errorf("the endpoint left the pick after %d failed probes; it must take %d", last.probes, unhealthy)
	}
	// The checker flips the endpoint and then counts the transition: a
	// request can see the flip before the count.
	eventually(t, "unhealthy transition counted", func() bool {
		v, _ := metricValue(t, p, "rauta_endpoint_health_transitions_total", map[string]string{"backend": "ab", "result": "unhealthy"})
		return v >= 1
	})
	if v, _ := metricValue(t, p, "rauta_endpoint_health_transitions_total", map[string]string{"backend": "ab", "result": "unhealthy"}); v != 1 {
		t.Errorf("unhealthy transitions = %v, want 1", v)
	}

	start = time.Now()
	failing.Store(false)
	for !lastA.Load().at.After(start) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the endpoint never came back")
		}
		get(t, http.DefaultClient, base+"/")
	}
	back := lastA.Load().at.Sub(start)
	t.Logf("passing again, the endpoint was back in the pick after %v (bound interval × healthyThreshold = %v)", back.Round(time.Millisecond), interval*healthy)
	if back > interval*healthy+slack {
		t.Errorf("the endpoint came back after %v, over interval × healthyThreshold (%v) + %v", back, interval*healthy, slack)
	}
	// The checker flips the endpoint and then counts the transition: a
	// request can see the flip before the count.
	eventually(t, "healthy transition counted", func() bool {
		v, _ := metricValue(t, p, "rauta_endpoint_health_transitions_total", map[string]string{"backend": "ab", "result": "healthy"})
		return v >= 1
	})
	if v, _ := metricValue(t, p, "rauta_endpoint_health_transitions_total", map[string]string{"backend": "ab", "result": "healthy"}); v != 1 {
		t.Errorf("healthy transitions = %v, want 1", v)
	}
}

// connBackend is a backend recording which connection served each
// request; requests to /slow wait for the gate.
type connBackend struct {
	*httpTestServer
	gate    chan struct{} // a send lets one /slow request finish
	started chan struct{} // a /slow request arrived
	release func()        // lets every /slow request finish
	mu      sync.Mutex
	order   []string
	count   map[string]int
}

func newConnBackend(t *testing.T, name string) *connBackend {
	cb := &connBackend{gate: make(chan struct{}), started: make(chan struct{}, 16), count: map[string]int{}}
	cb.httpTestServer = newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		if cb.count[r.RemoteAddr] == 0 {
			cb.order = append(cb.order, r.RemoteAddr)
		}
		cb.count[r.RemoteAddr]++
		cb.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/slow") {
			w.(http.Flusher).Flush()
			cb.started <- struct{}{}
			<-cb.gate
		}
		io.WriteString(w, name)
	}))
	var once sync.Once
	cb.release = func() { once.Do(func() { close(cb.gate) }) }
	t.Cleanup(cb.release)
	return cb
}

// perConn returns the requests each connection served, in the order the
// connections were first used.
func (cb *connBackend) perConn() []int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	var out []int
	for _, a := range cb.order {
		out = append(out, cb.count[a])
	}
	return out
}

func (cb *connBackend) conns() int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return len(cb.order)
}

// TestConnectionLimitsMaxRequests gives a backend a new connection every
// MaxRequests requests.
func TestConnectionLimitsMaxRequests(t *testing.T) {
	be := newConnBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {be.addr()}}, Rule{Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg.Backends[0].Connections = upstream.ConnectionLimits{MaxRequests: 3}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for range 9 {
		if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if got := fmt.Sprint(be.perConn()); got != "[3 3 3]" {
		t.Errorf("requests per backend connection: %s, want [3 3 3]", got)
	}
}

// TestConnectionLimitsMaxLifetime closes a backend connection once it is
// older than MaxLifetime, not during a request.
func TestConnectionLimitsMaxLifetime(t *testing.T) {
	const life = 200 * time.Millisecond
	be := newConnBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {be.addr()}}, Rule{Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg.Backends[0].Connections = upstream.ConnectionLimits{MaxLifetime: life}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	start := time.Now()
	get(t, http.DefaultClient, base+"/")
	get(t, http.DefaultClient, base+"/")
	if quick := time.Since(start) < life; quick && be.conns() != 1 {
		t.Fatalf("two quick requests used %d connections, want 1", be.conns())
	}
	time.Sleep(life + 50*time.Millisecond)
	get(t, http.DefaultClient, base+"/")
	if be.conns() != 2 {
		t.Errorf("after the lifetime: %d connections, want 2", be.conns())
	}

	// A request outliving its connection's lifetime finishes.
	done := make(chan string, 1)
	go func() {
		_, body, _ := get(t, http.DefaultClient, base+"/slow")
		done <- body
	}()
	<-be.started
	time.Sleep(life + 50*time.Millisecond)
	be.gate <- struct{}{}
	if body := <-done; body != "a" {
		t.Errorf("request outliving the connection's lifetime: %q", body)
	}
	get(t, http.DefaultClient, base+"/")
	if be.conns() != 3 {
		t.Errorf("after a request longer than the lifetime: %d connections, want 3", be.conns())
	}
}

// TestConnectionLimitsMaxPerEndpoint bounds the connections per endpoint:
// with two slow requests in flight, the second goes to another endpoint,
// or is answered 503 when there is none; the endpoint's breaker does not
// count it.
func TestConnectionLimitsMaxPerEndpoint(t *testing.T) {
	one := newConnBackend(t, "one")
	x, y := newConnBackend(t, "x"), newConnBackend(t, "y")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(nil,
		Rule{Matches: prefix("/one"), Backends: []BackendRef{{Backend: "one", Weight: 1}}},
		Rule{Matches: prefix("/two"), Backends: []BackendRef{{Backend: "two", Weight: 1}}})
	limits := upstream.ConnectionLimits{MaxPerEndpoint: 1}
	cb := &upstream.CircuitBreaker{Options: breaker.Options{MinRequests: 1}}
	cfg.Backends = []Backend{
		{Spec: upstream.Spec{Name: "one", Endpoints: []upstream.Endpoint{{Address: one.addr()}}, Connections: limits, CircuitBreaker: cb}},
		{Spec: upstream.Spec{Name: "two", Endpoints: []upstream.Endpoint{{Address: x.addr()}, {Address: y.addr()}}, Connections: limits}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")

	first := make(chan int, 1)
	go func() {
		code, _, _ := get(t, http.DefaultClient, base+"/one/slow")
		first <- code
	}()
	<-one.started
	code, body, _ := get(t, http.DefaultClient, base+"/one/slow")
	if code != http.StatusServiceUnavailable {
		t.Errorf("second request to the busy endpoint: %d %q, want 503", code, body)
	}
	one.gate <- struct{}{}
	if code := <-first; code != 200 {
		t.Errorf("first request: %d", code)
	}
	if one.conns() != 1 {
		t.Errorf("backend one saw %d connections, want 1", one.conns())
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/one/"); code != 200 {
		t.Errorf("once the connection is free: %d, want 200 (the breaker did not count the busy endpoint)", code)
	}

	results := make(chan string, 2)
	for range 2 {
		go func() {
			_, body, _ := get(t, http.DefaultClient, base+"/two/slow")
			results <- body
		}()
	}
	for range 2 {
		select {
		case <-x.started:
		case <-y.started:
		case <-time.After(5 * time.Second):
			t.Fatal("the two slow requests did not both reach a backend")
		}
	}
	x.release()
	y.release()
	got := map[string]bool{<-results: true, <-results: true}
	if !got["x"] || !got["y"] {
		t.Errorf("two concurrent requests answered by %v, want one per endpoint", got)
	}
	if x.conns() != 1 || y.conns() != 1 {
		t.Errorf("connections: x %d, y %d; want 1 each", x.conns(), y.conns())
	}
}

// TestConnectionLimitsChangeInFlight changes a backend's limits while a
// request is in flight: it finishes, and the new limits apply after it.
func TestConnectionLimitsChangeInFlight(t *testing.T) {
	be := newConnBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {be.addr()}}, Rule{Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg.Backends[0].Connections = upstream.ConnectionLimits{MaxPerEndpoint: 1, MaxRequests: 100}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	done := make(chan string, 1)
	go func() {
		_, body, _ := get(t, http.DefaultClient, base+"/slow")
		done <- body
	}()
	<-be.started
	cfg2 := simpleConfig(map[string][]string{"a": {be.addr()}}, Rule{Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg2.Backends[0].Connections = upstream.ConnectionLimits{MaxPerEndpoint: 4, MaxRequests: 1}
	if err := p.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	// The raised connection limit serves a second request at once.
	if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 200 {
		t.Errorf("request beside the slow one under the raised limit: %d", code)
	}
	be.gate <- struct{}{}
	if body := <-done; body != "a" {
		t.Fatalf("request in flight across Apply: %q", body)
	}
	for range 2 {
		get(t, http.DefaultClient, base+"/")
	}
	if got := fmt.Sprint(be.perConn()); got != "[1 1 1 1]" {
		t.Errorf("requests per connection %s, want [1 1 1 1] (MaxRequests 1 after the change)", got)
	}
}

// TestRetryDelay checks the exponential backoff, its cap and its jitter
// with the random source at its extremes.
func TestRetryDelay(t *testing.T) {
	top := func(n int64) int64 { return n - 1 }
	bottom := func(int64) int64 { return 0 }
	base, ceiling := 25*time.Millisecond, 250*time.Millisecond
	for attempt, want := range []time.Duration{25, 50, 100, 200, 250, 250, 250} {
		want *= time.Millisecond
		if got := retryDelay(base, ceiling, attempt, top); got != want {
			t.Errorf("attempt %d: longest delay %v, want %v", attempt, got, want)
		}
		if got := retryDelay(base, ceiling, attempt, bottom); got != 1 {
			t.Errorf("attempt %d: shortest delay %v, want 1ns", attempt, got)
		}
	}
	if got := retryDelay(time.Hour, 24*time.Hour, 1000, top); got != 24*time.Hour {
		t.Errorf("attempt 1000: %v, want the cap", got)
	}
	if got := retryDelay(time.Second, 100*time.Millisecond, 0, top); got != 100*time.Millisecond {
		t.Errorf("base over the cap: %v, want the cap", got)
	}
}

// TestRetryBackoffPrecedence checks where the base and the cap of the
// backoff come from: the rule, then the backend, then the defaults.
func TestRetryBackoffPrecedence(t *testing.T) {
	backend := &retrySettings{backoff: 100 * time.Millisecond, maxBackoff: 2 * time.Second}
	for _, tc := range []struct {
		name          string
		rule          *RetryPolicy
		backend       *retrySettings
		base, ceiling time.Duration
	}{
		{"defaults", nil, &retrySettings{}, 25 * time.Millisecond, 250 * time.Millisecond},
		{"rule base, default cap", &RetryPolicy{Backoff: 40 * time.Millisecond}, &retrySettings{}, 40 * time.Millisecond, 400 * time.Millisecond},
		{"backend", &RetryPolicy{Attempts: 2}, backend, 100 * time.Millisecond, 2 * time.Second},
		{"rule wins", &RetryPolicy{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, backend, time.Millisecond, 5 * time.Millisecond},
		{"field by field", &RetryPolicy{Backoff: time.Millisecond}, backend, time.Millisecond, 2 * time.Second},
		{"backend base, default cap", nil, &retrySettings{backoff: time.Second}, time.Second, 10 * time.Second},
	} {
		base, ceiling := retryBackoff(tc.rule, tc.backend)
		if base != tc.base || ceiling != tc.ceiling {
			t.Errorf("%s: base %v cap %v, want %v and %v", tc.name, base, ceiling, tc.base, tc.ceiling)
		}
	}
}

// failingBackend answers 503 to everything and counts the requests.
func failingBackend(t *testing.T) (*httpTestServer, *atomic.Int64) {
	var hits atomic.Int64
	s := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	return s, &hits
}

// TestRetryBackoffCappedByBackend retries a rule whose backoff is an hour
// under a backend MaxBackoff of 5ms: the retries are done in milliseconds.
func TestRetryBackoffCappedByBackend(t *testing.T) {
	s, hits := failingBackend(t)
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"f": {s.addr()}}, Rule{
		Backends: []BackendRef{{Backend: "f", Weight: 1}},
		Retry:    &RetryPolicy{Attempts: 3, Codes: []int{503}, Backoff: time.Hour},
	})
	cfg.Backends[0].Retry = BackendRetry{MaxBackoff: 5 * time.Millisecond}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/")
	// Uncapped, three delays drawn from up to 1h, 2h and 4h would all be
	// under 10s with a probability below 1e-6.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("three retries took %v under a 5ms cap", d)
	}
	if code != 503 || hits.Load() != 4 {
		t.Errorf("status %d after %d attempts, want 503 after 4", code, hits.Load())
	}
}

// TestRetryBudgetBackend applies a backend's own retry budget instead of
// the proxy-wide one.
func TestRetryBudgetBackend(t *testing.T) {
	s, hits := failingBackend(t)
	p := newTestProxy(t, Options{})
	apply := func(budget *RetryBudget) {
		t.Helper()
		cfg := simpleConfig(map[string][]string{"f": {s.addr()}}, Rule{
			Backends: []BackendRef{{Backend: "f", Weight: 1}},
			Retry:    &RetryPolicy{Attempts: 2, Codes: []int{503}, Backoff: time.Millisecond},
		})
		cfg.Backends[0].Retry.Budget = budget
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
	}
	var base string
	send := func(n int) int64 {
		hits.Store(0)
		for range n {
			if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 503 {
				t.Fatalf("status %d, want 503", code)
			}
		}
		return hits.Load()
	}
	apply(nil)
	base = baseURL(t, p, "gw/http")
	if got := send(5); got != 15 {
		t.Fatalf("without a budget of its own: %d attempts for 5 requests, want 15", got)
	}
	apply(&RetryBudget{Percent: 0})
	if got := send(5); got != 5 {
		t.Errorf("budget 0%%, no minimum: %d attempts for 5 requests, want 5 (no retry)", got)
	}
	apply(&RetryBudget{Percent: 0, MinRetries: 3, MinRetriesInterval: time.Hour})
	if got := send(5); got != 8 {
		t.Errorf("budget 0%%, 3 retries always allowed: %d attempts for 5 requests, want 8", got)
	}
	// At 50%, retries may be half the attempts: one retry per request.
	apply(&RetryBudget{Percent: 50, Interval: time.Hour})
	if got := send(5); got != 10 {
		t.Errorf("budget 50%%: %d attempts for 5 requests, want 10", got)
	}
}

// TestRetryBudgetWindow checks the budget's sliding windows with times
// given.
func TestRetryBudgetWindow(t *testing.T) {
	t0 := time.Now()
	b := newRetryBudget(RetryBudget{Percent: 0, MinRetries: 1, MinRetriesInterval: time.Second}, t0)
	for _, step := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {100 * time.Millisecond, false}, {900 * time.Millisecond, false}, {1200 * time.Millisecond, true}, {1300 * time.Millisecond, false}} {
		if got := b.allow(t0.Add(step.after)); got != step.want {
			t.Errorf("MinRetries 1 per second, retry at +%v: %v, want %v", step.after, got, step.want)
		}
	}
	b = newRetryBudget(RetryBudget{Percent: 25, Interval: 10 * time.Second}, t0)
	for range 3 {
		b.request(t0)
	}
	if !b.allow(t0) {
		t.Error("1 retry in 4 attempts refused at 25%")
	}
	if b.allow(t0) {
		t.Error("2 retries in 5 attempts allowed at 25%")
	}
	// Ten seconds on, those requests have left the window.
	later := t0.Add(11 * time.Second)
	if b.allow(later) {
		t.Error("a retry with no request in the window allowed at 25%")
	}
	for range 3 {
		b.request(later)
	}
	if !b.allow(later) {
		t.Error("1 retry in 4 attempts refused at 25%, after the window slid")
	}
}

// TestBackendValidation refuses bad backend policies with errors naming
// the backend and the field, and serves the rest.
func TestBackendValidation(t *testing.T) {
	a := echoBackend(t, "a")
	for _, tc := range []struct {
		name string
		edit func(*Backend)
		want string
	}{
		{"status below 100", func(b *Backend) {
			b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, ExpectedStatuses: []upstream.StatusRange{{Start: 99}}}
		}, "healthCheck.expectedStatuses[0].start: 99 is not a status code (100 to 599)"},
		{"end before start", func(b *Backend) {
			b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, ExpectedStatuses: []upstream.StatusRange{{Start: 200}, {Start: 300, End: 299}}}
		}, "healthCheck.expectedStatuses[1].end: 299 must be between start (300) and 599"},
		{"end over 599", func(b *Backend) {
			b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, ExpectedStatuses: []upstream.StatusRange{{Start: 500, End: 600}}}
		}, "healthCheck.expectedStatuses[0].end: 600"},
		{"statuses on a TCP check", func(b *Backend) {
			b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthTCP, ExpectedStatuses: []upstream.StatusRange{{Start: 200}}}
		}, "healthCheck.expectedStatuses: only HTTP health checks"},
		{"negative interval", func(b *Backend) { b.HealthCheck = &upstream.HealthCheck{Interval: -time.Second} }, "healthCheck.interval: must not be negative"},
		{"query key without a name", func(b *Backend) {
			b.LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyQuery}}
		}, "loadBalancer.key.name: required for source Query"},
		{"bad header name", func(b *Backend) {
			b.LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyHeader, Name: "X User"}}
		}, `loadBalancer.key.name "X User": must be a header name`},
		{"unknown key source", func(b *Backend) { b.LoadBalancer.Key.Source = upstream.KeySource(9) }, "loadBalancer.key.source: unknown value"},
		{"unknown policy", func(b *Backend) { b.LoadBalancer.Policy = upstream.LBPolicy(7) }, "loadBalancer.policy: unknown value"},
		{"negative max connections", func(b *Backend) { b.Connections.MaxPerEndpoint = -1 }, "connections.maxPerEndpoint: must not be negative"},
		{"negative lifetime", func(b *Backend) { b.Connections.MaxLifetime = -time.Second }, "connections.maxLifetime: must not be negative"},
		{"negative backoff", func(b *Backend) { b.Retry.Backoff = -1 }, "retry.backoff: must not be negative"},
		{"max backoff under backoff", func(b *Backend) {
			b.Retry = BackendRetry{Backoff: time.Second, MaxBackoff: time.Millisecond}
		}, "retry.maxBackoff: 1ms is less than backoff (1s)"},
		{"budget over 100%", func(b *Backend) { b.Retry.Budget = &RetryBudget{Percent: 101} }, "retry.budget.percent: 101 must be between 0 and 100"},
		{"budget NaN", func(b *Backend) { b.Retry.Budget = &RetryBudget{Percent: math.NaN()} }, "retry.budget.percent: NaN"},
		{"negative min retries", func(b *Backend) { b.Retry.Budget = &RetryBudget{Percent: 20, MinRetries: -1} }, "retry.budget.minRetries: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProxy(t, Options{})
			cfg := simpleConfig(map[string][]string{"ns/bad:80": {addrOf(a)}, "ns/good:80": {addrOf(a)}},
				Rule{Matches: prefix("/good"), Backends: []BackendRef{{Backend: "ns/good:80", Weight: 1}}})
			for i := range cfg.Backends {
				if cfg.Backends[i].Name == "ns/bad:80" {
					tc.edit(&cfg.Backends[i])
				}
			}
			err := p.Apply(cfg)
			var aerr *ApplyError
			if !errors.As(err, &aerr) || len(aerr.Backends) != 1 || aerr.Backends["ns/bad:80"] == nil {
				t.Fatalf("Apply: %v, want an ApplyError for backend ns/bad:80 only", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `backend "ns/bad:80": `+tc.want) {
				t.Errorf("error %q, want it to contain %q", msg, `backend "ns/bad:80": `+tc.want)
			}
			if code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/good"); code != 200 {
				t.Errorf("the valid backend is not served: %d", code)
			}
		})
	}
	t.Run("rule retry", func(t *testing.T) {
		p := newTestProxy(t, Options{})
		cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
			Rule{Name: "r0", Backends: []BackendRef{{Backend: "a", Weight: 1}}, Retry: &RetryPolicy{Attempts: 1, MaxBackoff: -time.Second}})
		err := p.Apply(cfg)
		if err == nil || !strings.Contains(err.Error(), "retry.maxBackoff: must not be negative") {
			t.Errorf("Apply: %v, want the rule's retry.maxBackoff refused", err)
		}
	})
}

// TestConfigJSONWithPolicies encodes a Config with a circuit breaker
// (whose OnStateChange and Clock cannot be encoded) and every backend
// policy set.
func TestConfigJSONWithPolicies(t *testing.T) {
	cfg := policyConfig("127.0.0.1:1")
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var back struct {
		Backends []struct {
			CircuitBreaker struct {
				Options map[string]any `json:"options"`
			} `json:"circuitBreaker"`
			Connections  map[string]any `json:"connections"`
			Retry        map[string]any `json:"retry"`
			HealthCheck  map[string]any `json:"healthCheck"`
			LoadBalancer map[string]any `json:"loadBalancer"`
		} `json:"backends"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	be := back.Backends[0]
	if fmt.Sprint(be.CircuitBreaker.Options) != "map[minRequests:5 openTimeout:3e+09 window:1e+10]" ||
		len(be.Connections) != 4 || be.Retry["budget"] == nil || be.HealthCheck["expectedStatuses"] == nil ||
		fmt.Sprint(be.LoadBalancer["key"]) != "map[name:user source:Query]" {
		t.Errorf("JSON: %s", b)
	}
	p := newTestProxy(t, Options{})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(p.Config()); err != nil {
		t.Errorf("json.Marshal of the applied configuration: %v", err)
	}
}

// policyConfig is a configuration with every backend policy set, served on
// an ephemeral port.
func policyConfig(endpoint string) Config {
	cfg := simpleConfig(map[string][]string{"ns/app:80": {endpoint}}, Rule{
		Backends: []BackendRef{{Backend: "ns/app:80", Weight: 1}},
		Retry:    &RetryPolicy{Attempts: 2, Codes: []int{503}, Backoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	})
	b := &cfg.Backends[0]
	b.LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyQuery, Name: "user"}}
	b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, Path: "/healthz", Interval: time.Second,
		ExpectedStatuses: []upstream.StatusRange{{Start: 200, End: 299}, {Start: 404}}}
	b.CircuitBreaker = &upstream.CircuitBreaker{Count5xx: true, Options: breaker.Options{
		Window: 10 * time.Second, MinRequests: 5, OpenTimeout: 3 * time.Second,
		Now: time.Now, OnStateChange: func(from, to breaker.State) {}}}
	b.Connections = upstream.ConnectionLimits{MaxPerEndpoint: 10, IdleTimeout: time.Minute, MaxRequests: 100, MaxLifetime: time.Hour}
	b.Retry = BackendRetry{Backoff: 20 * time.Millisecond, MaxBackoff: time.Second,
		Budget: &RetryBudget{Percent: 20, Interval: 10 * time.Second, MinRetries: 3, MinRetriesInterval: time.Second}}
	b.Policies = []string{"BackendPolicy ns/app"}
	return cfg
}

// TestBackendPolicyMetrics checks the load-balancing policy gauge and the
// breaker transition counter.
func TestBackendPolicyMetrics(t *testing.T) {
	a := echoBackend(t, "a")
	dead := deadAddr(t)
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"rr": {addrOf(a)}, "mg": {addrOf(a)}, "dead": {dead}},
		Rule{Matches: prefix("/dead"), Backends: []BackendRef{{Backend: "dead", Weight: 1}}})
	for i := range cfg.Backends {
		switch cfg.Backends[i].Name {
		case "mg":
			cfg.Backends[i].LoadBalancer.Policy = upstream.Maglev
		case "dead":
			cfg.Backends[i].CircuitBreaker = &upstream.CircuitBreaker{Options: breaker.Options{MinRequests: 1, OpenTimeout: 50 * time.Millisecond}}
		}
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	policy := func(backend, policy string) (float64, bool) {
		return metricValue(t, p, "rauta_backend_lb_policy", map[string]string{"backend": backend, "policy": policy})
	}
	for _, tc := range []struct{ backend, policy string }{{"rr", "RoundRobin"}, {"mg", "Maglev"}, {"dead", "RoundRobin"}} {
		if v, ok := policy(tc.backend, tc.policy); v != 1 || !ok {
			t.Errorf("rauta_backend_lb_policy{backend=%q,policy=%q} = %v, %v; want 1", tc.backend, tc.policy, v, ok)
		}
	}

	base := baseURL(t, p, "gw/http")
	if code, _, _ := get(t, http.DefaultClient, base+"/dead"); code != 503 {
		t.Errorf("dead endpoint: %d, want 503 once its breaker opened", code)
	}
	time.Sleep(100 * time.Millisecond)
	get(t, http.DefaultClient, base+"/dead") // half-open, fails, open again
	transitions := func(state string) float64 {
		v, _ := metricValue(t, p, "rauta_breaker_transitions_total", map[string]string{"backend": "dead", "state": state})
		return v
	}
	if o, h, c := transitions("open"), transitions("half-open"), transitions("closed"); o != 2 || h != 1 || c != 0 {
		t.Errorf("breaker transitions: open %v, half-open %v, closed %v; want 2, 1, 0", o, h, c)
	}

	// mg turns round robin and rr goes away.
	var next []Backend
	for _, b := range cfg.Backends {
		if b.Name == "rr" {
			continue
		}
		if b.Name == "mg" {
			b.LoadBalancer.Policy = upstream.RoundRobin
		}
		next = append(next, b)
	}
	cfg.Backends = next
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := policy("mg", "Maglev"); ok {
		t.Error("the Maglev series of mg stays after it turned round robin")
	}
	if v, _ := policy("mg", "RoundRobin"); v != 1 {
		t.Errorf("mg RoundRobin = %v, want 1", v)
	}
	if _, ok := policy("rr", "RoundRobin"); ok {
		t.Error("the series of a removed backend stays")
	}
}
