package gatewayapi

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GRPCRoutes compile to the router's HTTP matches, as a gRPC call is a POST
// to "/service/method":
//
//   - Exact service and method: the Exact path "/service/method";
//   - Exact service alone: the PathPrefix "/service";
//   - Exact method alone: the expression "/[^/]+/method";
//   - RegularExpression: the expression "/(?:service)/(?:method)", an
//     omitted part matching any name;
//   - no method match: every path.
//
// The router's precedence then orders them as the spec does for the
// matches of core support (Exact service and method: more characters
// first) and header counts; among the matches of implementation-specific
// support, an Exact method alone and expressions rank after the Exact
// service-and-method paths and before Exact services alone.

// reasonKindConflict is the Accepted=False reason of a route that lost
// every listener of a parent to an older route of the other kind
// (HTTPRoute or GRPCRoute) with intersecting hostnames.
const reasonKindConflict gatewayv1.RouteConditionReason = "HostnameConflict"

// Service and method names as the GRPCRoute CRD validates Exact matches.
var (
	grpcServiceName = regexp.MustCompile(`^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`)
	grpcMethodName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)
)

func grpcRouteObject(r *gatewayv1.GRPCRoute) routeObject {
	return routeObject{kindGRPCRoute, &r.ObjectMeta, r.Spec.ParentRefs, r.Spec.Hostnames}
}

// attachGRPCRoutes returns the GRPCRoutes sorted by namespace/name, each
// with its parents attached.
func (t *translator) attachGRPCRoutes() ([]*gatewayv1.GRPCRoute, [][]*parentState) {
	order := make([]*gatewayv1.GRPCRoute, 0, len(t.res.GRPCRoutes))
	for i := range t.res.GRPCRoutes {
		order = append(order, &t.res.GRPCRoutes[i])
	}
	slices.SortFunc(order, func(a, b *gatewayv1.GRPCRoute) int {
		return compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name})
	})
	parents := make([][]*parentState, len(order))
	for i, r := range order {
		parents[i] = t.attachRoute(grpcRouteObject(r))
	}
	return order, parents
}

// resolveKindConflicts applies the GRPCRoute rule between kinds: when an
// HTTPRoute and a GRPCRoute attached to one listener have intersecting
// hostnames, only the older one (then the first by namespace/name) is
// served there. Routes are taken oldest first, and a route that lost a
// listener takes part in no further conflict there. A parent whose every
// listener was lost is Accepted=False.
func resolveKindConflicts(httpRoutes []*gatewayv1.HTTPRoute, httpParents [][]*parentState, grpcRoutes []*gatewayv1.GRPCRoute, grpcParents [][]*parentState) {
	type claim struct {
		grpc    bool
		ro      routeObject
		p       *parentState
		hosts   []string
		dropped bool
	}
	byListener := map[*listenerState][]*claim{}
	var lists []*listenerState
	add := func(ro routeObject, grpc bool, parents []*parentState) {
		for _, p := range parents {
			if p.reason != "" {
				continue
			}
			for _, a := range p.attached {
				if byListener[a.l] == nil {
					lists = append(lists, a.l)
				}
				byListener[a.l] = append(byListener[a.l], &claim{grpc: grpc, ro: ro, p: p, hosts: a.hosts})
			}
		}
	}
	for i, r := range httpRoutes {
		add(httpRouteObject(r), false, httpParents[i])
	}
	if len(byListener) == 0 {
		return
	}
	for i, r := range grpcRoutes {
		add(grpcRouteObject(r), true, grpcParents[i])
	}
	lost := map[*parentState]map[*listenerState]string{}
	for _, l := range lists {
		cs := byListener[l]
		slices.SortStableFunc(cs, func(a, b *claim) int {
			return olderFirst(a.ro.meta.CreationTimestamp, b.ro.meta.CreationTimestamp,
				nn{a.ro.meta.Namespace, a.ro.meta.Name}, nn{b.ro.meta.Namespace, b.ro.meta.Name})
		})
		for i, c := range cs {
			for _, w := range cs[:i] {
				if w.dropped || w.grpc == c.grpc || !hostnamesIntersect(w.hosts, c.hosts) {
					continue
				}
				c.dropped = true
				if lost[c.p] == nil {
					lost[c.p] = map[*listenerState]string{}
				}
				lost[c.p][l] = fmt.Sprintf("%s %s/%s", w.ro.kind, w.ro.meta.Namespace, w.ro.meta.Name)
				break
			}
		}
	}
	for p, ls := range lost {
		var winner string
		p.attached = slices.DeleteFunc(p.attached, func(a attachment) bool {
			w, ok := ls[a.l]
			if ok && winner == "" {
				winner = w
			}
			return ok
		})
		if len(p.attached) == 0 {
			p.reason = reasonKindConflict
			p.msg = fmt.Sprintf("the older %s serves intersecting hostnames on the listener (an HTTPRoute and a GRPCRoute cannot share a hostname)", winner)
		}
	}
}

