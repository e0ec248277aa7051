package kube

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// grpcOurParent returns the status.parents entry of controller ctrl.
func grpcOurParent(r *gatewayv1.GRPCRoute, ctrl string) (gatewayv1.RouteParentStatus, bool) {
	for _, p := range r.Status.Parents {
		if string(p.ControllerName) == ctrl {
			return p, true
		}
	}
	return gatewayv1.RouteParentStatus{}, false
}

// TestGRPCRouteStatus: GRPCRoutes are watched and their status written
// through a real API server: an accepted route with its references
// resolved, the listener's supportedKinds and attachedRoutes counting it,
// another controller's entry kept, and a route that conflicts with an
// older HTTPRoute on the same hostname reported HostnameConflict until
// the HTTPRoute is deleted.
func TestGRPCRouteStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	gw := e.gateway("gw", port)
	e.service(e.ns, "echo", "10.213.5.1")
	e.service(e.ns, "web", "10.213.5.2")

	// The HTTPRoute is older than the conflicting GRPCRoute.
	hr := e.route(e.ns, "web", "gw", e.ns, "web")
	hr.Spec.Hostnames = []gatewayv1.Hostname{"shared.example.com"}
	e.createRoute(hr)
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has a resolution of one second

	port80 := gatewayv1.PortNumber(80)
	grpcRoute := func(name, host string) *gatewayv1.GRPCRoute {
		r, err := e.gw.GatewayV1().GRPCRoutes(e.ns).Create(e.ctx(), &gatewayv1.GRPCRoute{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			Spec: gatewayv1.GRPCRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
				Hostnames:       []gatewayv1.Hostname{gatewayv1.Hostname(host)},
				Rules: []gatewayv1.GRPCRouteRule{{
					Matches:     []gatewayv1.GRPCRouteMatch{{Method: &gatewayv1.GRPCMethodMatch{Service: ptr("echo.Echo"), Method: ptr("Say")}}},
					BackendRefs: []gatewayv1.GRPCBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "echo", Port: &port80}}}},
				}},
			},
		}, metav1.CreateOptions{})
		e.must(err)
		return r
	}
	ok := grpcRoute("echo", "grpc.example.com")
	grpcRoute("conflict", "shared.example.com")
	// Another controller's entry in the route's status.
	other := gatewayv1.RouteParentStatus{
		ParentRef:      gatewayv1.ParentReference{Name: "elsewhere"},
		ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			LastTransitionTime: metav1.Now(), ObservedGeneration: ok.Generation}},
	}
	ok.Status.Parents = []gatewayv1.RouteParentStatus{other}
	_, err := e.gw.GatewayV1().GRPCRoutes(e.ns).UpdateStatus(e.ctx(), ok, metav1.UpdateOptions{})
	e.must(err)

	e.start(nil, e.options(p))

	parent := func(name string) (gatewayv1.RouteParentStatus, *gatewayv1.GRPCRoute, string) {
		r, err := e.gw.GatewayV1().GRPCRoutes(e.ns).Get(e.ctx(), name, metav1.GetOptions{})
		if err != nil {
			return gatewayv1.RouteParentStatus{}, nil, err.Error()
		}
		ps, found := grpcOurParent(r, e.ctrl)
		if !found {
			return ps, r, "no entry of ours"
		}
		return ps, r, ""
	}
	e.eventually("GRPCRoute echo Accepted and ResolvedRefs, the other controller's entry kept", func() (bool, string) {
		ps, r, msg := parent("echo")
		if msg != "" {
			return false, msg
		}
		if len(r.Status.Parents) != 2 {
			return false, fmt.Sprintf("parents %+v", r.Status.Parents)
		}
		if ok, msg := condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation); !ok {
			return false, msg
		}
		return condIs(ps.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", r.Generation)
	})
	e.eventually("GRPCRoute conflict not Accepted: HostnameConflict", func() (bool, string) {
		ps, r, msg := parent("conflict")
		if msg != "" {
			return false, msg
		}
		return condIs(ps.Conditions, "Accepted", metav1.ConditionFalse, "HostnameConflict", r.Generation)
	})
	e.eventually("listener lists GRPCRoute and counts two routes", func() (bool, string) {
		g, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "gw", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(g.Status.Listeners) != 1 {
			return false, fmt.Sprintf("listeners %+v", g.Status.Listeners)
		}
		l := g.Status.Listeners[0]
		kinds := map[gatewayv1.Kind]bool{}
		for _, k := range l.SupportedKinds {
			kinds[k.Kind] = true
		}
		return kinds["GRPCRoute"] && kinds["HTTPRoute"] && l.AttachedRoutes == 2 && g.Generation == gw.Generation,
			fmt.Sprintf("supportedKinds %v, attachedRoutes %d", l.SupportedKinds, l.AttachedRoutes)
	})

	e.must(e.gw.GatewayV1().HTTPRoutes(e.ns).Delete(e.ctx(), "web", metav1.DeleteOptions{}))
	e.eventually("GRPCRoute conflict Accepted once the HTTPRoute is gone", func() (bool, string) {
		ps, r, msg := parent("conflict")
		if msg != "" {
			return false, msg
		}
		return condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation)
	})
}
