package gatewayapi

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/rauta/rauta/proxy"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// This file translates a Gateway's spec.tls: frontend client certificate
// validation (default and per port) for its HTTPS listeners, and the client
// certificate it presents to TLS backends.

// frontendState is one client validation setting of spec.tls.frontend
// (the default or a perPort entry), resolved.
type frontendState struct {
	field string // "spec.tls.frontend.default" or "spec.tls.frontend.perPort[i].tls"
	// validation is what the listeners it applies to serve; nil when the
	// setting validates nothing or when no CA certificate resolved.
	validation *proxy.ClientValidation
	// refsReason makes ResolvedRefs False on the listeners it applies to
	// (a CA reference failed); acceptReason makes them not Accepted.
	refsReason   gatewayv1.ListenerConditionReason
	refsMsg      string
	acceptReason gatewayv1.ListenerConditionReason
	acceptMsg    string
}

// clientCert is the client certificate a Gateway presents to TLS backends.
type clientCert struct {
	key  string // "namespace/secret"; "" for none
	cert *proxy.Certificate
}

// resolveGatewayTLS resolves the Gateway's spec.tls: the frontend settings
// by port, and the backend client certificate with the Gateway's own
// ResolvedRefs problem.
func (t *translator) resolveGatewayTLS(g *gatewayState) {
	tls := g.gw.Spec.TLS
	if tls == nil {
		return
	}
	if f := tls.Frontend; f != nil {
		g.frontendDefault = t.resolveFrontend(g, f.Default, "spec.tls.frontend.default")
		g.frontendPorts = make(map[gatewayv1.PortNumber]*frontendState, len(f.PerPort))
		for i, pp := range f.PerPort {
			if _, dup := g.frontendPorts[pp.Port]; dup {
				// The API server refuses duplicate ports; the first wins.
				continue
			}
			g.frontendPorts[pp.Port] = t.resolveFrontend(g, pp.TLS, fmt.Sprintf("spec.tls.frontend.perPort[%d].tls", i))
		}
	}
	if b := tls.Backend; b != nil && b.ClientCertificateRef != nil {
		ref := *b.ClientCertificateRef
		field := "spec.tls.backend.clientCertificateRef"
		cert, reason, msg := t.certificate(ref, kindGateway, g.gw.Namespace, g.gw.Name)
		switch reason {
		case "":
			g.backendCert = clientCert{key: cert.Name, cert: &cert}
		case gatewayv1.ListenerReasonRefNotPermitted:
			g.refsReason, g.refsMsg = gatewayv1.GatewayReasonRefNotPermitted, field+": "+msg
		default:
			g.refsReason, g.refsMsg = gatewayv1.GatewayReasonInvalidClientCertificateRef, field+": "+msg
		}
	}
}

// resolveFrontend resolves one client validation setting.
func (t *translator) resolveFrontend(g *gatewayState, cfg gatewayv1.TLSConfig, field string) *frontendState {
	fs := &frontendState{field: field}
	v := cfg.Validation
	if v == nil {
		return fs
	}
	mode := proxy.AllowValidOnly
	switch v.Mode {
	case "", gatewayv1.AllowValidOnly:
	case gatewayv1.AllowInsecureFallback:
		mode = proxy.AllowInsecureFallback
		g.insecureFrontend = append(g.insecureFrontend, field)
	default:
		fs.acceptReason = gatewayv1.ListenerReasonUnsupportedValue
		fs.acceptMsg = fmt.Sprintf("%s.validation.mode: %q is not supported (AllowValidOnly and AllowInsecureFallback are)", field, v.Mode)
		return fs
	}
	var (
		bundle []byte
		names  []string
	)
	for i, ref := range v.CACertificateRefs {
		name, pem, reason, msg := t.caCertificate(ref, g)
		if reason != "" {
			if fs.refsReason == "" {
				fs.refsReason = reason
				fs.refsMsg = fmt.Sprintf("%s.validation.caCertificateRefs[%d]: %s", field, i, msg)
			}
			continue
		}
		names = append(names, name)
		bundle = append(bundle, pem...)
		if !strings.HasSuffix(string(pem), "\n") {
			bundle = append(bundle, '\n')
		}
	}
	if len(bundle) == 0 {
		fs.acceptReason = gatewayv1.ListenerReasonNoValidCACertificate
		fs.acceptMsg = field + ".validation: no valid CA certificate"
		if fs.refsMsg != "" {
			fs.acceptMsg += " (" + fs.refsMsg + ")"
		}
		return fs
	}
	fs.validation = &proxy.ClientValidation{Name: strings.Join(names, ","), CACertificates: bundle, Mode: mode}
	return fs
}

