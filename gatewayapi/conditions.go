package gatewayapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// condition returns a condition with a zero LastTransitionTime.
func condition[T ~string, R ~string](typ T, ok bool, reason R, msg string, gen int64) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{
		Type:               string(typ),
		Status:             s,
		ObservedGeneration: gen,
		Reason:             string(reason),
		Message:            msg,
	}
}

// ConditionTypes lists condition types for each place of a status the
// translator computes.
type ConditionTypes struct {
	// GatewayClass: status.conditions of a GatewayClass.
	GatewayClass []string
	// Gateway: status.conditions of a Gateway.
	Gateway []string
	// Listener: the conditions of a listener in the status of a Gateway or
	// of a ListenerSet.
	Listener []string
	// ListenerSet: status.conditions of a ListenerSet.
	ListenerSet []string
	// RouteParent: the conditions of the translator's entries in a
	// route's status.parents.
	RouteParent []string
	// BackendTLSPolicyAncestor: the conditions of the translator's
	// entries in a BackendTLSPolicy's status.ancestors.
	BackendTLSPolicyAncestor []string
	// PolicyAncestor: the conditions of the translator's entries in the
	// status.ancestors of an XBackendTrafficPolicy, a BackendPolicy or a
	// TrafficPolicy.
	PolicyAncestor []string
}

// setConditionTypes are the types the translator sets today. The golden
// tests check that every condition of their output is listed here for its
// place, and that every type listed here appears in their output.
var setConditionTypes = ConditionTypes{
	GatewayClass: []string{
		string(gatewayv1.GatewayClassConditionStatusAccepted),
		string(gatewayv1.GatewayClassConditionStatusSupportedVersion),
	},
	Gateway: []string{
		string(gatewayv1.GatewayConditionAccepted),
		string(gatewayv1.GatewayConditionProgrammed),
		string(gatewayv1.GatewayConditionResolvedRefs),
		string(gatewayv1.GatewayConditionInsecureFrontendValidationMode),
	},
	Listener: []string{
		string(gatewayv1.ListenerConditionAccepted),
		string(gatewayv1.ListenerConditionProgrammed),
		string(gatewayv1.ListenerConditionResolvedRefs),
		string(gatewayv1.ListenerConditionConflicted),
	},
	ListenerSet: []string{
		string(gatewayv1.ListenerSetConditionAccepted),
		string(gatewayv1.ListenerSetConditionProgrammed),
	},
	RouteParent: []string{
		string(gatewayv1.RouteConditionAccepted),
		string(gatewayv1.RouteConditionResolvedRefs),
	},
	BackendTLSPolicyAncestor: []string{
		string(gatewayv1.PolicyConditionAccepted),
		string(gatewayv1.BackendTLSPolicyConditionResolvedRefs),
	},
	PolicyAncestor: []string{
		string(gatewayv1.PolicyConditionAccepted),
	},
}

// retiredConditionTypes are types an earlier version of the translator set
// and this one no longer does. They stay owned, so that a status writer
// removes them from status an earlier version wrote. None so far: a type
// the translator stops setting moves here from setConditionTypes.
var retiredConditionTypes ConditionTypes

// OwnedConditionTypes returns, for each place of a status, the condition
// types a controller running this translator owns: those the translator
// sets and those an earlier version set. A status writer adds, changes and
// removes these types and keeps every other condition as it is stored
// (the Gateway API's rule for conditions an implementation is not directly
// responsible for). The result is the caller's to keep.
func OwnedConditionTypes() ConditionTypes {
	cat := func(a, b []string) []string { return append(append([]string(nil), a...), b...) }
	s, r := setConditionTypes, retiredConditionTypes
	return ConditionTypes{
		GatewayClass:             cat(s.GatewayClass, r.GatewayClass),
		Gateway:                  cat(s.Gateway, r.Gateway),
		Listener:                 cat(s.Listener, r.Listener),
		ListenerSet:              cat(s.ListenerSet, r.ListenerSet),
		RouteParent:              cat(s.RouteParent, r.RouteParent),
		BackendTLSPolicyAncestor: cat(s.BackendTLSPolicyAncestor, r.BackendTLSPolicyAncestor),
		PolicyAncestor:           cat(s.PolicyAncestor, r.PolicyAncestor),
	}
}
