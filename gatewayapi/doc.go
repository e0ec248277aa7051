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
// [Endpoints] is the fast path for endpoint churn: it resolves one Service
// port to its ready endpoints without translating everything again.
package gatewayapi
