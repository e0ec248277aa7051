package gatewayapi

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TLSRouteStatus is the status of one TLSRoute.
type TLSRouteStatus struct {
	// Namespace is the route's namespace.
	Namespace string
	// Name is the route's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status: only this controller's parents.
	Status gatewayv1.TLSRouteStatus
}

// TCPRouteStatus is the status of one TCPRoute.
type TCPRouteStatus struct {
	// Namespace is the route's namespace.
	Namespace string
	// Name is the route's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status: only this controller's parents.
	Status gatewayv1.TCPRouteStatus
}

// UDPRouteStatus is the status of one UDPRoute.
type UDPRouteStatus struct {
	// Namespace is the route's namespace.
	Namespace string
	// Name is the route's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status: only this controller's parents.
	Status gatewayv1.UDPRouteStatus
}

// streamRoute is what TLSRoutes, TCPRoutes and UDPRoutes share: parents,
// hostnames (TLSRoute only) and rules of weighted backendRefs.
type streamRoute struct {
	routeObject
	rules [][]gatewayv1.BackendRef
}

// translateStreamRoutes attaches the TLSRoutes, TCPRoutes and UDPRoutes
// to the TLS, TCP and UDP listeners and computes their status. It runs after
// translateRoutes, so that a Service port HTTP routes also use keeps the
// HTTP settings (protocol, BackendTLSPolicy) they gave its backend.
func (t *translator) translateStreamRoutes() {
	tls := slices.Clone(t.res.TLSRoutes)
	slices.SortFunc(tls, func(a, b gatewayv1.TLSRoute) int { return compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name}) })
	for i := range tls {
		r := &tls[i]
		in := streamRoute{routeObject: routeObject{kind: kindTLSRoute, meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs, hostnames: r.Spec.Hostnames}}
		for _, rule := range r.Spec.Rules {
			in.rules = append(in.rules, rule.BackendRefs)
		}
		if parents, ok := t.translateStreamRoute(&in); ok {
			t.tlsRouteStatus = append(t.tlsRouteStatus, TLSRouteStatus{Namespace: r.Namespace, Name: r.Name, Generation: r.Generation,
				Status: gatewayv1.TLSRouteStatus{RouteStatus: gatewayv1.RouteStatus{Parents: parents}}})
		}
	}
	tcp := slices.Clone(t.res.TCPRoutes)
	slices.SortFunc(tcp, func(a, b gatewayv1.TCPRoute) int { return compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name}) })
	for i := range tcp {
		r := &tcp[i]
		in := streamRoute{routeObject: routeObject{kind: kindTCPRoute, meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs}}
		for _, rule := range r.Spec.Rules {
			in.rules = append(in.rules, rule.BackendRefs)
		}
		if parents, ok := t.translateStreamRoute(&in); ok {
			t.tcpRouteStatus = append(t.tcpRouteStatus, TCPRouteStatus{Namespace: r.Namespace, Name: r.Name, Generation: r.Generation,
				Status: gatewayv1.TCPRouteStatus{RouteStatus: gatewayv1.RouteStatus{Parents: parents}}})
		}
	}
	udp := slices.Clone(t.res.UDPRoutes)
	slices.SortFunc(udp, func(a, b gatewayv1.UDPRoute) int { return compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name}) })
	for i := range udp {
		r := &udp[i]
		in := streamRoute{routeObject: routeObject{kind: kindUDPRoute, meta: &r.ObjectMeta, parentRefs: r.Spec.ParentRefs}}
		for _, rule := range r.Spec.Rules {
			in.rules = append(in.rules, rule.BackendRefs)
		}
		if parents, ok := t.translateStreamRoute(&in); ok {
			t.udpRouteStatus = append(t.udpRouteStatus, UDPRouteStatus{Namespace: r.Namespace, Name: r.Name, Generation: r.Generation,
				Status: gatewayv1.UDPRouteStatus{RouteStatus: gatewayv1.RouteStatus{Parents: parents}}})
		}
	}
}

