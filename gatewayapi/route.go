package gatewayapi

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// parentState is one parentRef of a route that names a handled Gateway or
// ListenerSet.
type parentState struct {
	ref       gatewayv1.ParentReference // as reported in status (group and kind defaulted)
	gw        *gatewayState
	set       *listenerSetState // when the parent is a ListenerSet
	listeners []*listenerState  // the candidate listeners
	// attached are the listeners the route attached to, with the effective
	// hostnames on each.
	attached []attachment
	reason   gatewayv1.RouteConditionReason // Accepted false reason, or ""
	msg      string
}

type attachment struct {
	l     *listenerState
	hosts []string
	// origins are the route hostnames hosts came from, nil when each is
	// its own (see proxy.Route.HostnameOrigins).
	origins []string
}

// routeObject is what attachment reads of a route of any kind.
type routeObject struct {
	kind       gatewayv1.Kind
	meta       *metav1.ObjectMeta
	parentRefs []gatewayv1.ParentReference
	hostnames  []gatewayv1.Hostname
}

func httpRouteObject(r *gatewayv1.HTTPRoute) routeObject {
	return routeObject{kindHTTPRoute, &r.ObjectMeta, r.Spec.ParentRefs, r.Spec.Hostnames}
}

// translateRoutes attaches the HTTPRoutes and GRPCRoutes to the
// listeners, settles the conflicts between the two kinds, translates
// their rules and computes their status.
func (t *translator) translateRoutes() {
	order := make([]*gatewayv1.HTTPRoute, 0, len(t.res.HTTPRoutes))
	for i := range t.res.HTTPRoutes {
		order = append(order, &t.res.HTTPRoutes[i])
	}
	slices.SortFunc(order, func(a, b *gatewayv1.HTTPRoute) int {
		return compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name})
	})
	httpParents := make([][]*parentState, len(order))
	for i, r := range order {
		httpParents[i] = t.attachRoute(httpRouteObject(r))
	}
	grpcOrder, grpcParents := t.attachGRPCRoutes()
	resolveKindConflicts(order, httpParents, grpcOrder, grpcParents)
	for i, r := range order {
		t.translateRoute(r, httpParents[i])
	}
	for i, r := range grpcOrder {
		t.translateGRPCRoute(r, grpcParents[i])
	}
}

// attachRoute resolves the parents of a route and attaches it to their
// listeners.
func (t *translator) attachRoute(ro routeObject) []*parentState {
	parents := t.resolveParents(ro)
	for _, p := range parents {
		t.attach(ro, p)
	}
	return parents
}

// resolveParents returns the route's parentRefs that name a handled
// Gateway or ListenerSet.
func (t *translator) resolveParents(r routeObject) []*parentState {
	var out []*parentState
	for _, pr := range r.parentRefs {
		grp := groupGateway
		if pr.Group != nil {
			grp = *pr.Group
		}
		kind := cmp.Or(deref(pr.Kind), kindGateway)
		if grp != groupGateway {
			continue
		}
		ns := cmp.Or(string(deref(pr.Namespace)), r.meta.Namespace)
		// The status echoes the reference with group and kind defaulted,
		// as the API server stores it, sharing no memory with the input.
		ref := gatewayv1.ParentReference{Group: new(grp), Kind: new(kind), Name: pr.Name}
		if pr.Namespace != nil {
			ref.Namespace = new(*pr.Namespace)
		}
		if pr.SectionName != nil {
			ref.SectionName = new(*pr.SectionName)
		}
		if pr.Port != nil {
			ref.Port = new(*pr.Port)
		}
		p := &parentState{ref: ref}
		switch kind {
		case kindGateway:
			g := t.gateways[nn{ns, string(pr.Name)}]
			if g == nil {
				continue
			}
			p.gw, p.listeners = g, g.listeners
		case kindListenerSet:
			s := t.listenerSets[nn{ns, string(pr.Name)}]
			if s == nil {
				continue
			}
			p.gw, p.listeners, p.set = s.gw, s.listeners, s
		default:
			continue
		}
		out = append(out, p)
	}
	return out
}

