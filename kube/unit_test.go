package kube

import (
	"hash/maphash"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/upstream"
)

var (
	t0 = metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	t1 = metav1.NewTime(time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC))
)

func cond(typ string, st metav1.ConditionStatus, reason, msg string, gen int64, ltt metav1.Time) metav1.Condition {
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: ltt}
}

func TestMergeConditions(t *testing.T) {
	tests := []struct {
		name            string
		stored, desired []metav1.Condition
		want            []metav1.Condition
	}{
		{
			name:    "new condition gets now",
			desired: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})},
			want:    []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, t1)},
		},
		{
			name:    "unchanged condition keeps its time, even with a new observedGeneration",
			stored:  []metav1.Condition{cond("Accepted", "True", "Accepted", "ok", 1, t0)},
			desired: []metav1.Condition{cond("Accepted", "True", "Accepted", "ok", 2, metav1.Time{})},
			want:    []metav1.Condition{cond("Accepted", "True", "Accepted", "ok", 2, t0)},
		},
		{
			name:    "status change gets now",
			stored:  []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, t0)},
			desired: []metav1.Condition{cond("Accepted", "False", "Accepted", "", 1, metav1.Time{})},
			want:    []metav1.Condition{cond("Accepted", "False", "Accepted", "", 1, t1)},
		},
		{
			name:    "reason change gets now",
			stored:  []metav1.Condition{cond("ResolvedRefs", "False", "BackendNotFound", "m", 1, t0)},
			desired: []metav1.Condition{cond("ResolvedRefs", "False", "RefNotPermitted", "m", 1, metav1.Time{})},
			want:    []metav1.Condition{cond("ResolvedRefs", "False", "RefNotPermitted", "m", 1, t1)},
		},
		{
			name:    "message change gets now",
			stored:  []metav1.Condition{cond("ResolvedRefs", "False", "BackendNotFound", "a", 1, t0)},
			desired: []metav1.Condition{cond("ResolvedRefs", "False", "BackendNotFound", "b", 1, metav1.Time{})},
			want:    []metav1.Condition{cond("ResolvedRefs", "False", "BackendNotFound", "b", 1, t1)},
		},
		{
			name: "conditions matched by type, stored order kept, new ones appended",
			stored: []metav1.Condition{
				cond("Programmed", "True", "Programmed", "", 1, t0),
				cond("Accepted", "True", "Accepted", "", 1, t0),
			},
			desired: []metav1.Condition{
				cond("Accepted", "True", "Accepted", "", 1, metav1.Time{}),
				cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, metav1.Time{}),
				cond("Programmed", "True", "Programmed", "", 1, metav1.Time{}),
			},
			want: []metav1.Condition{
				cond("Programmed", "True", "Programmed", "", 1, t0),
				cond("Accepted", "True", "Accepted", "", 1, t0),
				cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, t1),
			},
		},
		{
			name:    "stored condition without a time gets now",
			stored:  []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})},
			desired: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})},
			want:    []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, t1)},
		},
		{
			name: "a condition of another type is kept as stored, in its place, with its time and observedGeneration",
			stored: []metav1.Condition{
				cond("Accepted", "True", "Accepted", "", 1, t0),
				cond("example.com/Scanned", "False", "Pending", "theirs", 7, t0),
				cond("Programmed", "True", "Programmed", "", 1, t0),
			},
			desired: []metav1.Condition{
				cond("Accepted", "False", "Invalid", "bad", 2, metav1.Time{}),
				cond("Programmed", "True", "Programmed", "", 2, metav1.Time{}),
			},
			want: []metav1.Condition{
				cond("Accepted", "False", "Invalid", "bad", 2, t1),
				cond("example.com/Scanned", "False", "Pending", "theirs", 7, t0),
				cond("Programmed", "True", "Programmed", "", 2, t0),
			},
		},
		{
			name: "an owned type the translator no longer sets is removed, others' stay",
			stored: []metav1.Condition{
				cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, t0),
				cond("Ready", "True", "Ready", "theirs", 3, t0),
				cond("Accepted", "True", "Accepted", "", 1, t0),
			},
			desired: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})},
			want: []metav1.Condition{
				cond("Ready", "True", "Ready", "theirs", 3, t0),
				cond("Accepted", "True", "Accepted", "", 1, t0),
			},
		},
		{
			name:   "nothing desired: owned types go, others stay",
			stored: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, t0), cond("Ready", "True", "Ready", "", 3, t0)},
			want:   []metav1.Condition{cond("Ready", "True", "Ready", "", 3, t0)},
		},
		{
			name:    "a type that is desired is owned even when it is not listed",
			stored:  []metav1.Condition{cond("Special", "True", "Old", "", 1, t0)},
			desired: []metav1.Condition{cond("Special", "False", "New", "", 2, metav1.Time{})},
			want:    []metav1.Condition{cond("Special", "False", "New", "", 2, t1)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeConditions(tc.stored, tc.desired, []string{"Accepted", "Programmed", "ResolvedRefs"}, t1)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func parent(gw, section string, ctrl gatewayv1.GatewayController, conds ...metav1.Condition) gatewayv1.RouteParentStatus {
	p := gatewayv1.RouteParentStatus{
		ParentRef:      gatewayv1.ParentReference{Name: gatewayv1.ObjectName(gw)},
		ControllerName: ctrl,
		Conditions:     conds,
	}
	if section != "" {
		p.ParentRef.SectionName = ptr(gatewayv1.SectionName(section))
	}
	return p
}

func TestMergeRouteParents(t *testing.T) {
	const ours, other = gatewayv1.GatewayController("rauta.io/gateway-controller"), gatewayv1.GatewayController("example.com/other")
	acc := func(ltt metav1.Time) metav1.Condition { return cond("Accepted", "True", "Accepted", "", 1, ltt) }
	rej := func(ltt metav1.Time) metav1.Condition {
		return cond("Accepted", "False", "NotAllowedByListeners", "", 1, ltt)
	}
	tests := []struct {
		name    string
		stored  []gatewayv1.RouteParentStatus
		desired []gatewayv1.RouteParentStatus
		want    []gatewayv1.RouteParentStatus
	}{
		{
			name:    "other controllers' entries kept as stored, ours appended",
			stored:  []gatewayv1.RouteParentStatus{parent("x", "", other, rej(t0))},
			desired: []gatewayv1.RouteParentStatus{parent("gw", "", ours, acc(metav1.Time{}))},
			want: []gatewayv1.RouteParentStatus{
				parent("x", "", other, rej(t0)),
				parent("gw", "", ours, acc(t1)),
			},
		},
		{
			name: "ours matched by parentRef (section included)",
			stored: []gatewayv1.RouteParentStatus{
				parent("gw", "a", ours, acc(t0)),
				parent("x", "", other, acc(t0)),
				parent("gw", "b", ours, rej(t0)),
			},
			desired: []gatewayv1.RouteParentStatus{
				parent("gw", "a", ours, acc(metav1.Time{})),
				parent("gw", "b", ours, acc(metav1.Time{})),
			},
			want: []gatewayv1.RouteParentStatus{
				parent("gw", "a", ours, acc(t0)),
				parent("x", "", other, acc(t0)),
				parent("gw", "b", ours, acc(t1)),
			},
		},
		{
			name: "ours no longer desired removed in place, new ones appended",
			stored: []gatewayv1.RouteParentStatus{
				parent("gone", "", ours, acc(t0)),
				parent("x", "", other, acc(t0)),
				parent("gw", "", ours, acc(t0)),
			},
			desired: []gatewayv1.RouteParentStatus{
				parent("new", "", ours, acc(metav1.Time{})),
				parent("gw", "", ours, acc(metav1.Time{})),
			},
			want: []gatewayv1.RouteParentStatus{
				parent("x", "", other, acc(t0)),
				parent("gw", "", ours, acc(t0)),
				parent("new", "", ours, acc(t1)),
			},
		},
		{
			name: "within our entry, a condition of a type we do not own is kept; one we own and no longer set goes",
			stored: []gatewayv1.RouteParentStatus{parent("gw", "", ours,
				cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, t0),
				cond("example.com/Audited", "True", "Audited", "theirs", 4, t0),
				acc(t0))},
			desired: []gatewayv1.RouteParentStatus{parent("gw", "", ours, rej(metav1.Time{}))},
			want: []gatewayv1.RouteParentStatus{parent("gw", "", ours,
				cond("example.com/Audited", "True", "Audited", "theirs", 4, t0),
				rej(t1))},
		},
		{
			name:   "nil desired removes only ours",
			stored: []gatewayv1.RouteParentStatus{parent("gw", "", ours, acc(t0)), parent("x", "", other, acc(t0))},
			want:   []gatewayv1.RouteParentStatus{parent("x", "", other, acc(t0))},
		},
		{
			name:   "an entry of another controller for the same parentRef is not ours",
			stored: []gatewayv1.RouteParentStatus{parent("gw", "", other, acc(t0))},
			desired: []gatewayv1.RouteParentStatus{
				parent("gw", "", ours, acc(metav1.Time{})),
			},
			want: []gatewayv1.RouteParentStatus{parent("gw", "", other, acc(t0)), parent("gw", "", ours, acc(t1))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := routeParentEntries.merge(tc.stored, tc.desired, ours, t1)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestMergePolicyAncestors(t *testing.T) {
	const ours, other = gatewayv1.GatewayController("rauta.io/gateway-controller"), gatewayv1.GatewayController("example.com/other")
	anc := func(name string, ctrl gatewayv1.GatewayController, conds ...metav1.Condition) gatewayv1.PolicyAncestorStatus {
		return gatewayv1.PolicyAncestorStatus{
			AncestorRef:    gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name)},
			ControllerName: ctrl,
			Conditions:     conds,
		}
	}
	acc := func(ltt metav1.Time) metav1.Condition { return cond("Accepted", "True", "Accepted", "", 1, ltt) }
	stored := []gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(t0)), anc("other", other, acc(t0))}
	desired := []gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(metav1.Time{})), anc("gw2", ours, acc(metav1.Time{}))}
	want := []gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(t0)), anc("other", other, acc(t0)), anc("gw2", ours, acc(t1))}
	if d := cmp.Diff(want, ancestorEntries(kindTrafficPolicy).merge(stored, desired, ours, t1)); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if l := ancestorEntries(kindTrafficPolicy); !l.holds(stored, ours) || l.holds(stored[1:], ours) {
		t.Error("entryList.holds is wrong")
	}

	// The owned types depend on the policy's kind: rauta sets
	// ResolvedRefs on BackendTLSPolicy ancestors only.
	refs := cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, t0)
	stored = []gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(t0), refs)}
	desired = []gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(metav1.Time{}))}
	if d := cmp.Diff([]gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(t0), refs)}, ancestorEntries(kindTrafficPolicy).merge(stored, desired, ours, t1)); d != "" {
		t.Errorf("TrafficPolicy: another's ResolvedRefs not kept (-want +got)\n%s", d)
	}
	if d := cmp.Diff([]gatewayv1.PolicyAncestorStatus{anc("gw", ours, acc(t0))}, ancestorEntries(kindBackendTLSPolicy).merge(stored, desired, ours, t1)); d != "" {
		t.Errorf("BackendTLSPolicy: our ResolvedRefs not removed (-want +got)\n%s", d)
	}
}

