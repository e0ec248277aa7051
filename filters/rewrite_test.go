package filters

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Header modifier used with rewrites in the conformance tests.
var rewriteHeaders = reqHeaders(HeaderModifier{
	Set:    []Header{{"X-Header-Set", "set-overwrites-values"}},
	Add:    []Header{{"X-Header-Add", "header-val-1"}, {"X-Header-Add-Append", "header-val-2"}},
	Remove: []string{"X-Header-Remove"},
})

// outgoing is what a rewrite leaves in the request.
type outgoing struct {
	Host    string
	Path    string // escaped
	RawPath string
	Query   string
	Header  http.Header
}

// The conformance tests httproute-rewrite-path and httproute-rewrite-host.
func TestURLRewriteConformance(t *testing.T) {
	modifiedHeaders := hdr("X-Header-Add", "header-val-1", "X-Header-Add-Append", "append-val-1",
		"X-Header-Add-Append", "header-val-2", "X-Header-Set", "set-overwrites-values")
	tests := []struct {
		name   string
		specs  []Spec
		prefix string
		target string
		host   string
		in     http.Header
		want   outgoing
	}{
		{name: "prefix", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/one")})}, prefix: "/prefix/one",
			target: "/prefix/one/two", want: outgoing{Host: "gw.example", Path: "/one/two", Header: hdr()}},
		{name: "strip prefix", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/")})}, prefix: "/strip-prefix",
			target: "/strip-prefix/three", want: outgoing{Host: "gw.example", Path: "/three", Header: hdr()}},
		{name: "strip whole prefix", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/")})}, prefix: "/strip-prefix",
			target: "/strip-prefix", want: outgoing{Host: "gw.example", Path: "/", Header: hdr()}},
		{name: "full", specs: []Spec{rewriteSpec(URLRewrite{Path: fullPath("/one")})}, prefix: "/full/one",
			target: "/full/one/two", want: outgoing{Host: "gw.example", Path: "/one", Header: hdr()}},
		{name: "full and headers", specs: []Spec{rewriteSpec(URLRewrite{Path: fullPath("/test")}), rewriteHeaders},
			prefix: "/full/rewrite-path-and-modify-headers", target: "/full/rewrite-path-and-modify-headers/test",
			in:   hdr("X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1", "X-Header-Set", "set-val"),
			want: outgoing{Host: "gw.example", Path: "/test", Header: modifiedHeaders}},
		{name: "prefix and headers", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/prefix")}), rewriteHeaders},
			prefix: "/prefix/rewrite-path-and-modify-headers", target: "/prefix/rewrite-path-and-modify-headers/one",
			in:   hdr("X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1", "X-Header-Set", "set-val"),
			want: outgoing{Host: "gw.example", Path: "/prefix/one", Header: modifiedHeaders}},

		{name: "host", specs: []Spec{rewriteSpec(URLRewrite{Hostname: "one.example.org"})}, prefix: "/one",
			target: "/one", host: "rewrite.example", want: outgoing{Host: "one.example.org", Path: "/one", Header: hdr()}},
		{name: "host without matches", specs: []Spec{rewriteSpec(URLRewrite{Hostname: "example.org"})},
			target: "/two", host: "rewrite.example", want: outgoing{Host: "example.org", Path: "/two", Header: hdr()}},
		{name: "host and headers", specs: []Spec{rewriteSpec(URLRewrite{Hostname: "test.example.org"}), rewriteHeaders},
			prefix: "/rewrite-host-and-modify-headers", target: "/rewrite-host-and-modify-headers", host: "rewrite.example",
			in: hdr("X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1"),
			want: outgoing{Host: "test.example.org", Path: "/rewrite-host-and-modify-headers",
				Header: hdr("X-Header-Add", "header-val-1", "X-Header-Add-Append", "append-val-1",
					"X-Header-Add-Append", "header-val-2", "X-Header-Set", "set-overwrites-values")}},

		// Beyond the suite.
		{name: "host with port replaced whole", specs: []Spec{rewriteSpec(URLRewrite{Hostname: "b.example"})},
			target: "/x", host: "a.example:8080", want: outgoing{Host: "b.example", Path: "/x", Header: hdr()}},
		{name: "query kept", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/v2")})}, prefix: "/v1",
			target: "/v1/items?id=7&x=%20", want: outgoing{Host: "gw.example", Path: "/v2/items", Query: "id=7&x=%20", Header: hdr()}},
		{name: "escaped rest kept", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/v2")})}, prefix: "/v1",
			target: "/v1/a%2Fb%20c", want: outgoing{Host: "gw.example", Path: "/v2/a%2Fb%20c", RawPath: "/v2/a%2Fb%20c", Header: hdr()}},
		{name: "escaped replacement", specs: []Spec{rewriteSpec(URLRewrite{Path: fullPath("/caf%C3%A9/x%2Fy")})},
			target: "/z", want: outgoing{Host: "gw.example", Path: "/caf%C3%A9/x%2Fy", RawPath: "/caf%C3%A9/x%2Fy", Header: hdr()}},
		{name: "sub-delims kept verbatim", specs: []Spec{rewriteSpec(URLRewrite{Path: fullPath("/a!b(c)*")})},
			target: "/z", want: outgoing{Host: "gw.example", Path: "/a!b(c)*", RawPath: "/a!b(c)*", Header: hdr()}},
		{name: "prefix mismatch leaves path", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/v2")})}, prefix: "/v1",
			target: "/v10/x", want: outgoing{Host: "gw.example", Path: "/v10/x", Header: hdr()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, tc.specs, CompileOptions{})
			r := newRequest("GET", tc.target)
			r.Host = "gw.example"
			if tc.host != "" {
				r.Host = tc.host
			}
			if tc.in != nil {
				r.Header = tc.in
			}
			var st State
			if c.Request(httptest.NewRecorder(), r, RequestInfo{PathPrefix: tc.prefix}, &st) {
				t.Fatal("handled")
			}
			got := outgoing{Host: r.Host, Path: r.URL.EscapedPath(), RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Header: r.Header}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The URL must stay self-consistent: re-parsing the request
			// URI it describes gives the same path.
			if u := r.URL.RequestURI(); u == "" || u[0] != '/' {
				t.Errorf("RequestURI() = %q", u)
			}
		})
	}
}

func TestSetURLPathDecodes(t *testing.T) {
	r := newRequest("GET", "/old")
	setURLPath(r.URL, "/a%20b", "/c%2Fd")
	if r.URL.Path != "/a b/c/d" || r.URL.RawPath != "/a%20b/c%2Fd" || r.URL.EscapedPath() != "/a%20b/c%2Fd" {
		t.Errorf("Path %q RawPath %q EscapedPath %q", r.URL.Path, r.URL.RawPath, r.URL.EscapedPath())
	}
	setURLPath(r.URL, "/plain", "")
	if r.URL.Path != "/plain" || r.URL.RawPath != "" {
		t.Errorf("Path %q RawPath %q", r.URL.Path, r.URL.RawPath)
	}
}
