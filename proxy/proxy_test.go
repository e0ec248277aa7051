package proxy

import (
	"net/http"
	"strings"
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

// TestMetricsRecorded checks that a served request shows in the request
// counter, the latency histograms and the upstream response histogram.
func TestMetricsRecorded(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		get(t, http.DefaultClient, baseURL(t, p, "gw/http")+"/x")
	}
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[mf.GetName()] += m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[mf.GetName()] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for _, name := range []string{"rauta_http_requests_total", "rauta_http_request_duration_seconds", "rauta_upstream_response_seconds"} {
		if got[name] != 3 {
			t.Errorf("%s = %v, want 3", name, got[name])
		}
	}
}

// TestServerImplUnknown checks that a Proxy whose Options.Server is none of
// the ServerImpl values refuses to bind a listener, saying why.
func TestServerImplUnknown(t *testing.T) {
	backend := echoBackend(t, "b")
	p := newTestProxy(t, Options{Server: ServerNetHTTP + 1})
	err := p.Apply(simpleConfig(map[string][]string{"b": {addrOf(backend)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}}))
	if err == nil || !strings.Contains(err.Error(), "Options.Server is ServerImpl(2)") {
		t.Fatalf("Apply with an unknown Options.Server: %v, want an error naming Options.Server", err)
	}
	if _, ok := p.Addr("gw/http"); ok {
		t.Error("a listener was bound although Options.Server is unknown")
	}
}
