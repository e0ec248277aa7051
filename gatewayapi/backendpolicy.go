package gatewayapi

import (
	"fmt"
	"regexp"
	"time"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
)

// Policy kinds, as they name themselves in status messages and in the
// Policies provenance of the Config.
const (
	kindBackendPolicy           = "BackendPolicy"
	kindTrafficPolicy           = "TrafficPolicy"
	kindXBackendTrafficPolicy   = "XBackendTrafficPolicy"
	maxPolicyTargetRefs         = 16
	maxHealthCheckPathLength    = 1024
	maxHealthCheckHostLength    = 253
	maxExpectedStatusRanges     = 16
	maxHashKeyNameLength        = 256
	maxConnectionsPerEndpoint   = 100000
	maxCircuitBreakerMinRequest = 1000000
	maxHalfOpenRequests         = 64
	maxHealthThreshold          = 100
)

// healthCheckPath is the pattern of an HTTP health check path.
var healthCheckPath = regexp.MustCompile(`^/[^\s]*$`)

// backendPolicies are the BackendPolicies and XBackendTrafficPolicies,
// which set how the proxy talks to a Service port.
type backendPolicies struct {
	rauta *attachIndex[*rautav1alpha1.BackendPolicySpec]
	x     *attachIndex[xBackendSettings]
}

// xBackendSettings is what an XBackendTrafficPolicy sets.
type xBackendSettings struct {
	budget  *proxy.RetryBudget
	session *proxy.SessionPersistence
}

func newBackendPolicies(t *translator) *backendPolicies {
	exists := func(pt policyTarget) bool {
		return pt.group == groupCore && pt.kind == kindService && t.services[nn{pt.ns, pt.name}] != nil
	}
	bp := &backendPolicies{}
	bp.rauta = newAttachIndex(kindBackendPolicy, t.controller, len(t.res.BackendPolicies), func(i int) policyInput[*rautav1alpha1.BackendPolicySpec] {
		p := &t.res.BackendPolicies[i]
		in := policyInput[*rautav1alpha1.BackendPolicySpec]{meta: &p.ObjectMeta, spec: &p.Spec}
		for _, tr := range p.Spec.TargetRefs {
			in.targets = append(in.targets, policyTarget{group: tr.Group, kind: tr.Kind, ns: p.Namespace, name: string(tr.Name), section: string(deref(tr.SectionName))})
		}
		in.invalid = validateBackendPolicy(&p.Spec)
		return in
	}, exists)
	bp.x = newAttachIndex(kindXBackendTrafficPolicy, t.controller, len(t.res.XBackendTrafficPolicies), func(i int) policyInput[xBackendSettings] {
		p := &t.res.XBackendTrafficPolicies[i]
		in := policyInput[xBackendSettings]{meta: &p.ObjectMeta}
		for _, tr := range p.Spec.TargetRefs {
			// Backends of other kinds (a ServiceImport, say) are for
			// other implementations: not rauta's targets.
			if tr.Group == groupCore && tr.Kind == kindService {
				in.targets = append(in.targets, policyTarget{group: tr.Group, kind: tr.Kind, ns: p.Namespace, name: string(tr.Name)})
			}
		}
		var err error
		in.spec, err = xBackendTrafficPolicy(&p.Spec)
		if err != nil {
			in.invalid = err.Error()
		}
		return in
	}, exists)
	return bp
}

// apply sets on backend b, for port sp of svc reached through the
// Gateways gws, what the policies in effect say, and records the Gateways
// as their ancestors. A BackendPolicy on the port wins over one on the
// whole Service field by field (load balancer, health check and session
// persistence as wholes, since their fields depend on their type; circuit
// breaker, connection and retry settings one by one); a BackendPolicy's
// session persistence wins over an XBackendTrafficPolicy's. b is nil when
// the backend exists already: only the ancestors are recorded.
func (bp *backendPolicies) apply(svc *corev1.Service, sp *corev1.ServicePort, gws []*gatewayState, b *proxy.Backend) {
	obj := policyTarget{group: groupCore, kind: kindService, ns: svc.Namespace, name: svc.Name}
	hasPort := func(name string) bool {
		for _, p := range svc.Spec.Ports {
			if p.Name == name {
				return true
			}
		}
		return false
	}
	bp.rauta.reachObject(obj, gws, hasPort)
	general := bp.rauta.reach(obj, gws)
	var port *attachedPolicy[*rautav1alpha1.BackendPolicySpec]
	if sp.Name != "" {
		pt := obj
		pt.section = sp.Name
		port = bp.rauta.reach(pt, gws)
	}
	x := bp.x.reach(obj, gws)
	if b == nil {
		return
	}
	if x != nil {
		if x.spec.budget != nil {
			b.Retry.Budget = x.spec.budget
		}
		if x.spec.session != nil {
			b.SessionPersistence = x.spec.session
		}
	}
	var spec *rautav1alpha1.BackendPolicySpec
	switch {
	case general != nil && port != nil:
		spec = mergeBackendPolicySpecs(general.spec, port.spec)
	case general != nil:
		spec = general.spec
	case port != nil:
		spec = port.spec
	}
	if spec != nil {
		// The specs were validated: conversion cannot fail.
		_ = backendPolicy(spec, b)
	}
	b.Policies = append(provenances(x), provenances(general, port)...)
}

