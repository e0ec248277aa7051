package filters

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Modifier configurations of the conformance tests
// httproute-request-header-modifier and httproute-response-header-modifier.
var (
	modSet = HeaderModifier{Set: []Header{{"X-Header-Set", "set-overwrites-values"}}}
	modAdd = HeaderModifier{Add: []Header{{"X-Header-Add", "add-appends-values"}}}
	modRem = HeaderModifier{Remove: []string{"X-Header-Remove"}}
	modMul = HeaderModifier{
		Set:    []Header{{"X-Header-Set-1", "header-set-1"}, {"X-Header-Set-2", "header-set-2"}},
		Add:    []Header{{"X-Header-Add-1", "header-add-1"}, {"X-Header-Add-2", "header-add-2"}, {"X-Header-Add-3", "header-add-3"}},
		Remove: []string{"X-Header-Remove-1", "X-Header-Remove-2"},
	}
	modCase = HeaderModifier{
		Set:    []Header{{"X-Header-Set", "header-set"}},
		Add:    []Header{{"X-Header-Add", "header-add"}},
		Remove: []string{"X-Header-Remove"},
	}
	modCaseResp = HeaderModifier{
		Set: []Header{{"X-Header-Set", "header-set"}},
		Add: []Header{
			{"X-Header-Add", "header-add"},
			{"x-lowercase-add", "lowercase-add"},
			{"x-Mixedcase-ADD-1", "mixedcase-add-1"},
			{"X-mixeDcase-add-2", "mixedcase-add-2"},
			{"X-UPPERCASE-ADD", "uppercase-add"},
		},
		Remove: []string{"X-Header-Remove"},
	}
)

