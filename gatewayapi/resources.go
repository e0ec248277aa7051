package gatewayapi

import (
	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"
)

// Resources is the bundle of objects a source hands to [Translate]: the
// Gateway API objects and the core objects they refer to. Sources fill it
// from the Kubernetes API (the kube package), from YAML files (the file
// source) or from Go code. Translate never modifies it.
type Resources struct {
	// GatewayClasses are all GatewayClasses; only those whose
	// controllerName is the translator's are handled.
	GatewayClasses []gatewayv1.GatewayClass
	// Gateways are all Gateways; only those of handled classes are served.
	Gateways []gatewayv1.Gateway
	// ListenerSets attach extra listeners to Gateways that allow them.
	ListenerSets []gatewayv1.ListenerSet
	// HTTPRoutes are all HTTPRoutes.
	HTTPRoutes []gatewayv1.HTTPRoute
	// GRPCRoutes are all GRPCRoutes.
	GRPCRoutes []gatewayv1.GRPCRoute
	// TLSRoutes are all TLSRoutes, served on TLS listeners by SNI.
	TLSRoutes []gatewayv1.TLSRoute
	// TCPRoutes are all TCPRoutes, served on TCP listeners.
	TCPRoutes []gatewayv1.TCPRoute
	// UDPRoutes are all UDPRoutes, served on UDP listeners.
	UDPRoutes []gatewayv1.UDPRoute
	// ReferenceGrants permit references across namespaces.
	ReferenceGrants []gatewayv1.ReferenceGrant
	// BackendTLSPolicies configure TLS from the gateway to Services.
	BackendTLSPolicies []gatewayv1.BackendTLSPolicy
	// XBackendTrafficPolicies are the Gateway API's experimental backend
	// traffic policies (retry budget, session persistence) on Services.
	XBackendTrafficPolicies []gatewayxv1alpha1.XBackendTrafficPolicy
	// BackendPolicies are rauta's policies on Services.
	BackendPolicies []rautav1alpha1.BackendPolicy
	// TrafficPolicies are rauta's policies on Gateways and HTTPRoutes.
	TrafficPolicies []rautav1alpha1.TrafficPolicy
	// Services are the backends routes refer to.
	Services []corev1.Service
	// EndpointSlices give the Services' endpoints (label
	// kubernetes.io/service-name names the Service).
	EndpointSlices []discoveryv1.EndpointSlice
	// Secrets hold listener certificates (type kubernetes.io/tls).
	Secrets []corev1.Secret
	// ConfigMaps hold CA certificates for BackendTLSPolicies (key ca.crt).
	ConfigMaps []corev1.ConfigMap
	// Namespaces carry the labels that allowedRoutes selectors match.
	Namespaces []corev1.Namespace
	// NotServed are objects of Gateway API kinds rauta does not serve
	// (BackendLBPolicy, say), kept by a source so that it can report them; the
	// translator ignores them.
	NotServed []metav1.PartialObjectMetadata
}
