package filters

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type noopFilter struct{}

func (noopFilter) Request(http.ResponseWriter, *http.Request, RequestInfo) bool { return false }
func (noopFilter) Response(http.Header, *http.Request)                          {}

// tagFilter marks requests and responses, or rejects requests without a
// token when guard is set.
type tagFilter struct {
	name      string
	guard     bool
	responses *atomic.Int32
}

func (f tagFilter) Request(w http.ResponseWriter, r *http.Request, info RequestInfo) bool {
	if f.guard && r.Header.Get("X-Token") == "" {
		w.Header().Set("X-Rejected-By", f.name)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	r.Header.Add("X-Seen-By", f.name+" "+info.PathPrefix)
	return false
}

func (f tagFilter) Response(h http.Header, r *http.Request) {
	f.responses.Add(1)
	h.Add("X-Answered-By", f.name+" for "+r.URL.Path)
}

func newTestRegistry(t *testing.T, responses *atomic.Int32) *Registry {
	t.Helper()
	reg := NewRegistry()
	err := reg.Register("filters.example.com", "Tag", func(ref ExtensionRef) (Filter, error) {
		switch ref.Name {
		case "broken":
			return nil, errors.New("no such Tag object")
		case "nil":
			return nil, nil
		}
		return tagFilter{name: ref.Name, guard: strings.HasPrefix(ref.Name, "guard"), responses: responses}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func tagRef(name string) Spec {
	return Spec{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Group: "filters.example.com", Kind: "Tag", Name: name}}
}

func TestRegistryRegister(t *testing.T) {
	var reg Registry // the zero value is usable
	f := func(ExtensionRef) (Filter, error) { return noopFilter{}, nil }
	if err := reg.Register("", "Core", f); err != nil {
		t.Fatalf("first Register: %v", err)
	}
	for name, err := range map[string]error{
		"duplicate":   reg.Register("", "Core", f),
		"empty kind":  reg.Register("g", "", f),
		"nil factory": reg.Register("g", "K", nil),
	} {
		if err == nil {
			t.Errorf("%s: Register succeeded", name)
		}
	}
	// Same kind in another group is a different filter.
	if err := reg.Register("other.example.com", "Core", f); err != nil {
		t.Errorf("Register in another group: %v", err)
	}
	if _, err := Compile([]Spec{{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Kind: "Core", Name: "x"}}}, CompileOptions{Registry: &reg}); err != nil {
		t.Errorf("core-group extension: %v", err)
	}
}

func TestExtensionResolveErrors(t *testing.T) {
	var n atomic.Int32
	reg := newTestRegistry(t, &n)
	tests := []struct {
		name string
		spec Spec
		kind error
		msg  string
	}{
		{"unknown kind", Spec{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Group: "filters.example.com", Kind: "Nope", Name: "x"}},
			ErrUnknownExtension, `filters[1].extensionRef: unknown extension filter: no filter registered for group "filters.example.com" kind "Nope" (name "x")`},
		{"unknown group", Spec{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Group: "other.example.com", Kind: "Tag", Name: "x"}},
			ErrUnknownExtension, `group "other.example.com"`},
		{"factory error", tagRef("broken"), nil, `filters[1].extensionRef: Tag "broken": no such Tag object`},
		{"nil filter", tagRef("nil"), ErrInvalid, "returned a nil Filter"},
		{"empty name", tagRef(""), ErrInvalid, "filters[1].extensionRef.name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]Spec{tagRef("ok"), tc.spec}, CompileOptions{Registry: reg})
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %v does not wrap %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func TestExtensionInChain(t *testing.T) {
	var responses atomic.Int32
	reg := newTestRegistry(t, &responses)
	c := mustCompile(t, []Spec{
		tagRef("first"),
		reqHeaders(HeaderModifier{Set: []Header{{"X-Mid", "1"}}}),
		tagRef("second"),
	}, CompileOptions{Registry: reg})
	r := newRequest("GET", "/api/x")
	var st State
	if c.Request(httptest.NewRecorder(), r, RequestInfo{PathPrefix: "/api"}, &st) {
		t.Fatal("handled")
	}
	wantReq := hdr("X-Seen-By", "first /api", "X-Mid", "1", "X-Seen-By", "second /api")
	if diff := cmp.Diff(wantReq, r.Header); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	h := http.Header{}
	c.Response(h, &st)
	wantResp := hdr("X-Answered-By", "first for /api/x", "X-Answered-By", "second for /api/x")
	if diff := cmp.Diff(wantResp, h); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

// A user filter that writes the response stops the chain; filters after it
// do not run and mirrors waiting for the body are given up.
func TestExtensionHandles(t *testing.T) {
	var responses atomic.Int32
	reg := newTestRegistry(t, &responses)
	s := &recordingSender{}
	m := newMirrorer(t, s, MirrorOptions{})
	c := mustCompile(t, []Spec{
		mirrorSpec(Mirror{Backend: "b"}),
		tagRef("guard"),
		reqHeaders(HeaderModifier{Set: []Header{{"X-After", "1"}}}),
		respHeaders(HeaderModifier{Set: []Header{{"X-Resp", "1"}}}),
	}, CompileOptions{Registry: reg, Mirrorer: m})

	r := httptest.NewRequest("POST", "/x", strings.NewReader("body"))
	w := httptest.NewRecorder()
	var st State
	if !c.Request(w, r, RequestInfo{}, &st) {
		t.Fatal("guard did not handle the request")
	}
	if w.Code != http.StatusUnauthorized || w.Header().Get("X-Rejected-By") != "guard" {
		t.Errorf("response %d %v", w.Code, w.Header())
	}
	if r.Header.Get("X-After") != "" {
		t.Error("filter after the guard ran")
	}
	waitMirrors(t, m)
	if st := m.Stats(); st != (MirrorStats{Abandoned: 1}) {
		t.Errorf("mirror stats = %+v", st)
	}

	r = newRequest("GET", "/x", "X-Token", "t")
	if c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st) {
		t.Fatal("request with token handled")
	}
	h := http.Header{}
	c.Response(h, &st)
	if diff := cmp.Diff(hdr("X-Answered-By", "guard for /x", "X-Resp", "1"), h); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
}

// On a response generated by the chain, user filters that ran before it get
// their Response hook; those after it never ran and get none.
func TestExtensionAroundRedirect(t *testing.T) {
	var responses atomic.Int32
	reg := newTestRegistry(t, &responses)
	c := mustCompile(t, []Spec{tagRef("before"), redirectSpec(Redirect{StatusCode: 301}), tagRef("after")}, CompileOptions{Registry: reg})
	w := httptest.NewRecorder()
	var st State
	if !c.Request(w, newRequest("GET", "/old"), http80, &st) {
		t.Fatal("not redirected")
	}
	want := http.Header{"Location": {"http://example.com/old"}, "X-Answered-By": {"before for /old"}}
	if diff := cmp.Diff(want, w.Header()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if responses.Load() != 1 {
		t.Errorf("%d Response hooks ran, want 1", responses.Load())
	}
}

func TestErrorChain(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{500, 500}, {503, 503}, {404, 404}, {200, 500}, {0, 500}, {700, 500}} {
		c := ErrorChain(tc.in)
		w := httptest.NewRecorder()
		var st State
		if !c.Request(w, newRequest("GET", "/"), RequestInfo{}, &st) {
			t.Fatalf("ErrorChain(%d) did not handle the request", tc.in)
		}
		if w.Code != tc.want {
			t.Errorf("ErrorChain(%d) answered %d, want %d", tc.in, w.Code, tc.want)
		}
	}
}
