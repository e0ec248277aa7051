package filesource

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
)

// ObjectStatus is the outcome of a translation for one object, in a form
// meant for people: printed by `rauta validate`, logged on every reload and
// served on the admin endpoint /debug/status.
type ObjectStatus struct {
	// Kind is GatewayClass, Gateway, ListenerSet, HTTPRoute, GRPCRoute,
	// TLSRoute, TCPRoute, UDPRoute, BackendTLSPolicy, XBackendTrafficPolicy, BackendPolicy or
	// TrafficPolicy, or a Gateway API kind rauta does not serve (then
	// Ignored says so).
	Kind string `json:"kind"`
	// Namespace is empty for a GatewayClass.
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name.
	Name string `json:"name"`
	// Problems lists the conditions that say something is wrong, each as
	// "scope: Type=Status Reason: message"; empty when every condition is
	// as it should be.
	Problems []string `json:"problems,omitempty"`
	// Ignored, when set, says why the translator left the object alone
	// (another controller's class, no parentRef to a handled Gateway).
	// Ignored objects have no Status.
	Ignored string `json:"ignored,omitempty"`
	// Summary is a one-line account of a healthy object, e.g. the routes
	// attached to each listener of a Gateway.
	Summary string `json:"summary,omitempty"`
	// Status is the object's computed status: a
	// gatewayv1.GatewayClassStatus, GatewayStatus, ListenerSetStatus,
	// HTTPRouteStatus, GRPCRouteStatus or PolicyStatus.
	Status any `json:"status,omitempty"`
}

// OK reports whether the object has no problem.
func (o *ObjectStatus) OK() bool { return len(o.Problems) == 0 }

// String returns "Kind namespace/name: " followed by the summary, the
// reason it is ignored, or its problems.
func (o *ObjectStatus) String() string {
	var b strings.Builder
	b.WriteString(o.Kind)
	b.WriteByte(' ')
	if o.Namespace != "" {
		b.WriteString(o.Namespace)
		b.WriteByte('/')
	}
	b.WriteString(o.Name)
	b.WriteString(": ")
	switch {
	case o.Ignored != "":
		b.WriteString("ignored: ")
		b.WriteString(o.Ignored)
	case len(o.Problems) > 0:
		b.WriteString(strings.Join(o.Problems, "; "))
	default:
		b.WriteString(o.Summary)
	}
	return b.String()
}

// negativeConditions are the condition types that report a problem when
// True; every other condition reports one when False.
var negativeConditions = []string{"Conflicted", "PartiallyInvalid", "OverlappingTLSConfig"}

// problems returns the conditions of conds that report a problem.
func problems(scope string, conds []metav1.Condition) []string {
	var out []string
	for _, c := range conds {
		bad := c.Status == metav1.ConditionFalse
		if slices.Contains(negativeConditions, c.Type) {
			bad = c.Status == metav1.ConditionTrue
		}
		if c.Status == metav1.ConditionUnknown {
			bad = true
		}
		if !bad {
			continue
		}
		var b strings.Builder
		if scope != "" {
			b.WriteString(scope)
			b.WriteString(": ")
		}
		fmt.Fprintf(&b, "%s=%s %s", c.Type, c.Status, c.Reason)
		if c.Message != "" {
			b.WriteString(": ")
			b.WriteString(c.Message)
		}
		out = append(out, b.String())
	}
	return out
}

// routeObject summarizes a route of a kind other than HTTPRoute.
func routeObject(kind, ns, name string, parents []gatewayv1.RouteParentStatus, status any) ObjectStatus {
	o := ObjectStatus{Kind: kind, Namespace: ns, Name: name, Status: status}
	var names []string
	for _, p := range parents {
		pn := parentName(ns, p.ParentRef.Namespace, string(p.ParentRef.Name), p.ParentRef.SectionName)
		names = append(names, pn)
		o.Problems = append(o.Problems, problems("parent "+pn, p.Conditions)...)
	}
	o.Summary = "accepted by " + strings.Join(names, ", ")
	return o
}

