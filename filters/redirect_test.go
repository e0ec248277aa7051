package filters

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type redirectCase struct {
	name   string
	rd     Redirect
	target string // request target, escaped path and query
	method string // default GET
	host   string // Host header; default "gw.example", "-" for none
	tls    bool
	info   RequestInfo
	code   int
	loc    string
}

// http80 is the default conformance listener ("same-namespace", HTTP on 80).
var http80 = RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80}

func runRedirectCases(t *testing.T, tests []redirectCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, []Spec{redirectSpec(tc.rd)}, CompileOptions{})
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r := newRequest(method, tc.target)
			r.Host = "gw.example"
			switch tc.host {
			case "":
			case "-":
				r.Host = ""
			default:
				r.Host = tc.host
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			var st State
			if !c.Request(w, r, tc.info, &st) {
				t.Fatal("redirect did not handle the request")
			}
			got := struct {
				Code     int
				Location string
			}{w.Code, w.Header().Get("Location")}
			want := struct {
				Code     int
				Location string
			}{tc.code, tc.loc}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if w.Body.Len() != 0 {
				t.Errorf("body = %q, want empty", w.Body.String())
			}
		})
	}
}

// The conformance tests httproute-redirect-host-and-status, -path, -port,
// -scheme and httproute-303/307/308-redirect, on the HTTP listener at 80.
func TestRedirectConformance(t *testing.T) {
	withPrefix := func(p string) RequestInfo { i := http80; i.PathPrefix = p; return i }
	runRedirectCases(t, []redirectCase{
		{name: "hostname", rd: Redirect{Hostname: "example.org"}, target: "/hostname-redirect", info: withPrefix("/hostname-redirect"),
			code: 302, loc: "http://example.org/hostname-redirect"},
		{name: "host and status", rd: Redirect{Hostname: "example.org", StatusCode: 301}, target: "/host-and-status", info: withPrefix("/host-and-status"),
			code: 301, loc: "http://example.org/host-and-status"},

		{name: "prefix", rd: Redirect{Path: prefixPath("/replacement-prefix")}, target: "/original-prefix/lemon", info: withPrefix("/original-prefix"),
			code: 302, loc: "http://gw.example/replacement-prefix/lemon"},
		{name: "full path", rd: Redirect{Path: fullPath("/full-path-replacement")}, target: "/full/path/original", info: withPrefix("/full"),
			code: 302, loc: "http://gw.example/full-path-replacement"},
		{name: "path and host", rd: Redirect{Hostname: "example.org", Path: prefixPath("/replacement-prefix")}, target: "/path-and-host", info: withPrefix("/path-and-host"),
			code: 302, loc: "http://example.org/replacement-prefix"},
		{name: "path and status", rd: Redirect{Path: prefixPath("/replacement-prefix"), StatusCode: 301}, target: "/path-and-status", info: withPrefix("/path-and-status"),
			code: 301, loc: "http://gw.example/replacement-prefix"},
		{name: "full path and host", rd: Redirect{Hostname: "example.org", Path: fullPath("/replacement-full")}, target: "/full-path-and-host", info: withPrefix("/full-path-and-host"),
			code: 302, loc: "http://example.org/replacement-full"},
		{name: "full path and status", rd: Redirect{Path: fullPath("/replacement-full"), StatusCode: 301}, target: "/full-path-and-status", info: withPrefix("/full-path-and-status"),
			code: 301, loc: "http://gw.example/replacement-full"},

		{name: "port", rd: Redirect{Port: 8083}, target: "/port", info: http80, code: 302, loc: "http://gw.example:8083/port"},
		{name: "port and host", rd: Redirect{Hostname: "example.org", Port: 8083}, target: "/port-and-host", info: http80,
			code: 302, loc: "http://example.org:8083/port-and-host"},
		{name: "port and status", rd: Redirect{Port: 8083, StatusCode: 301}, target: "/port-and-status", info: http80,
			code: 301, loc: "http://gw.example:8083/port-and-status"},
		{name: "port host and status", rd: Redirect{Port: 8083, Hostname: "example.org", StatusCode: 302}, target: "/port-and-host-and-status", info: http80,
			code: 302, loc: "http://example.org:8083/port-and-host-and-status"},

		{name: "scheme", rd: Redirect{Scheme: SchemeHTTPS}, target: "/scheme", info: http80, code: 302, loc: "https://gw.example/scheme"},
		{name: "scheme and host", rd: Redirect{Scheme: SchemeHTTPS, Hostname: "example.org"}, target: "/scheme-and-host", info: http80,
			code: 302, loc: "https://example.org/scheme-and-host"},
		{name: "scheme and status", rd: Redirect{Scheme: SchemeHTTPS, StatusCode: 301}, target: "/scheme-and-status", info: http80,
			code: 301, loc: "https://gw.example/scheme-and-status"},
		{name: "scheme host and status", rd: Redirect{Scheme: SchemeHTTPS, StatusCode: 302, Hostname: "example.org"}, target: "/scheme-and-host-and-status", info: http80,
			code: 302, loc: "https://example.org/scheme-and-host-and-status"},

		{name: "303", rd: Redirect{StatusCode: 303}, method: "POST", target: "/see-other", info: http80, code: 303, loc: "http://gw.example/see-other"},
		{name: "307", rd: Redirect{StatusCode: 307}, target: "/temporary", info: http80, code: 307, loc: "http://gw.example/temporary"},
		{name: "308", rd: Redirect{StatusCode: 308}, target: "/permanent", info: http80, code: 308, loc: "http://gw.example/permanent"},
	})
}

