package router

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompileErrors(t *testing.T) {
	withRules := func(hosts []string, ms ...Match) Route {
		return route("bad", hosts, rule(ms...))
	}
	tests := []struct {
		name  string
		route Route
		rule  int
		field string
		is    error
	}{
		{"ip hostname", withRules([]string{"ok.test", "10.0.0.1"}), -1, "hostnames[1]", ErrInvalidHostname},
		{"ipv6 hostname", withRules([]string{"::1"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"bare wildcard", withRules([]string{"*"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"wildcard without name", withRules([]string{"*."}), -1, "hostnames[0]", ErrInvalidHostname},
		{"inner wildcard", withRules([]string{"foo.*.test"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"empty label", withRules([]string{"a..test"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"dash label", withRules([]string{"-a.test"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"underscore", withRules([]string{"a_b.test"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"port", withRules([]string{"a.test:80"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"empty hostname", withRules([]string{""}), -1, "hostnames[0]", ErrInvalidHostname},
		{"long label", withRules([]string{strings.Repeat("a", 64) + ".test"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"long hostname", withRules([]string{strings.Repeat("abcdefghi.", 26) + "test"}), -1, "hostnames[0]", ErrInvalidHostname},
		{"origins count", func() Route {
			r := withRules([]string{"a.test", "b.test"})
			r.HostnameOrigins = []string{"*"}
			return r
		}(), -1, "hostnameOrigins", ErrInvalidHostname},
		{"origin not covering", func() Route {
			r := withRules([]string{"a.test"})
			r.HostnameOrigins = []string{"*.other.test"}
			return r
		}(), -1, "hostnameOrigins[0]", ErrInvalidHostname},
		{"origin narrower", func() Route { r := withRules([]string{"*.test"}); r.HostnameOrigins = []string{"a.test"}; return r }(), -1, "hostnameOrigins[0]", ErrInvalidHostname},
		{"invalid origin", func() Route { r := withRules([]string{"a.test"}); r.HostnameOrigins = []string{"*.te_st"}; return r }(), -1, "hostnameOrigins[0]", ErrInvalidHostname},
		{"empty listener", Route{Namespace: "default", Name: "bad", Listeners: []string{"a", ""}, Rules: []Rule{{}}}, -1, "listeners[1]", ErrInvalidListener},
		{"relative path", withRules(nil, prefix("foo")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"double slash", withRules(nil, exact("/a//b")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"dot segment", withRules(nil, prefix("/a/./b")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"dot-dot end", withRules(nil, prefix("/a/..")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"encoded dot segment", withRules(nil, prefix("/a/%2E%2e/b")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"encoded slash", withRules(nil, prefix("/a%2fb")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"fragment", withRules(nil, exact("/a#b")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"space", withRules(nil, exact("/a b")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"bad escape", withRules(nil, exact("/a%4")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"encoded NUL", withRules(nil, exact("/a%00")), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"too long", withRules(nil, exact("/"+strings.Repeat("a", 1024))), 0, "rules[0].matches[0].path.value", ErrInvalidPath},
		{"bad regex", withRules(nil, prefix("/ok"), regex("/(")), 0, "rules[0].matches[1].path.value", ErrInvalidRegex},
		{"path type", withRules(nil, Match{Path: PathMatch{Type: 7, Value: "/"}}), 0, "rules[0].matches[0].path.type", ErrUnsupportedValue},
		{"lower-case method", withRules(nil, prefix("/").method("get")), 0, "rules[0].matches[0].method", ErrInvalidMethod},
		{"unknown method", withRules(nil, prefix("/").method("PURGE")), 0, "rules[0].matches[0].method", ErrInvalidMethod},
		{"header name", withRules(nil, prefix("/").header("x a", "1")), 0, "rules[0].matches[0].headers[0].name", ErrInvalidHeader},
		{"pseudo header", withRules(nil, prefix("/").header(":path", "/")), 0, "rules[0].matches[0].headers[0].name", ErrInvalidHeader},
		{"empty header value", withRules(nil, prefix("/").header("x", "1").header("y", "")), 0, "rules[0].matches[0].headers[1].value", ErrInvalidHeader},
		{"header CRLF", withRules(nil, prefix("/").header("x", "a\r\nb")), 0, "rules[0].matches[0].headers[0].value", ErrInvalidHeader},
		{"header regex", withRules(nil, prefix("/").headerRE("x", "[")), 0, "rules[0].matches[0].headers[0].value", ErrInvalidRegex},
		{"header type", withRules(nil, Match{Headers: []HeaderMatch{{Type: 2, Name: "x", Value: "1"}}}), 0, "rules[0].matches[0].headers[0].type", ErrUnsupportedValue},
		{"empty query name", withRules(nil, prefix("/").query("", "1")), 0, "rules[0].matches[0].queryParams[0].name", ErrInvalidQuery},
		{"empty query value", withRules(nil, prefix("/").query("q", "")), 0, "rules[0].matches[0].queryParams[0].value", ErrInvalidQuery},
		{"query regex", withRules(nil, prefix("/").queryRE("q", "a**")), 0, "rules[0].matches[0].queryParams[0].value", ErrInvalidRegex},
		{"query type", withRules(nil, Match{QueryParams: []QueryMatch{{Type: 9, Name: "q", Value: "1"}}}), 0, "rules[0].matches[0].queryParams[0].type", ErrUnsupportedValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := route("good", nil, rule(prefix("/")))
			tab := Compile([]Route{good, tt.route})
			err := tab.Err()
			if tab == nil {
				t.Fatal("Compile returned a nil table")
			}
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile error = %v, want *CompileError", err)
			}
			if len(ce.Errors) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(ce.Errors), err)
			}
			re := ce.Errors[0]
			got := [4]any{re.Index, re.Name, re.Rule, re.Field}
			want := [4]any{1, "bad", tt.rule, tt.field}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RouteError (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), `route "default/bad" [1]: `+tt.field+": ") {
				t.Errorf("error message %q does not name the route and field", err)
			}
			// The valid route is still served.
			req := get("any.test", "/x")
			if res, err := tab.Match(&req); err != nil || res.Route.Name != "good" {
				t.Errorf("valid route not served: %v, %v", res.Route, err)
			}
		})
	}
}

func TestCompileDropsOnlyTheInvalidRule(t *testing.T) {
	routes := []Route{route("r", nil,
		rule(prefix("/ok")),
		rule(regex("/bad(")),
		rule(prefix("/also-ok")),
	)}
	tab := Compile(routes)
	err := tab.Err()
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Errors) != 1 || ce.Errors[0].Rule != 1 {
		t.Fatalf("Compile error = %v, want one error for rule 1", err)
	}
	for _, c := range []matchCase{
		{get("h", "/ok"), "r#0.0"},
		{get("h", "/also-ok"), "r#2.0"},
		{get("h", "/bad("), "404"},
	} {
		if got := outcome(tab.Match(&c.req)); got != c.want {
			t.Errorf("%s: %s, want %s", c.req.Path, got, c.want)
		}
	}
}

func TestCompileReportsEveryError(t *testing.T) {
	routes := []Route{
		route("a", []string{"1.2.3.4", "*"}, rule()),
		route("b", nil, rule(prefix("x").method("x").header("", "1")), rule(exact("/ok"))),
	}
	err := Compile(routes).Err()
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %v", err)
	}
	var got []string
	for _, e := range ce.Errors {
		got = append(got, e.Name+" "+e.Field)
	}
	want := []string{
		"a hostnames[0]",
		"a hostnames[1]",
		"b rules[0].matches[0].path.value",
		"b rules[0].matches[0].method",
		"b rules[0].matches[0].headers[0].name",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if n := strings.Count(err.Error(), "\n"); n != 4 {
		t.Errorf("Error() has %d lines, want 5:\n%s", n+1, err)
	}
	if len(ce.Unwrap()) != 5 {
		t.Errorf("Unwrap() returned %d errors, want 5", len(ce.Unwrap()))
	}
}

func TestCompileAcceptsValidInput(t *testing.T) {
	routes := []Route{
		route("hosts", []string{"Foo.Example.COM", "*.example.com", "xn--bcher-kva.example", "a-b.c1.test", "localhost"}, rule()),
		route("paths", nil, rule(
			exact("/a%20b"), prefix("/%61pi/"), prefix("/!$&'()*+,;=:@-._~"),
			regex(`/(?i)ABC[0-9]{1,3}`), Match{Path: PathMatch{Type: PathPrefix}},
		)),
		route("methods", nil, rule(
			Match{Method: "GET"}, Match{Method: "HEAD"}, Match{Method: "POST"}, Match{Method: "PUT"},
			Match{Method: "DELETE"}, Match{Method: "CONNECT"}, Match{Method: "OPTIONS"}, Match{Method: "TRACE"},
			Match{Method: "PATCH"},
		)),
		route("conds", nil, rule(prefix("/").header("X-Custom_Header!", "a\tb").query("a b", "%"))),
	}
	if err := Compile(routes).Err(); err != nil {
		t.Fatalf("Compile: %v", err)
	}
}

func TestTypeStrings(t *testing.T) {
	got := []string{
		PathPrefix.String(), PathExact.String(), PathRegularExpression.String(), PathMatchType(9).String(),
		HeaderExact.String(), HeaderRegularExpression.String(), HeaderMatchType(9).String(),
		QueryExact.String(), QueryRegularExpression.String(), QueryMatchType(9).String(),
		Selected.String(), WrongQuery.String(), Verdict(99).String(),
	}
	want := []string{
		"PathPrefix", "Exact", "RegularExpression", "PathMatchType(9)",
		"Exact", "RegularExpression", "HeaderMatchType(9)",
		"Exact", "RegularExpression", "QueryMatchType(9)",
		"Selected", "WrongQuery", "Verdict(99)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("String() (-want +got):\n%s", diff)
	}
}

func TestIntersectHostnames(t *testing.T) {
	tests := []struct {
		listener string
		route    []string
		want     []string
		ok       bool
	}{
		{"", nil, nil, true},
		{"", []string{"A.example.com", "a.example.com", "*.b.com"}, []string{"a.example.com", "*.b.com"}, true},
		{"test.example.com", nil, []string{"test.example.com"}, true},
		// Spec examples: a specific listener.
		{"test.example.com", []string{"test.example.com"}, []string{"test.example.com"}, true},
		{"test.example.com", []string{"*.example.com"}, []string{"test.example.com"}, true},
		{"test.example.com", []string{"*.com"}, []string{"test.example.com"}, true},
		{"test.example.com", []string{"other.example.com", "*.test.example.com"}, nil, false},
		// Spec examples: a wildcard listener.
		{"*.example.com", []string{"*.example.com"}, []string{"*.example.com"}, true},
		{"*.example.com", []string{"test.example.com"}, []string{"test.example.com"}, true},
		{"*.example.com", []string{"foo.test.example.com"}, []string{"foo.test.example.com"}, true},
		{"*.example.com", []string{"*.test.example.com"}, []string{"*.test.example.com"}, true},
		{"*.example.com", []string{"*.com"}, []string{"*.example.com"}, true},
		{"*.example.com", []string{"example.com", "test.example.net"}, nil, false},
		{"*.Example.com", []string{"test.example.com", "test.example.net", "TEST.example.com"}, []string{"test.example.com"}, true},
	}
	for _, tt := range tests {
		got, ok := IntersectHostnames(tt.listener, tt.route)
		if diff := cmp.Diff(tt.want, got); diff != "" || ok != tt.ok {
			t.Errorf("IntersectHostnames(%q, %q) = %q, %v; want %q, %v", tt.listener, tt.route, got, ok, tt.want, tt.ok)
		}
	}
}

func TestIntersectHostnameOrigins(t *testing.T) {
	tests := []struct {
		listener       string
		route          []string
		hosts, origins []string
	}{
		{"", nil, nil, nil},
		{"", []string{"A.example.com", "*.b.com"}, []string{"a.example.com", "*.b.com"}, []string{"a.example.com", "*.b.com"}},
		{"abc.example.com", nil, []string{"abc.example.com"}, []string{"*"}},
		{"abc.example.com", []string{"*.example.com"}, []string{"abc.example.com"}, []string{"*.example.com"}},
		{"abc.example.com", []string{"abc.example.com"}, []string{"abc.example.com"}, []string{"abc.example.com"}},
		// Several route hostnames yield the same name: the most specific
		// is its origin, whatever the order.
		{"abc.example.com", []string{"*.com", "*.example.com"}, []string{"abc.example.com"}, []string{"*.example.com"}},
		{"abc.example.com", []string{"*.example.com", "ABC.example.com", "*.com"}, []string{"abc.example.com"}, []string{"abc.example.com"}},
		{"*.foo.example.com", []string{"*.com", "*.example.com"}, []string{"*.foo.example.com"}, []string{"*.example.com"}},
		{"*.example.com", []string{"a.example.com", "*.com"}, []string{"a.example.com", "*.example.com"}, []string{"a.example.com", "*.com"}},
	}
	for _, tt := range tests {
		hosts, origins, ok := IntersectHostnameOrigins(tt.listener, tt.route)
		if !ok || !slices.Equal(hosts, tt.hosts) || !slices.Equal(origins, tt.origins) {
			t.Errorf("IntersectHostnameOrigins(%q, %q) = %q, %q, %v; want %q, %q", tt.listener, tt.route, hosts, origins, ok, tt.hosts, tt.origins)
		}
	}
}
