package filters

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Configurations of the conformance test httproute-cors.
var (
	corsMultiple = CORS{
		AllowOrigins:     []string{"https://www.foo.com", "https://*.bar.com"},
		AllowMethods:     []string{"GET", "OPTIONS"},
		AllowHeaders:     []string{"x-header-1", "x-header-2"},
		ExposeHeaders:    []string{"x-header-3", "x-header-4"},
		AllowCredentials: true,
		MaxAge:           3600,
	}
	corsWildcardMethods = CORS{AllowOrigins: []string{"https://www.foo.com"}, AllowMethods: []string{"*"}}
	corsWildcardOrigin  = CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"PUT"}}
	corsWildcardAll     = CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}, AllowCredentials: true}
	corsWildcardUnauth  = CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}
)

type corsCase struct {
	name    string
	cors    CORS
	method  string
	headers []string    // request header pairs
	tls     bool        // client certificate presented
	backend http.Header // upstream response headers, for forwarded requests
	handled bool        // answered by the filter (preflight)
	want    http.Header // the response headers the client sees
}

func runCORSCases(t *testing.T, tests []corsCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, []Spec{corsSpec(tc.cors)}, CompileOptions{})
			r := newRequest(tc.method, "/cors", tc.headers...)
			if tc.tls {
				r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{}}}
			}
			w := httptest.NewRecorder()
			var st State
			handled := c.Request(w, r, RequestInfo{}, &st)
			if handled != tc.handled {
				t.Fatalf("handled = %v, want %v", handled, tc.handled)
			}
			got := w.Header()
			if handled {
				if w.Code != http.StatusNoContent {
					t.Errorf("status = %d, want 204", w.Code)
				}
			} else {
				got = tc.backend
				if got == nil {
					got = http.Header{}
				}
				c.Response(got, &st)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("response headers (-want +got):\n%s", diff)
			}
		})
	}
}

func preflightHeaders(origin, method string, extra ...string) []string {
	return append([]string{"Origin", origin, "access-control-request-method", method}, extra...)
}

