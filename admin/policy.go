package admin

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
)

// Origin says where a setting in effect comes from: the object of the
// Config that carries it and the policies that object names (its Policies
// field, such as "TrafficPolicy default/limits").
type Origin struct {
	// Level is listener, route, rule or backend.
	Level string `json:"level"`
	// Object names the listener, the route ("namespace/name"), the rule
	// ("namespace/name rule 0" or the rule's name) or the backend.
	Object string `json:"object"`
	// Policies are the policies the object names as the source of its
	// settings; empty when the object sets them itself (an HTTPRoute's
	// own fields) or names none.
	Policies []string `json:"policies,omitempty"`
}

// describe renders the origin as "level object (policies)".
func (o Origin) describe() string {
	s := o.Level + " " + o.Object
	if len(o.Policies) > 0 {
		s += " (" + strings.Join(o.Policies, ", ") + ")"
	}
	return s
}

// PolicyExplanation is the policy in effect for a request that a listener
// routes to a rule, and where each part of it comes from.
type PolicyExplanation struct {
	// RateLimits are every limit the request must pass: the listener's,
	// the route's and the rule's.
	RateLimits []RateLimitInEffect `json:"rateLimits,omitempty"`
	// RequestLimits are the request limits set for the request, resolved
	// field by field (rule over route over listener); a field set nowhere
	// is the proxy-wide default and is not listed.
	RequestLimits []RequestLimitInEffect `json:"requestLimits,omitempty"`
	// SessionPersistence is the rule's session persistence, which wins
	// over its backends'.
	SessionPersistence *SessionInEffect `json:"sessionPersistence,omitempty"`
	// Backends are the selected rule's backends with their policies.
	Backends []BackendInEffect `json:"backends,omitempty"`
}

// RateLimitInEffect is one rate limit covering the request.
type RateLimitInEffect struct {
	Origin
	// Name is the limit's budget (limits with one name share it).
	Name string `json:"name,omitempty"`
	// Rate is the requests per second admitted in the long run by the
	// gateway as a whole.
	Rate float64 `json:"rate"`
	// Burst is the requests admitted at once.
	Burst int `json:"burst"`
	// Window is the period announced in RateLimit-Policy; empty means 1s.
	Window string `json:"window,omitempty"`
	// Key says what the buckets are per ("client address", "header
	// X-User"); empty for one bucket for the whole target.
	Key string `json:"key,omitempty"`
}

// RequestLimitInEffect is one field of the request limits in effect.
type RequestLimitInEffect struct {
	Origin
	// Field is maxBodyBytes, readTimeout or writeTimeout.
	Field string `json:"field"`
	// Value is the field's value: a number of bytes or a duration.
	Value string `json:"value"`
}

// SessionInEffect is a session persistence in effect.
type SessionInEffect struct {
	Origin
	// Type is Cookie or Header.
	Type string `json:"type"`
	// Name is the cookie or header name.
	Name string `json:"name"`
	// AbsoluteTimeout and IdleTimeout end a session; empty means never.
	AbsoluteTimeout string `json:"absoluteTimeout,omitempty"`
	// IdleTimeout ends a session that carried no request this long.
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// PermanentCookie gives the cookie a Max-Age.
	PermanentCookie bool `json:"permanentCookie,omitempty"`
}

// HealthCheckInEffect is a backend's active health check, defaults
// applied.
type HealthCheckInEffect struct {
	// Kind is TCP or HTTP.
	Kind string `json:"kind"`
	// Path, Host and ExpectedStatuses are those of an HTTP probe.
	Path string `json:"path,omitempty"`
	// Host is the probe's Host header; empty uses the address.
	Host string `json:"host,omitempty"`
	// ExpectedStatuses are the passing statuses ("200", "200-299").
	ExpectedStatuses []string `json:"expectedStatuses,omitempty"`
	// Interval is the time between probes.
	Interval string `json:"interval"`
	// Timeout bounds a probe.
	Timeout string `json:"timeout"`
	// HealthyThreshold and UnhealthyThreshold are the consecutive probes
	// that change an endpoint's health.
	HealthyThreshold int `json:"healthyThreshold"`
	// UnhealthyThreshold: see HealthyThreshold.
	UnhealthyThreshold int `json:"unhealthyThreshold"`
}

