package proxy

import (
	"net/http"
	"testing"
)

func TestForwardBasic(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	cfg := simpleConfig(map[string][]string{"default/a:80": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "default/a:80", Weight: 1}}})
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	code, body, h := get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/hello?x=1", "X-Forwarded-For", "6.6.6.6")
	if code != 200 || body != "a" {
		t.Fatalf("got %d %q", code, body)
	}
	if got := h.Get("X-Seen-Path"); got != "/hello?x=1" {
		t.Errorf("backend saw path %q", got)
	}
	if got := h.Get("X-Seen-XFF"); got != "127.0.0.1" {
		t.Errorf("backend saw X-Forwarded-For %q, want the client address only", got)
	}
}
