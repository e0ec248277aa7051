package filesource

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayxv1alpha1 "sigs.k8s.io/gateway-api/apisx/v1alpha1"

	rautav1alpha1 "github.com/rauta/rauta/apis/v1alpha1"
)

const policyObjects = `apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata:
  name: echo
  namespace: apps
spec:
  targetRefs:
  - {group: "", kind: Service, name: echo, sectionName: http}
  loadBalancer:
    type: Maglev
    hashKey: {type: Header, name: X-User}
  healthCheck:
    type: HTTP
    http: {path: /healthz, expectedStatuses: [{start: 200, end: 204}]}
    interval: 2s
    unhealthyThreshold: 2
  circuitBreaker: {errorRatePercent: 25, count5xx: true}
  connections: {maxConnectionsPerEndpoint: 10, maxLifetime: 5m}
  retry: {baseInterval: 10ms, maxInterval: 1s}
---
apiVersion: gateway.rauta.io/v1alpha1
kind: TrafficPolicy
metadata:
  name: limit
spec:
  targetRefs:
  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: web, sectionName: api}
  rateLimit:
    requests: 5
    unit: Second
    burst: 5
    key: {type: ClientAddress}
  requestBody: {maxSize: 10Mi}
  timeouts: {read: 30s}
---
apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XBackendTrafficPolicy
metadata:
  name: budget
  namespace: apps
spec:
  targetRefs:
  - {group: "", kind: Service, name: echo}
  retryConstraint:
    budget: {percent: 20, interval: 10s}
    minRetryRate: {count: 3, interval: 1s}
`

