package filesource

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/gatewayapi"
)

// TestSummarizePolicies shows the policy kinds summarised like the other
// objects: accepted with their ancestors, their problems, and the policies
// without status as attached to nothing served.
func TestSummarizePolicies(t *testing.T) {
	ancestor := func(name string, c ...metav1.Condition) gatewayv1.PolicyAncestorStatus {
		return gatewayv1.PolicyAncestorStatus{AncestorRef: gatewayv1.ParentReference{Name: gatewayv1.ObjectName(name)}, ControllerName: "rauta.io/gateway-controller", Conditions: c}
	}
	policy := func(ns, name string, a ...gatewayv1.PolicyAncestorStatus) gatewayapi.PolicyStatus {
		return gatewayapi.PolicyStatus{Namespace: ns, Name: name, Generation: 1, Status: gatewayv1.PolicyStatus{Ancestors: a}}
	}
	st := gatewayapi.Status{
		BackendPolicies: []gatewayapi.PolicyStatus{policy("apps", "lb", ancestor("gw", cond("Accepted", true, "Accepted", "")), ancestor("gw2", cond("Accepted", true, "Accepted", "")))},
		TrafficPolicies: []gatewayapi.PolicyStatus{
			policy("default", "old", ancestor("gw", cond("Accepted", true, "Accepted", ""))),
			policy("default", "young", ancestor("gw", cond("Accepted", false, "Conflicted", "TrafficPolicy default/old sets the same target"))),
		},
		XBackendTrafficPolicies: []gatewayapi.PolicyStatus{policy("apps", "budget", ancestor("gw", cond("Accepted", false, "Invalid", "spec.retryConstraint.budget.percent: must be at most 100")))},
	}
	res := &gatewayapi.Resources{
		BackendPolicies: []rautav1alpha1.BackendPolicy{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "lb"}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "unused"}},
		},
		TrafficPolicies: []rautav1alpha1.TrafficPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "old"}}, {ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "young"}}},
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
		"XBackendTrafficPolicy apps/budget: ancestor apps/gw: Accepted=False Invalid: spec.retryConstraint.budget.percent: must be at most 100",
		"BackendPolicy apps/lb: accepted for apps/gw, apps/gw2",
		"TrafficPolicy default/old: accepted for default/gw",
		"TrafficPolicy default/young: ancestor default/gw: Accepted=False Conflicted: TrafficPolicy default/old sets the same target",
		"BackendPolicy apps/unused: ignored: no target is served through a Gateway handled by this controller",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize (-want +got):\n%s", diff)
	}
	if bad != 2 {
		t.Errorf("%d objects not OK, want 2", bad)
	}

	// Their conditions are stamped like the others'.
	t1 := metav1.NewTime(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	prev := stampConditions(&st, nil, t1)
	if got := st.TrafficPolicies[1].Status.Ancestors[0].Conditions[0].LastTransitionTime; !got.Equal(&t1) {
		t.Errorf("TrafficPolicy condition stamped %v, want %v", got, t1)
	}
	if _, ok := prev[conditionKey{"TrafficPolicy default/young ancestor default/gw", "Accepted"}]; !ok {
		t.Errorf("TrafficPolicy condition not remembered: %v", prev)
	}
}

// TestServePolicyStatus shows that the admin endpoint /debug/status of a
// file gateway serves the status of the policies the translator computed,
// as `rauta validate` prints it (both come from Summarize).
func TestServePolicyStatus(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	port := freePort(t)
	const policies = `---
apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: lb}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  loadBalancer: {type: Maglev, hashKey: {type: Header, name: X-User}}
---
apiVersion: gateway.rauta.io/v1alpha1
kind: TrafficPolicy
metadata: {name: limit}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: web}]
  rateLimit: {requests: 100, unit: Second}
---
apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XBackendTrafficPolicy
metadata: {name: budget}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  retryConstraint: {budget: {percent: 20}}
`
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayYAML(port, "/", backend.Listener.Addr().String()) + policies})
	res, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ObjectStatus{}
	for _, o := range Summarize(res, gatewayapi.Translate(res, gatewayapi.Options{}).Status) {
		switch o.Kind {
		case "BackendPolicy", "TrafficPolicy", "XBackendTrafficPolicy":
			want[o.Kind+" "+o.Namespace+"/"+o.Name] = o
		}
	}
	if len(want) != 3 {
		t.Fatalf("Summarize gives %d policies, want 3: %v", len(want), want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan net.Addr, 1)
	reported := make(chan Report, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, dir, "127.0.0.1:0", func(a net.Addr) { started <- a }, func(r Report) { reported <- r })
	}()
	admin := "http://" + (<-started).String()
	<-reported
	resp, err := http.Get(admin + "/debug/status?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var report struct {
		Objects []struct {
			Kind      string          `json:"kind"`
			Namespace string          `json:"namespace"`
			Name      string          `json:"name"`
			Problems  []string        `json:"problems"`
			Ignored   string          `json:"ignored"`
			Summary   string          `json:"summary"`
			Status    json.RawMessage `json:"status"`
		} `json:"objects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, o := range report.Objects {
		w, ok := want[o.Kind+" "+o.Namespace+"/"+o.Name]
		if !ok {
			continue
		}
		seen++
		got := ObjectStatus{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Problems: o.Problems, Ignored: o.Ignored, Summary: o.Summary}
		w.Status = nil
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("/debug/status of %s %s (-want +got):\n%s", o.Kind, o.Name, diff)
		}
		if (len(o.Status) > 0) != (w.Ignored == "") {
			t.Errorf("/debug/status of %s %s: status %s, ignored %q", o.Kind, o.Name, o.Status, w.Ignored)
		}
	}
	if seen != 3 {
		t.Errorf("/debug/status shows %d of the 3 policies: %+v", seen, report.Objects)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
