package grafana_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// metricKind is a Prometheus metric type.
type metricKind string

const (
	counter   metricKind = "counter"
	gauge     metricKind = "gauge"
	histogram metricKind = "histogram"
)

// metric is what the proxy registers under one name.
type metric struct {
	kind   metricKind
	labels []string
	// sampled is set when kind was learnt from gathered samples (a custom
	// collector's metric) rather than from the collector's type.
	sampled bool
}

var gatheredKinds = map[dto.MetricType]metricKind{
	dto.MetricType_COUNTER:   counter,
	dto.MetricType_GAUGE:     gauge,
	dto.MetricType_HISTOGRAM: histogram,
}

// recorder is a prometheus.Registerer that notes the descriptors and
// types of what is registered before passing it to a real registry.
type recorder struct {
	reg     *prometheus.Registry
	mu      sync.Mutex
	metrics map[string]*metric
	bad     []string // descriptors that could not be read
}

var (
	fqNameRE = regexp.MustCompile(`fqName: "([^"]*)"`)
	labelsRE = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
	constRE  = regexp.MustCompile(`^c\((.*)\)$`)
)

// Register implements prometheus.Registerer.
func (r *recorder) Register(c prometheus.Collector) error {
	var kind metricKind
	switch c.(type) {
	case *prometheus.HistogramVec, prometheus.Histogram:
		kind = histogram
	case *prometheus.CounterVec:
		kind = counter
	case *prometheus.GaugeVec, prometheus.Gauge: // before Counter: a Gauge has Inc and Add too
		kind = gauge
	case prometheus.Counter:
		kind = counter
	}
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	r.mu.Lock()
	for d := range ch {
		s := d.String()
		name, labels := fqNameRE.FindStringSubmatch(s), labelsRE.FindStringSubmatch(s)
		if name == nil || labels == nil {
			r.bad = append(r.bad, s)
			continue
		}
		m := &metric{kind: kind}
		if labels[1] != "" {
			for _, l := range strings.Split(labels[1], ",") {
				if c := constRE.FindStringSubmatch(l); c != nil {
					l = c[1]
				}
				m.labels = append(m.labels, l)
			}
		}
		slices.Sort(m.labels)
		r.metrics[name[1]] = m
	}
	r.mu.Unlock()
	return r.reg.Register(c)
}

// MustRegister implements prometheus.Registerer.
func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// exercised is a proxy that has served a request to a backend and one no
// route matched, with what it registered and gathered and its access log.
type exercised struct {
	metrics   map[string]*metric
	families  []*dto.MetricFamily
	accessLog []byte
}

var (
	exerciseOnce sync.Once
	exerciseRes  *exercised
	exerciseErr  error
)

// exerciseProxy runs a real proxy once per test binary.
func exerciseProxy(t *testing.T) *exercised {
	t.Helper()
	exerciseOnce.Do(func() { exerciseRes, exerciseErr = runProxy() })
	if exerciseErr != nil {
		t.Fatal(exerciseErr)
	}
	return exerciseRes
}

// syncBuffer is a bytes.Buffer safe for the access log writer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func runProxy() (*exercised, error) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()

	rec := &recorder{reg: prometheus.NewRegistry(), metrics: map[string]*metric{}}
	var logs syncBuffer
	p := proxy.New(proxy.Options{
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: rec,
		AccessLog:  proxy.AccessLog{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
	})
	cfg := proxy.Config{
		Listeners: []proxy.Listener{{Name: "web", Address: "127.0.0.1", Port: 0, Protocol: proxy.HTTP}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "app", Listeners: []string{"web"},
			Rules: []proxy.Rule{{
				Matches:  []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/app"}}},
				Backends: []proxy.BackendRef{{Backend: "default/app:80", Weight: 1}},
			}},
		}},
		Backends: []proxy.Backend{{
			Spec: upstream.Spec{Name: "default/app:80", Endpoints: []upstream.Endpoint{{Address: strings.TrimPrefix(backend.URL, "http://")}}},
		}},
	}
	if err := p.Apply(cfg); err != nil {
		return nil, err
	}
	addr, _ := p.Addr("web")
	for _, path := range []string{"/app/x", "/nothing"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	families, err := rec.reg.Gather()
	if err != nil {
		return nil, err
	}
	for _, f := range families {
		if m := rec.metrics[f.GetName()]; m != nil && m.kind == "" {
			m.kind, m.sampled = gatheredKinds[f.GetType()], true
		}
	}
	if err := p.Shutdown(context.Background()); err != nil { // flushes the access log
		return nil, err
	}
	if len(rec.bad) > 0 {
		return nil, fmt.Errorf("descriptors not understood: %q", rec.bad)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	return &exercised{metrics: rec.metrics, families: families, accessLog: bytes.Clone(logs.b.Bytes())}, nil
}

// TestRegistry checks the metrics read from the descriptors against what
// the registry gathers after real requests, so that a change in how
// descriptors print cannot make the other tests pass vacuously, and that
// every metric has a known type.
func TestRegistry(t *testing.T) {
	e := exerciseProxy(t)
	if len(e.metrics) < 10 {
		t.Fatalf("only %d metrics registered: %v", len(e.metrics), e.metrics)
	}
	for _, f := range e.families {
		m := e.metrics[f.GetName()]
		if m == nil {
			t.Errorf("%s gathered but not seen registered", f.GetName())
			continue
		}
		k, ok := gatheredKinds[f.GetType()]
		if !ok {
			t.Errorf("%s: type %v", f.GetName(), f.GetType())
		}
		if m.kind != k {
			t.Errorf("%s: registered as a %s, gathered as a %s", f.GetName(), m.kind, k)
		}
		var got []string
		for _, lp := range f.GetMetric()[0].GetLabel() {
			got = append(got, lp.GetName())
		}
		slices.Sort(got)
		if !slices.Equal(got, m.labels) {
			t.Errorf("%s: gathered labels %q, descriptor labels %q", f.GetName(), got, m.labels)
		}
	}
	for name, m := range e.metrics {
		if m.kind == "" {
			t.Errorf("%s: type unknown (a custom collector's metric with no sample after a request)", name)
		}
		if !strings.HasPrefix(name, "rauta_") {
			t.Errorf("%s: not in the rauta_ namespace", name)
		}
	}
}