// validateBackendPolicy returns why spec cannot be used, naming the
// field, or "".
func validateBackendPolicy(spec *rautav1alpha1.BackendPolicySpec) string {
	if n := len(spec.TargetRefs); n == 0 || n > maxPolicyTargetRefs {
		return fmt.Sprintf("spec.targetRefs: %d targets, must be 1 to %d", n, maxPolicyTargetRefs)
	}
	for i, tr := range spec.TargetRefs {
		if tr.Group != groupCore || tr.Kind != kindService {
			return fmt.Sprintf("spec.targetRefs[%d]: %s of group %q is not a Service of the core group", i, tr.Kind, tr.Group)
		}
	}
	if spec.LoadBalancer == nil && spec.HealthCheck == nil && spec.CircuitBreaker == nil && spec.Connections == nil && spec.Retry == nil && spec.SessionPersistence == nil {
		return "spec: at least one setting besides targetRefs is required"
	}
	if err := backendPolicy(spec, &proxy.Backend{}); err != nil {
		return err.Error()
	}
	return ""
}

// mergeBackendPolicySpecs returns the settings of general with those that
// port sets instead.
func mergeBackendPolicySpecs(general, port *rautav1alpha1.BackendPolicySpec) *rautav1alpha1.BackendPolicySpec {
	out := *general
	if port.LoadBalancer != nil {
		out.LoadBalancer = port.LoadBalancer
	}
	if port.HealthCheck != nil {
		out.HealthCheck = port.HealthCheck
	}
	if port.SessionPersistence != nil {
		out.SessionPersistence = port.SessionPersistence
	}
	if c := port.CircuitBreaker; c != nil {
		m := rautav1alpha1.CircuitBreaker{}
		if general.CircuitBreaker != nil {
			m = *general.CircuitBreaker
		}
		m.Disabled = override(m.Disabled, c.Disabled)
		m.ErrorRatePercent = override(m.ErrorRatePercent, c.ErrorRatePercent)
		m.Window = override(m.Window, c.Window)
		m.MinRequests = override(m.MinRequests, c.MinRequests)
		m.OpenDuration = override(m.OpenDuration, c.OpenDuration)
		m.HalfOpenRequests = override(m.HalfOpenRequests, c.HalfOpenRequests)
		m.Count5xx = override(m.Count5xx, c.Count5xx)
		out.CircuitBreaker = &m
	}
	if c := port.Connections; c != nil {
		m := rautav1alpha1.ConnectionLimits{}
		if general.Connections != nil {
			m = *general.Connections
		}
		m.MaxConnectionsPerEndpoint = override(m.MaxConnectionsPerEndpoint, c.MaxConnectionsPerEndpoint)
		m.IdleTimeout = override(m.IdleTimeout, c.IdleTimeout)
		m.MaxRequestsPerConnection = override(m.MaxRequestsPerConnection, c.MaxRequestsPerConnection)
		m.MaxLifetime = override(m.MaxLifetime, c.MaxLifetime)
		out.Connections = &m
	}
	if r := port.Retry; r != nil {
		m := rautav1alpha1.RetryBackoff{}
		if general.Retry != nil {
			m = *general.Retry
		}
		m.BaseInterval = override(m.BaseInterval, r.BaseInterval)
		m.MaxInterval = override(m.MaxInterval, r.MaxInterval)
		out.Retry = &m
	}
	return &out
}