// Every case of the conformance test httproute-cors. Where the suite
// accepts several answers, the one this package gives is pinned.
func TestCORSConformance(t *testing.T) {
	reqHdrs := []string{"access-control-request-headers", "x-header-1, x-header-2"}
	runCORSCases(t, []corsCase{
		{name: "preflight exact origin", cors: corsMultiple, method: "OPTIONS",
			headers: preflightHeaders("https://www.foo.com", "GET", reqHdrs...), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://www.foo.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Allow-Methods":     {"GET, OPTIONS"},
				"Access-Control-Allow-Headers":     {"x-header-1, x-header-2"},
				"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
				"Access-Control-Max-Age":           {"3600"},
			}},
		{name: "preflight wildcard origin", cors: corsMultiple, method: "OPTIONS",
			headers: preflightHeaders("https://www.bar.com", "GET", reqHdrs...), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://www.bar.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Allow-Methods":     {"GET, OPTIONS"},
				"Access-Control-Allow-Headers":     {"x-header-1, x-header-2"},
				"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
				"Access-Control-Max-Age":           {"3600"},
			}},
		{name: "preflight wildcard spans labels", cors: corsMultiple, method: "OPTIONS",
			headers: preflightHeaders("https://xpto.www.bar.com", "GET", reqHdrs...), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://xpto.www.bar.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Allow-Methods":     {"GET, OPTIONS"},
				"Access-Control-Allow-Headers":     {"x-header-1, x-header-2"},
				"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
				"Access-Control-Max-Age":           {"3600"},
			}},
		{name: "preflight non-matching origin", cors: corsMultiple, method: "OPTIONS",
			headers: preflightHeaders("https://foobar.com", "GET"), handled: true,
			want: http.Header{}},
		{name: "simple exact origin", cors: corsMultiple, method: "GET",
			headers: preflightHeaders("https://www.foo.com", "GET", reqHdrs...),
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://www.foo.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
			}},
		{name: "simple wildcard origin", cors: corsMultiple, method: "GET",
			headers: preflightHeaders("https://www.bar.com", "GET", reqHdrs...),
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://www.bar.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
			}},
		{name: "simple non-matching origin", cors: corsMultiple, method: "GET",
			headers: preflightHeaders("https://foobar.com", "GET"),
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "preflight POST with wildcard methods", cors: corsWildcardMethods, method: "OPTIONS",
			headers: preflightHeaders("https://www.foo.com", "POST"), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":  {"https://www.foo.com"},
				"Vary":                         {"Origin"},
				"Access-Control-Allow-Methods": {"POST"},
				"Access-Control-Max-Age":       {"5"},
			}},
		{name: "preflight wildcard origin", cors: corsWildcardOrigin, method: "OPTIONS",
			headers: preflightHeaders("https://foobar.com", "PUT"), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":  {"*"},
				"Access-Control-Allow-Methods": {"PUT"},
				"Access-Control-Max-Age":       {"5"},
			}},
		{name: "preflight wildcard origin with port", cors: corsWildcardOrigin, method: "OPTIONS",
			headers: preflightHeaders("https://foobar.com:12345", "PUT"), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":  {"*"},
				"Access-Control-Allow-Methods": {"PUT"},
				"Access-Control-Max-Age":       {"5"},
			}},
		{name: "request wildcard origin with port", cors: corsWildcardOrigin, method: "PUT",
			headers: []string{"Origin", "https://foobar.com:12345"},
			want:    http.Header{"Access-Control-Allow-Origin": {"*"}}},
		{name: "simple wildcard origin", cors: corsWildcardOrigin, method: "PUT",
			headers: []string{"Origin", "https://foobar.com"},
			want:    http.Header{"Access-Control-Allow-Origin": {"*"}}},
		{name: "preflight wildcards with credentials echo", cors: corsWildcardAll, method: "OPTIONS",
			headers: preflightHeaders("https://other.foo.com", "PUT", reqHdrs...), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://other.foo.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Allow-Methods":     {"PUT"},
				"Access-Control-Allow-Headers":     {"x-header-1, x-header-2"},
				"Access-Control-Max-Age":           {"5"},
			}},
		{name: "preflight wildcards without credentials", cors: corsWildcardUnauth, method: "OPTIONS",
			headers: preflightHeaders("https://other.foo.com", "PUT", reqHdrs...), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":  {"*"},
				"Access-Control-Allow-Methods": {"PUT"},
				"Access-Control-Allow-Headers": {"x-header-1, x-header-2"},
				"Access-Control-Max-Age":       {"5"},
			}},
		{name: "request with credentials allowed", cors: corsWildcardAll, method: "GET",
			headers: []string{"Origin", "https://other.foo.com"},
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://other.foo.com"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
			}},
		{name: "request without credentials allowed", cors: corsWildcardUnauth, method: "GET",
			headers: []string{"Origin", "https://other.foo.com"},
			want:    http.Header{"Access-Control-Allow-Origin": {"*"}}},
	})
}

