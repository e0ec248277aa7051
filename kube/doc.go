// Package kube is rauta's Kubernetes source: a Gateway API controller that
// feeds a proxy.Proxy from a cluster and writes status back.
//
// A [Controller] watches, with client-go shared informers, the Gateway API
// objects (GatewayClass, Gateway, HTTPRoute, ReferenceGrant,
// BackendTLSPolicy and ListenerSet, the last three only when the cluster
// serves them) and the core objects they refer to (Service, EndpointSlice,
// Namespace, Secret, ConfigMap). The informers' transform drops
// managedFields and kubectl's last-applied annotation before anything is
// cached. Secrets and ConfigMaps are watched as metadata only; the data of
// those that Gateways, ListenerSets and BackendTLSPolicies reference is
// fetched on demand and trimmed to the keys the translator reads, so memory
// does not grow with the Secrets of the cluster.
//
// # Rebuilds
//
// Changes are level-triggered and coalesced: an informer event only marks
// the state dirty, and a rebuild reads the caches once a quiet time
// (Options.HoldOff, 100ms) has passed since the last event, or at the
// latest Options.MaxDelay (1s) after the first. A rebuild whose input
// objects have the same versions as the previous one stops there; a
// translation (gatewayapi.Translate) whose Config equals the one the proxy
// serves is not applied, so the proxy's generation only moves when what it
// serves changes. Status-only updates of Gateway API objects (rauta's own
// writes among them) do not mark the state dirty.
//
// EndpointSlice changes take a fast path: the endpoints of the affected
// Service's backends are recomputed with gatewayapi.Endpoints and handed to
// proxy.Proxy.UpdateEndpoints, without translating routes or applying a
// Config.
//
// Only GatewayClasses whose controllerName is Options.Translate's
// (gatewayapi.DefaultControllerName, "rauta.io/gateway-controller", by
// default) are handled; Gateways of other classes and routes attached only
// to them are left alone.
//
// # Status
//
// Every replica serves traffic from the same Config. Status is written only
// by the replica holding a coordination.k8s.io Lease (client-go leader
// election, Options.LeaseNamespace/LeaseName), through the status
// subresource, and only when the stored status differs from the computed
// one. A condition whose status, reason and message are unchanged keeps its
// lastTransitionTime. In HTTPRoute status.parents and BackendTLSPolicy
// status.ancestors only the entries whose controllerName is rauta's are
// written; other controllers' entries are kept as they are. Writes go
// through a rate-limited workqueue: a conflict is retried with per-object
// exponential backoff, reading the object afresh from the API server. A
// condition that reports a configuration error (Accepted, ResolvedRefs or
// Programmed False, Conflicted True; not reason Pending) is also recorded as
// a Warning Event on the object when it first appears.
//
// [Serve] puts a Controller, a proxy and the admin endpoints together; it
// is what `rauta serve` runs in a cluster. deploy/ holds the manifests and
// the RBAC role the controller needs.
package kube
