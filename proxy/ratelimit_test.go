package proxy

import (
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/rauta/rauta/upstream"
)

// hammer sends GETs to url from workers closed-loop clients (each sends
// its next request when the previous is answered) for d, and counts the
// answers by status. It returns the counts and the time from the first
// request sent to the last answer received.
func hammer(t *testing.T, url string, workers int, d time.Duration, hdr ...string) (map[int]int, time.Duration) {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range workers {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			local := map[int]int{}
			for time.Now().Before(stop) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				resp, err := c.Do(req)
				if err != nil {
					failed.Store(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local[resp.StatusCode]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatalf("request failed: %v", err)
	}
	return counts, time.Since(start)
}

// TestRateLimitAdmitsRateTimesTPlusBurst is the acceptance test: a
// limit admits rate × t + burst requests over t = 10 s, within 5%, and
// answers the others 429 with Retry-After and the RateLimit fields. The
// clients are closed-loop and always have a request waiting, so the bucket
// never sits full; the bound is on what was admitted, measured against the
// time the clients actually ran.
func TestRateLimitAdmitsRateTimesTPlusBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 10s")
	}
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	const rate, burst = 100.0, 100
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Name: "default/api", Rate: rate, Burst: burst}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	url := baseURL(t, p, "gw/http") + "/"
	counts, elapsed := hammer(t, url, 3, 10*time.Second)
	want := rate*elapsed.Seconds() + burst
	got := float64(counts[200])
	t.Logf("admitted %d, refused %d in %v; rate × t + burst = %.0f", counts[200], counts[429], elapsed, want)
	if math.Abs(got-want) > 0.05*want {
		t.Errorf("admitted %v requests in %v; want %.0f ± 5%%", got, elapsed, want)
	}
	if counts[429] == 0 || len(counts) != 2 {
		t.Errorf("answers %v; want only 200 and 429, some of each", counts)
	}
	code, _, h := get(t, http.DefaultClient, url)
	for code != 429 {
		code, _, h = get(t, http.DefaultClient, url)
	}
	want429 := map[string]string{
		"Retry-After":      "1",
		"Ratelimit-Policy": `"default/api";q=100;w=1`,
		"Ratelimit":        `"default/api";r=0;t=1`,
	}
	got429 := map[string]string{}
	for k := range want429 {
		got429[k] = h.Get(k)
	}
	if diff := cmp.Diff(want429, got429); diff != "" {
		t.Errorf("429 fields (-want +got):\n%s", diff)
	}
}

// slow is a rate that refills nothing while a test runs.
const slow = 1e-6