// override returns specific when it is set, else general.
func override[T any](general, specific *T) *T {
	if specific != nil {
		return specific
	}
	return general
}

// backendPolicy sets on b what spec says, checking it as the CRD's schema
// and CEL rules do.
func backendPolicy(spec *rautav1alpha1.BackendPolicySpec, b *proxy.Backend) error {
	if lb := spec.LoadBalancer; lb != nil {
		const field = "spec.loadBalancer"
		switch lb.Type {
		case "", rautav1alpha1.RoundRobin:
			b.LoadBalancer.Policy = upstream.RoundRobin
			if lb.HashKey != nil {
				return fmt.Errorf("%s.hashKey: only allowed with type Maglev", field)
			}
		case rautav1alpha1.Maglev:
			b.LoadBalancer.Policy = upstream.Maglev
		default:
			return fmt.Errorf("%s.type: %q is not RoundRobin or Maglev", field, lb.Type)
		}
		if k := lb.HashKey; k != nil {
			key, err := hashKey(k, field+".hashKey")
			if err != nil {
				return err
			}
			b.LoadBalancer.Key = key
		}
	}
	if hc := spec.HealthCheck; hc != nil {
		h, err := healthCheck(hc)
		if err != nil {
			return err
		}
		b.HealthCheck = h
	}
	if c := spec.CircuitBreaker; c != nil {
		cb, err := circuitBreaker(c)
		if err != nil {
			return err
		}
		b.CircuitBreaker = cb
	}
	if c := spec.Connections; c != nil {
		const field = "spec.connections"
		if n := c.MaxConnectionsPerEndpoint; n != nil {
			if err := inRange(field+".maxConnectionsPerEndpoint", *n, 1, maxConnectionsPerEndpoint); err != nil {
				return err
			}
			b.Connections.MaxPerEndpoint = int(*n)
		}
		if n := c.MaxRequestsPerConnection; n != nil {
			if err := inRange(field+".maxRequestsPerConnection", *n, 1, maxInt32); err != nil {
				return err
			}
			b.Connections.MaxRequests = int(*n)
		}
		var err error
		if b.Connections.IdleTimeout, err = positiveDuration(c.IdleTimeout, field+".idleTimeout"); err != nil {
			return err
		}
		if b.Connections.MaxLifetime, err = positiveDuration(c.MaxLifetime, field+".maxLifetime"); err != nil {
			return err
		}
	}
	if r := spec.Retry; r != nil {
		const field = "spec.retry"
		var err error
		if b.Retry.Backoff, err = positiveDuration(r.BaseInterval, field+".baseInterval"); err != nil {
			return err
		}
		if b.Retry.MaxBackoff, err = positiveDuration(r.MaxInterval, field+".maxInterval"); err != nil {
			return err
		}
		if r.BaseInterval != nil && r.MaxInterval != nil && b.Retry.MaxBackoff < b.Retry.Backoff {
			return fmt.Errorf("%s.maxInterval: %v is below baseInterval %v", field, b.Retry.MaxBackoff, b.Retry.Backoff)
		}
	}
	if sp := spec.SessionPersistence; sp != nil {
		s, err := sessionPersistence(&sp.SessionPersistence, sp.IdleTimeout, "spec.sessionPersistence")
		if err != nil {
			return err
		}
		b.SessionPersistence = s
	}
	return nil
}

// maxInt32 is the largest int32, the bound of fields without a maximum.
const maxInt32 = 1<<31 - 1

// hashKey converts a BackendPolicy hash key.
func hashKey(k *rautav1alpha1.HashKey, field string) (upstream.HashKey, error) {
	var out upstream.HashKey
	switch k.Type {
	case rautav1alpha1.ClientAddress:
		if k.Name != "" {
			return out, fmt.Errorf("%s.name: not allowed for type ClientAddress", field)
		}
		return upstream.HashKey{Source: upstream.KeyClientAddress}, nil
	case rautav1alpha1.Header:
		out.Source = upstream.KeyHeader
	case rautav1alpha1.Cookie:
		out.Source = upstream.KeyCookie
	case rautav1alpha1.QueryParameter:
		out.Source = upstream.KeyQuery
	default:
		return out, fmt.Errorf("%s.type: %q is not ClientAddress, Header, Cookie or QueryParameter", field, k.Type)
	}
	switch {
	case k.Name == "":
		return out, fmt.Errorf("%s.name: required for type %s", field, k.Type)
	case len(k.Name) > maxHashKeyNameLength:
		return out, fmt.Errorf("%s.name: longer than %d characters", field, maxHashKeyNameLength)
	case k.Type != rautav1alpha1.QueryParameter && !httpguts.ValidHeaderFieldName(k.Name):
		return out, fmt.Errorf("%s.name: %q is not a valid %s name", field, k.Name, k.Type)
	}
	out.Name = k.Name
	return out, nil
}