// translateStreamRoute attaches one TLSRoute, TCPRoute or UDPRoute, adding an
// l4.Route per listener it is served on, and returns its parent
// statuses; ok is false when no parentRef names a handled Gateway.
func (t *translator) translateStreamRoute(r *streamRoute) (parents []gatewayv1.RouteParentStatus, ok bool) {
	ps := t.attachRoute(r.routeObject)
	if len(ps) == 0 {
		return nil, false
	}
	var gws []*gatewayState
	for _, p := range ps {
		if len(p.attached) > 0 && !slices.Contains(gws, p.gw) {
			gws = append(gws, p.gw)
		}
	}
	var invalid *ruleError
	if len(r.rules) != 1 {
		invalid = &ruleError{gatewayv1.RouteReasonUnsupportedValue, fmt.Sprintf("spec.rules: %d rules; a %s has exactly one", len(r.rules), r.kind)}
	}
	var refErr *refError
	// resolve resolves the rule's backendRefs for the Gateways gws; with
	// cc non-nil, for TLS listeners that terminate, where the
	// BackendTLSPolicies of the Services apply and cc is the client
	// certificate the Gateways present.
	resolve := func(gws []*gatewayState, cc *clientCert) []l4.BackendRef {
		var refs []l4.BackendRef
		for j := range r.rules[0] {
			br := &r.rules[0][j]
			field := fmt.Sprintf("spec.rules[0].backendRefs[%d]", j)
			w := uint32(1)
			if br.Weight != nil {
				if *br.Weight < 0 {
					invalid = &ruleError{gatewayv1.RouteReasonUnsupportedValue, fmt.Sprintf("%s.weight: %d is negative", field, *br.Weight)}
					return nil
				}
				w = uint32(*br.Weight)
			}
			name, e := t.resolveStreamBackend(r.kind, r.meta.Namespace, r.meta.Name, &br.BackendObjectReference, gws, cc)
			if e != nil && refErr == nil {
				refErr = &refError{e.reason, field + ": " + e.msg}
			}
			// An unresolved reference keeps its weight and an empty name:
			// its share of the connections is refused.
			refs = append(refs, l4.BackendRef{Backend: name, Weight: w})
		}
		return refs
	}
	var refs []l4.BackendRef
	// termRefs are the references for terminating listeners, by the
	// client certificate key of their Gateway.
	termRefs := map[string][]l4.BackendRef{}
	if invalid == nil {
		refs = resolve(gws, nil)
		var termGws []*gatewayState
		for _, p := range ps {
			for _, a := range p.attached {
				if a.l.terminatesStreams() && !slices.Contains(termGws, p.gw) {
					termGws = append(termGws, p.gw)
				}
			}
		}
		if invalid == nil && len(termGws) > 0 {
			for _, cg := range groupByClientCert(termGws) {
				termRefs[cg.cc.key] = resolve(cg.gws, &cg.cc)
			}
		}
	}

	gen := r.meta.Generation
	parents = []gatewayv1.RouteParentStatus{}
	counted := map[*listenerState]bool{}
	for _, p := range ps {
		var acc metav1.Condition
		switch {
		case p.reason != "":
			acc = condition(gatewayv1.RouteConditionAccepted, false, p.reason, p.msg, gen)
		case invalid != nil:
			acc = condition(gatewayv1.RouteConditionAccepted, false, invalid.reason, invalid.msg, gen)
		default:
			acc = condition(gatewayv1.RouteConditionAccepted, true, gatewayv1.RouteReasonAccepted, "route accepted", gen)
		}
		res := condition(gatewayv1.RouteConditionResolvedRefs, true, gatewayv1.RouteReasonResolvedRefs, "all references resolved", gen)
		if refErr != nil {
			res = condition(gatewayv1.RouteConditionResolvedRefs, false, refErr.reason, refErr.msg, gen)
		}
		parents = append(parents, gatewayv1.RouteParentStatus{ParentRef: p.ref, ControllerName: t.controller, Conditions: []metav1.Condition{acc, res}})
		if p.reason != "" || invalid != nil {
			continue
		}
		for _, a := range p.attached {
			if !counted[a.l] {
				counted[a.l] = true
				a.l.attached++
			}
			if !a.l.programmed() || slices.ContainsFunc(t.streamRoutes, func(o l4.Route) bool {
				return o.Namespace == r.meta.Namespace && o.Name == r.meta.Name && o.Listeners[0] == a.l.name
			}) {
				continue
			}
			backends := refs
			if a.l.terminatesStreams() {
				backends = termRefs[p.gw.backendCert.key]
			}
			t.streamRoutes = append(t.streamRoutes, l4.Route{
				Namespace:       r.meta.Namespace,
				Name:            r.meta.Name,
				CreationTime:    r.meta.CreationTimestamp.Time,
				Listeners:       []string{a.l.name},
				Hostnames:       a.hosts,
				HostnameOrigins: a.origins,
				Backends:        backends,
			})
		}
	}
	return parents, true
}

