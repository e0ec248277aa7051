package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/upstream"
)

// load runs GET requests from n goroutines until stop is closed and
// returns how many succeeded and the failures seen.
func load(t testing.TB, url string, n int, stop <-chan struct{}) func() (ok int64, failures []string) {
	var okN atomic.Int64
	var mu sync.Mutex
	var fails []string
	var wg sync.WaitGroup
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 10 * time.Second}
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						okN.Add(1)
						continue
					}
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				mu.Lock()
				if len(fails) < 20 {
					fails = append(fails, err.Error())
				}
				mu.Unlock()
			}
		})
	}
	return func() (int64, []string) {
		wg.Wait()
		return okN.Load(), fails
	}
}

// TestSwapsUnderLoad applies 1,000 configurations while requests flow
// and expects none of them to fail.
func TestSwapsUnderLoad(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	cfgs := []Config{
		simpleConfig(map[string][]string{"a": {addrOf(a)}}, Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}}),
		simpleConfig(map[string][]string{"b": {addrOf(b)}, "a": {addrOf(a)}}, Rule{Matches: prefix("/x"), Backends: []BackendRef{{Backend: "a", Weight: 1}}},
			Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}, {Backend: "a", Weight: 1}}}),
		simpleConfig(map[string][]string{"ab": {addrOf(a), addrOf(b)}}, Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "ab", Weight: 1}}}),
	}
	if err := p.Apply(cfgs[0]); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := load(t, baseURL(t, p, "gw/http")+"/load", 4, stop)
	swaps := 1000
	if testing.Short() {
		swaps = 200
	}
	start := time.Now()
	for i := range swaps {
		if err := p.Apply(cfgs[i%len(cfgs)]); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	ok, fails := wait()
	t.Logf("%d swaps in %v (%v each), %d requests served", swaps, elapsed, elapsed/time.Duration(swaps), ok)
	if len(fails) > 0 {
		t.Fatalf("%d+ requests failed during swaps: %v", len(fails), fails)
	}
	if ok == 0 {
		t.Fatal("no request served")
	}
	if g := p.Generation(); g != uint64(swaps+1) {
		t.Errorf("generation %d, want %d", g, swaps+1)
	}
}

// killable is a backend whose listener and connections can be closed
// abruptly.
type killable struct {
	ln    net.Listener
	srv   *http.Server
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func newKillable(t testing.TB, name string) *killable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &killable{ln: ln, conns: map[net.Conn]bool{}}
	k.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(time.Millisecond)
			io.WriteString(w, name)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			k.mu.Lock()
			defer k.mu.Unlock()
			if s == http.StateNew {
				k.conns[c] = true
			} else if s == http.StateClosed || s == http.StateHijacked {
				delete(k.conns, c)
			}
		},
	}
	go k.srv.Serve(ln)
	t.Cleanup(func() { k.kill() })
	return k
}

func (k *killable) addr() string { return k.ln.Addr().String() }

// kill closes the listener and every connection at once, mid-request.
func (k *killable) kill() {
	k.ln.Close()
	k.mu.Lock()
	for c := range k.conns {
		c.Close()
	}
	k.mu.Unlock()
	k.srv.Close()
}

