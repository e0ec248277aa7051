package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/tlsconfig"
	"github.com/rauta/rauta/upstream"
)

// newProxy returns a proxy serving cfg when cfg is not nil.
func newProxy(t *testing.T, cfg *proxy.Config) *proxy.Proxy {
	t.Helper()
	p := proxy.New(proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	if cfg != nil {
		if err := p.Apply(*cfg); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	return p
}

func testConfig(t testing.TB, backend string) (*proxy.Config, []byte) {
	t.Helper()
	_, certPEM, keyPEM, err := tlsconfig.SelfSigned([]string{"example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &proxy.Config{
		Listeners: []proxy.Listener{
			{Name: "default/gw/http", Address: "127.0.0.1", Port: 0, Protocol: proxy.HTTP},
			{Name: "default/gw/https", Address: "127.0.0.1", Port: 0, Protocol: proxy.HTTPS,
				Certificates: []proxy.Certificate{{Name: "default/tls", CertPEM: certPEM, KeyPEM: keyPEM}}},
		},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "web", Listeners: []string{"default/gw/http"},
			Rules: []proxy.Rule{
				{Name: "api", Matches: []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api"}}},
					Backends: []proxy.BackendRef{{Backend: "default/echo:80", Weight: 3}, {Backend: "", Weight: 1}}},
				{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/"},
					Headers: []router.HeaderMatch{{Name: "X-Canary", Value: "yes"}}}},
					Backends: []proxy.BackendRef{{Backend: "default/echo:80", Weight: 1}}},
			},
		}},
		Backends: []proxy.Backend{{Spec: upstream.Spec{Name: "default/echo:80", Endpoints: []upstream.Endpoint{{Address: backend}}}}},
	}, keyPEM
}

