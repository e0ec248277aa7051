package h2client

import (
	"net/url"
	"testing"
)

// TestRequestPath: :path is what URL.RequestURI gives, for every shape of
// URL, and costs no allocation for a plain path without query.
func TestRequestPath(t *testing.T) {
	for _, raw := range []string{
		"http://h/", "http://h", "http://h/a/b?q=1", "http://h/a%20b", "http://h/a%2Fb?x",
		"http://h/?", "http://h/caf%C3%A9", "http://h/a;b=c", "*",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := requestPath(u), u.RequestURI(); got != want {
			t.Errorf("%s: requestPath %q, RequestURI %q", raw, got, want)
		}
	}
	u := &url.URL{Opaque: "//h/opaque", Scheme: "http", RawQuery: "x=1"}
	if got, want := requestPath(u), u.RequestURI(); got != want {
		t.Errorf("opaque: %q, want %q", got, want)
	}
	plain := &url.URL{Path: "/api/v1/items"}
	if a := testing.AllocsPerRun(100, func() { requestPath(plain) }); a != 0 {
		t.Errorf("plain path: %v allocs", a)
	}
}
