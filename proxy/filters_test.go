package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/filters"
)

// TestFiltersEndToEnd runs rule and backendRef filters through the proxy:
// header modifiers, a redirect keeping the listener port, a prefix rewrite
// and a mirror.
func TestFiltersEndToEnd(t *testing.T) {
	seen := make(chan *http.Request, 4)
	main := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		body, _ := io.ReadAll(r.Body)
		r2.Body = io.NopCloser(strings.NewReader(string(body)))
		seen <- r2
		w.Header().Set("X-Remove-Me", "1")
		io.WriteString(w, "main")
	}))
	mirrored := make(chan string, 4)
	mirror := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mirrored <- r.Method + " " + r.URL.Path + " " + string(body)
	}))
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"main": {main.addr()}, "mirror": {mirror.addr()}},
		Rule{
			Matches: prefix("/old"),
			Filters: []filters.Spec{{Type: filters.TypeRequestRedirect, RequestRedirect: &filters.Redirect{
				Path: &filters.PathModifier{Type: filters.ReplacePrefixMatch, ReplacePrefixMatch: "/new"}, StatusCode: 301}}},
		},
		Rule{
			Matches: prefix("/api"),
			Filters: []filters.Spec{
				{Type: filters.TypeRequestHeaderModifier, RequestHeaderModifier: &filters.HeaderModifier{Set: []filters.Header{{Name: "X-Env", Value: "prod"}}}},
				{Type: filters.TypeURLRewrite, URLRewrite: &filters.URLRewrite{Path: &filters.PathModifier{Type: filters.ReplacePrefixMatch, ReplacePrefixMatch: "/v2"}}},
				{Type: filters.TypeRequestMirror, RequestMirror: &filters.Mirror{Backend: "mirror"}},
			},
			Backends: []BackendRef{{Backend: "main", Weight: 1, Filters: []filters.Spec{
				{Type: filters.TypeResponseHeaderModifier, ResponseHeaderModifier: &filters.HeaderModifier{Remove: []string{"X-Remove-Me"}, Add: []filters.Header{{Name: "X-Ref", Value: "main"}}}},
			}}},
		})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	addr, _ := p.Addr("gw/http")

	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, _, h := get(t, c, base+"/old/page?q=1", "Host", "shop.example:"+portOf(addr.String()))
	if want := "http://shop.example:" + portOf(addr.String()) + "/new/page?q=1"; code != 301 || h.Get("Location") != want {
		t.Errorf("redirect: %d Location %q, want 301 %q", code, h.Get("Location"), want)
	}

	resp, err := http.Post(base+"/api/users", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "main" || resp.Header.Get("X-Remove-Me") != "" || resp.Header.Get("X-Ref") != "main" {
		t.Errorf("response filters: %q %v", body, resp.Header)
	}
	r := <-seen
	if r.URL.Path != "/v2/users" || r.Header.Get("X-Env") != "prod" {
		t.Errorf("backend saw %s with X-Env %q", r.URL.Path, r.Header.Get("X-Env"))
	}
	select {
	case m := <-mirrored:
		if m != "POST /v2/users payload" {
			t.Errorf("mirror saw %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("mirror never received the request")
	}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// TestBackendURLRewrite shows a URLRewrite filter on a backend reference
// (HTTPRouteBackendURLRewrite): the full path replaced, and the matched
// prefix replaced, as the backend sees them; a reference of the same rule
// without the filter gets the path unchanged.
func TestBackendURLRewrite(t *testing.T) {
	paths := make(chan string, 8)
	echo := newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths <- r.Host + " " + r.URL.RequestURI()
	}))
	p := newTestProxy(t, Options{})
	rewrite := func(pm *filters.PathModifier, host string) []filters.Spec {
		return []filters.Spec{{Type: filters.TypeURLRewrite, URLRewrite: &filters.URLRewrite{Path: pm, Hostname: host}}}
	}
	cfg := simpleConfig(map[string][]string{"echo": {echo.addr()}},
		Rule{Matches: prefix("/full"), Backends: []BackendRef{{Backend: "echo", Weight: 1,
			Filters: rewrite(&filters.PathModifier{Type: filters.ReplaceFullPath, ReplaceFullPath: "/rewritten-full"}, "")}}},
		Rule{Matches: prefix("/prefix"), Backends: []BackendRef{{Backend: "echo", Weight: 1,
			Filters: rewrite(&filters.PathModifier{Type: filters.ReplacePrefixMatch, ReplacePrefixMatch: "/rewritten-prefix"}, "backend.internal")}}},
		Rule{Matches: prefix("/plain"), Backends: []BackendRef{{Backend: "echo", Weight: 1}}},
	)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for _, tc := range []struct{ path, host, want string }{
		{"/full/original?q=1", "shop.example", "shop.example /rewritten-full?q=1"},
		{"/prefix/original", "shop.example", "backend.internal /rewritten-prefix/original"},
		{"/prefix", "shop.example", "backend.internal /rewritten-prefix"},
		{"/plain/original", "shop.example", "shop.example /plain/original"},
	} {
		if code, body, _ := get(t, http.DefaultClient, base+tc.path, "Host", tc.host); code != 200 {
			t.Fatalf("GET %s: %d %s", tc.path, code, body)
		}
		select {
		case got := <-paths:
			if got != tc.want {
				t.Errorf("GET %s: the backend saw %q, want %q", tc.path, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("GET %s: the backend saw nothing", tc.path)
		}
	}
}
