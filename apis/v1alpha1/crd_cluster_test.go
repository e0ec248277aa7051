package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/rauta/rauta/apis/v1alpha1"
	"github.com/rauta/rauta/internal/testcluster"
)

// installCRDs applies deploy/crds to the cluster and waits until both
// CRDs are Established and the group is served. The API server compiles
// the CEL rules here and refuses a CRD whose rules do not compile or are
// too expensive.
func installCRDs(t *testing.T, ctx context.Context, c *testcluster.Cluster) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", crdDir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(ctx, b, testcluster.ApplyOptions{FieldManager: "crd-test"}); err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
	}
	dyn := dynamic.NewForConfigOrDie(c.Config)
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	dc := discovery.NewDiscoveryClientForConfigOrDie(c.Config)
	for _, gvr := range []schema.GroupVersionResource{v1alpha1.BackendPolicyResource, v1alpha1.TrafficPolicyResource} {
		name := gvr.Resource + "." + gvr.Group
		for {
			u, err := dyn.Resource(crds).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			var established bool
			for _, c := range conds {
				m, _ := c.(map[string]any)
				established = established || m["type"] == "Established" && m["status"] == "True"
			}
			if established {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("CRD %s not Established: %v", name, conds)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for {
		rl, err := dc.ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
		if err == nil && len(rl.APIResources) >= 4 { // two resources and their status
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not served: %v", v1alpha1.GroupVersion, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// object builds a policy of a kind from the YAML of its spec.
func object(t *testing.T, kind, name, ns, spec string) *unstructured.Unstructured {
	t.Helper()
	var s map[string]any
	if err := yaml.Unmarshal([]byte(spec), &s); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       kind,
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       s,
	}}
}

// resourceOf returns the resource of a kind of the group.
func resourceOf(kind string) schema.GroupVersionResource {
	if kind == "TrafficPolicy" {
		return v1alpha1.TrafficPolicyResource
	}
	return v1alpha1.BackendPolicyResource
}

// TestCRDsOnAPIServer installs the CRDs on a real API server and checks
// what it admits: valid policies of both kinds, covering every field, are
// stored and read back whole with the schema's defaults applied, and
// their status subresource works; invalid ones are refused with the
// message of the rule they break, naming the field.
func TestCRDsOnAPIServer(t *testing.T) {
	c := testcluster.ForTest(t, testcluster.Options{Channel: testcluster.NoCRDs})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	installCRDs(t, ctx, c)
	const ns = "crd-test"
	if _, err := c.Apply(ctx, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"), testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(c.Config)

	t.Run("valid", func(t *testing.T) {
		// Fields set by the cases marked every, and the spec type, by kind.
		covered := map[string]map[string]bool{}
		specType := map[string]reflect.Type{}
		for i, tc := range []struct {
			name, kind, spec string
			// want is the spec read back: the spec sent with the
			// defaults the schema adds.
			want string
			// every says the case counts toward covering every field
			// of its kind's spec (in some element of each list): each
			// field must be set by one such case, the members of a
			// union (a cookie or a header session) by different ones.
			every bool
		}{{
			name:  "BackendPolicy, every field",
			kind:  "BackendPolicy",
			every: true,
			spec: `
targetRefs:
- {group: "", kind: Service, name: web}
- {group: "", kind: Service, name: web, sectionName: http}
- {group: "", kind: Service, name: api}
loadBalancer:
  type: Maglev
  hashKey: {type: Header, name: X-User}
healthCheck:
  type: HTTP
  http:
    path: /healthz?full=1
    host: web.example
    expectedStatuses: [{start: 200}, {start: 300, end: 304}]
  interval: 10s
  timeout: 2s
  healthyThreshold: 3
  unhealthyThreshold: 5
circuitBreaker:
  disabled: false
  errorRatePercent: 30
  window: 1m
  minRequests: 50
  openDuration: 1m30s
  halfOpenRequests: 2
  count5xx: true
connections:
  maxConnectionsPerEndpoint: 100
  idleTimeout: 90s
  maxRequestsPerConnection: 1000
  maxLifetime: 1h
retry: {baseInterval: 50ms, maxInterval: 1s}
sessionPersistence:
  absoluteTimeout: 12h
  type: Cookie
  cookie: {name: shop-session, path: /shop, lifetimeType: Permanent}
  idleTimeout: 30m`,
		}, {
			name:  "BackendPolicy, every field, a header session",
			kind:  "BackendPolicy",
			every: true,
			spec: `
targetRefs: [{group: "", kind: Service, name: web}]
sessionPersistence: {type: Header, header: {name: X-Shop-Session}, absoluteTimeout: 1h, idleTimeout: 5m}`,
		}, {
			name: "BackendPolicy, defaults",
			kind: "BackendPolicy",
			spec: `
targetRefs: [{group: "", kind: Service, name: web}]
loadBalancer: {}
sessionPersistence: {cookie: {}}`,
			want: `
targetRefs: [{group: "", kind: Service, name: web}]
loadBalancer: {type: RoundRobin}
sessionPersistence: {type: Cookie, cookie: {path: /, lifetimeType: Session}}`,
		}, {
			name: "BackendPolicy, Maglev on the client address, TCP probe, only a timeout",
			kind: "BackendPolicy",
			spec: `
targetRefs: [{group: "", kind: Service, name: web}]
loadBalancer: {type: Maglev, hashKey: {type: ClientAddress}}
healthCheck: {type: TCP, timeout: 5s}
retry: {maxInterval: 25ms}
sessionPersistence: {type: Header, header: {name: X-Session}}`,
		}, {
			name: "BackendPolicy, query parameter key, empty settings",
			kind: "BackendPolicy",
			spec: `
targetRefs: [{group: "", kind: Service, name: web}]
loadBalancer: {type: Maglev, hashKey: {type: QueryParameter, name: user}}
circuitBreaker: {}
connections: {}
retry: {}`,
			want: `
targetRefs: [{group: "", kind: Service, name: web}]
loadBalancer: {type: Maglev, hashKey: {type: QueryParameter, name: user}}
circuitBreaker: {}
connections: {}
retry: {}`,
		}, {
			name: "BackendPolicy, cookie key",
			kind: "BackendPolicy",
			spec: `
targetRefs: [{group: "", kind: Service, name: web, sectionName: http}]
loadBalancer: {type: Maglev, hashKey: {type: Cookie, name: user}}`,
		}, {
			name:  "TrafficPolicy, every field",
			kind:  "TrafficPolicy",
			every: true,
			spec: `
targetRefs:
- {group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: https}
- {group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}
- {group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop, sectionName: checkout}
rateLimit:
  requests: 100
  unit: Second
  burst: 200
  key: {type: Header, name: X-Api-Key}
requestBody: {maxSize: 10Mi}
timeouts: {read: 30s, write: 1m}`,
		}, {
			name: "TrafficPolicy, per client address, body size as a number",
			kind: "TrafficPolicy",
			spec: `
targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
rateLimit: {requests: 1000, unit: Hour, key: {type: ClientAddress}}
requestBody: {maxSize: 1048576}`,
		}, {
			name: "TrafficPolicy, timeouts only",
			kind: "TrafficPolicy",
			spec: `
targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]
rateLimit: {requests: 1, unit: Minute, burst: 1}
timeouts: {read: 500ms}`,
		}} {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("valid-%d", i)
				created, err := dyn.Resource(resourceOf(tc.kind)).Namespace(ns).Create(ctx, object(t, tc.kind, name, ns, tc.spec), metav1.CreateOptions{})
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				read, err := dyn.Resource(resourceOf(tc.kind)).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(created.Object["spec"], read.Object["spec"]); d != "" {
					t.Errorf("read back differs from the create's answer:\n%s", d)
				}
				want := tc.want
				if want == "" {
					want = tc.spec
				}
				var wantSpec map[string]any
				if err := yaml.Unmarshal([]byte(want), &wantSpec); err != nil {
					t.Fatal(err)
				}
				// Compare as JSON values (numbers are float64 on one side,
				// int64 on the other otherwise).
				got, _ := yaml.Marshal(read.Object["spec"])
				var gotSpec map[string]any
				if err := yaml.Unmarshal(got, &gotSpec); err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(wantSpec, gotSpec); d != "" {
					t.Errorf("spec read back (-want +got): a field was pruned or a default is missing:\n%s", d)
				}
				// The stored object decodes strictly into the Go type.
				var typed any = &v1alpha1.BackendPolicy{}
				if tc.kind == "TrafficPolicy" {
					typed = &v1alpha1.TrafficPolicy{}
				}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(read.Object, typed, true); err != nil {
					t.Errorf("stored object does not decode into the Go type: %v", err)
				}
				if tc.every {
					spec := reflect.ValueOf(typed).Elem().FieldByName("Spec")
					if covered[tc.kind] == nil {
						covered[tc.kind] = map[string]bool{}
					}
					setFields(spec, "spec", covered[tc.kind])
					specType[tc.kind] = spec.Type()
				}
			})
		}
		for _, kind := range []string{"BackendPolicy", "TrafficPolicy"} {
			if specType[kind] == nil {
				t.Errorf("%s: no case covering every field passed", kind)
				continue
			}
			for _, p := range fieldPaths(specType[kind], "spec") {
				if !covered[kind][p] {
					t.Errorf("%s: %s is not set by any case marked every", kind, p)
				}
			}
		}
	})

	t.Run("status subresource", func(t *testing.T) {
		ri := dyn.Resource(v1alpha1.TrafficPolicyResource).Namespace(ns)
		p := object(t, "TrafficPolicy", "with-status", ns, `{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}], timeouts: {read: 1s}}`)
		p, err := ri.Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		status := gatewayv1.PolicyStatus{Ancestors: []gatewayv1.PolicyAncestorStatus{{
			AncestorRef:    gatewayv1.ParentReference{Name: "gw"},
			ControllerName: "rauta.io/gateway-controller",
			Conditions: []metav1.Condition{{
				Type: v1alpha1.PolicyConditionAccepted, Status: metav1.ConditionTrue, Reason: v1alpha1.PolicyReasonAccepted,
				Message: "in effect", LastTransitionTime: metav1.Now(), ObservedGeneration: p.GetGeneration(),
			}},
		}}}
		st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&status)
		if err != nil {
			t.Fatal(err)
		}
		p.Object["status"] = st
		// A change of spec through the status subresource is ignored.
		p.Object["spec"].(map[string]any)["timeouts"] = map[string]any{"read": "9s"}
		if _, err := ri.UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		read, err := ri.Get(ctx, "with-status", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got v1alpha1.TrafficPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(read.Object, &got, true); err != nil {
			t.Fatal(err)
		}
		if len(got.Status.Ancestors) != 1 || got.Status.Ancestors[0].Conditions[0].Reason != v1alpha1.PolicyReasonAccepted {
			t.Errorf("status %+v", got.Status)
		}
		if r := got.Spec.Timeouts.Read; r == nil || *r != "1s" {
			t.Errorf("spec changed through the status subresource: read %v", r)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		backend := `targetRefs: [{group: "", kind: Service, name: web}]` + "\n"
		traffic := `targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]` + "\n"
		var many strings.Builder
		many.WriteString("targetRefs:\n")
		for i := range 17 {
			fmt.Fprintf(&many, "- {group: \"\", kind: Service, name: web-%d}\n", i)
		}
		many.WriteString("loadBalancer: {}\n")
		for i, tc := range []struct {
			name, kind, spec string
			field, msg       string // the path and the message the error must hold
		}{
			{"unknown load balancer", "BackendPolicy", backend + "loadBalancer: {type: Random}",
				"spec.loadBalancer.type", `Unsupported value: "Random"`},
			{"unknown hash key type", "BackendPolicy", backend + "loadBalancer: {type: Maglev, hashKey: {type: Body, name: x}}",
				"spec.loadBalancer.hashKey.type", `Unsupported value: "Body"`},
			{"unknown rate limit unit", "TrafficPolicy", traffic + "rateLimit: {requests: 1, unit: Day}",
				"spec.rateLimit.unit", `Unsupported value: "Day"`},
			{"threshold 0", "BackendPolicy", backend + "healthCheck: {type: TCP, unhealthyThreshold: 0}",
				"spec.healthCheck.unhealthyThreshold", "should be greater than or equal to 1"},
			{"error rate over 100%", "BackendPolicy", backend + "circuitBreaker: {errorRatePercent: 101}",
				"spec.circuitBreaker.errorRatePercent", "should be less than or equal to 100"},
			{"status 600", "BackendPolicy", backend + "healthCheck: {type: HTTP, http: {expectedStatuses: [{start: 200, end: 600}]}}",
				"spec.healthCheck.http.expectedStatuses[0].end", "should be less than or equal to 599"},
			{"status range backwards", "BackendPolicy", backend + "healthCheck: {type: HTTP, http: {expectedStatuses: [{start: 500, end: 400}]}}",
				"spec.healthCheck.http.expectedStatuses[0]", "end must not be below start"},
			{"requests 0", "TrafficPolicy", traffic + "rateLimit: {requests: 0, unit: Second}",
				"spec.rateLimit.requests", "should be greater than or equal to 1"},
			{"hashKey without Maglev", "BackendPolicy", backend + "loadBalancer: {type: RoundRobin, hashKey: {type: ClientAddress}}",
				"spec.loadBalancer", "hashKey is only allowed with type Maglev"},
			{"hashKey with the default type", "BackendPolicy", backend + "loadBalancer: {hashKey: {type: ClientAddress}}",
				"spec.loadBalancer", "hashKey is only allowed with type Maglev"},
			{"Header hash key without name", "BackendPolicy", backend + "loadBalancer: {type: Maglev, hashKey: {type: Header}}",
				"spec.loadBalancer.hashKey", "name is required for Header, Cookie and QueryParameter keys"},
			{"ClientAddress hash key with a name", "BackendPolicy", backend + "loadBalancer: {type: Maglev, hashKey: {type: ClientAddress, name: x}}",
				"spec.loadBalancer.hashKey", "not allowed for ClientAddress"},
			{"Header rate limit key without name", "TrafficPolicy", traffic + "rateLimit: {requests: 1, unit: Second, key: {type: Header}}",
				"spec.rateLimit.key", "name is required for Header keys"},
			{"rate limit header name not a token", "TrafficPolicy", traffic + "rateLimit: {requests: 1, unit: Second, key: {type: Header, name: \"a b\"}}",
				"spec.rateLimit.key.name", "should match"},
			{"timeout longer than interval", "BackendPolicy", backend + "healthCheck: {type: TCP, interval: 5s, timeout: 10s}",
				"spec.healthCheck", "timeout must not be longer than interval"},
			{"timeout longer than the default interval", "BackendPolicy", backend + "healthCheck: {type: TCP, timeout: 6s}",
				"spec.healthCheck", "timeout must not be longer than interval"},
			{"interval shorter than the default timeout", "BackendPolicy", backend + "healthCheck: {type: TCP, interval: 500ms}",
				"spec.healthCheck", "timeout must not be longer than interval"},
			{"http with a TCP probe", "BackendPolicy", backend + "healthCheck: {type: TCP, http: {path: /}}",
				"spec.healthCheck", "http is only allowed with type HTTP"},
			{"probe path without a slash", "BackendPolicy", backend + "healthCheck: {type: HTTP, http: {path: healthz}}",
				"spec.healthCheck.http.path", "should match"},
			{"maxInterval below baseInterval", "BackendPolicy", backend + "retry: {baseInterval: 1s, maxInterval: 100ms}",
				"spec.retry", "maxInterval must not be below baseInterval"},
			{"maxInterval below the default baseInterval", "BackendPolicy", backend + "retry: {maxInterval: 10ms}",
				"spec.retry", "maxInterval must not be below baseInterval"},
			{"not a duration", "BackendPolicy", backend + "connections: {idleTimeout: 5 minutes}",
				"spec.connections.idleTimeout", "should match"},
			{"Permanent cookie without absoluteTimeout", "BackendPolicy", backend + "sessionPersistence: {cookie: {lifetimeType: Permanent}}",
				"spec.sessionPersistence", "AbsoluteTimeout must be specified when cookie lifetimeType is Permanent"},
			{"cookie with a Header session", "BackendPolicy", backend + "sessionPersistence: {type: Header, header: {name: X-Session}, cookie: {lifetimeType: Session}}",
				"spec.sessionPersistence", "cookie must be nil if type is not Cookie"},
			{"Header session without a header", "BackendPolicy", backend + "sessionPersistence: {type: Header}",
				"spec.sessionPersistence", "header must be specified for Header type"},
			{"BackendPolicy with targetRefs only", "BackendPolicy", backend,
				"spec", "at least one setting besides targetRefs is required"},
			{"TrafficPolicy with targetRefs only", "TrafficPolicy", traffic,
				"spec", "at least one setting besides targetRefs is required"},
			{"no targetRefs", "TrafficPolicy", "timeouts: {read: 1s}",
				"spec.targetRefs", "Required value"},
			{"empty targetRefs", "BackendPolicy", "targetRefs: []\nloadBalancer: {}",
				"spec.targetRefs", "should have at least 1 items"},
			{"BackendPolicy targeting a Gateway", "BackendPolicy", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\nloadBalancer: {}",
				"spec.targetRefs", "targetRefs must name Services of the core group"},
			{"TrafficPolicy targeting a Service", "TrafficPolicy", "targetRefs: [{group: \"\", kind: Service, name: web}]\ntimeouts: {read: 1s}",
				"spec.targetRefs", "targetRefs must name Gateways or HTTPRoutes of gateway.networking.k8s.io"},
			{"TrafficPolicy targeting a GRPCRoute", "TrafficPolicy", "targetRefs: [{group: gateway.networking.k8s.io, kind: GRPCRoute, name: g}]\ntimeouts: {read: 1s}",
				"spec.targetRefs", "targetRefs must name Gateways or HTTPRoutes of gateway.networking.k8s.io"},
			{"the same target twice", "TrafficPolicy", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}, {group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\ntimeouts: {read: 1s}",
				"spec.targetRefs", "targetRefs must not name the same target (and sectionName) twice"},
			{"17 targetRefs", "BackendPolicy", many.String(),
				"spec.targetRefs", "must have at most 16 items"},
			{"burst 0", "TrafficPolicy", traffic + "rateLimit: {requests: 10, unit: Second, burst: 0}",
				"spec.rateLimit", "burst must not be below 1"},
			{"negative maxSize", "TrafficPolicy", traffic + "requestBody: {maxSize: -1Mi}",
				"spec.requestBody", "maxSize must be positive"},
			{"zero maxSize", "TrafficPolicy", traffic + "requestBody: {maxSize: 0}",
				"spec.requestBody", "maxSize must be positive"},
			{"unknown field", "TrafficPolicy", traffic + "timeouts: {idle: 1s}",
				"spec.timeouts.idle", "unknown field"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				obj := object(t, tc.kind, fmt.Sprintf("invalid-%d", i), ns, tc.spec)
				// Strict field validation: an unknown field is an error, as
				// kubectl makes it, rather than silently pruned.
				_, err := dyn.Resource(resourceOf(tc.kind)).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
				switch {
				case err == nil:
					t.Fatalf("admitted:\n%s", tc.spec)
				case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
				default:
					t.Fatalf("error %v, want Invalid", err)
				}
				t.Log(err)
				if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q\nwant one naming %s and saying %q", err, tc.field, tc.msg)
				}
			})
		}
	})
}

// fieldPaths returns the path of every field reachable from a type of the
// spec, a list's elements as "[]".
func fieldPaths(typ reflect.Type, path string) []string {
	out := []string{path}
	switch typ.Kind() {
	case reflect.Pointer:
		return append(out, fieldPaths(typ.Elem(), path)[1:]...)
	case reflect.Slice:
		return append(out, fieldPaths(typ.Elem(), path+"[]")[1:]...)
	case reflect.Struct:
		if typ == quantityType {
			return out
		}
		for f := range typ.Fields() {
			if f.Anonymous {
				out = append(out, fieldPaths(f.Type, path)[1:]...)
			} else if f.IsExported() {
				out = append(out, fieldPaths(f.Type, path+"."+f.Name)...)
			}
		}
	}
	return out
}

// setFields marks the paths (as fieldPaths names them) of the fields of v
// that hold a value other than their zero value; a pointer to a zero value
// and a required field (no omitempty) of a set struct count as set.
func setFields(v reflect.Value, path string, set map[string]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			set[path] = true
			setFields(v.Elem(), path, set)
		}
		return
	case reflect.Slice:
		for i := range v.Len() {
			set[path] = true
			setFields(v.Index(i), path+"[]", set)
		}
		return
	case reflect.Struct:
		if v.Type() == quantityType {
			set[path] = !v.IsZero()
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Anonymous {
				setFields(v.Field(i), path, set)
			} else if f.IsExported() {
				if !strings.Contains(f.Tag.Get("json"), ",omitempty") {
					// Required: present, the server checked, even
					// when it holds its zero value (group "").
					set[path+"."+f.Name] = true
				}
				setFields(v.Field(i), path+"."+f.Name, set)
			}
		}
	}
	if !v.IsZero() {
		set[path] = true
	}
}
