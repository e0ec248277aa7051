package proxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/upstream"
)

// mountedConfig is simpleConfig with its listener unbound.
func mountedConfig(backends map[string][]string, rules ...Rule) Config {
	cfg := simpleConfig(backends, rules...)
	cfg.Listeners[0] = Listener{Name: "gw/http", Protocol: HTTP, Unbound: true}
	return cfg
}

// mountModes are the ways the suite mounts Proxy.Handler under net/http's
// server: HTTP/1.1, HTTP/2 over TLS (ALPN), and h2c with prior knowledge.
var mountModes = []string{"http1", "h2", "h2c"}

// mount serves h with net/http's server in the given mode, behind a
// middleware that stamps X-Mounted on every response, and returns the
// server's URL and a client speaking that mode.
func mount(t testing.TB, mode string, h http.Handler) (*httptest.Server, *http.Client) {
	t.Helper()
	mw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Mounted", r.Proto)
		h.ServeHTTP(w, r)
	})
	s := httptest.NewUnstartedServer(mw)
	var c *http.Client
	switch mode {
	case "http1":
		s.Start()
		c = s.Client()
	case "h2":
		s.EnableHTTP2 = true
		s.StartTLS()
		c = s.Client()
	case "h2c":
		s.Config.Protocols = new(http.Protocols)
		s.Config.Protocols.SetHTTP1(true)
		s.Config.Protocols.SetUnencryptedHTTP2(true)
		s.Start()
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		c = &http.Client{Transport: tr}
	default:
		t.Fatalf("unknown mount mode %q", mode)
	}
	t.Cleanup(s.Close)
	t.Cleanup(c.CloseIdleConnections)
	return s, c
}

// wantProto is the protocol a mode's requests arrive with.
func wantProto(mode string) string {
	if mode == "http1" {
		return "HTTP/1.1"
	}
	return "HTTP/2.0"
}

// TestHandlerEndToEnd runs a representative part of the end-to-end suite
// (routing, forwarding headers, retries, rate limits, session persistence,
// streaming, WebSocket upgrades) through Proxy.Handler mounted under
// net/http's server, over HTTP/1.1, HTTP/2 over TLS and h2c, with an
// unbound listener: the proxy binds nothing.
func TestHandlerEndToEnd(t *testing.T) {
	for _, mode := range mountModes {
		t.Run(mode, func(t *testing.T) {
			t.Run("routing", func(t *testing.T) { mountedRouting(t, mode) })
			t.Run("retries", func(t *testing.T) { mountedRetries(t, mode) })
			t.Run("ratelimit", func(t *testing.T) { mountedRateLimit(t, mode) })
			t.Run("session", func(t *testing.T) { mountedSession(t, mode) })
			t.Run("streaming", func(t *testing.T) { mountedStreaming(t, mode) })
			if mode == "http1" {
				// WebSocket over HTTP/2 (RFC 8441) is not offered by
				// net/http's server by default; over HTTP/1.1 the
				// handler hijacks the connection.
				t.Run("websocket", func(t *testing.T) { mountedWebSocket(t) })
			}
		})
	}
}

