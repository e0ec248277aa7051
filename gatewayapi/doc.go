// Package gatewayapi translates Kubernetes Gateway API objects into the
// configuration of rauta's proxy, and computes their status.
//
// [Translate] is the one entry point: a [Resources] bundle of GatewayClasses,
// Gateways, ListenerSets, HTTPRoutes, ReferenceGrants, BackendTLSPolicies and
// the core objects they refer to (Services, EndpointSlices, Secrets,
// ConfigMaps, Namespaces) goes in; a proxy.Config and the status of every
// object handled by the controller come out. Translate is a pure function:
// it does no I/O, reads no clock, starts no goroutine, never modifies its
// input and gives the same output for the same objects in any order.
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
