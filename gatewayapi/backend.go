package gatewayapi

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Service appProtocol values with a meaning for the proxy.
const (
	appProtocolH2C = "kubernetes.io/h2c"
	appProtocolWS  = "kubernetes.io/ws"
	appProtocolWSS = "kubernetes.io/wss"
)

// refError is a backendRef that could not be resolved.
type refError struct {
	reason gatewayv1.RouteConditionReason
	msg    string
}

// resolveBackend resolves a backendRef of a route in namespace routeNS to
// the key of a proxy backend, adding the backend to t.backends. gws are
// the Gateways the route is attached to, recorded as the ancestors of the
// BackendTLSPolicy that applies; cc is the client certificate they present
// to TLS backends.
//
// A backend is keyed by its [BackendName], and a TLS backend that presents
// a client certificate by its name and the certificate's key, joined by a
// NUL: the same Service port reached through Gateways with different
// client certificates is several backends. [translator.config] gives the
// keys their final names.
func (t *translator) resolveBackend(routeNS, routeName string, ref *gatewayv1.BackendObjectReference, gws []*gatewayState, cc clientCert) (string, *refError) {
	return t.resolveRouteBackend(kindHTTPRoute, routeNS, routeName, ref, gws, cc)
}

// resolveRouteBackend is resolveBackend for a route of kind routeKind,
// the kind a ReferenceGrant must allow. A GRPCRoute's backend speaks
// HTTP/2: h2c when its port has no appProtocol (the protocol is inferred
// from the route kind, as the Gateway API allows), and a port whose
// appProtocol says HTTP/1.1 or WebSocket cannot serve it.
func (t *translator) resolveRouteBackend(routeKind gatewayv1.Kind, routeNS, routeName string, ref *gatewayv1.BackendObjectReference, gws []*gatewayState, cc clientCert) (string, *refError) {
	svc, sp, e := t.serviceRef(routeKind, routeNS, routeName, ref)
	if e != nil {
		return "", e
	}
	ns, port := svc.Namespace, sp.Port
	name := BackendName(ns, svc.Name, port)
	pol := t.policies.lookup(svc, sp, gws)
	t.backendPolicies.apply(svc, sp, gws, nil)
	key := name
	if pol != nil && pol.tls != nil && cc.cert != nil {
		key = name + "\x00" + cc.key
	}
	app := deref(sp.AppProtocol)
	grpc := routeKind == kindGRPCRoute
	if grpc && pol == nil && app != "" && app != appProtocolH2C {
		return "", &refError{gatewayv1.RouteReasonUnsupportedProtocol, fmt.Sprintf("Service %s/%s port %d: appProtocol %q cannot carry gRPC (kubernetes.io/h2c or none can)", ns, svc.Name, port, app)}
	}
	if b := t.backends[key]; b != nil {
		if pol != nil && pol.tls == nil {
			return "", nil
		}
		if grpc && b.Protocol == proxy.BackendHTTP1 {
			return "", &refError{gatewayv1.RouteReasonUnsupportedProtocol, fmt.Sprintf("Service %s/%s port %d: an HTTPRoute uses it as HTTP/1.1 (no appProtocol), so it cannot carry gRPC; set appProtocol kubernetes.io/h2c", ns, svc.Name, port)}
		}
		return key, nil
	}
	b := &proxy.Backend{Spec: upstream.Spec{Name: name, Endpoints: Endpoints(svc, port, t.slices[nn{ns, svc.Name}])}}
	if b.Endpoints == nil {
		b.Endpoints = []upstream.Endpoint{}
	}
	switch {
	case pol != nil:
		if pol.tls == nil {
			// The policy is invalid: the gateway must not fall back to
			// cleartext, so the reference answers 500.
			return "", nil
		}
		b.Protocol = proxy.BackendTLS
		b.TLS = pol.tls
		if cc.cert != nil {
			withCert := *pol.tls
			withCert.ClientCertificate = cc.cert
			b.TLS = &withCert
		}
	case grpc:
		b.Protocol = proxy.BackendH2C
	case app == "" || strings.EqualFold(app, "http") || app == appProtocolWS:
		b.Protocol = proxy.BackendHTTP1
	case app == appProtocolH2C:
		b.Protocol = proxy.BackendH2C
	default:
		return "", &refError{gatewayv1.RouteReasonUnsupportedProtocol, fmt.Sprintf("Service %s/%s port %d: appProtocol %q is not supported", ns, svc.Name, port, app)}
	}
	t.backendPolicies.apply(svc, sp, gws, b)
	t.backends[key] = b
	return key, nil
}