// Summarize turns the status computed from res into one ObjectStatus per
// object: the objects of st in its order (GatewayClasses, Gateways,
// ListenerSets, HTTPRoutes, GRPCRoutes, TLSRoutes, TCPRoutes, UDPRoutes,
// BackendTLSPolicies, XBackendTrafficPolicies, BackendPolicies,
// TrafficPolicies), followed by the GatewayClasses, Gateways and routes of res that the translator
// ignored, the policies of res it computed no status for (they attach to
// nothing served), and the objects of Gateway API kinds rauta does not
// serve (res.NotServed). res may be nil.
func Summarize(res *gatewayapi.Resources, st gatewayapi.Status) []ObjectStatus {
	var out []ObjectStatus
	classes := map[string]bool{}
	for _, c := range st.GatewayClasses {
		classes[c.Name] = true
		out = append(out, ObjectStatus{
			Kind:     "GatewayClass",
			Name:     c.Name,
			Problems: problems("", c.Status.Conditions),
			Summary:  "accepted",
			Status:   c.Status,
		})
	}
	gateways := map[string]bool{}
	for _, g := range st.Gateways {
		gateways[g.Namespace+"/"+g.Name] = true
		o := ObjectStatus{Kind: "Gateway", Namespace: g.Namespace, Name: g.Name, Status: g.Status}
		o.Problems = problems("", g.Status.Conditions)
		var parts []string
		for _, a := range g.Status.Addresses {
			parts = append(parts, "address "+a.Value)
		}
		for _, l := range g.Status.Listeners {
			o.Problems = append(o.Problems, problems("listener "+string(l.Name), l.Conditions)...)
			parts = append(parts, "listener "+string(l.Name)+": "+routeCount(l.AttachedRoutes))
		}
		o.Summary = "programmed"
		if len(parts) > 0 {
			o.Summary += " (" + strings.Join(parts, ", ") + ")"
		}
		out = append(out, o)
	}
	for _, l := range st.ListenerSets {
		o := ObjectStatus{Kind: "ListenerSet", Namespace: l.Namespace, Name: l.Name, Status: l.Status}
		o.Problems = problems("", l.Status.Conditions)
		var parts []string
		for _, ll := range l.Status.Listeners {
			o.Problems = append(o.Problems, problems("listener "+string(ll.Name), ll.Conditions)...)
			parts = append(parts, "listener "+string(ll.Name)+": "+routeCount(ll.AttachedRoutes))
		}
		o.Summary = "accepted"
		if len(parts) > 0 {
			o.Summary += " (" + strings.Join(parts, ", ") + ")"
		}
		out = append(out, o)
	}
	routes := map[string]bool{}
	for _, r := range st.HTTPRoutes {
		routes[r.Namespace+"/"+r.Name] = true
		o := ObjectStatus{Kind: "HTTPRoute", Namespace: r.Namespace, Name: r.Name, Status: r.Status}
		var parents []string
		for _, p := range r.Status.Parents {
			name := parentName(r.Namespace, p.ParentRef.Namespace, string(p.ParentRef.Name), p.ParentRef.SectionName)
			parents = append(parents, name)
			o.Problems = append(o.Problems, problems("parent "+name, p.Conditions)...)
		}
		o.Summary = "accepted by " + strings.Join(parents, ", ")
		out = append(out, o)
	}
	for _, r := range st.GRPCRoutes {
		routes["GRPCRoute "+r.Namespace+"/"+r.Name] = true
		out = append(out, routeObject("GRPCRoute", r.Namespace, r.Name, r.Status.Parents, r.Status))
	}
	for _, r := range st.TLSRoutes {
		routes["TLSRoute "+r.Namespace+"/"+r.Name] = true
		out = append(out, routeObject("TLSRoute", r.Namespace, r.Name, r.Status.Parents, r.Status))
	}
	for _, r := range st.TCPRoutes {
		routes["TCPRoute "+r.Namespace+"/"+r.Name] = true
		out = append(out, routeObject("TCPRoute", r.Namespace, r.Name, r.Status.Parents, r.Status))
	}
	for _, r := range st.UDPRoutes {
		routes["UDPRoute "+r.Namespace+"/"+r.Name] = true
		out = append(out, routeObject("UDPRoute", r.Namespace, r.Name, r.Status.Parents, r.Status))
	}
	policies := map[string]bool{}
	for _, kind := range policyKinds(st) {
		for _, p := range kind.list {
			policies[kind.name+" "+p.Namespace+"/"+p.Name] = true
			o := ObjectStatus{Kind: kind.name, Namespace: p.Namespace, Name: p.Name, Status: p.Status}
			var ancestors []string
			for _, a := range p.Status.Ancestors {
				name := parentName(p.Namespace, a.AncestorRef.Namespace, string(a.AncestorRef.Name), a.AncestorRef.SectionName)
				ancestors = append(ancestors, name)
				o.Problems = append(o.Problems, problems("ancestor "+name, a.Conditions)...)
			}
			o.Summary = "accepted"
			if len(ancestors) > 0 {
				o.Summary += " for " + strings.Join(ancestors, ", ")
			}
			out = append(out, o)
		}
	}
	if res == nil {
		return out
	}

	// The objects the translator left alone, so that a route with a typo
	// in its parentRef does not go unnoticed.
	var ignored []ObjectStatus
	for i := range res.GatewayClasses {
		c := &res.GatewayClasses[i]
		if !classes[c.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "GatewayClass", Name: c.Name,
				Ignored: "controllerName is " + string(c.Spec.ControllerName)})
		}
	}
	for i := range res.Gateways {
		g := &res.Gateways[i]
		if !gateways[g.Namespace+"/"+g.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "Gateway", Namespace: g.Namespace, Name: g.Name,
				Ignored: "GatewayClass " + string(g.Spec.GatewayClassName) + " is not handled by this controller"})
		}
	}
	for i := range res.HTTPRoutes {
		r := &res.HTTPRoutes[i]
		if !routes[r.Namespace+"/"+r.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "HTTPRoute", Namespace: r.Namespace, Name: r.Name,
				Ignored: "no parentRef names a Gateway handled by this controller"})
		}
	}
	for i := range res.GRPCRoutes {
		r := &res.GRPCRoutes[i]
		if !routes["GRPCRoute "+r.Namespace+"/"+r.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "GRPCRoute", Namespace: r.Namespace, Name: r.Name,
				Ignored: "no parentRef names a Gateway handled by this controller"})
		}
	}
	for i := range res.TLSRoutes {
		r := &res.TLSRoutes[i]
		if !routes["TLSRoute "+r.Namespace+"/"+r.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "TLSRoute", Namespace: r.Namespace, Name: r.Name,
				Ignored: "no parentRef names a Gateway handled by this controller"})
		}
	}
	for i := range res.TCPRoutes {
		r := &res.TCPRoutes[i]
		if !routes["TCPRoute "+r.Namespace+"/"+r.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "TCPRoute", Namespace: r.Namespace, Name: r.Name,
				Ignored: "no parentRef names a Gateway handled by this controller"})
		}
	}
	for i := range res.UDPRoutes {
		r := &res.UDPRoutes[i]
		if !routes["UDPRoute "+r.Namespace+"/"+r.Name] {
			ignored = append(ignored, ObjectStatus{Kind: "UDPRoute", Namespace: r.Namespace, Name: r.Name,
				Ignored: "no parentRef names a Gateway handled by this controller"})
		}
	}
	for _, m := range res.NotServed {
		ignored = append(ignored, ObjectStatus{Kind: m.Kind, Namespace: m.Namespace, Name: m.Name,
			Ignored: "not served: rauta does not serve Gateway API kind " + m.Kind + " (" + m.APIVersion + ")"})
	}
	// A policy with no status attaches to nothing served: its targets do
	// not exist or are not reached through a Gateway of this controller.
	unattached := func(kind, ns, name string) {
		if !policies[kind+" "+ns+"/"+name] {
			ignored = append(ignored, ObjectStatus{Kind: kind, Namespace: ns, Name: name,
				Ignored: "no target is served through a Gateway handled by this controller"})
		}
	}
	for i := range res.BackendTLSPolicies {
		unattached("BackendTLSPolicy", res.BackendTLSPolicies[i].Namespace, res.BackendTLSPolicies[i].Name)
	}
	for i := range res.XBackendTrafficPolicies {
		unattached("XBackendTrafficPolicy", res.XBackendTrafficPolicies[i].Namespace, res.XBackendTrafficPolicies[i].Name)
	}
	for i := range res.BackendPolicies {
		unattached("BackendPolicy", res.BackendPolicies[i].Namespace, res.BackendPolicies[i].Name)
	}
	for i := range res.TrafficPolicies {
		unattached("TrafficPolicy", res.TrafficPolicies[i].Namespace, res.TrafficPolicies[i].Name)
	}
	slices.SortStableFunc(ignored, func(a, b ObjectStatus) int {
		return strings.Compare(a.Kind+" "+a.Namespace+"/"+a.Name, b.Kind+" "+b.Namespace+"/"+b.Name)
	})
	return append(out, ignored...)
}

