package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// BackendPolicy configures how the gateway talks to a Service: which
// endpoint it picks, how it checks and ejects endpoints, how it keeps
// connections and how it backs off between retries.
//
// It targets Services in its own namespace; a sectionName names one port
// of the Service (spec.ports[].name), whose settings then win over the
// settings of a policy on the whole Service, field by field.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=gateway-api;rauta,shortName=rbp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackendPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the policy sets.
	Spec BackendPolicySpec `json:"spec"`

	// Status says, per Gateway, whether the policy is in effect.
	// +optional
	Status gatewayv1.PolicyStatus `json:"status,omitempty"`
}

// BackendPolicyList is a list of BackendPolicies.
//
// +kubebuilder:object:root=true
type BackendPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []BackendPolicy `json:"items"`
}

// BackendPolicySpec is what a [BackendPolicy] sets. Every field is
// optional; a field left out keeps the gateway's default or the value of a
// less specific policy.
//
// +kubebuilder:validation:XValidation:message="at least one setting besides targetRefs is required",rule="has(self.loadBalancer) || has(self.healthCheck) || has(self.circuitBreaker) || has(self.connections) || has(self.retry) || has(self.sessionPersistence)"
type BackendPolicySpec struct {
	// TargetRefs are the Services the policy applies to. Only the kind
	// Service of the core group ("") is supported.
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:message="targetRefs must name Services of the core group",rule="self.all(t, t.group == '' && t.kind == 'Service')"
	// +kubebuilder:validation:XValidation:message="targetRefs must not name the same target (and sectionName) twice",rule="self.all(a, self.exists_one(b, a.group == b.group && a.kind == b.kind && a.name == b.name && (has(a.sectionName) ? has(b.sectionName) && a.sectionName == b.sectionName : !has(b.sectionName))))"
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	// LoadBalancer picks an endpoint for each request.
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// HealthCheck probes every endpoint actively and takes failing ones
	// out of the pick.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// CircuitBreaker ejects endpoints whose requests fail (passive health
	// checking) and readmits them through probes.
	// +optional
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`

	// Connections bounds the connections the gateway keeps to each
	// endpoint.
	// +optional
	Connections *ConnectionLimits `json:"connections,omitempty"`

	// Retry sets the backoff between retries of requests to the Service.
	// Whether and how often a request is retried is the HTTPRoute rule's
	// retry field.
	// +optional
	Retry *RetryBackoff `json:"retry,omitempty"`

	// SessionPersistence pins a client's requests to the endpoint that
	// served its first request, with a cookie or header the gateway
	// issues. It has the shape of the Gateway API's sessionPersistence
	// with an idle timeout added.
	// +optional
	SessionPersistence *SessionPersistence `json:"sessionPersistence,omitempty"`
}

// LoadBalancerType names a load-balancing algorithm.
//
// +kubebuilder:validation:Enum=RoundRobin;Maglev
type LoadBalancerType string

// Load-balancing algorithms.
const (
	// RoundRobin cycles through the endpoints in proportion to their
	// weights. It is the default.
	RoundRobin LoadBalancerType = "RoundRobin"
	// Maglev hashes a key of the request onto a Maglev table (consistent
	// hashing): requests with the same key reach the same endpoint while
	// the endpoints are stable, and few keys move when they change.
	Maglev LoadBalancerType = "Maglev"
)

// LoadBalancer configures endpoint picking.
//
// +kubebuilder:validation:XValidation:message="hashKey is only allowed with type Maglev",rule="!has(self.hashKey) || self.type == 'Maglev'"
type LoadBalancer struct {
	// Type is the algorithm.
	// +kubebuilder:default=RoundRobin
	Type LoadBalancerType `json:"type"`

	// HashKey is what Maglev hashes; the default is the client address.
	// A request that does not carry the key is balanced round robin.
	// +optional
	HashKey *HashKey `json:"hashKey,omitempty"`
}

// HashKeyType names the part of a request a key is read from.
//
// +kubebuilder:validation:Enum=ClientAddress;Header;Cookie;QueryParameter
type HashKeyType string

// Key types.
const (
	// ClientAddress is the client's IP address.
	ClientAddress HashKeyType = "ClientAddress"
	// Header is the first value of the header named by the key's name.
	Header HashKeyType = "Header"
	// Cookie is the value of the cookie named by the key's name.
	Cookie HashKeyType = "Cookie"
	// QueryParameter is the first value of the query parameter named by
	// the key's name.
	QueryParameter HashKeyType = "QueryParameter"
)

// HashKey names the part of a request that keys a hash.
//
// +kubebuilder:validation:XValidation:message="name is required for Header, Cookie and QueryParameter keys and not allowed for ClientAddress",rule="self.type == 'ClientAddress' ? !has(self.name) : has(self.name)"
type HashKey struct {
	// Type is where the key is read from.
	Type HashKeyType `json:"type"`

	// Name is the header, cookie or query parameter name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`
}

// HealthCheckType names an active health probe.
//
// +kubebuilder:validation:Enum=TCP;HTTP
type HealthCheckType string

// Health probes.
const (
	// HealthCheckTCP connects to the endpoint and closes the connection.
	HealthCheckTCP HealthCheckType = "TCP"
	// HealthCheckHTTP sends a GET request and checks the status.
	HealthCheckHTTP HealthCheckType = "HTTP"
)