// hostnamesIntersect reports whether two lists of effective hostnames
// share a host; an empty list means any host.
func hostnamesIntersect(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, h := range a {
		if _, ok := router.IntersectHostnames(h, b); ok {
			return true
		}
	}
	return false
}

// translateGRPCRoute translates one GRPCRoute attached to parents.
// TrafficPolicies do not target GRPCRoutes.
func (t *translator) translateGRPCRoute(r *gatewayv1.GRPCRoute, parents []*parentState) {
	if len(parents) == 0 {
		return
	}
	gws := parentGateways(parents)
	base := proxy.Route{Namespace: r.Namespace, Name: r.Name, CreationTime: r.CreationTimestamp.Time, GRPC: true}
	rulesByCert, invalid, refErr := rulesPerClientCert(gws, func(gws []*gatewayState, cc clientCert) ([]proxy.Rule, *ruleError, *refError) {
		return t.translateGRPCRules(r, gws, cc)
	})
	st := GRPCRouteStatus{Namespace: r.Namespace, Name: r.Name, Generation: r.Generation}
	st.Status.RouteStatus = t.attachRules(r.Generation, parents, base, rulesByCert, invalid, refErr)
	t.grpcRouteStatus = append(t.grpcRouteStatus, st)
}

// translateGRPCRules translates a GRPCRoute's rules, as translateRules
// does an HTTPRoute's.
func (t *translator) translateGRPCRules(r *gatewayv1.GRPCRoute, gws []*gatewayState, cc clientCert) (rules []proxy.Rule, invalid *ruleError, refErr *refError) {
	ro := grpcRouteObject(r)
	var faults ruleFaults
	fail, noteRef := faults.fail, faults.noteRef
	rules = make([]proxy.Rule, 0, len(r.Spec.Rules))
	for i := range r.Spec.Rules {
		rr := &r.Spec.Rules[i]
		field := fmt.Sprintf("spec.rules[%d]", i)
		pr := proxy.Rule{Name: string(deref(rr.Name))}
		if pr.Name != "" && slices.ContainsFunc(rules, func(o proxy.Rule) bool { return o.Name == pr.Name }) {
			fail(gatewayv1.RouteReasonUnsupportedValue, "%s.name: %q is the name of an earlier rule", field, pr.Name)
		}
		for j := range rr.Matches {
			m, err := convertGRPCMatch(&rr.Matches[j])
			if err != nil {
				fail(gatewayv1.RouteReasonUnsupportedValue, "%s.matches[%d].%v", field, j, err)
				continue
			}
			pr.Matches = append(pr.Matches, m)
		}
		if err := validateMatches(r.Namespace, r.Name, pr.Matches); err != nil {
			fail(gatewayv1.RouteReasonUnsupportedValue, "%s.matches%v", field, err)
		}
		fs, e, bad := t.convertFilters(ro, grpcFilters(rr.Filters), field+".filters", gws, cc)
		noteRef("", e)
		if bad != nil {
			fail(bad.reason, "%s", bad.msg)
		}
		pr.Filters = fs
		for j := range rr.BackendRefs {
			br := &rr.BackendRefs[j]
			bfield := fmt.Sprintf("%s.backendRefs[%d]", field, j)
			w := uint32(1)
			if br.Weight != nil {
				if *br.Weight < 0 {
					fail(gatewayv1.RouteReasonUnsupportedValue, "%s.weight: %d is negative", bfield, *br.Weight)
					continue
				}
				w = uint32(*br.Weight)
			}
			name, e := t.resolveRouteBackend(kindGRPCRoute, r.Namespace, r.Name, &br.BackendObjectReference, gws, cc)
			noteRef(bfield, e)
			ref := proxy.BackendRef{Backend: name, Weight: w}
			bfs, e, bad := t.convertFilters(ro, grpcFilters(br.Filters), bfield+".filters", gws, cc)
			noteRef("", e)
			if bad != nil {
				fail(bad.reason, "%s", bad.msg)
			}
			ref.Filters = bfs
			pr.Backends = append(pr.Backends, ref)
		}
		if sp := rr.SessionPersistence; sp != nil {
			ps, err := sessionPersistence(sp, nil, field+".sessionPersistence")
			if err != nil {
				fail(gatewayv1.RouteReasonUnsupportedValue, "%v", err)
			}
			pr.SessionPersistence = ps
		}
		rules = append(rules, pr)
	}
	return rules, faults.invalid, faults.refErr
}

