package gatewayapi

import (
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayAPIVersion is the Gateway API release whose types and rules the
// translator implements.
const gatewayAPIVersion = "v1.7.0"

// supportedFeatures returns the features rauta claims in GatewayClass
// status, sorted by name as the specification requires. Each is implemented
// by the translator together with the proxy.
func supportedFeatures() []gatewayv1.SupportedFeature {
	names := []gatewayv1.FeatureName{
		"BackendTLSPolicy",
		"BackendTLSPolicySANValidation",
		"GRPCRoute",
		"GRPCRouteNamedRouteRule",
		"GRPCRouteRequestHeaderModifier",
		"Gateway",
		"GatewayAddressEmpty",
		"GatewayBackendClientCertificate",
		"GatewayFrontendClientCertificateValidation",
		"GatewayFrontendClientCertificateValidationInsecureFallback",
		"GatewayHTTPListenerIsolation",
		"GatewayHTTPSListenerDetectMisdirectedRequests",
		"GatewayInfrastructure",
		"GatewayPort8080",
		"GatewayRouteHostnameIntersectionPrecedence",
		"GatewayStaticAddresses",
		"HTTPRoute",
		"HTTPRoute303RedirectStatusCode",
		"HTTPRoute307RedirectStatusCode",
		"HTTPRoute308RedirectStatusCode",
		"HTTPRouteBackendProtocolH2C",
		"HTTPRouteBackendProtocolWebSocket",
		"HTTPRouteBackendRequestHeaderModification",
		"HTTPRouteBackendTimeout",
		"HTTPRouteBackendURLRewrite",
		"HTTPRouteCORS",
		"HTTPRouteDestinationPortMatching",
		"HTTPRouteHostRewrite",
		"HTTPRouteMethodMatching",
		"HTTPRouteNamedRouteRule",
		"HTTPRouteParentRefPort",
		"HTTPRoutePathRedirect",
		"HTTPRoutePathRewrite",
		"HTTPRoutePortRedirect",
		"HTTPRouteQueryParamMatching",
		"HTTPRouteRequestMirror",
		"HTTPRouteRequestMultipleMirrors",
		"HTTPRouteRequestPercentageMirror",
		"HTTPRouteRequestTimeout",
		"HTTPRouteResponseHeaderModification",
		"HTTPRouteRetryCodes",
		"HTTPRouteRetryConnectionError",
		"HTTPRouteSchemeRedirect",
		"ListenerSet",
		"ReferenceGrant",
		"TCPRoute",
		"TLSRoute",
		"TLSRouteModeMixed",
		"TLSRouteModeTerminate",
		"UDPRoute",
	}
	out := make([]gatewayv1.SupportedFeature, len(names))
	for i, n := range names {
		out[i] = gatewayv1.SupportedFeature{Name: n}
	}
	return out
}
