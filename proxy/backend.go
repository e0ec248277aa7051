package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/maglev"
	"github.com/rauta/rauta/pool"
	"github.com/rauta/rauta/tlsconfig"
)

// backendState is a backend's state that outlives configurations: its
// endpoints with their breakers, health and transports, and the current
// load-balancing table. It is found again by name on every Apply.
type backendState struct {
	name      string
	protocol  pool.Protocol
	tlsConfig *tls.Config
	spec      *Backend // the configuration in effect; replaced under applyMu
	// specKey identifies the parts of the spec that, when changed, require
	// new endpoint transports (protocol and TLS).
	specKey string

	lb        atomic.Pointer[lbTable]
	endpoints map[string]*endpointState // by address; guarded by applyMu

	active   atomic.Int64 // requests in flight, for the retry budget
	retrying atomic.Int64 // retries in flight
	// retry holds the backend's retry backoff and budget (Backend.Retry),
	// read by requests; replaced under applyMu.
	retry atomic.Pointer[retrySettings]
	// lbPolicy is the policy label of the rauta_backend_lb_policy series
	// in effect; guarded by applyMu.
	lbPolicy string

	// labelled metrics, resolved once
	connectErrors interface{ Inc() }
	upstreamTime  interface{ Observe(float64) }
}

// endpointState is one endpoint of a backend.
type endpointState struct {
	addr    string
	key     pool.Key
	rt      *pool.Endpoint
	breaker *breaker.Breaker // nil when disabled
	// count5xx makes 5xx responses count as breaker failures
	// (CircuitBreaker.Count5xx).
	count5xx bool
	healthy  atomic.Bool // active health checking; true without checks
	removed  atomic.Bool
}

// admit reports whether the endpoint may take a request now: it passes
// its health checks and its breaker lets the request through. The ticket
// must be handed back with the request's outcome.
func (e *endpointState) admit() (breaker.Ticket, bool) {
	if !e.healthy.Load() {
		return breaker.Ticket{}, false
	}
	if e.breaker == nil {
		return breaker.Ticket{}, true
	}
	return e.breaker.Allow()
}

// done reports a request's outcome to the endpoint's breaker.
func (e *endpointState) done(t breaker.Ticket, success bool) {
	if e.breaker != nil {
		e.breaker.Done(t, success)
	}
}

// cancel hands back the breaker ticket of a request that was not sent for
// a reason that says nothing about the endpoint's health (its connection
// limit).
func (e *endpointState) cancel(t breaker.Ticket) {
	if e.breaker != nil {
		e.breaker.Cancel(t)
	}
}

// lbTable is an immutable endpoint-picking table, swapped whole when the
// endpoints change.
type lbTable struct {
	eps      []*endpointState // sorted by address
	schedule []uint32         // weighted round-robin order of eps indices
	maglev   *maglev.Table    // Maglev policy: indices into eps
	policy   LBPolicy
	key      HashKey
	next     atomic.Uint64 // round-robin cursor
}

// pick returns an endpoint that admits a request, with its breaker ticket.
// hash is the request's key hash when hasKey. avoid, when not nil, is
// skipped unless it is the only choice (a retry goes elsewhere). It
// returns nil when no endpoint admits the request.
func (t *lbTable) pick(hash uint64, hasKey bool, avoid *endpointState) (*endpointState, breaker.Ticket) {
	n := len(t.eps)
	if n == 0 {
		return nil, breaker.Ticket{}
	}
	if t.maglev != nil && hasKey {
		i := t.maglev.Pick(hash)
		for j := range n {
			e := t.eps[(i+j)%n]
			if e == avoid && n > 1 {
				continue
			}
			if tk, ok := e.admit(); ok {
				return e, tk
			}
		}
		return nil, breaker.Ticket{}
	}
	s := t.schedule
	start := t.next.Add(1)
	for j := range uint64(len(s)) {
		e := t.eps[s[(start+j)%uint64(len(s))]]
		if e == avoid && n > 1 {
			continue
		}
		if tk, ok := e.admit(); ok {
			return e, tk
		}
	}
	return nil, breaker.Ticket{}
}