// TestRateLimitLevels checks that listener, route and rule limits all
// apply; that a name shared by two listeners, and by two routes that
// stand for one, is one budget; and that tokens taken by earlier limits
// are given back when a later one refuses.
func TestRateLimitLevels(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	gw := RateLimit{Name: "gw", Rate: slow, Burst: 6}
	rule := func(path string, lims ...RateLimit) Rule {
		return Rule{Matches: prefix(path), Backends: []BackendRef{{Backend: "a", Weight: 1}}, RateLimits: lims}
	}
	cfg := Config{
		Listeners: []Listener{
			{Name: "l1", Address: "127.0.0.1", Protocol: HTTP, RateLimits: []RateLimit{gw}},
			{Name: "l2", Address: "127.0.0.2", Protocol: HTTP, RateLimits: []RateLimit{gw}},
		},
		Routes: []Route{
			// One HTTPRoute translated into two Routes: one budget.
			{Namespace: "ns", Name: "shared-1", Listeners: []string{"l1"}, RateLimits: []RateLimit{{Name: "ns/shared", Rate: slow, Burst: 3}},
				Rules: []Rule{rule("/shared")}},
			{Namespace: "ns", Name: "shared-2", Listeners: []string{"l2"}, RateLimits: []RateLimit{{Name: "ns/shared", Rate: slow, Burst: 3}},
				Rules: []Rule{rule("/shared")}},
			{Namespace: "ns", Name: "other", Listeners: []string{"l1", "l2"}, Rules: []Rule{
				rule("/strict", RateLimit{Rate: slow, Burst: 1}),
				rule("/free"),
			}},
		},
		Backends: []Backend{{Spec: upstream.Spec{Name: "a", Endpoints: []upstream.Endpoint{{Address: addrOf(a)}}}}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	u1, u2 := baseURL(t, p, "l1"), baseURL(t, p, "l2")
	var got []string
	do := func(url string) {
		code, _, h := get(t, http.DefaultClient, url)
		s := strconv.Itoa(code)
		if code == 429 {
			s += " " + h.Get("Ratelimit")
		}
		got = append(got, s)
	}
	do(u1 + "/shared") // shared 2 left, gw 5
	do(u2 + "/shared") // shared 1, gw 4
	do(u1 + "/strict") // strict 0, gw 3
	do(u2 + "/strict") // refused by the rule: the listener's token is given back
	do(u2 + "/strict")
	do(u1 + "/shared") // shared 0, gw 2
	do(u2 + "/shared") // refused by the route
	do(u1 + "/free")   // gw 1
	do(u2 + "/free")   // gw 0
	do(u1 + "/free")   // refused by the listeners' shared limit
	want := []string{
		"200", "200", "200",
		`429 "route/ns/other/rules/0/rateLimits/0";r=0;t=1000000`,
		`429 "route/ns/other/rules/0/rateLimits/0";r=0;t=1000000`,
		"200",
		`429 "ns/shared";r=0;t=1000000`,
		"200", "200",
		`429 "gw";r=0;t=1000000`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// TestRateLimitBucketsSurviveApply checks that a named limit keeps its
// bucket across configurations, even when it moves to another level, and
// gets a new one when its numbers change; an unnamed limit keeps its
// bucket while its place and numbers stay.
func TestRateLimitBucketsSurviveApply(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	named := RateLimit{Name: "n", Rate: slow, Burst: 2}
	cfgWith := func(routeLims, ruleLims []RateLimit) Config {
		cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
			Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}, RateLimits: ruleLims})
		cfg.Routes[0].RateLimits = routeLims
		return cfg
	}
	var got []int
	apply := func(cfg Config, n int) {
		if err := p.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		for range n {
			code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/")
			got = append(got, code)
		}
	}
	apply(cfgWith(nil, []RateLimit{named}), 1) // 1 left
	apply(cfgWith([]RateLimit{named}, nil), 2) // moved to the route: same bucket
	withWindow := named
	withWindow.Window = 10 * time.Second
	if err := p.Apply(cfgWith([]RateLimit{withWindow}, nil)); err != nil {
		t.Fatal(err)
	}
	code, _, h := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/")
	if code != 429 || h.Get("Ratelimit-Policy") != `"n";q=0;w=10` {
		t.Errorf("after a new window: %d, RateLimit-Policy %q; want 429 (same bucket) and the new window", code, h.Get("Ratelimit-Policy"))
	}
	apply(cfgWith(nil, []RateLimit{{Name: "n", Rate: slow, Burst: 3}}), 1) // new numbers: new bucket
	apply(cfgWith(nil, []RateLimit{{Rate: slow, Burst: 1}}), 1)            // unnamed
	apply(cfgWith(nil, []RateLimit{{Rate: slow, Burst: 1}}), 1)            // same place and numbers: kept
	apply(cfgWith([]RateLimit{{Rate: slow, Burst: 1}}, nil), 1)            // another place: new bucket
	if diff := cmp.Diff([]int{200, 200, 429, 200, 200, 429, 200}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// TestRateLimitKeyed checks one budget per header value, requests without
// the header sharing one, and the per-client-address key.
func TestRateLimitKeyed(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/user"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Rate: slow, Burst: 1, Key: upstream.HashKey{Source: upstream.KeyHeader, Name: "X-User"}}}},
		Rule{Matches: prefix("/client"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Rate: slow, Burst: 2, Key: upstream.HashKey{Source: upstream.KeyClientAddress}}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	var got []int
	for _, user := range []string{"ann", "bob", "ann", "", "", "bob"} {
		var hdr []string
		if user != "" {
			hdr = []string{"X-User", user}
		}
		code, _, _ := get(t, http.DefaultClient, base+"/user", hdr...)
		got = append(got, code)
	}
	for range 3 {
		code, _, _ := get(t, http.DefaultClient, base+"/client")
		got = append(got, code)
	}
	if diff := cmp.Diff([]int{200, 200, 429, 200, 429, 429, 200, 200, 429}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// TestRateLimitFields checks the fields of a 429 for a limit with a window
// and a name that needs escaping, and that admitted responses carry none.
func TestRateLimitFields(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Name: `say "hi" \o/`, Rate: 0.5, Burst: 1, Window: time.Minute}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	url := baseURL(t, p, "gw/http") + "/"
	code, _, h := get(t, http.DefaultClient, url)
	if code != 200 || h.Get("Ratelimit") != "" || h.Get("Ratelimit-Policy") != "" || h.Get("Retry-After") != "" {
		t.Errorf("admitted: %d with RateLimit %q, RateLimit-Policy %q, Retry-After %q; want 200 without them", code, h.Get("Ratelimit"), h.Get("Ratelimit-Policy"), h.Get("Retry-After"))
	}
	code, body, h := get(t, http.DefaultClient, url)
	got := map[string]string{"status": strconv.Itoa(code), "body": body}
	for _, k := range []string{"Retry-After", "Ratelimit", "Ratelimit-Policy"} {
		got[k] = strings.Join(h.Values(k), "|")
	}
	want := map[string]string{
		"status":           "429",
		"body":             "rate limited\n",
		"Retry-After":      "2",
		"Ratelimit":        `"say \"hi\" \\o/";r=0;t=2`,
		"Ratelimit-Policy": `"say \"hi\" \\o/";q=30;w=60`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("429 (-want +got):\n%s", diff)
	}
}

// TestSetReplicas checks that each replica admits its share of a limit,
// that the share follows SetReplicas at once, without an Apply, and that
// setting one replica again restores the whole limit.
func TestSetReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 6s")
	}
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	// A burst of one second's worth: a loaded machine stalls the whole
	// process (clients and proxy) for hundreds of milliseconds at a time,
	// and a smaller bucket would lose the tokens of every stall longer
	// than burst/rate, so the test would measure the machine.
	const rate, burst = 30.0, 30
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Name: "r", Rate: rate, Burst: burst}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	url := baseURL(t, p, "gw/http") + "/"
	check := func(replicas int) {
		p.SetReplicas(replicas)
		// Spend what the bucket holds, then measure the steady rate with
		// eight clients, which ask for far more than the limit.
		hammer(t, url, 4, 300*time.Millisecond)
		counts, elapsed := hammer(t, url, 8, 3*time.Second)
		got := float64(counts[200]) / elapsed.Seconds()
		want := rate / float64(max(replicas, 1))
		t.Logf("replicas %d: %d admitted in %v: %.1f/s", replicas, counts[200], elapsed, got)
		if got < 0.9*want || got > 1.1*want+float64(burst)/elapsed.Seconds() {
			t.Errorf("replicas %d: admitted %.1f/s; want %.1f/s", replicas, got, want)
		}
	}
	check(3)
	check(1)
	check(0) // means 1
}

// TestRateLimitMetric checks the count of refused requests by limit and
// route.
func TestRateLimitMetric(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Name: "lim", Rate: slow, Burst: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/")
	}
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "rauta_rate_limited_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[labelString(m)] = m.GetCounter().GetValue()
		}
	}
	if diff := cmp.Diff(map[string]float64{"limit=lim,route=default/r": 3}, got); diff != "" {
		t.Errorf("rauta_rate_limited_requests_total (-want +got):\n%s", diff)
	}
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// TestRateLimitValidation checks that bad limits are refused with errors
// naming the object and field: on a listener the whole Config (the one
// before stays), on a route or rule that route's or rule's requests.
func TestRateLimitValidation(t *testing.T) {
	a := echoBackend(t, "a")
	good := simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	tests := []struct {
		name    string
		mutate  func(*Config)
		whole   bool // the Config is refused whole
		wantErr string
	}{
		{"listener rate", func(c *Config) { c.Listeners[0].RateLimits = []RateLimit{{Rate: 0, Burst: 1}} }, true,
			`listener "gw/http": rateLimits[0].rate 0: must be a finite number > 0`},
		{"listener request limits", func(c *Config) { c.Listeners[0].RequestLimits.ReadTimeout = -1 }, true,
			`listener "gw/http": requestLimits.readTimeout -1ns: must not be negative`},
		{"route burst", func(c *Config) { c.Routes[0].RateLimits = []RateLimit{{Rate: 1, Burst: -2}} }, false,
			`route default/r rule 0: route rateLimits[0].burst -2: must be > 0`},
		{"route request limits", func(c *Config) { c.Routes[0].RequestLimits.MaxBodyBytes = -1 }, false,
			`route default/r rule 0: route requestLimits.maxBodyBytes -1: must not be negative`},
		{"rule window", func(c *Config) {
			c.Routes[0].Rules[0].RateLimits = []RateLimit{{Rate: 1, Burst: 1, Window: -time.Second}}
		}, false, `route default/r rule 0: rateLimits[0].window -1s: must not be negative`},
		{"rule key name", func(c *Config) {
			c.Routes[0].Rules[0].RateLimits = []RateLimit{{Rate: 1, Burst: 1, Key: upstream.HashKey{Source: upstream.KeyCookie}}}
		}, false, `route default/r rule 0: rateLimits[0].key.name: required for source Cookie`},
		{"rule header name", func(c *Config) {
			c.Routes[0].Rules[0].RateLimits = []RateLimit{{Rate: 1, Burst: 1, Key: upstream.HashKey{Source: upstream.KeyHeader, Name: "bad name"}}}
		}, false, `route default/r rule 0: rateLimits[0].key.name "bad name": must be a header name`},
		{"rule name", func(c *Config) {
			c.Routes[0].Rules[0].RateLimits = []RateLimit{{Name: "é", Rate: 1, Burst: 1}}
		}, false, `route default/r rule 0: rateLimits[0].name "é": only printable ASCII characters may be used (it is sent as a structured-field string)`},
		{"rule write timeout", func(c *Config) { c.Routes[0].Rules[0].RequestLimits.WriteTimeout = -time.Second }, false,
			`route default/r rule 0: requestLimits.writeTimeout -1s: must not be negative`},
		{"name used with other numbers", func(c *Config) {
			c.Listeners[0].RateLimits = []RateLimit{{Name: "x", Rate: 1, Burst: 1}}
			c.Routes[0].Rules[0].RateLimits = []RateLimit{{Name: "x", Rate: 2, Burst: 1}}
		}, false, `route default/r rule 0: rateLimits[0]: name "x": already used in this configuration, first at listener/gw/http, by a limit with other settings; limits that share a name share one budget and must be equal`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestProxy(t, Options{})
			if err := p.Apply(good); err != nil {
				t.Fatal(err)
			}
			url := baseURL(t, p, "gw/http") + "/"
			bad := good
			bad.Listeners = append([]Listener(nil), good.Listeners...)
			bad.Routes = append([]Route(nil), good.Routes...)
			bad.Routes[0].Rules = append([]Rule(nil), good.Routes[0].Rules...)
			tt.mutate(&bad)
			err := p.Apply(bad)
			if err == nil {
				t.Fatal("Apply accepted the configuration")
			}
			var aerr *ApplyError
			if isApply := errors.As(err, &aerr); isApply == tt.whole {
				t.Errorf("Apply error %T; want the whole Config refused: %v", err, tt.whole)
			}
			msg := err.Error()
			if aerr != nil && len(aerr.Routes) == 1 {
				msg = aerr.Routes[0].Error()
			}
			if msg != tt.wantErr {
				t.Errorf("error:\n got %s\nwant %s", msg, tt.wantErr)
			}
			code, _, _ := get(t, http.DefaultClient, url)
			want := 500
			if tt.whole {
				want = 200 // the previous Config serves
			}
			if code != want {
				t.Errorf("GET after the refused limit: %d; want %d", code, want)
			}
		})
	}
}

