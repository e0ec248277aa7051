package filesource

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
)

func cond(typ string, ok bool, reason, msg string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg}
}

func TestSummarize(t *testing.T) {
	other := gatewayv1.Namespace("other")
	section := gatewayv1.SectionName("https")
	st := gatewayapi.Status{
		GatewayClasses: []gatewayapi.GatewayClassStatus{{Name: "rauta", Status: gatewayv1.GatewayClassStatus{
			Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", "")}}}},
		Gateways: []gatewayapi.GatewayStatus{{Namespace: "default", Name: "gw", Status: gatewayv1.GatewayStatus{
			Addresses:  []gatewayv1.GatewayStatusAddress{{Value: "127.0.0.1"}},
			Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", ""), cond("Programmed", true, "Programmed", "")},
			Listeners: []gatewayv1.ListenerStatus{
				{Name: "http", AttachedRoutes: 1, Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", ""), cond("Conflicted", false, "NoConflicts", "")}},
				{Name: "https", AttachedRoutes: 2, Conditions: []metav1.Condition{cond("ResolvedRefs", false, "InvalidCertificateRef", "secret missing"), cond("Conflicted", true, "HostnameConflict", "")}},
			},
		}}},
		HTTPRoutes: []gatewayapi.HTTPRouteStatus{{Namespace: "default", Name: "web", Status: gatewayv1.HTTPRouteStatus{
			RouteStatus: gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{
				{ParentRef: gatewayv1.ParentReference{Name: "gw"}, Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", ""), cond("ResolvedRefs", true, "ResolvedRefs", "")}},
				{ParentRef: gatewayv1.ParentReference{Name: "gw2", Namespace: &other, SectionName: &section}, Conditions: []metav1.Condition{cond("Accepted", false, "NotAllowedByListeners", "namespace not allowed")}},
			}},
		}}},
	}
	res := &gatewayapi.Resources{
		GatewayClasses: []gatewayv1.GatewayClass{{ObjectMeta: metav1.ObjectMeta{Name: "rauta"}}, {ObjectMeta: metav1.ObjectMeta{Name: "istio"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "istio.io/gateway-controller"}}},
		Gateways:       []gatewayv1.Gateway{{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "default"}}, {ObjectMeta: metav1.ObjectMeta{Name: "mesh", Namespace: "istio"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: "istio"}}},
		HTTPRoutes:     []gatewayv1.HTTPRoute{{ObjectMeta: metav1.ObjectMeta{Name: "typo", Namespace: "default"}}, {ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}},
	}
	var got []string
	bad := 0
	for _, o := range Summarize(res, st) {
		got = append(got, o.String())
		if !o.OK() {
			bad++
		}
	}
	want := []string{
		"GatewayClass rauta: accepted",
		"Gateway default/gw: listener https: ResolvedRefs=False InvalidCertificateRef: secret missing; listener https: Conflicted=True HostnameConflict",
		"HTTPRoute default/web: parent other/gw2/https: Accepted=False NotAllowedByListeners: namespace not allowed",
		"Gateway istio/mesh: ignored: GatewayClass istio is not handled by this controller",
		"GatewayClass istio: ignored: controllerName is istio.io/gateway-controller",
		"HTTPRoute default/typo: ignored: no parentRef names a Gateway handled by this controller",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	if bad != 2 {
		t.Errorf("%d objects not OK, want 2", bad)
	}

	// A healthy Gateway is summarised with its listeners.
	st.Gateways[0].Status.Listeners = st.Gateways[0].Status.Listeners[:1]
	o := Summarize(nil, st)[1]
	if want := "Gateway default/gw: programmed (address 127.0.0.1, listener http: 1 route)"; o.String() != want {
		t.Errorf("got %q, want %q", o.String(), want)
	}
}

func TestStampConditions(t *testing.T) {
	status := func(routeOK bool) gatewayapi.Status {
		reason := "Accepted"
		if !routeOK {
			reason = "NotAllowedByListeners"
		}
		return gatewayapi.Status{
			Gateways: []gatewayapi.GatewayStatus{{Namespace: "d", Name: "gw", Status: gatewayv1.GatewayStatus{
				Conditions: []metav1.Condition{cond("Programmed", true, "Programmed", "")},
				Listeners:  []gatewayv1.ListenerStatus{{Name: "http", Conditions: []metav1.Condition{cond("Accepted", true, "Accepted", "")}}},
			}}},
			HTTPRoutes: []gatewayapi.HTTPRouteStatus{{Namespace: "d", Name: "r", Status: gatewayv1.HTTPRouteStatus{
				RouteStatus: gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{{
					ParentRef:  gatewayv1.ParentReference{Name: "gw"},
					Conditions: []metav1.Condition{cond("Accepted", routeOK, reason, "")},
				}}},
			}}},
		}
	}
	t1 := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	t2 := metav1.NewTime(t1.Add(time.Minute))
	st := status(true)
	prev := stampConditions(&st, nil, t1)
	if got := st.HTTPRoutes[0].Status.Parents[0].Conditions[0].LastTransitionTime; !got.Equal(&t1) {
		t.Errorf("first stamp: %v, want %v", got, t1)
	}
	st = status(false)
	prev = stampConditions(&st, prev, t2)
	gotTimes := []metav1.Time{
		st.Gateways[0].Status.Conditions[0].LastTransitionTime,
		st.Gateways[0].Status.Listeners[0].Conditions[0].LastTransitionTime,
		st.HTTPRoutes[0].Status.Parents[0].Conditions[0].LastTransitionTime,
	}
	// Unchanged conditions keep their time; the changed one gets now.
	if diff := cmp.Diff([]metav1.Time{t1, t1, t2}, gotTimes); diff != "" {
		t.Errorf("times (-want +got):\n%s", diff)
	}
	if len(prev) != 3 {
		t.Errorf("%d conditions remembered, want 3", len(prev))
	}
}