// serviceRef resolves a backendRef of a route of routeKind in namespace
// routeNS to a Service port: the kind must be a core Service, a reference
// to another namespace needs a ReferenceGrant for routeKind, and the
// Service must exist, have the port and not be of type ExternalName.
func (t *translator) serviceRef(routeKind gatewayv1.Kind, routeNS, routeName string, ref *gatewayv1.BackendObjectReference) (*corev1.Service, *corev1.ServicePort, *refError) {
	grp, kind := deref(ref.Group), cmp.Or(deref(ref.Kind), kindService)
	if grp != groupCore || kind != kindService {
		return nil, nil, &refError{gatewayv1.RouteReasonInvalidKind, fmt.Sprintf("%s %q of group %q is not supported (only core Services are)", kind, ref.Name, grp)}
	}
	ns := cmp.Or(string(deref(ref.Namespace)), routeNS)
	if ns != routeNS && !t.granted(groupGateway, routeKind, routeNS, groupCore, kindService, ns, string(ref.Name)) {
		return nil, nil, &refError{gatewayv1.RouteReasonRefNotPermitted, fmt.Sprintf("Service %s/%s: no ReferenceGrant in %s allows %s %s/%s to refer to it", ns, ref.Name, ns, routeKind, routeNS, routeName)}
	}
	svc := t.services[nn{ns, string(ref.Name)}]
	if svc == nil {
		return nil, nil, &refError{gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s/%s not found", ns, ref.Name)}
	}
	if ref.Port == nil {
		return nil, nil, &refError{gatewayv1.RouteReasonUnsupportedValue, fmt.Sprintf("Service %s/%s: port is required", ns, ref.Name)}
	}
	port := *ref.Port
	sp := servicePort(svc, port)
	if sp == nil {
		return nil, nil, &refError{gatewayv1.RouteReasonBackendNotFound, fmt.Sprintf("Service %s/%s has no port %d", ns, ref.Name, port)}
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil, &refError{gatewayv1.RouteReasonUnsupportedProtocol, fmt.Sprintf("Service %s/%s: type ExternalName is not supported", ns, ref.Name)}
	}
	return svc, sp, nil
}

// policyIndex holds the BackendTLSPolicies by the Service they target.
type policyIndex struct {
	t        *translator
	byTarget map[nn][]*policyState // by Service
	all      []*policyState        // sorted by namespace/name
}

// policyState is one BackendTLSPolicy and its translation.
type policyState struct {
	p         *gatewayv1.BackendTLSPolicy
	key       nn
	tls       *proxy.BackendTLSConfig // nil when the policy is invalid
	accepted  metav1.Condition
	resolved  metav1.Condition
	conflict  bool
	ancestors map[nn]*gatewayState
	used      bool
}

func newPolicyIndex(t *translator) *policyIndex {
	pi := &policyIndex{t: t, byTarget: make(map[nn][]*policyState)}
	for i := range t.res.BackendTLSPolicies {
		p := &t.res.BackendTLSPolicies[i]
		ps := &policyState{p: p, key: nn{p.Namespace, p.Name}, ancestors: make(map[nn]*gatewayState)}
		pi.all = append(pi.all, ps)
		seen := map[string]bool{}
		for _, tr := range p.Spec.TargetRefs {
			if tr.Group != groupCore || tr.Kind != kindService || seen[string(tr.Name)] {
				continue
			}
			seen[string(tr.Name)] = true
			k := nn{p.Namespace, string(tr.Name)}
			pi.byTarget[k] = append(pi.byTarget[k], ps)
		}
	}
	slices.SortFunc(pi.all, func(a, b *policyState) int { return compareNN(a.key, b.key) })
	for _, ps := range pi.all {
		pi.validate(ps)
	}
	// Older policies take precedence, then by namespace/name.
	for k, v := range pi.byTarget {
		slices.SortFunc(v, func(a, b *policyState) int {
			return olderFirst(a.p.CreationTimestamp, b.p.CreationTimestamp, a.key, b.key)
		})
		pi.byTarget[k] = v
	}
	return pi
}

// validate resolves a policy's CA certificates and hostname.
func (pi *policyIndex) validate(ps *policyState) {
	gen := ps.p.Generation
	v := ps.p.Spec.Validation
	cfg := &proxy.BackendTLSConfig{ServerName: string(v.Hostname)}
	for _, san := range v.SubjectAltNames {
		switch san.Type {
		case gatewayv1.HostnameSubjectAltNameType:
			cfg.SubjectAltNames = append(cfg.SubjectAltNames, string(san.Hostname))
		case gatewayv1.URISubjectAltNameType:
			cfg.SubjectAltNames = append(cfg.SubjectAltNames, string(san.URI))
		}
	}
	var (
		bundle     []byte
		badReason  gatewayv1.PolicyConditionReason
		badMsg     string
		validCount int
	)
	for i, ref := range v.CACertificateRefs {
		field := fmt.Sprintf("spec.validation.caCertificateRefs[%d]", i)
		if ref.Group != groupCore || ref.Kind != kindConfigMap {
			if badReason == "" {
				badReason = gatewayv1.BackendTLSPolicyReasonInvalidKind
				badMsg = fmt.Sprintf("%s: %s %q of group %q is not supported (only ConfigMaps are)", field, ref.Kind, ref.Name, ref.Group)
			}
			continue
		}
		cm := pi.t.configMaps[nn{ps.p.Namespace, string(ref.Name)}]
		if cm == nil {
			if badReason == "" {
				badReason = gatewayv1.BackendTLSPolicyReasonInvalidCACertificateRef
				badMsg = fmt.Sprintf("%s: ConfigMap %s/%s not found", field, ps.p.Namespace, ref.Name)
			}
			continue
		}
		pemData := []byte(cm.Data["ca.crt"])
		if len(pemData) == 0 {
			pemData = cm.BinaryData["ca.crt"]
		}
		if err := checkCABundle(pemData); err != nil {
			if badReason == "" {
				badReason = gatewayv1.BackendTLSPolicyReasonInvalidCACertificateRef
				badMsg = fmt.Sprintf("%s: ConfigMap %s/%s key ca.crt: %v", field, ps.p.Namespace, ref.Name, err)
			}
			continue
		}
		validCount++
		bundle = append(bundle, pemData...)
		if !strings.HasSuffix(string(pemData), "\n") {
			bundle = append(bundle, '\n')
		}
	}
	wk := deref(v.WellKnownCACertificates)
	switch {
	case wk != "" && len(v.CACertificateRefs) > 0:
		ps.accepted = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonInvalid, "spec.validation: caCertificateRefs and wellKnownCACertificates are mutually exclusive", gen)
	case wk != "" && wk != gatewayv1.WellKnownCACertificatesSystem:
		ps.accepted = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonInvalid, fmt.Sprintf("spec.validation.wellKnownCACertificates: %q is not supported (only System)", wk), gen)
	case wk == "" && len(v.CACertificateRefs) == 0:
		ps.accepted = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonInvalid, "spec.validation: one of caCertificateRefs and wellKnownCACertificates is required", gen)
	case v.Hostname == "":
		ps.accepted = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonInvalid, "spec.validation.hostname is required", gen)
	case wk == gatewayv1.WellKnownCACertificatesSystem:
		cfg.SystemRoots = true
		ps.tls = cfg
	case validCount == 0:
		ps.accepted = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.BackendTLSPolicyReasonNoValidCACertificate, badMsg, gen)
	default:
		cfg.CACertificates = bundle
		ps.tls = cfg
	}
	if ps.tls != nil {
		ps.accepted = condition(gatewayv1.PolicyConditionAccepted, true, gatewayv1.PolicyReasonAccepted, "policy accepted", gen)
	}
	if badReason != "" {
		ps.resolved = condition(gatewayv1.BackendTLSPolicyConditionResolvedRefs, false, badReason, badMsg, gen)
	} else {
		ps.resolved = condition(gatewayv1.BackendTLSPolicyConditionResolvedRefs, true, gatewayv1.BackendTLSPolicyReasonResolvedRefs, "all references resolved", gen)
	}
}

