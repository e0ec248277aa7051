package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

func prefix(v string) Match { return Match{Path: PathMatch{Type: PathPrefix, Value: v}} }
func exact(v string) Match  { return Match{Path: PathMatch{Type: PathExact, Value: v}} }
func regex(v string) Match  { return Match{Path: PathMatch{Type: PathRegularExpression, Value: v}} }

func (m Match) method(s string) Match { m.Method = s; return m }
func (m Match) header(name, value string) Match {
	m.Headers = append(m.Headers, HeaderMatch{Name: name, Value: value})
	return m
}
func (m Match) headerRE(name, value string) Match {
	m.Headers = append(m.Headers, HeaderMatch{Type: HeaderRegularExpression, Name: name, Value: value})
	return m
}
func (m Match) query(name, value string) Match {
	m.QueryParams = append(m.QueryParams, QueryMatch{Name: name, Value: value})
	return m
}
func (m Match) queryRE(name, value string) Match {
	m.QueryParams = append(m.QueryParams, QueryMatch{Type: QueryRegularExpression, Name: name, Value: value})
	return m
}

func rule(ms ...Match) Rule { return Rule{Matches: ms} }

// route builds a route named "default/<name>" created at t0.
func route(name string, hosts []string, rules ...Rule) Route {
	return Route{Namespace: "default", Name: name, CreationTime: t0, Hostnames: hosts, Rules: rules}
}