// HealthCheck configures active health checking of every endpoint.
//
// +kubebuilder:validation:XValidation:message="http is only allowed with type HTTP",rule="!has(self.http) || self.type == 'HTTP'"
// +kubebuilder:validation:XValidation:message="timeout must not be longer than interval (defaults: timeout 1s, interval 5s)",rule="duration(has(self.timeout) ? self.timeout : '1s') <= duration(has(self.interval) ? self.interval : '5s')"
type HealthCheck struct {
	// Type is the probe.
	Type HealthCheckType `json:"type"`

	// HTTP configures an HTTP probe.
	// +optional
	HTTP *HTTPHealthCheck `json:"http,omitempty"`

	// Interval is the time between probes of one endpoint; default 5s.
	// +optional
	Interval *Duration `json:"interval,omitempty"`

	// Timeout bounds one probe; default 1s.
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`

	// HealthyThreshold is the number of consecutive passing probes that
	// bring an unhealthy endpoint back; default 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`

	// UnhealthyThreshold is the number of consecutive failing probes that
	// take an endpoint out; default 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
}

// HTTPHealthCheck is the request of an HTTP probe and the statuses that
// pass it.
type HTTPHealthCheck struct {
	// Path is the request path; default "/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^\s]*$`
	Path string `json:"path,omitempty"`

	// Host is the Host header; default the endpoint's address.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`

	// ExpectedStatuses are the statuses that pass the probe; default
	// 200-399.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	ExpectedStatuses []StatusRange `json:"expectedStatuses,omitempty"`
}

// StatusRange is an inclusive range of HTTP status codes.
//
// +kubebuilder:validation:XValidation:message="end must not be below start",rule="!has(self.end) || self.end >= self.start"
type StatusRange struct {
	// Start is the first status of the range.
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=599
	Start int32 `json:"start"`

	// End is the last status of the range; default Start.
	// +optional
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=599
	End *int32 `json:"end,omitempty"`
}

// CircuitBreaker configures the per-endpoint circuit breakers.
type CircuitBreaker struct {
	// Disabled turns the breakers off.
	// +optional
	Disabled *bool `json:"disabled,omitempty"`

	// ErrorRatePercent is the share of failed requests in the window, in
	// percent, at or above which an endpoint is ejected; default 50.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	ErrorRatePercent *int32 `json:"errorRatePercent,omitempty"`

	// Window is the span over which the error rate is measured; default
	// 10s.
	// +optional
	Window *Duration `json:"window,omitempty"`

	// MinRequests is the number of requests the window must hold before
	// its error rate can eject the endpoint; default 20.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	MinRequests *int32 `json:"minRequests,omitempty"`

	// OpenDuration is how long an ejected endpoint gets no requests
	// before probes are let through; default 30s.
	// +optional
	OpenDuration *Duration `json:"openDuration,omitempty"`

	// HalfOpenRequests is the number of probe requests let through after
	// OpenDuration; all must succeed to readmit the endpoint; default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	HalfOpenRequests *int32 `json:"halfOpenRequests,omitempty"`

	// Count5xx counts responses with a 5xx status as failures. By default
	// only requests that got no response (refused, reset, timed out)
	// count.
	// +optional
	Count5xx *bool `json:"count5xx,omitempty"`
}

// ConnectionLimits bounds the connections to each endpoint.
type ConnectionLimits struct {
	// MaxConnectionsPerEndpoint bounds the open HTTP/1.1 connections to
	// one endpoint; a request that finds the endpoint at the limit goes
	// to another endpoint or is answered 503.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxConnectionsPerEndpoint *int32 `json:"maxConnectionsPerEndpoint,omitempty"`

	// IdleTimeout closes a connection idle this long; default 60s.
	// +optional
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`

	// MaxRequestsPerConnection closes a connection after it carried this
	// many requests.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxRequestsPerConnection *int32 `json:"maxRequestsPerConnection,omitempty"`

	// MaxLifetime closes a connection this long after it was opened, once
	// its request in progress is done.
	// +optional
	MaxLifetime *Duration `json:"maxLifetime,omitempty"`
}

// RetryBackoff is the delay between retries: the first waits up to
// BaseInterval, each further one twice as long, never more than
// MaxInterval, with full jitter.
//
// +kubebuilder:validation:XValidation:message="maxInterval must not be below baseInterval (default 25ms)",rule="!has(self.maxInterval) || duration(self.maxInterval) >= duration(has(self.baseInterval) ? self.baseInterval : '25ms')"
type RetryBackoff struct {
	// BaseInterval is the delay before the first retry; default 25ms.
	// +optional
	BaseInterval *Duration `json:"baseInterval,omitempty"`

	// MaxInterval caps the delay; default ten times BaseInterval (250ms
	// with the default BaseInterval).
	// +optional
	MaxInterval *Duration `json:"maxInterval,omitempty"`
}

// SessionPersistence pins a client's requests to one endpoint. It has the
// shape of the Gateway API's SessionPersistence (GEP-1619), with the idle
// timeout that GEP describes. The embedded type (Gateway API v1.7) brings
// its validation rules into the schema: a Permanent cookie needs
// absoluteTimeout, cookie goes with type Cookie only, and header (the
// header's name) is required with type Header and allowed with it only.
// The cookie's name is cookie.name and its Path cookie.path, "/" by
// default.
type SessionPersistence struct {
	gatewayv1.SessionPersistence `json:",inline"`

	// IdleTimeout ends a session that carried no request for this long.
	// +optional
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
}
