package kube

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
)

// TestStatusAndTraffic: the translator's status is written back for our
// GatewayClass, Gateway and HTTPRoute (conditions, observedGeneration,
// attachedRoutes), traffic flows through the listener to the endpoint of
// the EndpointSlice, and a Gateway of another class is left alone.
func TestStatusAndTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	gw := e.gateway("gw", port)
	foreign, err := e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "someone-else", Listeners: []gatewayv1.Listener{{
			Name: "http", Port: gatewayv1.PortNumber(freePort(t)), Protocol: gatewayv1.HTTPProtocolType,
		}}},
	}, metav1.CreateOptions{})
	e.must(err)
	e.service(e.ns, "web", "10.213.0.1")
	r := e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))
	run := e.start(nil, e.options(p))

	e.eventually("GatewayClass Accepted", func() (bool, string) {
		gc, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx(), e.class, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return condIs(gc.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", gc.Generation)
	})
	e.eventually("Gateway Accepted and Programmed, one route attached", func() (bool, string) {
		g, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "gw", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, typ := range []string{"Accepted", "Programmed"} {
			if ok, msg := condIs(g.Status.Conditions, typ, metav1.ConditionTrue, typ, gw.Generation); !ok {
				return false, msg
			}
		}
		if len(g.Status.Listeners) != 1 || g.Status.Listeners[0].AttachedRoutes != 1 {
			return false, fmt.Sprintf("listeners %+v", g.Status.Listeners)
		}
		return condIs(g.Status.Listeners[0].Conditions, "Programmed", metav1.ConditionTrue, "", gw.Generation)
	})
	e.eventually("HTTPRoute Accepted and ResolvedRefs", func() (bool, string) {
		got, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ps, ok := ourParent(got, e.ctrl)
		if !ok {
			return false, "no entry of ours"
		}
		if ok, msg := condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation); !ok {
			return false, msg
		}
		return condIs(ps.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", r.Generation)
	})
	e.waitBody(port, "", "A")

	f, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "foreign", metav1.GetOptions{})
	e.must(err)
	if d := cmp.Diff(foreign.Status, f.Status); d != "" || f.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("a Gateway of another class was modified (-before +after)\n%s", d)
	}
	if st := run.c.Stats(); st.StatusWrites < 3 || !run.c.Leading() {
		t.Errorf("stats %+v, leading %v: want at least 3 status writes by the leader", st, run.c.Leading())
	}
}

