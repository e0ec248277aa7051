package v1alpha1

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Duration is a Gateway API duration string such as "1h", "30s" or
// "500ms" (GEP-2257).
type Duration = gatewayv1.Duration

// PolicyTargetReference names the object a policy attaches to, in the
// policy's namespace, and optionally one section of it: a listener of a
// Gateway, a named rule of an HTTPRoute or a named port of a Service.
type PolicyTargetReference = gatewayv1.LocalPolicyTargetReferenceWithSectionName

// Condition types and reasons of a policy's ancestor status, as GEP-713
// names them.
const (
	// PolicyConditionAccepted is the condition type that says whether the
	// policy is in effect for an ancestor.
	PolicyConditionAccepted = string(gatewayv1.PolicyConditionAccepted)

	// PolicyReasonAccepted: the policy is in effect.
	PolicyReasonAccepted = string(gatewayv1.PolicyReasonAccepted)
	// PolicyReasonConflicted: an older policy of the same kind sets the
	// same target, so this one is not in effect there.
	PolicyReasonConflicted = string(gatewayv1.PolicyReasonConflicted)
	// PolicyReasonInvalid: the policy's spec cannot be used.
	PolicyReasonInvalid = string(gatewayv1.PolicyReasonInvalid)
	// PolicyReasonTargetNotFound: the target, or its section, does not
	// exist.
	PolicyReasonTargetNotFound = string(gatewayv1.PolicyReasonTargetNotFound)
)
