package upstream

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
// member, started and stopped as the set changes.
type healthChecker struct {
	s      *Set
	ctx    context.Context
	cancel context.CancelFunc
	client *http.Client

	mu     sync.Mutex
	probes map[*Member]*probe
}

type probe struct {
	spec   HealthCheck
	cancel context.CancelFunc
	done   chan struct{}
}

func newHealthChecker(s *Set) *healthChecker {
	ctx, cancel := context.WithCancel(context.Background())
	return &healthChecker{
		s:      s,
		ctx:    ctx,
		cancel: cancel,
		client: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		probes: make(map[*Member]*probe),
	}
}

// sync starts probes for checked members that have none and stops the
// probes of members that are gone or no longer checked. Called with the
// Set's mutex held.
func (hc *healthChecker) sync(backends map[string]*Backend) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.ctx.Err() != nil {
		return
	}
	want := make(map[*Member]HealthCheck)
	names := make(map[*Member]string)
	for _, b := range backends {
		if b.spec == nil || b.spec.HealthCheck == nil {
			continue
		}
		spec := b.spec.HealthCheck.withDefaults()
		for _, m := range b.members {
			want[m] = spec
			names[m] = b.name
		}
	}
	for m, pr := range hc.probes {
		if spec, ok := want[m]; !ok || !reflect.DeepEqual(spec, pr.spec) {
			pr.cancel()
			delete(hc.probes, m)
			if !ok {
				m.healthy.Store(true)
			}
		}
	}
	for m, spec := range want {
		if hc.probes[m] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(hc.ctx)
		pr := &probe{spec: spec, cancel: cancel, done: make(chan struct{})}
		hc.probes[m] = pr
		go hc.run(ctx, pr, names[m], m)
	}
}

// stop ends every probe and waits for them.
func (hc *healthChecker) stop() {
	hc.mu.Lock()
	hc.cancel()
	probes := hc.probes
	hc.probes = map[*Member]*probe{}
	hc.mu.Unlock()
	for _, pr := range probes {
		<-pr.done
	}
}

// run probes one member until ctx ends, flipping its health after the
// configured number of consecutive results.
func (hc *healthChecker) run(ctx context.Context, pr *probe, backend string, m *Member) {
	defer close(pr.done)
	hook := hc.s.opts.Hooks.Health
	if hook != nil {
		hook(backend, m.addr, m.healthy.Load(), false)
	}
	t := time.NewTicker(pr.spec.Interval)
	defer t.Stop()
	passes, fails := 0, 0
	for {
		ok := hc.check(ctx, pr.spec, m)
		if ctx.Err() != nil {
			return
		}
		if ok {
			passes, fails = passes+1, 0
			if !m.healthy.Load() && passes >= pr.spec.HealthyThreshold {
				m.healthy.Store(true)
				if hook != nil {
					hook(backend, m.addr, true, true)
				}
				hc.s.log.Info("endpoint healthy", "backend", backend, "endpoint", m.addr)
			}
		} else {
			passes, fails = 0, fails+1
			if m.healthy.Load() && fails >= pr.spec.UnhealthyThreshold {
				m.healthy.Store(false)
				if hook != nil {
					hook(backend, m.addr, false, true)
				}
				hc.s.log.Warn("endpoint unhealthy", "backend", backend, "endpoint", m.addr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check runs one probe.
func (hc *healthChecker) check(ctx context.Context, spec HealthCheck, m *Member) bool {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	if spec.Kind == HealthTCP {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", m.addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.addr+spec.Path, nil)
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