// buildLB builds the picking table of eps under lb.
func buildLB(eps []*endpointState, weights map[string]uint32, lb LoadBalancer) (*lbTable, error) {
	t := &lbTable{eps: eps, policy: lb.Policy, key: lb.Key}
	if t.policy == Maglev && t.key.Source == KeyNone {
		t.key.Source = KeyClientAddress
	}
	if len(eps) == 0 {
		return t, nil
	}
	w := make([]uint32, len(eps))
	for i, e := range eps {
		w[i] = max(weights[e.addr], 1)
	}
	t.schedule = smoothSchedule(w)
	if lb.Policy == Maglev {
		mb := make([]maglev.Backend, len(eps))
		for i, e := range eps {
			mb[i] = maglev.Backend{Name: e.addr, Weight: w[i]}
		}
		mt, err := maglev.Build(mb, maglev.Options{Size: maglevSize(len(eps))})
		if err != nil {
			return nil, err
		}
		t.maglev = mt
	}
	return t, nil
}

// maglevSize picks a prime table size of at least 100 entries per endpoint.
func maglevSize(n int) int {
	for _, m := range []int{1021, 4093, 16381, 65537} {
		if m >= 100*n {
			return m
		}
	}
	return maglev.DefaultSize
}

// smoothSchedule returns a weighted round-robin order in which each index
// appears in proportion to its weight, spread out rather than bunched (the
// "smooth weighted round robin" order). Weights are scaled down so the
// schedule has at most 64 entries per endpoint.
func smoothSchedule(w []uint32) []uint32 {
	total := uint64(0)
	maxW := uint32(0)
	for _, x := range w {
		total += uint64(x)
		maxW = max(maxW, x)
	}
	limit := uint64(64 * len(w))
	if total > limit {
		scaled := make([]uint32, len(w))
		total = 0
		for i, x := range w {
			scaled[i] = max(uint32(uint64(x)*64/uint64(maxW)), 1)
			total += uint64(scaled[i])
		}
		w = scaled
	}
	sched := make([]uint32, 0, total)
	cur := make([]int64, len(w))
	for range total {
		best := 0
		for i := range w {
			cur[i] += int64(w[i])
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		sched = append(sched, uint32(best))
	}
	return sched
}

// poolProtocol maps a backend protocol onto the pool's.
func poolProtocol(p BackendProtocol) pool.Protocol {
	switch p {
	case BackendH2C:
		return pool.H2C
	case BackendTLS:
		return pool.H2
	}
	return pool.HTTP1
}

// backendTLS builds the client TLS configuration of a TLS backend.
func backendTLS(b *Backend) (*tls.Config, error) {
	if b.TLS == nil {
		return nil, errors.New("tls: required for protocol tls")
	}
	opts := tlsconfig.BackendOptions{
		ServerName:     b.TLS.ServerName,
		CACertificates: b.TLS.CACertificates,
		SystemRoots:    b.TLS.SystemRoots,
	}
	if c := b.TLS.ClientCertificate; c != nil {
		kp, err := tlsconfig.LoadKeyPair(c.CertPEM, c.KeyPEM, tlsconfig.KeyPairOptions{})
		if err != nil {
			return nil, fmt.Errorf("tls.clientCertificate %q: %w", c.Name, err)
		}
		opts.ClientCertificate = kp
	}
	for _, s := range b.TLS.SubjectAltNames {
		if strings.Contains(s, "://") {
			opts.SubjectAltNames = append(opts.SubjectAltNames, tlsconfig.SubjectAltName{Type: tlsconfig.SANURI, Value: s})
		} else {
			opts.SubjectAltNames = append(opts.SubjectAltNames, tlsconfig.SubjectAltName{Type: tlsconfig.SANHostname, Value: s})
		}
	}
	return tlsconfig.NewBackendConfig(opts)
}

// specKey identifies what endpoint transports depend on.
func specKeyOf(b *Backend) string {
	if b.TLS == nil {
		return b.Protocol.String()
	}
	// The client certificate counts by a digest of its PEM: a renewed
	// certificate under the same name needs new connections.
	var client [sha256.Size]byte
	if c := b.TLS.ClientCertificate; c != nil {
		h := sha256.New()
		h.Write(c.CertPEM)
		h.Write([]byte{0})
		h.Write(c.KeyPEM)
		h.Sum(client[:0])
	}
	return fmt.Sprintf("%v|%s|%x|%v|%q|%x", b.Protocol, b.TLS.ServerName, b.TLS.CACertificates, b.TLS.SystemRoots, b.TLS.SubjectAltNames, client)
}

// syncBackends brings p.backends in line with the configured backends and
// returns the map for the new snapshot. Backends that fail to configure are
// reported and left out, so references to them answer 500.
func (p *Proxy) syncBackends(specs []Backend, errs map[string]error) map[string]*backendState {
	out := make(map[string]*backendState, len(specs))
	for i := range specs {
		b := &specs[i]
		if b.Name == "" {
			errs[fmt.Sprintf("backends[%d]", i)] = errors.New("name: must not be empty")
			continue
		}
		if _, dup := out[b.Name]; dup {
			errs[b.Name] = errors.New("duplicate name")
			continue
		}
		bs, err := p.syncBackend(b)
		if err != nil {
			errs[b.Name] = err
			continue
		}
		out[b.Name] = bs
	}
	for name, bs := range p.backends {
		if out[name] == nil {
			for _, e := range bs.endpoints {
				e.removed.Store(true)
			}
			p.metrics.lbPolicy.DeleteLabelValues(name, bs.lbPolicy)
		}
	}
	p.backends = out
	p.syncPoolLimits()
	return out
}

// syncBackend updates or creates the state of one backend.
func (p *Proxy) syncBackend(b *Backend) (*backendState, error) {
	if err := validateBackend(b); err != nil {
		return nil, err
	}
	if sp := b.SessionPersistence; sp != nil {
		if err := validateSession(sp); err != nil {
			return nil, fmt.Errorf("sessionPersistence: %w", err)
		}
	}
	key := specKeyOf(b)
	bs := p.backends[b.Name]
	if bs == nil || bs.specKey != key {
		nbs := &backendState{
			name:          b.Name,
			protocol:      poolProtocol(b.Protocol),
			specKey:       key,
			endpoints:     make(map[string]*endpointState),
			connectErrors: p.metrics.connectErrors.WithLabelValues(b.Name),
			upstreamTime:  p.metrics.upstreamDuration.WithLabelValues(b.Name),
		}
		if b.Protocol == BackendTLS {
			tc, err := backendTLS(b)
			if err != nil {
				return nil, err
			}
			nbs.tlsConfig = tc
		}
		if bs != nil {
			for _, e := range bs.endpoints {
				e.removed.Store(true)
			}
			nbs.lbPolicy = bs.lbPolicy
			nbs.retry.Store(bs.retry.Load())
		}
		bs = nbs
	}
	bs.spec = b
	bs.retry.Store(newRetrySettings(b.Retry, bs.retry.Load()))
	if err := p.setEndpoints(bs, b.Endpoints); err != nil {
		return nil, err
	}
	if policy := b.LoadBalancer.Policy.String(); policy != bs.lbPolicy {
		if bs.lbPolicy != "" {
			p.metrics.lbPolicy.DeleteLabelValues(bs.name, bs.lbPolicy)
		}
		bs.lbPolicy = policy
	}
	p.metrics.lbPolicy.WithLabelValues(bs.name, bs.lbPolicy).Set(1)
	return bs, nil
}

// poolLimits maps a backend's connection limits onto the pool's.
func poolLimits(c ConnectionLimits) pool.Limits {
	return pool.Limits{
		MaxConns:    c.MaxPerEndpoint,
		IdleTimeout: c.IdleTimeout,
		MaxRequests: c.MaxRequests,
		MaxLifetime: c.MaxLifetime,
	}
}

// tighterLimits combines the limits of two backends sharing an endpoint
// transport: field by field, the smaller value set.
func tighterLimits(a, b pool.Limits) pool.Limits {
	least := func(x, y int64) int64 {
		if x == 0 || y != 0 && y < x {
			return y
		}
		return x
	}
	return pool.Limits{
		MaxConns:    int(least(int64(a.MaxConns), int64(b.MaxConns))),
		IdleTimeout: time.Duration(least(int64(a.IdleTimeout), int64(b.IdleTimeout))),
		MaxRequests: int(least(int64(a.MaxRequests), int64(b.MaxRequests))),
		MaxLifetime: time.Duration(least(int64(a.MaxLifetime), int64(b.MaxLifetime))),
	}
}

// syncPoolLimits gives every endpoint transport the connection limits of
// the backends that use it: a backend's [ConnectionLimits], or, when
// several backends share an endpoint (same address, protocol and TLS),
// the smaller value of each field they set. Changing them interrupts no
// request. Called with applyMu held, after p.backends is updated.
func (p *Proxy) syncPoolLimits() {
	want := make(map[*pool.Endpoint]pool.Limits)
	for _, bs := range p.backends {
		l := poolLimits(bs.spec.Connections)
		for _, e := range bs.endpoints {
			if cur, ok := want[e.rt]; ok {
				want[e.rt] = tighterLimits(cur, l)
			} else {
				want[e.rt] = l
			}
		}
	}
	for rt, l := range want {
		if rt.Limits() != l {
			rt.SetLimits(l)
		}
	}
}

// setEndpoints builds the endpoint set and LB table of a backend, keeping
// the state of endpoints that stay. Called with applyMu held.
func (p *Proxy) setEndpoints(bs *backendState, eps []Endpoint) error {
	weights := make(map[string]uint32, len(eps))
	list := make([]*endpointState, 0, len(eps))
	seen := make(map[string]*endpointState, len(eps))
	for i, ep := range eps {
		if _, _, err := net.SplitHostPort(ep.Address); err != nil {
			return fmt.Errorf("endpoints[%d].address %q: %w", i, ep.Address, err)
		}
		if seen[ep.Address] != nil {
			weights[ep.Address] += max(ep.Weight, 1)
			continue
		}
		weights[ep.Address] = max(ep.Weight, 1)
		e := bs.endpoints[ep.Address]
		if e == nil {
			var err error
			e, err = p.newEndpoint(bs, ep.Address)
			if err != nil {
				return fmt.Errorf("endpoints[%d]: %w", i, err)
			}
		}
		seen[ep.Address] = e
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b *endpointState) int { return strings.Compare(a.addr, b.addr) })
	lb := LoadBalancer{}
	if bs.spec != nil {
		lb = bs.spec.LoadBalancer
	}
	t, err := buildLB(list, weights, lb)
	if err != nil {
		return fmt.Errorf("loadBalancer: %w", err)
	}
	for addr, e := range bs.endpoints {
		if seen[addr] == nil {
			e.removed.Store(true)
			p.metrics.breakerState.DeleteLabelValues(bs.name, addr)
			p.metrics.endpointHealthy.DeleteLabelValues(bs.name, addr)
		}
	}
	bs.endpoints = seen
	bs.lb.Store(t)
	return nil
}

