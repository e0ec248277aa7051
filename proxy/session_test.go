package proxy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// fakeClock is a settable time source for session timeouts.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// sessionRig is a proxy in front of named loopback backends.
type sessionRig struct {
	t     *testing.T
	p     *Proxy
	url   string
	addrs map[string]string // endpoint name -> address
	names map[string]string // address -> endpoint name
	c     *http.Client
}

func newSessionRig(t *testing.T, opts Options, endpoints ...string) *sessionRig {
	t.Helper()
	r := &sessionRig{t: t, p: newTestProxy(t, opts), addrs: map[string]string{}, names: map[string]string{}, c: &http.Client{Timeout: 10 * time.Second}}
	for _, n := range endpoints {
		a := addrOf(echoBackend(t, n))
		r.addrs[n], r.names[a] = a, n
	}
	return r
}

// eps returns the endpoints of the named backends' servers.
func (r *sessionRig) eps(names ...string) []upstream.Endpoint {
	var out []upstream.Endpoint
	for _, n := range names {
		out = append(out, upstream.Endpoint{Address: r.addrs[n]})
	}
	return out
}

// apply applies cfg, which must be accepted whole.
func (r *sessionRig) apply(cfg Config) {
	r.t.Helper()
	if err := r.p.Apply(cfg); err != nil {
		r.t.Fatal(err)
	}
	r.url = baseURL(r.t, r.p, "gw/http")
}

// get sends a request with the given header fields and returns the
// endpoint that answered and the response header.
func (r *sessionRig) get(path string, hdr ...string) (string, http.Header) {
	r.t.Helper()
	code, body, h := get(r.t, r.c, r.url+path, hdr...)
	if code != 200 {
		r.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body, h
}

// setCookie returns the Set-Cookie of the named cookie, or nil.
func setCookie(t testing.TB, h http.Header, name string) *http.Cookie {
	t.Helper()
	var found *http.Cookie
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("Set-Cookie %q: %v", line, err)
		}
		if c.Name == name {
			if found != nil {
				t.Fatalf("two Set-Cookie fields for %q", name)
			}
			found = c
		}
	}
	return found
}

// tokenTimes opens a token issued for the rule serving path and returns
// its start and last use times.
func tokenTimes(t testing.TB, p *Proxy, path, tok string) (start, last time.Time) {
	t.Helper()
	for _, pt := range p.snap.Load().ports {
		req := routerRequest("x", path, "GET")
		req.Listener = pt.listenerFor(req.Host).nameOrEmpty()
		res, err := pt.table.Match(&req)
		if err != nil {
			t.Fatal(err)
		}
		cr := res.Rule.Value.(*compiledRule)
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := p.sessions.aead.Open(nil, nil, raw, cr.session.sources[0].ad)
		if err != nil {
			t.Fatalf("token does not open: %v", err)
		}
		tk, ok := parseToken(pt)
		if !ok {
			t.Fatalf("token plaintext does not parse: %x", pt)
		}
		return time.Unix(0, tk.start), time.Unix(0, tk.last)
	}
	t.Fatal("no port")
	return
}

func cookieRule(path string, sp *SessionPersistence, refs ...BackendRef) Rule {
	return Rule{Matches: prefix(path), Backends: refs, SessionPersistence: sp}
}

// TestSessionCookie shows a session cookie issued with its attributes and
// honoured: 100 requests carrying it reach one endpoint, while requests
// without it are balanced over all three.
func TestSessionCookie(t *testing.T) {
	r := newSessionRig(t, Options{}, "e0", "e1", "e2")
	cfg := simpleConfig(nil, cookieRule("/app/", &SessionPersistence{}, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}}
	r.apply(cfg)

	first, h := r.get("/app/page")
	c := setCookie(t, h, DefaultSessionName)
	if c == nil {
		t.Fatalf("no session cookie: %v", h)
	}
	if c.Path != "/app" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != 0 || c.RawExpires != "" {
		t.Errorf("cookie attributes: %q; want Path=/app, HttpOnly, SameSite=Lax, not Secure, no Max-Age or Expires", h.Get("Set-Cookie"))
	}
	for i := range 100 {
		got, h := r.get("/app/page", "Cookie", "other=1; "+c.Name+"="+c.Value)
		if got != first {
			t.Fatalf("request %d with the cookie reached %s, want %s", i, got, first)
		}
		if v := h.Values("Set-Cookie"); len(v) > 0 {
			t.Fatalf("request %d re-issued the cookie: %q", i, v)
		}
	}
	seen := map[string]bool{}
	for range 30 {
		got, h := r.get("/app/page")
		if setCookie(t, h, DefaultSessionName) == nil {
			t.Fatal("a request without a cookie got none")
		}
		seen[got] = true
	}
	if len(seen) != 3 {
		t.Errorf("requests without a cookie reached %v, want all three endpoints", seen)
	}
}