// The examples of GEP-1767 and behaviour the suite does not pin down.
func TestCORSDetails(t *testing.T) {
	gepComplex := CORS{
		AllowOrigins:     []string{"https://foo.example", "http://foo.example"},
		AllowCredentials: true,
		AllowMethods:     []string{"GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"},
		AllowHeaders:     []string{"DNT", "X-CustomHeader", "Keep-Alive", "User-Agent", "X-Requested-With", "If-Modified-Since", "Cache-Control", "Content-Type", "Authorization"},
		ExposeHeaders:    []string{"Content-Security-Policy"},
		MaxAge:           1728000,
	}
	gepSimple := CORS{
		AllowOrigins: []string{"*"},
		AllowMethods: []string{"GET", "HEAD", "POST"},
		AllowHeaders: []string{"Accept", "Accept-Language", "Content-Language", "Content-Type", "Range"},
	}
	exposeAll := CORS{AllowOrigins: []string{"https://app.example"}, ExposeHeaders: []string{"*"}}
	exposeAllCreds := CORS{AllowOrigins: []string{"https://app.example"}, ExposeHeaders: []string{"*"}, AllowCredentials: true}
	specific := CORS{AllowOrigins: []string{"https://app.example", "http://local.example:8080"}}
	reqWithAuth := hdr("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
	runCORSCases(t, []corsCase{
		{name: "gep complex preflight", cors: gepComplex, method: "OPTIONS",
			headers: preflightHeaders("https://foo.example", "PUT"), handled: true,
			want: http.Header{
				"Access-Control-Allow-Origin":      {"https://foo.example"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Allow-Methods":     {"GET, PUT, POST, DELETE, PATCH, OPTIONS"},
				"Access-Control-Allow-Headers":     {"DNT, X-CustomHeader, Keep-Alive, User-Agent, X-Requested-With, If-Modified-Since, Cache-Control, Content-Type, Authorization"},
				"Access-Control-Expose-Headers":    {"Content-Security-Policy"},
				"Access-Control-Max-Age":           {"1728000"},
			}},
		{name: "gep complex actual request with credentials", cors: gepComplex, method: "PUT",
			headers: []string{"Origin", "https://foo.example", "Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Cookie", "a=b"},
			backend: hdr("Content-Type", "text/plain"),
			want: http.Header{
				"Content-Type":                     {"text/plain"},
				"Access-Control-Allow-Origin":      {"https://foo.example"},
				"Vary":                             {"Origin"},
				"Access-Control-Allow-Credentials": {"true"},
				"Access-Control-Expose-Headers":    {"Content-Security-Policy"},
			}},
		{name: "gep simple", cors: gepSimple, method: "GET", headers: []string{"Origin", "https://foo.example"},
			want: http.Header{"Access-Control-Allow-Origin": {"*"}}},
		{name: "no Origin: response untouched", cors: specific, method: "GET",
			backend: hdr("Access-Control-Allow-Origin", "https://upstream.example"),
			want:    http.Header{"Access-Control-Allow-Origin": {"https://upstream.example"}}},
		{name: "OPTIONS without request method is forwarded", cors: specific, method: "OPTIONS",
			headers: []string{"Origin", "https://app.example"},
			want:    http.Header{"Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"Origin"}}},
		{name: "preflight without Origin is forwarded", cors: specific, method: "OPTIONS",
			headers: []string{"Access-Control-Request-Method", "PUT"},
			want:    http.Header{}},
		{name: "upstream CORS headers replaced", cors: specific, method: "GET",
			headers: []string{"Origin", "https://app.example"},
			backend: hdr("Access-Control-Allow-Origin", "*", "Access-Control-Allow-Credentials", "true", "Access-Control-Expose-Headers", "X-Secret"),
			want:    http.Header{"Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"Origin"}}},
		{name: "upstream CORS headers removed for other origins", cors: specific, method: "GET",
			headers: []string{"Origin", "https://evil.example"},
			backend: hdr("Access-Control-Allow-Origin", "*", "Vary", "Accept-Encoding"),
			want:    http.Header{"Vary": {"Accept-Encoding", "Origin"}}},
		{name: "Vary already lists Origin", cors: specific, method: "GET",
			headers: []string{"Origin", "https://app.example"},
			backend: hdr("Vary", "accept-encoding, origin"),
			want:    http.Header{"Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"accept-encoding, origin"}}},
		{name: "explicit default port matches", cors: specific, method: "GET",
			headers: []string{"Origin", "https://app.example:443"},
			want:    http.Header{"Access-Control-Allow-Origin": {"https://app.example:443"}, "Vary": {"Origin"}}},
		{name: "configured port matches", cors: specific, method: "GET",
			headers: []string{"Origin", "http://local.example:8080"},
			want:    http.Header{"Access-Control-Allow-Origin": {"http://local.example:8080"}, "Vary": {"Origin"}}},
		{name: "other port does not match", cors: specific, method: "GET",
			headers: []string{"Origin", "http://local.example"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "other scheme does not match", cors: specific, method: "GET",
			headers: []string{"Origin", "http://app.example"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "case-insensitive origin", cors: specific, method: "GET",
			headers: []string{"Origin", "HTTPS://APP.Example"},
			want:    http.Header{"Access-Control-Allow-Origin": {"HTTPS://APP.Example"}, "Vary": {"Origin"}}},
		{name: "origin with path does not match", cors: specific, method: "GET",
			headers: []string{"Origin", "https://app.example/x"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "wildcard needs a label", cors: corsMultiple, method: "GET",
			headers: []string{"Origin", "https://bar.com"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "wildcard keeps the scheme", cors: corsMultiple, method: "GET",
			headers: []string{"Origin", "http://www.bar.com"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "null origin never echoed", cors: corsWildcardAll, method: "GET",
			headers: []string{"Origin", "null"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "null origin gets * without credentials", cors: corsWildcardUnauth, method: "GET",
			headers: []string{"Origin", "null"},
			want:    http.Header{"Access-Control-Allow-Origin": {"*"}}},
		{name: "cookie request to a route without credentials gets nothing", cors: specific, method: "GET",
			headers: []string{"Origin", "https://app.example", "Cookie", "s=1"},
			want:    http.Header{"Vary": {"Origin"}}},
		{name: "client certificate counts as credentials", cors: corsWildcardUnauth, method: "GET",
			headers: []string{"Origin", "https://app.example"}, tls: true,
			want: http.Header{}},
		{name: "Authorization alone is not a credential", cors: corsWildcardUnauth, method: "GET",
			headers: []string{"Origin", "https://app.example", "Authorization", reqWithAuth.Get("Authorization")},
			want:    http.Header{"Access-Control-Allow-Origin": {"*"}}},
		{name: "expose * without credentials", cors: exposeAll, method: "GET",
			headers: []string{"Origin", "https://app.example"}, backend: hdr("X-Custom", "1"),
			want: http.Header{"X-Custom": {"1"}, "Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"Origin"},
				"Access-Control-Expose-Headers": {"*"}}},
		{name: "expose * with credentials lists the response headers", cors: exposeAllCreds, method: "GET",
			headers: []string{"Origin", "https://app.example", "Cookie", "a=b"},
			backend: hdr("X-Custom", "1", "Content-Type", "text/plain", "Kuma-Revision", "3", "Set-Cookie", "c=d"),
			want: http.Header{"X-Custom": {"1"}, "Content-Type": {"text/plain"}, "Kuma-Revision": {"3"}, "Set-Cookie": {"c=d"},
				"Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"Origin"},
				"Access-Control-Allow-Credentials": {"true"}, "Access-Control-Expose-Headers": {"Kuma-Revision, X-Custom"}}},
		{name: "preflight expose * with credentials omitted", cors: exposeAllCreds, method: "OPTIONS",
			headers: preflightHeaders("https://app.example", "GET"), handled: true,
			want: http.Header{"Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"Origin"},
				"Access-Control-Allow-Credentials": {"true"}, "Access-Control-Max-Age": {"5"}}},
		{name: "preflight wildcard headers without request headers", cors: corsWildcardAll, method: "OPTIONS",
			headers: preflightHeaders("https://app.example", "DELETE"), handled: true,
			want: http.Header{"Access-Control-Allow-Origin": {"https://app.example"}, "Vary": {"Origin"},
				"Access-Control-Allow-Credentials": {"true"}, "Access-Control-Allow-Methods": {"DELETE"}, "Access-Control-Max-Age": {"5"}}},
	})
}

// A preflight is answered even when the route has other filters after CORS,
// and the response modifier of the rule decorates the answer.
func TestCORSPreflightInChain(t *testing.T) {
	c := mustCompile(t, []Spec{
		corsSpec(corsWildcardOrigin),
		reqHeaders(HeaderModifier{Set: []Header{{"X-Forwarded-By", "gw"}}}),
		respHeaders(HeaderModifier{Set: []Header{{"X-Gateway", "rauta"}}}),
	}, CompileOptions{})
	r := newRequest("OPTIONS", "/x", preflightHeaders("https://a.example", "PUT")...)
	w := httptest.NewRecorder()
	var st State
	if !c.Request(w, r, RequestInfo{}, &st) {
		t.Fatal("preflight not answered")
	}
	want := http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Allow-Methods": {"PUT"},
		"Access-Control-Max-Age": {"5"}, "X-Gateway": {"rauta"}}
	if diff := cmp.Diff(want, w.Header()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if r.Header.Get("X-Forwarded-By") != "" {
		t.Error("filters after the preflight answer ran")
	}
}
