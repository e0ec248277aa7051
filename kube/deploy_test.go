package kube

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/internal/testcluster"
)

const deployDir = "../deploy"

// deployFiles returns the manifests in kustomization.yaml's order, and
// checks that it lists every YAML file of deploy/ and deploy/crds/.
func deployFiles(t *testing.T) []string {
	t.Helper()
	var k struct{ Resources []string }
	b, err := os.ReadFile(filepath.Join(deployDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	all, _ := filepath.Glob(filepath.Join(deployDir, "*.yaml"))
	crds, _ := filepath.Glob(filepath.Join(deployDir, "crds", "*.yaml"))
	var want []string
	for _, f := range append(all, crds...) {
		if filepath.Base(f) != "kustomization.yaml" {
			rel, _ := filepath.Rel(deployDir, f)
			want = append(want, filepath.ToSlash(rel))
		}
	}
	slices.Sort(want)
	got := slices.Clone(k.Resources)
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("kustomization.yaml resources differ from deploy/*.yaml (-files +listed)\n%s", d)
	}
	return k.Resources
}

func readDeploy(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeployManifests validates deploy/ against the real API server with a
// server-side dry-run, and checks what the controller relies on: probes on
// the admin port, the GatewayClass's controllerName.
func TestDeployManifests(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // creates the rauta-system namespace for real
	var n int
	for _, f := range deployFiles(t) {
		objs, err := e.c.Apply(e.ctx(), readDeploy(t, f), testcluster.ApplyOptions{DryRun: true, FieldManager: "deploy-test"})
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		n += len(objs)
	}
	if n != 11 {
		t.Errorf("%d objects validated, want 11", n)
	}
	if first := deployFiles(t)[:2]; !slices.Equal(first, []string{"crds/gateway.rauta.io_backendpolicies.yaml", "crds/gateway.rauta.io_trafficpolicies.yaml"}) {
		t.Errorf("kustomization.yaml starts with %q, want the CRDs first", first)
	}
	// The dry-run is real validation: a broken Deployment is refused.
	bad := strings.Replace(string(readDeploy(t, "deployment.yaml")), "path: /readyz", "path: readyz", 1)
	bad = strings.Replace(bad, "replicas: 2", "replicas: -1", 1)
	if _, err := e.c.Apply(e.ctx(), []byte(bad), testcluster.ApplyOptions{DryRun: true}); err == nil {
		t.Error("a Deployment with replicas -1 passed the dry-run")
	}

	var d appsv1.Deployment
	if err := yaml.Unmarshal(readDeploy(t, "deployment.yaml"), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	var admin int32
	for _, p := range c.Ports {
		if p.Name == "admin" {
			admin = p.ContainerPort
		}
	}
	if admin != 9090 || !slices.Contains(c.Args, "--admin-address=:9090") {
		t.Errorf("admin port %d, args %q: want 9090 and --admin-address=:9090", admin, c.Args)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe.HTTPGet.Port.String() != "admin" || c.ReadinessProbe.HTTPGet.Port.String() != "admin" {
		t.Errorf("probes %+v %+v: want /healthz and /readyz on the admin port", c.LivenessProbe.HTTPGet, c.ReadinessProbe.HTTPGet)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "rauta" {
		t.Errorf("service account %q", d.Spec.Template.Spec.ServiceAccountName)
	}
	if !strings.Contains(string(readDeploy(t, "gatewayclass.yaml")), "controllerName: "+gatewayapi.DefaultControllerName) {
		t.Error("gatewayclass.yaml does not use gatewayapi.DefaultControllerName")
	}
}

// granted returns the "verb group/resource" pairs the rules of deploy/rbac.yaml
// allow, and fails on wildcards.
func granted(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(readDeploy(t, "rbac.yaml"))), 4096)
	for {
		var doc struct {
			Kind  string
			Rules []rbacv1.PolicyRule
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		for _, r := range doc.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						if g == "*" || res == "*" || v == "*" {
							t.Errorf("rbac.yaml grants a wildcard: %+v", r)
						}
						out[v+" "+g+"/"+res] = true
					}
				}
			}
		}
	}
	return out
}

