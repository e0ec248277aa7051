package gatewayapi

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/rauta/rauta/proxy"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// DefaultControllerName is rauta's GatewayClass controllerName.
const DefaultControllerName = "rauta.io/gateway-controller"

// Options configures [Translate]. The zero value handles the GatewayClasses
// of [DefaultControllerName] and binds every listener to 0.0.0.0.
type Options struct {
	// ControllerName selects the GatewayClasses handled; "" means
	// DefaultControllerName.
	ControllerName string
	// Address is the IP every Gateway's listeners bind when neither
	// spec.addresses nor AddressPool gives one; "" means "0.0.0.0".
	Address string
	// AddressPool, when valid, gives each Gateway its own IP from this
	// prefix (e.g. 127.1.0.0/16), stable across translations: it is
	// derived from the Gateway's namespace and name, and collisions are
	// resolved in sorted order.
	AddressPool netip.Prefix
}

// Result is the output of [Translate].
type Result struct {
	// Config is what the proxy serves; its slices are sorted.
	Config proxy.Config
	// Status is the status of every object the translator handles.
	Status Status
}

// Status is the status the translator computed for the objects it handles.
// A source writes it back (the kube source) or shows it (the file source).
type Status struct {
	// GatewayClasses are sorted by name; only classes with the
	// translator's controllerName appear.
	GatewayClasses []GatewayClassStatus
	// Gateways are sorted by namespace/name; only Gateways of handled
	// classes appear.
	Gateways []GatewayStatus
	// ListenerSets are sorted by namespace/name; only ListenerSets whose
	// parent is a handled Gateway appear.
	ListenerSets []ListenerSetStatus
	// HTTPRoutes are sorted by namespace/name; only routes with at least one
	// parentRef to a handled Gateway (or ListenerSet) appear, and their
	// Status.Parents hold only the translator's entries.
	HTTPRoutes []HTTPRouteStatus
	// GRPCRoutes are sorted by namespace/name, chosen as HTTPRoutes are.
	GRPCRoutes []GRPCRouteStatus
	// TLSRoutes, TCPRoutes and UDPRoutes are sorted by namespace/name, like
	// HTTPRoutes. (Left out of JSON when empty, so that outputs without
	// stream routes read as before.)
	TLSRoutes []TLSRouteStatus `json:"TLSRoutes,omitempty"`
	// TCPRoutes: see TLSRoutes.
	TCPRoutes []TCPRouteStatus `json:"TCPRoutes,omitempty"`
	// UDPRoutes: see TLSRoutes.
	UDPRoutes []UDPRouteStatus `json:"UDPRoutes,omitempty"`
	// BackendTLSPolicies are sorted by namespace/name; only policies that
	// apply to a Service used by a handled route appear, with one ancestor
	// entry per handled Gateway.
	BackendTLSPolicies []PolicyStatus
	// XBackendTrafficPolicies, BackendPolicies and TrafficPolicies are
	// sorted by namespace/name; a policy appears when one of its targets
	// is reached through a handled Gateway (with one ancestor entry per
	// such Gateway) or when none of its targets exists.
	XBackendTrafficPolicies []PolicyStatus
	// BackendPolicies: see XBackendTrafficPolicies.
	BackendPolicies []PolicyStatus
	// TrafficPolicies: see XBackendTrafficPolicies.
	TrafficPolicies []PolicyStatus
}

// GatewayClassStatus is the status of one GatewayClass.
type GatewayClassStatus struct {
	// Name is the GatewayClass name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status.
	Status gatewayv1.GatewayClassStatus
}

// GatewayStatus is the status of one Gateway.
type GatewayStatus struct {
	// Namespace is the Gateway's namespace.
	Namespace string
	// Name is the Gateway's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status.
	Status gatewayv1.GatewayStatus
}

// ListenerSetStatus is the status of one ListenerSet.
type ListenerSetStatus struct {
	// Namespace is the ListenerSet's namespace.
	Namespace string
	// Name is the ListenerSet's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status.
	Status gatewayv1.ListenerSetStatus
}

// HTTPRouteStatus is the status of one HTTPRoute.
type HTTPRouteStatus struct {
	// Namespace is the route's namespace.
	Namespace string
	// Name is the route's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status: only this controller's parents.
	Status gatewayv1.HTTPRouteStatus
}

// GRPCRouteStatus is the status of one GRPCRoute.
type GRPCRouteStatus struct {
	// Namespace is the route's namespace.
	Namespace string
	// Name is the route's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status: only this controller's parents.
	Status gatewayv1.GRPCRouteStatus
}

// PolicyStatus is the status of one policy (a BackendTLSPolicy, an
// XBackendTrafficPolicy, a BackendPolicy or a TrafficPolicy).
type PolicyStatus struct {
	// Namespace is the policy's namespace.
	Namespace string
	// Name is the policy's name.
	Name string
	// Generation is the metadata.generation the status was computed from.
	Generation int64
	// Status is the computed status: only this controller's ancestors.
	Status gatewayv1.PolicyStatus
}

// BackendName returns the proxy.Backend name of a Service port:
// "namespace/service:port".
func BackendName(namespace, service string, port int32) string {
	return namespace + "/" + service + ":" + strconv.Itoa(int(port))
}

// clientCertificateSuffix separates a backend name from the client
// certificate it presents.
const clientCertificateSuffix = "+client-certificate="

// ClientCertificateBackendName returns the name of the backend for a
// Service port (named by [BackendName]) that presents the client
// certificate of Secret secretNamespace/secretName over TLS:
// "namespace/service:port+client-certificate=secretNamespace/secretName".
// The translator names a backend so only when Gateways with different
// client certificates (spec.tls.backend) reach the same Service port over
// TLS; otherwise the backend keeps its [BackendName] and carries the
// certificate in its TLS configuration.
func ClientCertificateBackendName(backendName, secret string) string {
	return backendName + clientCertificateSuffix + secret
}

// ParseBackendName returns the Service port a backend name made by
// [BackendName] or [ClientCertificateBackendName] stands for; ok is false
// for other names.
func ParseBackendName(name string) (namespace, service string, port int32, ok bool) {
	name, _, _ = strings.Cut(name, clientCertificateSuffix)
	slash, colon := strings.IndexByte(name, '/'), strings.LastIndexByte(name, ':')
	if slash <= 0 || colon <= slash+1 {
		return "", "", 0, false
	}
	p, err := strconv.ParseInt(name[colon+1:], 10, 32)
	if err != nil || p <= 0 {
		return "", "", 0, false
	}
	return name[:slash], name[slash+1 : colon], int32(p), true
}

// Translate turns res into the proxy configuration and the status of every
// object handled by opts.ControllerName.
//
// Translate is pure: it does no I/O, reads no clock and starts no
// goroutine; the same input gives a deep-equal output, whatever the order
// of the objects in res; res is never modified. Conditions carry a zero
// LastTransitionTime: a status writer keeps the previous time when a
// condition's status, reason and message are unchanged, and sets the
// current time otherwise.
func Translate(res *Resources, opts Options) Result {
	t := newTranslator(res, opts)
	return t.run()
}