// The conformance test httproute-redirect-port-and-scheme: the spec's
// default-port rules on listeners HTTP/80, HTTP/8080 and HTTPS/443.
func TestRedirectPortAndSchemeConformance(t *testing.T) {
	org := "example.org"
	on80 := http80
	on8080 := RequestInfo{Scheme: SchemeHTTP, ListenerPort: 8080}
	on443 := RequestInfo{Scheme: SchemeHTTPS, ListenerPort: 443}
	runRedirectCases(t, []redirectCase{
		{name: "80/scheme-nil-and-port-nil", rd: Redirect{Hostname: org}, target: "/scheme-nil-and-port-nil", info: on80,
			code: 302, loc: "http://example.org/scheme-nil-and-port-nil"},
		{name: "80/scheme-nil-and-port-80", rd: Redirect{Hostname: org, Port: 80}, target: "/scheme-nil-and-port-80", info: on80,
			code: 302, loc: "http://example.org/scheme-nil-and-port-80"},
		{name: "80/scheme-nil-and-port-8080", rd: Redirect{Hostname: org, Port: 8080}, target: "/scheme-nil-and-port-8080", info: on80,
			code: 302, loc: "http://example.org:8080/scheme-nil-and-port-8080"},
		{name: "80/scheme-https-and-port-nil", rd: Redirect{Hostname: org, Scheme: SchemeHTTPS}, target: "/scheme-https-and-port-nil", info: on80,
			code: 302, loc: "https://example.org/scheme-https-and-port-nil"},
		{name: "80/scheme-https-and-port-443", rd: Redirect{Hostname: org, Scheme: SchemeHTTPS, Port: 443}, target: "/scheme-https-and-port-443", info: on80,
			code: 302, loc: "https://example.org/scheme-https-and-port-443"},
		{name: "80/scheme-https-and-port-8443", rd: Redirect{Hostname: org, Scheme: SchemeHTTPS, Port: 8443}, target: "/scheme-https-and-port-8443", info: on80,
			code: 302, loc: "https://example.org:8443/scheme-https-and-port-8443"},

		{name: "8080/scheme-nil-and-port-nil", rd: Redirect{Hostname: org}, target: "/scheme-nil-and-port-nil", host: "gw.example:8080", info: on8080,
			code: 302, loc: "http://example.org:8080/scheme-nil-and-port-nil"},
		{name: "8080/scheme-nil-and-port-80", rd: Redirect{Hostname: org, Port: 80}, target: "/scheme-nil-and-port-80", host: "gw.example:8080", info: on8080,
			code: 302, loc: "http://example.org/scheme-nil-and-port-80"},
		{name: "8080/scheme-https-and-port-nil", rd: Redirect{Hostname: org, Scheme: SchemeHTTPS}, target: "/scheme-https-and-port-nil", host: "gw.example:8080", info: on8080,
			code: 302, loc: "https://example.org/scheme-https-and-port-nil"},

		{name: "443/scheme-nil-and-port-nil", rd: Redirect{Hostname: org}, target: "/scheme-nil-and-port-nil", host: org, tls: true, info: on443,
			code: 302, loc: "https://example.org/scheme-nil-and-port-nil"},
		{name: "443/scheme-nil-and-port-443", rd: Redirect{Hostname: org, Port: 443}, target: "/scheme-nil-and-port-443", host: org, tls: true, info: on443,
			code: 302, loc: "https://example.org/scheme-nil-and-port-443"},
		{name: "443/scheme-nil-and-port-8443", rd: Redirect{Hostname: org, Port: 8443}, target: "/scheme-nil-and-port-8443", host: org, tls: true, info: on443,
			code: 302, loc: "https://example.org:8443/scheme-nil-and-port-8443"},
		{name: "443/scheme-http-and-port-nil", rd: Redirect{Hostname: org, Scheme: SchemeHTTP}, target: "/scheme-http-and-port-nil", host: org, tls: true, info: on443,
			code: 302, loc: "http://example.org/scheme-http-and-port-nil"},
		{name: "443/scheme-http-and-port-80", rd: Redirect{Hostname: org, Scheme: SchemeHTTP, Port: 80}, target: "/scheme-http-and-port-80", host: org, tls: true, info: on443,
			code: 302, loc: "http://example.org/scheme-http-and-port-80"},
		{name: "443/scheme-http-and-port-8080", rd: Redirect{Hostname: org, Scheme: SchemeHTTP, Port: 8080}, target: "/scheme-http-and-port-8080", host: org, tls: true, info: on443,
			code: 302, loc: "http://example.org:8080/scheme-http-and-port-8080"},
	})
}

