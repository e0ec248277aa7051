package gatewayapi

import (
	"fmt"
	"time"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
	"golang.org/x/net/http/httpguts"
)

// Bounds of a TrafficPolicy's fields, as its CRD states them.
const (
	maxRateLimitRequests = 1000000000
	maxRateLimitKeyName  = 256
)

// trafficPolicies are the TrafficPolicies, which set what the proxy admits
// from clients on Gateways, listeners, HTTPRoutes and HTTPRoute rules.
type trafficPolicies struct {
	ix *attachIndex[trafficSettings]
}

// trafficSettings is what a valid TrafficPolicy sets.
type trafficSettings struct {
	// rate is the rate limit, without its Name, which depends on the
	// target.
	rate   *proxy.RateLimit
	limits proxy.RequestLimits
}

func newTrafficPolicies(t *translator) *trafficPolicies {
	gateways := make(map[nn]bool, len(t.res.Gateways))
	for i := range t.res.Gateways {
		gateways[nn{t.res.Gateways[i].Namespace, t.res.Gateways[i].Name}] = true
	}
	routes := make(map[nn]bool, len(t.res.HTTPRoutes))
	for i := range t.res.HTTPRoutes {
		routes[nn{t.res.HTTPRoutes[i].Namespace, t.res.HTTPRoutes[i].Name}] = true
	}
	exists := func(pt policyTarget) bool {
		if pt.group != groupGateway {
			return false
		}
		switch pt.kind {
		case kindGateway:
			return gateways[nn{pt.ns, pt.name}]
		case kindHTTPRoute:
			return routes[nn{pt.ns, pt.name}]
		}
		return false
	}
	ix := newAttachIndex(kindTrafficPolicy, t.controller, len(t.res.TrafficPolicies), func(i int) policyInput[trafficSettings] {
		p := &t.res.TrafficPolicies[i]
		in := policyInput[trafficSettings]{meta: &p.ObjectMeta}
		for _, tr := range p.Spec.TargetRefs {
			in.targets = append(in.targets, policyTarget{group: tr.Group, kind: tr.Kind, ns: p.Namespace, name: string(tr.Name), section: string(deref(tr.SectionName))})
		}
		var err error
		if in.spec, err = trafficPolicy(&p.Spec); err != nil {
			in.invalid = err.Error()
		}
		return in
	}, exists)
	return &trafficPolicies{ix: ix}
}

// trafficPolicy checks spec as the CRD's schema and CEL rules do and
// converts it.
func trafficPolicy(spec *rautav1alpha1.TrafficPolicySpec) (trafficSettings, error) {
	var out trafficSettings
	if n := len(spec.TargetRefs); n == 0 || n > maxPolicyTargetRefs {
		return out, fmt.Errorf("spec.targetRefs: %d targets, must be 1 to %d", n, maxPolicyTargetRefs)
	}
	for i, tr := range spec.TargetRefs {
		if tr.Group != groupGateway || (tr.Kind != kindGateway && tr.Kind != kindHTTPRoute) {
			return out, fmt.Errorf("spec.targetRefs[%d]: %s of group %q is not a Gateway or HTTPRoute of group %s", i, tr.Kind, tr.Group, groupGateway)
		}
	}
	if spec.RateLimit == nil && spec.RequestBody == nil && spec.Timeouts == nil {
		return out, fmt.Errorf("spec: at least one setting besides targetRefs is required")
	}
	if rl := spec.RateLimit; rl != nil {
		const field = "spec.rateLimit"
		if err := inRange(field+".requests", rl.Requests, 1, maxRateLimitRequests); err != nil {
			return out, err
		}
		var unit time.Duration
		switch rl.Unit {
		case rautav1alpha1.Second:
			unit = time.Second
		case rautav1alpha1.Minute:
			unit = time.Minute
		case rautav1alpha1.Hour:
			unit = time.Hour
		case "":
			return out, fmt.Errorf("%s.unit: required (Second, Minute or Hour)", field)
		default:
			return out, fmt.Errorf("%s.unit: %q is not Second, Minute or Hour", field, rl.Unit)
		}
		r := &proxy.RateLimit{Rate: float64(rl.Requests) / unit.Seconds(), Burst: int(rl.Requests), Window: unit}
		if b := rl.Burst; b != nil {
			if err := inRange(field+".burst", *b, 1, maxRateLimitRequests); err != nil {
				return out, err
			}
			r.Burst = int(*b)
		}
		if k := rl.Key; k != nil {
			switch k.Type {
			case rautav1alpha1.RateLimitByClientAddress:
				if k.Name != "" {
					return out, fmt.Errorf("%s.key.name: not allowed for type ClientAddress", field)
				}
				r.Key = upstream.HashKey{Source: upstream.KeyClientAddress}
			case rautav1alpha1.RateLimitByHeader:
				switch {
				case k.Name == "":
					return out, fmt.Errorf("%s.key.name: required for type Header", field)
				case len(k.Name) > maxRateLimitKeyName:
					return out, fmt.Errorf("%s.key.name: longer than %d characters", field, maxRateLimitKeyName)
				case !httpguts.ValidHeaderFieldName(k.Name):
					return out, fmt.Errorf("%s.key.name: %q is not a valid header name", field, k.Name)
				}
				r.Key = upstream.HashKey{Source: upstream.KeyHeader, Name: k.Name}
			default:
				return out, fmt.Errorf("%s.key.type: %q is not ClientAddress or Header", field, k.Type)
			}
		}
		out.rate = r
	}
	if rb := spec.RequestBody; rb != nil {
		// A copy: Quantity's methods cache their results in it, and
		// the input must not change.
		q := rb.MaxSize.DeepCopy()
		n := q.Value()
		if q.Sign() <= 0 || n <= 0 {
			return out, fmt.Errorf("spec.requestBody.maxSize: %s is not a positive size", q.String())
		}
		out.limits.MaxBodyBytes = n
	}
	if to := spec.Timeouts; to != nil {
		var err error
		if out.limits.ReadTimeout, err = positiveDuration(to.Read, "spec.timeouts.read"); err != nil {
			return out, err
		}
		if out.limits.WriteTimeout, err = positiveDuration(to.Write, "spec.timeouts.write"); err != nil {
			return out, err
		}
	}
	return out, nil
}