// TestLoadPolicies reads one valid object of each policy kind.
func TestLoadPolicies(t *testing.T) {
	dir := writeFiles(t, map[string]string{"policies.yaml": policyObjects})
	res, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(v int32) *int32 { return &v }
	dur := func(s string) *gatewayv1.Duration { d := gatewayv1.Duration(s); return &d }
	section := gatewayv1.SectionName("http")
	wantBP := []rautav1alpha1.BackendPolicy{{
		TypeMeta:   metav1.TypeMeta{APIVersion: "gateway.rauta.io/v1alpha1", Kind: "BackendPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "apps", Generation: 1},
		Spec: rautav1alpha1.BackendPolicySpec{
			TargetRefs: []rautav1alpha1.PolicyTargetReference{{
				LocalPolicyTargetReference: gatewayv1.LocalPolicyTargetReference{Group: "", Kind: "Service", Name: "echo"},
				SectionName:                &section,
			}},
			LoadBalancer: &rautav1alpha1.LoadBalancer{Type: rautav1alpha1.Maglev, HashKey: &rautav1alpha1.HashKey{Type: rautav1alpha1.Header, Name: "X-User"}},
			HealthCheck: &rautav1alpha1.HealthCheck{
				Type:               rautav1alpha1.HealthCheckHTTP,
				HTTP:               &rautav1alpha1.HTTPHealthCheck{Path: "/healthz", ExpectedStatuses: []rautav1alpha1.StatusRange{{Start: 200, End: ptr(204)}}},
				Interval:           dur("2s"),
				UnhealthyThreshold: ptr(2),
			},
			CircuitBreaker: &rautav1alpha1.CircuitBreaker{ErrorRatePercent: ptr(25), Count5xx: new(true)},
			Connections:    &rautav1alpha1.ConnectionLimits{MaxConnectionsPerEndpoint: ptr(10), MaxLifetime: dur("5m")},
			Retry:          &rautav1alpha1.RetryBackoff{BaseInterval: dur("10ms"), MaxInterval: dur("1s")},
		},
	}}
	if diff := cmp.Diff(wantBP, res.BackendPolicies); diff != "" {
		t.Errorf("BackendPolicies (-want +got):\n%s", diff)
	}

	if len(res.TrafficPolicies) != 1 {
		t.Fatalf("got %d TrafficPolicies, want 1", len(res.TrafficPolicies))
	}
	tp := res.TrafficPolicies[0]
	if tp.Namespace != "default" || tp.Name != "limit" || tp.Generation != 1 {
		t.Errorf("TrafficPolicy metadata: %+v", tp.ObjectMeta)
	}
	wantRL := &rautav1alpha1.RateLimit{Requests: 5, Unit: rautav1alpha1.Second, Burst: ptr(5), Key: &rautav1alpha1.RateLimitKey{Type: rautav1alpha1.RateLimitByClientAddress}}
	if diff := cmp.Diff(wantRL, tp.Spec.RateLimit); diff != "" {
		t.Errorf("TrafficPolicy rateLimit (-want +got):\n%s", diff)
	}
	want10Mi := resource.MustParse("10Mi")
	if got, want := tp.Spec.RequestBody.MaxSize.Value(), want10Mi.Value(); got != want {
		t.Errorf("requestBody.maxSize = %d bytes, want %d", got, want)
	}
	if tp.Spec.Timeouts == nil || tp.Spec.Timeouts.Read == nil || *tp.Spec.Timeouts.Read != "30s" {
		t.Errorf("timeouts = %+v, want read 30s", tp.Spec.Timeouts)
	}
	if len(tp.Spec.TargetRefs) != 1 || tp.Spec.TargetRefs[0].Kind != "HTTPRoute" || *tp.Spec.TargetRefs[0].SectionName != "api" {
		t.Errorf("targetRefs = %+v", tp.Spec.TargetRefs)
	}

	if len(res.XBackendTrafficPolicies) != 1 {
		t.Fatalf("got %d XBackendTrafficPolicies, want 1", len(res.XBackendTrafficPolicies))
	}
	x := res.XBackendTrafficPolicies[0]
	wantRC := &gatewayxv1alpha1.RetryConstraint{
		Budget:       &gatewayxv1alpha1.BudgetDetails{Percent: new(20), Interval: dur("10s")},
		MinRetryRate: &gatewayxv1alpha1.RequestRate{Count: new(3), Interval: dur("1s")},
	}
	if x.Namespace != "apps" || x.Name != "budget" {
		t.Errorf("XBackendTrafficPolicy metadata: %+v", x.ObjectMeta)
	}
	if diff := cmp.Diff(wantRC, x.Spec.RetryConstraint); diff != "" {
		t.Errorf("retryConstraint (-want +got):\n%s", diff)
	}
}

// TestLoadPolicyErrors shows that the policy kinds are decoded as
// strictly as the others: an unknown field or a value of the wrong type is
// reported with the file, document, line, object and field path.
func TestLoadPolicyErrors(t *testing.T) {
	const bp = "apiVersion: gateway.rauta.io/v1alpha1\nkind: BackendPolicy\nmetadata: {name: echo, namespace: apps}\n"
	const tp = "apiVersion: gateway.rauta.io/v1alpha1\nkind: TrafficPolicy\nmetadata: {name: limit}\n"
	const xp = "apiVersion: gateway.networking.x-k8s.io/v1alpha1\nkind: XBackendTrafficPolicy\nmetadata: {name: budget}\n"
	content := "# policies\n" + bp + `spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  healthCheck:
    type: HTTP
    http: {paht: /healthz}
---
` + tp + `spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  rateLimit: {requests: five, unit: Second}
---
` + xp + `spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  retryConstraint: {budget: {percent: 20, intervall: 10s}}
---
apiVersion: v1
kind: List
items:
- ` + strings.ReplaceAll(strings.TrimSuffix(strings.Replace(bp, "echo", "echo2", 1), "\n"), "\n", "\n  ") + `
  spec:
    targetRefs: [{group: "", kind: Service, name: echo}]
    circuitBreaker: {count5xx: "yes"}
`
	dir := writeFiles(t, map[string]string{"policies.yaml": content})
	res, err := Load(dir)
	if err == nil {
		t.Fatalf("Load succeeded: %+v", res)
	}
	path := filepath.Join(dir, "policies.yaml")
	want := []Error{
		{File: path, Document: 1, Line: 2, Item: -1, Object: "BackendPolicy apps/echo", Field: "spec.healthCheck.http.paht", Err: ErrUnknownField},
		{File: path, Document: 2, Line: 11, Item: -1, Object: "TrafficPolicy default/limit", Field: "spec.rateLimit.requests", Err: ErrInvalidValue},
		{File: path, Document: 3, Line: 18, Item: -1, Object: "XBackendTrafficPolicy default/budget", Field: "spec.retryConstraint.budget.intervall", Err: ErrUnknownField},
		{File: path, Document: 4, Line: 25, Item: 0, Object: "BackendPolicy apps/echo2", Field: "spec.circuitBreaker.count5xx", Err: ErrInvalidValue},
	}
	var got []Error
	for _, e := range flatten(err) {
		var fe *Error
		if !errors.As(e, &fe) {
			t.Fatalf("error %v is not an *Error", e)
		}
		got = append(got, *fe)
	}
	opt := cmp.Comparer(func(a, b error) bool { return errors.Is(a, b) || errors.Is(b, a) })
	if diff := cmp.Diff(want, got, opt); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nfull error:\n%v", diff, err)
	}
	for _, msg := range []string{
		path + ": document 1 (line 2): BackendPolicy apps/echo: spec.healthCheck.http.paht: unknown field",
		path + ": document 2 (line 11): TrafficPolicy default/limit: spec.rateLimit.requests: invalid value: want int32, got a JSON string",
		path + ": document 3 (line 18): XBackendTrafficPolicy default/budget: spec.retryConstraint.budget.intervall: unknown field",
		path + ": document 4 (line 25): items[0]: BackendPolicy apps/echo2: spec.circuitBreaker.count5xx: invalid value",
	} {
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("error does not contain\n  %s\ngot:\n%v", msg, err)
		}
	}
}