func mountedRouting(t *testing.T, mode string) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	cfg := mountedConfig(map[string][]string{"a": {addrOf(a)}, "b": {addrOf(b)}},
		Rule{Matches: prefix("/a"), Backends: []BackendRef{{Backend: "a", Weight: 1}}},
		Rule{Matches: prefix("/b"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Addr("gw/http"); ok {
		t.Fatal("an unbound listener has an address")
	}
	if cands, err := p.Explain("gw/http", routerRequest("x", "/b/1", "GET")); err != nil || len(cands) == 0 {
		t.Errorf("Explain on an unbound listener: %v, %v", cands, err)
	}
	s, c := mount(t, mode, p.Handler("gw/http"))
	wantXFP := "http"
	if mode == "h2" {
		wantXFP = "https" // r.TLS is set: the request is taken as HTTPS
	}
	for path, want := range map[string]string{"/a/x": "a", "/b/y?q=1": "b"} {
		code, body, h := get(t, c, s.URL+path)
		if code != 200 || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
		if h.Get("X-Seen-Path") != path {
			t.Errorf("GET %s: backend saw %q", path, h.Get("X-Seen-Path"))
		}
		if got := h.Get("X-Mounted"); got != wantProto(mode) {
			t.Errorf("GET %s: middleware saw %q, want %q", path, got, wantProto(mode))
		}
		if got := h.Get("X-Seen-XFP"); got != wantXFP {
			t.Errorf("GET %s: X-Forwarded-Proto %q, want %q", path, got, wantXFP)
		}
		if h.Get("X-Seen-XFF") != "127.0.0.1" {
			t.Errorf("GET %s: X-Forwarded-For %q, want 127.0.0.1", path, h.Get("X-Seen-XFF"))
		}
	}
	if code, body, _ := get(t, c, s.URL+"/none"); code != 404 || body != "no route\n" {
		t.Errorf("GET /none: %d %q, want 404 no route", code, body)
	}
	// A name the Config does not hold is answered like no route.
	s2, c2 := mount(t, mode, p.Handler("gw/other"))
	if code, _, _ := get(t, c2, s2.URL+"/a/x"); code != 404 {
		t.Errorf("unknown listener: %d, want 404", code)
	}
}

func mountedRetries(t *testing.T, mode string) {
	// A refused endpoint is retried on the other one; a 503 is retried by
	// the rule's RetryPolicy.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	var calls atomic.Int64
	flaky := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	p := newTestProxy(t, Options{})
	rule := Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}},
		Retry: &RetryPolicy{Attempts: 2, Codes: []int{503}, Backoff: time.Millisecond}}
	cfg := mountedConfig(map[string][]string{"b": {deadAddr, flaky.addr()}}, rule)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, mode, p.Handler("gw/http"))
	for i := range 6 {
		code, body, _ := get(t, c, s.URL+"/r")
		if code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q, want 200 ok after retries", i, code, body)
		}
	}
	if n := calls.Load(); n != 12 {
		t.Errorf("backend saw %d requests, want 12 (each request once with 503, once with 200)", n)
	}
}

func mountedRateLimit(t *testing.T, mode string) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := mountedConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}},
			RateLimits: []RateLimit{{Name: "mounted", Rate: 0.001, Burst: 3}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, mode, p.Handler("gw/http"))
	for i := range 3 {
		if code, _, _ := get(t, c, s.URL+"/"); code != 200 {
			t.Fatalf("request %d within the burst: %d", i, code)
		}
	}
	code, _, h := get(t, c, s.URL+"/")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(h.Get("RateLimit-Policy"), `"mounted"`) {
		t.Errorf("request past the burst: %d, Retry-After %q, RateLimit-Policy %q; want 429 with both", code, h.Get("Retry-After"), h.Get("RateLimit-Policy"))
	}
	if h.Get("X-Mounted") == "" {
		t.Error("the 429 did not pass through the middleware")
	}
}

func mountedSession(t *testing.T, mode string) {
	var eps []upstream.Endpoint
	for i := range 3 {
		name := fmt.Sprintf("e%d", i)
		s := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		eps = append(eps, upstream.Endpoint{Address: s.addr()})
	}
	p := newTestProxy(t, Options{})
	cfg := mountedConfig(nil, Rule{Matches: prefix("/app/"), Backends: []BackendRef{{Backend: "svc", Weight: 1}}, SessionPersistence: &SessionPersistence{}})
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: eps}}}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, mode, p.Handler("gw/http"))
	_, first, h := get(t, c, s.URL+"/app/page")
	ck := setCookie(t, h, DefaultSessionName)
	if ck == nil {
		t.Fatalf("no session cookie: %v", h)
	}
	if ck.Secure != (mode == "h2") {
		t.Errorf("cookie Secure=%v over %s; want Secure exactly over TLS", ck.Secure, mode)
	}
	for i := range 30 {
		_, got, _ := get(t, c, s.URL+"/app/page", "Cookie", ck.Name+"="+ck.Value)
		if got != first {
			t.Fatalf("request %d with the cookie reached %s, want %s", i, got, first)
		}
	}
	seen := map[string]bool{}
	for range 30 {
		_, got, _ := get(t, c, s.URL+"/app/page")
		seen[got] = true
	}
	if len(seen) != 3 {
		t.Errorf("requests without a cookie reached %v, want all three endpoints", seen)
	}
}

