package kube

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/internal/testcluster"
)

// policyCRDs returns the CRDs of the policy kinds: rauta's own from
// deploy/crds and the Gateway API's experimental XBackendTrafficPolicy from
// the gateway-api module.
func policyCRDs(t *testing.T) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("..", "deploy", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no CRD in ../deploy/crds (generated from apis/v1alpha1)")
	}
	dir, _, err := testcluster.GatewayAPIDir()
	if err != nil {
		t.Fatal(err)
	}
	names = append(names, filepath.Join(dir, "config", "crd", "experimental", "gateway.networking.x-k8s.io_xbackendtrafficpolicies.yaml"))
	var docs []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return []byte(strings.Join(docs, "\n---\n"))
}

// policyGVRs are the resources of the policy kinds.
var policyGVRs = []schema.GroupVersionResource{
	{Group: "gateway.rauta.io", Version: "v1alpha1", Resource: "backendpolicies"},
	{Group: "gateway.rauta.io", Version: "v1alpha1", Resource: "trafficpolicies"},
	{Group: "gateway.networking.x-k8s.io", Version: "v1alpha1", Resource: "xbackendtrafficpolicies"},
}

// policiesServed reports whether the API server serves every policy kind.
func (e *env) policiesServed() bool {
	for _, gvr := range policyGVRs {
		rl, err := e.kube.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
		if err != nil || !slices.ContainsFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == gvr.Resource }) {
			return false
		}
	}
	return true
}

// resources returns the Resources of the controller's last translation.
func (c *Controller) resources() *gatewayapi.Resources {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	return c.lastRes
}

// inNamespace returns the objects of l in namespace ns (other tests'
// policies are in the cluster too).
func inNamespace[T any, PT interface {
	*T
	metav1.Object
}](l []T, ns string) []T {
	var out []T
	for i := range l {
		if PT(&l[i]).GetNamespace() == ns {
			out = append(out, l[i])
		}
	}
	return out
}