// TestBackendKilledMidLoad kills one of two endpoints under load: no
// idempotent request may fail.
func TestBackendKilledMidLoad(t *testing.T) {
	a, b := newKillable(t, "a"), newKillable(t, "b")
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"ab": {a.addr(), b.addr()}}, Rule{Backends: []BackendRef{{Backend: "ab", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wait := load(t, baseURL(t, p, "gw/http")+"/", 8, stop)
	time.Sleep(300 * time.Millisecond)
	a.kill()
	time.Sleep(700 * time.Millisecond)
	close(stop)
	ok, fails := wait()
	t.Logf("%d requests served", ok)
	if len(fails) > 0 {
		t.Fatalf("requests failed after an endpoint died: %v", fails)
	}
}

// TestBreakerEjectsAndRecovers checks that a failing endpoint's breaker
// opens, takes it out of the pick, and closes again once it recovers; with
// every breaker open the gateway answers 503.
func TestBreakerEjectsAndRecovers(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	var badHits atomic.Int64
	bad := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		if failing.Load() {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, "bad-recovered")
	}))
	good := echoBackend(t, "good")
	p := newTestProxy(t, Options{})
	cb := &upstream.CircuitBreaker{Count5xx: true, Options: breaker.Options{MinRequests: 4, FailureThreshold: 0.5, OpenTimeout: 300 * time.Millisecond, Window: 5 * time.Second}}
	cfg := simpleConfig(nil, Rule{Matches: prefix("/mixed"), Backends: []BackendRef{{Backend: "mixed", Weight: 1}}},
		Rule{Matches: prefix("/only-bad"), Backends: []BackendRef{{Backend: "only-bad", Weight: 1}}})
	cfg.Backends = []Backend{
		{Spec: upstream.Spec{Name: "mixed", Endpoints: []upstream.Endpoint{{Address: bad.addr()}, {Address: addrOf(good)}}, CircuitBreaker: cb}},
		{Spec: upstream.Spec{Name: "only-bad", Endpoints: []upstream.Endpoint{{Address: bad.addr()}}, CircuitBreaker: cb}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for range 20 {
		get(t, http.DefaultClient, base+"/mixed")
	}
	before := badHits.Load()
	for range 20 {
		if code, body, _ := get(t, http.DefaultClient, base+"/mixed"); code != 200 || body != "good" {
			t.Fatalf("with the bad endpoint ejected: %d %q", code, body)
		}
	}
	if badHits.Load() != before {
		t.Errorf("ejected endpoint still got %d requests", badHits.Load()-before)
	}
	for range 6 {
		get(t, http.DefaultClient, base+"/only-bad")
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/only-bad"); code != 503 {
		t.Errorf("every breaker open: %d, want 503", code)
	}
	failing.Store(false)
	time.Sleep(400 * time.Millisecond)
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, body, _ := get(t, http.DefaultClient, base+"/only-bad")
		if code == 200 && body == "bad-recovered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint never recovered: %d %q", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestActiveHealthCheck takes an endpoint out when its health check fails
// and brings it back when it passes.
func TestActiveHealthCheck(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	a := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if !healthy.Load() {
				w.WriteHeader(503)
			}
			return
		}
		io.WriteString(w, "a")
	}))
	b := echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"ab": {a.addr(), addrOf(b)}}, Rule{Backends: []BackendRef{{Backend: "ab", Weight: 1}}})
	cfg.Backends[0].HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, Path: "/healthz", Interval: 20 * time.Millisecond, HealthyThreshold: 1, UnhealthyThreshold: 1}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	seen := func() map[string]int {
		m := map[string]int{}
		for range 20 {
			_, body, _ := get(t, http.DefaultClient, base+"/")
			m[body]++
		}
		return m
	}
	waitFor := func(cond func(map[string]int) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			m := seen()
			if cond(m) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: traffic %v", what, m)
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	waitFor(func(m map[string]int) bool { return m["a"] > 0 && m["b"] > 0 }, "both healthy")
	healthy.Store(false)
	waitFor(func(m map[string]int) bool { return m["a"] == 0 }, "a unhealthy")
	healthy.Store(true)
	waitFor(func(m map[string]int) bool { return m["a"] > 0 }, "a healthy again")
}

// TestMaglevAffinity checks that a header keys requests to one endpoint.
func TestMaglevAffinity(t *testing.T) {
	bs := []string{}
	for i := range 4 {
		bs = append(bs, addrOf(echoBackend(t, fmt.Sprint("e", i))))
	}
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"m": bs}, Rule{Backends: []BackendRef{{Backend: "m", Weight: 1}}})
	cfg.Backends[0].LoadBalancer = upstream.LoadBalancer{Policy: upstream.Maglev, Key: upstream.HashKey{Source: upstream.KeyHeader, Name: "X-User"}}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	owners := map[string]bool{}
	for u := range 40 {
		user := fmt.Sprint("user-", u)
		_, first, _ := get(t, http.DefaultClient, base+"/", "X-User", user)
		owners[first] = true
		for range 5 {
			if _, body, _ := get(t, http.DefaultClient, base+"/", "X-User", user); body != first {
				t.Fatalf("%s went to %s then %s", user, first, body)
			}
		}
	}
	if len(owners) < 3 {
		t.Errorf("40 users landed on only %d endpoints", len(owners))
	}
}

