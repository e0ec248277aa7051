package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/net/http2"
)

// TestHTTP2LimitMetric floods the proxy's h2c listener with streams opened
// and reset at once (rapid reset): the connection gets GOAWAY
// ENHANCE_YOUR_CALM, the limit counts in rauta_http2_limits_total, and
// the listener serves other connections.
func TestHTTP2LimitMetric(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(h2specOrigin))
	t.Cleanup(backend.Close)
	p := newTestProxy(t, Options{Limits: Limits{HTTP2: HTTP2Limits{ResetsPerSecond: 10}}})
	if err := p.Apply(simpleConfig(map[string][]string{"b": {addrOf(backend)}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	a, _ := p.Addr("gw/http")
	h := dialH2(t, a.String())
	go func() {
		for id := uint32(1); id < 1000; id += 2 {
			h.headers(id, "/flood", "", false)
			if h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	var code http2.ErrCode
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			code = g.ErrCode
			break
		}
	}
	if code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", code)
	}
	if v, _ := metricValue(t, p, "rauta_http2_limits_total", map[string]string{"limit": "rapid_reset"}); v != 1 {
		t.Errorf("rauta_http2_limits_total{limit=rapid_reset} = %v, want 1", v)
	}
	other := dialH2(t, a.String())
	other.headers(1, "/other", "0", true)
	if code := other.status(t, 1); code != http.StatusOK {
		t.Errorf("another connection: status %d, want 200", code)
	}
}