// TestPolicies: the controller serves without the policy CRDs, picks the
// kinds up when their CRDs appear, puts the policies into the Resources it
// translates (typed, converted from the dynamic informers' objects) and,
// as the leader, writes the policies' status through the status
// subresource: the entries the translator computes, merged with another
// controller's entry (kept) and replacing a stale entry of its own, after
// a conflict on the first write of each kind.
func TestPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.timeout = 45 * time.Second
	crds := policyCRDs(t)
	servedBefore := e.policiesServed()
	dyn := dynamic.NewForConfigOrDie(e.c.Config)

	var b backends
	b.add(t, "10.214.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "web", "10.214.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))

	// The first status PUT of each policy kind is preceded by another
	// writer's change of the object, so it conflicts and is retried.
	var mu sync.Mutex
	touched := map[string]bool{}
	ct := &countingTransport{before: func(req *http.Request) {
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		// /apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME/status
		if req.Method != http.MethodPut || len(parts) != 8 || parts[7] != "status" || parts[4] != e.ns {
			return
		}
		gvr := schema.GroupVersionResource{Group: parts[1], Version: parts[2], Resource: parts[5]}
		if !slices.Contains(policyGVRs, gvr) {
			return
		}
		mu.Lock()
		first := !touched[gvr.Resource]
		touched[gvr.Resource] = true
		mu.Unlock()
		if !first {
			return
		}
		patch := []byte(`{"metadata":{"labels":{"touched":"yes"}}}`)
		if _, err := dyn.Resource(gvr).Namespace(parts[4]).Patch(context.Background(), parts[6], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("touching %s %s: %v", gvr.Resource, parts[6], err)
		}
	}}
	cfg := rest.CopyConfig(e.c.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.rt = rt; return ct }
	opts := e.options(p)
	opts.PolicyDiscoveryInterval = 100 * time.Millisecond
	run := e.start(cfg, opts)
	e.waitBody(port, "", "A")

	if servedBefore {
		t.Log("the policy CRDs were installed before the controller started (another test or -count > 1): their late pick-up is not exercised")
	} else {
		res := run.c.resources()
		if n := len(inNamespace(res.BackendPolicies, e.ns)) + len(inNamespace(res.TrafficPolicies, e.ns)) + len(inNamespace(res.XBackendTrafficPolicies, e.ns)); n != 0 {
			t.Fatalf("%d policies in the Resources before their CRDs exist", n)
		}
	}
	if _, err := e.c.Apply(e.ctx(), crds, testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("policy kinds served", func() (bool, string) { return e.policiesServed(), "not in discovery" })

	manifest := fmt.Sprintf(`
apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: lb, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  loadBalancer: {type: Maglev, hashKey: {type: Header, name: X-User}}
  circuitBreaker: {errorRatePercent: 30}
---
apiVersion: gateway.rauta.io/v1alpha1
kind: TrafficPolicy
metadata: {name: limit, namespace: %[1]s}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]
  rateLimit: {requests: 5, unit: Second, burst: 7}
  requestBody: {maxSize: 1Mi}
---
apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XBackendTrafficPolicy
metadata: {name: budget, namespace: %[1]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  retryConstraint: {budget: {percent: 25}}
`, e.ns)
	// Right after their CRDs are established, the kinds may still be
	// missing from the API server's handlers for a moment.
	e.eventually("policies created", func() (bool, string) {
		_, err := e.c.Apply(e.ctx(), []byte(manifest), testcluster.ApplyOptions{})
		return err == nil, fmt.Sprint(err)
	})

	// Their status holds a stale entry of this controller (say, from an
	// earlier version of it) and an entry of another controller.
	other := gatewayv1.GatewayController("other.example/controller")
	stale := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	seeded := gatewayv1.PolicyStatus{Ancestors: []gatewayv1.PolicyAncestorStatus{
		{
			AncestorRef:    gatewayv1.ParentReference{Name: "gone"},
			ControllerName: gatewayv1.GatewayController(e.ctrl),
			Conditions:     []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", Message: "stale", LastTransitionTime: stale, ObservedGeneration: 1}},
		},
		{
			AncestorRef:    gatewayv1.ParentReference{Name: "gw"},
			ControllerName: other,
			Conditions:     []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionFalse, Reason: "Invalid", Message: "not mine", LastTransitionTime: stale, ObservedGeneration: 1}},
		},
	}}
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&seeded)
	e.must(err)
	others := map[string]gatewayv1.PolicyAncestorStatus{} // the other controller's entry as stored
	for _, gvr := range policyGVRs {
		ri := dyn.Resource(gvr).Namespace(e.ns)
		e.eventually("status seeded on "+gvr.Resource, func() (bool, string) {
			l, err := ri.List(e.ctx(), metav1.ListOptions{})
			if err != nil || len(l.Items) != 1 {
				return false, fmt.Sprintf("%d objects, %v", len(l.Items), err)
			}
			u := l.Items[0]
			u.Object["status"] = status
			got, err := ri.UpdateStatus(e.ctx(), &u, metav1.UpdateOptions{})
			if err != nil {
				return false, err.Error()
			}
			st, err := policyStatusOf(got)
			if err != nil || len(st.Ancestors) != 2 {
				return false, fmt.Sprintf("stored %+v, %v", st, err)
			}
			others[gvr.Resource] = st.Ancestors[1]
			return true, ""
		})
	}

	// The policies reach the Resources translated, typed.
	e.eventually("policies in the Resources", func() (bool, string) {
		res := run.c.resources()
		bps, tps, xps := inNamespace(res.BackendPolicies, e.ns), inNamespace(res.TrafficPolicies, e.ns), inNamespace(res.XBackendTrafficPolicies, e.ns)
		if len(bps) != 1 || len(tps) != 1 || len(xps) != 1 {
			return false, fmt.Sprintf("%d BackendPolicies, %d TrafficPolicies, %d XBackendTrafficPolicies", len(bps), len(tps), len(xps))
		}
		bp, tp, xp := bps[0], tps[0], xps[0]
		switch {
		case bp.Name != "lb" || bp.Namespace != e.ns || bp.Spec.LoadBalancer == nil || bp.Spec.LoadBalancer.Type != rautav1alpha1.Maglev ||
			bp.Spec.LoadBalancer.HashKey == nil || bp.Spec.LoadBalancer.HashKey.Name != "X-User" ||
			bp.Spec.CircuitBreaker == nil || bp.Spec.CircuitBreaker.ErrorRatePercent == nil || *bp.Spec.CircuitBreaker.ErrorRatePercent != 30:
			return false, fmt.Sprintf("BackendPolicy %+v", bp)
		case tp.Name != "limit" || tp.Spec.RateLimit == nil || tp.Spec.RateLimit.Requests != 5 || tp.Spec.RateLimit.Burst == nil || *tp.Spec.RateLimit.Burst != 7 ||
			tp.Spec.RequestBody == nil || tp.Spec.RequestBody.MaxSize.Value() != 1<<20:
			return false, fmt.Sprintf("TrafficPolicy %+v", tp)
		case xp.Name != "budget" || xp.Spec.RetryConstraint == nil || xp.Spec.RetryConstraint.Budget == nil ||
			xp.Spec.RetryConstraint.Budget.Percent == nil || *xp.Spec.RetryConstraint.Budget.Percent != 25:
			return false, fmt.Sprintf("XBackendTrafficPolicy %+v", xp)
		}
		return true, ""
	})

	// The proxy serves what the translator makes of the Resources, the
	// policies included (with the translator of issue #11, the backend
	// "<ns>/web:80" is balanced by Maglev on the header X-User).
	e.eventually("the translation of the Resources applied", func() (bool, string) {
		want := gatewayapi.Translate(run.c.resources(), opts.Translate).Config
		if got := p.Config(); !reflect.DeepEqual(want, got) {
			return false, fmt.Sprintf("proxy serves %+v, translation is %+v", got.Backends, want.Backends)
		}
		return true, ""
	})

	// The leader writes what the translator computes for each policy,
	// after the other controller's entry; its stale entry is gone.
	desired := func(gvr schema.GroupVersionResource) []gatewayv1.PolicyAncestorStatus {
		st := gatewayapi.Translate(run.c.resources(), opts.Translate).Status
		list := map[string][]gatewayapi.PolicyStatus{
			"backendpolicies": st.BackendPolicies, "trafficpolicies": st.TrafficPolicies, "xbackendtrafficpolicies": st.XBackendTrafficPolicies,
		}[gvr.Resource]
		for _, s := range list {
			if s.Namespace == e.ns {
				return s.Status.Ancestors
			}
		}
		return nil
	}
	ignoreTimes := cmpopts.IgnoreFields(metav1.Condition{}, "LastTransitionTime")
	for _, gvr := range policyGVRs {
		e.eventually("status of "+gvr.Resource+" written", func() (bool, string) {
			l, err := dyn.Resource(gvr).Namespace(e.ns).List(e.ctx(), metav1.ListOptions{})
			if err != nil || len(l.Items) != 1 {
				return false, fmt.Sprint(err)
			}
			st, err := policyStatusOf(&l.Items[0])
			if err != nil {
				return false, err.Error()
			}
			want := append([]gatewayv1.PolicyAncestorStatus{others[gvr.Resource]}, desired(gvr)...)
			if d := cmp.Diff(want, st.Ancestors, ignoreTimes, cmpopts.EquateEmpty()); d != "" {
				return false, "(-want +got)\n" + d
			}
			if !st.Ancestors[0].Conditions[0].LastTransitionTime.Equal(&stale) {
				return false, "the other controller's entry lost its time"
			}
			return true, ""
		})
	}
	mu.Lock()
	n := len(touched)
	mu.Unlock()
	if st := run.c.Stats(); n != 3 || st.StatusConflicts < 3 {
		t.Errorf("touched %d policy kinds before their first write, %d conflicts: want 3 of each (stats %+v)", n, st.StatusConflicts, st)
	}
	ct.mu.Lock()
	for _, gvr := range policyGVRs {
		if k := "update " + gvr.Group + "/" + gvr.Resource + "/status"; ct.requests[k] < 2 {
			t.Errorf("%d requests %q, want the conflict and its retry", ct.requests[k], k)
		}
	}
	ct.mu.Unlock()

	// A deleted policy leaves the Resources.
	e.must(dyn.Resource(policyGVRs[1]).Namespace(e.ns).Delete(e.ctx(), "limit", metav1.DeleteOptions{}))
	e.eventually("TrafficPolicy gone from the Resources", func() (bool, string) {
		res := run.c.resources()
		tps := inNamespace(res.TrafficPolicies, e.ns)
		return len(tps) == 0 && len(inNamespace(res.BackendPolicies, e.ns)) == 1, fmt.Sprintf("%d TrafficPolicies", len(tps))
	})
	if _, err := dyn.Resource(policyGVRs[1]).Namespace(e.ns).Get(e.ctx(), "limit", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of the deleted TrafficPolicy: %v", err)
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPolicyKindLatePickup: a policy kind whose CRD is missing is logged
// once and ignored while the controller serves, and picked up when its CRD
// appears. The kind is BackendPolicy under a group of the test's own, so
// that no other test has installed it.
func TestPolicyKindLatePickup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := e.ns + ".late.test.rauta.io"
	gvr := schema.GroupVersionResource{Group: group, Version: "v1alpha1", Resource: "backendpolicies"}
	var b backends
	b.add(t, "10.215.0.1", "A")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "web", "10.215.0.1")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "web"))

	var logs lockedBuffer
	opts := e.options(p)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.PolicyDiscoveryInterval = 50 * time.Millisecond
	c, err := New(e.c.Config, opts)
	e.must(err)
	pk := newPolicyKinds()[0]
	pk.gvr = gvr
	c.dynKinds = []*policyKind{pk}
	run := e.run(c)
	e.waitBody(port, "", "A")

	// Several discovery rounds pass: the missing kind is logged once.
	time.Sleep(10 * opts.PolicyDiscoveryInterval)
	if n := strings.Count(logs.String(), "policy kind not served"); n != 1 {
		t.Errorf("%d log lines about the missing kind, want 1:\n%s", n, logs.String())
	}
	if n := len(inNamespace(run.c.resources().BackendPolicies, e.ns)); n != 0 {
		t.Fatalf("%d BackendPolicies before their CRD exists", n)
	}

	crd := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: backendpolicies.%[1]s}
