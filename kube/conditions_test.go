package kube

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// TestForeignConditionsKept: conditions of types rauta does not own, put
// on a GatewayClass, a Gateway, one of its listeners and rauta's own entry
// in an HTTPRoute's status.parents through the status subresource (as
// another controller or a person would), survive rauta's status writes
// unchanged (lastTransitionTime and observedGeneration included), also
// after they change and after spec changes make rauta write again; an
// owned type rauta does not set there and the entry of a listener that is
// not in the spec are removed; rauta's own conditions still land.
func TestForeignConditionsKept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.214.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	all := gatewayv1.NamespacesFromAll
	listener := func(name, host string) gatewayv1.Listener {
		h := gatewayv1.Hostname(host)
		return gatewayv1.Listener{Name: gatewayv1.SectionName(name), Hostname: &h, Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType,
			AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &all}}}
	}
	gw, err := e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(e.class),
			Listeners:        []gatewayv1.Listener{listener("a", "a.example.com"), listener("b", "b.example.com")},
		},
	}, metav1.CreateOptions{})
	e.must(err)

	longAgo := metav1.NewTime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	theirs := func(typ string, st metav1.ConditionStatus, gen int64) metav1.Condition {
		return metav1.Condition{Type: typ, Status: st, Reason: "Checked", Message: "set by someone else", ObservedGeneration: gen, LastTransitionTime: longAgo}
	}
	kinds := []gatewayv1.RouteGroupKind{{Kind: "HTTPRoute"}}
	// Before rauta runs: a foreign condition on the Gateway (with an
	// observedGeneration of its own) next to an owned type rauta does not
	// set on this Gateway, a foreign condition on listener a, and the
	// entry of a listener that is not in the spec.
	gwTheirs := theirs("example.com/Scanned", metav1.ConditionTrue, 7)
	lTheirs := theirs("example.com/Reachable", metav1.ConditionFalse, 3)
	gw.Status.Conditions = append(gw.Status.Conditions, gwTheirs,
		metav1.Condition{Type: "InsecureFrontendValidationMode", Status: metav1.ConditionTrue, Reason: "ConfigurationChanged", Message: "left by an earlier write", ObservedGeneration: 1, LastTransitionTime: longAgo})
	gw.Status.Listeners = []gatewayv1.ListenerStatus{
		{Name: "a", SupportedKinds: kinds, Conditions: []metav1.Condition{lTheirs}},
		{Name: "gone", SupportedKinds: kinds, Conditions: []metav1.Condition{theirs("Programmed", metav1.ConditionTrue, 1)}},
	}
	_, err = e.gw.GatewayV1().Gateways(e.ns).UpdateStatus(e.ctx(), gw, metav1.UpdateOptions{})
	e.must(err)
	gcTheirs := theirs("example.com/Audited", metav1.ConditionTrue, 1)
	e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		gc, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx(), e.class, metav1.GetOptions{})
		if err != nil {
			return err
		}
		gc.Status.Conditions = append(gc.Status.Conditions, gcTheirs)
		_, err = e.gw.GatewayV1().GatewayClasses().UpdateStatus(e.ctx(), gc, metav1.UpdateOptions{})
		return err
	}))

	e.service(e.ns, "web", "10.214.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))
	run := e.start(nil, e.options(p))

	getGW := func() *gatewayv1.Gateway {
		g, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "gw", metav1.GetOptions{})
		e.must(err)
		return g
	}
	listenerOf := func(g *gatewayv1.Gateway, name string) (gatewayv1.ListenerStatus, bool) {
		for _, l := range g.Status.Listeners {
			if string(l.Name) == name {
				return l, true
			}
		}
		return gatewayv1.ListenerStatus{}, false
	}
	// waitGW waits until rauta's conditions are written for the Gateway's
	// current generation, listener b included.
	waitGW := func(gen int64) *gatewayv1.Gateway {
		t.Helper()
		var g *gatewayv1.Gateway
		e.eventually(fmt.Sprintf("Gateway programmed at generation %d", gen), func() (bool, string) {
			g = getGW()
			if ok, msg := condIs(g.Status.Conditions, "Programmed", metav1.ConditionTrue, "Programmed", gen); !ok {
				return false, msg
			}
			for _, name := range []string{"a", "b"} {
				l, ok := listenerOf(g, name)
				if !ok {
					return false, "no listener " + name
				}
				if ok, msg := condIs(l.Conditions, "Programmed", metav1.ConditionTrue, "Programmed", gen); !ok {
					return false, "listener " + name + ": " + msg
				}
				if ok, msg := condIs(l.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", gen); !ok {
					return false, "listener " + name + ": " + msg
				}
			}
			return true, ""
		})
		return g
	}
	// checkGW checks the foreign conditions are there as they were put.
	checkGW := func(g *gatewayv1.Gateway, gwWant, lWant metav1.Condition) {
		t.Helper()
		if c, ok := findCond(g.Status.Conditions, gwWant.Type); !ok || !apiequality.Semantic.DeepEqual(c, gwWant) {
			t.Errorf("Gateway condition %s: got %+v (present %v), want %+v", gwWant.Type, c, ok, gwWant)
		}
		a, _ := listenerOf(g, "a")
		if c, ok := findCond(a.Conditions, lWant.Type); !ok || !apiequality.Semantic.DeepEqual(c, lWant) {
			t.Errorf("listener a condition %s: got %+v (present %v), want %+v", lWant.Type, c, ok, lWant)
		}
		bl, _ := listenerOf(g, "b")
		if _, ok := findCond(bl.Conditions, lWant.Type); ok {
			t.Errorf("listener b got listener a's foreign condition: %+v", bl.Conditions)
		}
		if _, ok := findCond(g.Status.Conditions, "InsecureFrontendValidationMode"); ok {
			t.Error("the owned condition InsecureFrontendValidationMode, which rauta does not set on this Gateway, is still there")
		}
		if _, ok := listenerOf(g, "gone"); ok {
			t.Error("the status entry of listener gone, not in the spec, is still there")
		}
	}

	g := waitGW(gw.Generation)
	checkGW(g, gwTheirs, lTheirs)
	// The stored order: rauta's conditions replaced the schema's defaults
	// in place, the foreign one stays after them.
	var types []string
	for _, c := range g.Status.Conditions {
		types = append(types, c.Type)
	}
	if i, j := slices.Index(types, "Accepted"), slices.Index(types, gwTheirs.Type); i < 0 || j < i {
		t.Errorf("Gateway condition order %v: the foreign condition moved", types)
	}
	e.eventually("GatewayClass accepted with the foreign condition kept", func() (bool, string) {
		gc, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx(), e.class, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if ok, msg := condIs(gc.Status.Conditions, "SupportedVersion", metav1.ConditionTrue, "", gc.Generation); !ok {
			return false, msg
		}
		c, ok := findCond(gc.Status.Conditions, gcTheirs.Type)
		return ok && apiequality.Semantic.DeepEqual(c, gcTheirs), fmt.Sprintf("%+v", gc.Status.Conditions)
	})

	// The other controller changes its conditions while rauta runs; a
	// spec change then makes rauta write the Gateway again.
	gwTheirs2 := theirs(gwTheirs.Type, metav1.ConditionFalse, 8)
	lTheirs2 := theirs(lTheirs.Type, metav1.ConditionTrue, 4)
	e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g := getGW()
		for i := range g.Status.Conditions {
			if g.Status.Conditions[i].Type == gwTheirs.Type {
				g.Status.Conditions[i] = gwTheirs2
			}
		}
		for i := range g.Status.Listeners {
			if g.Status.Listeners[i].Name == "a" {
				for j := range g.Status.Listeners[i].Conditions {
					if g.Status.Listeners[i].Conditions[j].Type == lTheirs.Type {
						g.Status.Listeners[i].Conditions[j] = lTheirs2
					}
				}
			}
		}
		_, err := e.gw.GatewayV1().Gateways(e.ns).UpdateStatus(e.ctx(), g, metav1.UpdateOptions{})
		return err
	}))
	var cur *gatewayv1.Gateway
	e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		g := getGW()
		h := gatewayv1.Hostname("b2.example.com")
		g.Spec.Listeners[1].Hostname = &h
		var err error
		cur, err = e.gw.GatewayV1().Gateways(e.ns).Update(e.ctx(), g, metav1.UpdateOptions{})
		return err
	}))
	if cur.Generation == gw.Generation {
		t.Fatalf("the spec change did not move the generation (%d)", cur.Generation)
	}
	checkGW(waitGW(cur.Generation), gwTheirs2, lTheirs2)

	// Within rauta's own entry of the route's status.parents, a foreign
	// condition is kept too.
	ourEntry := func() (gatewayv1.RouteParentStatus, *gatewayv1.HTTPRoute) {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		e.must(err)
		ps, _ := ourParent(r, e.ctrl)
		return ps, r
	}
	e.eventually("route accepted", func() (bool, string) {
		ps, r := ourEntry()
		return condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation)
	})
	rTheirs := theirs("example.com/PolicyApplied", metav1.ConditionTrue, 1)
	e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		_, r := ourEntry()
		for i := range r.Status.Parents {
			if string(r.Status.Parents[i].ControllerName) == e.ctrl {
				r.Status.Parents[i].Conditions = append(r.Status.Parents[i].Conditions, rTheirs)
			}
		}
		_, err := e.gw.GatewayV1().HTTPRoutes(e.ns).UpdateStatus(e.ctx(), r, metav1.UpdateOptions{})
		return err
	}))
	rt := e.updateRoute(e.ns, "r", func(r *gatewayv1.HTTPRoute) {
		r.Spec.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{backendRef(e.ns, "missing", e.ns)}
	})
	e.eventually("route ResolvedRefs False at the new generation", func() (bool, string) {
		ps, _ := ourEntry()
		return condIs(ps.Conditions, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound", rt.Generation)
	})
	ps, _ := ourEntry()
	if c, ok := findCond(ps.Conditions, rTheirs.Type); !ok || !apiequality.Semantic.DeepEqual(c, rTheirs) {
		t.Errorf("foreign condition in our route parent entry: got %+v (present %v), want %+v", c, ok, rTheirs)
	}

	// Nothing changes: the foreign conditions cause no writes.
	time.Sleep(DefaultMaxDelay)
	writes := run.c.Stats().StatusWrites
	time.Sleep(2 * DefaultMaxDelay)
	if got := run.c.Stats().StatusWrites; got != writes {
		t.Errorf("status written %d times while nothing changed", got-writes)
	}
	if d := cmp.Diff(gwTheirs2, mustFind(t, getGW().Status.Conditions, gwTheirs.Type)); d != "" {
		t.Errorf("Gateway foreign condition at the end (-want +got)\n%s", d)
	}
}

// mustFind returns the condition of type typ, failing t without one.
func mustFind(t *testing.T, cs []metav1.Condition, typ string) metav1.Condition {
	t.Helper()
	c, ok := findCond(cs, typ)
	if !ok {
		t.Errorf("no condition %s in %+v", typ, cs)
	}
	return c
}