// TestMergeGatewayStatus: listeners are rauta's alone (desired order, an
// entry for a listener rauta does not report is removed); conditions of
// types rauta does not own are kept on the Gateway, its listeners, a
// ListenerSet, its listeners and a GatewayClass, and an owned type rauta
// no longer sets is removed.
func TestMergeGatewayStatus(t *testing.T) {
	theirs := cond("example.com/Scanned", "True", "Clean", "theirs", 9, t0)
	stored := gatewayv1.GatewayStatus{
		Conditions: []metav1.Condition{
			cond("Accepted", "True", "Accepted", "", 1, t0),
			theirs,
			cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, t0),
		},
		Listeners: []gatewayv1.ListenerStatus{
			{Name: "a", AttachedRoutes: 1, Conditions: []metav1.Condition{cond("Programmed", "True", "Programmed", "", 1, t0), theirs}},
			{Name: "b", AttachedRoutes: 1, Conditions: []metav1.Condition{theirs, cond("Programmed", "True", "Programmed", "", 1, t0), cond("Conflicted", "False", "NoConflicts", "", 1, t0)}},
		},
	}
	desired := gatewayv1.GatewayStatus{
		Addresses:  []gatewayv1.GatewayStatusAddress{{Value: "127.0.0.1"}},
		Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 2, metav1.Time{}), cond("Programmed", "True", "Programmed", "", 2, metav1.Time{})},
		Listeners: []gatewayv1.ListenerStatus{
			{Name: "c", Conditions: []metav1.Condition{cond("Programmed", "False", "Invalid", "bad", 2, metav1.Time{})}},
			{Name: "b", AttachedRoutes: 3, Conditions: []metav1.Condition{cond("Programmed", "True", "Programmed", "", 2, metav1.Time{})}},
		},
	}
	want := gatewayv1.GatewayStatus{
		Addresses: []gatewayv1.GatewayStatusAddress{{Value: "127.0.0.1"}},
		Conditions: []metav1.Condition{
			cond("Accepted", "True", "Accepted", "", 2, t0),
			theirs,
			cond("Programmed", "True", "Programmed", "", 2, t1),
		},
		Listeners: []gatewayv1.ListenerStatus{
			{Name: "c", Conditions: []metav1.Condition{cond("Programmed", "False", "Invalid", "bad", 2, t1)}},
			{Name: "b", AttachedRoutes: 3, Conditions: []metav1.Condition{theirs, cond("Programmed", "True", "Programmed", "", 2, t0)}},
		},
	}
	got := mergeGatewayStatus(stored, desired, t1)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if desired.Conditions[0].LastTransitionTime != (metav1.Time{}) {
		t.Error("mergeGatewayStatus modified desired")
	}
	if got := mergeGatewayStatus(want, desired, t1); !cmp.Equal(want, got) {
		t.Errorf("merging again changed the status (-want +got)\n%s", cmp.Diff(want, got))
	}

	ls := mergeListenerSetStatus(
		gatewayv1.ListenerSetStatus{
			Conditions: []metav1.Condition{theirs, cond("Accepted", "Unknown", "Pending", "Waiting for controller", 0, t0)},
			Listeners:  []gatewayv1.ListenerEntryStatus{{Name: "x", Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, t0), theirs}}},
		},
		gatewayv1.ListenerSetStatus{
			Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})},
			Listeners:  []gatewayv1.ListenerEntryStatus{{Name: "x", Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})}}},
		},
		t1)
	wantLS := gatewayv1.ListenerSetStatus{
		Conditions: []metav1.Condition{theirs, cond("Accepted", "True", "Accepted", "", 1, t1)},
		Listeners:  []gatewayv1.ListenerEntryStatus{{Name: "x", Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, t0), theirs}}},
	}
	if d := cmp.Diff(wantLS, ls); d != "" {
		t.Errorf("ListenerSet (-want +got)\n%s", d)
	}
	gc := mergeGatewayClassStatus(
		gatewayv1.GatewayClassStatus{Conditions: []metav1.Condition{theirs, cond("Accepted", "True", "Accepted", "", 1, t0)}},
		gatewayv1.GatewayClassStatus{Conditions: []metav1.Condition{cond("Accepted", "True", "Accepted", "", 1, metav1.Time{})},
			SupportedFeatures: []gatewayv1.SupportedFeature{{Name: "HTTPRoute"}}},
		t1)
	wantGC := gatewayv1.GatewayClassStatus{Conditions: []metav1.Condition{theirs, cond("Accepted", "True", "Accepted", "", 1, t0)},
		SupportedFeatures: []gatewayv1.SupportedFeature{{Name: "HTTPRoute"}}}
	if d := cmp.Diff(wantGC, gc); d != "" {
		t.Errorf("GatewayClass (-want +got)\n%s", d)
	}
}