// TestSessionCookiePath shows CookiePath set as the cookie's Path in place
// of the one derived from the match, and the cookie honoured under it.
func TestSessionCookiePath(t *testing.T) {
	r := newSessionRig(t, Options{}, "e0", "e1", "e2")
	cfg := simpleConfig(nil, cookieRule("/app/", &SessionPersistence{CookiePath: "/"}, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}
	r.apply(cfg)

	first, h := r.get("/app/page")
	c := setCookie(t, h, DefaultSessionName)
	if c == nil || c.Path != "/" {
		t.Fatalf("session cookie %q, want Path=/", h.Values("Set-Cookie"))
	}
	for i := range 20 {
		if got, _ := r.get("/app/other", "Cookie", c.Name+"="+c.Value); got != first {
			t.Fatalf("request %d with the cookie reached %s, want %s", i, got, first)
		}
	}
}

// TestSessionHeader shows the header type: the token comes back in a
// response header and is honoured from the same request header.
func TestSessionHeader(t *testing.T) {
	r := newSessionRig(t, Options{}, "e0", "e1", "e2")
	cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{Type: SessionHeader, Name: "x-rauta-session"}, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}}
	r.apply(cfg)

	first, h := r.get("/")
	tok := h.Get("X-Rauta-Session")
	if tok == "" || len(h.Values("Set-Cookie")) > 0 {
		t.Fatalf("want the token in X-Rauta-Session and no cookie, got %v", h)
	}
	for i := range 100 {
		got, h := r.get("/", "X-Rauta-Session", tok)
		if got != first {
			t.Fatalf("request %d reached %s, want %s", i, got, first)
		}
		if v := h.Get("X-Rauta-Session"); v != "" {
			t.Fatalf("request %d re-issued the token", i)
		}
	}
}

// session is one client session: its token and where it is pinned.
type session struct {
	tok, endpoint string
}

// startSessions opens n sessions and returns them.
func (r *sessionRig) startSessions(n int) []session {
	r.t.Helper()
	out := make([]session, n)
	for i := range out {
		ep, h := r.get("/")
		c := setCookie(r.t, h, DefaultSessionName)
		if c == nil {
			r.t.Fatal("no session cookie")
		}
		out[i] = session{c.Value, ep}
	}
	return out
}

// TestSessionEndpointChanges shows that adding an endpoint moves no
// session and removing one moves only the sessions pinned to it, which get
// a new token that is honoured in turn; with endpoints changed by
// UpdateEndpoints and by Apply.
func TestSessionEndpointChanges(t *testing.T) {
	for _, how := range []string{"UpdateEndpoints", "Apply"} {
		t.Run(how, func(t *testing.T) {
			r := newSessionRig(t, Options{}, "e0", "e1", "e2", "e3")
			cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{}, BackendRef{Backend: "svc", Weight: 1}))
			cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}}
			r.apply(cfg)
			setEndpoints := func(eps []upstream.Endpoint) {
				if how == "UpdateEndpoints" {
					if err := r.p.UpdateEndpoints("svc", eps); err != nil {
						t.Fatal(err)
					}
					return
				}
				next := cfg
				next.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: eps}}}
				r.apply(next)
			}

			sessions := r.startSessions(1000)
			setEndpoints(r.eps("e0", "e1", "e2", "e3"))
			for i, s := range sessions {
				got, h := r.get("/", "Cookie", DefaultSessionName+"="+s.tok)
				if got != s.endpoint || len(h.Values("Set-Cookie")) > 0 {
					t.Fatalf("after adding e3, session %d (on %s) reached %s, Set-Cookie %q", i, s.endpoint, got, h.Values("Set-Cookie"))
				}
			}
			// New sessions do reach the added endpoint.
			if n := countOn(r.startSessions(40), "e3"); n == 0 {
				t.Error("no new session reached the added endpoint")
			}

			setEndpoints(r.eps("e0", "e2", "e3"))
			moved := 0
			for i, s := range sessions {
				got, h := r.get("/", "Cookie", DefaultSessionName+"="+s.tok)
				c := setCookie(t, h, DefaultSessionName)
				if s.endpoint != "e1" {
					if got != s.endpoint || c != nil {
						t.Fatalf("after removing e1, session %d on %s reached %s (new cookie %v)", i, s.endpoint, got, c != nil)
					}
					continue
				}
				moved++
				if got == "e1" || c == nil {
					t.Fatalf("session %d of removed e1 reached %s, new cookie %v", i, got, c != nil)
				}
				if again, h := r.get("/", "Cookie", DefaultSessionName+"="+c.Value); again != got || len(h.Values("Set-Cookie")) > 0 {
					t.Fatalf("re-pinned session %d: new token reached %s, want %s", i, again, got)
				}
			}
			if moved < 250 || moved > 420 {
				t.Errorf("%d of 1000 sessions were on e1, want about a third", moved)
			}
		})
	}
}