// TestStatusStableAndOthersUntouched: another controller's entry in the
// route's status.parents survives every write; conditions keep their
// lastTransitionTime when only observedGeneration moves; a condition that
// changes gets a new time and its problem becomes an Event; nothing is
// written when nothing changes.
func TestStatusStableAndOthersUntouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "web", "10.213.0.1")
	rt := e.route(e.ns, "r", "gw", e.ns, "web")
	ns := gatewayv1.Namespace(e.ns)
	rt.Spec.ParentRefs = append(rt.Spec.ParentRefs, gatewayv1.ParentReference{Name: "elsewhere", Namespace: &ns})
	rt = e.createRoute(rt)

	// The other controller got there first.
	longAgo := metav1.NewTime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	other := gatewayv1.RouteParentStatus{
		ParentRef:      gatewayv1.ParentReference{Name: "elsewhere", Namespace: &ns},
		ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
			Message: "theirs", ObservedGeneration: rt.Generation, LastTransitionTime: longAgo}},
	}
	rt.Status.Parents = []gatewayv1.RouteParentStatus{other}
	rt, err := e.gw.GatewayV1().HTTPRoutes(e.ns).UpdateStatus(e.ctx(), rt, metav1.UpdateOptions{})
	e.must(err)
	other = rt.Status.Parents[0] // as stored, with the schema's defaults

	run := e.start(nil, e.options(p))
	route := func() *gatewayv1.HTTPRoute {
		got, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		e.must(err)
		return got
	}
	checkOther := func(r *gatewayv1.HTTPRoute) {
		t.Helper()
		var found bool
		for _, ps := range r.Status.Parents {
			if ps.ControllerName == other.ControllerName {
				found = true
				if !apiequality.Semantic.DeepEqual(ps, other) {
					t.Errorf("the other controller's entry changed (-want +got)\n%s", cmp.Diff(other, ps))
				}
			}
		}
		if !found {
			t.Error("the other controller's entry is gone")
		}
	}
	waitOurs := func(gen int64, typ string, st metav1.ConditionStatus, reason string) *gatewayv1.HTTPRoute {
		t.Helper()
		var last *gatewayv1.HTTPRoute
		e.eventually(fmt.Sprintf("route %s=%s %s at generation %d", typ, st, reason, gen), func() (bool, string) {
			last = route()
			ps, ok := ourParent(last, e.ctrl)
			if !ok {
				return false, "no entry of ours"
			}
			return condIs(ps.Conditions, typ, st, reason, gen)
		})
		return last
	}
	first := waitOurs(rt.Generation, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs")
	checkOther(first)
	ours, _ := ourParent(first, e.ctrl)
	accepted, _ := findCond(ours.Conditions, "Accepted")
	resolved, _ := findCond(ours.Conditions, "ResolvedRefs")

	// Nothing changes: nothing is written (once the class and the Gateway
	// have their status too).
	e.eventually("GatewayClass and Gateway status written", func() (bool, string) {
		gc, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx(), e.class, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if ok, msg := condIs(gc.Status.Conditions, "Accepted", metav1.ConditionTrue, "", gc.Generation); !ok {
			return false, msg
		}
		g, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "gw", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(g.Status.Listeners) != 1 || g.Status.Listeners[0].AttachedRoutes != 1 {
			return false, fmt.Sprintf("listeners %+v", g.Status.Listeners)
		}
		return condIs(g.Status.Conditions, "Programmed", metav1.ConditionTrue, "", g.Generation)
	})
	time.Sleep(DefaultMaxDelay)
	writes := run.c.Stats().StatusWrites
	time.Sleep(2 * DefaultMaxDelay)
	if got := run.c.Stats().StatusWrites; got != writes {
		t.Errorf("status written %d times while nothing changed", got-writes)
	}

	// A spec change that changes no condition: the times stay.
	time.Sleep(1100 * time.Millisecond) // a new time would differ by a second
	cur := e.updateRoute(e.ns, "r", func(r *gatewayv1.HTTPRoute) {
		r.Spec.Rules[0].Filters = []gatewayv1.HTTPRouteFilter{{
			Type:                  gatewayv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Step", Value: "2"}}},
		}}
	})
	if cur.Generation == rt.Generation {
		t.Fatalf("the spec change did not move the generation (%d)", cur.Generation)
	}
	second := waitOurs(cur.Generation, "Accepted", metav1.ConditionTrue, "Accepted")
	checkOther(second)
	ours, _ = ourParent(second, e.ctrl)
	for _, want := range []metav1.Condition{accepted, resolved} {
		got, _ := findCond(ours.Conditions, want.Type)
		if !got.LastTransitionTime.Equal(&want.LastTransitionTime) {
			t.Errorf("%s lastTransitionTime moved from %v to %v although only observedGeneration changed", want.Type, want.LastTransitionTime, got.LastTransitionTime)
		}
	}

	// A condition that changes gets a new time; the others keep theirs.
	cur = e.updateRoute(e.ns, "r", func(r *gatewayv1.HTTPRoute) {
		r.Spec.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{backendRef(e.ns, "missing", e.ns)}
	})
	third := waitOurs(cur.Generation, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound")
	checkOther(third)
	ours, _ = ourParent(third, e.ctrl)
	got, _ := findCond(ours.Conditions, "ResolvedRefs")
	if !got.LastTransitionTime.After(resolved.LastTransitionTime.Time) {
		t.Errorf("ResolvedRefs changed but its lastTransitionTime %v is not after %v", got.LastTransitionTime, resolved.LastTransitionTime)
	}
	if got, _ := findCond(ours.Conditions, "Accepted"); !got.LastTransitionTime.Equal(&accepted.LastTransitionTime) {
		t.Errorf("Accepted did not change but its lastTransitionTime moved to %v", got.LastTransitionTime)
	}
	// The configuration error is an Event on the route.
	e.eventually("Warning event BackendNotFound", func() (bool, string) {
		evs, err := e.kube.CoreV1().Events(e.ns).List(e.ctx(), metav1.ListOptions{FieldSelector: "involvedObject.name=r"})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs.Items {
			if ev.Reason == "BackendNotFound" && ev.Type == corev1.EventTypeWarning && ev.InvolvedObject.Kind == "HTTPRoute" && ev.InvolvedObject.UID == cur.UID {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none matching", len(evs.Items))
	})
	e.waitCode(port, "", http.StatusInternalServerError)

	// The route leaves our Gateway: our entry goes, theirs stays.
	e.updateRoute(e.ns, "r", func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs = r.Spec.ParentRefs[1:] })
	e.eventually("our entry removed", func() (bool, string) {
		r := route()
		_, ok := ourParent(r, e.ctrl)
		return !ok, fmt.Sprintf("parents %d", len(r.Status.Parents))
	})
	checkOther(route())
}

// TestStatusConflictRetry: a status update that conflicts (someone updated
// the route between the cache's read and the write) is retried from a
// fresh read and succeeds.
func TestStatusConflictRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	e.gateway("gw", freePort(t))
	e.service(e.ns, "web", "10.213.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))

	var touched atomic.Bool
	statusPath := "/apis/gateway.networking.k8s.io/v1/namespaces/" + e.ns + "/httproutes/r/status"
	ct := &countingTransport{before: func(req *http.Request) {
		if req.Method == http.MethodPut && req.URL.Path == statusPath && touched.CompareAndSwap(false, true) {
			// Another writer slips in: the controller's copy is stale.
			patch := []byte(`{"metadata":{"labels":{"touched":"yes"}}}`)
			_, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Patch(context.Background(), "r", types.MergePatchType, patch, metav1.PatchOptions{})
			if err != nil {
				t.Errorf("touching the route: %v", err)
			}
		}
	}}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.rt = rt; return ct }
	run := e.start(cfg, e.options(p))
	e.eventually("route status written", func() (bool, string) {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ps, ok := ourParent(r, e.ctrl)
		if !ok {
			return false, "no entry of ours"
		}
		if r.Labels["touched"] != "yes" {
			return false, "label lost"
		}
		return condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", r.Generation)
	})
	if !touched.Load() {
		t.Fatal("the route's status was never PUT")
	}
	if st := run.c.Stats(); st.StatusConflicts < 1 {
		t.Errorf("stats %+v: want a conflict", st)
	}
}

// TestLeaderElection: two replicas serve the same configuration, only the
// Lease holder writes status, and when it stops the other takes over.
func TestLeaderElection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "web", "10.213.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))

	// Both bind the same port, on different loopback addresses.
	oa, ob := e.options(newProxy(t, &b)), e.options(newProxy(t, &b))
	oa.Translate.Address, ob.Translate.Address = "127.0.0.1", "127.0.0.2"
	oa.Identity, ob.Identity = "replica-a", "replica-b"
	ra := e.start(nil, oa)
	rb := e.start(nil, ob)
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
		e.eventually("replica on "+host+" serves", func() (bool, string) {
			resp, err := client.Get("http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == 200, resp.Status
		})
	}
	var leader, follower *running
	e.eventually("one leader", func() (bool, string) {
		a, b := ra.c.Leading(), rb.c.Leading()
		switch {
		case a && !b:
			leader, follower = ra, rb
		case b && !a:
			leader, follower = rb, ra
		default:
			return false, fmt.Sprintf("leading: a=%v b=%v", a, b)
		}
		return true, ""
	})
	e.eventually("route status written", func() (bool, string) {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ps, ok := ourParent(r, e.ctrl)
		if !ok {
			return false, "no entry"
		}
		return condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "", r.Generation)
	})
	if w := follower.c.Stats().StatusWrites; w != 0 {
		t.Errorf("the follower wrote status %d times", w)
	}

	leader.stop(t)
	e.eventually("the follower takes the Lease", func() (bool, string) { return follower.c.Leading(), "not leading" })
	r := e.updateRoute(e.ns, "r", func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = []gatewayv1.Hostname{"after.example"} })
	e.eventually("status written by the new leader", func() (bool, string) {
		got, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ps, ok := ourParent(got, e.ctrl)
		if !ok {
			return false, "no entry"
		}
		return condIs(ps.Conditions, "Accepted", metav1.ConditionTrue, "", r.Generation)
	})
	if w := follower.c.Stats().StatusWrites; w == 0 {
		t.Error("the new leader wrote nothing")
	}
}