// ConnectionsInEffect are a backend's connection limits; empty fields are
// the proxy's pool defaults.
type ConnectionsInEffect struct {
	// MaxPerEndpoint bounds the connections to one endpoint.
	MaxPerEndpoint int `json:"maxPerEndpoint,omitempty"`
	// IdleTimeout closes idle connections.
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// MaxRequests closes a connection after this many requests.
	MaxRequests int `json:"maxRequests,omitempty"`
	// MaxLifetime closes a connection this long after it opened.
	MaxLifetime string `json:"maxLifetime,omitempty"`
}

// RetryInEffect is a backend's retry backoff and budget.
type RetryInEffect struct {
	// Backoff and MaxBackoff apply when the rule's retry sets none.
	Backoff string `json:"backoff,omitempty"`
	// MaxBackoff caps the backoff.
	MaxBackoff string `json:"maxBackoff,omitempty"`
	// BudgetPercent, when not zero, is the largest share of retries.
	BudgetPercent float64 `json:"budgetPercent,omitempty"`
	// BudgetInterval is the budget's period.
	BudgetInterval string `json:"budgetInterval,omitempty"`
	// MinRetries per MinRetriesInterval are always allowed.
	MinRetries int `json:"minRetries,omitempty"`
	// MinRetriesInterval is the period of MinRetries.
	MinRetriesInterval string `json:"minRetriesInterval,omitempty"`
}

// BreakerInEffect is the circuit breaker configuration of a backend.
type BreakerInEffect struct {
	// Default is set when the backend configures no breaker: the breaker
	// package's defaults apply.
	Default bool `json:"default,omitempty"`
	// Disabled turns the breakers off.
	Disabled bool `json:"disabled,omitempty"`
	// Count5xx counts 5xx responses as failures.
	Count5xx bool `json:"count5xx,omitempty"`
	// Window, FailureThreshold, MinRequests, OpenTimeout and
	// HalfOpenProbes are those of breaker.Options; zero means the
	// package's default.
	Window string `json:"window,omitempty"`
	// FailureThreshold is the failure ratio that opens a breaker.
	FailureThreshold float64 `json:"failureThreshold,omitempty"`
	// MinRequests is the number of requests a window needs to open it.
	MinRequests int `json:"minRequests,omitempty"`
	// OpenTimeout is how long a breaker stays open.
	OpenTimeout string `json:"openTimeout,omitempty"`
	// HalfOpenProbes is the number of probes let through half-open.
	HalfOpenProbes int `json:"halfOpenProbes,omitempty"`
}

// BackendInEffect is a backend of the selected rule and its policies.
type BackendInEffect struct {
	// Origin names the backend and the policies it carries.
	Origin
	// Weight is the reference's weight in the rule.
	Weight uint32 `json:"weight"`
	// Missing is set when the Config has no backend of that name.
	Missing bool `json:"missing,omitempty"`
	// LoadBalancer is RoundRobin or Maglev.
	LoadBalancer string `json:"loadBalancer"`
	// HashKey is what Maglev hashes ("client address", "header X-User").
	HashKey string `json:"hashKey,omitempty"`
	// HealthCheck is the active health check, if any.
	HealthCheck *HealthCheckInEffect `json:"healthCheck,omitempty"`
	// CircuitBreaker is the breakers' configuration.
	CircuitBreaker BreakerInEffect `json:"circuitBreaker"`
	// Connections are the connection limits.
	Connections ConnectionsInEffect `json:"connections,omitzero"`
	// Retry is the backend's retry backoff and budget.
	Retry RetryInEffect `json:"retry,omitzero"`
	// SessionPersistence is the persistence in effect for the backend:
	// the rule's when it sets one, else the backend's.
	SessionPersistence *SessionInEffect `json:"sessionPersistence,omitempty"`
}

// findRoute returns a route of the Config, or nil.
func findRoute(cfg *proxy.Config, ns, name string) *proxy.Route {
	i := slices.IndexFunc(cfg.Routes, func(r proxy.Route) bool { return r.Namespace == ns && r.Name == name })
	if i < 0 {
		return nil
	}
	return &cfg.Routes[i]
}

