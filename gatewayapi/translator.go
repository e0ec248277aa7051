package gatewayapi

import (
	"cmp"
	"slices"
	"strings"

	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/proxy"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// nn is a namespace and a name.
type nn struct{ ns, name string }

func (k nn) String() string { return k.ns + "/" + k.name }

func compareNN(a, b nn) int {
	if c := cmp.Compare(a.ns, b.ns); c != 0 {
		return c
	}
	return cmp.Compare(a.name, b.name)
}

// translator holds the indexes and the state of one translation.
type translator struct {
	res        *Resources
	opts       Options
	controller gatewayv1.GatewayController

	services   map[nn]*corev1.Service
	slices     map[nn][]discoveryv1.EndpointSlice // by Service
	secrets    map[nn]*corev1.Secret
	configMaps map[nn]*corev1.ConfigMap
	namespaces map[string]*corev1.Namespace
	grants     map[string][]*gatewayv1.ReferenceGrant // by namespace

	classes      map[string]*classState
	gateways     map[nn]*gatewayState
	gatewayList  []*gatewayState // sorted by namespace/name
	listenerSets map[nn]*listenerSetState
	lsList       []*listenerSetState

	routes   []proxy.Route
	backends map[string]*proxy.Backend
	policies *policyIndex

	backendPolicies *backendPolicies
	traffic         *trafficPolicies

	routeStatus     []HTTPRouteStatus
	grpcRouteStatus []GRPCRouteStatus

	streamRoutes   []l4.Route
	tlsRouteStatus []TLSRouteStatus
	tcpRouteStatus []TCPRouteStatus
	udpRouteStatus []UDPRouteStatus
}

func newTranslator(res *Resources, opts Options) *translator {
	if res == nil {
		res = &Resources{}
	}
	t := &translator{
		res:          res,
		opts:         opts,
		controller:   gatewayv1.GatewayController(cmp.Or(opts.ControllerName, DefaultControllerName)),
		services:     make(map[nn]*corev1.Service, len(res.Services)),
		slices:       make(map[nn][]discoveryv1.EndpointSlice),
		secrets:      make(map[nn]*corev1.Secret, len(res.Secrets)),
		configMaps:   make(map[nn]*corev1.ConfigMap, len(res.ConfigMaps)),
		namespaces:   make(map[string]*corev1.Namespace, len(res.Namespaces)),
		grants:       make(map[string][]*gatewayv1.ReferenceGrant),
		classes:      make(map[string]*classState),
		gateways:     make(map[nn]*gatewayState),
		listenerSets: make(map[nn]*listenerSetState),
		backends:     make(map[string]*proxy.Backend),
	}
	for i := range res.Services {
		s := &res.Services[i]
		t.services[nn{s.Namespace, s.Name}] = s
	}
	for i := range res.EndpointSlices {
		s := &res.EndpointSlices[i]
		svc := s.Labels[serviceNameLabel]
		if svc == "" {
			continue
		}
		k := nn{s.Namespace, svc}
		t.slices[k] = append(t.slices[k], *s)
	}
	for k, v := range t.slices {
		// Sorting makes the result independent of the input order.
		slices.SortFunc(v, func(a, b discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
		t.slices[k] = v
	}
	for i := range res.Secrets {
		s := &res.Secrets[i]
		t.secrets[nn{s.Namespace, s.Name}] = s
	}
	for i := range res.ConfigMaps {
		c := &res.ConfigMaps[i]
		t.configMaps[nn{c.Namespace, c.Name}] = c
	}
	for i := range res.Namespaces {
		n := &res.Namespaces[i]
		t.namespaces[n.Name] = n
	}
	for i := range res.ReferenceGrants {
		g := &res.ReferenceGrants[i]
		t.grants[g.Namespace] = append(t.grants[g.Namespace], g)
	}
	t.policies = newPolicyIndex(t)
	t.backendPolicies = newBackendPolicies(t)
	t.traffic = newTrafficPolicies(t)
	return t
}

func (t *translator) run() Result {
	var r Result
	r.Status.GatewayClasses = t.translateClasses()
	t.translateGateways()
	t.traffic.reachGateways(t.gatewayList)
	t.translateRoutes()
	t.translateStreamRoutes()
	r.Status.Gateways, r.Status.ListenerSets = t.gatewayStatuses()
	r.Status.HTTPRoutes = t.routeStatus
	r.Status.TLSRoutes = t.tlsRouteStatus
	r.Status.TCPRoutes = t.tcpRouteStatus
	r.Status.UDPRoutes = t.udpRouteStatus
	r.Status.GRPCRoutes = t.grpcRouteStatus
	r.Status.BackendTLSPolicies = t.policies.statuses()
	r.Status.BackendPolicies = t.backendPolicies.rauta.statuses()
	r.Status.XBackendTrafficPolicies = t.backendPolicies.x.statuses()
	r.Status.TrafficPolicies = t.traffic.ix.statuses()
	r.Config = t.config()
	return r
}

// config assembles the sorted proxy configuration.
func (t *translator) config() proxy.Config {
	var c proxy.Config
	add := func(l *listenerState) {
		if l.programmed() {
			pl := l.proxyListener()
			t.traffic.applyListener(l, &pl)
			c.Listeners = append(c.Listeners, pl)
		}
	}
	for _, g := range t.gatewayList {
		for _, l := range g.listeners {
			add(l)
		}
	}
	for _, ls := range t.lsList {
		for _, l := range ls.listeners {
			add(l)
		}
	}
	slices.SortFunc(c.Listeners, func(a, b proxy.Listener) int { return strings.Compare(a.Name, b.Name) })
	c.Routes = t.routes
	slices.SortStableFunc(c.Routes, func(a, b proxy.Route) int {
		if c := compareNN(nn{a.Namespace, a.Name}, nn{b.Namespace, b.Name}); c != 0 {
			return c
		}
		return slices.Compare(a.Listeners, b.Listeners)
	})
	// Only the backends that a served rule uses (directly or through a
	// mirror) are configured.
	used := make(map[string]bool)
	for i := range c.Routes {
		for _, rule := range c.Routes[i].Rules {
			markMirrors(used, rule.Filters)
			for _, br := range rule.Backends {
				used[br.Backend] = true
				markMirrors(used, br.Filters)
			}
		}
	}
	c.StreamRoutes = t.streamRoutes
	sortStreamRoutes(c.StreamRoutes)
	for _, r := range c.StreamRoutes {
		for _, br := range r.Backends {
			if br.Backend != "" {
				used[br.Backend] = true
			}
		}
	}
	names := backendNames(used)
	for key, b := range t.backends {
		if used[key] {
			nb := *b
			nb.Name = names[key]
			c.Backends = append(c.Backends, nb)
		}
	}
	slices.SortFunc(c.Backends, func(a, b proxy.Backend) int { return strings.Compare(a.Name, b.Name) })
	renameBackends(c.Routes, names)
	renameStreamBackends(c.StreamRoutes, names)
	return c
}

// backendNames gives the backend keys in use their names in the Config: a
// Service port's [BackendName] when it is one backend, as it is unless
// Gateways with different client certificates reach it over TLS; then the
// backends that present a certificate are named with it, by
// [ClientCertificateBackendName].
func backendNames(used map[string]bool) map[string]string {
	byName := make(map[string]int)
	for key := range used {
		name, _, _ := strings.Cut(key, "\x00")
		byName[name]++
	}
	out := make(map[string]string, len(used))
	for key := range used {
		name, cert, qualified := strings.Cut(key, "\x00")
		if qualified && byName[name] > 1 {
			name = ClientCertificateBackendName(name, cert)
		}
		out[key] = name
	}
	return out
}

// renameStreamBackends replaces the backend keys of stream routes by
// their names; the references are copied, as routes may share them.
func renameStreamBackends(routes []l4.Route, names map[string]string) {
	for i := range routes {
		refs := routes[i].Backends
		if !slices.ContainsFunc(refs, func(br l4.BackendRef) bool { n, ok := names[br.Backend]; return ok && n != br.Backend }) {
			continue
		}
		refs = slices.Clone(refs)
		for j := range refs {
			if n, ok := names[refs[j].Backend]; ok {
				refs[j].Backend = n
			}
		}
		routes[i].Backends = refs
	}
}

// renameBackends replaces the backend keys of routes by their names. The
// rules of a route may be shared with other routes: renamed parts are
// copies.
func renameBackends(routes []proxy.Route, names map[string]string) {
	rename := func(key string) (string, bool) {
		n, ok := names[key]
		return n, ok && n != key
	}
	changes := func(rules []proxy.Rule) bool {
		for _, rule := range rules {
			for _, f := range rule.Filters {
				if f.RequestMirror != nil {
					if _, ok := rename(f.RequestMirror.Backend); ok {
						return true
					}
				}
			}
			for _, br := range rule.Backends {
				if _, ok := rename(br.Backend); ok {
					return true
				}
				for _, f := range br.Filters {
					if f.RequestMirror != nil {
						if _, ok := rename(f.RequestMirror.Backend); ok {
							return true
						}
					}
				}
			}
		}
		return false
	}
	mirrors := func(fs []filters.Spec) []filters.Spec {
		out := slices.Clone(fs)
		for i, f := range out {
			if f.RequestMirror == nil {
				continue
			}
			if n, ok := rename(f.RequestMirror.Backend); ok {
				m := *f.RequestMirror
				m.Backend = n
				out[i].RequestMirror = &m
			}
		}
		return out
	}
	for i := range routes {
		if !changes(routes[i].Rules) {
			continue
		}
		rules := slices.Clone(routes[i].Rules)
		for j := range rules {
			rules[j].Filters = mirrors(rules[j].Filters)
			refs := slices.Clone(rules[j].Backends)
			for k := range refs {
				if n, ok := rename(refs[k].Backend); ok {
					refs[k].Backend = n
				}
				refs[k].Filters = mirrors(refs[k].Filters)
			}
			rules[j].Backends = refs
		}
		routes[i].Rules = rules
	}
}

// markMirrors records the backends of the mirror filters in fs.
func markMirrors(used map[string]bool, fs []filters.Spec) {
	for _, f := range fs {
		if f.RequestMirror != nil {
			used[f.RequestMirror.Backend] = true
		}
	}
}