func countOn(ss []session, endpoint string) int {
	n := 0
	for _, s := range ss {
		if s.endpoint == endpoint {
			n++
		}
	}
	return n
}

// TestSessionTimeouts shows the absolute and idle timeouts expiring (on an
// injected clock) and the idle timeout sliding with use.
func TestSessionTimeouts(t *testing.T) {
	t.Run("absolute", func(t *testing.T) {
		clk := newFakeClock()
		r := newSessionRig(t, Options{SessionClock: clk.now}, "e0", "e1", "e2")
		cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{AbsoluteTimeout: time.Minute, PermanentCookie: true}, BackendRef{Backend: "svc", Weight: 1}))
		cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}}
		r.apply(cfg)

		t0 := clk.now()
		first, h := r.get("/")
		c := setCookie(t, h, DefaultSessionName)
		if c == nil || c.MaxAge != 60 {
			t.Fatalf("permanent cookie: %q, want Max-Age=60", h.Get("Set-Cookie"))
		}
		clk.advance(59 * time.Second)
		if got, h := r.get("/", "Cookie", c.Name+"="+c.Value); got != first || len(h.Values("Set-Cookie")) > 0 {
			t.Fatalf("at 59s: reached %s (want %s), Set-Cookie %q", got, first, h.Values("Set-Cookie"))
		}
		clk.advance(time.Second)
		_, h = r.get("/", "Cookie", c.Name+"="+c.Value)
		n := setCookie(t, h, DefaultSessionName)
		if n == nil {
			t.Fatal("at 60s: the expired session was not pinned anew")
		}
		if start, _ := tokenTimes(t, r.p, "/", n.Value); !start.Equal(t0.Add(time.Minute)) {
			t.Errorf("new session starts at %v, want %v", start, t0.Add(time.Minute))
		}
		if n.MaxAge != 60 {
			t.Errorf("new cookie Max-Age %d, want 60", n.MaxAge)
		}
	})
	t.Run("idle", func(t *testing.T) {
		clk := newFakeClock()
		r := newSessionRig(t, Options{SessionClock: clk.now}, "e0", "e1", "e2")
		cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{IdleTimeout: 10 * time.Second}, BackendRef{Backend: "svc", Weight: 1}))
		cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}}
		r.apply(cfg)

		t0 := clk.now()
		first, h := r.get("/")
		a := setCookie(t, h, DefaultSessionName)
		// Used within the idle granularity (1s): not re-issued.
		clk.advance(500 * time.Millisecond)
		if got, h := r.get("/", "Cookie", a.Name+"="+a.Value); got != first || len(h.Values("Set-Cookie")) > 0 {
			t.Fatalf("at 0.5s: reached %s, Set-Cookie %q", got, h.Values("Set-Cookie"))
		}
		// Used after 5s: honoured and re-issued with a new last use.
		clk.advance(4500 * time.Millisecond)
		got, h := r.get("/", "Cookie", a.Name+"="+a.Value)
		b := setCookie(t, h, DefaultSessionName)
		if got != first || b == nil {
			t.Fatalf("at 5s: reached %s (want %s), re-issued %v", got, first, b != nil)
		}
		if start, last := tokenTimes(t, r.p, "/", b.Value); !start.Equal(t0) || !last.Equal(t0.Add(5*time.Second)) {
			t.Errorf("re-issued token: start %v last %v, want %v and %v", start, last, t0, t0.Add(5*time.Second))
		}
		// At 11s the first token has been idle for 11s: expired. The
		// re-issued one has been idle 6s: honoured, so the timeout slides.
		clk.advance(6 * time.Second)
		_, h = r.get("/", "Cookie", a.Name+"="+a.Value)
		n := setCookie(t, h, DefaultSessionName)
		if n == nil {
			t.Fatal("an idle-expired token was honoured")
		}
		if start, _ := tokenTimes(t, r.p, "/", n.Value); !start.Equal(t0.Add(11 * time.Second)) {
			t.Errorf("re-pinned session starts %v, want %v", start, t0.Add(11*time.Second))
		}
		got, h = r.get("/", "Cookie", b.Name+"="+b.Value)
		c := setCookie(t, h, DefaultSessionName)
		if got != first || c == nil {
			t.Fatalf("at 11s with the re-issued token: reached %s (want %s), re-issued %v", got, first, c != nil)
		}
		if start, _ := tokenTimes(t, r.p, "/", c.Value); !start.Equal(t0) {
			t.Errorf("slid session starts %v, want %v", start, t0)
		}
		// Idle exactly the timeout: expired.
		clk.advance(10 * time.Second)
		_, h = r.get("/", "Cookie", c.Name+"="+c.Value)
		if d := setCookie(t, h, DefaultSessionName); d == nil {
			t.Fatal("no new token after 10s idle")
		} else if start, _ := tokenTimes(t, r.p, "/", d.Value); !start.Equal(clk.now()) {
			t.Errorf("after 10s idle the session was not pinned anew (start %v)", start)
		}
	})
}