// explainPolicy returns the policy in effect for a request the listener
// named listener routes to rule ruleIndex of route.
func explainPolicy(cfg *proxy.Config, listener string, route *proxy.Route, ruleIndex int) *PolicyExplanation {
	if route == nil || ruleIndex < 0 || ruleIndex >= len(route.Rules) {
		return nil
	}
	rule := &route.Rules[ruleIndex]
	routeName := route.Namespace + "/" + route.Name
	ruleName := routeName + " rule " + strconv.Itoa(ruleIndex)
	if rule.Name != "" {
		ruleName += " " + strconv.Quote(rule.Name)
	}
	type level struct {
		origin Origin
		limits []proxy.RateLimit
		req    proxy.RequestLimits
	}
	// From the most specific level to the least.
	levels := []level{
		{Origin{"rule", ruleName, rule.Policies}, rule.RateLimits, rule.RequestLimits},
		{Origin{"route", routeName, route.Policies}, route.RateLimits, route.RequestLimits},
	}
	if i := slices.IndexFunc(cfg.Listeners, func(l proxy.Listener) bool { return l.Name == listener }); i >= 0 {
		l := &cfg.Listeners[i]
		levels = append(levels, level{Origin{"listener", l.Name, l.Policies}, l.RateLimits, l.RequestLimits})
	}

	pe := &PolicyExplanation{}
	// Rate limits in the order a request meets them: listener first.
	for _, lv := range slices.Backward(levels) {
		for _, lim := range lv.limits {
			rl := RateLimitInEffect{Origin: lv.origin, Name: lim.Name, Rate: lim.Rate, Burst: lim.Burst, Window: durationOrEmpty(lim.Window)}
			if lim.Key.Source != upstream.KeyNone {
				rl.Key = describeKey(lim.Key)
			}
			pe.RateLimits = append(pe.RateLimits, rl)
		}
	}
	fields := []struct {
		name  string
		value func(proxy.RequestLimits) string
	}{
		{"maxBodyBytes", func(r proxy.RequestLimits) string {
			if r.MaxBodyBytes == 0 {
				return ""
			}
			return strconv.FormatInt(r.MaxBodyBytes, 10)
		}},
		{"readTimeout", func(r proxy.RequestLimits) string { return durationOrEmpty(r.ReadTimeout) }},
		{"writeTimeout", func(r proxy.RequestLimits) string { return durationOrEmpty(r.WriteTimeout) }},
	}
	for _, f := range fields {
		for _, lv := range levels {
			if v := f.value(lv.req); v != "" {
				pe.RequestLimits = append(pe.RequestLimits, RequestLimitInEffect{Origin: lv.origin, Field: f.name, Value: v})
				break
			}
		}
	}
	var ruleSession *SessionInEffect
	if rule.SessionPersistence != nil {
		ruleSession = sessionInEffect(levels[0].origin, rule.SessionPersistence)
		pe.SessionPersistence = ruleSession
	}
	for _, ref := range rule.Backends {
		be := BackendInEffect{Origin: Origin{Level: "backend", Object: ref.Backend}, Weight: ref.Weight}
		i := slices.IndexFunc(cfg.Backends, func(b proxy.Backend) bool { return b.Name == ref.Backend })
		if ref.Backend == "" || i < 0 {
			be.Missing = true
			if be.Object == "" {
				be.Object = "(invalid reference)"
			}
			pe.Backends = append(pe.Backends, be)
			continue
		}
		b := &cfg.Backends[i]
		be.Policies = b.Policies
		be.LoadBalancer = b.LoadBalancer.Policy.String()
		if b.LoadBalancer.Policy == upstream.Maglev {
			key := b.LoadBalancer.Key
			if key.Source == upstream.KeyNone {
				key.Source = upstream.KeyClientAddress // Maglev's default
			}
			be.HashKey = describeKey(key)
		}
		if hc := b.HealthCheck; hc != nil {
			be.HealthCheck = healthCheckInEffect(hc)
		}
		c := b.Connections
		be.Connections = ConnectionsInEffect{MaxPerEndpoint: c.MaxPerEndpoint, IdleTimeout: durationOrEmpty(c.IdleTimeout),
			MaxRequests: c.MaxRequests, MaxLifetime: durationOrEmpty(c.MaxLifetime)}
		be.Retry = RetryInEffect{Backoff: durationOrEmpty(b.Retry.Backoff), MaxBackoff: durationOrEmpty(b.Retry.MaxBackoff)}
		if bu := b.Retry.Budget; bu != nil {
			be.Retry.BudgetPercent, be.Retry.BudgetInterval = bu.Percent, durationOrEmpty(bu.Interval)
			be.Retry.MinRetries, be.Retry.MinRetriesInterval = bu.MinRetries, durationOrEmpty(bu.MinRetriesInterval)
		}
		if cb := b.CircuitBreaker; cb != nil {
			be.CircuitBreaker = BreakerInEffect{
				Disabled: cb.Disabled, Count5xx: cb.Count5xx,
				Window: durationOrEmpty(cb.Options.Window), FailureThreshold: cb.Options.FailureThreshold, MinRequests: cb.Options.MinRequests,
				OpenTimeout: durationOrEmpty(cb.Options.OpenTimeout), HalfOpenProbes: cb.Options.HalfOpenProbes,
			}
		} else {
			be.CircuitBreaker.Default = true
		}
		switch {
		case ruleSession != nil:
			be.SessionPersistence = ruleSession
		case b.SessionPersistence != nil:
			be.SessionPersistence = sessionInEffect(be.Origin, b.SessionPersistence)
		}
		pe.Backends = append(pe.Backends, be)
	}
	return pe
}

