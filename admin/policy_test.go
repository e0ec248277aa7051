package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// policyConfig sets every policy knob of the Config at every level.
func policyConfig(backend string) *proxy.Config {
	return &proxy.Config{
		Listeners: []proxy.Listener{{
			Name: "default/gw/http", Address: "127.0.0.1", Port: 0, Protocol: proxy.HTTP,
			RateLimits:    []proxy.RateLimit{{Name: "TrafficPolicy default/gw-limit", Rate: 1000, Burst: 2000}},
			RequestLimits: proxy.RequestLimits{MaxBodyBytes: 10 << 20, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute},
			Policies:      []string{"TrafficPolicy default/gw-limit"},
		}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "web", Listeners: []string{"default/gw/http"},
			RateLimits:    []proxy.RateLimit{{Name: "TrafficPolicy default/web-limit", Rate: 5, Burst: 5, Window: time.Minute}},
			RequestLimits: proxy.RequestLimits{ReadTimeout: 10 * time.Second},
			Policies:      []string{"TrafficPolicy default/web-limit"},
			Rules: []proxy.Rule{
				{
					Name:    "api",
					Matches: []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api"}}},
					Backends: []proxy.BackendRef{
						{Backend: "default/echo:80", Weight: 1},
						{Backend: "default/spare:80", Weight: 1},
					},
					Retry:              &proxy.RetryPolicy{Attempts: 2, Codes: []int{503}, Backoff: 10 * time.Millisecond, MaxBackoff: time.Second},
					RateLimits:         []proxy.RateLimit{{Name: "TrafficPolicy default/api-limit", Rate: 1, Burst: 3, Key: upstream.HashKey{Source: upstream.KeyHeader, Name: "X-User"}}},
					RequestLimits:      proxy.RequestLimits{MaxBodyBytes: 1 << 20},
					SessionPersistence: &proxy.SessionPersistence{Type: proxy.SessionCookie, Name: "api-session", AbsoluteTimeout: time.Hour, IdleTimeout: 10 * time.Minute, PermanentCookie: true},
					Policies:           []string{"TrafficPolicy default/api-limit", "HTTPRoute default/web"},
				},
				{
					Matches:  []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/"}}},
					Backends: []proxy.BackendRef{{Backend: "default/spare:80", Weight: 1}},
				},
			},
		}},
		Backends: []proxy.Backend{
			{
				Spec: upstream.Spec{
					Name:         "default/echo:80",
					Endpoints:    []upstream.Endpoint{{Address: backend}},
					LoadBalancer: upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyQuery, Name: "user"}},
					HealthCheck: &upstream.HealthCheck{Kind: upstream.HealthHTTP, Path: "/healthz", Host: "echo.internal", Interval: 2 * time.Second,
						UnhealthyThreshold: 2, ExpectedStatuses: []upstream.StatusRange{{Start: 200, End: 204}, {Start: 301}}},
					CircuitBreaker: &upstream.CircuitBreaker{Count5xx: true, Options: breaker.Options{
						Window: 10 * time.Second, FailureThreshold: 0.3, MinRequests: 20, OpenTimeout: 30 * time.Second, HalfOpenProbes: 2}},
					Connections: upstream.ConnectionLimits{MaxPerEndpoint: 10, IdleTimeout: time.Minute, MaxRequests: 100, MaxLifetime: 5 * time.Minute},
				},
				Retry:              proxy.BackendRetry{Backoff: 25 * time.Millisecond, MaxBackoff: 250 * time.Millisecond, Budget: &proxy.RetryBudget{Percent: 20, Interval: 10 * time.Second, MinRetries: 3, MinRetriesInterval: time.Second}},
				SessionPersistence: &proxy.SessionPersistence{Type: proxy.SessionHeader, Name: "X-Session"},
				Policies:           []string{"BackendPolicy default/echo", "XBackendTrafficPolicy default/budget"},
			},
			{
				Spec:               upstream.Spec{Name: "default/spare:80", Endpoints: []upstream.Endpoint{{Address: backend}}, CircuitBreaker: &upstream.CircuitBreaker{Disabled: true}},
				SessionPersistence: &proxy.SessionPersistence{Type: proxy.SessionHeader, Name: "X-Spare-Session", IdleTimeout: time.Minute},
				Policies:           []string{"BackendPolicy default/spare"},
			},
		},
	}
}