// resolveStreamBackend resolves a backendRef of a TLSRoute, TCPRoute or
// UDPRoute to the key of a proxy backend, adding the backend when no other route
// did: the Service port's endpoints and backend policies (health checks,
// breakers, connection limits, Maglev). The stream is forwarded as it
// is, so the port's appProtocol plays no part. With cc non-nil the
// reference is for TLS listeners that terminate (gws are their
// Gateways): a BackendTLSPolicy of the port applies there, and makes the
// backend a TLS one, presenting cc, toward which the stream is
// re-encrypted; an invalid policy refuses the reference's share rather
// than falling back to cleartext. Passthrough and TCP listeners ignore a
// backend's TLS settings, so one backend serves both.
func (t *translator) resolveStreamBackend(kind gatewayv1.Kind, routeNS, routeName string, ref *gatewayv1.BackendObjectReference, gws []*gatewayState, cc *clientCert) (string, *refError) {
	svc, sp, e := t.serviceRef(kind, routeNS, routeName, ref)
	if e != nil {
		return "", e
	}
	name := BackendName(svc.Namespace, svc.Name, sp.Port)
	t.backendPolicies.apply(svc, sp, gws, nil)
	key := name
	var pol *policyState
	if cc != nil {
		pol = t.policies.lookup(svc, sp, gws)
		if pol != nil && pol.tls == nil {
			return "", nil
		}
		if pol != nil && cc.cert != nil {
			key = name + "\x00" + cc.key
		}
	}
	b := t.backends[key]
	if b == nil {
		b = &proxy.Backend{Spec: upstream.Spec{Name: name, Endpoints: Endpoints(svc, sp.Port, t.slices[nn{svc.Namespace, svc.Name}])}}
		if b.Endpoints == nil {
			b.Endpoints = []upstream.Endpoint{}
		}
		t.backendPolicies.apply(svc, sp, gws, b)
		t.backends[key] = b
	}
	if pol != nil && b.Protocol != proxy.BackendTLS {
		// A backend made for passthrough or TCP streams only: the HTTP
		// path makes its backends TLS wherever a policy applies.
		b.Protocol = proxy.BackendTLS
		b.TLS = pol.tls
		if cc.cert != nil {
			withCert := *pol.tls
			withCert.ClientCertificate = cc.cert
			b.TLS = &withCert
		}
	}
	return key, nil
}

// terminatesStreams reports whether the listener is a TLS listener that
// terminates TLS (tls.mode Terminate).
func (l *listenerState) terminatesStreams() bool { return l.protocol == proxy.TLS && !l.passthrough }

// sortStreamRoutes orders stream routes by namespace/name, then listener.
func sortStreamRoutes(rs []l4.Route) {
	slices.SortFunc(rs, func(a, b l4.Route) int {
		if c := compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name}); c != 0 {
			return c
		}
		return strings.Compare(a.Listeners[0], b.Listeners[0])
	})
}
