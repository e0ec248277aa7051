package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TrafficPolicy configures what the gateway admits from clients for a
// target: a local rate limit, the largest request body and client
// timeouts.
//
// It targets, in its own namespace, Gateways (a sectionName names one
// listener) and HTTPRoutes (a sectionName names one rule). A rate limit is
// one budget shared by every request its target covers, and the limits of
// every level that covers a request apply. Other fields merge field by
// field, the most specific level winning: rule over route over listener
// over Gateway.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=gateway-api;rauta,shortName=rtp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the policy sets.
	Spec TrafficPolicySpec `json:"spec"`

	// Status says, per Gateway, whether the policy is in effect.
	// +optional
	Status gatewayv1.PolicyStatus `json:"status,omitempty"`
}

// TrafficPolicyList is a list of TrafficPolicies.
//
// +kubebuilder:object:root=true
type TrafficPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []TrafficPolicy `json:"items"`
}

// TrafficPolicySpec is what a [TrafficPolicy] sets.
//
// +kubebuilder:validation:XValidation:message="at least one setting besides targetRefs is required",rule="has(self.rateLimit) || has(self.requestBody) || has(self.timeouts)"
type TrafficPolicySpec struct {
	// TargetRefs are the Gateways and HTTPRoutes the policy applies to.
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:message="targetRefs must name Gateways or HTTPRoutes of gateway.networking.k8s.io",rule="self.all(t, t.group == 'gateway.networking.k8s.io' && (t.kind == 'Gateway' || t.kind == 'HTTPRoute'))"
	// +kubebuilder:validation:XValidation:message="targetRefs must not name the same target (and sectionName) twice",rule="self.all(a, self.exists_one(b, a.group == b.group && a.kind == b.kind && a.name == b.name && (has(a.sectionName) ? has(b.sectionName) && a.sectionName == b.sectionName : !has(b.sectionName))))"
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	// RateLimit limits the requests the target serves. Requests over the
	// limit are answered 429 with Retry-After and the RateLimit and
	// RateLimit-Policy header fields.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// RequestBody bounds request bodies.
	// +optional
	RequestBody *RequestBody `json:"requestBody,omitempty"`

	// Timeouts bound how long a client may take.
	// +optional
	Timeouts *ClientTimeouts `json:"timeouts,omitempty"`
}

// RateLimitUnit is the period a rate limit counts requests over.
//
// +kubebuilder:validation:Enum=Second;Minute;Hour
type RateLimitUnit string

// Rate limit units.
const (
	// Second counts requests per second.
	Second RateLimitUnit = "Second"
	// Minute counts requests per minute.
	Minute RateLimitUnit = "Minute"
	// Hour counts requests per hour.
	Hour RateLimitUnit = "Hour"
)

// RateLimit is a local token-bucket rate limit: Requests per Unit in the
// long run, Burst at once. In cluster mode the limit is for the Gateway as
// a whole: each of N replicas admits its share, 1/N of it.
//
// +kubebuilder:validation:XValidation:message="burst must not be below 1",rule="!has(self.burst) || self.burst >= 1"
type RateLimit struct {
	// Requests is the number of requests admitted per Unit.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000000
	Requests int32 `json:"requests"`

	// Unit is the period Requests are counted over.
	Unit RateLimitUnit `json:"unit"`

	// Burst is the number of requests admitted at once; default Requests.
	// +optional
	// +kubebuilder:validation:Maximum=1000000000
	Burst *int32 `json:"burst,omitempty"`

	// Key, if set, gives each client its own budget (keyed by address or
	// by a header's value) instead of one budget for the whole target.
	// The gateway keeps at most 100,000 keys per limit, forgetting the
	// least recently seen.
	// +optional
	Key *RateLimitKey `json:"key,omitempty"`
}

// RateLimitKeyType names what a per-client rate limit is keyed by.
//
// +kubebuilder:validation:Enum=ClientAddress;Header
type RateLimitKeyType string

// Rate limit keys.
const (
	// RateLimitByClientAddress gives each client IP address its own budget.
	RateLimitByClientAddress RateLimitKeyType = "ClientAddress"
	// RateLimitByHeader gives each value of a header its own budget.
	RateLimitByHeader RateLimitKeyType = "Header"
)

// RateLimitKey selects the budget of a request.
//
// +kubebuilder:validation:XValidation:message="name is required for Header keys and not allowed for ClientAddress",rule="self.type == 'Header' ? has(self.name) : !has(self.name)"
type RateLimitKey struct {
	// Type is ClientAddress or Header. Requests without the header share
	// one budget.
	Type RateLimitKeyType `json:"type"`

	// Name is the header name for Header keys.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`
	Name string `json:"name,omitempty"`
}

// RequestBody bounds request bodies.
//
// +kubebuilder:validation:XValidation:message="maxSize must be positive",rule="quantity(string(self.maxSize)).isGreaterThan(quantity('0'))"
type RequestBody struct {
	// MaxSize is the largest request body admitted, such as "10Mi".
	// Larger requests are answered 413: at once when their Content-Length
	// says so, otherwise when the limit is crossed.
	MaxSize resource.Quantity `json:"maxSize"`
}

// ClientTimeouts bound how long a client may take with one request.
// Proxy-wide defaults apply where they are not set.
type ClientTimeouts struct {
	// Read bounds receiving a request, body included, counted from the
	// end of its headers; a request still arriving then is answered 408.
	// +optional
	Read *Duration `json:"read,omitempty"`

	// Write bounds sending the response to the client, from its first
	// byte; a response still being written then is cut off.
	// +optional
	Write *Duration `json:"write,omitempty"`
}