// TestRoutePolicy shows /debug/route explaining the policy in effect for a
// request: every rate limit with its level and name, the request limits
// resolved field by field with the level each comes from, the session
// persistence (the rule's winning over the backends'), and each backend's
// balancing, health check, breaker, connections and retry with the
// policies it names.
func TestRoutePolicy(t *testing.T) {
	p := newProxy(t, policyConfig("127.0.0.1:1"))
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := do(t, h, "/debug/route?listener=default/gw/http&path=/api/users&format=json")
	if code != 200 {
		t.Fatalf("/debug/route: %d %s", code, body)
	}
	var got RouteExplanation
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	listener := Origin{"listener", "default/gw/http", []string{"TrafficPolicy default/gw-limit"}}
	route := Origin{"route", "default/web", []string{"TrafficPolicy default/web-limit"}}
	rule := Origin{"rule", `default/web rule 0 "api"`, []string{"TrafficPolicy default/api-limit", "HTTPRoute default/web"}}
	ruleSession := &SessionInEffect{Origin: rule, Type: "Cookie", Name: "api-session", AbsoluteTimeout: "1h0m0s", IdleTimeout: "10m0s", PermanentCookie: true}
	want := &PolicyExplanation{
		RateLimits: []RateLimitInEffect{
			{Origin: listener, Name: "TrafficPolicy default/gw-limit", Rate: 1000, Burst: 2000},
			{Origin: route, Name: "TrafficPolicy default/web-limit", Rate: 5, Burst: 5, Window: "1m0s"},
			{Origin: rule, Name: "TrafficPolicy default/api-limit", Rate: 1, Burst: 3, Key: "header X-User"},
		},
		RequestLimits: []RequestLimitInEffect{
			{Origin: rule, Field: "maxBodyBytes", Value: "1048576"},
			{Origin: route, Field: "readTimeout", Value: "10s"},
			{Origin: listener, Field: "writeTimeout", Value: "1m0s"},
		},
		SessionPersistence: ruleSession,
		Backends: []BackendInEffect{
			{
				Origin: Origin{"backend", "default/echo:80", []string{"BackendPolicy default/echo", "XBackendTrafficPolicy default/budget"}},
				Weight: 1, LoadBalancer: "Maglev", HashKey: "query parameter user",
				HealthCheck: &HealthCheckInEffect{Kind: "HTTP", Path: "/healthz", Host: "echo.internal", ExpectedStatuses: []string{"200-204", "301"},
					Interval: "2s", Timeout: "1s", HealthyThreshold: 2, UnhealthyThreshold: 2},
				CircuitBreaker:     BreakerInEffect{Count5xx: true, Window: "10s", FailureThreshold: 0.3, MinRequests: 20, OpenTimeout: "30s", HalfOpenProbes: 2},
				Connections:        ConnectionsInEffect{MaxPerEndpoint: 10, IdleTimeout: "1m0s", MaxRequests: 100, MaxLifetime: "5m0s"},
				Retry:              RetryInEffect{Backoff: "25ms", MaxBackoff: "250ms", BudgetPercent: 20, BudgetInterval: "10s", MinRetries: 3, MinRetriesInterval: "1s"},
				SessionPersistence: ruleSession,
			},
			{
				Origin: Origin{"backend", "default/spare:80", []string{"BackendPolicy default/spare"}},
				Weight: 1, LoadBalancer: "RoundRobin", CircuitBreaker: BreakerInEffect{Disabled: true},
				SessionPersistence: ruleSession,
			},
		},
	}
	if len(got.Listeners) != 1 {
		t.Fatalf("%d listeners explained", len(got.Listeners))
	}
	if diff := cmp.Diff(want, got.Listeners[0].Policy); diff != "" {
		t.Errorf("policy in effect (-want +got):\n%s", diff)
	}

	// Another rule: the listener's and route's limits only; the backend's
	// own session persistence.
	code, body, _ = do(t, h, "/debug/route?listener=default/gw/http&path=/other&format=json")
	got = RouteExplanation{}
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("/debug/route: %d %v %s", code, err, body)
	}
	pe := got.Listeners[0].Policy
	wantOther := &PolicyExplanation{
		RateLimits: want.RateLimits[:2],
		RequestLimits: []RequestLimitInEffect{
			{Origin: listener, Field: "maxBodyBytes", Value: "10485760"},
			{Origin: route, Field: "readTimeout", Value: "10s"},
			{Origin: listener, Field: "writeTimeout", Value: "1m0s"},
		},
		Backends: []BackendInEffect{{
			Origin: Origin{"backend", "default/spare:80", []string{"BackendPolicy default/spare"}},
			Weight: 1, LoadBalancer: "RoundRobin", CircuitBreaker: BreakerInEffect{Disabled: true},
			SessionPersistence: &SessionInEffect{Origin: Origin{"backend", "default/spare:80", []string{"BackendPolicy default/spare"}},
				Type: "Header", Name: "X-Spare-Session", IdleTimeout: "1m0s"},
		}},
	}
	if diff := cmp.Diff(wantOther, pe); diff != "" {
		t.Errorf("policy in effect for /other (-want +got):\n%s", diff)
	}

	// The text answer says the same for people.
	code, body, _ = do(t, h, "/debug/route?listener=default/gw/http&path=/api/users")
	for _, s := range []string{
		"  policy in effect:\n",
		`    rate limit "TrafficPolicy default/gw-limit" 1000/s burst 2000: from listener default/gw/http (TrafficPolicy default/gw-limit)` + "\n",
		`    rate limit "TrafficPolicy default/web-limit" 5/s burst 5 window 1m0s: from route default/web (TrafficPolicy default/web-limit)` + "\n",
		`    rate limit "TrafficPolicy default/api-limit" 1/s burst 3 per header X-User: from rule default/web rule 0 "api" (TrafficPolicy default/api-limit, HTTPRoute default/web)` + "\n",
		`    request limit maxBodyBytes 1048576: from rule default/web rule 0 "api"`,
		"    request limit readTimeout 10s: from route default/web (TrafficPolicy default/web-limit)\n",
		"    request limit writeTimeout 1m0s: from listener default/gw/http (TrafficPolicy default/gw-limit)\n",
		`    session persistence Cookie api-session, absolute timeout 1h0m0s, idle timeout 10m0s, permanent cookie: from rule default/web rule 0 "api"`,
		"    backend default/echo:80 (BackendPolicy default/echo, XBackendTrafficPolicy default/budget):\n",
		"      load balancer Maglev on query parameter user\n",
		"      health check HTTP GET /healthz host echo.internal expecting 200-204,301 every 2s, timeout 1s, healthy after 2, unhealthy after 2\n",
		"      circuit breaker failure ratio 0.3, window 10s, min requests 20, open 30s, half-open probes 2, 5xx counts\n",
		"      connections max 10 per endpoint, idle timeout 1m0s, max 100 requests each, max lifetime 5m0s\n",
		"      retry backoff 25ms, max backoff 250ms, budget 20% per 10s, at least 3 per 1s\n",
		"    backend default/spare:80 (BackendPolicy default/spare):\n",
		"      circuit breaker disabled\n",
	} {
		if code != 200 || !strings.Contains(body, s) {
			t.Errorf("/debug/route text lacks %q:\n%s", s, body)
		}
	}
}