// gatewayTarget is the policy target of Gateway g, or of its listener
// named section.
func gatewayTarget(g *gatewayState, section string) policyTarget {
	return policyTarget{group: groupGateway, kind: kindGateway, ns: g.key.ns, name: g.key.name, section: section}
}

// routeTarget is the policy target of an HTTPRoute in ns, or of its rule
// named section.
func routeTarget(ns, name, section string) policyTarget {
	return policyTarget{group: groupGateway, kind: kindHTTPRoute, ns: ns, name: name, section: section}
}

// reachGateways records the handled Gateways as the ancestors of the
// policies on them and their listeners.
func (tp *trafficPolicies) reachGateways(gws []*gatewayState) {
	for _, g := range gws {
		obj := gatewayTarget(g, "")
		tp.ix.reachObject(obj, []*gatewayState{g}, func(section string) bool {
			for _, l := range g.listeners {
				if string(l.spec.Name) == section {
					return true
				}
			}
			return false
		})
		tp.ix.reach(obj, []*gatewayState{g})
		for _, l := range g.listeners {
			tp.ix.reach(gatewayTarget(g, string(l.spec.Name)), []*gatewayState{g})
		}
	}
}

// reachRoute records the Gateways gws that route ns/name with the given
// rule names is served through as the ancestors of the policies on it and
// its rules.
func (tp *trafficPolicies) reachRoute(ns, name string, rules []string, gws []*gatewayState) {
	if len(gws) == 0 {
		return
	}
	obj := routeTarget(ns, name, "")
	tp.ix.reachObject(obj, gws, func(section string) bool {
		for _, r := range rules {
			if r == section {
				return true
			}
		}
		return false
	})
	tp.ix.reach(obj, gws)
	for _, r := range rules {
		if r != "" {
			tp.ix.reach(routeTarget(ns, name, r), gws)
		}
	}
}

// rateLimitName names the budget of policy p's rate limit on target pt:
// "namespace/policy:Kind/name", with "/section" for a listener or rule.
// Kubernetes names hold neither ':' nor '/', so the name is unique per
// policy and target, and stable.
func rateLimitName(p *attachedPolicy[trafficSettings], pt policyTarget) string {
	s := p.key.String() + ":" + string(pt.kind) + "/" + pt.name
	if pt.section != "" {
		s += "/" + pt.section
	}
	return s
}

// settings returns the rate limits, the request limits and the
// provenance of the policies in effect on the targets, least specific
// first: every rate limit applies, and request limits merge field by
// field, a more specific target's winning.
func (tp *trafficPolicies) settings(targets ...policyTarget) (rates []proxy.RateLimit, limits proxy.RequestLimits, policies []string) {
	var ps []*attachedPolicy[trafficSettings]
	for _, pt := range targets {
		p := tp.ix.winner(pt)
		if p == nil {
			continue
		}
		ps = append(ps, p)
		if p.spec.rate != nil {
			r := *p.spec.rate
			r.Name = rateLimitName(p, pt)
			rates = append(rates, r)
		}
		limits = mergeRequestLimits(limits, p.spec.limits)
	}
	return rates, limits, provenances(ps...)
}

// mergeRequestLimits returns general with the fields specific sets
// instead.
func mergeRequestLimits(general, specific proxy.RequestLimits) proxy.RequestLimits {
	if specific.MaxBodyBytes != 0 {
		general.MaxBodyBytes = specific.MaxBodyBytes
	}
	if specific.ReadTimeout != 0 {
		general.ReadTimeout = specific.ReadTimeout
	}
	if specific.WriteTimeout != 0 {
		general.WriteTimeout = specific.WriteTimeout
	}
	return general
}

// applyListener sets on pl the settings of the policies on l's Gateway and
// on l, a listener of the Gateway's own (a ListenerSet's listeners take
// the Gateway's settings only).
func (tp *trafficPolicies) applyListener(l *listenerState, pl *proxy.Listener) {
	targets := []policyTarget{gatewayTarget(l.gw, "")}
	if l.set == nil {
		targets = append(targets, gatewayTarget(l.gw, string(l.spec.Name)))
	}
	pl.RateLimits, pl.RequestLimits, pl.Policies = tp.settings(targets...)
}