// policyKind is the status of the policies of one kind.
type policyKind struct {
	name string
	list []gatewayapi.PolicyStatus
}

// policyKinds returns the policy statuses of st, kind by kind, in the
// order Summarize reports them.
func policyKinds(st gatewayapi.Status) []policyKind {
	return []policyKind{
		{"BackendTLSPolicy", st.BackendTLSPolicies},
		{"XBackendTrafficPolicy", st.XBackendTrafficPolicies},
		{"BackendPolicy", st.BackendPolicies},
		{"TrafficPolicy", st.TrafficPolicies},
	}
}

func routeCount(n int32) string {
	if n == 1 {
		return "1 route"
	}
	return strconv.Itoa(int(n)) + " routes"
}

// parentName names a parentRef: "namespace/name" or
// "namespace/name/section".
func parentName[N ~string, S ~string](own string, ns *N, name string, section *S) string {
	s := own
	if ns != nil && *ns != "" {
		s = string(*ns)
	}
	s += "/" + name
	if section != nil && *section != "" {
		s += "/" + string(*section)
	}
	return s
}

// conditionKey identifies a condition across translations: the object, the
// part of it (listener, parent, ancestor) and the condition type.
type conditionKey struct{ scope, typ string }

// stampedCondition is what a condition said and since when.
type stampedCondition struct {
	status        metav1.ConditionStatus
	reason, msg   string
	lastChangedAt metav1.Time
}