// TestSessionBadTokens shows tampered, foreign and garbage tokens ignored
// and the request pinned anew, never refused, and a valid token found
// among several cookies of the same name.
func TestSessionBadTokens(t *testing.T) {
	r := newSessionRig(t, Options{}, "e0", "e1", "e2")
	sp := &SessionPersistence{}
	cfg := simpleConfig(nil,
		cookieRule("/a", sp, BackendRef{Backend: "svc", Weight: 1}),
		cookieRule("/b", sp, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}}}
	r.apply(cfg)

	first, h := r.get("/a")
	good := setCookie(t, h, DefaultSessionName).Value
	tampered := []byte(good)
	i := len(tampered) / 2
	tampered[i] ^= 'A' ^ 'B'
	if tampered[i] == good[i] || !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", rune(tampered[i])) {
		tampered[i] = 'A' + (good[i]+1)%26
	}
	for _, tc := range []struct{ name, path, cookie string }{
		{"tampered", "/a", string(tampered)},
		{"truncated", "/a", good[:len(good)-4]},
		{"garbage", "/a", "not-a-token"},
		{"empty", "/a", ""},
		{"other rule", "/b", good},
	} {
		_, h := r.get(tc.path, "Cookie", DefaultSessionName+"="+tc.cookie)
		c := setCookie(t, h, DefaultSessionName)
		if c == nil || c.Value == good {
			t.Errorf("%s token: not pinned anew (Set-Cookie %q)", tc.name, h.Values("Set-Cookie"))
			continue
		}
		if c.Path != tc.path {
			t.Errorf("%s token: new cookie Path %q, want %q", tc.name, c.Path, tc.path)
		}
	}
	for range 20 {
		got, h := r.get("/a", "Cookie", DefaultSessionName+"="+string(tampered)+"; "+DefaultSessionName+"="+good)
		if got != first || len(h.Values("Set-Cookie")) > 0 {
			t.Fatalf("valid token after a bad one of the same name: reached %s (want %s), Set-Cookie %q", got, first, h.Values("Set-Cookie"))
		}
	}
}

// TestSessionWeightedBackends shows a session kept on the backend
// reference that served it, over a 70/30 split, and kept there when its
// weight drops to zero.
func TestSessionWeightedBackends(t *testing.T) {
	r := newSessionRig(t, Options{}, "v1-0", "v1-1", "v2-0", "v2-1")
	rule := func(w1, w2 uint32) Rule {
		return cookieRule("/", &SessionPersistence{}, BackendRef{Backend: "v1", Weight: w1}, BackendRef{Backend: "v2", Weight: w2})
	}
	cfg := simpleConfig(nil, rule(70, 30))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "v1", Endpoints: r.eps("v1-0", "v1-1")}}, {Spec: upstream.Spec{Name: "v2", Endpoints: r.eps("v2-0", "v2-1")}}}
	r.apply(cfg)

	sessions := r.startSessions(200)
	onV1 := 0
	for _, s := range sessions {
		if strings.HasPrefix(s.endpoint, "v1-") {
			onV1++
		}
	}
	if onV1 < 120 || onV1 > 165 {
		t.Errorf("%d of 200 new sessions on v1, want about 140", onV1)
	}
	check := func(when string) {
		for i, s := range sessions {
			for range 10 {
				if got, h := r.get("/", "Cookie", DefaultSessionName+"="+s.tok); got != s.endpoint || len(h.Values("Set-Cookie")) > 0 {
					t.Fatalf("%s: session %d on %s reached %s", when, i, s.endpoint, got)
				}
			}
		}
	}
	check("70/30")
	next := cfg
	next.Routes = []Route{cfg.Routes[0]}
	next.Routes[0].Rules = []Rule{rule(0, 100)}
	r.apply(next)
	check("0/100")
	if n := countOn(r.startSessions(20), "v1-0") + countOn(r.startSessions(20), "v1-1"); n != 0 {
		t.Errorf("%d new sessions reached v1 at weight 0", n)
	}
	// A session whose endpoint goes while its reference takes no new
	// sessions is balanced anew, onto v2; the others stay.
	if err := r.p.UpdateEndpoints("v1", r.eps("v1-1")); err != nil {
		t.Fatal(err)
	}
	for i, s := range sessions {
		got, h := r.get("/", "Cookie", DefaultSessionName+"="+s.tok)
		c := setCookie(t, h, DefaultSessionName)
		if s.endpoint == "v1-0" {
			if !strings.HasPrefix(got, "v2-") || c == nil {
				t.Fatalf("session %d of removed v1-0 reached %s, new cookie %v; want v2 and a new cookie", i, got, c != nil)
			}
		} else if got != s.endpoint || c != nil {
			t.Fatalf("session %d on %s reached %s after v1-0 went", i, s.endpoint, got)
		}
	}
}