// grpcFilters restates GRPCRoute filters as the HTTPRoute filters of the
// same type and settings; types the GRPCRoute API does not define are
// kept under their name, and refused by convertFilters.
func grpcFilters(in []gatewayv1.GRPCRouteFilter) []gatewayv1.HTTPRouteFilter {
	if len(in) == 0 {
		return nil
	}
	out := make([]gatewayv1.HTTPRouteFilter, len(in))
	for i, f := range in {
		out[i] = gatewayv1.HTTPRouteFilter{
			Type:                   gatewayv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		}
		switch f.Type {
		case gatewayv1.GRPCRouteFilterRequestHeaderModifier, gatewayv1.GRPCRouteFilterResponseHeaderModifier,
			gatewayv1.GRPCRouteFilterRequestMirror, gatewayv1.GRPCRouteFilterExtensionRef:
		default:
			// A type HTTPRoute knows but GRPCRoute does not (URLRewrite,
			// say) must not slip through.
			out[i].Type = "GRPCRoute/" + gatewayv1.HTTPRouteFilterType(f.Type)
		}
	}
	return out
}

// convertGRPCMatch converts one GRPCRouteMatch to a router match (see the
// comment at the top of this file). An error names the field below the
// match.
func convertGRPCMatch(m *gatewayv1.GRPCRouteMatch) (router.Match, error) {
	var out router.Match
	if mm := m.Method; mm != nil {
		svc, meth := deref(mm.Service), deref(mm.Method)
		if svc == "" && meth == "" {
			return out, errors.New("method: at least one of service and method must be set")
		}
		switch typ := cmp.Or(deref(mm.Type), gatewayv1.GRPCMethodMatchExact); typ {
		case gatewayv1.GRPCMethodMatchExact:
			if svc != "" && !grpcServiceName.MatchString(svc) {
				return out, fmt.Errorf("method.service: %q is not a gRPC service name", svc)
			}
			if meth != "" && !grpcMethodName.MatchString(meth) {
				return out, fmt.Errorf("method.method: %q is not a gRPC method name", meth)
			}
			switch {
			case svc != "" && meth != "":
				out.Path = router.PathMatch{Type: router.PathExact, Value: "/" + svc + "/" + meth}
			case svc != "":
				out.Path = router.PathMatch{Type: router.PathPrefix, Value: "/" + svc}
			default:
				out.Path = router.PathMatch{Type: router.PathRegularExpression, Value: "/[^/]+/" + regexp.QuoteMeta(meth)}
			}
		case gatewayv1.GRPCMethodMatchRegularExpression:
			part := func(name, expr string) (string, error) {
				if expr == "" {
					return "[^/]+", nil
				}
				if _, err := regexp.Compile(expr); err != nil {
					return "", fmt.Errorf("method.%s: %q is not a valid regular expression: %v", name, expr, err)
				}
				return "(?:" + expr + ")", nil
			}
			s, err := part("service", svc)
			if err != nil {
				return out, err
			}
			me, err := part("method", meth)
			if err != nil {
				return out, err
			}
			out.Path = router.PathMatch{Type: router.PathRegularExpression, Value: "/" + s + "/" + me}
		default:
			return out, fmt.Errorf("method.type: %q is not supported", typ)
		}
	}
	for i, h := range m.Headers {
		hm := router.HeaderMatch{Name: string(h.Name), Value: h.Value}
		switch typ := cmp.Or(deref(h.Type), gatewayv1.GRPCHeaderMatchExact); typ {
		case gatewayv1.GRPCHeaderMatchExact:
			hm.Type = router.HeaderExact
		case gatewayv1.GRPCHeaderMatchRegularExpression:
			hm.Type = router.HeaderRegularExpression
		default:
			return out, fmt.Errorf("headers[%d].type: %q is not supported", i, typ)
		}
		out.Headers = append(out.Headers, hm)
	}
	return out, nil
}