// BenchmarkAdmit measures the rate-limit check of a request covered by a
// listener limit, a keyed route limit and a rule limit, none refusing.
func BenchmarkAdmit(b *testing.B) {
	p := newTestProxy(b, Options{})
	cfg := simpleConfig(map[string][]string{"b": {"127.0.0.1:1"}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}, RateLimits: []RateLimit{{Rate: 1e8, Burst: 1 << 20}}})
	cfg.Listeners[0].RateLimits = []RateLimit{{Name: "gw", Rate: 1e8, Burst: 1 << 20}}
	cfg.Routes[0].RateLimits = []RateLimit{{Name: "route", Rate: 1e8, Burst: 1 << 20, Key: upstream.HashKey{Source: upstream.KeyClientAddress}}}
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	var pt *portTable
	for _, v := range p.snap.Load().ports {
		pt = v
	}
	req := routerRequest("bench.example", "/", "GET")
	pl := pt.listenerFor(req.Host)
	req.Listener = pl.nameOrEmpty()
	res, err := pt.table.Match(&req)
	if err != nil {
		b.Fatal(err)
	}
	cr := res.Rule.Value.(*compiledRule)
	r, _ := http.NewRequest(http.MethodGet, "http://bench.example/", nil)
	r.RemoteAddr = "192.0.2.7:41000"
	x := requestState{listener: req.Listener}
	b.ReportAllocs()
	for b.Loop() {
		if !p.admit(nil, r, pl, cr, &x) {
			b.Fatal("refused")
		}
	}
}