// TestSessionBackendLevel shows a backend's own session persistence, scoped
// to each rule, and a rule's winning over it.
func TestSessionBackendLevel(t *testing.T) {
	r := newSessionRig(t, Options{}, "e0", "e1", "e2")
	cfg := simpleConfig(nil,
		Rule{Matches: prefix("/a"), Backends: []BackendRef{{Backend: "svc", Weight: 1}}},
		Rule{Matches: prefix("/b"), Backends: []BackendRef{{Backend: "svc", Weight: 1}}},
		cookieRule("/c", &SessionPersistence{Name: "rule-session"}, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("e0", "e1", "e2")}, SessionPersistence: &SessionPersistence{Name: "svc-session"}}}
	r.apply(cfg)

	first, h := r.get("/a/x")
	c := setCookie(t, h, "svc-session")
	if c == nil || c.Path != "/a" {
		t.Fatalf("backend session cookie: %q", h.Values("Set-Cookie"))
	}
	for range 30 {
		if got, _ := r.get("/a/y", "Cookie", "svc-session="+c.Value); got != first {
			t.Fatalf("backend-level session moved from %s to %s", first, got)
		}
	}
	// The rule /b refers to the same backend but does not share /a's
	// sessions (GEP-1619).
	if _, h := r.get("/b", "Cookie", "svc-session="+c.Value); setCookie(t, h, "svc-session") == nil {
		t.Error("a session of rule /a was honoured by rule /b")
	}
	_, h = r.get("/c")
	if setCookie(t, h, "svc-session") != nil || setCookie(t, h, "rule-session") == nil {
		t.Errorf("rule /c: want only the rule's cookie, got %q", h.Values("Set-Cookie"))
	}
}

// TestSessionRepinOnFailure shows a request whose pinned endpoint refuses
// connections served by another endpoint and pinned to it.
func TestSessionRepinOnFailure(t *testing.T) {
	r := newSessionRig(t, Options{}, "e1", "e2")
	dead := newKillable(t, "dead")
	r.addrs["dead"] = dead.addr()
	cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{}, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("dead", "e1", "e2"), CircuitBreaker: &upstream.CircuitBreaker{Disabled: true}}}}
	r.apply(cfg)
	var s session
	for _, x := range r.startSessions(12) {
		if x.endpoint == "dead" {
			s = x
		}
	}
	if s.tok == "" {
		t.Fatal("no session reached the first endpoint")
	}
	dead.kill()
	got, h := r.get("/", "Cookie", DefaultSessionName+"="+s.tok)
	c := setCookie(t, h, DefaultSessionName)
	if got == "dead" || c == nil {
		t.Fatalf("pinned endpoint dead: reached %s, new cookie %v", got, c != nil)
	}
	for range 20 {
		if again, h := r.get("/", "Cookie", DefaultSessionName+"="+c.Value); again != got || len(h.Values("Set-Cookie")) > 0 {
			t.Fatalf("re-pinned session reached %s, want %s", again, got)
		}
	}
}

// TestSessionSecureCookie shows the Secure attribute on an HTTPS listener,
// and a session honoured over HTTP/2.
func TestSessionSecureCookie(t *testing.T) {
	a, b := echoBackend(t, "a"), echoBackend(t, "b")
	p := newTestProxy(t, Options{})
	cfg := Config{
		Listeners: []Listener{{Name: "tls", Address: "127.0.0.1", Protocol: HTTPS, Certificates: []Certificate{selfSigned(t, "s.example")}}},
		Routes:    []Route{{Namespace: "ns", Name: "r", Listeners: []string{"tls"}, Rules: []Rule{cookieRule("/", &SessionPersistence{}, BackendRef{Backend: "b", Weight: 1})}}},
		Backends:  []Backend{{Spec: upstream.Spec{Name: "b", Endpoints: []upstream.Endpoint{{Address: addrOf(a)}, {Address: addrOf(b)}}}}},
	}
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	addr, _ := p.Addr("tls")
	c := tlsClient("s.example", nil, true)
	url := "https://" + addr.String() + "/x"
	_, first, h := get(t, c, url)
	ck := setCookie(t, h, DefaultSessionName)
	if ck == nil || !ck.Secure || ck.Path != "/" {
		t.Fatalf("HTTPS session cookie: %q, want Secure and Path=/", h.Values("Set-Cookie"))
	}
	for range 20 {
		if _, got, _ := get(t, c, url, "Cookie", ck.Name+"="+ck.Value); got != first {
			t.Fatalf("over HTTP/2 the session on %s reached %s", first, got)
		}
	}
}

