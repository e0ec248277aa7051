// Package gatewayapi translates Kubernetes Gateway API objects into the
// configuration of rauta's proxy, and computes their status.
//
// [Translate] is the one entry point: a [Resources] bundle of GatewayClasses,
// Gateways, ListenerSets, HTTPRoutes, GRPCRoutes, ReferenceGrants, policies
// (BackendTLSPolicies, XBackendTrafficPolicies, and rauta's BackendPolicies
// and TrafficPolicies) and the core objects they refer to (Services, EndpointSlices, Secrets,
// ConfigMaps, Namespaces) goes in; a proxy.Config and the status of every
// object handled by the controller come out. Translate is a pure function:
// it does no I/O, reads no clock, starts no goroutine, never modifies its
// input and gives the same output for the same objects in any order.
//
// The Config goes to proxy.Proxy.Apply; the Status is the caller's to show
// or write back. A program that wants this done for it, again at every
// change, hands its Resources to a filesource.Source (Source.Apply), which
// also reports the status; kube.Controller does the same from a cluster and
// writes the status back.
//
// The rules applied are those of the Gateway API specification and its
// conformance suite: GatewayClass acceptance by controllerName; listener
// validation and conflicts; allowedRoutes; route attachment by parentRef
// (sectionName and port) and hostname intersection; ReferenceGrants for
// references across namespaces; backends resolved through Service ports to
// EndpointSlice endpoints; BackendTLSPolicies; a Gateway's spec.tls
// (client certificate validation of its HTTPS listeners, the client
// certificate it presents to TLS backends); and the conditions and reasons
// the specification names, each with its observedGeneration.
//
// # Names in the Config
//
// A Gateway listener is named "namespace/gateway/listener" and a ListenerSet
// listener "namespace/listenerset/name/listener"; routes attach to listeners
// by these names. A backend is named by [BackendName],
// "namespace/service:port". One HTTPRoute gives one proxy.Route per set of
// effective hostnames: the route's hostnames intersected with those of the
// listeners it attaches to (and per backend client certificate, below).
// [ParseBackendName] reads a backend name back.
//
// # GRPCRoutes
//
// A GRPCRoute attaches as an HTTPRoute does and becomes proxy.Routes marked
// GRPC, whose rules match the paths "/service/method" of gRPC calls (see
// the comment at the top of grpcroute.go for the mapping and its
// precedence). An HTTPRoute and a GRPCRoute never share a hostname on a
// listener: the newer of two with intersecting hostnames is not accepted
// there (reason HostnameConflict). A GRPCRoute's backends speak HTTP/2:
// h2c unless a BackendTLSPolicy applies.
//
// # TLSRoutes and TCPRoutes
//
// TLSRoutes attach to TLS listeners and TCPRoutes to TCP listeners with
// the same machinery, and become l4.Routes in Config.StreamRoutes, one
// per listener. Their backends are forwarded streams: a Service port's
// appProtocol plays no part, and neither does a BackendTLSPolicy, except
// behind a listener of tls.mode Terminate, where the policy makes the
// backend a TLS one and the stream is re-encrypted toward it (presenting
// the Gateway's backend client certificate); an invalid policy there
// refuses the reference's share of connections rather than falling back
// to cleartext.
//
// # Gateway TLS
//
// A Gateway's spec.tls.frontend validates client certificates on its
// HTTPS listeners: a perPort entry applies to the HTTPS listeners on its
// port (the Gateway's and its ListenerSets'), the default to the others.
// Each is a proxy.ClientValidation on the listener: the PEM bundle of the
// ca.crt keys of its CA ConfigMaps (a ConfigMap in another namespace needs
// a ReferenceGrant from Gateways) and the mode, AllowValidOnly or
// AllowInsecureFallback (which adds the Gateway condition
// InsecureFrontendValidationMode). A CA reference that fails makes the
// listeners it applies to ResolvedRefs False (InvalidCACertificateRef,
// InvalidCACertificateKind or RefNotPermitted) and unserved; with no valid
// CA certificate at all they are not Accepted (NoValidCACertificate).
// Client certificates are checked in the TLS handshake, before any
// listener is chosen, so listeners of different Gateways sharing an
// address and port must validate alike: the younger one is otherwise
// refused (PortUnavailable).
//
// spec.tls.backend.clientCertificateRef names the kubernetes.io/tls Secret
// a Gateway presents to the TLS backends (those of a BackendTLSPolicy) of
// its routes; it becomes proxy.BackendTLSConfig.ClientCertificate. An
// invalid reference sets the Gateway's ResolvedRefs condition False
// (InvalidClientCertificateRef or RefNotPermitted) without touching its
// acceptance, and its backends are dialled without a certificate. Every
// Gateway has a ResolvedRefs condition, also False (ListenersNotResolved)
// when one of its listeners has unresolved references. When Gateways with
// different client certificates reach one Service port over TLS, each
// certificate gets its own backend, named by
// [ClientCertificateBackendName]; a Service port reached with one
// certificate (or none) keeps its plain name.
//
// # Addresses
//
// Every listener of a Gateway binds one address: the IPAddress of
// spec.addresses when one is given, else one drawn from
// [Options.AddressPool] (derived from the Gateway's namespace and name, so
// stable across translations), else [Options.Address]. With a pool, a
// requested IP outside it is not usable (Programmed False,
// AddressNotUsable); address types other than IPAddress are not supported
// (Accepted False, UnsupportedAddress). Listeners of different Gateways may
// share an address and port when their protocols match and their hostnames
// differ; otherwise the younger Gateway's listener is not accepted
// (PortUnavailable).
//
// # Policies
//
// Policies attach directly (GEP-713) through spec.targetRefs to objects in
// their own namespace, and optionally to one section of them:
//
//   - A TrafficPolicy (gateway.rauta.io) on a Gateway applies to each of
//     its listeners, those of its ListenerSets included; with a
//     sectionName, to one of the Gateway's own listeners. On an HTTPRoute
//     it applies to every proxy.Route made from the route; with a
//     sectionName, to the rule of that name. Its rate limit becomes a
//     proxy.RateLimit of Rate requests/unit per second, Burst burst (by
//     default requests) and Window unit, named for its budget
//     "namespace/policy:Kind/name", or "namespace/policy:Kind/name/section"
//     for a listener or rule: the limit of a Gateway carries one Name on
//     all its listeners, that of an HTTPRoute one Name on all its
//     proxy.Routes, so each is one budget. requestBody.maxSize and
//     timeouts become proxy.RequestLimits.
//   - A BackendPolicy (gateway.rauta.io) on a Service, or with a
//     sectionName on one named port of it, sets the proxy.Backend of the
//     port: load balancer, health check, circuit breaker, connection
//     limits, retry backoff and session persistence.
//   - An XBackendTrafficPolicy (gateway.networking.x-k8s.io) on a Service
//     sets the backend's retry budget (retryConstraint, with the defaults
//     of its CRD: 20% over 10s, at least 10 retries per second) and
//     session persistence. Targets of other kinds are left to other
//     implementations.
//   - An HTTPRoute rule's sessionPersistence becomes the rule's
//     proxy.SessionPersistence, which wins over a backend's.
//
// Settings merge field by field, the most specific level winning: an
// HTTPRoute rule over its route over a listener over its Gateway (the
// proxy merges the request limits of listener, route and rule; the
// translator those of a Gateway and its listener), a Service port over
// its Service. The load balancer, health check and session persistence
// of a BackendPolicy merge as wholes, since their fields depend on their
// type. A BackendPolicy's session persistence wins over an
// XBackendTrafficPolicy's. Rate limits do not merge: every level's limit
// applies.
//
// Between policies of one kind on one target (one object, or one section
// of it), the oldest valid one (creationTimestamp, then namespace/name)
// is in effect there, entirely, and the others are Accepted False
// (Conflicted). A policy whose spec the CRD's schema or CEL rules would
// refuse, or that the translator cannot use (a duration of zero, say), is
// Accepted False (Invalid) with a message naming the field, and has no
// effect: the file source has no API server to refuse it. A target or
// section that does not exist is Accepted False (TargetNotFound).
//
// A policy's status.ancestors hold one entry per handled Gateway a target
// is served through: the Gateway itself for a Gateway, the route's
// Gateways for an HTTPRoute, the Gateways of the routes that use the
// Service for a Service. Through one Gateway, Invalid is reported before
// TargetNotFound, and that before Conflicted (whose messages say when the
// policy is in effect on other targets all the same). A target that does not
// exist is reported with itself as the ancestorRef. A policy appears when
// one of its targets is served through a handled Gateway, or when none of
// its targets exists; a policy whose targets belong to other controllers
// does not appear. Every proxy.Listener, Route, Rule and Backend lists in
// Policies the policies whose settings it carries ("TrafficPolicy
// namespace/name", "BackendPolicy namespace/name",
// "XBackendTrafficPolicy namespace/name"), least specific first.
//
// # Precedence
//
// A Gateway's own listeners that conflict with each other (same port with
// different protocols, or the same hostname) are all refused. ListenerSet
// listeners are then taken oldest ListenerSet first, and a listener that
// conflicts with one accepted before it is refused. BackendTLSPolicies for
// one Service port are taken oldest first, a policy naming the port in
// sectionName before one that does not; the others are Conflicted.
//
// # Invalid input
//
// Bad input changes only the objects it is in, and the status says why.
// A Gateway is accepted when at least one of its listeners is (reason
// ListenersNotValid when some listener is invalid or unresolved) and
// programmed once it has its address; each listener's Programmed condition
// says whether it is served. A ListenerSet is accepted only when one of its
// listeners is both accepted and resolved.
// A backendRef that cannot be resolved keeps its weight with an empty
// backend name, so the proxy answers 500 for its share of the traffic. A
// rule the proxy cannot serve (an invalid regular expression, an
// unsupported filter or value, incompatible filters) makes the route not
// Accepted, and it is left out of the Config. A Service port targeted by
// an invalid BackendTLSPolicy answers 500 rather than falling back to
// cleartext. Settings rauta does not implement are refused rather than
// ignored: GatewayClass and Gateway infrastructure parameters.
//
// [Endpoints] is the fast path for endpoint churn: it resolves one Service
// port to its ready endpoints without translating everything again.
package gatewayapi
