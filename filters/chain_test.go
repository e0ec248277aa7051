package filters

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Filters on a rule and on the chosen backendRef: two chains, each with its
// own State, requests through the rule's chain first, responses through the
// backendRef's chain first.
func TestRuleAndBackendRefChains(t *testing.T) {
	rule := mustCompile(t, []Spec{
		reqHeaders(HeaderModifier{Set: []Header{{"X-Rule", "1"}}, Add: []Header{{"X-Path", "rule"}}}),
		respHeaders(HeaderModifier{Add: []Header{{"X-Resp", "rule"}}}),
		corsSpec(CORS{AllowOrigins: []string{"https://app.example"}}),
	}, CompileOptions{})
	backendRef := mustCompile(t, []Spec{
		reqHeaders(HeaderModifier{Add: []Header{{"X-Path", "backend"}}}),
		respHeaders(HeaderModifier{Add: []Header{{"X-Resp", "backend"}}}),
		rewriteSpec(URLRewrite{Hostname: "v2.internal"}),
	}, CompileOptions{})

	r := newRequest("GET", "/x", "Origin", "https://app.example")
	w := httptest.NewRecorder()
	var ruleSt, backendSt State
	if rule.Request(w, r, RequestInfo{}, &ruleSt) || backendRef.Request(w, r, RequestInfo{}, &backendSt) {
		t.Fatal("handled")
	}
	wantReq := hdr("Origin", "https://app.example", "X-Rule", "1", "X-Path", "rule", "X-Path", "backend")
	if diff := cmp.Diff(wantReq, r.Header); diff != "" || r.Host != "v2.internal" {
		t.Errorf("request host %q headers (-want +got):\n%s", r.Host, diff)
	}
	h := http.Header{}
	backendRef.Response(h, &backendSt)
	rule.Response(h, &ruleSt)
	want := http.Header{
		"X-Resp":                      {"backend", "rule"},
		"Access-Control-Allow-Origin": {"https://app.example"},
		"Vary":                        {"Origin"},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

// A State carries nothing over from one request to the next.
func TestStateReset(t *testing.T) {
	c := mustCompile(t, []Spec{corsSpec(CORS{AllowOrigins: []string{"https://app.example"}})}, CompileOptions{})
	var st State
	c.Request(httptest.NewRecorder(), newRequest("GET", "/", "Origin", "https://app.example"), RequestInfo{}, &st)
	c.Request(httptest.NewRecorder(), newRequest("GET", "/"), RequestInfo{}, &st)
	h := http.Header{}
	c.Response(h, &st)
	if len(h) != 0 {
		t.Errorf("CORS headers leaked into a request without Origin: %v", h)
	}
}