// TestSessionSharedKey shows that tokens survive between proxies sharing
// a key (replicas) and not between proxies with keys of their own.
func TestSessionSharedKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	e := []string{"e0", "e1", "e2"}
	r1 := newSessionRig(t, Options{SessionKey: key}, e...)
	cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{}, BackendRef{Backend: "svc", Weight: 1}))
	cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r1.eps(e...)}}}
	r1.apply(cfg)
	r2 := &sessionRig{t: t, p: newTestProxy(t, Options{SessionKey: key}), c: r1.c}
	r2.apply(cfg)
	r3 := &sessionRig{t: t, p: newTestProxy(t, Options{}), c: r1.c}
	r3.apply(cfg)

	sessions := r1.startSessions(20)
	fresh := 0
	for _, s := range sessions {
		if got, h := r2.get("/", "Cookie", DefaultSessionName+"="+s.tok); got != s.endpoint || len(h.Values("Set-Cookie")) > 0 {
			t.Fatalf("replica with the same key: session on %s reached %s", s.endpoint, got)
		}
		if _, h := r3.get("/", "Cookie", DefaultSessionName+"="+s.tok); setCookie(t, h, DefaultSessionName) != nil {
			fresh++
		}
	}
	if fresh != len(sessions) {
		t.Errorf("a proxy with another key honoured %d of %d tokens", len(sessions)-fresh, len(sessions))
	}
}

// TestSessionValidation shows bad session persistence refused by Apply
// with the object and field named, while the rest serves.
func TestSessionValidation(t *testing.T) {
	a := echoBackend(t, "a")
	for _, tc := range []struct {
		name string
		opts Options
		rule *SessionPersistence
		back *SessionPersistence
		want string
	}{
		{"cookie name", Options{}, &SessionPersistence{Name: "bad name"}, nil, `route default/r rule 0: sessionPersistence: name "bad name": not a valid cookie name`},
		{"cookie name separator", Options{}, &SessionPersistence{Name: "a=b"}, nil, `name "a=b": not a valid cookie name`},
		{"header name", Options{}, &SessionPersistence{Type: SessionHeader, Name: "x:y"}, nil, `name "x:y": not a valid header field name`},
		{"reserved header", Options{}, &SessionPersistence{Type: SessionHeader, Name: "content-length"}, nil, `name "content-length": a header the proxy or HTTP itself controls`},
		{"type", Options{}, &SessionPersistence{Type: 7}, nil, "type: unknown value SessionType(7)"},
		{"absolute", Options{}, &SessionPersistence{AbsoluteTimeout: -time.Second}, nil, "absoluteTimeout: must not be negative, got -1s"},
		{"idle", Options{}, &SessionPersistence{IdleTimeout: -time.Second}, nil, "idleTimeout: must not be negative, got -1s"},
		{"permanent", Options{}, &SessionPersistence{PermanentCookie: true}, nil, "permanentCookie: requires absoluteTimeout"},
		{"cookie path", Options{}, &SessionPersistence{CookiePath: "app"}, nil, `cookiePath: "app" does not start with '/'`},
		{"cookie path separator", Options{}, &SessionPersistence{CookiePath: "/a;Secure"}, nil, `cookiePath: "/a;Secure" does not start with '/' or holds`},
		{"cookie path on a header", Options{}, &SessionPersistence{Type: SessionHeader, Name: "x-s", CookiePath: "/"}, nil, "cookiePath: only for a cookie session"},
		{"backend", Options{}, nil, &SessionPersistence{IdleTimeout: -1}, `backend "a": sessionPersistence: idleTimeout: must not be negative`},
		{"key", Options{SessionKey: make([]byte, 16)}, &SessionPersistence{}, nil, "sessionPersistence: Options.SessionKey: must be 32 bytes, not 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProxy(t, tc.opts)
			cfg := simpleConfig(map[string][]string{"a": {addrOf(a)}},
				Rule{Matches: prefix("/bad"), Backends: []BackendRef{{Backend: "a", Weight: 1}}, SessionPersistence: tc.rule},
				Rule{Matches: prefix("/good"), Backends: []BackendRef{{Backend: "ok", Weight: 1}}})
			cfg.Backends[0].SessionPersistence = tc.back
			cfg.Backends = append(cfg.Backends, Backend{Spec: upstream.Spec{Name: "ok", Endpoints: []upstream.Endpoint{{Address: addrOf(a)}}}})
			err := p.Apply(cfg)
			var aerr *ApplyError
			if !errors.As(err, &aerr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want an *ApplyError containing %q", err, tc.want)
			}
			if code, _, _ := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/good"); code != 200 {
				t.Errorf("valid rule: %d", code)
			}
		})
	}
}