func TestNewProblems(t *testing.T) {
	stored := []metav1.Condition{cond("ResolvedRefs", "False", "BackendNotFound", "svc a", 1, t0)}
	merged := []metav1.Condition{
		cond("Accepted", "True", "Accepted", "", 1, t1),
		cond("ResolvedRefs", "False", "BackendNotFound", "svc a", 2, t0),
		cond("Programmed", "False", "Pending", "", 1, t1),
		cond("Programmed", "False", "Invalid", "", 1, t1),
		cond("Conflicted", "True", "HostnameConflict", "", 1, t1),
		cond("Conflicted", "False", "NoConflicts", "", 1, t1),
	}
	var got []string
	for _, p := range newProblems("here", stored, merged) {
		got = append(got, p.where+" "+p.cond.Type+"/"+p.cond.Reason)
	}
	want := []string{"here Programmed/Invalid", "here Conflicted/HostnameConflict"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestCoalescer(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	c := newCoalescer(100*time.Millisecond, time.Second, 10*time.Millisecond)

	if full, eps, wait := c.take(at(0)); full || eps != nil || wait >= 0 {
		t.Fatalf("idle: take = %v %v %v, want nothing and a negative wait", full, eps, wait)
	}
	// A burst: each event postpones the rebuild by the hold-off...
	c.markFull(at(0))
	c.markFull(at(50))
	if full, _, wait := c.take(at(60)); full || wait != 90*time.Millisecond {
		t.Fatalf("during hold-off: full=%v wait=%v, want false 90ms", full, wait)
	}
	if full, _, _ := c.take(at(150)); !full {
		t.Fatal("hold-off elapsed: no rebuild")
	}
	if full, _, wait := c.take(at(151)); full || wait >= 0 {
		t.Fatal("rebuild taken twice")
	}
	// ...but a steady stream cannot postpone it beyond the maximum delay.
	for ms := 0; ms <= 990; ms += 30 {
		c.markFull(at(1000 + ms))
	}
	if full, _, wait := c.take(at(1990)); full || wait != 10*time.Millisecond {
		t.Fatalf("before max delay: full=%v wait=%v, want false 10ms", full, wait)
	}
	if full, _, _ := c.take(at(2000)); !full {
		t.Fatal("max delay elapsed: no rebuild")
	}

	// Endpoint changes are due after their own hold-off, sorted and
	// deduplicated.
	c.markEndpoints(serviceKey{"b", "s"}, at(3000))
	c.markEndpoints(serviceKey{"a", "s"}, at(3005))
	c.markEndpoints(serviceKey{"b", "s"}, at(3006))
	if full, eps, wait := c.take(at(3005)); full || eps != nil || wait != 5*time.Millisecond {
		t.Fatalf("endpoint hold-off: %v %v %v", full, eps, wait)
	}
	_, eps, _ := c.take(at(3010))
	if d := cmp.Diff([]serviceKey{{"a", "s"}, {"b", "s"}}, eps, cmp.AllowUnexported(serviceKey{})); d != "" {
		t.Errorf("endpoint keys (-want +got)\n%s", d)
	}
	// A full rebuild due first absorbs pending endpoint changes.
	c.markEndpoints(serviceKey{"a", "s"}, at(4000))
	c.markFull(at(3950))
	if full, eps, _ := c.take(at(4050)); !full || eps != nil {
		t.Fatalf("full rebuild with pending endpoints: %v %v", full, eps)
	}
	if full, eps, wait := c.take(at(4051)); full || eps != nil || wait >= 0 {
		t.Fatalf("endpoints left after a full rebuild: %v %v %v", full, eps, wait)
	}
	// Waits report the nearer deadline.
	c.markFull(at(5000))
	c.markEndpoints(serviceKey{"a", "s"}, at(5000))
	if _, _, wait := c.take(at(5001)); wait != 9*time.Millisecond {
		t.Errorf("wait = %v, want 9ms (the endpoints' deadline)", wait)
	}
	select {
	case <-c.wake:
	default:
		t.Error("marking did not wake the loop")
	}
}

func TestLeaseName(t *testing.T) {
	for in, want := range map[string]string{
		"rauta.io/gateway-controller": "rauta.io-gateway-controller",
		"Example.COM/x_y":             "example.com-x-y",
		"/..//":                       "rauta",
		"":                            "rauta",
		strings.Repeat("a", 300):      strings.Repeat("a", 253),
	} {
		if got := leaseName(in); got != want {
			t.Errorf("leaseName(%q) = %q, want %q", in, got, want)
		}
	}
}

// dnsSubdomainish is what leaseName must produce: lower-case alphanumerics,
// '-' and '.', starting and ending with an alphanumeric, at most 253 long.
var dnsSubdomainish = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

func FuzzLeaseName(f *testing.F) {
	for _, s := range []string{"rauta.io/gateway-controller", "", "-", "A/B", "ü.example/ctl"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := leaseName(s); !dnsSubdomainish.MatchString(got) {
			t.Fatalf("leaseName(%q) = %q: not a valid object name", s, got)
		}
	})
}

func TestReferences(t *testing.T) {
	const ours = gatewayv1.GatewayController("rauta.io/gateway-controller")
	tlsRefs := func(refs ...gatewayv1.SecretObjectReference) *gatewayv1.ListenerTLSConfig {
		return &gatewayv1.ListenerTLSConfig{CertificateRefs: refs}
	}
	res := &gatewayapi.Resources{
		GatewayClasses: []gatewayv1.GatewayClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: ours}},
			{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "example.com/x"}},
		},
		Gateways: []gatewayv1.Gateway{
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "gw-ns", Name: "gw"},
				Spec: gatewayv1.GatewaySpec{GatewayClassName: "mine", Listeners: []gatewayv1.Listener{
					{Name: "plain"},
					{Name: "tls", TLS: tlsRefs(
						gatewayv1.SecretObjectReference{Name: "local"},
						gatewayv1.SecretObjectReference{Name: "remote", Namespace: ptr(gatewayv1.Namespace("certs"))},
						gatewayv1.SecretObjectReference{Name: "core-explicit", Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Secret"))},
						gatewayv1.SecretObjectReference{Name: "not-a-secret", Group: ptr(gatewayv1.Group("example.com")), Kind: ptr(gatewayv1.Kind("Vault"))},
					)},
				}},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "gw-ns", Name: "mtls"},
				Spec: gatewayv1.GatewaySpec{GatewayClassName: "mine", TLS: &gatewayv1.GatewayTLSConfig{
					Frontend: &gatewayv1.FrontendTLSConfig{
						Default: gatewayv1.TLSConfig{Validation: &gatewayv1.FrontendTLSValidation{CACertificateRefs: []gatewayv1.ObjectReference{
							{Kind: "ConfigMap", Name: "client-ca"},
							{Kind: "Service", Name: "not-a-configmap"},
						}}},
						PerPort: []gatewayv1.TLSPortConfig{{Port: 8443, TLS: gatewayv1.TLSConfig{Validation: &gatewayv1.FrontendTLSValidation{CACertificateRefs: []gatewayv1.ObjectReference{
							{Kind: "ConfigMap", Name: "port-ca", Namespace: ptr(gatewayv1.Namespace("pki"))},
						}}}}},
					},
					Backend: &gatewayv1.GatewayBackendTLS{ClientCertificateRef: &gatewayv1.SecretObjectReference{Name: "client-cert", Namespace: ptr(gatewayv1.Namespace("pki"))}},
				}},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "gw-ns", Name: "foreign-mtls"},
				Spec: gatewayv1.GatewaySpec{GatewayClassName: "theirs", TLS: &gatewayv1.GatewayTLSConfig{
					Backend: &gatewayv1.GatewayBackendTLS{ClientCertificateRef: &gatewayv1.SecretObjectReference{Name: "foreign-client-cert"}},
				}},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "gw-ns", Name: "foreign"},
				Spec: gatewayv1.GatewaySpec{GatewayClassName: "theirs", Listeners: []gatewayv1.Listener{
					{Name: "tls", TLS: tlsRefs(gatewayv1.SecretObjectReference{Name: "foreign-cert"})},
				}},
			},
		},
		ListenerSets: []gatewayv1.ListenerSet{
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ls-ns", Name: "ls"},
				Spec: gatewayv1.ListenerSetSpec{
					ParentRef: gatewayv1.ParentGatewayReference{Name: "gw", Namespace: ptr(gatewayv1.Namespace("gw-ns"))},
					Listeners: []gatewayv1.ListenerEntry{{Name: "tls", TLS: tlsRefs(gatewayv1.SecretObjectReference{Name: "ls-cert"})}},
				},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "gw-ns", Name: "foreign-ls"},
				Spec: gatewayv1.ListenerSetSpec{
					ParentRef: gatewayv1.ParentGatewayReference{Name: "foreign"},
					Listeners: []gatewayv1.ListenerEntry{{Name: "tls", TLS: tlsRefs(gatewayv1.SecretObjectReference{Name: "foreign-ls-cert"})}},
				},
			},
		},
		HTTPRoutes: []gatewayv1.HTTPRoute{
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "to-gw"},
				Spec: gatewayv1.HTTPRouteSpec{
					CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw", Namespace: ptr(gatewayv1.Namespace("gw-ns"))}}},
					Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("app", "web", "app")}}},
				},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ls-ns", Name: "to-ls"},
				Spec: gatewayv1.HTTPRouteSpec{
					CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "ls", Kind: ptr(gatewayv1.Kind("ListenerSet")), Group: ptr(gatewayv1.Group(gatewayv1.GroupName))}}},
					Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("app", "api", "ls-ns")}}},
				},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "to-foreign"},
				Spec: gatewayv1.HTTPRouteSpec{
					CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "foreign", Namespace: ptr(gatewayv1.Namespace("gw-ns"))}}},
					Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef("app", "elsewhere", "app")}}},
				},
			},
		},
		TLSRoutes: []gatewayv1.TLSRoute{
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "tls-to-gw"},
				Spec: gatewayv1.TLSRouteSpec{
					CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw", Namespace: ptr(gatewayv1.Namespace("gw-ns"))}}},
					Rules:           []gatewayv1.TLSRouteRule{{BackendRefs: []gatewayv1.BackendRef{backendRef("app", "stream", "app").BackendRef}}},
				},
			},
			{
				ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "tls-to-foreign"},
				Spec: gatewayv1.TLSRouteSpec{
					CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "foreign", Namespace: ptr(gatewayv1.Namespace("gw-ns"))}}},
					Rules:           []gatewayv1.TLSRouteRule{{BackendRefs: []gatewayv1.BackendRef{backendRef("app", "foreign-stream", "app").BackendRef}}},
				},
			},
		},
		BackendTLSPolicies: []gatewayv1.BackendTLSPolicy{
			policy("app", "stream-tls", "stream", "stream-ca", "ConfigMap"),
			policy("app", "foreign-stream-tls", "foreign-stream", "foreign-stream-ca", "ConfigMap"),
			policy("app", "web-tls", "web", "ca", "ConfigMap"),
			policy("app", "api-tls", "api", "api-ca", "ConfigMap"),
			policy("app", "secret-ca", "web", "nope", "Secret"),
			policy("app", "elsewhere-tls", "elsewhere", "foreign-ca", "ConfigMap"),
		},
	}
	got := references(ours, res)
	want := refSet{
		{refSecret, "gw-ns", "local"}:         {},
		{refSecret, "certs", "remote"}:        {},
		{refSecret, "gw-ns", "core-explicit"}: {},
		{refSecret, "ls-ns", "ls-cert"}:       {},
		{refConfigMap, "app", "ca"}:           {},
		{refConfigMap, "gw-ns", "client-ca"}:  {},
		{refConfigMap, "pki", "port-ca"}:      {},
		{refSecret, "pki", "client-cert"}:     {},
		{refConfigMap, "app", "api-ca"}:       {},
		{refConfigMap, "app", "stream-ca"}:    {},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(refKey{})); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func policy(ns, name, svc, ca, caKind string) gatewayv1.BackendTLSPolicy {
	return gatewayv1.BackendTLSPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: gatewayv1.BackendTLSPolicySpec{
			TargetRefs: []gatewayv1.LocalPolicyTargetReferenceWithSectionName{{LocalPolicyTargetReference: gatewayv1.LocalPolicyTargetReference{Kind: "Service", Name: gatewayv1.ObjectName(svc)}}},
			Validation: gatewayv1.BackendTLSPolicyValidation{CACertificateRefs: []gatewayv1.LocalObjectReference{{Kind: gatewayv1.Kind(caKind), Name: gatewayv1.ObjectName(ca)}}},
		},
	}
}

