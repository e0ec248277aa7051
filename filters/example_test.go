package filters_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/rauta/rauta/filters"
)

// apiKeyFilter is a user-defined filter: it rejects requests without a
// known API key and tags the responses of the others.
type apiKeyFilter struct {
	header string
	keys   map[string]bool
}

func (f *apiKeyFilter) Request(w http.ResponseWriter, r *http.Request, _ filters.RequestInfo) bool {
	if !f.keys[r.Header.Get(f.header)] {
		http.Error(w, "missing or unknown API key", http.StatusUnauthorized)
		return true // answered here: the request is not forwarded
	}
	r.Header.Del(f.header) // the backend never sees the key
	return false
}

func (f *apiKeyFilter) Response(h http.Header, _ *http.Request) {
	h.Set("X-Authenticated", "api-key")
}

// A library user plugs their own filter into HTTPRoutes through ExtensionRef:
// register a factory for its group and kind, then reference it by name.
func Example_extensionFilter() {
	reg := filters.NewRegistry()
	err := reg.Register("auth.example.com", "APIKey", func(ref filters.ExtensionRef) (filters.Filter, error) {
		// A real factory would look ref.Name up in its own configuration.
		if ref.Name != "partners" {
			return nil, errors.New("no such APIKey object")
		}
		return &apiKeyFilter{header: "X-Api-Key", keys: map[string]bool{"k-123": true}}, nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	chain, err := filters.Compile([]filters.Spec{
		{Type: filters.TypeExtensionRef, ExtensionRef: &filters.ExtensionRef{Group: "auth.example.com", Kind: "APIKey", Name: "partners"}},
		{Type: filters.TypeRequestHeaderModifier, RequestHeaderModifier: &filters.HeaderModifier{
			Set: []filters.Header{{Name: "X-Partner", Value: "yes"}},
		}},
	}, filters.CompileOptions{Registry: reg})
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, key := range []string{"", "k-123"} {
		r := httptest.NewRequest("GET", "/orders", nil)
		if key != "" {
			r.Header.Set("X-Api-Key", key)
		}
		w := httptest.NewRecorder()
		var st filters.State
		if chain.Request(w, r, filters.RequestInfo{}, &st) {
			fmt.Printf("rejected: %d %s", w.Code, w.Body.String())
			continue
		}
		resp := http.Header{} // the upstream response headers
		chain.Response(resp, &st)
		fmt.Printf("forwarded with X-Partner=%q X-Api-Key=%q; response X-Authenticated=%q\n",
			r.Header.Get("X-Partner"), r.Header.Get("X-Api-Key"), resp.Get("X-Authenticated"))
	}

	// An ExtensionRef nobody registered is a configuration error.
	_, err = filters.Compile([]filters.Spec{
		{Type: filters.TypeExtensionRef, ExtensionRef: &filters.ExtensionRef{Group: "auth.example.com", Kind: "OAuth", Name: "x"}},
	}, filters.CompileOptions{Registry: reg})
	fmt.Println(errors.Is(err, filters.ErrUnknownExtension), err)

	// Output:
	// rejected: 401 missing or unknown API key
	// forwarded with X-Partner="yes" X-Api-Key=""; response X-Authenticated="api-key"
	// true filters[0].extensionRef: unknown extension filter: no filter registered for group "auth.example.com" kind "OAuth" (name "x")
}

// A RequestRedirect from http to https on a listener at port 8080: the port
// becomes the well-known one and is left out of the Location.
func ExampleCompile_redirect() {
	chain, err := filters.Compile([]filters.Spec{{
		Type: filters.TypeRequestRedirect,
		RequestRedirect: &filters.Redirect{
			Scheme:     filters.SchemeHTTPS,
			Path:       &filters.PathModifier{Type: filters.ReplacePrefixMatch, ReplacePrefixMatch: "/v2"},
			StatusCode: http.StatusMovedPermanently,
		},
	}}, filters.CompileOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("GET", "http://shop.example:8080/v1/cart/items?id=7", nil)
	w := httptest.NewRecorder()
	var st filters.State
	info := filters.RequestInfo{Scheme: filters.SchemeHTTP, ListenerPort: 8080, PathPrefix: "/v1"}
	chain.Request(w, r, info, &st)
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output:
	// 301 https://shop.example/v2/cart/items?id=7
}

// A URLRewrite strips the matched prefix before forwarding.
func ExampleCompile_rewrite() {
	chain, err := filters.Compile([]filters.Spec{{
		Type: filters.TypeURLRewrite,
		URLRewrite: &filters.URLRewrite{
			Hostname: "catalog.internal",
			Path:     &filters.PathModifier{Type: filters.ReplacePrefixMatch, ReplacePrefixMatch: ""},
		},
	}}, filters.CompileOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("GET", "/catalog/books/42?format=json", nil)
	var st filters.State
	chain.Request(httptest.NewRecorder(), r, filters.RequestInfo{PathPrefix: "/catalog"}, &st)
	fmt.Println(r.Host, r.URL.RequestURI())
	// Output:
	// catalog.internal /books/42?format=json
}

// A Mirrorer sends mirrored requests through a MirrorSender supplied by the
// proxy; here the sender only prints what it would send.
func ExampleMirrorer() {
	sent := make(chan string, 1)
	m, err := filters.NewMirrorer(filters.MirrorOptions{
		Sender: filters.MirrorSenderFunc(func(backend string, r *http.Request) (*http.Response, error) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			sent <- fmt.Sprintf("%s %s %s %q", backend, r.Method, r.URL.Path, body)
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, err := filters.Compile([]filters.Spec{{
		Type:          filters.TypeRequestMirror,
		RequestMirror: &filters.Mirror{Backend: "default/orders-v2:8080"},
	}}, filters.CompileOptions{Mirrorer: m})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("POST", "/orders", strings.NewReader(`{"id":7}`))
	var st filters.State
	chain.Request(httptest.NewRecorder(), r, filters.RequestInfo{}, &st)
	// The mirror leaves once the primary request's body has been read,
	// which the proxy's transport does when forwarding.
	_, _ = io.Copy(io.Discard, r.Body)
	fmt.Println(<-sent)
	// Output:
	// default/orders-v2:8080 POST /orders "{\"id\":7}"
}