// TestSessionPaths checks the cookie Path derived from each kind of match.
func TestSessionPaths(t *testing.T) {
	ms := []router.Match{
		{Path: router.PathMatch{Type: router.PathPrefix, Value: "/"}},
		{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api/"}},
		{Path: router.PathMatch{Type: router.PathExact, Value: "/login"}},
		{Path: router.PathMatch{Type: router.PathRegularExpression, Value: "/p1/p2/[a-z]+/p3"}},
		{Path: router.PathMatch{Type: router.PathRegularExpression, Value: ".*"}},
		{Path: router.PathMatch{Type: router.PathPrefix, Value: "/a;b"}},
		{Path: router.PathMatch{Type: router.PathPrefix, Value: ""}},
	}
	got := sessionPaths(ms)
	want := []string{"/", "/api", "/login", "/p1/p2", "/", "/", "/"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sessionPaths = %q, want %q", got, want)
	}
}

// TestSessionNoStateWithoutPersistence checks that a rule without session
// persistence compiles to no session state, so the request path skips it.
func TestSessionNoStateWithoutPersistence(t *testing.T) {
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {"127.0.0.1:1"}}, Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	for _, pt := range p.snap.Load().ports {
		req := routerRequest("x", "/", "GET")
		req.Listener = pt.listenerFor(req.Host).nameOrEmpty()
		res, err := pt.table.Match(&req)
		if err != nil {
			t.Fatal(err)
		}
		if cr := res.Rule.Value.(*compiledRule); cr.session != nil || cr.refs[0].session != nil {
			t.Error("session state compiled for a rule without session persistence")
		}
	}
}

// BenchmarkProxyHTTP1Session measures GETs to a rule with session
// persistence: with a valid cookie (honoured, nothing issued) and without
// one (a token sealed and issued on every response).
func BenchmarkProxyHTTP1Session(b *testing.B) {
	backend := cannedBackend(b)
	p := newTestProxy(b, Options{})
	cfg := simpleConfig(map[string][]string{"b": {backend}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}, SessionPersistence: &SessionPersistence{}})
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	addr, _ := p.Addr("gw/http")
	_, _, h := get(b, http.DefaultClient, "http://"+addr.String()+"/bench/path")
	cookie := h.Get("Set-Cookie")
	cookie = cookie[:strings.IndexByte(cookie, ';')]
	for _, tc := range []struct{ name, extra string }{{"pinned", "Cookie: " + cookie + "\r\n"}, {"issue", ""}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rc := newRawClient(b, addr.String(), "/bench/path?q=1")
				defer rc.c.Close()
				rc.req = []byte("GET /bench/path?q=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\n" + tc.extra + "\r\n")
				for pb.Next() {
					code, err := rc.do()
					if err != nil || code != 200 {
						b.Errorf("status %d, %v", code, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSessionToken measures the session work of one request without
// the network: finding and opening a valid token (pinned), and sealing
// and formatting a new one (issue).
func BenchmarkSessionToken(b *testing.B) {
	p := newTestProxy(b, Options{})
	cfg := simpleConfig(map[string][]string{"default/svc:8080": {"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "default/svc:8080", Weight: 1}}, SessionPersistence: &SessionPersistence{}})
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	var cr *compiledRule
	for _, pt := range p.snap.Load().ports {
		req := routerRequest("x", "/", "GET")
		req.Listener = pt.listenerFor(req.Host).nameOrEmpty()
		res, err := pt.table.Match(&req)
		if err != nil {
			b.Fatal(err)
		}
		cr = res.Rule.Value.(*compiledRule)
	}
	r, _ := http.NewRequest("GET", "http://x/", nil)
	x := requestState{backend: "default/svc:8080", endpoint: "10.0.0.2:8080"}
	p.pickSessionRef(cr, r, &x, 0, false)
	h := http.Header{}
	p.sessions.issue(h, &x)
	r.Header.Set("Cookie", "a=b; "+strings.Split(h.Get("Set-Cookie"), ";")[0])
	b.Run("pinned", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x.sess = nil
			if p.pickSessionRef(cr, r, &x, 0, false) == nil || x.sess.ep == nil {
				b.Fatal("token not honoured")
			}
		}
	})
	b.Run("issue", func(b *testing.B) {
		b.ReportAllocs()
		x.sess.ep = nil
		for b.Loop() {
			clear(h)
			p.sessions.issue(h, &x)
		}
		b.ReportMetric(float64(len(h.Get("Set-Cookie"))), "cookie-bytes")
	})
}

// FuzzSessionToken checks that token plaintexts round-trip and that
// parsing arbitrary bytes, and opening arbitrary cookie values through the
// request path, never panics.
func FuzzSessionToken(f *testing.F) {
	f.Add(int64(1), int64(2), uint64(0), "default/svc:80", "10.0.0.1:80", []byte{1, 0, 0})
	f.Add(int64(-1), int64(1<<62), uint64(1<<40), "", "", []byte("rauta"))
	p := newTestProxy(f, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {"127.0.0.1:1", "127.0.0.1:2"}},
		Rule{Backends: []BackendRef{{Backend: "b", Weight: 1}}, SessionPersistence: &SessionPersistence{}})); err != nil {
		f.Fatal(err)
	}
	var cr *compiledRule
	for _, pt := range p.snap.Load().ports {
		req := routerRequest("x", "/", "GET")
		req.Listener = pt.listenerFor(req.Host).nameOrEmpty()
		res, err := pt.table.Match(&req)
		if err != nil {
			f.Fatal(err)
		}
		cr = res.Rule.Value.(*compiledRule)
	}
	f.Fuzz(func(t *testing.T, start, last int64, ref uint64, backend, endpoint string, junk []byte) {
		tk, ok := parseToken(appendToken(nil, start, last, ref, backend, endpoint))
		if !ok || tk.start != start || tk.last != last || tk.ref != ref || string(tk.backend) != backend || string(tk.endpoint) != endpoint {
			t.Fatalf("round trip: %+v, %v", tk, ok)
		}
		parseToken(junk)
		// Sealed junk under the right key and rule reaches the parser
		// and the reference and endpoint lookups.
		sealed := p.sessions.aead.Seal(nil, nil, junk, cr.session.sources[0].ad)
		for _, v := range []string{string(junk), base64.RawURLEncoding.EncodeToString(junk), base64.RawURLEncoding.EncodeToString(sealed)} {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			r.Header["Cookie"] = []string{DefaultSessionName + "=" + v}
			var x requestState
			if p.pickSessionRef(cr, r, &x, -1, false) == nil {
				t.Fatal("no reference picked")
			}
		}
	})
}

// sickBackend answers with its name, or 500 to everything (health probes
// included) while sick.
type sickBackend struct {
	*httpTestServer
	sick atomic.Bool
}

func newSickBackend(t *testing.T, name string) *sickBackend {
	b := &sickBackend{}
	b.httpTestServer = newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.sick.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Write([]byte(name))
	}))
	return b
}