func do(t *testing.T, h http.Handler, target string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestHealthAndReadiness(t *testing.T) {
	p := newProxy(t, nil)
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := do(t, h, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d, want 200", code)
	}
	if code, _, _ := do(t, h, "/readyz"); code != 503 {
		t.Errorf("/readyz before a configuration: %d, want 503", code)
	}
	if code, body, _ := do(t, h, "/debug/route?path=/"); code != 503 {
		t.Errorf("/debug/route before a configuration: %d %q, want 503", code, body)
	}
	if err := p.Apply(proxy.Config{}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := do(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz after Apply: %d, want 200", code)
	}
	ready := false
	h, _ = NewHandler(Options{Proxy: p, Ready: func() bool { return ready }})
	if code, _, _ := do(t, h, "/readyz"); code != 503 {
		t.Errorf("/readyz with Ready false: %d, want 503", code)
	}
	if code, _, _ := do(t, h, "/debug/status"); code != 404 {
		t.Errorf("/debug/status without Options.Status: %d, want 404", code)
	}
	if code, body, _ := do(t, h, "/"); code != 200 || !strings.Contains(body, "/debug/route") {
		t.Errorf("index: %d %q", code, body)
	}
	if code, _, _ := do(t, h, "/nope"); code != 404 {
		t.Errorf("/nope: %d, want 404", code)
	}
	if _, err := NewHandler(Options{}); err == nil {
		t.Errorf("NewHandler without a proxy succeeded")
	}
}

func TestConfigAndMetrics(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer backend.Close()
	cfg, keyPEM := testConfig(t, backend.Listener.Addr().String())
	p := newProxy(t, cfg)
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	// Serve one request so that the request counter has a sample.
	addr, _ := p.Addr("default/gw/http")
	resp, err := http.Get("http://" + addr.String() + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	code, body, hdr := do(t, h, "/debug/config")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/debug/config: %d %s", code, hdr.Get("Content-Type"))
	}
	var got struct {
		Generation int `json:"generation"`
		Config     struct {
			Listeners []map[string]any `json:"listeners"`
			Routes    []map[string]any `json:"routes"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("/debug/config is not JSON: %v\n%s", err, body)
	}
	if got.Generation != 1 || len(got.Config.Listeners) != 2 || len(got.Config.Routes) != 1 {
		t.Errorf("/debug/config: %s", body)
	}
	if strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, string(keyPEM[30:60])) {
		t.Errorf("/debug/config prints a private key:\n%s", body)
	}
	if strings.Contains(body, "null") {
		t.Errorf("/debug/config has nulls:\n%s", body)
	}

	code, body, _ = do(t, h, "/metrics")
	if code != 200 || !strings.Contains(body, "rauta_http_requests_total") || !strings.Contains(body, "rauta_config_generation 1") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
}

func TestStatus(t *testing.T) {
	p := newProxy(t, nil)
	h, err := NewHandler(Options{Proxy: p, Status: func() any {
		return map[string]any{"objects": []map[string]string{{"kind": "Gateway", "name": "gw"}}}
	}})
	if err != nil {
		t.Fatal(err)
	}
	code, body, hdr := do(t, h, "/debug/status")
	if want := "objects:\n- kind: Gateway\n  name: gw\n"; code != 200 || body != want || hdr.Get("Content-Type") != "application/yaml" {
		t.Errorf("/debug/status: %d %q, want 200 %q", code, body, want)
	}
	code, body, _ = do(t, h, "/debug/status?format=json")
	if code != 200 || !json.Valid([]byte(body)) || !strings.Contains(body, `"kind": "Gateway"`) {
		t.Errorf("/debug/status?format=json: %d %q", code, body)
	}
}

func TestRoute(t *testing.T) {
	cfg, _ := testConfig(t, "127.0.0.1:1")
	p := newProxy(t, cfg)
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := do(t, h, "/debug/route?listener=default/gw/http&path=/api/users&header=X-Canary:yes&format=json")
	if code != 200 {
		t.Fatalf("/debug/route: %d %s", code, body)
	}
	var got RouteExplanation
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := RouteExplanation{
		Request: RouteRequest{Path: "/api/users", Method: "GET", Headers: map[string][]string{"X-Canary": {"yes"}}},
		Listeners: []ListenerExplanation{{
			Listener: "default/gw/http",
			Selected: 0,
			Backends: []proxy.BackendRef{{Backend: "default/echo:80", Weight: 3}, {Backend: "", Weight: 1}},
			Policy: &PolicyExplanation{Backends: []BackendInEffect{
				{Origin: Origin{Level: "backend", Object: "default/echo:80"}, Weight: 3, LoadBalancer: "RoundRobin", CircuitBreaker: BreakerInEffect{Default: true}},
				{Origin: Origin{Level: "backend", Object: "(invalid reference)"}, Weight: 1, Missing: true},
			}},
			Candidates: []Candidate{
				{Route: "default/web", Rule: 0, RuleName: "api", Match: 0, Path: "PathPrefix /api", Verdict: "Selected"},
				{Route: "default/web", Rule: 1, Match: 0, Path: "PathPrefix /", Verdict: "Shadowed"},
			},
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/debug/route (-want +got):\n%s", diff)
	}

	// Without a listener, every listener is explained; the route is not
	// attached to the HTTPS one.
	code, body, _ = do(t, h, "/debug/route?path=/other&method=POST")
	for _, s := range []string{
		`POST /other host ""`,
		"listener default/gw/http: no route matches (404)",
		`WrongPath     default/web rule 0 "api" match 0 (PathPrefix /api): `,
		`WrongHeader   default/web rule 1 match 0 (PathPrefix /): header "X-Canary" is missing`,
		"listener default/gw/https: no route attached (404)",
	} {
		if code != 200 || !strings.Contains(body, s) {
			t.Errorf("/debug/route text: %d, does not contain %q:\n%s", code, s, body)
		}
	}
	code, body, _ = do(t, h, "/debug/route?path=/api&listener=default/gw/http")
	if !strings.Contains(body, `route default/web rule 0 "api" match 0 -> default/echo:80 weight 3, (invalid reference: 500) weight 1`) {
		t.Errorf("/debug/route text: %d\n%s", code, body)
	}

	code, body, _ = do(t, h, "/debug/route?listener=nope&format=json")
	if code != 200 || !strings.Contains(body, `"error": "no listener \"nope\""`) {
		t.Errorf("/debug/route for an unknown listener: %d\n%s", code, body)
	}
	if code, _, _ := do(t, h, "/debug/route?header=NoColon"); code != 400 {
		t.Errorf("/debug/route with a bad header: %d, want 400", code)
	}
}

func TestServe(t *testing.T) {
	p := newProxy(t, &proxy.Config{})
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, time.Second) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func FuzzRoute(f *testing.F) {
	f.Add("example.com", "/api/users", "GET", "X-Canary:yes", "a=b")
	f.Add("", "%zz/../", "", ":", "")
	f.Add("[::1]:80", "//a//b", "BREW", "X: y: z", "%")
	cfg, _ := testConfig(f, "127.0.0.1:1")
	p := proxy.New(proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer p.Shutdown(context.Background())
	if err := p.Apply(*cfg); err != nil {
		f.Fatal(err)
	}
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host, path, method, header, query string) {
		for _, format := range []string{"", "json"} {
			q := url.Values{"host": {host}, "path": {path}, "method": {method}, "header": {header}, "query": {query}, "format": {format}}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/route?"+q.Encode(), nil))
			if rec.Code != 200 && rec.Code != 400 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

func BenchmarkRoute(b *testing.B) {
	cfg, _ := testConfig(b, "127.0.0.1:1")
	p := proxy.New(proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer p.Shutdown(context.Background())
	if err := p.Apply(*cfg); err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/debug/route?path=/api/users&header=X-Canary:yes", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

func TestPprofOffByDefault(t *testing.T) {
	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	for _, on := range []bool{false, true} {
		h, err := NewHandler(Options{Proxy: p, Pprof: on})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if got := rec.Code == 200; got != on {
			t.Errorf("Pprof=%v: /debug/pprof/ answered %d", on, rec.Code)
		}
	}
}

// TestConfigWithBackendPolicies serves /debug/config for a configuration
// whose backend has a circuit breaker with an OnStateChange func and a
// Now func (which JSON cannot encode) and every other backend policy set.
func TestConfigWithBackendPolicies(t *testing.T) {
	cfg, _ := testConfig(t, "127.0.0.1:1")
	b := &cfg.Backends[0]
	b.LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyQuery, Name: "user"}}
	b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, Path: "/healthz", Interval: time.Hour,
		ExpectedStatuses: []upstream.StatusRange{{Start: 200, End: 299}, {Start: 404}}}
	b.CircuitBreaker = &upstream.CircuitBreaker{Count5xx: true, Options: breaker.Options{
		MinRequests: 5, OpenTimeout: 3 * time.Second, Now: time.Now, OnStateChange: func(from, to breaker.State) {}}}
	b.Connections = upstream.ConnectionLimits{MaxPerEndpoint: 10, IdleTimeout: time.Minute, MaxRequests: 100, MaxLifetime: time.Hour}
	b.Retry = proxy.BackendRetry{Backoff: 20 * time.Millisecond, MaxBackoff: time.Second,
		Budget: &proxy.RetryBudget{Percent: 20, Interval: 10 * time.Second, MinRetries: 3, MinRetriesInterval: time.Second}}
	h, err := NewHandler(Options{Proxy: newProxy(t, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := do(t, h, "/debug/config")
	if code != 200 {
		t.Fatalf("/debug/config: %d %s", code, body)
	}
	var got struct {
		Config struct {
			Backends []struct {
				CircuitBreaker map[string]any `json:"circuitBreaker"`
				Connections    map[string]any `json:"connections"`
				Retry          struct {
					Budget map[string]any `json:"budget"`
				} `json:"retry"`
				HealthCheck map[string]any `json:"healthCheck"`
			} `json:"backends"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Config.Backends) != 1 {
		t.Fatalf("/debug/config: %v\n%s", err, body)
	}
	be := got.Config.Backends[0]
	if be.CircuitBreaker["options"] == nil || len(be.Connections) != 4 || be.Retry.Budget["minRetries"] == nil ||
		be.HealthCheck["expectedStatuses"] == nil {
		t.Errorf("/debug/config lacks backend policies:\n%s", body)
	}
}

// TestRunShutdownTimeoutDefault checks that Run without a ShutdownTimeout
// gives requests in flight proxy.DefaultShutdownTimeout to finish, not no
// time at all.
func TestRunShutdownTimeoutDefault(t *testing.T) {
	arrived := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "done")
	}))
	defer backend.Close()
	cfg, _ := testConfig(t, backend.Listener.Addr().String())
	p := newProxy(t, cfg)
	addr, _ := p.Addr("default/gw/http")
	type result struct {
		code int
		err  error
	}
	got := make(chan result, 1)
	err := Run(context.Background(), RunOptions{Proxy: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		sourceFunc(func(context.Context) error {
			go func() {
				req, _ := http.NewRequest("GET", "http://"+addr.String()+"/", nil)
				req.Header.Set("X-Canary", "yes") // the rule whose only backend is backend
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					got <- result{err: err}
					return
				}
				resp.Body.Close()
				got <- result{code: resp.StatusCode}
			}()
			select {
			case <-arrived:
			case r := <-got:
				t.Errorf("request answered before reaching the backend: %d, %v", r.code, r.err)
				got <- r
			}
			return context.Canceled // as a source returns when ctx is done
		}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := <-got; r.err != nil || r.code != 200 {
		t.Fatalf("request in flight at shutdown: %d, %v; want 200", r.code, r.err)
	}
}

// sourceFunc is a Source that is always ready and runs itself.
type sourceFunc func(context.Context) error

func (f sourceFunc) Run(ctx context.Context) error { return f(ctx) }
func (sourceFunc) Ready() bool                     { return true }