func mountedStreaming(t *testing.T, mode string) {
	release := make(chan struct{})
	backend := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	}))
	p := newTestProxy(t, Options{})
	cfg := mountedConfig(map[string][]string{"b": {backend.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, mode, p.Handler("gw/http"))
	resp, err := c.Get(s.URL + "/stream")
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	close(release) // only now may the backend finish
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk: %q, %v; want it before the backend finishes", line, err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}
}

func mountedWebSocket(t *testing.T) {
	backend := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
		// Echo lines until the client goes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	}))
	p := newTestProxy(t, Options{})
	cfg := mountedConfig(map[string][]string{"b": {backend.addr()}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, _ := mount(t, "http1", p.Handler("gw/http"))
	conn, err := net.Dial("tcp", addrOf(s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"hello\n", "again\n"} {
		io.WriteString(conn, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != "echo "+msg {
			t.Fatalf("tunnel: %q, %v; want %q", got, err, "echo "+msg)
		}
	}
}

// TestHandlerApplyReachesNextRequest applies a Config while a request is
// held in flight through a mounted handler: the request in flight finishes
// on the Config it started with, and the next request (on the same
// connection over HTTP/2) is served by the new one. A listener the Config adds later
// is served by a handler made before it existed.
func TestHandlerApplyReachesNextRequest(t *testing.T) {
	for _, mode := range mountModes {
		t.Run(mode, func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			slow := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/hold" {
					close(entered)
					<-release
				}
				io.WriteString(w, "old")
			}))
			fresh := echoBackend(t, "new")
			p := newTestProxy(t, Options{})
			route := func(backend string) Rule {
				return Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: backend, Weight: 1}}}
			}
			backends := map[string][]string{"old": {slow.addr()}, "new": {addrOf(fresh)}}
			if err := p.Apply(mountedConfig(backends, route("old"))); err != nil {
				t.Fatal(err)
			}
			s, c := mount(t, mode, p.Handler("gw/http"))
			later, c2 := mount(t, mode, p.Handler("gw/later"))
			if code, _, _ := get(t, c2, later.URL+"/"); code != 404 {
				t.Fatalf("listener not yet configured: %d, want 404", code)
			}

			type result struct {
				code int
				body string
			}
			held := make(chan result, 1)
			go func() {
				resp, err := c.Get(s.URL + "/hold")
				if err != nil {
					held <- result{body: err.Error()}
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				held <- result{resp.StatusCode, string(b)}
			}()
			<-entered
			cfg := mountedConfig(backends, route("new"))
			cfg.Listeners = append(cfg.Listeners, Listener{Name: "gw/later", Protocol: HTTP, Unbound: true})
			cfg.Routes[0].Listeners = []string{"gw/http", "gw/later"}
			if err := p.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			if code, body, _ := get(t, c, s.URL+"/next"); code != 200 || body != "new" {
				t.Errorf("next request after Apply: %d %q, want 200 new", code, body)
			}
			if code, body, _ := get(t, c2, later.URL+"/"); code != 200 || body != "new" {
				t.Errorf("listener added by Apply: %d %q, want 200 new", code, body)
			}
			close(release)
			if r := <-held; r.code != 200 || r.body != "old" {
				t.Errorf("request in flight during Apply: %d %q, want 200 old", r.code, r.body)
			}
		})
	}
}

