package gatewayapi

import (
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/rauta/rauta/upstream"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// serviceNameLabel is the EndpointSlice label naming its Service.
const serviceNameLabel = "kubernetes.io/service-name"

// Endpoints returns the endpoints of port of svc found in slices: the
// addresses whose conditions.ready is nil or true or, when no endpoint is
// ready, those that are serving while terminating. The endpoint port is the
// Service port's targetPort, resolved by number or, for a named targetPort,
// through the slice's ports. Slices labelled for another Service or living
// in another namespace are ignored, as are FQDN slices. The result is
// sorted by address and has no duplicates; it is nil when svc has no such
// port or no endpoint qualifies.
//
// It is the fast path for EndpointSlice churn: a source calls it and hands
// the result to the proxy without translating everything again.
func Endpoints(svc *corev1.Service, port int32, eps []discoveryv1.EndpointSlice) []upstream.Endpoint {
	if svc == nil {
		return nil
	}
	sp := servicePort(svc, port)
	if sp == nil {
		return nil
	}
	var ready, terminating []upstream.Endpoint
	for i := range eps {
		s := &eps[i]
		if s.Namespace != "" && s.Namespace != svc.Namespace {
			continue
		}
		if name, ok := s.Labels[serviceNameLabel]; ok && name != svc.Name {
			continue
		}
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		target, ok := slicePort(sp, s)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			c := ep.Conditions
			var list *[]upstream.Endpoint
			switch {
			case c.Ready == nil || *c.Ready:
				list = &ready
			case c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating:
				list = &terminating
			default:
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				*list = append(*list, upstream.Endpoint{Address: net.JoinHostPort(ip.String(), strconv.Itoa(int(target)))})
			}
		}
	}
	out := ready
	if len(out) == 0 {
		out = terminating
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b upstream.Endpoint) int { return cmp.Compare(a.Address, b.Address) })
	return slices.CompactFunc(out, func(a, b upstream.Endpoint) bool { return a.Address == b.Address })
}

// servicePort returns the port of svc numbered port, or nil.
func servicePort(svc *corev1.Service, port int32) *corev1.ServicePort {
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			return &svc.Spec.Ports[i]
		}
	}
	return nil
}

// slicePort returns the endpoint port of the slice that backs sp. The
// EndpointSlice controller names a slice's ports after the Service's ports,
// so a port of the same name and protocol (UDP for a UDP Service port,
// else TCP) is used first; failing that a numeric
// targetPort (or, without one, the Service port) is used as is, and a named
// targetPort is looked up among the slice's ports by name.
func slicePort(sp *corev1.ServicePort, s *discoveryv1.EndpointSlice) (int32, bool) {
	proto := cmp.Or(sp.Protocol, corev1.ProtocolTCP)
	for _, p := range s.Ports {
		if p.Port == nil || cmp.Or(deref(p.Protocol), corev1.ProtocolTCP) != proto {
			continue
		}
		if deref(p.Name) == sp.Name {
			return *p.Port, true
		}
	}
	tp := sp.TargetPort
	switch {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, p := range s.Ports {
			if p.Port != nil && deref(p.Name) == tp.StrVal {
				return *p.Port, true
			}
		}
		return 0, false
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	}
	return sp.Port, true
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