// attach decides whether route r attaches to parent p, and to which of its
// listeners.
func (t *translator) attach(r routeObject, p *parentState) {
	if p.set != nil && !p.set.allowed {
		p.reason = gatewayv1.RouteReasonNotAllowedByListeners
		p.msg = fmt.Sprintf("ListenerSet %s is not allowed by Gateway %s", p.set.key, p.gw.key)
		return
	}
	sec := deref(p.ref.SectionName)
	port := deref(p.ref.Port)
	var matched []*listenerState
	for _, l := range p.listeners {
		if sec != "" && l.spec.Name != sec {
			continue
		}
		if port != 0 && l.spec.Port != port {
			continue
		}
		matched = append(matched, l)
	}
	if len(matched) == 0 {
		p.reason = gatewayv1.RouteReasonNoMatchingParent
		switch {
		case sec != "" && port != 0:
			p.msg = fmt.Sprintf("no listener named %q on port %d", sec, port)
		case sec != "":
			p.msg = fmt.Sprintf("no listener named %q", sec)
		case port != 0:
			p.msg = fmt.Sprintf("no listener on port %d", port)
		default:
			p.msg = "the parent has no listeners"
		}
		return
	}
	var allowed []*listenerState
	for _, l := range matched {
		if !l.accepted() {
			continue
		}
		if !slices.ContainsFunc(l.kinds, func(k gatewayv1.RouteGroupKind) bool { return k.Kind == r.kind }) {
			continue
		}
		var from *gatewayv1.FromNamespaces
		var sel *metav1.LabelSelector
		if ar := l.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
			from, sel = ar.Namespaces.From, ar.Namespaces.Selector
		}
		if !t.namespaceAllowed(from, sel, l.ns, r.meta.Namespace, gatewayv1.NamespacesFromSame) {
			continue
		}
		allowed = append(allowed, l)
	}
	if len(allowed) == 0 {
		p.reason = gatewayv1.RouteReasonNotAllowedByListeners
		p.msg = fmt.Sprintf("no matching listener allows %ss from namespace %s", r.kind, r.meta.Namespace)
		return
	}
	hosts := make([]string, len(r.hostnames))
	for i, h := range r.hostnames {
		hosts[i] = string(h)
	}
	for _, l := range allowed {
		if hs, origins, ok := intersectHostnames(l.hostname(), hosts); ok {
			if slices.Equal(hs, origins) {
				origins = nil
			}
			p.attached = append(p.attached, attachment{l: l, hosts: hs, origins: origins})
		}
	}
	if len(p.attached) == 0 {
		p.reason = gatewayv1.RouteReasonNoMatchingListenerHostname
		p.msg = "no route hostname matches a listener hostname"
	}
}

// translateRoute translates one HTTPRoute attached to parents.
func (t *translator) translateRoute(r *gatewayv1.HTTPRoute, parents []*parentState) {
	if len(parents) == 0 {
		return
	}
	gws := parentGateways(parents)
	ruleNames := make([]string, len(r.Spec.Rules))
	for i := range r.Spec.Rules {
		ruleNames[i] = string(deref(r.Spec.Rules[i].Name))
	}
	t.traffic.reachRoute(r.Namespace, r.Name, ruleNames, gws)
	base := proxy.Route{Namespace: r.Namespace, Name: r.Name, CreationTime: r.CreationTimestamp.Time}
	base.RateLimits, base.RequestLimits, base.Policies = t.traffic.settings(routeTarget(r.Namespace, r.Name, ""))
	// Gateways that present different client certificates to TLS
	// backends need rules of their own, whose TLS backends differ.
	rulesByCert, invalid, refErr := rulesPerClientCert(gws, func(gws []*gatewayState, cc clientCert) ([]proxy.Rule, *ruleError, *refError) {
		return t.translateRules(r, gws, cc)
	})
	st := HTTPRouteStatus{Namespace: r.Namespace, Name: r.Name, Generation: r.Generation}
	st.Status.RouteStatus = t.attachRules(r.Generation, parents, base, rulesByCert, invalid, refErr)
	t.routeStatus = append(t.routeStatus, st)
}