// newEndpoint creates the state of a new endpoint.
func (p *Proxy) newEndpoint(bs *backendState, addr string) (*endpointState, error) {
	e := &endpointState{addr: addr}
	e.healthy.Store(true)
	e.key = pool.Key{Address: addr, Protocol: bs.protocol, TLS: bs.tlsConfig}
	rt, err := p.pools.Get(e.key)
	if err != nil {
		return nil, err
	}
	e.rt = rt
	// Limits before the endpoint is in a table; syncPoolLimits settles
	// them exactly when other backends share the transport.
	rt.SetLimits(tighterLimits(rt.Limits(), poolLimits(bs.spec.Connections)))
	cb := bs.spec.CircuitBreaker
	e.count5xx = cb != nil && cb.Count5xx
	if cb == nil || !cb.Disabled {
		var cfg breaker.Options
		if cb != nil {
			cfg = cb.Options
		}
		gauge := p.metrics.breakerState.WithLabelValues(bs.name, addr)
		user := cfg.OnStateChange
		cfg.OnStateChange = func(from, to breaker.State) {
			gauge.Set(float64(to))
			p.metrics.breakerTransitions.WithLabelValues(bs.name, to.String()).Inc()
			p.log.Info("circuit breaker", "backend", bs.name, "endpoint", addr, "from", from.String(), "to", to.String())
			if user != nil {
				user(from, to)
			}
		}
		b, err := breaker.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("circuitBreaker: %w", err)
		}
		e.breaker = b
	}
	return e, nil
}