// checkCABundle checks that data holds at least one PEM certificate and
// that every CERTIFICATE block parses.
func checkCABundle(data []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no PEM certificate found")
	}
	return nil
}

// lookup returns the policy that applies to port sp of svc: the oldest
// policy naming the port in sectionName, else the oldest without a
// sectionName. The others targeting the same port are Conflicted. The
// Gateways gws become ancestors of every policy involved.
func (pi *policyIndex) lookup(svc *corev1.Service, sp *corev1.ServicePort, gws []*gatewayState) *policyState {
	cands := pi.byTarget[nn{svc.Namespace, svc.Name}]
	if len(cands) == 0 {
		return nil
	}
	var bySection, general []*policyState
	for _, ps := range cands {
		sec, has := "", false
		for _, tr := range ps.p.Spec.TargetRefs {
			if tr.Group == groupCore && tr.Kind == kindService && string(tr.Name) == svc.Name {
				if tr.SectionName != nil && *tr.SectionName != "" {
					if string(*tr.SectionName) == sp.Name {
						sec, has = sp.Name, true
					}
				} else if !has {
					sec = "*"
				}
			}
		}
		switch {
		case has:
			bySection = append(bySection, ps)
		case sec == "*":
			general = append(general, ps)
		}
	}
	list := bySection
	if len(list) == 0 {
		list = general
	}
	if len(list) == 0 {
		return nil
	}
	for i, ps := range list {
		ps.used = true
		if i > 0 {
			ps.conflict = true
		}
		for _, g := range gws {
			ps.ancestors[g.key] = g
		}
	}
	return list[0]
}

// statuses returns the status of every policy that applies to a backend of
// a handled route.
func (pi *policyIndex) statuses() []PolicyStatus {
	var out []PolicyStatus
	for _, ps := range pi.all {
		if !ps.used || len(ps.ancestors) == 0 {
			continue
		}
		gen := ps.p.Generation
		acc := ps.accepted
		if ps.conflict {
			acc = condition(gatewayv1.PolicyConditionAccepted, false, gatewayv1.PolicyReasonConflicted, "an older BackendTLSPolicy targets the same Service port", gen)
		}
		keys := make([]nn, 0, len(ps.ancestors))
		for k := range ps.ancestors {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareNN)
		st := PolicyStatus{Namespace: ps.key.ns, Name: ps.key.name, Generation: gen}
		for _, k := range keys {
			st.Status.Ancestors = append(st.Status.Ancestors, ancestorStatus(gatewayAncestor(k), pi.t.controller, acc, ps.resolved))
		}
		out = append(out, st)
	}
	return out
}