// rulesPerClientCert translates a route's rules once per group of its
// Gateways that present the same client certificate to TLS backends
// (groupByClientCert), keyed by the certificate's key. The verdicts on
// invalid rules and unresolved references do not depend on the
// certificate: the first group's are returned.
func rulesPerClientCert(gws []*gatewayState, translate func([]*gatewayState, clientCert) ([]proxy.Rule, *ruleError, *refError)) (rulesByCert map[string][]proxy.Rule, invalid *ruleError, refErr *refError) {
	groups := groupByClientCert(gws)
	rulesByCert = make(map[string][]proxy.Rule, len(groups))
	for i, cg := range groups {
		rules, inv, re := translate(cg.gws, cg.cc)
		rulesByCert[cg.cc.key] = rules
		if i == 0 {
			invalid, refErr = inv, re
		}
	}
	return rulesByCert, invalid, refErr
}

// parentGateways returns the Gateways of the parents a route attached to.
func parentGateways(parents []*parentState) []*gatewayState {
	var gws []*gatewayState
	for _, p := range parents {
		if len(p.attached) > 0 && !slices.Contains(gws, p.gw) {
			gws = append(gws, p.gw)
		}
	}
	return gws
}

// attachRules computes the parent statuses of a route of generation gen
// and adds a copy of base, with the rules of the Gateway's client
// certificate (rulesByCert), for each set of effective hostnames it
// serves on programmed listeners.
func (t *translator) attachRules(gen int64, parents []*parentState, base proxy.Route, rulesByCert map[string][]proxy.Rule, invalid *ruleError, refErr *refError) gatewayv1.RouteStatus {
	var st gatewayv1.RouteStatus
	st.Parents = []gatewayv1.RouteParentStatus{}
	routes := map[string]*proxy.Route{}
	var keys []string
	counted := map[*listenerState]bool{}
	for _, p := range parents {
		var acc metav1.Condition
		switch {
		case p.reason != "":
			acc = condition(gatewayv1.RouteConditionAccepted, false, p.reason, p.msg, gen)
		case invalid != nil:
			acc = condition(gatewayv1.RouteConditionAccepted, false, invalid.reason, invalid.msg, gen)
		default:
			acc = condition(gatewayv1.RouteConditionAccepted, true, gatewayv1.RouteReasonAccepted, "route accepted", gen)
		}
		var res metav1.Condition
		if refErr != nil {
			res = condition(gatewayv1.RouteConditionResolvedRefs, false, refErr.reason, refErr.msg, gen)
		} else {
			res = condition(gatewayv1.RouteConditionResolvedRefs, true, gatewayv1.RouteReasonResolvedRefs, "all references resolved", gen)
		}
		st.Parents = append(st.Parents, gatewayv1.RouteParentStatus{
			ParentRef:      p.ref,
			ControllerName: t.controller,
			Conditions:     []metav1.Condition{acc, res},
		})
		if p.reason != "" || invalid != nil {
			continue
		}
		for _, a := range p.attached {
			if !counted[a.l] {
				counted[a.l] = true
				a.l.attached++
			}
			if !a.l.programmed() {
				continue
			}
			certKey := p.gw.backendCert.key
			// The origins of a hostname depend on the route alone, so
			// attachments with the same hostnames share them.
			k := certKey + "\x00" + strings.Join(a.hosts, ",")
			pr := routes[k]
			if pr == nil {
				pr = new(base)
				pr.Hostnames, pr.HostnameOrigins = a.hosts, a.origins
				pr.Rules = rulesByCert[certKey]
				routes[k] = pr
				keys = append(keys, k)
			}
			if !slices.Contains(pr.Listeners, a.l.name) {
				pr.Listeners = append(pr.Listeners, a.l.name)
			}
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		pr := routes[k]
		slices.Sort(pr.Listeners)
		t.routes = append(t.routes, *pr)
	}
	return st
}

// ruleError is an invalid rule, which makes the route not Accepted.
type ruleError struct {
	reason gatewayv1.RouteConditionReason
	msg    string
}

// ruleFaults keeps the first invalid rule and the first unresolved
// backend reference met while a route's rules are translated, whatever
// the route kind.
type ruleFaults struct {
	invalid *ruleError
	refErr  *refError
}

// fail records an invalid rule unless one was recorded already.
func (f *ruleFaults) fail(reason gatewayv1.RouteConditionReason, format string, args ...any) {
	if f.invalid == nil {
		f.invalid = &ruleError{reason, fmt.Sprintf(format, args...)}
	}
}

// noteRef records e, prefixed with field when given, unless a reference
// error was recorded already.
func (f *ruleFaults) noteRef(field string, e *refError) {
	if e != nil && f.refErr == nil {
		f.refErr = e
		if field != "" {
			f.refErr = &refError{e.reason, field + ": " + e.msg}
		}
	}
}

// translateRules translates the route's rules. invalid is set when a rule
// cannot be served (the route is then not accepted); refErr is the first
// backend reference that could not be resolved.
func (t *translator) translateRules(r *gatewayv1.HTTPRoute, gws []*gatewayState, cc clientCert) (rules []proxy.Rule, invalid *ruleError, refErr *refError) {
	var faults ruleFaults
	fail, noteRef := faults.fail, faults.noteRef
	rules = make([]proxy.Rule, 0, len(r.Spec.Rules))
	for i := range r.Spec.Rules {
		rr := &r.Spec.Rules[i]
		field := fmt.Sprintf("spec.rules[%d]", i)
		pr := proxy.Rule{Name: string(deref(rr.Name))}
		if pr.Name != "" {
			pr.RateLimits, pr.RequestLimits, pr.Policies = t.traffic.settings(routeTarget(r.Namespace, r.Name, pr.Name))
		}
		for j := range rr.Matches {
			m, err := convertMatch(&rr.Matches[j])
			if err != nil {
				fail(gatewayv1.RouteReasonUnsupportedValue, "%s.matches[%d]: %v", field, j, err)
				continue
			}
			pr.Matches = append(pr.Matches, m)
		}
		if err := validateMatches(r.Namespace, r.Name, pr.Matches); err != nil {
			fail(gatewayv1.RouteReasonUnsupportedValue, "%s.matches%v", field, err)
		}
		fs, e, bad := t.convertFilters(httpRouteObject(r), rr.Filters, field+".filters", gws, cc)
		noteRef("", e)
		if bad != nil {
			fail(bad.reason, "%s", bad.msg)
		}
		pr.Filters = fs
		prefixReplace := usesPrefixReplace(fs)
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
			name, e := t.resolveBackend(r.Namespace, r.Name, &br.BackendObjectReference, gws, cc)
			noteRef(bfield, e)
			ref := proxy.BackendRef{Backend: name, Weight: w}
			bfs, e, bad := t.convertFilters(httpRouteObject(r), br.Filters, bfield+".filters", gws, cc)
			noteRef("", e)
			if bad != nil {
				fail(bad.reason, "%s", bad.msg)
			}
			ref.Filters = bfs
			prefixReplace = prefixReplace || usesPrefixReplace(bfs)
			pr.Backends = append(pr.Backends, ref)
		}
		if prefixReplace {
			for j, m := range pr.Matches {
				if m.Path.Type != router.PathPrefix {
					fail(gatewayv1.RouteReasonUnsupportedValue, "%s.matches[%d].path: ReplacePrefixMatch needs a PathPrefix match, not %v", field, j, m.Path.Type)
				}
			}
		}
		if to := rr.Timeouts; to != nil {
			if to.Request != nil {
				d, err := parseDuration(string(*to.Request))
				if err != nil {
					fail(gatewayv1.RouteReasonUnsupportedValue, "%s.timeouts.request: %v", field, err)
				}
				pr.Timeouts.Request = d
			}
			if to.BackendRequest != nil {
				d, err := parseDuration(string(*to.BackendRequest))
				if err != nil {
					fail(gatewayv1.RouteReasonUnsupportedValue, "%s.timeouts.backendRequest: %v", field, err)
				}
				pr.Timeouts.BackendRequest = d
			}
			if pr.Timeouts.Request != 0 && pr.Timeouts.BackendRequest > pr.Timeouts.Request {
				fail(gatewayv1.RouteReasonUnsupportedValue, "%s.timeouts.backendRequest: %v exceeds timeouts.request %v", field, pr.Timeouts.BackendRequest, pr.Timeouts.Request)
			}
		}
		if rt := rr.Retry; rt != nil {
			// Without attempts the count is the implementation's choice
			// (the CRD's default): one retry. An explicit zero disables
			// retries (v1.7), the proxy's default ones included.
			rp := &proxy.RetryPolicy{Attempts: 1}
			if rt.Attempts != nil {
				rp.Attempts = *rt.Attempts
			}
			for _, c := range rt.Codes {
				if c < 400 || c > 599 {
					fail(gatewayv1.RouteReasonUnsupportedValue, "%s.retry.codes: %d is not a 4xx or 5xx status code", field, c)
				}
				rp.Codes = append(rp.Codes, int(c))
			}
			if rt.Backoff != nil {
				d, err := parseDuration(string(*rt.Backoff))
				if err != nil {
					fail(gatewayv1.RouteReasonUnsupportedValue, "%s.retry.backoff: %v", field, err)
				}
				rp.Backoff = d
			}
			if rp.Attempts < 0 {
				fail(gatewayv1.RouteReasonUnsupportedValue, "%s.retry.attempts: %d is negative", field, rp.Attempts)
			}
			if rp.Attempts >= 0 {
				pr.Retry = rp
			}
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

// convertMatch converts one HTTPRouteMatch.
func convertMatch(m *gatewayv1.HTTPRouteMatch) (router.Match, error) {
	var out router.Match
	if p := m.Path; p != nil {
		switch t := cmp.Or(deref(p.Type), gatewayv1.PathMatchPathPrefix); t {
		case gatewayv1.PathMatchPathPrefix:
			out.Path.Type = router.PathPrefix
		case gatewayv1.PathMatchExact:
			out.Path.Type = router.PathExact
		case gatewayv1.PathMatchRegularExpression:
			out.Path.Type = router.PathRegularExpression
		default:
			return out, fmt.Errorf("path.type: %q is not supported", t)
		}
		out.Path.Value = cmp.Or(deref(p.Value), "/")
	}
	out.Method = string(deref(m.Method))
	for i, h := range m.Headers {
		hm := router.HeaderMatch{Name: string(h.Name), Value: h.Value}
		switch t := cmp.Or(deref(h.Type), gatewayv1.HeaderMatchExact); t {
		case gatewayv1.HeaderMatchExact:
			hm.Type = router.HeaderExact
		case gatewayv1.HeaderMatchRegularExpression:
			hm.Type = router.HeaderRegularExpression
		default:
			return out, fmt.Errorf("headers[%d].type: %q is not supported", i, t)
		}
		out.Headers = append(out.Headers, hm)
	}
	for i, q := range m.QueryParams {
		qm := router.QueryMatch{Name: string(q.Name), Value: q.Value}
		switch t := cmp.Or(deref(q.Type), gatewayv1.QueryParamMatchExact); t {
		case gatewayv1.QueryParamMatchExact:
			qm.Type = router.QueryExact
		case gatewayv1.QueryParamMatchRegularExpression:
			qm.Type = router.QueryRegularExpression
		default:
			return out, fmt.Errorf("queryParams[%d].type: %q is not supported", i, t)
		}
		out.QueryParams = append(out.QueryParams, qm)
	}
	return out, nil
}

// validateMatches compiles the matches with the router, which rejects
// invalid paths, regular expressions, methods and header names.
func validateMatches(ns, name string, ms []router.Match) error {
	if len(ms) == 0 {
		return nil
	}
	err := router.Compile([]router.Route{{Namespace: ns, Name: name, Rules: []router.Rule{{Matches: ms}}}}).Err()
	var re *router.RouteError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(re.Field, "rules[0].matches"), re.Err)
	}
	if err != nil {
		return fmt.Errorf(": %w", err)
	}
	return nil
}