// caCertificate resolves a caCertificateRef of a Gateway's frontend
// validation to its ConfigMap's ca.crt.
func (t *translator) caCertificate(ref gatewayv1.ObjectReference, g *gatewayState) (name string, pem []byte, reason gatewayv1.ListenerConditionReason, msg string) {
	gwNS := g.gw.Namespace
	ns := cmp.Or(string(deref(ref.Namespace)), gwNS)
	if ref.Group != groupCore || ref.Kind != kindConfigMap {
		return "", nil, gatewayv1.ListenerReasonInvalidCACertificateKind, fmt.Sprintf("%s %q of group %q is not supported (only core ConfigMaps are)", ref.Kind, ref.Name, ref.Group)
	}
	if ns != gwNS && !t.granted(groupGateway, kindGateway, gwNS, groupCore, kindConfigMap, ns, string(ref.Name)) {
		return "", nil, gatewayv1.ListenerReasonRefNotPermitted, fmt.Sprintf("ConfigMap %s/%s: no ReferenceGrant in %s allows Gateway %s/%s to refer to it", ns, ref.Name, ns, gwNS, g.gw.Name)
	}
	cm := t.configMaps[nn{ns, string(ref.Name)}]
	if cm == nil {
		return "", nil, gatewayv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("ConfigMap %s/%s not found", ns, ref.Name)
	}
	data := []byte(cm.Data["ca.crt"])
	if len(data) == 0 {
		data = cm.BinaryData["ca.crt"]
	}
	if err := checkCABundle(data); err != nil {
		return "", nil, gatewayv1.ListenerReasonInvalidCACertificateRef, fmt.Sprintf("ConfigMap %s/%s key ca.crt: %v", ns, ref.Name, err)
	}
	return ns + "/" + string(ref.Name), data, "", ""
}

// frontendFor returns the frontend setting for a port: the perPort entry
// naming it, else the default; nil when the Gateway has none.
func (g *gatewayState) frontendFor(port gatewayv1.PortNumber) *frontendState {
	if fs := g.frontendPorts[port]; fs != nil {
		return fs
	}
	return g.frontendDefault
}

// applyFrontendTLS applies the Gateway's client certificate validation to
// an HTTPS listener: the validation it serves, and the conditions of a
// setting whose CA certificates did not resolve. The setting of a port
// applies to every HTTPS listener on it, those of the Gateway's
// ListenerSets included: the handshake, where clients are validated, comes
// before any listener is chosen.
func (g *gatewayState) applyFrontendTLS(l *listenerState) {
	if l.spec.Protocol != gatewayv1.HTTPSProtocolType {
		return
	}
	fs := g.frontendFor(l.spec.Port)
	if fs == nil {
		return
	}
	if fs.refsReason != "" && l.refsReason == "" {
		l.refsReason, l.refsMsg = fs.refsReason, fs.refsMsg
	}
	if fs.acceptReason != "" && l.acceptReason == "" {
		l.acceptReason, l.acceptMsg = fs.acceptReason, fs.acceptMsg
	}
	l.clientValidation = fs.validation
}

// sameValidation reports whether two listeners validate clients alike, so
// that they can share a port.
func sameValidation(a, b *proxy.ClientValidation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Mode == b.Mode && string(a.CACertificates) == string(b.CACertificates)
}

// tlsConditions returns the Gateway's ResolvedRefs condition and, when its
// frontend validation allows insecure fallback, its
// InsecureFrontendValidationMode condition.
func (g *gatewayState) tlsConditions() []metav1.Condition {
	gen := g.gw.Generation
	var unresolved []string
	for _, l := range g.listeners {
		if l.refsReason != "" {
			unresolved = append(unresolved, string(l.spec.Name))
		}
	}
	var out []metav1.Condition
	switch {
	case g.refsReason != "":
		out = append(out, condition(gatewayv1.GatewayConditionResolvedRefs, false, g.refsReason, g.refsMsg, gen))
	case len(unresolved) > 0:
		out = append(out, condition(gatewayv1.GatewayConditionResolvedRefs, false, gatewayv1.GatewayReasonListenersNotResolved,
			"listeners with unresolved references: "+strings.Join(unresolved, ", "), gen))
	default:
		out = append(out, condition(gatewayv1.GatewayConditionResolvedRefs, true, gatewayv1.GatewayReasonResolvedRefs, "all references resolved", gen))
	}
	if len(g.insecureFrontend) > 0 {
		out = append(out, condition(gatewayv1.GatewayConditionInsecureFrontendValidationMode, true, gatewayv1.GatewayReasonConfigurationChanged,
			strings.Join(g.insecureFrontend, ", ")+": mode AllowInsecureFallback accepts clients without a valid certificate", gen))
	}
	return out
}

// certGroup is a set of Gateways that present the same client certificate
// to TLS backends.
type certGroup struct {
	cc  clientCert
	gws []*gatewayState
}

// groupByClientCert splits the Gateways of a route by the client
// certificate they present to backends, in order of certificate key. It
// returns one group without a certificate when gws is empty.
func groupByClientCert(gws []*gatewayState) []certGroup {
	var out []certGroup
	for _, g := range gws {
		i := slices.IndexFunc(out, func(c certGroup) bool { return c.cc.key == g.backendCert.key })
		if i < 0 {
			out = append(out, certGroup{cc: g.backendCert})
			i = len(out) - 1
		}
		out[i].gws = append(out[i].gws, g)
	}
	if len(out) == 0 {
		out = append(out, certGroup{})
	}
	slices.SortFunc(out, func(a, b certGroup) int { return strings.Compare(a.cc.key, b.cc.key) })
	return out
}