// healthCheck converts a BackendPolicy health check.
func healthCheck(hc *rautav1alpha1.HealthCheck) (*upstream.HealthCheck, error) {
	const field = "spec.healthCheck"
	h := &upstream.HealthCheck{}
	switch hc.Type {
	case rautav1alpha1.HealthCheckTCP:
		h.Kind = upstream.HealthTCP
		if hc.HTTP != nil {
			return nil, fmt.Errorf("%s.http: only allowed with type HTTP", field)
		}
	case rautav1alpha1.HealthCheckHTTP:
		h.Kind = upstream.HealthHTTP
	case "":
		return nil, fmt.Errorf("%s.type: required (TCP or HTTP)", field)
	default:
		return nil, fmt.Errorf("%s.type: %q is not TCP or HTTP", field, hc.Type)
	}
	var err error
	if h.Interval, err = positiveDuration(hc.Interval, field+".interval"); err != nil {
		return nil, err
	}
	if h.Timeout, err = positiveDuration(hc.Timeout, field+".timeout"); err != nil {
		return nil, err
	}
	if hc.Interval != nil && hc.Timeout != nil && h.Timeout > h.Interval {
		return nil, fmt.Errorf("%s.timeout: %v is longer than interval %v", field, h.Timeout, h.Interval)
	}
	if n := hc.HealthyThreshold; n != nil {
		if err := inRange(field+".healthyThreshold", *n, 1, maxHealthThreshold); err != nil {
			return nil, err
		}
		h.HealthyThreshold = int(*n)
	}
	if n := hc.UnhealthyThreshold; n != nil {
		if err := inRange(field+".unhealthyThreshold", *n, 1, maxHealthThreshold); err != nil {
			return nil, err
		}
		h.UnhealthyThreshold = int(*n)
	}
	if hh := hc.HTTP; hh != nil {
		switch {
		case len(hh.Path) > maxHealthCheckPathLength:
			return nil, fmt.Errorf("%s.http.path: longer than %d characters", field, maxHealthCheckPathLength)
		case hh.Path != "" && !healthCheckPath.MatchString(hh.Path):
			return nil, fmt.Errorf("%s.http.path: %q must start with / and hold no white space", field, hh.Path)
		case len(hh.Host) > maxHealthCheckHostLength:
			return nil, fmt.Errorf("%s.http.host: longer than %d characters", field, maxHealthCheckHostLength)
		case len(hh.ExpectedStatuses) > maxExpectedStatusRanges:
			return nil, fmt.Errorf("%s.http.expectedStatuses: %d ranges, at most %d", field, len(hh.ExpectedStatuses), maxExpectedStatusRanges)
		}
		h.Path, h.Host = hh.Path, hh.Host
		for i, r := range hh.ExpectedStatuses {
			f := fmt.Sprintf("%s.http.expectedStatuses[%d]", field, i)
			if err := inRange(f+".start", r.Start, 100, 599); err != nil {
				return nil, err
			}
			sr := upstream.StatusRange{Start: int(r.Start)}
			if r.End != nil {
				if err := inRange(f+".end", *r.End, 100, 599); err != nil {
					return nil, err
				}
				if *r.End < r.Start {
					return nil, fmt.Errorf("%s.end: %d is below start %d", f, *r.End, r.Start)
				}
				sr.End = int(*r.End)
			}
			h.ExpectedStatuses = append(h.ExpectedStatuses, sr)
		}
	}
	return h, nil
}