func TestTrim(t *testing.T) {
	s := trimSecret(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "s", ResourceVersion: "7",
			Annotations: map[string]string{lastAppliedAnnotation: "{...}"}, Labels: map[string]string{"a": "b"}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("C"), "tls.key": []byte("K"), "other": []byte("big")},
	})
	want := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "s", ResourceVersion: "7"},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("C"), "tls.key": []byte("K")}}
	if d := cmp.Diff(want, s); d != "" {
		t.Errorf("trimSecret (-want +got)\n%s", d)
	}
	c := trimConfigMap(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "c", ResourceVersion: "8"},
		Data:       map[string]string{"ca.crt": "PEM", "app.yaml": "x"},
		BinaryData: map[string][]byte{"blob": []byte("x")},
	})
	wantC := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "c", ResourceVersion: "8"},
		Data: map[string]string{"ca.crt": "PEM"}}
	if d := cmp.Diff(wantC, c); d != "" {
		t.Errorf("trimConfigMap (-want +got)\n%s", d)
	}
}

func TestTransforms(t *testing.T) {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{
		Name:          "gw",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		Annotations:   map[string]string{lastAppliedAnnotation: "{}", "keep": "me"},
		Labels:        map[string]string{"l": "v"},
	}}
	orig := gw.Annotations
	out, err := stripObject(gw)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*gatewayv1.Gateway).ObjectMeta
	want := metav1.ObjectMeta{Name: "gw", Annotations: map[string]string{"keep": "me"}, Labels: map[string]string{"l": "v"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stripObject (-want +got)\n%s", d)
	}
	if _, ok := orig[lastAppliedAnnotation]; !ok {
		t.Error("stripObject modified the annotation map in place")
	}
	pom := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "n", Name: "s", ResourceVersion: "3",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}, Labels: map[string]string{"a": "b"},
		Annotations: map[string]string{"c": "d"}, OwnerReferences: []metav1.OwnerReference{{Name: "o"}}, Finalizers: []string{"f"},
	}}
	out, _ = stripMetadata(pom)
	if d := cmp.Diff(metav1.ObjectMeta{Namespace: "n", Name: "s", ResourceVersion: "3"}, out.(*metav1.PartialObjectMetadata).ObjectMeta); d != "" {
		t.Errorf("stripMetadata (-want +got)\n%s", d)
	}
	if v, err := stripObject("not an object"); v != "not an object" || err != nil {
		t.Errorf("stripObject(string) = %v, %v", v, err)
	}
}