// Behaviour the conformance suite does not pin down.
func TestRedirectDetails(t *testing.T) {
	runRedirectCases(t, []redirectCase{
		{name: "query kept", rd: Redirect{Scheme: SchemeHTTPS}, target: "/a?x=1&y=%20z", info: http80,
			code: 302, loc: "https://gw.example/a?x=1&y=%20z"},
		{name: "empty query kept", rd: Redirect{Scheme: SchemeHTTPS}, target: "/a?", info: http80,
			code: 302, loc: "https://gw.example/a?"},
		{name: "Host header port dropped, listener port used", rd: Redirect{}, target: "/a", host: "gw.example:9999", info: RequestInfo{Scheme: SchemeHTTP, ListenerPort: 8080},
			code: 302, loc: "http://gw.example:8080/a"},
		{name: "unknown listener port: Host header port", rd: Redirect{Hostname: "example.org"}, target: "/a", host: "gw.example:9090",
			code: 302, loc: "http://example.org:9090/a"},
		{name: "unknown listener port and no Host port: default", rd: Redirect{Hostname: "example.org"}, target: "/a", host: "gw.example",
			code: 302, loc: "http://example.org/a"},
		{name: "scheme from TLS", rd: Redirect{Hostname: "example.org"}, target: "/a", tls: true,
			code: 302, loc: "https://example.org/a"},
		{name: "https listener on non-default port kept", rd: Redirect{Hostname: "example.org"}, target: "/a", tls: true, info: RequestInfo{ListenerPort: 8443},
			code: 302, loc: "https://example.org:8443/a"},
		{name: "scheme change to http on 8443 uses 80", rd: Redirect{Scheme: SchemeHTTP}, target: "/a", tls: true, info: RequestInfo{ListenerPort: 8443},
			code: 302, loc: "http://gw.example/a"},
		{name: "ipv6 host", rd: Redirect{}, target: "/a", host: "[::1]:8080", info: RequestInfo{Scheme: SchemeHTTP, ListenerPort: 8080},
			code: 302, loc: "http://[::1]:8080/a"},
		{name: "ipv6 host default port", rd: Redirect{Scheme: SchemeHTTPS}, target: "/a", host: "[2001:db8::1]", info: http80,
			code: 302, loc: "https://[2001:db8::1]/a"},
		{name: "escaped path kept", rd: Redirect{Scheme: SchemeHTTPS}, target: "/a%2Fb/c%20d", info: http80,
			code: 302, loc: "https://gw.example/a%2Fb/c%20d"},
		{name: "prefix replace keeps escaped rest", rd: Redirect{Path: prefixPath("/new")}, target: "/old/x%2Fy?q=1", info: RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80, PathPrefix: "/old"},
			code: 302, loc: "http://gw.example/new/x%2Fy?q=1"},
		{name: "prefix matched through escapes", rd: Redirect{Path: prefixPath("/new")}, target: "/%6Fld/x", info: RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80, PathPrefix: "/old"},
			code: 302, loc: "http://gw.example/new/x"},
		{name: "prefix not matching leaves path", rd: Redirect{Path: prefixPath("/new")}, target: "/other/x", info: RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80, PathPrefix: "/old"},
			code: 302, loc: "http://gw.example/other/x"},
		{name: "prefix not on segment boundary leaves path", rd: Redirect{Path: prefixPath("/new")}, target: "/oldest", info: RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80, PathPrefix: "/old"},
			code: 302, loc: "http://gw.example/oldest"},
		{name: "default prefix is /", rd: Redirect{Path: prefixPath("/new")}, target: "/x/y", info: http80,
			code: 302, loc: "http://gw.example/new/x/y"},
		{name: "full path empty means /", rd: Redirect{Path: fullPath("")}, target: "/x/y?z", info: http80,
			code: 302, loc: "http://gw.example/?z"},
		{name: "no Host: relative Location", rd: Redirect{}, target: "/x?y", host: "-", info: http80,
			code: 302, loc: "/x?y"},
	})
}