// circuitBreaker converts a BackendPolicy circuit breaker.
func circuitBreaker(c *rautav1alpha1.CircuitBreaker) (*upstream.CircuitBreaker, error) {
	const field = "spec.circuitBreaker"
	cb := &upstream.CircuitBreaker{Disabled: deref(c.Disabled), Count5xx: deref(c.Count5xx)}
	if p := c.ErrorRatePercent; p != nil {
		if err := inRange(field+".errorRatePercent", *p, 1, 100); err != nil {
			return nil, err
		}
		cb.Options.FailureThreshold = float64(*p) / 100
	}
	if n := c.MinRequests; n != nil {
		if err := inRange(field+".minRequests", *n, 1, maxCircuitBreakerMinRequest); err != nil {
			return nil, err
		}
		cb.Options.MinRequests = int(*n)
	}
	if n := c.HalfOpenRequests; n != nil {
		if err := inRange(field+".halfOpenRequests", *n, 1, maxHalfOpenRequests); err != nil {
			return nil, err
		}
		cb.Options.HalfOpenProbes = int(*n)
	}
	var err error
	if cb.Options.Window, err = positiveDuration(c.Window, field+".window"); err != nil {
		return nil, err
	}
	if cb.Options.OpenTimeout, err = positiveDuration(c.OpenDuration, field+".openDuration"); err != nil {
		return nil, err
	}
	return cb, nil
}

// xBackendTrafficPolicy converts the spec of an XBackendTrafficPolicy,
// with the defaults its CRD's markers give.
func xBackendTrafficPolicy(spec *gatewayxv1alpha1.BackendTrafficPolicySpec) (xBackendSettings, error) {
	var out xBackendSettings
	if n := len(spec.TargetRefs); n == 0 || n > maxPolicyTargetRefs {
		return out, fmt.Errorf("spec.targetRefs: %d targets, must be 1 to %d", n, maxPolicyTargetRefs)
	}
	for i, tr := range spec.TargetRefs {
		for _, o := range spec.TargetRefs[:i] {
			if o == tr {
				return out, fmt.Errorf("spec.targetRefs[%d]: duplicate of another targetRef", i)
			}
		}
	}
	if rc := spec.RetryConstraint; rc != nil {
		const field = "spec.retryConstraint"
		budget := &proxy.RetryBudget{Percent: 20, Interval: 10 * time.Second, MinRetries: 10, MinRetriesInterval: time.Second}
		if b := rc.Budget; b != nil {
			if p := b.Percent; p != nil {
				if *p < 0 || *p > 100 {
					return out, fmt.Errorf("%s.budget.percent: %d is not between 0 and 100", field, *p)
				}
				budget.Percent = float64(*p)
			}
			if b.Interval != nil {
				d, err := parseDuration(string(*b.Interval))
				if err != nil {
					return out, fmt.Errorf("%s.budget.interval: %w", field, err)
				}
				if d < time.Second || d > time.Hour {
					return out, fmt.Errorf("%s.budget.interval: %v is not between 1s and 1h", field, d)
				}
				budget.Interval = d
			}
		}
		if m := rc.MinRetryRate; m != nil {
			// Defaults apply to a missing minRetryRate, not to its
			// missing fields: without a count, no retry is guaranteed.
			budget.MinRetries, budget.MinRetriesInterval = 0, 0
			if c := m.Count; c != nil {
				if *c < 1 || *c > 1000000 {
					return out, fmt.Errorf("%s.minRetryRate.count: %d is not between 1 and 1000000", field, *c)
				}
				budget.MinRetries = *c
			}
			if m.Interval != nil {
				d, err := parseDuration(string(*m.Interval))
				if err != nil {
					return out, fmt.Errorf("%s.minRetryRate.interval: %w", field, err)
				}
				if d == 0 || d > time.Hour {
					return out, fmt.Errorf("%s.minRetryRate.interval: %v is not above 0s and at most 1h", field, d)
				}
				budget.MinRetriesInterval = d
			}
		}
		out.budget = budget
	}
	if sp := spec.SessionPersistence; sp != nil {
		s, err := sessionPersistence(sp, nil, "spec.sessionPersistence")
		if err != nil {
			return out, err
		}
		out.session = s
	}
	return out, nil
}

// inRange checks that an integer field is within [lo, hi].
func inRange(field string, v, lo, hi int32) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s: %d is not between %d and %d", field, v, lo, hi)
	}
	return nil
}

// positiveDuration parses an optional duration that must be above zero:
// zero stands for the default in the proxy's configuration, so a policy
// cannot ask for it.
func positiveDuration(d *gatewayv1.Duration, field string) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	v, err := parseDuration(string(*d))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	if v <= 0 {
		return 0, fmt.Errorf("%s: must be more than 0s", field)
	}
	return v, nil
}
