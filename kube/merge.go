package kube

import (
	"slices"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The merge functions combine the status the translator computed (whose
// conditions carry a zero LastTransitionTime) with the status stored on the
// object: a condition whose status, reason and message are unchanged keeps
// its stored LastTransitionTime, any other gets now. What belongs to other
// controllers (route parents, policy ancestors) is kept as stored.

// mergeConditions returns desired with transition times carried over from
// stored.
func mergeConditions(stored, desired []metav1.Condition, now metav1.Time) []metav1.Condition {
	if desired == nil {
		return nil
	}
	out := make([]metav1.Condition, len(desired))
	for i, d := range desired {
		d.LastTransitionTime = now
		for _, s := range stored {
			if s.Type == d.Type && s.Status == d.Status && s.Reason == d.Reason && s.Message == d.Message && !s.LastTransitionTime.IsZero() {
				d.LastTransitionTime = s.LastTransitionTime
				break
			}
		}
		out[i] = d
	}
	return out
}

// mergeGatewayClassStatus merges a GatewayClass's status.
func mergeGatewayClassStatus(stored, desired gatewayv1.GatewayClassStatus, now metav1.Time) gatewayv1.GatewayClassStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(stored.Conditions, desired.Conditions, now)
	return out
}

// mergeGatewayStatus merges a Gateway's status; listeners are matched by
// name.
func mergeGatewayStatus(stored, desired gatewayv1.GatewayStatus, now metav1.Time) gatewayv1.GatewayStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(stored.Conditions, desired.Conditions, now)
	for i := range out.Listeners {
		l := &out.Listeners[i]
		var prev []metav1.Condition
		for _, s := range stored.Listeners {
			if s.Name == l.Name {
				prev = s.Conditions
				break
			}
		}
		l.Conditions = mergeConditions(prev, desired.Listeners[i].Conditions, now)
	}
	return out
}

// mergeListenerSetStatus merges a ListenerSet's status; listeners are
// matched by name.
func mergeListenerSetStatus(stored, desired gatewayv1.ListenerSetStatus, now metav1.Time) gatewayv1.ListenerSetStatus {
	out := *desired.DeepCopy()
	out.Conditions = mergeConditions(stored.Conditions, desired.Conditions, now)
	for i := range out.Listeners {
		l := &out.Listeners[i]
		var prev []metav1.Condition
		for _, s := range stored.Listeners {
			if s.Name == l.Name {
				prev = s.Conditions
				break
			}
		}
		l.Conditions = mergeConditions(prev, desired.Listeners[i].Conditions, now)
	}
	return out
}

// owned describes a status list whose entries belong to controllers and
// are matched by a reference: route parents and policy ancestors.
type owned[E any] struct {
	controller func(*E) gatewayv1.GatewayController
	sameRef    func(a, b *E) bool
	conditions func(*E) *[]metav1.Condition
	deepCopy   func(*E) *E
}

var (
	routeParents = owned[gatewayv1.RouteParentStatus]{
		controller: func(e *gatewayv1.RouteParentStatus) gatewayv1.GatewayController { return e.ControllerName },
		sameRef: func(a, b *gatewayv1.RouteParentStatus) bool {
			return apiequality.Semantic.DeepEqual(a.ParentRef, b.ParentRef)
		},
		conditions: func(e *gatewayv1.RouteParentStatus) *[]metav1.Condition { return &e.Conditions },
		deepCopy:   (*gatewayv1.RouteParentStatus).DeepCopy,
	}
	policyAncestors = owned[gatewayv1.PolicyAncestorStatus]{
		controller: func(e *gatewayv1.PolicyAncestorStatus) gatewayv1.GatewayController { return e.ControllerName },
		sameRef: func(a, b *gatewayv1.PolicyAncestorStatus) bool {
			return apiequality.Semantic.DeepEqual(a.AncestorRef, b.AncestorRef)
		},
		conditions: func(e *gatewayv1.PolicyAncestorStatus) *[]metav1.Condition { return &e.Conditions },
		deepCopy:   (*gatewayv1.PolicyAncestorStatus).DeepCopy,
	}
)