// TestSessionEndpointRefused shows a session pinned anew when its endpoint
// fails its health checks, or when its circuit breaker is open.
func TestSessionEndpointRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend func(*Backend)
	}{
		{"health check", func(b *Backend) {
			b.HealthCheck = &upstream.HealthCheck{Kind: upstream.HealthHTTP, Interval: 20 * time.Millisecond, UnhealthyThreshold: 1}
		}},
		{"breaker", func(b *Backend) {
			b.CircuitBreaker = &upstream.CircuitBreaker{Count5xx: true, Options: breaker.Options{MinRequests: 1, FailureThreshold: 0.01, OpenTimeout: time.Minute}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSessionRig(t, Options{}, "e1", "e2")
			sick := newSickBackend(t, "sick")
			r.addrs["sick"] = sick.addr()
			cfg := simpleConfig(nil, cookieRule("/", &SessionPersistence{}, BackendRef{Backend: "svc", Weight: 1}))
			cfg.Backends = []Backend{{Spec: upstream.Spec{Name: "svc", Endpoints: r.eps("sick", "e1", "e2")}}}
			tc.backend(&cfg.Backends[0])
			r.apply(cfg)
			var s session
			for _, x := range r.startSessions(12) {
				if x.endpoint == "sick" {
					s = x
				}
			}
			if s.tok == "" {
				t.Fatal("no session reached the endpoint to fail")
			}
			sick.sick.Store(true)
			cookie := DefaultSessionName + "=" + s.tok
			if tc.name == "breaker" {
				// The pinned endpoint's 500 opens its breaker.
				if code, _, _ := get(t, r.c, r.url+"/", "Cookie", cookie); code != 500 {
					t.Fatalf("pinned request to the failing endpoint: %d, want its 500", code)
				}
			} else {
				deadline := time.Now().Add(5 * time.Second)
				for r.p.snap.Load().backends["svc"].up.Table().Find([]byte(sick.addr())).Healthy() {
					if time.Now().After(deadline) {
						t.Fatal("the failing endpoint stayed healthy")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			got, h := r.get("/", "Cookie", cookie)
			c := setCookie(t, h, DefaultSessionName)
			if got == "sick" || c == nil {
				t.Fatalf("refused endpoint: reached %q, new cookie %v", got, c != nil)
			}
			for range 10 {
				if again, h := r.get("/", "Cookie", DefaultSessionName+"="+c.Value); again != got || len(h.Values("Set-Cookie")) > 0 {
					t.Fatalf("re-pinned session reached %s, want %s", again, got)
				}
			}
		})
	}
}