func mustCompile(t testing.TB, routes []Route) *Table {
	t.Helper()
	tab := Compile(routes)
	err := tab.Err()
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

// outcome summarises a Match result as "name#rule.match", "404" or "400".
func outcome(res Result, err error) string {
	switch {
	case errors.Is(err, ErrBadPath):
		return "400"
	case errors.Is(err, ErrNotFound):
		return "404"
	case err != nil:
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%s#%d.%d", res.Route.Name, res.RuleIndex, res.MatchIndex)
}

type matchCase struct {
	req  Request
	want string
}

func get(host, path string) Request { return Request{Host: host, Path: path, Method: "GET"} }

func runMatchCases(t *testing.T, routes []Route, cases []matchCase) {
	t.Helper()
	tab := mustCompile(t, routes)
	var got, want []string
	for _, c := range cases {
		res, err := tab.Match(&c.req)
		got = append(got, fmt.Sprintf("%s %s %s -> %s", c.req.Host, c.req.Method, c.req.Path, outcome(res, err)))
		want = append(want, fmt.Sprintf("%s %s %s -> %s", c.req.Host, c.req.Method, c.req.Path, c.want))
		// Explain must agree with Match.
		cands, eerr := tab.Explain(&c.req)
		if (eerr == nil) != (err == nil || errors.Is(err, ErrNotFound)) {
			t.Errorf("%+v: Explain error %v, Match error %v", c.req, eerr, err)
		}
		sel := "404"
		if eerr != nil {
			sel = "400"
		}
		for _, cand := range cands {
			if cand.Verdict == Selected {
				sel = fmt.Sprintf("%s#%d.%d", cand.Name, cand.RuleIndex, cand.MatchIndex)
				break
			}
		}
		if sel != outcome(res, err) {
			t.Errorf("%+v: Explain selects %s, Match %s", c.req, sel, outcome(res, err))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("matches (-want +got):\n%s", diff)
	}
}

func TestMatchHostnames(t *testing.T) {
	routes := []Route{
		route("exact", []string{"foo.example.com"}, rule()),
		route("wild", []string{"*.example.com"}, rule()),
		route("wild-b", []string{"*.b.example.com"}, rule()),
		route("any", nil, rule()),
		route("upper", []string{"UPPER.Example.NET"}, rule()),
	}
	runMatchCases(t, routes, []matchCase{
		{get("foo.example.com", "/"), "exact#0.-1"},
		{get("FOO.Example.COM", "/"), "exact#0.-1"},
		{get("foo.example.com:8443", "/"), "exact#0.-1"},
		{get("foo.example.com.", "/"), "exact#0.-1"},
		{get("foo.example.com.:80", "/"), "exact#0.-1"},
		{get("bar.example.com", "/"), "wild#0.-1"},
		{get("a.bar.example.com", "/"), "wild#0.-1"},
		{get("x.b.example.com", "/"), "wild-b#0.-1"},
		{get("y.x.b.example.com", "/"), "wild-b#0.-1"},
		{get("b.example.com", "/"), "wild#0.-1"}, // apex of *.b.example.com
		{get("example.com", "/"), "any#0.-1"},    // apex of *.example.com
		{get("fooexample.com", "/"), "any#0.-1"}, // not a label boundary
		{get("other.org", "/"), "any#0.-1"},
		{get("", "/"), "any#0.-1"},
		{get("[::1]:8080", "/"), "any#0.-1"},
		{get("10.0.0.1:80", "/"), "any#0.-1"},
		{get("upper.example.net", "/"), "upper#0.-1"},
	})
}

func TestMatchHostnameFallthrough(t *testing.T) {
	// The exact-host route only serves /api; other paths on that host fall
	// through to less specific hostnames.
	routes := []Route{
		route("exact", []string{"shop.example.com"}, rule(prefix("/api"))),
		route("wild", []string{"*.example.com"}, rule(prefix("/static"))),
		route("any", nil, rule(exact("/healthz"))),
	}
	runMatchCases(t, routes, []matchCase{
		{get("shop.example.com", "/api/x"), "exact#0.0"},
		{get("shop.example.com", "/static/x"), "wild#0.0"},
		{get("shop.example.com", "/healthz"), "any#0.0"},
		{get("shop.example.com", "/other"), "404"},
		{get("x.example.com", "/api"), "404"},
	})
}

func TestMatchHostnamePrecedenceOverPath(t *testing.T) {
	// A more specific hostname wins even with a less specific path.
	routes := []Route{
		route("any-exact", nil, rule(exact("/login"))),
		route("wild-prefix", []string{"*.example.com"}, rule(prefix("/"))),
		route("exact-prefix", []string{"a.example.com"}, rule(prefix("/"))),
	}
	runMatchCases(t, routes, []matchCase{
		{get("a.example.com", "/login"), "exact-prefix#0.0"},
		{get("b.example.com", "/login"), "wild-prefix#0.0"},
		{get("example.org", "/login"), "any-exact#0.0"},
	})
}

// attached builds route name, created at created, as attached to a
// listener with hostname listener: its hostnames are intersected with the
// listener's, keeping their origins.
func attached(t *testing.T, name, listener string, own []string, created time.Time, rules ...Rule) Route {
	t.Helper()
	hosts, origins, ok := IntersectHostnameOrigins(listener, own)
	if !ok {
		t.Fatalf("%s: %q does not intersect %q", name, own, listener)
	}
	r := route(name, hosts, rules...)
	r.HostnameOrigins = origins
	r.CreationTime = created
	return r
}

// TestMatchHostnameOriginPrecedence checks the rule of Gateway API v1.7
// (GatewayRouteHostnameIntersectionPrecedence): routes whose intersected
// hostnames are the same rank by their own hostnames before anything else.
func TestMatchHostnameOriginPrecedence(t *testing.T) {
	t.Run("issue case", func(t *testing.T) {
		// Listener abc.example.com; the older route has *.example.com,
		// the newer abc.example.com: both serve abc.example.com.
		runMatchCases(t, []Route{
			attached(t, "wild-older", "abc.example.com", []string{"*.example.com"}, t0, rule()),
			attached(t, "exact-newer", "abc.example.com", []string{"abc.example.com"}, t1, rule()),
		}, []matchCase{
			{get("abc.example.com", "/"), "exact-newer#0.-1"},
		})
	})
	t.Run("origin before path", func(t *testing.T) {
		// The exact route wins with a less specific path, and what it
		// does not match still reaches the wildcard route.
		runMatchCases(t, []Route{
			attached(t, "wild", "abc.example.com", []string{"*.example.com"}, t0, rule(exact("/a/b"), prefix("/a"), prefix("/c").method("POST"))),
			attached(t, "exact", "abc.example.com", []string{"abc.example.com"}, t1, rule(prefix("/").method("GET"))),
		}, []matchCase{
			{get("abc.example.com", "/a/b"), "exact#0.0"},
			{get("abc.example.com", "/a"), "exact#0.0"},
			{Request{Host: "abc.example.com", Path: "/a/b", Method: "PUT"}, "wild#0.0"},
			{Request{Host: "abc.example.com", Path: "/a/x", Method: "PUT"}, "wild#0.1"},
			{Request{Host: "ABC.example.com:80", Path: "/c", Method: "POST"}, "wild#0.2"},
			{Request{Host: "abc.example.com", Path: "/d", Method: "POST"}, "404"},
		})
	})
	t.Run("longer wildcard and no hostnames", func(t *testing.T) {
		// Oldest first: none, *.com, *.example.com, abc.example.com; each
		// serves a path the more specific ones do not.
		runMatchCases(t, []Route{
			attached(t, "none", "abc.example.com", nil, t0, rule(prefix("/"))),
			attached(t, "com", "abc.example.com", []string{"*.com"}, t0.Add(time.Minute), rule(prefix("/x"), prefix("/y"), prefix("/z"))),
			attached(t, "example", "abc.example.com", []string{"*.example.com"}, t1, rule(prefix("/x"), prefix("/y"))),
			attached(t, "exact", "abc.example.com", []string{"abc.example.com"}, t2, rule(prefix("/x"))),
		}, []matchCase{
			{get("abc.example.com", "/x"), "exact#0.0"},
			{get("abc.example.com", "/y/1"), "example#0.1"},
			{get("abc.example.com", "/z"), "com#0.2"},
			{get("abc.example.com", "/"), "none#0.0"},
		})
	})
	t.Run("wildcard listener", func(t *testing.T) {
		// Listener *.foo.example.com: *.foo.example.com and *.example.com
		// both become *.foo.example.com.
		runMatchCases(t, []Route{
			attached(t, "short", "*.foo.example.com", []string{"*.example.com"}, t0, rule(prefix("/a"))),
			attached(t, "long", "*.foo.example.com", []string{"*.foo.example.com"}, t1, rule(prefix("/"))),
		}, []matchCase{
			{get("x.foo.example.com", "/a"), "long#0.0"},
		})
	})
	t.Run("listener without hostname", func(t *testing.T) {
		// The intersections already differ: the exact hostname wins by
		// the first criterion, with the same fallthrough.
		runMatchCases(t, []Route{
			attached(t, "wild", "", []string{"*.example.com"}, t0, rule(exact("/a/b"), prefix("/a"))),
			attached(t, "exact", "", []string{"abc.example.com"}, t1, rule(prefix("/").method("GET"))),
		}, []matchCase{
			{get("abc.example.com", "/a/b"), "exact#0.0"},
			{Request{Host: "abc.example.com", Path: "/a/b", Method: "PUT"}, "wild#0.0"},
			{get("x.example.com", "/a/c"), "wild#0.1"},
		})
	})
	t.Run("ties", func(t *testing.T) {
		// Same origin rank: creation time, then namespace/name decide.
		older := attached(t, "b-older", "abc.example.com", []string{"*.example.com"}, t0, rule())
		newer := attached(t, "a-newer", "abc.example.com", []string{"*.example.com"}, t1, rule())
		runMatchCases(t, []Route{newer, older}, []matchCase{{get("abc.example.com", "/"), "b-older#0.-1"}})
		a := attached(t, "a", "abc.example.com", []string{"abc.example.com"}, t1, rule())
		b := attached(t, "b", "abc.example.com", []string{"abc.example.com"}, t1, rule())
		runMatchCases(t, []Route{b, a}, []matchCase{{get("abc.example.com", "/"), "a#0.-1"}})
		b.Namespace = "a-ns"
		runMatchCases(t, []Route{a, b}, []matchCase{{get("abc.example.com", "/"), "b#0.-1"}})
	})
	t.Run("without origins", func(t *testing.T) {
		// Without HostnameOrigins each hostname is its own origin: the
		// older route wins, as before the rule.
		runMatchCases(t, []Route{
			{Namespace: "default", Name: "older", CreationTime: t0, Hostnames: []string{"abc.example.com"}, Rules: []Rule{rule()}},
			{Namespace: "default", Name: "newer", CreationTime: t1, Hostnames: []string{"abc.example.com"}, Rules: []Rule{rule()}},
		}, []matchCase{{get("abc.example.com", "/"), "older#0.-1"}})
	})
}

func TestMatchRouteWithSeveralHostnames(t *testing.T) {
	// "multi" ranks by its best matching hostname: on foo.example.com that
	// is the exact name, where the older "single" wins the tie.
	multi := route("multi", []string{"*.example.com", "foo.example.com", "FOO.example.com"}, rule())
	multi.CreationTime = t2
	single := route("single", []string{"foo.example.com"}, rule())
	single.CreationTime = t1
	runMatchCases(t, []Route{multi, single}, []matchCase{
		{get("foo.example.com", "/"), "single#0.-1"},
		{get("bar.example.com", "/"), "multi#0.-1"},
	})
	tab := mustCompile(t, []Route{multi})
	req := get("x.example.com", "/")
	res, err := tab.Match(&req)
	if err != nil || res.Hostname != "*.example.com" {
		t.Errorf("Hostname = %q, %v; want *.example.com", res.Hostname, err)
	}
	req = get("FOO.example.com", "/")
	if res, err = tab.Match(&req); err != nil || res.Hostname != "foo.example.com" {
		t.Errorf("Hostname = %q, %v; want foo.example.com", res.Hostname, err)
	}
}

func TestMatchPathPrefixSegments(t *testing.T) {
	routes := []Route{
		route("foo", nil, rule(prefix("/foo"))),
		route("bar-slash", nil, rule(prefix("/bar/"))),
		route("deep", nil, rule(prefix("/a/b/c"))),
	}
	runMatchCases(t, routes, []matchCase{
		{get("h", "/foo"), "foo#0.0"},
		{get("h", "/foo/"), "foo#0.0"},
		{get("h", "/foo/bar"), "foo#0.0"},
		{get("h", "/foobar"), "404"},
		{get("h", "/fo"), "404"},
		{get("h", "/bar"), "bar-slash#0.0"},
		{get("h", "/bar/"), "bar-slash#0.0"},
		{get("h", "/bar/x"), "bar-slash#0.0"},
		{get("h", "/barx"), "404"},
		{get("h", "/a/b/c"), "deep#0.0"},
		{get("h", "/a/b/c/d/e/f"), "deep#0.0"},
		{get("h", "/a/b/cd"), "404"},
		{get("h", "/a/b"), "404"},
		{get("h", "/"), "404"},
	})
}

func TestMatchExactPath(t *testing.T) {
	routes := []Route{
		route("abc", nil, rule(exact("/abc"))),
		route("abc-slash", nil, rule(exact("/abc/"))),
		route("root", nil, rule(exact("/"))),
	}
	runMatchCases(t, routes, []matchCase{
		{get("h", "/abc"), "abc#0.0"},
		{get("h", "/abc/"), "abc-slash#0.0"},
		{get("h", "/Abc"), "404"},
		{get("h", "/abcd"), "404"},
		{get("h", "/abc/d"), "404"},
		{get("h", "/"), "root#0.0"},
		{get("h", ""), "root#0.0"},
		{get("h", "/abc/x/.."), "abc-slash#0.0"},
	})
}

func TestMatchRegularExpressionPath(t *testing.T) {
	routes := []Route{
		route("re", nil, rule(regex(`/v[0-9]+/.*`))),
		route("re-long", nil, rule(regex(`/v[0-9]+/users/[0-9]+`))),
		route("catchall", nil, rule(prefix("/"))),
		route("exact", nil, rule(exact("/v1/users/1"))),
	}
	runMatchCases(t, routes, []matchCase{
		{get("h", "/v1/x"), "re#0.0"},
		{get("h", "/v2/users/7"), "re-long#0.0"}, // longer expression first
		{get("h", "/v1/users/1"), "exact#0.0"},   // Exact beats regex
		{get("h", "/x/v1/x"), "catchall#0.0"},    // anchored
		{get("h", "/v1"), "catchall#0.0"},
		{get("h", "/%76%31/x"), "re#0.0"}, // normalised before matching
	})
}

func TestMatchPathBypassAttempts(t *testing.T) {
	routes := []Route{
		route("admin", nil, rule(prefix("/admin"))),
		route("public", nil, rule(prefix("/"))),
	}
	runMatchCases(t, routes, []matchCase{
		{get("h", "/admin"), "admin#0.0"},
		{get("h", "/%61dmin"), "admin#0.0"},
		{get("h", "/%41dmin"), "public#0.0"}, // "Admin": paths are case-sensitive
		{get("h", "/./admin"), "admin#0.0"},
		{get("h", "//admin"), "admin#0.0"},
		{get("h", "/x/../admin"), "admin#0.0"},
		{get("h", "/%2e%2e/admin/x"), "admin#0.0"},
		{get("h", "/public/..%2Fadmin"), "400"},
		{get("h", "/admin%2F"), "400"},
		{get("h", "/admin%5Cx"), "400"},
		{get("h", "/admin\\x"), "400"},
		{get("h", "/admin%00"), "400"},
		{get("h", "/admin%zz"), "400"},
		{get("h", "admin"), "400"},
		{get("h", "/ADMIN"), "public#0.0"},
	})
}

func TestMatchPrecedence(t *testing.T) {
	tests := []struct {
		name   string
		routes []Route
		cases  []matchCase
	}{
		{
			name: "exact beats prefix",
			routes: []Route{
				route("prefix", nil, rule(prefix("/a/b"))),
				route("exact", nil, rule(exact("/a/b"))),
			},
			cases: []matchCase{{get("h", "/a/b"), "exact#0.0"}, {get("h", "/a/b/"), "prefix#0.0"}},
		},
		{
			name: "longest prefix",
			routes: []Route{
				route("short", nil, rule(prefix("/a"))),
				route("long", nil, rule(prefix("/a/b"))),
				route("root", nil, rule(prefix("/"))),
			},
			cases: []matchCase{
				{get("h", "/a/b/c"), "long#0.0"},
				{get("h", "/a/c"), "short#0.0"},
				{get("h", "/b"), "root#0.0"},
			},
		},
		{
			name: "prefix length counts the trailing slash",
			routes: []Route{
				route("plain", nil, rule(prefix("/a"))),
				route("slash", nil, rule(prefix("/a/"))),
			},
			cases: []matchCase{{get("h", "/a/x"), "slash#0.0"}, {get("h", "/a"), "slash#0.0"}},
		},
		{
			name: "path beats method",
			routes: []Route{
				route("method", nil, rule(prefix("/a").method("GET"))),
				route("longer", nil, rule(prefix("/a/b"))),
			},
			cases: []matchCase{{get("h", "/a/b"), "longer#0.0"}, {get("h", "/a/c"), "method#0.0"}},
		},
		{
			name: "method beats headers",
			routes: []Route{
				route("headers", nil, rule(prefix("/").header("x-a", "1").header("x-b", "2"))),
				route("method", nil, rule(prefix("/").method("GET"))),
			},
			cases: []matchCase{
				{Request{Host: "h", Path: "/", Method: "GET", Header: http.Header{"X-A": {"1"}, "X-B": {"2"}}}, "method#0.0"},
				{Request{Host: "h", Path: "/", Method: "POST", Header: http.Header{"X-A": {"1"}, "X-B": {"2"}}}, "headers#0.0"},
				{Request{Host: "h", Path: "/", Method: "POST"}, "404"},
			},
		},
		{
			name: "more headers beat fewer and beat queries",
			routes: []Route{
				route("one", nil, rule(prefix("/").header("x-a", "1"))),
				route("queries", nil, rule(prefix("/").header("x-a", "1").query("q", "1").query("r", "1"))),
				route("two", nil, rule(prefix("/").header("x-a", "1").header("x-b", "2"))),
			},
			cases: []matchCase{
				{Request{Host: "h", Path: "/", Header: http.Header{"X-A": {"1"}, "X-B": {"2"}}, RawQuery: "q=1&r=1"}, "two#0.0"},
				{Request{Host: "h", Path: "/", Header: http.Header{"X-A": {"1"}}, RawQuery: "q=1&r=1"}, "queries#0.0"},
				{Request{Host: "h", Path: "/", Header: http.Header{"X-A": {"1"}}, RawQuery: "q=1"}, "one#0.0"},
			},
		},
		{
			name: "more query params beat fewer",
			routes: []Route{
				route("one", nil, rule(prefix("/").query("q", "1"))),
				route("two", nil, rule(prefix("/").query("q", "1").query("r", "2"))),
			},
			cases: []matchCase{
				{Request{Host: "h", Path: "/", RawQuery: "r=2&q=1"}, "two#0.0"},
				{Request{Host: "h", Path: "/", RawQuery: "q=1"}, "one#0.0"},
			},
		},
		{
			name: "oldest route wins a tie",
			routes: []Route{
				{Namespace: "a", Name: "new", CreationTime: t2, Rules: []Rule{rule(prefix("/x"))}},
				{Namespace: "z", Name: "old", CreationTime: t1, Rules: []Rule{rule(prefix("/x"))}},
			},
			cases: []matchCase{{get("h", "/x"), "old#0.0"}},
		},
		{
			name: "then namespace/name alphabetically, as one string",
			routes: []Route{
				{Namespace: "ns", Name: "a", CreationTime: t1, Rules: []Rule{rule(prefix("/"))}},
				// "ns-a/z" < "ns/a" because '-' < '/'.
				{Namespace: "ns-a", Name: "z", CreationTime: t1, Rules: []Rule{rule(prefix("/"))}},
			},
			cases: []matchCase{{get("h", "/"), "z#0.0"}},
		},
		{
			name: "then rule order, then match order",
			routes: []Route{
				route("r", nil,
					rule(prefix("/a").query("q", "1"), prefix("/a/b")),
					rule(prefix("/a/b")),
					rule(prefix("/a").query("q", "1").query("r", "1")),
				),
			},
			cases: []matchCase{
				{get("h", "/a/b"), "r#0.1"},
				{Request{Host: "h", Path: "/a/c", RawQuery: "q=1"}, "r#0.0"},
				{Request{Host: "h", Path: "/a/c", RawQuery: "q=1&r=1"}, "r#2.0"},
			},
		},
		{
			name: "regular expressions rank between exact and prefix",
			routes: []Route{
				route("prefix", nil, rule(prefix("/a/b/c/d"))),
				route("re", nil, rule(regex("/a/.*"))),
				route("exact", nil, rule(exact("/a/b/c/d"))),
			},
			cases: []matchCase{
				{get("h", "/a/b/c/d"), "exact#0.0"},
				{get("h", "/a/b/c/d/e"), "re#0.0"},
				{get("h", "/a"), "404"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runMatchCases(t, tt.routes, tt.cases) })
	}
}

func TestMatchMethod(t *testing.T) {
	routes := []Route{route("get", nil, rule(prefix("/").method("GET")))}
	runMatchCases(t, routes, []matchCase{
		{Request{Path: "/", Method: "GET"}, "get#0.0"},
		{Request{Path: "/", Method: "get"}, "404"},
		{Request{Path: "/", Method: "POST"}, "404"},
		{Request{Path: "/"}, "404"},
	})
}

func TestMatchHeaders(t *testing.T) {
	routes := []Route{
		route("exact", nil, rule(prefix("/exact").header("x-Version", "v2"))),
		route("re", nil, rule(prefix("/re").headerRE("X-Version", `v[0-9]+`))),
		// Only the first entry for a name counts.
		route("dup", nil, rule(prefix("/dup").header("x-a", "1").header("X-A", "2"))),
		route("host", nil, rule(prefix("/host").header("host", "h.example:8080"))),
		route("multi", nil, rule(prefix("/multi").header("accept", "a, b"))),
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	runMatchCases(t, routes, []matchCase{
		{Request{Path: "/exact", Header: hdr("X-Version", "v2")}, "exact#0.0"},
		{Request{Path: "/exact", Header: hdr("x-version", "v2")}, "exact#0.0"},
		{Request{Path: "/exact", Header: hdr("X-Version", "V2")}, "404"},
		{Request{Path: "/exact", Header: hdr("X-Version", "v2 ")}, "404"},
		{Request{Path: "/exact", Header: hdr("X-Other", "v2")}, "404"},
		{Request{Path: "/exact", Header: hdr("X-Version", "v2", "X-Version", "v3")}, "404"},
		{Request{Path: "/re", Header: hdr("X-Version", "v10")}, "re#0.0"},
		{Request{Path: "/re", Header: hdr("X-Version", "v10x")}, "404"},
		{Request{Path: "/re", Header: hdr("X-Version", "v1", "X-Version", "v2")}, "404"},
		{Request{Path: "/dup", Header: hdr("X-A", "1")}, "dup#0.0"},
		{Request{Path: "/dup", Header: hdr("X-A", "2")}, "404"},
		{Request{Path: "/host", Host: "h.example:8080"}, "host#0.0"},
		{Request{Path: "/host", Host: "h.example"}, "404"},
		{Request{Path: "/multi", Header: hdr("Accept", "a", "Accept", "b")}, "multi#0.0"},
		{Request{Path: "/multi", Header: hdr("Accept", "a, b")}, "multi#0.0"},
		{Request{Path: "/multi", Header: hdr("Accept", "a", "Accept", "b", "Accept", "c")}, "404"},
		{Request{Path: "/multi", Header: hdr("Accept", "a,b")}, "404"},
	})
}

func TestMatchQueryParams(t *testing.T) {
	routes := []Route{
		route("exact", nil, rule(prefix("/q").query("q", "a b"))),
		route("re", nil, rule(prefix("/re").queryRE("id", `[0-9]+`))),
		route("case", nil, rule(prefix("/case").query("Key", "1"))),
		route("dup", nil, rule(prefix("/dup").query("k", "1").query("k", "2"))),
	}
	q := func(path, raw string) Request { return Request{Path: path, RawQuery: raw} }
	runMatchCases(t, routes, []matchCase{
		{q("/q", "q=a+b"), "exact#0.0"},
		{q("/q", "q=a%20b"), "exact#0.0"},
		{q("/q", "x=1&q=a%20b&y"), "exact#0.0"},
		{q("/q", "%71=a+b"), "exact#0.0"},      // encoded name
		{q("/q", "q=a+c&q=a+b"), "404"},        // first occurrence counts
		{q("/q", "q=a%zz&q=a+b"), "exact#0.0"}, // invalid pair ignored
		{q("/q", "q;x=1&q=a+b"), "exact#0.0"},  // pair with ';' ignored
		{q("/q", "q=a+b;x=1"), "404"},          // ...even the only one
		{q("/q", "Q=a+b"), "404"},              // names are case-sensitive
		{q("/q", "q"), "404"},                  // empty value
		{q("/q", ""), "404"},
		{q("/re", "id=123"), "re#0.0"},
		{q("/re", "id=%31%32"), "re#0.0"},
		{q("/re", "id=12a"), "404"},
		{q("/case", "Key=1"), "case#0.0"},
		{q("/case", "key=1"), "404"},
		{q("/dup", "k=1"), "dup#0.0"},
		{q("/dup", "k=2"), "404"},
	})
}

func TestMatchListeners(t *testing.T) {
	internal := route("internal", nil, rule(prefix("/")))
	internal.Listeners = []string{"admin", "internal"}
	internal.CreationTime = t0
	public := route("public", nil, rule(prefix("/")))
	public.CreationTime = t1
	withListener := func(l string) Request { return Request{Host: "h", Path: "/", Listener: l} }
	runMatchCases(t, []Route{internal, public}, []matchCase{
		{withListener("admin"), "internal#0.0"},
		{withListener("internal"), "internal#0.0"},
		{withListener("https"), "public#0.0"},
		{withListener(""), "public#0.0"},
	})
	runMatchCases(t, []Route{internal}, []matchCase{{withListener("other"), "404"}})

	// More than 64 listeners use several words of the bit set.
	var routes []Route
	for i := range 70 {
		r := route(fmt.Sprintf("r%d", i), nil, rule(exact(fmt.Sprintf("/%d", i))))
		r.Listeners = []string{fmt.Sprintf("l%d", i)}
		routes = append(routes, r)
	}
	runMatchCases(t, routes, []matchCase{
		{Request{Path: "/69", Listener: "l69"}, "r69#0.0"},
		{Request{Path: "/69", Listener: "l5"}, "404"},
		{Request{Path: "/5", Listener: "l5"}, "r5#0.0"},
	})
}

func TestMatchResult(t *testing.T) {
	type payload struct{ backend string }
	p := &payload{"svc-a"}
	routes := []Route{{
		Namespace: "ns", Name: "r", Hostnames: []string{"*.example.com"},
		Rules: []Rule{
			{Name: "zero", Matches: []Match{exact("/z")}},
			{Name: "one", Matches: []Match{exact("/nope"), prefix("/%61pi/")}, Value: p},
		},
	}}
	tab := mustCompile(t, routes)
	req := Request{Host: "Shop.Example.com", Path: "/api//v1/./x", Method: "GET"}
	res, err := tab.Match(&req)
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		RouteIndex, RuleIndex, MatchIndex int
		RuleName                          string
		PathMatch                         PathMatch
		Hostname, Path                    string
	}{res.RouteIndex, res.RuleIndex, res.MatchIndex, res.Rule.Name, res.PathMatch, res.Hostname, res.Path}
	want := got
	want.RouteIndex, want.RuleIndex, want.MatchIndex, want.RuleName = 0, 1, 1, "one"
	want.PathMatch = PathMatch{Type: PathPrefix, Value: "/api/"}
	want.Hostname, want.Path = "*.example.com", "/api/v1/x"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if res.Rule.Value.(*payload) != p {
		t.Errorf("Rule.Value = %v, want the payload pointer", res.Rule.Value)
	}
	if res.Route != &tab.routes[0] || res.Rule != &tab.routes[0].Rules[1] {
		t.Errorf("Route/Rule do not point into the table")
	}

	// A rule without matches reports the implicit PathPrefix "/".
	tab = mustCompile(t, []Route{route("d", nil, Rule{})})
	req = get("h", "/anything")
	res, err = tab.Match(&req)
	if err != nil || res.MatchIndex != -1 || res.PathMatch != (PathMatch{PathPrefix, "/"}) {
		t.Errorf("default rule: %+v, %v", res, err)
	}
}

func TestMatchDefaults(t *testing.T) {
	// The zero Match is PathPrefix "/"; an empty value means "/" for
	// every type.
	routes := []Route{
		route("zero", []string{"zero.test"}, rule(Match{})),
		route("exact-empty", []string{"exact.test"}, rule(exact(""))),
		route("re-empty", []string{"re.test"}, rule(regex(""))),
		route("no-rules", []string{"none.test"}),
	}
	runMatchCases(t, routes, []matchCase{
		{get("zero.test", "/x"), "zero#0.0"},
		{get("exact.test", "/"), "exact-empty#0.0"},
		{get("exact.test", "/x"), "404"},
		{get("re.test", "/"), "re-empty#0.0"},
		{get("re.test", "/x"), "404"},
		{get("none.test", "/"), "404"},
	})
}

func TestNilAndEmptyTable(t *testing.T) {
	var nilTable *Table
	req := get("h", "/")
	if _, err := nilTable.Match(&req); !errors.Is(err, ErrNotFound) {
		t.Errorf("nil table: %v, want ErrNotFound", err)
	}
	bad := get("h", "/%2F")
	if _, err := nilTable.Match(&bad); !errors.Is(err, ErrBadPath) {
		t.Errorf("nil table, bad path: %v, want ErrBadPath", err)
	}
	if c, err := nilTable.Explain(&req); c != nil || err != nil {
		t.Errorf("nil table Explain = %v, %v", c, err)
	}
	empty := mustCompile(t, nil)
	if _, err := empty.Match(&req); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty table: %v, want ErrNotFound", err)
	}
}

func TestMatchHTTP(t *testing.T) {
	tab := mustCompile(t, []Route{
		route("admin", []string{"example.com"}, rule(prefix("/admin").query("x", "1"))),
		route("rest", []string{"example.com"}, rule(prefix("/"))),
	})
	tests := []struct{ target, want string }{
		{"http://example.com/%61dmin/a?x=1", "admin#0.0"},
		{"http://EXAMPLE.com:80/admin?x=2", "rest#0.0"},
		{"http://example.com/admin%2Fb?x=1", "400"},
		{"http://example.com", "rest#0.0"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", tt.target, nil)
		if got := outcome(tab.MatchHTTP(r)); got != tt.want {
			t.Errorf("MatchHTTP(%s) = %s, want %s", tt.target, got, tt.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tab := mustCompile(t, []Route{
		route("a", []string{"a.example.com"}, rule(prefix("/api/v1").header("x-tenant", "t1").query("q", "1"))),
		route("w", []string{"*.example.com"}, rule(exact("/healthz"), prefix("/static/"))),
		route("any", nil, rule(prefix("/").method("GET"))),
	})
	reqs := []Request{
		{Host: "A.Example.com:443", Path: "/api/v1/users/1", Method: "GET", Header: http.Header{"X-Tenant": {"t1"}}, RawQuery: "a=b&q=%31"},
		{Host: "b.c.example.com", Path: "/static/app.js", Method: "GET"},
		{Host: "example.org", Path: "/x/y/z", Method: "GET"},
		{Host: "example.org", Path: "/x/y/z", Method: "POST"},
		{Host: "a.example.com", Path: "/%2F", Method: "GET"},
	}
	for _, req := range reqs {
		allocs := testing.AllocsPerRun(200, func() { _, _ = tab.Match(&req) })
		if allocs != 0 {
			t.Errorf("Match(%+v): %v allocs, want 0", req, allocs)
		}
	}
}

func TestCompileCopiesInput(t *testing.T) {
	routes := []Route{route("r", []string{"a.test"}, rule(prefix("/a").header("x", "1")))}
	tab := mustCompile(t, routes)
	routes[0].Hostnames[0] = "b.test"
	routes[0].Rules[0].Matches[0].Path.Value = "/b"
	routes[0].Rules[0].Matches[0].Headers[0].Value = "2"
	req := Request{Host: "a.test", Path: "/a", Header: http.Header{"X": {"1"}}}
	res, err := tab.Match(&req)
	if err != nil {
		t.Fatalf("Match after mutating input: %v", err)
	}
	if res.Route.Hostnames[0] != "a.test" || res.Rule.Matches[0].Path.Value != "/a" || res.Rule.Matches[0].Headers[0].Value != "1" {
		t.Errorf("table's route changed with the input: %+v", res.Route)
	}
}

func TestExplain(t *testing.T) {
	admin := route("admin", []string{"a.example.com"}, rule(exact("/admin").method("POST")))
	admin.Listeners = []string{"internal"}
	routes := []Route{
		admin,
		route("web", []string{"*.example.com"},
			Rule{Name: "api", Matches: []Match{prefix("/api").header("x-key", "k").query("v", "2")}},
			rule(prefix("/")),
		),
		route("other", []string{"other.test"}, rule(prefix("/"))),
		route("fallback", nil, rule(regex("/.*"))),
	}
	tab := mustCompile(t, routes)
	req := Request{
		Host: "a.example.com", Path: "/%61pi/x", Method: "GET", Listener: "public",
		Header: http.Header{"X-Key": {"k"}}, RawQuery: "v=1",
	}
	got, err := tab.Explain(&req)
	if err != nil {
		t.Fatal(err)
	}
	want := []Candidate{
		{RouteIndex: 0, RuleIndex: 0, MatchIndex: 0, Namespace: "default", Name: "admin", Hostname: "a.example.com",
			PathMatch: PathMatch{PathExact, "/admin"}, Verdict: WrongListener, Detail: `listener "public" is not one of ["internal"]`},
		{RouteIndex: 1, RuleIndex: 0, MatchIndex: 0, Namespace: "default", Name: "web", RuleName: "api", Hostname: "*.example.com",
			PathMatch: PathMatch{PathPrefix, "/api"}, Verdict: WrongQuery, Detail: `query parameter "v" value "1" does not match Exact "2"`},
		{RouteIndex: 1, RuleIndex: 1, MatchIndex: 0, Namespace: "default", Name: "web", Hostname: "*.example.com",
			PathMatch: PathMatch{PathPrefix, "/"}, Verdict: Selected},
		{RouteIndex: 3, RuleIndex: 0, MatchIndex: 0, Namespace: "default", Name: "fallback",
			PathMatch: PathMatch{PathRegularExpression, "/.*"}, Verdict: Shadowed},
		{RouteIndex: 2, RuleIndex: 0, MatchIndex: 0, Namespace: "default", Name: "other",
			PathMatch: PathMatch{PathPrefix, "/"}, Verdict: WrongHostname, Detail: `host "a.example.com" matches none of ["other.test"]`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Explain (-want +got):\n%s", diff)
	}

	details := func(req Request) []string {
		cands, err := tab.Explain(&req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cands {
			out = append(out, c.Verdict.String()+": "+c.Detail)
		}
		return out
	}
	got2 := details(Request{Host: "a.example.com", Path: "/admin", Method: "GET", Listener: "internal"})
	want2 := []string{
		`WrongMethod: method "GET" is not "POST"`,
		`WrongPath: path "/admin" does not match PathPrefix "/api"`,
		"Selected: ",
		"Shadowed: ",
		`WrongHostname: host "a.example.com" matches none of ["other.test"]`,
	}
	if diff := cmp.Diff(want2, got2); diff != "" {
		t.Errorf("Explain details (-want +got):\n%s", diff)
	}
	got3 := details(Request{Host: "b.example.com", Path: "/api", RawQuery: "v=2", Header: http.Header{"X-Key": {"nope"}}})
	want3 := []string{
		`WrongHeader: header "X-Key" value "nope" does not match Exact "k"`,
		"Selected: ",
		"Shadowed: ",
		`WrongHostname: host "b.example.com" matches none of ["a.example.com"]`,
		`WrongHostname: host "b.example.com" matches none of ["other.test"]`,
	}
	if diff := cmp.Diff(want3, got3); diff != "" {
		t.Errorf("Explain details (-want +got):\n%s", diff)
	}
	got4 := details(Request{Host: "b.example.com", Path: "/api", RawQuery: "v=2"})
	if got4[0] != `WrongHeader: header "X-Key" is missing` {
		t.Errorf("missing header detail = %q", got4[0])
	}
	got5 := details(Request{Host: "b.example.com", Path: "/api", Header: http.Header{"X-Key": {"k"}}})
	if got5[0] != `WrongQuery: query parameter "v" is missing` {
		t.Errorf("missing query detail = %q", got5[0])
	}
	if _, err := tab.Explain(&Request{Path: "/a%2Fb"}); !errors.Is(err, ErrBadPath) {
		t.Errorf("Explain bad path: %v, want ErrBadPath", err)
	}
}

func TestTableConcurrentUse(t *testing.T) {
	routes, reqs := benchSet(200)
	tab := mustCompile(t, routes)
	want := make([]string, len(reqs))
	for i := range reqs {
		want[i] = idOutcome(tab.Match(&reqs[i]))
	}
	done := make(chan []string)
	for range 4 {
		go func() {
			got := make([]string, len(reqs))
			for i := range reqs {
				got[i] = idOutcome(tab.Match(&reqs[i]))
			}
			done <- got
		}()
	}
	for range 4 {
		if diff := cmp.Diff(want, <-done); diff != "" {
			t.Errorf("concurrent matches differ (-want +got):\n%s", diff)
		}
	}
}

// TestQueryValue reads parameters the way query conditions do.
func TestQueryValue(t *testing.T) {
	for _, tc := range []struct {
		raw, name, want string
		ok              bool
	}{
		{"user=ann&user=bob", "user", "ann", true},
		{"a=1&user=b%20o+b", "user", "b o b", true},
		{"us%65r=carl", "user", "carl", true},
		{"user;x=1&user=dan", "user", "dan", true},
		{"user=%zz&user=eve", "user", "eve", true},
		{"user", "user", "", true},
		{"users=x", "user", "", false},
		{"", "user", "", false},
	} {
		got, ok := QueryValue(tc.raw, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("QueryValue(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { QueryValue("a=1&user=plain", "user") }); n != 0 {
		t.Errorf("QueryValue of an unescaped value allocates %v times", n)
	}
}