// installPolicyCRDs installs rauta's CRDs (deploy/crds) and the Gateway
// API's experimental XBackendTrafficPolicy, and waits until their groups
// are served.
func installPolicyCRDs(t *testing.T, e *env) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(deployDir, "crds", "*.yaml"))
	dir, _, err := testcluster.GatewayAPIDir()
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(dir, "config", "crd", "experimental", "gateway.networking.x-k8s.io_xbackendtrafficpolicies.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.Apply(e.ctx(), b, testcluster.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for gv, n := range map[string]int{"gateway.rauta.io/v1alpha1": 2, "gateway.networking.x-k8s.io/v1alpha1": 1} {
		e.eventually(gv+" served", func() (bool, string) {
			rl, err := e.kube.Discovery().ServerResourcesForGroupVersion(gv)
			if err != nil {
				return false, err.Error()
			}
			var got int
			for _, r := range rl.APIResources {
				if !strings.Contains(r.Name, "/") {
					got++
				}
			}
			return got >= n, fmt.Sprintf("%d resources", got)
		})
	}
}

// statusGroups are the API groups, with their version, whose status the
// controller writes.
var statusGroups = map[string]string{
	gatewayv1Group:                "v1",
	"gateway.rauta.io":            "v1alpha1",
	"gateway.networking.x-k8s.io": "v1alpha1",
}

