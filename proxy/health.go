package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"
)

// healthChecker runs active health checks: one goroutine per checked
// endpoint, started and stopped as configurations change.
type healthChecker struct {
	p      *Proxy
	ctx    context.Context
	cancel context.CancelFunc
	client *http.Client

	mu     sync.Mutex
	probes map[*endpointState]*probe
}

type probe struct {
	spec   HealthCheck
	cancel context.CancelFunc
	done   chan struct{}
}

func newHealthChecker(p *Proxy) *healthChecker {
	ctx, cancel := context.WithCancel(context.Background())
	return &healthChecker{
		p:      p,
		ctx:    ctx,
		cancel: cancel,
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		probes: make(map[*endpointState]*probe),
	}
}

func (s HealthCheck) withDefaults() HealthCheck {
	if s.Path == "" {
		s.Path = "/"
	}
	if s.Interval <= 0 {
		s.Interval = 5 * time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	if s.HealthyThreshold <= 0 {
		s.HealthyThreshold = 2
	}
	if s.UnhealthyThreshold <= 0 {
		s.UnhealthyThreshold = 3
	}
	return s
}

// sync starts probes for checked endpoints that have none and stops the
// probes of endpoints that are gone or no longer checked. Called with
// applyMu held.
func (hc *healthChecker) sync(backends map[string]*backendState) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.ctx.Err() != nil {
		return
	}
	want := make(map[*endpointState]HealthCheck)
	names := make(map[*endpointState]string)
	for _, bs := range backends {
		if bs.spec == nil || bs.spec.HealthCheck == nil {
			continue
		}
		spec := bs.spec.HealthCheck.withDefaults()
		for _, e := range bs.endpoints {
			want[e] = spec
			names[e] = bs.name
		}
	}
	for e, pr := range hc.probes {
		if spec, ok := want[e]; !ok || !reflect.DeepEqual(spec, pr.spec) {
			pr.cancel()
			delete(hc.probes, e)
			if !ok {
				e.healthy.Store(true)
			}
		}
	}
	for e, spec := range want {
		if hc.probes[e] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(hc.ctx)
		pr := &probe{spec: spec, cancel: cancel, done: make(chan struct{})}
		hc.probes[e] = pr
		go hc.run(ctx, pr, names[e], e)
	}
}

// stop ends every probe and waits for them.
func (hc *healthChecker) stop() {
	hc.mu.Lock()
	hc.cancel()
	probes := hc.probes
	hc.probes = map[*endpointState]*probe{}
	hc.mu.Unlock()
	for _, pr := range probes {
		<-pr.done
	}
}

// run probes one endpoint until ctx ends, flipping its health after the
// configured number of consecutive results.
func (hc *healthChecker) run(ctx context.Context, pr *probe, backend string, e *endpointState) {
	defer close(pr.done)
	gauge := hc.p.metrics.endpointHealthy.WithLabelValues(backend, e.addr)
	gauge.Set(b2f(e.healthy.Load()))
	turned := func(result string) {
		hc.p.metrics.healthTransitions.WithLabelValues(backend, result).Inc()
	}
	t := time.NewTicker(pr.spec.Interval)
	defer t.Stop()
	passes, fails := 0, 0
	for {
		ok := hc.check(ctx, pr.spec, e)
		if ctx.Err() != nil {
			return
		}
		if ok {
			passes, fails = passes+1, 0
			if !e.healthy.Load() && passes >= pr.spec.HealthyThreshold {
				e.healthy.Store(true)
				gauge.Set(1)
				turned("healthy")
				hc.p.log.Info("endpoint healthy", "backend", backend, "endpoint", e.addr)
			}
		} else {
			passes, fails = 0, fails+1
			if e.healthy.Load() && fails >= pr.spec.UnhealthyThreshold {
				e.healthy.Store(false)
				gauge.Set(0)
				turned("unhealthy")
				hc.p.log.Warn("endpoint unhealthy", "backend", backend, "endpoint", e.addr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// check runs one probe.
func (hc *healthChecker) check(ctx context.Context, spec HealthCheck, e *endpointState) bool {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	if spec.Kind == HealthTCP {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", e.addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.addr+spec.Path, nil)
	if err != nil {
		return false
	}
	if spec.Host != "" {
		req.Host = spec.Host
	}
	req.Header.Set("User-Agent", "rauta-health-check")
	resp, err := hc.client.Do(req)
	if err != nil {
		return false
	}
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	return spec.expects(resp.StatusCode)
}