func durationOrEmpty(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// sessionInEffect describes a session persistence, defaults applied.
func sessionInEffect(o Origin, s *proxy.SessionPersistence) *SessionInEffect {
	name := s.Name
	if name == "" {
		name = "rauta-session"
	}
	return &SessionInEffect{Origin: o, Type: s.Type.String(), Name: name,
		AbsoluteTimeout: durationOrEmpty(s.AbsoluteTimeout), IdleTimeout: durationOrEmpty(s.IdleTimeout), PermanentCookie: s.PermanentCookie}
}

// healthCheckInEffect describes a health check, defaults applied.
func healthCheckInEffect(hc *upstream.HealthCheck) *HealthCheckInEffect {
	out := &HealthCheckInEffect{
		Kind:               hc.Kind.String(),
		Interval:           cmp.Or(hc.Interval, 5*time.Second).String(),
		Timeout:            cmp.Or(hc.Timeout, time.Second).String(),
		HealthyThreshold:   cmp.Or(hc.HealthyThreshold, 2),
		UnhealthyThreshold: cmp.Or(hc.UnhealthyThreshold, 3),
	}
	if hc.Kind == upstream.HealthHTTP {
		out.Path, out.Host = cmp.Or(hc.Path, "/"), hc.Host
		out.ExpectedStatuses = []string{"200-399"}
		if len(hc.ExpectedStatuses) > 0 {
			out.ExpectedStatuses = nil
			for _, r := range hc.ExpectedStatuses {
				if r.End == 0 || r.End == r.Start {
					out.ExpectedStatuses = append(out.ExpectedStatuses, strconv.Itoa(r.Start))
				} else {
					out.ExpectedStatuses = append(out.ExpectedStatuses, strconv.Itoa(r.Start)+"-"+strconv.Itoa(r.End))
				}
			}
		}
	}
	return out
}

// describeKey names the part of a request a key reads.
func describeKey(k upstream.HashKey) string {
	switch k.Source {
	case upstream.KeyNone:
		return ""
	case upstream.KeyClientAddress:
		return "client address"
	case upstream.KeyHeader:
		return "header " + k.Name
	case upstream.KeyCookie:
		return "cookie " + k.Name
	case upstream.KeyQuery:
		return "query parameter " + k.Name
	}
	return k.Source.String()
}

// writeText renders the policy for people, each line indented by indent.
func (pe *PolicyExplanation) writeText(b *strings.Builder, indent string) {
	if len(pe.RateLimits) == 0 {
		fmt.Fprintf(b, "%srate limits: none\n", indent)
	}
	for _, rl := range pe.RateLimits {
		var parts []string
		if rl.Name != "" {
			parts = append(parts, strconv.Quote(rl.Name))
		}
		parts = append(parts, strconv.FormatFloat(rl.Rate, 'g', -1, 64)+"/s", "burst "+strconv.Itoa(rl.Burst))
		if rl.Window != "" {
			parts = append(parts, "window "+rl.Window)
		}
		if rl.Key != "" {
			parts = append(parts, "per "+rl.Key)
		}
		fmt.Fprintf(b, "%srate limit %s: from %s\n", indent, strings.Join(parts, " "), rl.Origin.describe())
	}
	if len(pe.RequestLimits) == 0 {
		fmt.Fprintf(b, "%srequest limits: proxy defaults\n", indent)
	}
	for _, rl := range pe.RequestLimits {
		fmt.Fprintf(b, "%srequest limit %s %s: from %s\n", indent, rl.Field, rl.Value, rl.Origin.describe())
	}
	if s := pe.SessionPersistence; s != nil {
		fmt.Fprintf(b, "%ssession persistence %s: from %s\n", indent, s.describe(), s.Origin.describe())
	}
	for _, be := range pe.Backends {
		if be.Missing {
			fmt.Fprintf(b, "%sbackend %s: not in the configuration\n", indent, be.Object)
			continue
		}
		fmt.Fprintf(b, "%sbackend %s", indent, be.Object)
		if len(be.Policies) > 0 {
			fmt.Fprintf(b, " (%s)", strings.Join(be.Policies, ", "))
		}
		b.WriteString(":\n")
		in := indent + "  "
		lb := be.LoadBalancer
		if be.HashKey != "" {
			lb += " on " + be.HashKey
		}
		fmt.Fprintf(b, "%sload balancer %s\n", in, lb)
		if hc := be.HealthCheck; hc != nil {
			fmt.Fprintf(b, "%shealth check %s\n", in, hc.describe())
		} else {
			fmt.Fprintf(b, "%shealth check: none\n", in)
		}
		fmt.Fprintf(b, "%scircuit breaker %s\n", in, be.CircuitBreaker.describe())
		if c := be.Connections; c != (ConnectionsInEffect{}) {
			fmt.Fprintf(b, "%sconnections %s\n", in, c.describe())
		}
		if r := be.Retry; r != (RetryInEffect{}) {
			fmt.Fprintf(b, "%sretry %s\n", in, r.describe())
		}
		if s := be.SessionPersistence; s != nil {
			fmt.Fprintf(b, "%ssession persistence %s: from %s\n", in, s.describe(), s.Origin.describe())
		}
	}
}

func (s *SessionInEffect) describe() string {
	parts := []string{s.Type + " " + s.Name}
	if s.AbsoluteTimeout != "" {
		parts = append(parts, "absolute timeout "+s.AbsoluteTimeout)
	}
	if s.IdleTimeout != "" {
		parts = append(parts, "idle timeout "+s.IdleTimeout)
	}
	if s.PermanentCookie {
		parts = append(parts, "permanent cookie")
	}
	return strings.Join(parts, ", ")
}

func (hc *HealthCheckInEffect) describe() string {
	s := hc.Kind
	if hc.Path != "" {
		s += " GET " + hc.Path
		if hc.Host != "" {
			s += " host " + hc.Host
		}
		s += " expecting " + strings.Join(hc.ExpectedStatuses, ",")
	}
	return fmt.Sprintf("%s every %s, timeout %s, healthy after %d, unhealthy after %d",
		s, hc.Interval, hc.Timeout, hc.HealthyThreshold, hc.UnhealthyThreshold)
}

func (cb BreakerInEffect) describe() string {
	switch {
	case cb.Default:
		return "package defaults"
	case cb.Disabled:
		return "disabled"
	}
	var parts []string
	if cb.FailureThreshold != 0 {
		parts = append(parts, "failure ratio "+strconv.FormatFloat(cb.FailureThreshold, 'g', -1, 64))
	}
	if cb.Window != "" {
		parts = append(parts, "window "+cb.Window)
	}
	if cb.MinRequests != 0 {
		parts = append(parts, "min requests "+strconv.Itoa(cb.MinRequests))
	}
	if cb.OpenTimeout != "" {
		parts = append(parts, "open "+cb.OpenTimeout)
	}
	if cb.HalfOpenProbes != 0 {
		parts = append(parts, "half-open probes "+strconv.Itoa(cb.HalfOpenProbes))
	}
	if cb.Count5xx {
		parts = append(parts, "5xx counts")
	}
	if len(parts) == 0 {
		return "package defaults"
	}
	return strings.Join(parts, ", ")
}

func (c ConnectionsInEffect) describe() string {
	var parts []string
	if c.MaxPerEndpoint != 0 {
		parts = append(parts, "max "+strconv.Itoa(c.MaxPerEndpoint)+" per endpoint")
	}
	if c.IdleTimeout != "" {
		parts = append(parts, "idle timeout "+c.IdleTimeout)
	}
	if c.MaxRequests != 0 {
		parts = append(parts, "max "+strconv.Itoa(c.MaxRequests)+" requests each")
	}
	if c.MaxLifetime != "" {
		parts = append(parts, "max lifetime "+c.MaxLifetime)
	}
	return strings.Join(parts, ", ")
}

func (r RetryInEffect) describe() string {
	var parts []string
	if r.Backoff != "" {
		parts = append(parts, "backoff "+r.Backoff)
	}
	if r.MaxBackoff != "" {
		parts = append(parts, "max backoff "+r.MaxBackoff)
	}
	if r.BudgetPercent != 0 {
		s := "budget " + strconv.FormatFloat(r.BudgetPercent, 'g', -1, 64) + "%"
		if r.BudgetInterval != "" {
			s += " per " + r.BudgetInterval
		}
		if r.MinRetries != 0 {
			s += ", at least " + strconv.Itoa(r.MinRetries)
			if r.MinRetriesInterval != "" {
				s += " per " + r.MinRetriesInterval
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