spec:
  group: %[1]s
  names: {kind: BackendPolicy, listKind: BackendPolicyList, plural: backendpolicies, singular: backendpolicy}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group)
	if _, err := e.c.Apply(e.ctx(), []byte(crd), testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dyn := dynamic.NewForConfigOrDie(e.c.Config)
		crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		if err := dyn.Resource(crds).Delete(context.Background(), "backendpolicies."+group, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting the test's CRD: %v", err)
		}
	})
	policy := fmt.Sprintf(`apiVersion: %s/v1alpha1
kind: BackendPolicy
metadata: {name: lb, namespace: %s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  loadBalancer: {type: Maglev, hashKey: {type: Cookie, name: user}}
`, group, e.ns)
	e.eventually("policy created", func() (bool, string) {
		_, err := e.c.Apply(e.ctx(), []byte(policy), testcluster.ApplyOptions{})
		return err == nil, fmt.Sprint(err)
	})
	e.eventually("policy picked up", func() (bool, string) {
		l := inNamespace(run.c.resources().BackendPolicies, e.ns)
		if len(l) != 1 {
			return false, fmt.Sprintf("%d BackendPolicies", len(l))
		}
		lb := l[0].Spec.LoadBalancer
		if l[0].Name != "lb" || lb == nil || lb.Type != rautav1alpha1.Maglev || lb.HashKey == nil || lb.HashKey.Type != rautav1alpha1.Cookie || lb.HashKey.Name != "user" {
			return false, fmt.Sprintf("%+v", l[0])
		}
		return true, ""
	})
	if !strings.Contains(logs.String(), "policy kind served; watching it") {
		t.Errorf("the pick-up is not logged:\n%s", logs.String())
	}

	// An object that does not convert to the Go type (the test's CRD
	// takes anything) is left out, with one warning while it is unchanged,
	// however many rebuilds follow.
	bad := strings.NewReplacer("name: lb", "name: bad", "type: Maglev", "type: 5").Replace(policy)
	if _, err := e.c.Apply(e.ctx(), []byte(bad), testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("the bad policy reported", func() (bool, string) {
		return strings.Contains(logs.String(), "ignoring a policy that does not convert"), "no warning yet"
	})
	dyn := dynamic.NewForConfigOrDie(e.c.Config)
	for i := range 3 {
		rebuilds := run.c.Stats().Rebuilds
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{"round":"%d"}}}`, i)
		_, err := dyn.Resource(gvr).Namespace(e.ns).Patch(e.ctx(), "lb", types.MergePatchType, patch, metav1.PatchOptions{})
		e.must(err)
		e.eventually("a rebuild", func() (bool, string) {
			return run.c.Stats().Rebuilds > rebuilds, "none yet"
		})
	}
	if n := strings.Count(logs.String(), "ignoring a policy that does not convert"); n != 1 {
		t.Errorf("%d warnings about the bad policy, want 1:\n%s", n, logs.String())
	}
	if l := inNamespace(run.c.resources().BackendPolicies, e.ns); len(l) != 1 || l[0].Name != "lb" {
		t.Errorf("BackendPolicies %+v, want lb alone", l)
	}
	e.waitBody(port, "", "A")
}
