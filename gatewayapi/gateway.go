package gatewayapi

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/tlsconfig"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Group and kind names used in references.
const (
	groupGateway    = gatewayv1.Group("gateway.networking.k8s.io")
	groupCore       = gatewayv1.Group("")
	kindGateway     = gatewayv1.Kind("Gateway")
	kindListenerSet = gatewayv1.Kind("ListenerSet")
	kindHTTPRoute   = gatewayv1.Kind("HTTPRoute")
	kindTLSRoute    = gatewayv1.Kind("TLSRoute")
	kindTCPRoute    = gatewayv1.Kind("TCPRoute")
	kindUDPRoute    = gatewayv1.Kind("UDPRoute")
	kindGRPCRoute   = gatewayv1.Kind("GRPCRoute")
	kindService     = gatewayv1.Kind("Service")
	kindSecret      = gatewayv1.Kind("Secret")
	kindConfigMap   = gatewayv1.Kind("ConfigMap")
)

// classState is a GatewayClass handled by the translator.
type classState struct {
	class    *gatewayv1.GatewayClass
	accepted bool
}

// translateClasses computes the status of the GatewayClasses whose
// controllerName is ours.
func (t *translator) translateClasses() []GatewayClassStatus {
	var out []GatewayClassStatus
	for i := range t.res.GatewayClasses {
		gc := &t.res.GatewayClasses[i]
		if gc.Spec.ControllerName != t.controller {
			continue
		}
		cs := &classState{class: gc, accepted: true}
		gen := gc.Generation
		accepted := condition(gatewayv1.GatewayClassConditionStatusAccepted, true, gatewayv1.GatewayClassReasonAccepted, "handled by "+string(t.controller), gen)
		if p := gc.Spec.ParametersRef; p != nil {
			cs.accepted = false
			accepted = condition(gatewayv1.GatewayClassConditionStatusAccepted, false, gatewayv1.GatewayClassReasonInvalidParameters,
				fmt.Sprintf("spec.parametersRef: %s %s/%s: parameters are not supported", p.Kind, deref(p.Namespace), p.Name), gen)
		}
		t.classes[gc.Name] = cs
		out = append(out, GatewayClassStatus{
			Name:       gc.Name,
			Generation: gen,
			Status: gatewayv1.GatewayClassStatus{
				Conditions: []metav1.Condition{
					accepted,
					condition(gatewayv1.GatewayClassConditionStatusSupportedVersion, true, gatewayv1.GatewayClassReasonSupportedVersion, "Gateway API "+gatewayAPIVersion, gen),
				},
				SupportedFeatures: supportedFeatures(),
			},
		})
	}
	slices.SortFunc(out, func(a, b GatewayClassStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// gatewayState is a Gateway of a handled class and its listeners.
type gatewayState struct {
	gw        *gatewayv1.Gateway
	key       nn
	class     *classState
	listeners []*listenerState // spec order
	sets      []*listenerSetState

	address       string // the IP the listeners bind
	statusAddress []gatewayv1.GatewayStatusAddress
	// addrReason, when set, makes the Gateway not Accepted (an unsupported
	// address); progReason makes it not Programmed (an unusable address).
	addrReason gatewayv1.GatewayConditionReason
	addrMsg    string
	progReason gatewayv1.GatewayConditionReason
	progMsg    string

	// spec.tls: the frontend validation by port (perPort, else the
	// default; both nil without spec.tls.frontend), the fields that allow
	// insecure fallback, the client certificate for TLS backends, and the
	// Gateway's own ResolvedRefs problem (a bad clientCertificateRef).
	frontendDefault  *frontendState
	frontendPorts    map[gatewayv1.PortNumber]*frontendState
	insecureFrontend []string
	backendCert      clientCert
	refsReason       gatewayv1.GatewayConditionReason
	refsMsg          string

	accepted   metav1.Condition
	programmed metav1.Condition
}

// servable reports whether the Gateway's listeners may be programmed.
func (g *gatewayState) servable() bool {
	inf := g.gw.Spec.Infrastructure
	return g.class.accepted && g.addrReason == "" && g.progReason == "" && (inf == nil || inf.ParametersRef == nil)
}

// listenerSetState is a ListenerSet whose parent is a handled Gateway.
type listenerSetState struct {
	ls        *gatewayv1.ListenerSet
	key       nn
	gw        *gatewayState
	allowed   bool
	listeners []*listenerState
}

// listenerState is one listener of a Gateway or a ListenerSet.
type listenerState struct {
	gw   *gatewayState
	set  *listenerSetState // nil for a Gateway's own listener
	spec gatewayv1.Listener
	ns   string // namespace of the owning object, for allowedRoutes "Same"
	name string // proxy listener name

	supportedProtocol bool
	protocol          proxy.ListenerProtocol
	kinds             []gatewayv1.RouteGroupKind
	invalidKinds      []string

	// Accepted: false with this reason when not accepted.
	acceptReason gatewayv1.ListenerConditionReason
	acceptMsg    string
	conflict     gatewayv1.ListenerConditionReason
	conflictMsg  string
	// ResolvedRefs: false with this reason when a reference failed.
	refsReason gatewayv1.ListenerConditionReason
	refsMsg    string

	certs []proxy.Certificate
	// passthrough is a TLS listener's tls.mode Passthrough.
	passthrough bool
	// clientValidation is the Gateway's frontend validation for the
	// listener's port (HTTPS only).
	clientValidation *proxy.ClientValidation
	attached         int32
}

// accepted reports whether the listener is accepted for route attachment.
func (l *listenerState) accepted() bool { return l.acceptReason == "" && l.conflict == "" }

// valid reports whether the listener is accepted and its references
// resolved: whether it counts towards its Gateway's or ListenerSet's
// acceptance.
func (l *listenerState) valid() bool { return l.accepted() && l.refsReason == "" }

// candidate reports whether the listener can be served if its Gateway is:
// it is valid and, for a ListenerSet listener, allowed by the Gateway.
func (l *listenerState) candidate() bool {
	return l.valid() && (l.set == nil || l.set.allowed)
}

// programmed reports whether the listener is served. It is meaningful once
// the Gateway's conditions are computed.
func (l *listenerState) programmed() bool {
	return l.candidate() && l.gw.servable() && l.gw.accepted.Status == metav1.ConditionTrue
}

func (l *listenerState) hostname() string { return string(deref(l.spec.Hostname)) }

func (l *listenerState) proxyListener() proxy.Listener {
	return proxy.Listener{
		Name:         l.name,
		Address:      l.gw.address,
		Port:         int(l.spec.Port),
		Protocol:     l.protocol,
		Hostname:     l.hostname(),
		Certificates: l.certs,
		Passthrough:  l.passthrough,
		// Shared, never modified: the Config is read-only.
		ClientValidation: l.clientValidation,
	}
}

// conditions returns the listener's status conditions.
func (l *listenerState) conditions(gen int64) []metav1.Condition {
	var acc, prog, refs, confl metav1.Condition
	switch {
	case l.conflict != "":
		acc = condition(gatewayv1.ListenerConditionAccepted, false, l.conflict, l.conflictMsg, gen)
	case l.acceptReason != "":
		acc = condition(gatewayv1.ListenerConditionAccepted, false, l.acceptReason, l.acceptMsg, gen)
	default:
		acc = condition(gatewayv1.ListenerConditionAccepted, true, gatewayv1.ListenerReasonAccepted, "listener accepted", gen)
	}
	if l.refsReason != "" {
		refs = condition(gatewayv1.ListenerConditionResolvedRefs, false, l.refsReason, l.refsMsg, gen)
	} else {
		refs = condition(gatewayv1.ListenerConditionResolvedRefs, true, gatewayv1.ListenerReasonResolvedRefs, "all references resolved", gen)
	}
	if l.conflict != "" {
		confl = condition(gatewayv1.ListenerConditionConflicted, true, l.conflict, l.conflictMsg, gen)
	} else {
		confl = condition(gatewayv1.ListenerConditionConflicted, false, gatewayv1.ListenerReasonNoConflicts, "no conflicts", gen)
	}
	switch {
	case l.programmed():
		prog = condition(gatewayv1.ListenerConditionProgrammed, true, gatewayv1.ListenerReasonProgrammed, "listener programmed on "+l.gw.address, gen)
	case l.conflict != "":
		prog = condition(gatewayv1.ListenerConditionProgrammed, false, l.conflict, l.conflictMsg, gen)
	case l.acceptReason == gatewayv1.ListenerReasonPortUnavailable:
		prog = condition(gatewayv1.ListenerConditionProgrammed, false, l.acceptReason, l.acceptMsg, gen)
	case l.acceptReason != "":
		prog = condition(gatewayv1.ListenerConditionProgrammed, false, gatewayv1.ListenerReasonInvalid, l.acceptMsg, gen)
	case l.refsReason != "":
		prog = condition(gatewayv1.ListenerConditionProgrammed, false, gatewayv1.ListenerReasonInvalid, l.refsMsg, gen)
	default:
		prog = condition(gatewayv1.ListenerConditionProgrammed, false, gatewayv1.ListenerReasonPending, "the Gateway is not programmed", gen)
	}
	return []metav1.Condition{acc, prog, refs, confl}
}

// translateGateways validates the Gateways of handled classes, their
// ListenerSets and listeners, and assigns their addresses.
func (t *translator) translateGateways() {
	for i := range t.res.Gateways {
		gw := &t.res.Gateways[i]
		cs := t.classes[string(gw.Spec.GatewayClassName)]
		if cs == nil {
			continue
		}
		g := &gatewayState{gw: gw, key: nn{gw.Namespace, gw.Name}, class: cs}
		t.gateways[g.key] = g
		t.gatewayList = append(t.gatewayList, g)
	}
	slices.SortFunc(t.gatewayList, func(a, b *gatewayState) int { return compareNN(a.key, b.key) })

	for i := range t.res.ListenerSets {
		ls := &t.res.ListenerSets[i]
		p := ls.Spec.ParentRef
		if cmp.Or(deref(p.Group), groupGateway) != groupGateway || cmp.Or(deref(p.Kind), kindGateway) != kindGateway {
			continue
		}
		g := t.gateways[nn{cmp.Or(string(deref(p.Namespace)), ls.Namespace), string(p.Name)}]
		if g == nil {
			continue
		}
		s := &listenerSetState{ls: ls, key: nn{ls.Namespace, ls.Name}, gw: g}
		s.allowed = t.listenerSetAllowed(g.gw, ls.Namespace)
		t.listenerSets[s.key] = s
		t.lsList = append(t.lsList, s)
	}
	slices.SortFunc(t.lsList, func(a, b *listenerSetState) int { return compareNN(a.key, b.key) })
	// ListenerSets take precedence by age, then by namespace and name.
	byAge := slices.Clone(t.lsList)
	slices.SortStableFunc(byAge, func(a, b *listenerSetState) int {
		return a.ls.CreationTimestamp.Compare(b.ls.CreationTimestamp.Time)
	})
	for _, s := range byAge {
		s.gw.sets = append(s.gw.sets, s)
	}

	t.assignAddresses()
	for _, g := range t.gatewayList {
		t.translateListeners(g)
	}
	t.crossGatewayConflicts()
	for _, g := range t.gatewayList {
		g.computeConditions()
	}
}

// listenerSetAllowed applies a Gateway's spec.allowedListeners to a
// ListenerSet in namespace ns.
func (t *translator) listenerSetAllowed(gw *gatewayv1.Gateway, ns string) bool {
	al := gw.Spec.AllowedListeners
	if al == nil || al.Namespaces == nil {
		return false
	}
	return t.namespaceAllowed(al.Namespaces.From, al.Namespaces.Selector, gw.Namespace, ns, gatewayv1.NamespacesFromNone)
}

// namespaceAllowed applies a from/selector pair: ns is the namespace asking,
// own the namespace of the object that allows.
func (t *translator) namespaceAllowed(from *gatewayv1.FromNamespaces, sel *metav1.LabelSelector, own, ns string, def gatewayv1.FromNamespaces) bool {
	switch f := cmp.Or(deref(from), def); f {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSame:
		return ns == own
	case gatewayv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		var l map[string]string
		if n := t.namespaces[ns]; n != nil {
			l = n.Labels
		}
		if _, ok := l[corev1.LabelMetadataName]; !ok {
			// The API server labels every namespace with its name.
			l = maps2(l, corev1.LabelMetadataName, ns)
		}
		return s.Matches(labels.Set(l))
	}
	return false
}

// maps2 returns a copy of m with k set to v.
func maps2(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// translateListeners validates one Gateway's listeners (its own and those
// of its ListenerSets) and finds the conflicts between them.
func (t *translator) translateListeners(g *gatewayState) {
	gw := g.gw
	t.resolveGatewayTLS(g)
	for i := range gw.Spec.Listeners {
		l := &listenerState{
			gw:   g,
			spec: gw.Spec.Listeners[i],
			ns:   gw.Namespace,
			name: gw.Namespace + "/" + gw.Name + "/" + string(gw.Spec.Listeners[i].Name),
		}
		t.validateListener(l, kindGateway, gw.Namespace, gw.Name)
		g.applyFrontendTLS(l)
		g.listeners = append(g.listeners, l)
	}
	for _, s := range g.sets {
		for i := range s.ls.Spec.Listeners {
			e := &s.ls.Spec.Listeners[i]
			l := &listenerState{
				gw:  g,
				set: s,
				spec: gatewayv1.Listener{
					Name:          e.Name,
					Hostname:      e.Hostname,
					Port:          e.Port,
					Protocol:      e.Protocol,
					TLS:           e.TLS,
					AllowedRoutes: e.AllowedRoutes,
					Filters:       e.Filters,
				},
				ns:   s.ls.Namespace,
				name: s.ls.Namespace + "/listenerset/" + s.ls.Name + "/" + string(e.Name),
			}
			t.validateListener(l, kindListenerSet, s.ls.Namespace, s.ls.Name)
			g.applyFrontendTLS(l)
			s.listeners = append(s.listeners, l)
		}
	}

	// Conflicts: the Gateway's own listeners first, among themselves (every
	// member of a conflict loses), then each allowed ListenerSet in order of
	// precedence against everything accepted before it.
	markConflicts(g.listeners)
	var earlier []*listenerState
	for _, l := range g.listeners {
		if l.conflict == "" {
			earlier = append(earlier, l)
		}
	}
	for _, s := range g.sets {
		if s.allowed {
			earlier = markConflictsAfter(earlier, s.listeners)
		}
	}
}

// computeConditions computes the Gateway's Accepted and Programmed
// conditions from its listeners and addresses.
func (g *gatewayState) computeConditions() {
	gen := g.gw.Generation
	nAccepted, nValid := 0, 0
	for _, l := range g.listeners {
		if l.accepted() {
			nAccepted++
		}
		if l.valid() {
			nValid++
		}
	}
	switch {
	case !g.class.accepted:
		g.accepted = condition(gatewayv1.GatewayConditionAccepted, false, gatewayv1.GatewayReasonInvalidParameters, "the GatewayClass is not accepted", gen)
	case g.gw.Spec.Infrastructure != nil && g.gw.Spec.Infrastructure.ParametersRef != nil:
		p := g.gw.Spec.Infrastructure.ParametersRef
		g.accepted = condition(gatewayv1.GatewayConditionAccepted, false, gatewayv1.GatewayReasonInvalidParameters,
			fmt.Sprintf("spec.infrastructure.parametersRef: %s %s: parameters are not supported", p.Kind, p.Name), gen)
	case g.addrReason != "":
		g.accepted = condition(gatewayv1.GatewayConditionAccepted, false, g.addrReason, g.addrMsg, gen)
	case nAccepted == 0:
		g.accepted = condition(gatewayv1.GatewayConditionAccepted, false, gatewayv1.GatewayReasonListenersNotValid, "no listener is accepted: "+listenerProblems(g.listeners), gen)
	case nValid < len(g.listeners):
		g.accepted = condition(gatewayv1.GatewayConditionAccepted, true, gatewayv1.GatewayReasonListenersNotValid, "some listeners are not valid: "+listenerProblems(g.listeners), gen)
	default:
		g.accepted = condition(gatewayv1.GatewayConditionAccepted, true, gatewayv1.GatewayReasonAccepted, "Gateway accepted", gen)
	}
	// Programmed is about the Gateway's address and data plane; each
	// listener's own Programmed condition says whether it is served.
	nProgrammed := 0
	for _, l := range g.allListeners() {
		if l.programmed() {
			nProgrammed++
		}
	}
	switch {
	case g.accepted.Status != metav1.ConditionTrue:
		g.programmed = condition(gatewayv1.GatewayConditionProgrammed, false, gatewayv1.GatewayReasonInvalid, "the Gateway is not accepted", gen)
	case g.progReason != "":
		g.programmed = condition(gatewayv1.GatewayConditionProgrammed, false, g.progReason, g.progMsg, gen)
	default:
		g.programmed = condition(gatewayv1.GatewayConditionProgrammed, true, gatewayv1.GatewayReasonProgrammed,
			fmt.Sprintf("Gateway programmed on %s with %d listeners served", g.address, nProgrammed), gen)
	}
}

// listenerProblems names the listeners that are not accepted or not
// resolved.
func listenerProblems(ls []*listenerState) string {
	var parts []string
	for _, l := range ls {
		switch {
		case l.conflict != "":
			parts = append(parts, fmt.Sprintf("%s (%s)", l.spec.Name, l.conflict))
		case l.acceptReason != "":
			parts = append(parts, fmt.Sprintf("%s (%s)", l.spec.Name, l.acceptReason))
		case l.refsReason != "":
			parts = append(parts, fmt.Sprintf("%s (%s)", l.spec.Name, l.refsReason))
		}
	}
	return strings.Join(parts, ", ")
}

// routeKindsOf returns the route kinds a listener of protocol p serves:
// HTTPRoute and GRPCRoute on HTTP and HTTPS, TLSRoute on TLS, TCPRoute on
// TCP, UDPRoute on UDP.
func routeKindsOf(p gatewayv1.ProtocolType) []gatewayv1.Kind {
	switch p {
	case gatewayv1.TLSProtocolType:
		return []gatewayv1.Kind{kindTLSRoute}
	case gatewayv1.TCPProtocolType:
		return []gatewayv1.Kind{kindTCPRoute}
	case gatewayv1.UDPProtocolType:
		return []gatewayv1.Kind{kindUDPRoute}
	}
	return []gatewayv1.Kind{kindHTTPRoute, kindGRPCRoute}
}

// validateListener checks a listener's protocol, route kinds and TLS
// configuration. ownerKind/ownerNS/ownerName identify the Gateway or the
// ListenerSet that holds it, for ReferenceGrants.
func (t *translator) validateListener(l *listenerState, ownerKind gatewayv1.Kind, ownerNS, ownerName string) {
	sp := &l.spec
	field := fmt.Sprintf("listener %q", sp.Name)
	switch sp.Protocol {
	case gatewayv1.HTTPProtocolType:
		l.supportedProtocol, l.protocol = true, proxy.HTTP
	case gatewayv1.HTTPSProtocolType:
		l.supportedProtocol, l.protocol = true, proxy.HTTPS
	case gatewayv1.TLSProtocolType:
		l.supportedProtocol, l.protocol = true, proxy.TLS
	case gatewayv1.TCPProtocolType:
		l.supportedProtocol, l.protocol = true, proxy.TCP
	case gatewayv1.UDPProtocolType:
		l.supportedProtocol, l.protocol = true, proxy.UDP
	default:
		l.acceptReason = gatewayv1.ListenerReasonUnsupportedProtocol
		l.acceptMsg = fmt.Sprintf("%s: protocol %q is not supported (HTTP, HTTPS, TLS, TCP and UDP are)", field, sp.Protocol)
	}
	routeKinds := routeKindsOf(sp.Protocol)
	// Pre-routing filters (GatewayListenerFilters, experimental) would run
	// before every route of the listener, ExternalAuth among them: a
	// listener that asks for them is refused rather than served without.
	if f := sp.Filters; f != nil && len(f.Requests) > 0 && l.acceptReason == "" {
		l.acceptReason = gatewayv1.ListenerReasonUnsupportedValue
		l.acceptMsg = fmt.Sprintf("%s: filters.requests: listener filters are not supported", field)
	}

	// Route kinds.
	l.kinds = []gatewayv1.RouteGroupKind{}
	if ar := sp.AllowedRoutes; ar != nil && len(ar.Kinds) > 0 {
		for _, k := range ar.Kinds {
			grp := deref(k.Group)
			if k.Group == nil {
				grp = groupGateway
			}
			if l.supportedProtocol && grp == groupGateway && slices.Contains(routeKinds, k.Kind) {
				if !slices.ContainsFunc(l.kinds, func(x gatewayv1.RouteGroupKind) bool { return x.Kind == k.Kind }) {
					l.kinds = append(l.kinds, gatewayv1.RouteGroupKind{Group: new(groupGateway), Kind: k.Kind})
				}
				continue
			}
			l.invalidKinds = append(l.invalidKinds, fmt.Sprintf("%s/%s", grp, k.Kind))
		}
	} else if l.supportedProtocol {
		for _, k := range routeKinds {
			l.kinds = append(l.kinds, gatewayv1.RouteGroupKind{Group: new(groupGateway), Kind: k})
		}
	}
	if len(l.invalidKinds) > 0 {
		l.refsReason = gatewayv1.ListenerReasonInvalidRouteKinds
		l.refsMsg = fmt.Sprintf("%s: allowedRoutes.kinds: unsupported route kinds %s for protocol %s", field, strings.Join(l.invalidKinds, ", "), sp.Protocol)
	}

	if sp.Protocol != gatewayv1.HTTPSProtocolType && sp.Protocol != gatewayv1.TLSProtocolType {
		return
	}
	tls := sp.TLS
	if sp.Protocol == gatewayv1.TLSProtocolType {
		// A TLS listener terminates unless its mode says Passthrough,
		// which needs no certificate.
		if tls != nil && deref(tls.Mode) == gatewayv1.TLSModePassthrough {
			l.passthrough = true
			return
		}
	}
	if tls == nil || len(tls.CertificateRefs) == 0 {
		if l.refsReason == "" {
			l.refsReason = gatewayv1.ListenerReasonInvalidCertificateRef
			what := "an HTTPS listener"
			if sp.Protocol == gatewayv1.TLSProtocolType {
				what = "a TLS listener in mode Terminate"
			}
			l.refsMsg = fmt.Sprintf("%s: tls.certificateRefs: %s needs at least one certificate", field, what)
		}
		return
	}
	if m := deref(tls.Mode); m != "" && m != gatewayv1.TLSModeTerminate {
		l.acceptReason = gatewayv1.ListenerReasonUnsupportedValue
		l.acceptMsg = fmt.Sprintf("%s: tls.mode: %q is not supported for HTTPS (only Terminate)", field, m)
		return
	}
	for i, ref := range tls.CertificateRefs {
		cert, reason, msg := t.certificate(ref, ownerKind, ownerNS, ownerName)
		if reason != "" {
			if l.refsReason == "" {
				l.refsReason = reason
				l.refsMsg = fmt.Sprintf("%s: tls.certificateRefs[%d]: %s", field, i, msg)
			}
			continue
		}
		l.certs = append(l.certs, cert)
	}
}

// certificate resolves a listener certificateRef.
func (t *translator) certificate(ref gatewayv1.SecretObjectReference, ownerKind gatewayv1.Kind, ownerNS, ownerName string) (proxy.Certificate, gatewayv1.ListenerConditionReason, string) {
	grp, kind := deref(ref.Group), cmp.Or(deref(ref.Kind), kindSecret)
	ns := cmp.Or(string(deref(ref.Namespace)), ownerNS)
	if grp != groupCore || kind != kindSecret {
		return proxy.Certificate{}, gatewayv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("%s %q of group %q is not supported (only core Secrets are)", kind, ref.Name, grp)
	}
	if ns != ownerNS && !t.granted(groupGateway, ownerKind, ownerNS, groupCore, kindSecret, ns, string(ref.Name)) {
		return proxy.Certificate{}, gatewayv1.ListenerReasonRefNotPermitted, fmt.Sprintf("Secret %s/%s: no ReferenceGrant in %s allows %s %s/%s to refer to it", ns, ref.Name, ns, ownerKind, ownerNS, ownerName)
	}
	s := t.secrets[nn{ns, string(ref.Name)}]
	if s == nil {
		return proxy.Certificate{}, gatewayv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("Secret %s/%s not found", ns, ref.Name)
	}
	if s.Type != corev1.SecretTypeTLS {
		return proxy.Certificate{}, gatewayv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("Secret %s/%s: type %q is not %q", ns, ref.Name, s.Type, corev1.SecretTypeTLS)
	}
	crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 && s.StringData != nil {
		crt = []byte(s.StringData[corev1.TLSCertKey])
	}
	if len(key) == 0 && s.StringData != nil {
		key = []byte(s.StringData[corev1.TLSPrivateKeyKey])
	}
	// Validity periods are not judged here: Translate reads no clock.
	if _, err := tlsconfig.LoadKeyPair(crt, key, tlsconfig.KeyPairOptions{AllowExpired: true}); err != nil {
		return proxy.Certificate{}, gatewayv1.ListenerReasonInvalidCertificateRef, fmt.Sprintf("Secret %s/%s: %v", ns, ref.Name, err)
	}
	return proxy.Certificate{Name: ns + "/" + string(ref.Name), CertPEM: bytes.Clone(crt), KeyPEM: bytes.Clone(key)}, "", ""
}

// markConflicts marks the listeners of ls that conflict with each other:
// every member of a conflict loses. Two listeners on one port conflict when
// their protocols differ (ProtocolConflict) or, with the same protocol,
// when their hostnames are equal (HostnameConflict).
func markConflicts(ls []*listenerState) {
	for i, l := range ls {
		for j, o := range ls {
			if i == j {
				continue
			}
			if r := conflictReason(o, l); r != "" {
				l.conflict = r
				l.conflictMsg = conflictMessage(r, l, o)
				break
			}
		}
	}
}

// markConflictsAfter marks the listeners of ls that conflict with a
// listener accepted before them, in order of precedence: those in earlier
// and those before them in ls. The earlier listener wins. It returns
// earlier with the listeners of ls that won added.
func markConflictsAfter(earlier, ls []*listenerState) []*listenerState {
	for _, l := range ls {
		for _, e := range earlier {
			if r := conflictReason(e, l); r != "" {
				l.conflict = r
				l.conflictMsg = conflictMessage(r, l, e)
				break
			}
		}
		if l.conflict == "" {
			earlier = append(earlier, l)
		}
	}
	return earlier
}

func conflictReason(a, b *listenerState) gatewayv1.ListenerConditionReason {
	if a.spec.Port != b.spec.Port || isUDP(a) != isUDP(b) {
		return ""
	}
	if a.spec.Protocol != b.spec.Protocol {
		return gatewayv1.ListenerReasonProtocolConflict
	}
	if strings.EqualFold(a.hostname(), b.hostname()) {
		return gatewayv1.ListenerReasonHostnameConflict
	}
	return ""
}

func conflictMessage(r gatewayv1.ListenerConditionReason, l, other *listenerState) string {
	what := "protocol " + string(other.spec.Protocol)
	if r == gatewayv1.ListenerReasonHostnameConflict {
		what = fmt.Sprintf("hostname %q", other.hostname())
	}
	return fmt.Sprintf("listener %q conflicts on port %d with listener %s (%s)", l.spec.Name, l.spec.Port, other.displayName(), what)
}

// isUDP reports whether a listener is of protocol UDP: its socket is
// apart from the TCP socket of its port number, so a UDP listener and a
// listener of another protocol on one port do not conflict.
func isUDP(l *listenerState) bool { return l.spec.Protocol == gatewayv1.UDPProtocolType }

// displayName names a listener for messages.
func (l *listenerState) displayName() string {
	if l.set != nil {
		return fmt.Sprintf("%q of ListenerSet %s/%s", l.spec.Name, l.set.ls.Namespace, l.set.ls.Name)
	}
	return fmt.Sprintf("%q of Gateway %s/%s", l.spec.Name, l.gw.gw.Namespace, l.gw.gw.Name)
}

// crossGatewayConflicts finds listeners of different Gateways that cannot
// share a socket: listeners on one port whose addresses overlap (equal, or
// one of them a wildcard) must have the same address and protocol and
// distinct hostnames. The older Gateway (then the first by namespace/name)
// keeps the port; the later listener is not accepted (PortUnavailable).
func (t *translator) crossGatewayConflicts() {
	order := slices.Clone(t.gatewayList)
	slices.SortStableFunc(order, func(a, b *gatewayState) int {
		return a.gw.CreationTimestamp.Compare(b.gw.CreationTimestamp.Time)
	})
	var taken []*listenerState
	for _, g := range order {
		if !g.servable() {
			continue
		}
		var mine []*listenerState
		for _, l := range g.allListeners() {
			if !l.candidate() {
				continue
			}
			for _, o := range taken {
				if o.spec.Port != l.spec.Port || isUDP(o) != isUDP(l) || !addressesOverlap(o.gw.address, g.address) {
					continue
				}
				var why string
				switch {
				case o.gw.address != g.address:
					why = fmt.Sprintf("address %s overlaps %s", g.address, o.gw.address)
				case o.spec.Protocol != l.spec.Protocol:
					why = "protocol " + string(o.spec.Protocol)
				case !sameValidation(o.clientValidation, l.clientValidation):
					why = "another client certificate validation, which applies per port"
				case strings.EqualFold(o.hostname(), l.hostname()):
					why = fmt.Sprintf("hostname %q", o.hostname())
				default:
					continue
				}
				l.acceptReason = gatewayv1.ListenerReasonPortUnavailable
				l.acceptMsg = fmt.Sprintf("port %d on %s is used by listener %s (%s)", l.spec.Port, g.address, o.displayName(), why)
				break
			}
			if l.acceptReason == "" {
				mine = append(mine, l)
			}
		}
		taken = append(taken, mine...)
	}
}

// allListeners returns the Gateway's listeners followed by those of its
// allowed ListenerSets.
func (g *gatewayState) allListeners() []*listenerState {
	out := slices.Clone(g.listeners)
	for _, s := range g.sets {
		if s.allowed {
			out = append(out, s.listeners...)
		}
	}
	return out
}
