package proxy

import (
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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

// TestMetricsSeriesByLabels checks that requests are counted, and their
// durations observed, in the series of their own labels: the cached
// children of the vectors are never shared between label sets.
func TestMetricsSeriesByLabels(t *testing.T) {
	a := echoBackend(t, "a")
	p := newTestProxy(t, Options{})
	if err := p.Apply(simpleConfig(map[string][]string{"a": {addrOf(a)}},
		Rule{Matches: prefix("/x"), Backends: []BackendRef{{Backend: "a", Weight: 1}}})); err != nil {
		t.Fatal(err)
	}
	base := baseURL(t, p, "gw/http")
	for range 3 {
		get(t, http.DefaultClient, base+"/x")
	}
	for range 2 {
		resp, err := http.Post(base+"/x", "text/plain", strings.NewReader("hi"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 4 {
		get(t, http.DefaultClient, base+"/missing")
	}
	for _, tc := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"route": "default/r", "backend": "a", "method": "GET", "code": "2xx"}, 3},
		{map[string]string{"route": "default/r", "backend": "a", "method": "POST", "code": "2xx"}, 2},
		{map[string]string{"route": "", "backend": "", "method": "GET", "code": "4xx"}, 4},
	} {
		if v, ok := metricValue(t, p, "rauta_http_requests_total", tc.labels); v != tc.want {
			t.Errorf("rauta_http_requests_total%v = %v (found %v), want %v", tc.labels, v, ok, tc.want)
		}
	}
	mfs, err := p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "rauta_http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			got[key] = m.GetHistogram().GetSampleCount()
		}
	}
	want := map[string]uint64{"code=2xx route=default/r ": 5, "code=4xx route= ": 4}
	if !maps.Equal(got, want) {
		t.Errorf("rauta_http_request_duration_seconds sample counts %v, want %v", got, want)
	}
}

// TestRequestSeriesConcurrent looks up series from many goroutines at
// once: each label set gets one series, whoever adds it first.
func TestRequestSeriesConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	const n = 8
	got := make([][]*requestSeries, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for i := range 50 {
				got[g] = append(got[g], m.requestSeries("r", "b"+strconv.Itoa(i%10), "GET", "2xx"))
			}
		})
	}
	wg.Wait()
	for g := range n {
		for i, s := range got[g] {
			if s != got[0][i%10] {
				t.Fatalf("goroutine %d, lookup %d: a second series for backend b%d", g, i, i%10)
			}
		}
	}
	for i := range 10 {
		got[0][i].count.Inc()
	}
	for i := range 10 {
		if s := m.requestSeries("r", "b"+strconv.Itoa(i), "GET", "2xx"); s != got[0][i] {
			t.Errorf("backend b%d: series changed after use", i)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "rauta_http_requests_total" && len(mf.GetMetric()) != 10 {
			t.Errorf("%d request series, want 10", len(mf.GetMetric()))
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
