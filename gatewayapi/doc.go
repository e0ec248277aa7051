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
// EndpointSlice endpoints; BackendTLSPolicies; and the conditions and
// reasons the specification names, each with its observedGeneration.
//
// # Names in the Config
//
// A Gateway listener is named "namespace/gateway/listener" and a ListenerSet
// listener "namespace/listenerset/name/listener"; routes attach to listeners
// by these names. A backend is named by [BackendName],
// "namespace/service:port". One HTTPRoute gives one proxy.Route per set of
// effective hostnames: the route's hostnames intersected with those of the
// listeners it attaches to.
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
// ignored: GatewayClass and Gateway infrastructure parameters, and
// frontend client certificate validation.
//
// [Endpoints] is the fast path for endpoint churn: it resolves one Service
// port to its ready endpoints without translating everything again.
package gatewayapi