// The conformance suite joins multiple values with ","; here they are the
// separate values net/http keeps.
func TestRequestHeaderModifierConformance(t *testing.T) {
	tests := []struct {
		name string
		mod  HeaderModifier
		in   http.Header
		want http.Header
	}{
		{"set absent", modSet, hdr("Some-Other-Header", "val"),
			hdr("Some-Other-Header", "val", "X-Header-Set", "set-overwrites-values")},
		{"set present", modSet, hdr("Some-Other-Header", "val", "X-Header-Set", "some-other-value"),
			hdr("Some-Other-Header", "val", "X-Header-Set", "set-overwrites-values")},
		{"set replaces every value", modSet, hdr("X-Header-Set", "a", "X-Header-Set", "b"),
			hdr("X-Header-Set", "set-overwrites-values")},
		{"add absent", modAdd, hdr("Some-Other-Header", "val"),
			hdr("Some-Other-Header", "val", "X-Header-Add", "add-appends-values")},
		{"add present", modAdd, hdr("Some-Other-Header", "val", "X-Header-Add", "some-other-value"),
			hdr("Some-Other-Header", "val", "X-Header-Add", "some-other-value", "X-Header-Add", "add-appends-values")},
		{"add keeps multiple values", modAdd, hdr("X-Header-Add", "a", "X-Header-Add", "b"),
			hdr("X-Header-Add", "a", "X-Header-Add", "b", "X-Header-Add", "add-appends-values")},
		{"remove", modRem, hdr("X-Header-Remove", "val"), hdr()},
		{"remove every value", modRem, hdr("X-Header-Remove", "a", "X-Header-Remove", "b", "Keep", "k"), hdr("Keep", "k")},
		{"remove absent", modRem, hdr("Keep", "k"), hdr("Keep", "k")},
		{"multiple", modMul,
			hdr("X-Header-Set-2", "set-val-2", "X-Header-Add-2", "add-val-2", "X-Header-Remove-2", "remove-val-2", "Another-Header", "another-header-val"),
			hdr("X-Header-Set-1", "header-set-1", "X-Header-Set-2", "header-set-2",
				"X-Header-Add-1", "header-add-1", "X-Header-Add-2", "add-val-2", "X-Header-Add-2", "header-add-2",
				"X-Header-Add-3", "header-add-3", "Another-Header", "another-header-val")},
		{"case insensitivity", modCase,
			// http.Header.Add canonicalizes "x-header-set" as the server does.
			hdr("x-header-set", "original-val-set", "x-header-add", "original-val-add", "x-header-remove", "original-val-remove", "Another-Header", "another-header-val"),
			hdr("X-Header-Set", "header-set", "X-Header-Add", "original-val-add", "X-Header-Add", "header-add", "Another-Header", "another-header-val")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, []Spec{reqHeaders(tc.mod)}, CompileOptions{})
			r := newRequest("GET", "/set")
			r.Header = tc.in
			var st State
			if c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st) {
				t.Fatal("Request handled the request")
			}
			if diff := cmp.Diff(tc.want, r.Header); diff != "" {
				t.Errorf("request headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResponseHeaderModifierConformance(t *testing.T) {
	tests := []struct {
		name    string
		mod     HeaderModifier
		backend http.Header
		want    http.Header
	}{
		{"set absent", modSet, hdr("Some-Other-Header", "val"),
			hdr("Some-Other-Header", "val", "X-Header-Set", "set-overwrites-values")},
		{"set present", modSet, hdr("Some-Other-Header", "val", "X-Header-Set", "some-other-value"),
			hdr("Some-Other-Header", "val", "X-Header-Set", "set-overwrites-values")},
		{"add absent", modAdd, hdr("Some-Other-Header", "val"),
			hdr("Some-Other-Header", "val", "X-Header-Add", "add-appends-values")},
		{"add present", modAdd, hdr("Some-Other-Header", "val", "X-Header-Add", "some-other-value"),
			hdr("Some-Other-Header", "val", "X-Header-Add", "some-other-value", "X-Header-Add", "add-appends-values")},
		{"remove", modRem, hdr("X-Header-Remove", "val"), hdr()},
		{"multiple", modMul,
			hdr("X-Header-Set-2", "set-val-2", "X-Header-Add-2", "add-val-2", "X-Header-Remove-2", "remove-val-2", "Another-Header", "another-header-val", "X-Header-Remove-1", "val"),
			hdr("X-Header-Set-1", "header-set-1", "X-Header-Set-2", "header-set-2",
				"X-Header-Add-1", "header-add-1", "X-Header-Add-2", "add-val-2", "X-Header-Add-2", "header-add-2",
				"X-Header-Add-3", "header-add-3", "Another-Header", "another-header-val")},
		{"case insensitivity", modCaseResp,
			hdr("x-header-set", "original-val-set", "x-header-add", "original-val-add", "x-header-remove", "original-val-remove", "Another-Header", "another-header-val"),
			hdr("X-Header-Set", "header-set", "X-Header-Add", "original-val-add", "X-Header-Add", "header-add",
				"X-Lowercase-Add", "lowercase-add", "X-Mixedcase-Add-1", "mixedcase-add-1",
				"X-Mixedcase-Add-2", "mixedcase-add-2", "X-Uppercase-Add", "uppercase-add",
				"Another-Header", "another-header-val")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustCompile(t, []Spec{respHeaders(tc.mod)}, CompileOptions{})
			r := newRequest("GET", "/set", "X-Untouched", "1")
			var st State
			if c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st) {
				t.Fatal("Request handled the request")
			}
			if diff := cmp.Diff(hdr("X-Untouched", "1"), r.Header); diff != "" {
				t.Errorf("a response modifier changed the request (-want +got):\n%s", diff)
			}
			h := tc.backend
			c.Response(h, &st)
			if diff := cmp.Diff(tc.want, h); diff != "" {
				t.Errorf("response headers (-want +got):\n%s", diff)
			}
		})
	}
}

// The conformance case /response-and-request-header-modifiers: both
// modifiers on one rule act on their own side only.
func TestRequestAndResponseModifiers(t *testing.T) {
	c := mustCompile(t, []Spec{
		respHeaders(HeaderModifier{
			Set:    []Header{{"X-Header-Set-1", "header-set-1"}, {"X-Header-Set-2", "header-set-2"}},
			Add:    []Header{{"X-Header-Add-1", "header-add-1"}, {"X-Header-Add-2", "header-add-2"}},
			Remove: []string{"X-Header-Remove-1", "X-Header-Remove-2"},
		}),
		reqHeaders(HeaderModifier{
			Set:    []Header{{"X-Header-Set", "set-overwrites-values"}},
			Add:    []Header{{"X-Header-Add", "header-val-1"}, {"X-Header-Add-Append", "header-val-2"}},
			Remove: []string{"X-Header-Remove"},
		}),
	}, CompileOptions{})
	r := newRequest("GET", "/response-and-request-header-modifiers",
		"X-Header-Remove", "remove-val", "X-Header-Add-Append", "append-val-1", "X-Header-Echo", "echo")
	var st State
	c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
	wantReq := hdr("X-Header-Add", "header-val-1", "X-Header-Set", "set-overwrites-values",
		"X-Header-Add-Append", "append-val-1", "X-Header-Add-Append", "header-val-2", "X-Header-Echo", "echo")
	if diff := cmp.Diff(wantReq, r.Header); diff != "" {
		t.Errorf("request headers (-want +got):\n%s", diff)
	}
	resp := hdr("X-Header-Set-2", "set-val-2", "X-Header-Add-2", "add-val-2", "X-Header-Remove-2", "remove-val-2",
		"Another-Header", "another-header-val", "X-Header-Remove-1", "remove-val-1", "X-Header-Echo", "echo")
	c.Response(resp, &st)
	wantResp := hdr("X-Header-Set-1", "header-set-1", "X-Header-Set-2", "header-set-2", "X-Header-Add-1", "header-add-1",
		"X-Header-Add-2", "add-val-2", "X-Header-Add-2", "header-add-2", "Another-Header", "another-header-val", "X-Header-Echo", "echo")
	if diff := cmp.Diff(wantResp, resp); diff != "" {
		t.Errorf("response headers (-want +got):\n%s", diff)
	}
}