// TestHandlerBoundListener mounts a listener the proxy also binds: both
// paths serve its routes, and the mounted one serves that listener's routes
// only, whatever the Host.
func TestHandlerBoundListener(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}, "b": {addrOf(b)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg.Listeners[0].Hostname = "a.example"
	cfg.Listeners = append(cfg.Listeners, Listener{Name: "gw/b", Address: "127.0.0.1", Port: 0, Protocol: HTTP, Hostname: "b.example"})
	cfg.Routes = append(cfg.Routes, Route{Namespace: "default", Name: "rb", Listeners: []string{"gw/b"},
		Rules: []Rule{{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/", "Host", "a.example"); code != 200 || body != "a" {
		t.Errorf("bound listener: %d %q, want 200 a", code, body)
	}
	s, c := mount(t, "http1", p.Handler("gw/b"))
	if code, body, _ := get(t, c, s.URL+"/", "Host", "b.example"); code != 200 || body != "b" {
		t.Errorf("mounted gw/b: %d %q, want 200 b", code, body)
	}
	// The mounted handler is gw/b whatever the Host says; gw/b's route
	// carries no hostname, so it still serves.
	if code, body, _ := get(t, c, s.URL+"/", "Host", "a.example"); code != 200 || body != "b" {
		t.Errorf("mounted gw/b with another Host: %d %q, want 200 b", code, body)
	}
}

// TestUnboundValidation shows an unbound listener that asks for what only
// a bound socket has refused, naming the listener and the field.
func TestUnboundValidation(t *testing.T) {
	p := newTestProxy(t, Options{})
	for _, tc := range []struct {
		l    Listener
		want string
	}{
		{Listener{Name: "u", Protocol: HTTP, Unbound: true, Port: 8080}, `listener "u": port: must be 0`},
		{Listener{Name: "u", Protocol: HTTP, Unbound: true, Address: "127.0.0.1"}, `listener "u": address: must be empty`},
		{Listener{Name: "u", Protocol: HTTPS, Unbound: true, Certificates: []Certificate{{Name: "c"}}}, `listener "u": certificates:`},
		{Listener{Name: "u", Protocol: HTTPS, Unbound: true, ClientValidation: &ClientValidation{CACertificates: []byte("x")}}, `listener "u": clientValidation:`},
	} {
		err := p.Apply(Config{Listeners: []Listener{tc.l}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.l, err, tc.want)
		}
	}
	if err := p.Apply(Config{Listeners: []Listener{{Name: "u", Protocol: HTTPS, Unbound: true}}}); err != nil {
		t.Errorf("a plain unbound HTTPS listener: %v", err)
	}
}

// TestHandlerHTTPSProtocol shows an unbound HTTPS listener mounted behind a
// server that sees no TLS (TLS ended in front of it): its requests are
// still taken as HTTPS.
func TestHandlerHTTPSProtocol(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := mountedConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	cfg.Listeners[0].Protocol = HTTPS
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, "http1", p.Handler("gw/http"))
	if _, _, h := get(t, c, s.URL+"/"); h.Get("X-Seen-XFP") != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", h.Get("X-Seen-XFP"))
	}
}

// TestHandlerObserved shows mounted requests in the access log, under
// their listener's name, and in the request metrics, gateway answers by
// reason included.
func TestHandlerObserved(t *testing.T) {
	a := echoBackend(t, "a")
	var buf syncBuffer
	p := newTestProxy(t, Options{AccessLog: AccessLog{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}})
	cfg := mountedConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/ok"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, "http1", p.Handler("gw/http"))
	get(t, c, s.URL+"/ok")
	get(t, c, s.URL+"/missing")
	if v, _ := metricValue(t, p, "rauta_http_requests_total", map[string]string{"route": "default/r", "code": "2xx"}); v != 1 {
		t.Errorf("rauta_http_requests_total{route=default/r,code=2xx} = %v, want 1", v)
	}
	if v, _ := metricValue(t, p, "rauta_gateway_responses_total", map[string]string{"reason": "no_route"}); v != 1 {
		t.Errorf("rauta_gateway_responses_total{reason=no_route} = %v, want 1", v)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) == 2 {
			for i, want := range []string{`"path":"/ok"`, `"path":"/missing"`} {
				if !strings.Contains(lines[i], `"listener":"gw/http"`) || !strings.Contains(lines[i], want) {
					t.Errorf("access log line %d: %s; want listener gw/http and %s", i, lines[i], want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log: %q, want two lines", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// suiteMount, when set, makes baseURL serve the listener asked for through
// Proxy.Handler mounted under net/http's server ("http1" or "h2c") rather
// than the proxy's own port: TestSuiteThroughHandler runs tests written
// for bound listeners through the mounted path with it.
var suiteMount string

// mountedURL mounts p.Handler(listener) under net/http's server, once per
// proxy and listener in a test, and returns the server's URL.
func mountedURL(t testing.TB, p *Proxy, listener string) string {
	t.Helper()
	key := mountKey{p, listener}
	if u, ok := suiteServers[key]; ok {
		return u
	}
	h := p.Handler(listener)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		suiteProtos[r.ProtoMajor].Add(1)
		h.ServeHTTP(w, r)
	}))
	if suiteMount == "h2c" {
		s.Config.Protocols = new(http.Protocols)
		s.Config.Protocols.SetHTTP1(true)
		s.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	s.Start()
	suiteServers[key] = s.URL
	t.Cleanup(func() {
		delete(suiteServers, key)
		s.Close()
	})
	return s.URL
}

type mountKey struct {
	p        *Proxy
	listener string
}

// suiteProtos counts the requests mountedURL's servers served by major
// protocol version.
var suiteProtos [3]atomic.Int64

// suiteServers are the servers mountedURL started; tests that use them do
// not run in parallel.
var suiteServers = map[mountKey]string{}

// TestSuiteThroughHandler runs end-to-end tests written for the proxy's
// own listeners through Proxy.Handler mounted under net/http's server, over
// HTTP/1.1 and over h2c: in the h2c mode the server also speaks HTTP/2
// with prior knowledge, and the clients on http.DefaultTransport speak
// only that (tests that build their own Transport still speak HTTP/1.1).
func TestSuiteThroughHandler(t *testing.T) {
	for _, mode := range []string{"http1", "h2c"} {
		t.Run(mode, func(t *testing.T) {
			suiteMount = mode
			suiteProtos[1].Store(0)
			suiteProtos[2].Store(0)
			defer func() {
				h1, h2 := suiteProtos[1].Load(), suiteProtos[2].Load()
				t.Logf("mounted servers served %d HTTP/1.1 and %d HTTP/2 requests", h1, h2)
				if h1 == 0 || (h2 == 0) != (mode == "http1") {
					t.Errorf("%s: %d HTTP/1.1 and %d HTTP/2 requests; want HTTP/2 exactly in the h2c mode", mode, h1, h2)
				}
			}()
			t.Cleanup(func() { suiteMount = "" })
			if mode == "h2c" {
				old := http.DefaultTransport
				tr := &http.Transport{Protocols: new(http.Protocols)}
				tr.Protocols.SetUnencryptedHTTP2(true)
				http.DefaultTransport = tr
				http.DefaultClient.Transport = nil
				t.Cleanup(func() {
					tr.CloseIdleConnections()
					http.DefaultTransport = old
				})
			}
			for _, tc := range suiteTests {
				if suiteSkip[tc.name] != "" || suiteSkipMode[mode][tc.name] != "" {
					continue
				}
				t.Run(tc.name, tc.f)
			}
		})
	}
}

// suiteTests are the tests that reach the proxy through baseURL (directly
// or through the session rig), less those that test the proxy's own ports
// rather than the request path; skip names them with the reason.
var suiteTests = []struct {
	name string
	f    func(*testing.T)
}{
	{"TestAccessLogRequestIDAndTrace", TestAccessLogRequestIDAndTrace},
	{"TestMaglevAffinityByQuery", TestMaglevAffinityByQuery},
	{"TestRateLimitKeyQuery", TestRateLimitKeyQuery},
	{"TestHealthCheckExpectedStatuses", TestHealthCheckExpectedStatuses},
	{"TestHealthCheckEjectionTime", TestHealthCheckEjectionTime},
	{"TestConnectionLimitsMaxRequests", TestConnectionLimitsMaxRequests},
	{"TestConnectionLimitsMaxLifetime", TestConnectionLimitsMaxLifetime},
	{"TestConnectionLimitsMaxPerEndpoint", TestConnectionLimitsMaxPerEndpoint},
	{"TestConnectionLimitsChangeInFlight", TestConnectionLimitsChangeInFlight},
	{"TestRetryBackoffCappedByBackend", TestRetryBackoffCappedByBackend},
	{"TestRetryBudgetBackend", TestRetryBudgetBackend},
	{"TestBackendValidation", TestBackendValidation},
	{"TestBackendPolicyMetrics", TestBackendPolicyMetrics},
	{"TestGatewayAnswers", TestGatewayAnswers},
	{"TestPanicRecovered", TestPanicRecovered},
	{"TestApplyPartialReject", TestApplyPartialReject},
	{"TestRateLimit", TestRateLimit},
	{"TestWeights", TestWeights},
	{"TestRetryOnDeadEndpoint", TestRetryOnDeadEndpoint},
	{"TestRetryCodes", TestRetryCodes},
	{"TestUnknownExtensionAnswers500", TestUnknownExtensionAnswers500},
	{"TestRetryOnBackendTimeout", TestRetryOnBackendTimeout},
	{"TestFiltersEndToEnd", TestFiltersEndToEnd},
	{"TestMaglevRemovalMovesOnlyItsKeys", TestMaglevRemovalMovesOnlyItsKeys},
	{"TestBackendClientCertificate", TestBackendClientCertificate},
	{"TestH2CPriorKnowledge", TestH2CPriorKnowledge},
	{"TestBackendProtocols", TestBackendProtocols},
	{"TestStreaming", TestStreaming},
	{"TestTrailersAnd1xx", TestTrailersAnd1xx},
	{"TestForwardBasic", TestForwardBasic},
	{"TestMetricsRecorded", TestMetricsRecorded},
	{"TestRateLimitAdmitsRateTimesTPlusBurst", TestRateLimitAdmitsRateTimesTPlusBurst},
	{"TestRateLimitLevels", TestRateLimitLevels},
	{"TestRateLimitBucketsSurviveApply", TestRateLimitBucketsSurviveApply},
	{"TestRateLimitKeyed", TestRateLimitKeyed},
	{"TestRateLimitFields", TestRateLimitFields},
	{"TestSetReplicas", TestSetReplicas},
	{"TestRateLimitMetric", TestRateLimitMetric},
	{"TestRateLimitValidation", TestRateLimitValidation},
	{"TestMaxBodyBytes", TestMaxBodyBytes},
	{"TestRequestReadTimeout", TestRequestReadTimeout},
	{"TestRequestWriteTimeout", TestRequestWriteTimeout},
	{"TestSwapsUnderLoad", TestSwapsUnderLoad},
	{"TestBackendKilledMidLoad", TestBackendKilledMidLoad},
	{"TestBreakerEjectsAndRecovers", TestBreakerEjectsAndRecovers},
	{"TestActiveHealthCheck", TestActiveHealthCheck},
	{"TestMaglevAffinity", TestMaglevAffinity},
	{"TestGracefulShutdown", TestGracefulShutdown},
	{"TestForwardingHeaders", TestForwardingHeaders},
	{"TestUpdateEndpointsFastPath", TestUpdateEndpointsFastPath},
	{"TestBackend5xxPassedThrough", TestBackend5xxPassedThrough},
	{"TestSessionCookie", TestSessionCookie},
	{"TestSessionHeader", TestSessionHeader},
	{"TestSessionEndpointChanges", TestSessionEndpointChanges},
	{"TestSessionTimeouts", TestSessionTimeouts},
	{"TestSessionBadTokens", TestSessionBadTokens},
	{"TestSessionWeightedBackends", TestSessionWeightedBackends},
	{"TestSessionBackendLevel", TestSessionBackendLevel},
	{"TestSessionRepinOnFailure", TestSessionRepinOnFailure},
	{"TestSessionSharedKey", TestSessionSharedKey},
	{"TestSessionValidation", TestSessionValidation},
	{"TestSessionEndpointRefused", TestSessionEndpointRefused},
}

// suiteSkip lists the tests of suiteTests not run through a mounted
// handler, in every mode, and why.
var suiteSkip = map[string]string{
	"TestH2CPriorKnowledge":                  "speaks h2c to the proxy's own port; over a mounted handler the server's Protocols decide",
	"TestMaxBodyBytes":                       "compares the proxy's own servers (rauta's and net/http, HTTP/1.1 and h2c) subtest by subtest",
	"TestRequestReadTimeout":                 "compares the proxy's own servers subtest by subtest",
	"TestRequestWriteTimeout":                "compares the proxy's own servers subtest by subtest",
	"TestGracefulShutdown":                   "Proxy.Shutdown waits for its own ports only; the mounting server is shut down by its owner",
	"TestRateLimitAdmitsRateTimesTPlusBurst": "measures admitted rates over seconds under closed-loop load: a test of the limiter's timing, not of the path, and at the mercy of the machine's load",
	"TestSetReplicas":                        "measures admitted rates over seconds, like TestRateLimitAdmitsRateTimesTPlusBurst",
}

// suiteSkipMode lists the tests of suiteTests not run in one mode, and why.
var suiteSkipMode = map[string]map[string]string{
	"http1": {"TestTrailersAnd1xx": "its gRPC case speaks h2c, which an HTTP/1.1 server does not"},
	"h2c":   {"TestForwardingHeaders": "sends a Connection field naming a hop-by-hop header, which HTTP/2 forbids"},
}

// TestHandlerAfterShutdown shows a mounted handler outliving its proxy:
// once the proxy is shut down its requests are answered 503 with reason
// shut_down, not forwarded.
func TestHandlerAfterShutdown(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	if err := p.Apply(mountedConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	s, c := mount(t, "http1", p.Handler("gw/http"))
	if code, _, _ := get(t, c, s.URL+"/"); code != 200 {
		t.Fatalf("before Shutdown: %d", code)
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Timeout = 5 * time.Second
	code, body, _ := get(t, c, s.URL+"/")
	if code != http.StatusServiceUnavailable || body != "shut down\n" {
		t.Errorf("after Shutdown: %d %q, want 503 shut down", code, body)
	}
	if v, _ := metricValue(t, p, "rauta_gateway_responses_total", map[string]string{"reason": "shut_down"}); v != 1 {
		t.Errorf("rauta_gateway_responses_total{reason=shut_down} = %v, want 1", v)
	}
}