// TestGracefulShutdown lets an in-flight request finish and refuses new
// connections.
func TestGracefulShutdown(t *testing.T) {
	slow := echoSlow(t, 300*time.Millisecond)
	p := New(Options{Logger: quietLogger(t)})
	if err := p.Apply(simpleConfig(map[string][]string{"s": {slow.addr()}}, Rule{Backends: []BackendRef{{Backend: "s", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	done := make(chan error, 1)
	go func() {
		code, body, _ := get(t, http.DefaultClient, base+"/")
		if code != 200 || body != "slow" {
			done <- fmt.Errorf("in-flight request: %d %q", code, body)
			return
		}
		done <- nil
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Error("new request accepted after shutdown")
	}
	if err := p.Apply(Config{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Shutdown = %v", err)
	}
}

// TestForwardingHeaders checks X-Forwarded-* from untrusted and trusted
// clients and the removal of hop-by-hop headers.
func TestForwardingHeaders(t *testing.T) {
	seen := make(chan http.Header, 1)
	back := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		seen <- h
		w.Header().Set("Connection", "X-Resp-Hop")
		w.Header().Set("X-Resp-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
	}))
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		wantXFF string
		wantXFH string
	}{
		{"untrusted", nil, "127.0.0.1", "gw.example"},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.9, 127.0.0.1", "orig.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProxy(t, Options{TrustedProxies: tc.trusted})
			if err := p.Apply(simpleConfig(map[string][]string{"b": {back.addr()}}, Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
				t.Fatal(err)
			}
			_, _, rh := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/",
				"Host", "gw.example", "X-Forwarded-For", "203.0.113.9", "X-Forwarded-Host", "orig.example",
				"Connection", "X-Hop", "X-Hop", "secret", "Proxy-Authorization", "Basic x", "X-Keep", "1")
			h := <-seen
			if got := h.Get("X-Forwarded-For"); got != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", got, tc.wantXFF)
			}
			if got := h.Get("X-Forwarded-Host"); got != tc.wantXFH {
				t.Errorf("X-Forwarded-Host %q, want %q", got, tc.wantXFH)
			}
			if h.Get("Host") != "gw.example" {
				t.Errorf("Host %q", h.Get("Host"))
			}
			for _, k := range []string{"X-Hop", "Proxy-Authorization"} {
				if h.Get(k) != "" {
					t.Errorf("hop-by-hop %s forwarded", k)
				}
			}
			if h.Get("X-Keep") != "1" {
				t.Error("end-to-end header dropped")
			}
			if rh.Get("X-Resp-Hop") != "" || rh.Get("Keep-Alive") != "" {
				t.Errorf("response hop-by-hop headers forwarded: %v", rh)
			}
		})
	}
}

// TestUpdateEndpointsFastPath adds and removes endpoints without a new
// configuration.
func TestUpdateEndpointsFastPath(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"svc": {addrOf(a)}}, Rule{Backends: []BackendRef{{Backend: "svc", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	gen := p.Generation()
	if err := p.UpdateEndpoints("svc", []upstream.Endpoint{{Address: addrOf(b)}}); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := get(t, http.DefaultClient, base+"/"); body != "b" {
		t.Errorf("after UpdateEndpoints: %q", body)
	}
	if p.Generation() != gen {
		t.Error("UpdateEndpoints rebuilt the configuration")
	}
	if err := p.UpdateEndpoints("svc", nil); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, http.DefaultClient, base+"/"); code != 503 {
		t.Errorf("no endpoints: %d", code)
	}
	if err := p.UpdateEndpoints("nope", nil); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown backend: %v", err)
	}
}

// TestBackend5xxPassedThrough checks that by default a backend answering
// 500 keeps getting requests (its answers reach the client as they are)
// rather than being ejected by its breaker.
func TestBackend5xxPassedThrough(t *testing.T) {
	bad := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
	}))
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"b": {bad.addr()}}, Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	cfg.Backends[0].CircuitBreaker = &upstream.CircuitBreaker{Options: breaker.Options{MinRequests: 2}}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		if code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/"); code != 500 {
			t.Fatalf("request %d: %d, want the backend's 500", i, code)
		}
	}
}