// UpdateEndpoints replaces the endpoints of one backend without recompiling
// routes: the fast path for endpoint churn (an EndpointSlice change). The
// state of endpoints that stay is kept.
func (p *Proxy) UpdateEndpoints(backend string, eps []Endpoint) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return ErrClosed
	}
	bs := p.backends[backend]
	if bs == nil {
		return fmt.Errorf("backend %q is not configured", backend)
	}
	if err := p.setEndpoints(bs, eps); err != nil {
		return fmt.Errorf("backend %q: %w", backend, err)
	}
	p.syncPoolLimits()
	p.retainPools()
	p.health.sync(p.backends)
	return nil
}

// retainPools closes the pools of endpoints no backend uses any more.
// Called with applyMu held.
func (p *Proxy) retainPools() {
	var keys []pool.Key
	for _, bs := range p.backends {
		for _, e := range bs.endpoints {
			keys = append(keys, e.key)
		}
	}
	p.pools.Retain(keys)
}

// validateBackend checks the policies of a backend. It reports the first
// error found, naming the field; [ApplyError] names the backend.
func validateBackend(b *Backend) error {
	lb := &b.LoadBalancer
	if lb.Policy != RoundRobin && lb.Policy != Maglev {
		return fmt.Errorf("loadBalancer.policy: unknown value %v", lb.Policy)
	}
	if err := lb.Key.validate(); err != nil {
		return fmt.Errorf("loadBalancer.key.%w", err)
	}
	if hc := b.HealthCheck; hc != nil {
		if err := hc.validate(); err != nil {
			return fmt.Errorf("healthCheck.%w", err)
		}
	}
	c := &b.Connections
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"maxPerEndpoint", int64(c.MaxPerEndpoint)},
		{"idleTimeout", int64(c.IdleTimeout)},
		{"maxRequests", int64(c.MaxRequests)},
		{"maxLifetime", int64(c.MaxLifetime)},
	} {
		if f.v < 0 {
			return fmt.Errorf("connections.%s: must not be negative", f.name)
		}
	}
	if err := b.Retry.validate(); err != nil {
		return fmt.Errorf("retry.%w", err)
	}
	return nil
}