// merge returns the entries of a status list: the stored entries of other
// controllers, unchanged and in their order, followed by desired (this
// controller's entries; nil removes them all), each keeping the
// lastTransitionTime of the stored entry with the same reference.
func (o owned[E]) merge(stored, desired []E, controller gatewayv1.GatewayController, now metav1.Time) []E {
	var out []E
	for i := range stored {
		if o.controller(&stored[i]) != controller {
			out = append(out, *o.deepCopy(&stored[i]))
		}
	}
	for i := range desired {
		e := *o.deepCopy(&desired[i])
		*o.conditions(&e) = mergeConditions(o.previous(stored, &desired[i], controller), *o.conditions(&desired[i]), now)
		out = append(out, e)
	}
	return out
}

// previous returns the conditions of controller's stored entry with e's
// reference, or nil.
func (o owned[E]) previous(stored []E, e *E, controller gatewayv1.GatewayController) []metav1.Condition {
	for i := range stored {
		if o.controller(&stored[i]) == controller && o.sameRef(&stored[i], e) {
			return *o.conditions(&stored[i])
		}
	}
	return nil
}

// mergeRouteParents merges route parents; see [owned.merge].
func mergeRouteParents(stored, desired []gatewayv1.RouteParentStatus, controller gatewayv1.GatewayController, now metav1.Time) []gatewayv1.RouteParentStatus {
	return routeParents.merge(stored, desired, controller, now)
}

// mergePolicyAncestors merges policy ancestors; see [owned.merge].
func mergePolicyAncestors(stored, desired []gatewayv1.PolicyAncestorStatus, controller gatewayv1.GatewayController, now metav1.Time) []gatewayv1.PolicyAncestorStatus {
	return policyAncestors.merge(stored, desired, controller, now)
}

// hasRouteParent reports whether a route status holds an entry of
// controller.
func hasRouteParent(ps []gatewayv1.RouteParentStatus, controller gatewayv1.GatewayController) bool {
	return slices.ContainsFunc(ps, func(p gatewayv1.RouteParentStatus) bool { return p.ControllerName == controller })
}

// hasPolicyAncestor reports whether a policy status holds an entry of
// controller.
func hasPolicyAncestor(as []gatewayv1.PolicyAncestorStatus, controller gatewayv1.GatewayController) bool {
	return slices.ContainsFunc(as, func(a gatewayv1.PolicyAncestorStatus) bool { return a.ControllerName == controller })
}

// problem is a condition that tells a user to fix something: it becomes an
// Event when it first appears.
type problem struct {
	where string // "" or e.g. `listener "https"`, `parent gw`
	cond  metav1.Condition
}

// isProblem reports whether a condition reports a configuration error.
// Conditions that only report progress (reason Pending) are not problems.
func isProblem(c metav1.Condition) bool {
	if c.Reason == "Pending" {
		return false
	}
	switch c.Type {
	case "Conflicted":
		return c.Status == metav1.ConditionTrue
	case "Accepted", "ResolvedRefs", "Programmed", "ResolvedRefsAndProgrammed":
		return c.Status == metav1.ConditionFalse
	}
	return false
}

// newProblems returns the problem conditions of merged that stored did not
// hold with the same status, reason and message: those a user has not been
// told about yet.
func newProblems(where string, stored, merged []metav1.Condition) []problem {
	var out []problem
	for _, c := range merged {
		if !isProblem(c) {
			continue
		}
		seen := slices.ContainsFunc(stored, func(s metav1.Condition) bool {
			return s.Type == c.Type && s.Status == c.Status && s.Reason == c.Reason && s.Message == c.Message
		})
		if !seen {
			out = append(out, problem{where: where, cond: c})
		}
	}
	return out
}
