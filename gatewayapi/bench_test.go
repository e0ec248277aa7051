package gatewayapi

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// benchResources builds a bundle of one Gateway with two HTTP listeners (one
// of them a wildcard hostname) and n routes in 10 namespaces, each with two
// rules, a header match, a filter and two weighted backends among n/4
// Services with 3 endpoints each.
func benchResources(n int) *Resources {
	res := &Resources{
		GatewayClasses: []gatewayv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "rauta"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: DefaultControllerName},
		}},
		Gateways: []gatewayv1.Gateway{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "gw"},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: "rauta",
				Listeners: []gatewayv1.Listener{
					{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: new(gatewayv1.NamespacesFromAll)}}},
					{Name: "wild", Port: 80, Protocol: gatewayv1.HTTPProtocolType, Hostname: new(gatewayv1.Hostname("*.example.com")), AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: new(gatewayv1.NamespacesFromAll)}}},
				},
			},
		}},
	}
	nsvc := max(n/4, 1)
	for i := range nsvc {
		ns := fmt.Sprintf("team-%d", i%10)
		name := fmt.Sprintf("svc-%d", i)
		res.Services = append(res.Services, corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		})
		res.EndpointSlices = append(res.EndpointSlices, discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{serviceNameLabel: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{fmt.Sprintf("10.%d.%d.1", i/250, i%250)}},
				{Addresses: []string{fmt.Sprintf("10.%d.%d.2", i/250, i%250)}},
				{Addresses: []string{fmt.Sprintf("10.%d.%d.3", i/250, i%250)}},
			},
		})
	}
	for i := range n {
		ns := fmt.Sprintf("team-%d", (i/4)%10)
		a, b := fmt.Sprintf("svc-%d", (i/4)%nsvc), fmt.Sprintf("svc-%d", ((i/4)+10)%nsvc)
		res.HTTPRoutes = append(res.HTTPRoutes, gatewayv1.HTTPRoute{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("route-%d", i)},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw", Namespace: new(gatewayv1.Namespace("infra"))}}},
				Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(fmt.Sprintf("r%d.example.com", i))},
				Rules: []gatewayv1.HTTPRouteRule{
					{
						Matches: []gatewayv1.HTTPRouteMatch{{
							Path:    &gatewayv1.HTTPPathMatch{Type: new(gatewayv1.PathMatchPathPrefix), Value: new("/api")},
							Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-version", Value: "2"}},
						}},
						Filters: []gatewayv1.HTTPRouteFilter{{
							Type:                  gatewayv1.HTTPRouteFilterRequestHeaderModifier,
							RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "x-route", Value: "r"}}},
						}},
						BackendRefs: []gatewayv1.HTTPBackendRef{
							{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(a), Port: new(int32(80))}, Weight: new(int32(90))}},
							{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(b), Port: new(int32(80))}, Weight: new(int32(10))}},
						},
					},
					{
						BackendRefs: []gatewayv1.HTTPBackendRef{
							{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(a), Port: new(int32(80))}}},
						},
					},
				},
			},
		})
	}
	return res
}

// BenchmarkTranslate translates one Gateway with 1000 HTTPRoutes.
func BenchmarkTranslate(b *testing.B) {
	res := benchResources(1000)
	r := Translate(res, Options{})
	if len(r.Config.Routes) != 1000 || len(r.Config.Routes[0].Listeners) != 2 || len(r.Status.HTTPRoutes) != 1000 {
		b.Fatalf("got %d config routes, %d route statuses", len(r.Config.Routes), len(r.Status.HTTPRoutes))
	}
	b.ReportAllocs()
	for b.Loop() {
		Translate(res, Options{})
	}
}