// stampConditions sets the LastTransitionTime of every condition of st, as
// a status writer does: the time of prev's condition when its status,
// reason and message are unchanged, else now. It returns the conditions
// for the next call.
func stampConditions(st *gatewayapi.Status, prev map[conditionKey]stampedCondition, now metav1.Time) map[conditionKey]stampedCondition {
	next := make(map[conditionKey]stampedCondition, len(prev))
	stamp := func(scope string, conds []metav1.Condition) {
		for i := range conds {
			c := &conds[i]
			k := conditionKey{scope, c.Type}
			p, ok := prev[k]
			if ok && p.status == c.Status && p.reason == c.Reason && p.msg == c.Message {
				c.LastTransitionTime = p.lastChangedAt
			} else {
				c.LastTransitionTime = now
			}
			next[k] = stampedCondition{c.Status, c.Reason, c.Message, c.LastTransitionTime}
		}
	}
	for i := range st.GatewayClasses {
		c := &st.GatewayClasses[i]
		stamp("GatewayClass "+c.Name, c.Status.Conditions)
	}
	for i := range st.Gateways {
		g := &st.Gateways[i]
		scope := "Gateway " + g.Namespace + "/" + g.Name
		stamp(scope, g.Status.Conditions)
		for j := range g.Status.Listeners {
			stamp(scope+" listener "+string(g.Status.Listeners[j].Name), g.Status.Listeners[j].Conditions)
		}
	}
	for i := range st.ListenerSets {
		l := &st.ListenerSets[i]
		scope := "ListenerSet " + l.Namespace + "/" + l.Name
		stamp(scope, l.Status.Conditions)
		for j := range l.Status.Listeners {
			stamp(scope+" listener "+string(l.Status.Listeners[j].Name), l.Status.Listeners[j].Conditions)
		}
	}
	for i := range st.HTTPRoutes {
		r := &st.HTTPRoutes[i]
		for j := range r.Status.Parents {
			p := &r.Status.Parents[j]
			stamp("HTTPRoute "+r.Namespace+"/"+r.Name+" parent "+
				parentName(r.Namespace, p.ParentRef.Namespace, string(p.ParentRef.Name), p.ParentRef.SectionName), p.Conditions)
		}
	}
	for _, rs := range []struct {
		kind  string
		items int
		at    func(i int) (ns, name string, ps []gatewayv1.RouteParentStatus)
	}{
		{"GRPCRoute", len(st.GRPCRoutes), func(i int) (string, string, []gatewayv1.RouteParentStatus) {
			return st.GRPCRoutes[i].Namespace, st.GRPCRoutes[i].Name, st.GRPCRoutes[i].Status.Parents
		}},
		{"TLSRoute", len(st.TLSRoutes), func(i int) (string, string, []gatewayv1.RouteParentStatus) {
			return st.TLSRoutes[i].Namespace, st.TLSRoutes[i].Name, st.TLSRoutes[i].Status.Parents
		}},
		{"TCPRoute", len(st.TCPRoutes), func(i int) (string, string, []gatewayv1.RouteParentStatus) {
			return st.TCPRoutes[i].Namespace, st.TCPRoutes[i].Name, st.TCPRoutes[i].Status.Parents
		}},
		{"UDPRoute", len(st.UDPRoutes), func(i int) (string, string, []gatewayv1.RouteParentStatus) {
			return st.UDPRoutes[i].Namespace, st.UDPRoutes[i].Name, st.UDPRoutes[i].Status.Parents
		}},
	} {
		for i := range rs.items {
			ns, name, ps := rs.at(i)
			for j := range ps {
				p := &ps[j]
				stamp(rs.kind+" "+ns+"/"+name+" parent "+parentName(ns, p.ParentRef.Namespace, string(p.ParentRef.Name), p.ParentRef.SectionName), p.Conditions)
			}
		}
	}
	for _, kind := range policyKinds(*st) {
		for i := range kind.list {
			pol := &kind.list[i]
			for j := range pol.Status.Ancestors {
				a := &pol.Status.Ancestors[j]
				stamp(kind.name+" "+pol.Namespace+"/"+pol.Name+" ancestor "+
					parentName(pol.Namespace, a.AncestorRef.Namespace, string(a.AncestorRef.Name), a.AncestorRef.SectionName), a.Conditions)
			}
		}
	}
	return next
}