// TestConfigPolicyFields shows /debug/config encoding a Config with every
// policy field set. The breakers' breaker.Options is left zero: its
// OnStateChange func does not encode to JSON, which issue #11 item 8 fixes
// in package breaker (another change).
func TestConfigPolicyFields(t *testing.T) {
	cfg := policyConfig("127.0.0.1:1")
	cfg.Backends[0].CircuitBreaker.Options = breaker.Options{}
	p := newProxy(t, cfg)
	h, err := NewHandler(Options{Proxy: p})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := do(t, h, "/debug/config")
	if code != 200 {
		t.Fatalf("/debug/config: %d %s", code, body)
	}
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	// at walks a path of keys and indexes in the decoded document.
	at := func(path ...any) any {
		var v any = doc["config"]
		for _, k := range path {
			switch k := k.(type) {
			case string:
				m, _ := v.(map[string]any)
				v = m[k]
			case int:
				l, _ := v.([]any)
				if k >= len(l) {
					return nil
				}
				v = l[k]
			}
		}
		return v
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"listeners", 0, "rateLimits", 0, "name"}, "TrafficPolicy default/gw-limit"},
		{[]any{"listeners", 0, "requestLimits", "maxBodyBytes"}, json.Number("10485760")},
		{[]any{"listeners", 0, "policies", 0}, "TrafficPolicy default/gw-limit"},
		{[]any{"routes", 0, "rateLimits", 0, "window"}, json.Number("60000000000")},
		{[]any{"routes", 0, "requestLimits", "readTimeout"}, json.Number("10000000000")},
		{[]any{"routes", 0, "policies", 0}, "TrafficPolicy default/web-limit"},
		{[]any{"routes", 0, "rules", 0, "rateLimits", 0, "key", "source"}, "Header"},
		{[]any{"routes", 0, "rules", 0, "requestLimits", "maxBodyBytes"}, json.Number("1048576")},
		{[]any{"routes", 0, "rules", 0, "retry", "maxBackoff"}, json.Number("1000000000")},
		{[]any{"routes", 0, "rules", 0, "sessionPersistence", "type"}, "Cookie"},
		{[]any{"routes", 0, "rules", 0, "sessionPersistence", "permanentCookie"}, true},
		{[]any{"routes", 0, "rules", 0, "policies", 1}, "HTTPRoute default/web"},
		{[]any{"backends", 0, "loadBalancer", "key", "source"}, "Query"},
		{[]any{"backends", 0, "healthCheck", "expectedStatuses", 1, "start"}, json.Number("301")},
		{[]any{"backends", 0, "circuitBreaker", "count5xx"}, true},
		{[]any{"backends", 0, "connections", "maxRequests"}, json.Number("100")},
		{[]any{"backends", 0, "connections", "maxLifetime"}, json.Number("300000000000")},
		{[]any{"backends", 0, "retry", "budget", "minRetries"}, json.Number("3")},
		{[]any{"backends", 0, "retry", "maxBackoff"}, json.Number("250000000")},
		{[]any{"backends", 0, "sessionPersistence", "name"}, "X-Session"},
		{[]any{"backends", 0, "policies", 1}, "XBackendTrafficPolicy default/budget"},
		{[]any{"backends", 1, "circuitBreaker", "disabled"}, true},
	} {
		if got := at(c.path...); !cmp.Equal(c.want, got) {
			t.Errorf("/debug/config %v = %#v, want %#v", c.path, got, c.want)
		}
	}
}
