// Package kube is rauta's Kubernetes source: a Gateway API controller that
// feeds a proxy.Proxy from a cluster and writes status back.
//
// A [Controller] watches, with client-go shared informers, the Gateway API
// objects (GatewayClass, Gateway, HTTPRoute, ReferenceGrant,
// BackendTLSPolicy, ListenerSet, TLSRoute, TCPRoute and UDPRoute, all but the first
// three only when the cluster serves them) and the core objects they refer to (Service, EndpointSlice,
// Namespace, Secret, ConfigMap). The informers' transform drops
// managedFields and kubectl's last-applied annotation before anything is
// cached. Secrets and ConfigMaps are watched as metadata only; the data of
// those that Gateways, ListenerSets and BackendTLSPolicies reference is
// fetched on demand and trimmed to the keys the translator reads, so memory
// does not grow with the Secrets of the cluster.
//
// # Policies
//
// The policy kinds, rauta's BackendPolicy and TrafficPolicy
// (gateway.rauta.io/v1alpha1, package apis/v1alpha1) and the Gateway API's
// experimental XBackendTrafficPolicy (gateway.networking.x-k8s.io/v1alpha1),
// are watched with client-go's dynamic informers: their objects are cached
// unstructured and converted to the typed objects of gatewayapi.Resources
// when a rebuild reads the caches (an object that does not convert is left
// out with a warning). Their CRDs are optional. A kind the API server does
// not serve is logged once at info level, and one the controller may not
// list at warning level; the controller serves everything else, checks
// discovery again every Options.PolicyDiscoveryInterval (30s) and, once the
// kind is served and listable, starts its informer and rebuilds. Their
// status is written like BackendTLSPolicy's, through the status
// subresource with the dynamic client. The role needs get, list and watch
// on backendpolicies, trafficpolicies and xbackendtrafficpolicies, and
// update on their status.
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
// lastTransitionTime. In HTTPRoute status.parents and the status.ancestors
// of the policies only the entries whose controllerName is rauta's are
// written; other controllers' entries are kept as they are. In every
// conditions list rauta writes (GatewayClass, Gateway, ListenerSet, their
// listeners, and rauta's own route parent and policy ancestor entries)
// only the condition types rauta owns are added, changed and removed
// (gatewayapi.OwnedConditionTypes); a condition of another type, set by
// another controller or a person, is kept as stored, in its place. The
// listener lists of Gateway and ListenerSet status are rauta's alone.
// Writes go through a rate-limited workqueue: a conflict is retried with
// per-object exponential backoff, reading the object afresh from the API
// server. A condition that reports a configuration error (Accepted,
// ResolvedRefs or Programmed False, Conflicted True; not reason Pending) is
// also recorded as a Warning Event on the object when it first appears.
//
// # Replicas
//
// A policy's rate limit is for the Gateway as a whole: each replica
// enforces 1/N of it, N being the number of replicas serving now. Every
// replica keeps a coordination.k8s.io Lease of its own in
// Options.LeaseNamespace, named "<LeaseName>.<Identity>" and labelled
// [ReplicaOfLabel] with the LeaseName, renewed every 1.5s and counting for
// 5s after a renewal. A Lease informer over that label counts the Leases
// renewed within their duration, as seen through the watch; an expiry
// counts only once a later renewal of the replica's own Lease has come
// through the same watch, so a replica cut off the API server never lowers
// N. Whenever N changes it goes to Options.OnReplicas (by default the
// proxy's SetReplicas) and to the rauta_replicas gauge. A clean stop
// deletes the replica's Lease, so the others count one fewer at once; a
// crashed replica stops counting within about 5s, and its Lease is deleted
// a minute later. docs/replicas.md describes the protocol and where limit/N
// is exact.
//
// # Infrastructure Service
//
// The replica holding the Lease also keeps, for every Gateway of rauta's
// classes, the Gateway's infrastructure Service: a Service in the
// Gateway's namespace named "<gateway>-rauta" (a sanitized prefix and a
// hash of the name when that is not a valid Service name), of type
// ClusterIP, with one TCP port named "p<port>" per distinct listener
// port. It names the Gateway's ports; it has no selector, because the data
// plane is shared by every Gateway and no Pod belongs to one. Its labels
// are spec.infrastructure.labels plus gateway.networking.k8s.io/gateway-name
// (the Gateway's name, when it fits in a label value) and
// app.kubernetes.io/managed-by: rauta; its annotations are
// spec.infrastructure.annotations. It is written by server-side apply
// (field manager "rauta"), so a label or annotation removed from the
// Gateway is removed from the Service, and it is restored when someone
// else edits or deletes it. Its controller ownerReference is the Gateway,
// so the garbage collector deletes it with the Gateway; the controller
// also deletes it when the Gateway is deleted or leaves rauta's classes.
// A Gateway without a listener port gets no Service, and a Service of
// that name rauta does not manage is left alone.
//
// # Running it
//
// A Controller is an admin.Source: `rauta serve` in a cluster is a
// proxy.Proxy, a Controller made by [New] with [RESTConfig], and admin.Run,
// which serves the admin endpoints (/readyz follows [Controller.Ready],
// /debug/status shows [Controller.Status]), runs the Controller and shuts
// everything down gracefully when the context ends; see the package
// example. deploy/ holds the manifests and the RBAC role the controller
// needs.
package kube
