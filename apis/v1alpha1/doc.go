// Package v1alpha1 holds the Go types of rauta's own Kubernetes API, the
// group gateway.rauta.io at version v1alpha1: the policies that switch on
// the data plane's traffic features from configuration.
//
//   - [BackendPolicy] attaches to Services (or one Service port): load
//     balancing, active health checks, circuit breaking, connection limits,
//     retry backoff and session persistence.
//   - [TrafficPolicy] attaches to Gateways, listeners, HTTPRoutes and
//     HTTPRoute rules: local rate limits, a request body limit and client
//     timeouts.
//
// Both attach directly (GEP-713) through spec.targetRefs; a target is in the
// policy's own namespace. Their status is a Gateway API PolicyStatus with
// one ancestor entry per Gateway the target is served through.
//
// The package holds types only: the translator (package gatewayapi) reads
// them, the sources (filesource, kube) decode them, and the CRD schemas in
// deploy/crds are generated from them by hack/gen-api, with the DeepCopy
// methods. The data plane never imports it.
//
// +kubebuilder:object:generate=true
// +groupName=gateway.rauta.io
package v1alpha1