// validate checks a hash key (of a load balancer or a rate limit): a known
// source, with the name its source reads and no name for the others.
// Errors start with the field name.
func (k HashKey) validate() error {
	switch k.Source {
	case KeyNone, KeyClientAddress:
		if k.Name != "" {
			return fmt.Errorf("name: must be empty for source %v", k.Source)
		}
		return nil
	case KeyHeader:
		if !httpguts.ValidHeaderFieldName(k.Name) {
			return fmt.Errorf("name %q: must be a header name", k.Name)
		}
		return nil
	case KeyCookie, KeyQuery:
		if k.Name == "" {
			return fmt.Errorf("name: required for source %v", k.Source)
		}
		return nil
	}
	return fmt.Errorf("source: unknown value %v", k.Source)
}

// validate checks a health check. Errors start with the field name.
func (hc *HealthCheck) validate() error {
	if hc.Kind != HealthTCP && hc.Kind != HealthHTTP {
		return fmt.Errorf("kind: unknown value %v", hc.Kind)
	}
	if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		return fmt.Errorf("path: %q must start with /", hc.Path)
	}
	switch {
	case hc.Interval < 0:
		return errors.New("interval: must not be negative")
	case hc.Timeout < 0:
		return errors.New("timeout: must not be negative")
	case hc.HealthyThreshold < 0:
		return errors.New("healthyThreshold: must not be negative")
	case hc.UnhealthyThreshold < 0:
		return errors.New("unhealthyThreshold: must not be negative")
	}
	if len(hc.ExpectedStatuses) > 0 && hc.Kind != HealthHTTP {
		return fmt.Errorf("expectedStatuses: only HTTP health checks have statuses (kind %v)", hc.Kind)
	}
	for i, r := range hc.ExpectedStatuses {
		if r.Start < 100 || r.Start > 599 {
			return fmt.Errorf("expectedStatuses[%d].start: %d is not a status code (100 to 599)", i, r.Start)
		}
		if r.End != 0 && (r.End < r.Start || r.End > 599) {
			return fmt.Errorf("expectedStatuses[%d].end: %d must be between start (%d) and 599", i, r.End, r.Start)
		}
	}
	return nil
}

// expects reports whether an HTTP probe's status passes.
func (hc *HealthCheck) expects(code int) bool {
	if len(hc.ExpectedStatuses) == 0 {
		return code >= 200 && code < 400
	}
	for _, r := range hc.ExpectedStatuses {
		if code >= r.Start && code <= max(r.End, r.Start) {
			return true
		}
	}
	return false
}

// validate checks a backend's retry settings. Errors start with the field
// name.
func (r *BackendRetry) validate() error {
	if err := validateBackoff(r.Backoff, r.MaxBackoff); err != nil {
		return err
	}
	if bu := r.Budget; bu != nil {
		switch {
		case math.IsNaN(bu.Percent) || bu.Percent < 0 || bu.Percent > 100:
			return fmt.Errorf("budget.percent: %v must be between 0 and 100", bu.Percent)
		case bu.Interval < 0:
			return errors.New("budget.interval: must not be negative")
		case bu.MinRetries < 0:
			return errors.New("budget.minRetries: must not be negative")
		case bu.MinRetriesInterval < 0:
			return errors.New("budget.minRetriesInterval: must not be negative")
		}
	}
	return nil
}