// TestRBAC runs the controller with exactly the rights deploy/rbac.yaml
// gives the rauta service account, over every kind it handles (rauta's
// policies and XBackendTrafficPolicy included), and fails if a request is
// forbidden (the role lacks something) or a granted permission is never
// used (the role exceeds what is needed). Conflicts are provoked on every
// status kind so that the retries' reads happen.
func TestRBAC(t *testing.T) {
	e := newEnv(t)
	e.timeout = 90 * time.Second
	installPolicyCRDs(t, e)
	for _, f := range []string{"serviceaccount.yaml", "rbac.yaml"} {
		if _, err := e.c.Apply(e.ctx(), readDeploy(t, f), testcluster.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := granted(t)
	for _, w := range []string{"update gateway.networking.k8s.io/httproutes", "create /secrets", "update /secrets", "delete /pods"} {
		if want[w] {
			t.Errorf("rbac.yaml grants %q", w)
		}
	}

	var b backends
	b.add(t, "10.213.0.1", "A")
	p := newProxy(t, &b)
	caPEM, _ := selfSigned(t, "ca", "web.example")
	crt, key := selfSigned(t, "gw", "secure.example")
	port, lsPort := freePort(t), freePort(t)
	class := "rbac-" + e.ns
	manifest := fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: %[1]s}
spec: {controllerName: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: %[3]s}
type: kubernetes.io/tls
data: {tls.crt: %[4]s, tls.key: %[5]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ca, namespace: %[3]s}
data: {ca.crt: %[6]q}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: %[3]s}
spec:
  gatewayClassName: %[1]s
  allowedListeners: {namespaces: {from: Same}}
  listeners:
  - {name: http, port: %[7]d, protocol: HTTP}
  - name: https
    port: %[9]d
    protocol: HTTPS
    hostname: secure.example
    tls: {mode: Terminate, certificateRefs: [{name: cert}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: moved, namespace: %[3]s}
spec:
  gatewayClassName: %[1]s
  listeners: [{name: http, port: %[10]d, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: extra, namespace: %[3]s}
spec:
  parentRef: {name: gw}
  listeners: [{name: extra, port: %[8]d, protocol: HTTP, hostname: extra.example}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[3]s}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: %[3]s}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: %[3]s}
spec:
  parentRefs: [{name: gw}]
  hostnames: [broken.example]
  rules: [{backendRefs: [{name: missing, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: %[3]s}
spec: {ports: [{name: grpc, port: 9000, targetPort: 9000, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: %[3]s}
spec:
  parentRefs: [{name: gw}]
  hostnames: [grpc.example]
  rules: [{backendRefs: [{name: grpc, port: 9000}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: web-tls, namespace: %[3]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  validation: {caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}], hostname: web.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: grant, namespace: %[3]s}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: elsewhere}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: web, namespace: %[3]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  loadBalancer: {type: Maglev}
---
apiVersion: gateway.rauta.io/v1alpha1
kind: TrafficPolicy
metadata: {name: gw, namespace: %[3]s}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  rateLimit: {requests: 100, unit: Second}
---
apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XBackendTrafficPolicy
metadata: {name: web, namespace: %[3]s}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  retryConstraint: {budget: {percent: 20}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: streams, namespace: %[3]s}
spec:
  gatewayClassName: %[1]s
  listeners:
  - {name: tcp, port: %[11]d, protocol: TCP}
  - {name: tls, port: %[12]d, protocol: TLS, tls: {mode: Passthrough}}
  - {name: udp, port: %[11]d, protocol: UDP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: tcp, namespace: %[3]s}
spec:
  parentRefs: [{name: streams, sectionName: tcp}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: tls, namespace: %[3]s}
spec:
  parentRefs: [{name: streams, sectionName: tls}]
  hostnames: [db.example]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {name: udp, namespace: %[3]s}
spec:
  parentRefs: [{name: streams, sectionName: udp}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
`, class, gatewayapi.DefaultControllerName, e.ns, b64(crt), b64(key), string(caPEM), port, lsPort, freePort(t), freePort(t), freePort(t), freePort(t))
	if _, err := e.c.Apply(e.ctx(), []byte(manifest), testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	// The first status PUT of each kind is preceded by another writer's
	// change, so it conflicts and the retry reads the object with get.
	dyn := dynamic.NewForConfigOrDie(e.c.Config)
	var mu sync.Mutex
	touched := map[string]bool{}
	ct := &countingTransport{before: func(req *http.Request) {
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		if req.Method != http.MethodPut || len(parts) < 5 || parts[len(parts)-1] != "status" || statusGroups[parts[1]] != parts[2] {
			return
		}
		res, name, ns := parts[len(parts)-3], parts[len(parts)-2], ""
		if parts[3] == "namespaces" {
			ns = parts[4]
		}
		mu.Lock()
		first := !touched[res]
		touched[res] = true
		mu.Unlock()
		if !first {
			return
		}
		ri := dyn.Resource(schema.GroupVersionResource{Group: parts[1], Version: parts[2], Resource: res})
		patch := []byte(`{"metadata":{"labels":{"touched":"yes"}}}`)
		var err error
		if ns != "" {
			_, err = ri.Namespace(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{})
		} else {
			_, err = ri.Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{})
		}
		if err != nil {
			t.Errorf("touching %s %s/%s: %v", res, ns, name, err)
		}
	}}
	cfg := e.c.UserConfig("system:serviceaccount:rauta-system:rauta")
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.rt = rt; return ct }
	opts := e.options(p)
	opts.Translate.ControllerName = gatewayapi.DefaultControllerName
	run := e.start(cfg, opts)

	// The infrastructure Service of a Gateway that leaves the class is
	// deleted (delete); the others are applied (patch).
	e.eventually("infrastructure Service of Gateway moved", func() (bool, string) {
		_, err := e.kube.CoreV1().Services(e.ns).Get(e.ctx(), "moved-rauta", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	// The status writer updates the Gateway too: retry on conflicts.
	e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		moved, err := e.gw.GatewayV1().Gateways(e.ns).Get(e.ctx(), "moved", metav1.GetOptions{})
		if err != nil {
			return err
		}
		moved.Spec.GatewayClassName = "someone-else"
		_, err = e.gw.GatewayV1().Gateways(e.ns).Update(e.ctx(), moved, metav1.UpdateOptions{})
		return err
	}))

	e.eventually("every status kind written after a conflict, an Event recorded", func() (bool, string) {
		mu.Lock()
		n := len(touched)
		mu.Unlock()
		st := run.c.Stats()
		return n == 12 && st.StatusConflicts >= 12 && st.Events >= 1,
			fmt.Sprintf("touched %d kinds, stats %+v", n, st)
	})
	// Let the Lease be renewed (update) and the retries land.
	time.Sleep(2 * opts.RetryPeriod)
	// A replica deletes its own Lease when it stops.
	const atStop = "delete coordination.k8s.io/leases"
	e.eventually("status of every kind written", func() (bool, string) {
		ct.mu.Lock()
		defer ct.mu.Unlock()
		var missing []string
		for k := range want {
			if ct.requests[k] == 0 && k != atStop {
				missing = append(missing, k)
			}
		}
		slices.Sort(missing)
		return len(missing) == 0, "granted but not used yet: " + strings.Join(missing, ", ")
	})
	run.stop(t)
	ct.mu.Lock()
	if want[atStop] && ct.requests[atStop] == 0 {
		t.Errorf("%q granted but not used at stop", atStop)
	}
	defer ct.mu.Unlock()
	if len(ct.forbidden) > 0 {
		t.Errorf("forbidden requests (rbac.yaml lacks them):\n%s", strings.Join(ct.forbidden, "\n"))
	}
	for k, n := range ct.requests {
		if k != "discovery" && !want[k] {
			t.Errorf("%d requests %q not granted by rbac.yaml", n, k)
		}
	}
}

const gatewayv1Group = "gateway.networking.k8s.io"

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