// TestEndpointFastPath: EndpointSlice changes reach the proxy without a
// rebuild (the proxy's generation does not move), traffic follows them,
// and the time from the slice update to the first request served by the
// new endpoint is measured.
func TestEndpointFastPath(t *testing.T) {
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.1.1", "A")
	b.add(t, "10.213.1.2", "B")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "web", "10.213.1.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))
	run := e.start(nil, e.options(p))
	e.waitBody(port, "", "A")
	e.settleInfra(run, "gw")
	gen, before := p.Generation(), run.c.Stats()

	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	n := 100
	if testing.Short() {
		n = 20
	}
	lat := make([]time.Duration, 0, n)
	addrs := map[string]string{"A": "10.213.1.1", "B": "10.213.1.2"}
	for i := range n {
		want := "B"
		if i%2 == 1 {
			want = "A"
		}
		start := time.Now()
		e.setSlice(e.ns, "web", addrs[want])
		for {
			code, body, err := get(client, port, "", "/")
			if err == nil && code == 200 && body == want {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("change %d: traffic did not move to %s within 10s (last %d %q %v)", i, want, code, body, err)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("EndpointSlice update -> traffic on the new endpoint, %d changes: p50 %v, p90 %v, p99 %v, max %v",
		n, lat[n/2].Round(100*time.Microsecond), lat[n*9/10].Round(100*time.Microsecond),
		lat[(n*99)/100].Round(100*time.Microsecond), lat[n-1].Round(100*time.Microsecond))

	// Scaling out: both endpoints take traffic.
	e.setSlice(e.ns, "web", "10.213.1.1", "10.213.1.2")
	seen := map[string]bool{}
	e.eventually("both endpoints serve", func() (bool, string) {
		_, body, _ := get(client, port, "", "/")
		seen[body] = true
		return seen["A"] && seen["B"], fmt.Sprint(seen)
	})
	// No endpoint: the gateway answers 503.
	e.setSlice(e.ns, "web")
	e.waitCode(port, "", http.StatusServiceUnavailable)

	after := run.c.Stats()
	if g := p.Generation(); g != gen {
		t.Errorf("proxy generation moved from %d to %d: endpoint changes went through Apply", gen, g)
	}
	if after.Applies != before.Applies {
		t.Errorf("%d Applies during endpoint changes", after.Applies-before.Applies)
	}
	if got := after.EndpointUpdates - before.EndpointUpdates; got < uint64(n)+2 {
		t.Errorf("%d endpoint updates, want at least %d", got, n+2)
	}
}

// TestUnchangedInputNoNewConfig: changes that do not change what the
// proxy serves produce no new Config.
func TestUnchangedInputNoNewConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "web", "10.213.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))
	run := e.start(nil, e.options(p))
	e.waitBody(port, "", "A")
	e.eventually("route status written", func() (bool, string) {
		r, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		_, ok := ourParent(r, e.ctrl)
		return ok, "no entry"
	})
	time.Sleep(2 * DefaultMaxDelay)
	gen, before := p.Generation(), run.c.Stats()

	// An unrelated Service, a Namespace label, a GatewayClass description
	// (a spec change: its status moves, the Config does not), an
	// unreferenced Secret.
	_, err := e.kube.CoreV1().Services(e.ns).Create(e.ctx(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: e.ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 9}}},
	}, metav1.CreateOptions{})
	e.must(err)
	_, err = e.kube.CoreV1().Namespaces().Patch(e.ctx(), e.ns, types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
	e.must(err)
	_, err = e.gw.GatewayV1().GatewayClasses().Patch(e.ctx(), e.class, types.MergePatchType, []byte(`{"spec":{"description":"changed"}}`), metav1.PatchOptions{})
	e.must(err)
	_, err = e.kube.CoreV1().Secrets(e.ns).Create(e.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "unrelated", Namespace: e.ns}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	e.must(err)

	e.eventually("GatewayClass status at the new generation", func() (bool, string) {
		gc, err := e.gw.GatewayV1().GatewayClasses().Get(e.ctx(), e.class, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return condIs(gc.Status.Conditions, "Accepted", metav1.ConditionTrue, "", gc.Generation)
	})
	time.Sleep(2 * DefaultMaxDelay)
	after := run.c.Stats()
	if g := p.Generation(); g != gen {
		t.Errorf("proxy generation moved from %d to %d without any change to serve", gen, g)
	}
	if after.Rebuilds == before.Rebuilds || after.ApplySkipped == before.ApplySkipped {
		t.Errorf("stats before %+v after %+v: want rebuilds whose apply was skipped", before, after)
	}
	if after.Applies != before.Applies {
		t.Errorf("%d Applies", after.Applies-before.Applies)
	}
}

// TestReferenceGrant: a route's reference to a Service in another namespace
// resolves while a ReferenceGrant allows it, and only then.
func TestReferenceGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	backendNS := e.ns + "-backend"
	e.namespace(backendNS, nil)
	e.service(backendNS, "web", "10.213.0.1")
	r := e.createRoute(e.route(e.ns, "r", "gw", backendNS, "web"))
	e.start(nil, e.options(p))

	resolved := func(st metav1.ConditionStatus, reason string) {
		t.Helper()
		e.eventually("ResolvedRefs "+reason, func() (bool, string) {
			got, err := e.gw.GatewayV1().HTTPRoutes(e.ns).Get(e.ctx(), "r", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			ps, ok := ourParent(got, e.ctrl)
			if !ok {
				return false, "no entry"
			}
			return condIs(ps.Conditions, "ResolvedRefs", st, reason, r.Generation)
		})
	}
	resolved(metav1.ConditionFalse, "RefNotPermitted")
	e.waitCode(port, "", http.StatusInternalServerError)

	grant := &gatewayv1.ReferenceGrant{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-routes", Namespace: backendNS},
		Spec: gatewayv1.ReferenceGrantSpec{
			From: []gatewayv1.ReferenceGrantFrom{{Group: gatewayv1.GroupName, Kind: "HTTPRoute", Namespace: gatewayv1.Namespace(e.ns)}},
			To:   []gatewayv1.ReferenceGrantTo{{Group: "", Kind: "Service"}},
		},
	}
	_, err := e.gw.GatewayV1().ReferenceGrants(backendNS).Create(e.ctx(), grant, metav1.CreateOptions{})
	e.must(err)
	resolved(metav1.ConditionTrue, "ResolvedRefs")
	e.waitBody(port, "", "A")

	e.must(e.gw.GatewayV1().ReferenceGrants(backendNS).Delete(e.ctx(), "allow-routes", metav1.DeleteOptions{}))
	resolved(metav1.ConditionFalse, "RefNotPermitted")
	e.waitCode(port, "", http.StatusInternalServerError)
}

// selfSigned returns a PEM certificate for host with CommonName cn and
// its key.
func selfSigned(t *testing.T, cn, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// TestSecretRotation: an HTTPS listener serves the certificate of its
// Secret, and the new one after the Secret is rotated; Secrets nobody
// references are not fetched.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	const host = "app.example"
	crt, key := selfSigned(t, "v1", host)
	mkSecret := func(name string, crt, key []byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}
	}
	_, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx(), mkSecret("cert", crt, key), metav1.CreateOptions{})
	e.must(err)
	for i := range 3 {
		_, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx(), mkSecret("unreferenced-"+strconv.Itoa(i), crt, key), metav1.CreateOptions{})
		e.must(err)
	}
	port := freePort(t)
	_, err = e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: gatewayv1.ObjectName(e.class), Listeners: []gatewayv1.Listener{{
			Name: "https", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPSProtocolType,
			Hostname: ptr(gatewayv1.Hostname(host)),
			TLS: &gatewayv1.ListenerTLSConfig{Mode: ptr(gatewayv1.TLSModeTerminate),
				CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert"}}},
		}}},
	}, metav1.CreateOptions{})
	e.must(err)
	e.service(e.ns, "web", "10.213.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))
	run := e.start(nil, e.options(p))

	served := func(want string) {
		t.Helper()
		e.eventually("certificate "+want+" served", func() (bool, string) {
			conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), tlsConfigFor(host))
			if err != nil {
				return false, err.Error()
			}
			defer conn.Close()
			cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
			return cn == want, "served " + cn
		})
	}
	served("v1")
	crt2, key2 := selfSigned(t, "v2", host)
	s, err := e.kube.CoreV1().Secrets(e.ns).Get(e.ctx(), "cert", metav1.GetOptions{})
	e.must(err)
	s.Data = map[string][]byte{corev1.TLSCertKey: crt2, corev1.TLSPrivateKeyKey: key2}
	_, err = e.kube.CoreV1().Secrets(e.ns).Update(e.ctx(), s, metav1.UpdateOptions{})
	e.must(err)
	served("v2")

	// HTTPS traffic reaches the backend too.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsConfigFor(host),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
		},
	}}
	defer client.CloseIdleConnections()
	e.eventually("HTTPS request served", func() (bool, string) {
		resp, err := client.Get("https://" + host + "/")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	if s, c := run.c.refs.held(); s != 1 || c != 0 {
		t.Errorf("holding the data of %d Secrets and %d ConfigMaps, want 1 and 0 (only the referenced one)", s, c)
	}
}

// TestRun runs the whole gateway from a kubeconfig file: the admin
// endpoints turn ready once the cluster's configuration is served, the
// status is shown on /debug/status, and cancelling shuts everything down.
func TestRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		// What `rauta serve` runs in a cluster: a proxy and a Controller
		// under admin.Run.
		cfg, err := RESTConfig(e.c.Kubeconfig)
		if err != nil {
			done <- err
			return
		}
		p := proxy.New(proxy.Options{Logger: quietLogger()})
		c, err := New(cfg, Options{Proxy: p, Translate: gatewayapiOptions(e.ctrl), DisableStatus: true, Logger: quietLogger()})
		if err != nil {
			done <- err
			return
		}
		done <- admin.Run(ctx, admin.RunOptions{Proxy: p, Address: "127.0.0.1:0", Logger: quietLogger(),
			Status: func() any { return c.Status() }, OnStart: func(a net.Addr) { addrc <- a }}, c)
	}()
	var admin string
	select {
	case a := <-addrc:
		admin = "http://" + a.String()
	case err := <-done:
		t.Fatalf("Run returned %v", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	fetch := func(path string) (int, string) {
		resp, err := client.Get(admin + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	e.eventually("/readyz ready", func() (bool, string) {
		code, body := fetch("/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	if code, _ := fetch("/healthz"); code != 200 {
		t.Errorf("/healthz answered %d", code)
	}
	code, body := fetch("/debug/status?format=json")
	var st gatewayapi.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Errorf("/debug/status: %d %v %.300s", code, err, body)
	}
	if len(st.Gateways) != 1 || st.Gateways[0].Namespace != e.ns || st.Gateways[0].Name != "gw" {
		t.Errorf("/debug/status shows Gateways %+v, want %s/gw", st.Gateways, e.ns)
	}
	// The listener is served (no route yet: 404).
	e.waitCode(port, "", http.StatusNotFound)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := client.Get(admin + "/healthz"); err == nil {
		t.Error("the admin listener still answers after Run returned")
	}
}