func TestSpecChanged(t *testing.T) {
	mk := func(rv string, gen int64, labels map[string]string) *gatewayv1.HTTPRoute {
		return &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv, Generation: gen, Labels: labels}}
	}
	del := mk("3", 1, nil)
	del.DeletionTimestamp = &t0
	tests := []struct {
		name string
		o, n any
		want bool
	}{
		{"resync", mk("1", 1, nil), mk("1", 1, nil), false},
		{"status only", mk("1", 1, nil), mk("2", 1, nil), false},
		{"spec", mk("1", 1, nil), mk("2", 2, nil), true},
		{"labels", mk("1", 1, nil), mk("2", 1, map[string]string{"a": "b"}), true},
		{"deletion", mk("1", 1, nil), del, true},
		{"not objects", "a", "b", true},
	}
	for _, tc := range tests {
		if got := specChanged(tc.o, tc.n); got != tc.want {
			t.Errorf("%s: specChanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIndexBackends(t *testing.T) {
	c := &Controller{current: proxy.Config{Backends: []proxy.Backend{
		{Spec: upstream.Spec{Name: "ns/web:80"}}, {Spec: upstream.Spec{Name: "ns/web:8443"}}, {Spec: upstream.Spec{Name: "other/api:9000"}}, {Spec: upstream.Spec{Name: "odd"}}, {Spec: upstream.Spec{Name: "ns/bad:port"}},
	}}}
	c.indexBackends()
	want := map[serviceKey][]svcBackend{
		{"ns", "web"}:    {{"ns/web:80", 80, 0}, {"ns/web:8443", 8443, 1}},
		{"other", "api"}: {{"other/api:9000", 9000, 2}},
	}
	if d := cmp.Diff(want, c.bySvc, cmp.AllowUnexported(serviceKey{}, svcBackend{})); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

func TestFingerprint(t *testing.T) {
	seed := maphash.MakeSeed()
	a := &corev1.Service{ObjectMeta: metav1.ObjectMeta{UID: "u1", ResourceVersion: "1"}}
	b := &corev1.Service{ObjectMeta: metav1.ObjectMeta{UID: "u2", ResourceVersion: "5"}}
	var f1, f2, f3 fingerprint
	collect([]*corev1.Service{a, b}, 7, seed, &f1)
	collect([]*corev1.Service{b, a}, 7, seed, &f2)
	if f1 != f2 {
		t.Error("fingerprint depends on order")
	}
	b2 := b.DeepCopy()
	b2.ResourceVersion = "6"
	collect([]*corev1.Service{a, b2}, 7, seed, &f3)
	if f1 == f3 {
		t.Error("fingerprint did not change with a resourceVersion")
	}
	var f4 fingerprint
	collect([]*corev1.Service{a, b}, 8, seed, &f4)
	if f1 == f4 {
		t.Error("fingerprint ignores the kind")
	}
}

func BenchmarkMergeRouteParents(b *testing.B) {
	const ours = gatewayv1.GatewayController("rauta.io/gateway-controller")
	var stored, desired []gatewayv1.RouteParentStatus
	for _, gw := range []string{"a", "b", "c", "d"} {
		stored = append(stored, parent(gw, "", ours, cond("Accepted", "True", "Accepted", "", 1, t0), cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, t0)))
		desired = append(desired, parent(gw, "", ours, cond("Accepted", "True", "Accepted", "", 1, metav1.Time{}), cond("ResolvedRefs", "True", "ResolvedRefs", "", 1, metav1.Time{})))
	}
	stored = append(stored, parent("x", "", "example.com/other", cond("Accepted", "True", "Accepted", "", 1, t0)))
	b.ReportAllocs()
	for b.Loop() {
		routeParentEntries.merge(stored, desired, ours, t1)
	}
}

func BenchmarkFingerprint10k(b *testing.B) {
	seed := maphash.MakeSeed()
	routes := make([]*gatewayv1.HTTPRoute, 10000)
	for i := range routes {
		routes[i] = &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{UID: "0b1c3f2e-1111-2222-3333-444455556666", ResourceVersion: "123456"}}
	}
	b.ReportAllocs()
	for b.Loop() {
		var fp fingerprint
		collect(routes, 3, seed, &fp)
	}
}
