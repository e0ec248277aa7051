package gatewayapi_test

import (
	"fmt"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/gatewayapi"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Translate a GatewayClass, a Gateway with one HTTP listener, an HTTPRoute
// and its Service into the proxy's configuration and the objects' status.
func ExampleTranslate() {
	res := &gatewayapi.Resources{
		GatewayClasses: []gatewayv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "rauta"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayapi.DefaultControllerName},
		}},
		Gateways: []gatewayv1.Gateway{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gw"},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: "rauta",
				Listeners:        []gatewayv1.Listener{{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType}},
			},
		}},
		HTTPRoutes: []gatewayv1.HTTPRoute{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
				Hostnames:       []gatewayv1.Hostname{"www.example.com"},
				Rules: []gatewayv1.HTTPRouteRule{{
					BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
						BackendObjectReference: gatewayv1.BackendObjectReference{Name: "web", Port: new(gatewayv1.PortNumber(80))},
					}}},
				}},
			},
		}},
		Services: []corev1.Service{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(3000)}}},
		}},
		EndpointSlices: []discoveryv1.EndpointSlice{{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{"kubernetes.io/service-name": "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.7"}}},
		}},
	}
	r := gatewayapi.Translate(res, gatewayapi.Options{Address: "127.0.0.1"})

	for _, l := range r.Config.Listeners {
		fmt.Println("listener", l.Name, l.Address, l.Port)
	}
	for _, rt := range r.Config.Routes {
		fmt.Println("route", rt.Namespace+"/"+rt.Name, rt.Hostnames, "->", rt.Rules[0].Backends[0].Backend)
	}
	for _, b := range r.Config.Backends {
		fmt.Println("backend", b.Name, b.Endpoints)
	}
	for _, g := range r.Status.Gateways {
		for _, c := range g.Status.Conditions {
			fmt.Println("gateway", g.Name, c.Type, c.Status)
		}
	}
	for _, rt := range r.Status.HTTPRoutes {
		for _, c := range rt.Status.Parents[0].Conditions {
			fmt.Println("route", rt.Name, c.Type, c.Status, c.Reason)
		}
	}
	// Output:
	// listener default/gw/http 127.0.0.1 8080
	// route default/web [www.example.com] -> default/web:80
	// backend default/web:80 [{10.0.0.7:3000 0}]
	// gateway gw Accepted True
	// gateway gw Programmed True
	// gateway gw ResolvedRefs True
	// route web Accepted True Accepted
	// route web ResolvedRefs True ResolvedRefs
}

// Resolve the endpoints of one Service port without translating anything
// else, as a source does when only EndpointSlices changed.
func ExampleEndpoints() {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web")}}},
	}
	ready, notReady := true, false
	slices := []discoveryv1.EndpointSlice{{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{"kubernetes.io/service-name": "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(3000))}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.0.0.1"}},
			{Addresses: []string{"10.0.0.3"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
		},
	}}
	for _, ep := range gatewayapi.Endpoints(svc, 80, slices) {
		fmt.Println(ep.Address)
	}
	// Output:
	// 10.0.0.1:3000
	// 10.0.0.2:3000
}

// A TrafficPolicy on a Gateway limits the requests of all its listeners
// together: its rate limit has one Name, the budget the proxy shares, on
// each of them. The policy's status has one ancestor, the Gateway.
func ExampleTranslate_trafficPolicy() {
	http := gatewayv1.Listener{Name: "http", Port: 8080, Protocol: gatewayv1.HTTPProtocolType}
	alt := gatewayv1.Listener{Name: "alt", Port: 8081, Protocol: gatewayv1.HTTPProtocolType}
	res := &gatewayapi.Resources{
		GatewayClasses: []gatewayv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "rauta"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayapi.DefaultControllerName},
		}},
		Gateways: []gatewayv1.Gateway{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gw"},
			Spec:       gatewayv1.GatewaySpec{GatewayClassName: "rauta", Listeners: []gatewayv1.Listener{http, alt}},
		}},
		TrafficPolicies: []rautav1alpha1.TrafficPolicy{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "limits", Generation: 1},
			Spec: rautav1alpha1.TrafficPolicySpec{
				TargetRefs: []rautav1alpha1.PolicyTargetReference{{LocalPolicyTargetReference: gatewayv1.LocalPolicyTargetReference{
					Group: "gateway.networking.k8s.io", Kind: "Gateway", Name: "gw",
				}}},
				RateLimit: &rautav1alpha1.RateLimit{Requests: 300, Unit: rautav1alpha1.Minute},
			},
		}},
	}
	r := gatewayapi.Translate(res, gatewayapi.Options{})
	for _, l := range r.Config.Listeners {
		rl := l.RateLimits[0]
		fmt.Println(l.Name, rl.Name, rl.Rate, "per second, burst", rl.Burst, l.Policies)
	}
	for _, p := range r.Status.TrafficPolicies {
		a := p.Status.Ancestors[0]
		fmt.Println(p.Name, *a.AncestorRef.Kind, a.AncestorRef.Name, a.Conditions[0].Reason)
	}
	// Output:
	// default/gw/alt default/limits:Gateway/gw 5 per second, burst 300 [TrafficPolicy default/limits]
	// default/gw/http default/limits:Gateway/gw 5 per second, burst 300 [TrafficPolicy default/limits]
	// limits Gateway gw Accepted
}

// The condition types a status writer owns on a Gateway and on its
// listeners: it keeps any other condition type as it is stored.
func ExampleOwnedConditionTypes() {
	owned := gatewayapi.OwnedConditionTypes()
	fmt.Println(owned.Gateway)
	fmt.Println(owned.Listener)
	// Output:
	// [Accepted Programmed ResolvedRefs InsecureFrontendValidationMode]
	// [Accepted Programmed ResolvedRefs Conflicted]
}