// The table of HTTPPathModifier.ReplacePrefixMatch in the spec, applied by
// both RequestRedirect and URLRewrite.
var prefixTable = []struct{ path, prefix, repl, want string }{
	{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
	{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
	{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
	{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
	{"/foo", "/foo", "/xyz", "/xyz"},
	{"/foo/", "/foo", "/xyz", "/xyz/"},
	{"/foo/bar", "/foo", "", "/bar"},
	{"/foo/", "/foo", "", "/"},
	{"/foo", "/foo", "", "/"},
	{"/foo/", "/foo", "/", "/"},
	{"/foo", "/foo", "/", "/"},
	// Beyond the table: the rest keeps its slashes, "/" prefixes.
	{"/foo//bar/", "/foo", "/xyz", "/xyz//bar/"},
	{"/", "/", "/xyz", "/xyz/"},
	{"/a/b", "/", "", "/a/b"},
	{"/a/b", "", "/x", "/x/a/b"},
}

func TestReplacePrefixMatchSpecTable(t *testing.T) {
	for _, tc := range prefixTable {
		info := RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80, PathPrefix: tc.prefix}
		t.Run("redirect "+tc.path+" "+tc.prefix+" "+tc.repl, func(t *testing.T) {
			c := mustCompile(t, []Spec{redirectSpec(Redirect{Path: prefixPath(tc.repl)})}, CompileOptions{})
			r := newRequest("GET", tc.path)
			r.Host = "h"
			w := httptest.NewRecorder()
			var st State
			c.Request(w, r, info, &st)
			if got, want := w.Header().Get("Location"), "http://h"+tc.want; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
		})
		t.Run("rewrite "+tc.path+" "+tc.prefix+" "+tc.repl, func(t *testing.T) {
			c := mustCompile(t, []Spec{rewriteSpec(URLRewrite{Path: prefixPath(tc.repl)})}, CompileOptions{})
			r := newRequest("GET", tc.path)
			var st State
			c.Request(httptest.NewRecorder(), r, info, &st)
			if got := r.URL.EscapedPath(); got != tc.want {
				t.Errorf("path = %q, want %q", got, tc.want)
			}
		})
	}
}

// Filters listed after a redirect do not run; response-side filters of the
// chain still decorate the redirect.
func TestRedirectWithResponseModifier(t *testing.T) {
	c := mustCompile(t, []Spec{
		redirectSpec(Redirect{Scheme: SchemeHTTPS}),
		respHeaders(HeaderModifier{Set: []Header{{"X-Redirected", "yes"}}}),
		reqHeaders(HeaderModifier{Set: []Header{{"X-Never", "set"}}}),
	}, CompileOptions{})
	r := newRequest("GET", "/a")
	w := httptest.NewRecorder()
	var st State
	if !c.Request(w, r, http80, &st) {
		t.Fatal("not handled")
	}
	want := http.Header{"Location": {"https://example.com/a"}, "X-Redirected": {"yes"}}
	if diff := cmp.Diff(want, w.Header()); diff != "" {
		t.Errorf("response headers (-want +got):\n%s", diff)
	}
	if r.Header.Get("X-Never") != "" {
		t.Error("request modifier after the redirect ran")
	}
}

func TestSplitHostPort(t *testing.T) {
	tests := []struct{ in, host, port string }{
		{"example.com", "example.com", ""},
		{"example.com:8080", "example.com", "8080"},
		{"[::1]", "::1", ""},
		{"[::1]:443", "::1", "443"},
		{"[::1", "[::1", ""},
		{"::1", "::1", ""},
		{"", "", ""},
		{"h:", "h", ""},
	}
	for _, tc := range tests {
		h, p := splitHostPort(tc.in)
		if h != tc.host || p != tc.port {
			t.Errorf("splitHostPort(%q) = %q, %q; want %q, %q", tc.in, h, p, tc.host, tc.port)
		}
	}
}