func TestHeaderModifierHost(t *testing.T) {
	c := mustCompile(t, []Spec{reqHeaders(HeaderModifier{Set: []Header{{"host", "backend.internal"}}})}, CompileOptions{})
	r := newRequest("GET", "http://front.example/x")
	var st State
	c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
	if r.Host != "backend.internal" {
		t.Errorf("r.Host = %q, want backend.internal", r.Host)
	}
	if _, ok := r.Header["Host"]; ok {
		t.Errorf("Host ended up in r.Header: %v", r.Header)
	}
}

// Values installed by the chain are shared between requests; appending to
// them later must not leak into the next request.
func TestHeaderValuesSharedSafely(t *testing.T) {
	c := mustCompile(t, []Spec{reqHeaders(HeaderModifier{
		Set: []Header{{"X-S", "s"}},
		Add: []Header{{"X-A", "a"}},
	})}, CompileOptions{})
	for i := range 3 {
		r := newRequest("GET", "/")
		var st State
		c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
		want := hdr("X-S", "s", "X-A", "a")
		if diff := cmp.Diff(want, r.Header); diff != "" {
			t.Fatalf("request %d (-want +got):\n%s", i, diff)
		}
		r.Header.Add("X-S", "later")
		r.Header.Add("X-A", "later")
	}
}

func TestChainNilAndEmpty(t *testing.T) {
	var nilChain *Chain
	empty := mustCompile(t, nil, CompileOptions{})
	for name, c := range map[string]*Chain{"nil": nilChain, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			r := newRequest("GET", "/a?b=c", "X", "1")
			var st State
			if c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st) {
				t.Fatal("handled")
			}
			h := hdr("Y", "2")
			c.Response(h, &st)
			if diff := cmp.Diff(hdr("Y", "2"), h); diff != "" {
				t.Errorf("response changed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(hdr("X", "1"), r.Header); diff != "" {
				t.Errorf("request changed (-want +got):\n%s", diff)
			}
			if c.Len() != 0 {
				t.Errorf("Len = %d", c.Len())
			}
		})
	}
}

// The Input/Config/Output examples of the HTTPHeaderFilter documentation.
// Add keeps the existing value and appends the configured one as another
// field line; joined as one line they read "foo,bar,baz" as in the spec.
func TestHeaderFilterSpecExamples(t *testing.T) {
	tests := []struct {
		name string
		mod  HeaderModifier
		in   http.Header
		want map[string]string // header -> values joined with ","
	}{
		{"set", HeaderModifier{Set: []Header{{"my-header", "bar"}}}, hdr("my-header", "foo"),
			map[string]string{"My-Header": "bar"}},
		{"add", HeaderModifier{Add: []Header{{"my-header", "bar,baz"}}}, hdr("my-header", "foo"),
			map[string]string{"My-Header": "foo,bar,baz"}},
		{"remove", HeaderModifier{Remove: []string{"my-header1", "my-header3"}},
			hdr("my-header1", "foo", "my-header2", "bar", "my-header3", "baz"),
			map[string]string{"My-Header2": "bar"}},
	}
	for _, tc := range tests {
		for _, side := range []string{"request", "response"} {
			t.Run(tc.name+" "+side, func(t *testing.T) {
				spec := reqHeaders(tc.mod)
				if side == "response" {
					spec = respHeaders(tc.mod)
				}
				c := mustCompile(t, []Spec{spec}, CompileOptions{})
				h := tc.in.Clone()
				r := newRequest("GET", "/foo")
				var st State
				if side == "request" {
					r.Header = h
				}
				c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
				c.Response(h, &st)
				got := map[string]string{}
				for k, v := range h {
					got[k] = strings.Join(v, ",")
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}
