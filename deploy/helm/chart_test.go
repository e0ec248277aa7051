package helm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

const chartDir = "rauta"

// defaultRelease is the installation the plain manifests of deploy/
// correspond to: helm install rauta deploy/helm/rauta -n rauta-system.
var defaultRelease = release{Name: "rauta", Namespace: "rauta-system"}

func mustLoad(t *testing.T) *chart {
	t.Helper()
	c, err := loadChart(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRender(t *testing.T, rel release, overrides string) *rendered {
	t.Helper()
	r, err := mustLoad(t).render(rel, overrides)
	if err != nil {
		t.Fatalf("render with %q: %v", overrides, err)
	}
	return r
}

// convert decodes an object into a typed API struct, failing on fields
// the type does not have (a misspelt or misplaced field).
func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// ids returns "Kind name" of every document, in order.
func ids(r *rendered) []string {
	var out []string
	for _, d := range r.docs {
		out = append(out, d.obj.GetKind()+" "+d.obj.GetName())
	}
	return out
}

func TestChartMetadata(t *testing.T) {
	c := mustLoad(t)
	if c.meta.APIVersion != "v2" || c.meta.Name != "rauta" || c.meta.Type != "application" {
		t.Errorf("Chart.yaml: apiVersion %q name %q type %q, want v2, rauta, application", c.meta.APIVersion, c.meta.Name, c.meta.Type)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(c.meta.Version) {
		t.Errorf("Chart.yaml: version %q is not SemVer", c.meta.Version)
	}
	if c.meta.AppVersion == "" {
		t.Error("Chart.yaml: appVersion is empty; it is the default image tag")
	}
}

// TestDefaults renders the chart with its defaults and checks the objects
// and the notes.
func TestDefaults(t *testing.T) {
	r := mustRender(t, defaultRelease, "")
	want := []string{
		"ServiceAccount rauta",
		"ClusterRole rauta",
		"ClusterRoleBinding rauta",
		"Role rauta-leader-election",
		"RoleBinding rauta-leader-election",
		"Service rauta",
		"Deployment rauta",
		"GatewayClass rauta",
	}
	if d := cmp.Diff(want, ids(r)); d != "" {
		t.Errorf("objects (-want +got):\n%s", d)
	}
	checkConsistent(t, r, defaultRelease)
	for _, s := range []string{"rauta-system", "GatewayClass \"rauta\"", "port-forward deploy/rauta 9090", "/debug/route"} {
		if !strings.Contains(r.notes, s) {
			t.Errorf("NOTES.txt does not mention %q:\n%s", s, r.notes)
		}
	}
}

// readPlain returns the objects of the plain manifests in deploy/.
func readPlain(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob("../*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range splitDocuments(string(b)) {
			u, err := parseObject(text)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		t.Fatal("no plain manifests in deploy/")
	}
	return out
}

// TestMatchesPlainManifests checks that the chart installed as the
// plain manifests assume (release rauta in rauta-system, namespace
// created) gives every object of deploy/*.yaml, with the same RBAC rules,
// probes, security settings, ports and GatewayClass. kube/deploy_test.go
// proves those manifests against a real API server and the controller's
// needs; this keeps the chart from drifting away from them.
func TestMatchesPlainManifests(t *testing.T) {
	r := mustRender(t, defaultRelease, "namespace: {create: true}")
	for _, p := range readPlain(t) {
		id := p.GetKind() + " " + p.GetName()
		c := r.find(p.GetKind(), p.GetName())
		if c == nil {
			t.Errorf("%s: in deploy/ but not rendered by the chart", id)
			continue
		}
		if c.GetNamespace() != p.GetNamespace() {
			t.Errorf("%s: namespace %q, plain manifest %q", id, c.GetNamespace(), p.GetNamespace())
		}
		for k, v := range p.GetLabels() {
			if c.GetLabels()[k] != v {
				t.Errorf("%s: label %s=%q, plain manifest %q", id, k, c.GetLabels()[k], v)
			}
		}
		switch p.GetKind() {
		case "ClusterRole", "Role":
			pr, cr := convert[rbacv1.ClusterRole](t, p), convert[rbacv1.ClusterRole](t, c)
			if d := cmp.Diff(pr.Rules, cr.Rules); d != "" {
				t.Errorf("%s: rules differ from the plain manifest (-plain +chart):\n%s", id, d)
			}
		case "ClusterRoleBinding", "RoleBinding":
			pb, cb := convert[rbacv1.ClusterRoleBinding](t, p), convert[rbacv1.ClusterRoleBinding](t, c)
			if d := cmp.Diff(pb.RoleRef, cb.RoleRef); d != "" {
				t.Errorf("%s: roleRef (-plain +chart):\n%s", id, d)
			}
			if d := cmp.Diff(pb.Subjects, cb.Subjects); d != "" {
				t.Errorf("%s: subjects (-plain +chart):\n%s", id, d)
			}
		case "GatewayClass":
			pg, cg := convert[gatewayv1.GatewayClass](t, p), convert[gatewayv1.GatewayClass](t, c)
			if d := cmp.Diff(pg.Spec, cg.Spec); d != "" {
				t.Errorf("%s: spec (-plain +chart):\n%s", id, d)
			}
		case "Service":
			ps, cs := convert[corev1.Service](t, p), convert[corev1.Service](t, c)
			if ps.Spec.Type != cs.Spec.Type || ps.Spec.ExternalTrafficPolicy != cs.Spec.ExternalTrafficPolicy {
				t.Errorf("%s: type %s/%s, plain manifest %s/%s", id, cs.Spec.Type, cs.Spec.ExternalTrafficPolicy, ps.Spec.Type, ps.Spec.ExternalTrafficPolicy)
			}
			// The chart targets named container ports; resolve them.
			d := convert[appsv1.Deployment](t, r.find("Deployment", "rauta"))
			type port struct {
				Name       string
				Port       int32
				TargetPort int32
			}
			var pp, cp []port
			for _, x := range ps.Spec.Ports {
				pp = append(pp, port{x.Name, x.Port, x.TargetPort.IntVal})
			}
			for _, x := range cs.Spec.Ports {
				cp = append(cp, port{x.Name, x.Port, containerPort(d, x.TargetPort.StrVal)})
			}
			if diff := cmp.Diff(pp, cp); diff != "" {
				t.Errorf("%s: ports (-plain +chart):\n%s", id, diff)
			}
		case "Deployment":
			pd, cd := convert[appsv1.Deployment](t, p), convert[appsv1.Deployment](t, c)
			if *pd.Spec.Replicas != *cd.Spec.Replicas {
				t.Errorf("%s: replicas %d, plain manifest %d", id, *cd.Spec.Replicas, *pd.Spec.Replicas)
			}
			if d := cmp.Diff(pd.Spec.Strategy, cd.Spec.Strategy); d != "" {
				t.Errorf("%s: strategy (-plain +chart):\n%s", id, d)
			}
			ps, cs := pd.Spec.Template.Spec, cd.Spec.Template.Spec
			if d := cmp.Diff(ps.SecurityContext, cs.SecurityContext); d != "" {
				t.Errorf("%s: pod securityContext (-plain +chart):\n%s", id, d)
			}
			if ps.ServiceAccountName != cs.ServiceAccountName || *ps.TerminationGracePeriodSeconds != *cs.TerminationGracePeriodSeconds {
				t.Errorf("%s: serviceAccountName %q grace %d, plain manifest %q %d", id,
					cs.ServiceAccountName, *cs.TerminationGracePeriodSeconds, ps.ServiceAccountName, *ps.TerminationGracePeriodSeconds)
			}
			pc, cc := ps.Containers[0], cs.Containers[0]
			// The same container but for the image reference and the
			// flags the chart adds (checked in TestDeploymentArgs).
			if !strings.HasPrefix(cc.Image, strings.Split(pc.Image, ":")[0]+":") {
				t.Errorf("%s: image %q, plain manifest %q", id, cc.Image, pc.Image)
			}
			for _, a := range pc.Args {
				if !slices.Contains(cc.Args, a) {
					t.Errorf("%s: argument %q of the plain manifest is missing: %q", id, a, cc.Args)
				}
			}
			pc.Image, cc.Image, pc.Args, cc.Args = "", "", nil, nil
			cc.ImagePullPolicy = ""
			if d := cmp.Diff(pc, cc); d != "" {
				t.Errorf("%s: container (-plain +chart):\n%s", id, d)
			}
		}
	}
}

// containerPort returns the number of a named port of the Deployment's
// container, or 0.
func containerPort(d *appsv1.Deployment, name string) int32 {
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	return 0
}

// writeVerbs are the verbs that change something.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate", "approve", "sign"}

// checkRBAC checks the rules of a Role or ClusterRole: no wildcard; write
// verbs only on status subresources, Leases, Events and Services (the
// Gateways' infrastructure Services: applied and deleted); Leases written
// only through a namespaced Role.
func checkRBAC(t *testing.T, id string, rules []rbacv1.PolicyRule) {
	t.Helper()
	for i, rule := range rules {
		all := slices.Concat(rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames, rule.NonResourceURLs)
		if slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, "*") }) {
			t.Errorf("%s rule %d: wildcard in %+v", id, i, rule)
		}
		if len(rule.NonResourceURLs) > 0 {
			t.Errorf("%s rule %d: nonResourceURLs %q", id, i, rule.NonResourceURLs)
		}
		for _, v := range rule.Verbs {
			if !slices.Contains(writeVerbs, v) {
				continue
			}
			for _, res := range rule.Resources {
				switch {
				case strings.HasSuffix(res, "/status") && (v == "update" || v == "patch"):
				case res == "events" && v == "create" && slices.Contains([]string{"", "events.k8s.io"}, rule.APIGroups[0]):
				case res == "services" && rule.APIGroups[0] == "" && slices.Contains([]string{"create", "patch", "delete"}, v):
					// The Gateways' infrastructure Services.
				case res == "leases" && rule.APIGroups[0] == "coordination.k8s.io" && strings.HasPrefix(id, "Role ") &&
					slices.Contains([]string{"create", "update", "delete"}, v):
					// The election Lease and the replica Leases, whose
					// names are known only at run time, in rauta's
					// namespace.
				default:
					t.Errorf("%s rule %d: %s on %s %q is not allowed (writes go to status subresources, Events, Services and the Leases of rauta's namespace only)", id, i, v, rule.APIGroups, res)
				}
			}
		}
		if len(rule.APIGroups) != 1 && slices.ContainsFunc(rule.Verbs, func(v string) bool { return slices.Contains(writeVerbs, v) }) {
			t.Errorf("%s rule %d: write verbs over several API groups %q", id, i, rule.APIGroups)
		}
	}
}

// checkConsistent checks what must hold for any values: labels, namespaces,
// selectors, ports, RBAC references and least privilege, the controller
// name, and valid object names.
func checkConsistent(t *testing.T, r *rendered, rel release) {
	t.Helper()
	clusterScoped := map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "GatewayClass": true}
	for _, d := range r.docs {
		o := d.obj
		id := o.GetKind() + " " + o.GetName()
		if clusterScoped[o.GetKind()] {
			if o.GetNamespace() != "" {
				t.Errorf("%s: cluster-scoped object with namespace %q", id, o.GetNamespace())
			}
		} else if o.GetNamespace() != rel.Namespace {
			t.Errorf("%s: namespace %q, want the release's %q", id, o.GetNamespace(), rel.Namespace)
		}
		l := o.GetLabels()
		if l["app.kubernetes.io/name"] != "rauta" || l["app.kubernetes.io/instance"] != rel.Name ||
			l["app.kubernetes.io/managed-by"] != "Helm" || !strings.HasPrefix(l["helm.sh/chart"], "rauta-") {
			t.Errorf("%s: labels %v lack the chart's common labels", id, l)
		}
		if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 {
			t.Errorf("%s: name: %v", id, errs)
		}
		if o.GetKind() == "Service" || o.GetKind() == "Namespace" {
			if errs := validation.IsDNS1123Label(o.GetName()); len(errs) > 0 {
				t.Errorf("%s: name: %v", id, errs)
			}
		}
	}

	deps := r.ofKind("Deployment")
	if len(deps) != 1 {
		t.Fatalf("%d Deployments, want 1", len(deps))
	}
	dep := convert[appsv1.Deployment](t, deps[0])
	podLabels := dep.Spec.Template.Labels
	for k, v := range dep.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("Deployment: selector %s=%s does not match the pod labels %v", k, v, podLabels)
		}
	}
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("Deployment: %d containers, want 1", len(dep.Spec.Template.Spec.Containers))
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	admin := containerPort(dep, "admin")
	if admin == 0 || !slices.Contains(ctr.Args, "--admin-address=:"+itoa(admin)) {
		t.Errorf("Deployment: admin port %d, args %q: want --admin-address on the admin port", admin, ctr.Args)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe, "startup": ctr.StartupProbe} {
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.StrVal != "admin" {
			t.Errorf("Deployment: %s probe %+v, want GET %s on the admin port", name, p, want)
		}
	}
	seen := map[string]bool{}
	for _, p := range ctr.Ports {
		if seen[p.Name] || seen[itoa(p.ContainerPort)] {
			t.Errorf("Deployment: port %s %d declared twice", p.Name, p.ContainerPort)
		}
		seen[p.Name], seen[itoa(p.ContainerPort)] = true, true
		if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
			t.Errorf("Deployment: port name %q: %v", p.Name, errs)
		}
	}

	// Services select the pods and target declared container ports.
	for _, u := range r.ofKind("Service") {
		s := convert[corev1.Service](t, u)
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s: no selector", s.Name)
		}
		for k, v := range s.Spec.Selector {
			if podLabels[k] != v {
				t.Errorf("Service %s: selector %s=%s does not match the pod labels %v", s.Name, k, v, podLabels)
			}
		}
		for _, p := range s.Spec.Ports {
			if containerPort(dep, p.TargetPort.StrVal) == 0 {
				t.Errorf("Service %s: targetPort %q is not a container port", s.Name, p.TargetPort.String())
			}
		}
	}

	// RBAC: bindings name roles and service accounts of the render.
	sa := dep.Spec.Template.Spec.ServiceAccountName
	if sas := r.ofKind("ServiceAccount"); len(sas) > 0 && (len(sas) != 1 || sas[0].GetName() != sa) {
		t.Errorf("ServiceAccounts %v, the Deployment runs as %q", ids(r), sa)
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		bs := r.ofKind(kind)
		if len(bs) != 1 {
			t.Errorf("%d %ss, want 1", len(bs), kind)
		}
		for _, u := range bs {
			b := convert[rbacv1.RoleBinding](t, u)
			if r.find(b.RoleRef.Kind, b.RoleRef.Name) == nil {
				t.Errorf("%s %s: roleRef %s %s is not rendered", kind, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			}
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: rel.Namespace}}
			if d := cmp.Diff(want, b.Subjects); d != "" {
				t.Errorf("%s %s: subjects (-want +got):\n%s", kind, b.Name, d)
			}
		}
	}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, u := range r.ofKind(kind) {
			checkRBAC(t, kind+" "+u.GetName(), convert[rbacv1.ClusterRole](t, u).Rules)
		}
	}

	// The GatewayClass is the one the controller handles.
	for _, u := range r.ofKind("GatewayClass") {
		gc := convert[gatewayv1.GatewayClass](t, u)
		if !slices.Contains(ctr.Args, "--controller-name="+string(gc.Spec.ControllerName)) {
			t.Errorf("GatewayClass %s: controllerName %q, args %q", gc.Name, gc.Spec.ControllerName, ctr.Args)
		}
	}

	// A ServiceMonitor scrapes the admin Service's admin port.
	for _, sm := range r.ofKind("ServiceMonitor") {
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		var matched []string
		for _, u := range r.ofKind("Service") {
			ok := len(sel) > 0
			for k, v := range sel {
				ok = ok && u.GetLabels()[k] == v
			}
			if ok {
				matched = append(matched, u.GetName())
				s := convert[corev1.Service](t, u)
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "admin" && p.TargetPort.StrVal == "admin" }) {
					t.Errorf("ServiceMonitor: Service %s has no port admin targeting the admin port", s.Name)
				}
			}
		}
		if len(matched) != 1 {
			t.Errorf("ServiceMonitor: selector %v matches Services %q, want exactly the admin Service", sel, matched)
		}
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		if len(eps) != 1 {
			t.Fatalf("ServiceMonitor: %d endpoints, want 1", len(eps))
		}
		ep := eps[0].(map[string]any)
		if ep["port"] != "admin" || ep["path"] != "/metrics" || ep["honorLabels"] != true {
			t.Errorf("ServiceMonitor: endpoint %v, want port admin, path /metrics, honorLabels true", ep)
		}
		ns, _, _ := unstructured.NestedStringSlice(sm.Object, "spec", "namespaceSelector", "matchNames")
		if !slices.Equal(ns, []string{rel.Namespace}) {
			t.Errorf("ServiceMonitor: namespaceSelector %q, want the release namespace", ns)
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// args returns the Deployment's container arguments.
func args(t *testing.T, r *rendered) []string {
	t.Helper()
	return convert[appsv1.Deployment](t, r.ofKind("Deployment")[0]).Spec.Template.Spec.Containers[0].Args
}

// TestValues renders the chart with overrides and checks what each one
// changes, and that the result stays consistent.
func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rel       release
		overrides string
		check     func(t *testing.T, r *rendered)
	}{{
		name:      "namespace created first, with its Pod Security level",
		overrides: "namespace: {create: true, podSecurity: baseline}",
		check: func(t *testing.T, r *rendered) {
			if r.docs[0].obj.GetKind() != "Namespace" || r.docs[0].obj.GetName() != "rauta-system" {
				t.Fatalf("first object %s, want Namespace rauta-system", ids(r)[0])
			}
			if got := r.docs[0].obj.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "baseline" {
				t.Errorf("pod-security label %q", got)
			}
		},
	}, {
		name:      "ServiceMonitor and the admin Service",
		overrides: "metrics: {serviceMonitor: {enabled: true, interval: 15s, labels: {release: kube-prometheus}}}",
		check: func(t *testing.T, r *rendered) {
			sm := r.find("ServiceMonitor", "rauta")
			if sm == nil || r.find("Service", "rauta-admin") == nil {
				t.Fatalf("objects %q: want ServiceMonitor rauta and Service rauta-admin", ids(r))
			}
			if sm.GetLabels()["release"] != "kube-prometheus" {
				t.Errorf("ServiceMonitor labels %v lack release=kube-prometheus", sm.GetLabels())
			}
			eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if iv := eps[0].(map[string]any)["interval"]; iv != "15s" {
				t.Errorf("interval %v", iv)
			}
		},
	}, {
		name:      "admin Service without a ServiceMonitor",
		overrides: "metrics: {service: {create: true}}",
		check: func(t *testing.T, r *rendered) {
			if r.find("Service", "rauta-admin") == nil || len(r.ofKind("ServiceMonitor")) != 0 {
				t.Errorf("objects %q: want Service rauta-admin and no ServiceMonitor", ids(r))
			}
		},
	}, {
		name:      "access logs off",
		overrides: "accessLog: {destination: \"off\"}",
		check: func(t *testing.T, r *rendered) {
			a := args(t, r)
			if !slices.Contains(a, "--access-log=off") || slices.ContainsFunc(a, func(s string) bool { return strings.HasPrefix(s, "--access-log-") }) {
				t.Errorf("args %q: want --access-log=off and no other access log flag", a)
			}
		},
	}, {
		name:      "access logs sampled, errors only, text",
		overrides: "accessLog: {sampleRatio: 0.25, errorsOnly: true, format: text, destination: stderr}",
		check: func(t *testing.T, r *rendered) {
			a := args(t, r)
			for _, want := range []string{"--access-log=stderr", "--access-log-sample=0.25", "--access-log-errors-only", "--access-log-format=text"} {
				if !slices.Contains(a, want) {
					t.Errorf("args %q lack %s", a, want)
				}
			}
		},
	}, {
		name:      "addresses, pprof, logging, extra args",
		overrides: "{addressPool: 10.96.200.0/24, address: 10.0.0.1, admin: {pprof: true, port: 9191}, logging: {level: debug, format: text}, extraArgs: [--poll-interval=5s]}",
		check: func(t *testing.T, r *rendered) {
			a := args(t, r)
			for _, want := range []string{"--address-pool=10.96.200.0/24", "--address=10.0.0.1", "--pprof", "--admin-address=:9191", "--log-level=debug", "--log-format=text"} {
				if !slices.Contains(a, want) {
					t.Errorf("args %q lack %s", a, want)
				}
			}
			if a[len(a)-1] != "--poll-interval=5s" {
				t.Errorf("args %q: extra args not last", a)
			}
		},
	}, {
		name:      "image, replicas, resources",
		overrides: "{image: {tag: v1.2.3, repository: registry.example/rauta, pullPolicy: Always}, replicas: 5, resources: {requests: {cpu: 1}, limits: {cpu: 2, memory: 2Gi}}}",
		check: func(t *testing.T, r *rendered) {
			d := convert[appsv1.Deployment](t, r.find("Deployment", "rauta"))
			c := d.Spec.Template.Spec.Containers[0]
			if c.Image != "registry.example/rauta:v1.2.3" || c.ImagePullPolicy != corev1.PullAlways || *d.Spec.Replicas != 5 {
				t.Errorf("image %q %s, replicas %d", c.Image, c.ImagePullPolicy, *d.Spec.Replicas)
			}
			if got := c.Resources.Limits.Memory().String(); got != "2Gi" || c.Resources.Requests.Cpu().String() != "1" {
				t.Errorf("resources %+v", c.Resources)
			}
			if v := d.GetLabels()["app.kubernetes.io/version"]; v != "v1.2.3" {
				t.Errorf("version label %q", v)
			}
		},
	}, {
		name:      "another release and controller name",
		rel:       release{Name: "edge", Namespace: "edge-gw"},
		overrides: "{controllerName: example.com/Edge_Gateway, gatewayClass: {name: edge}}",
		check: func(t *testing.T, r *rendered) {
			want := []string{
				"ServiceAccount edge-rauta", "ClusterRole edge-rauta", "ClusterRoleBinding edge-rauta",
				"Role edge-rauta-leader-election", "RoleBinding edge-rauta-leader-election",
				"Service edge-rauta", "Deployment edge-rauta", "GatewayClass edge",
			}
			if d := cmp.Diff(want, ids(r)); d != "" {
				t.Errorf("objects (-want +got):\n%s", d)
			}
		},
	}, {
		name:      "existing service account, no GatewayClass, no Service",
		overrides: "{serviceAccount: {create: false, name: existing}, gatewayClass: {create: false}, service: {create: false}}",
		check: func(t *testing.T, r *rendered) {
			for _, kind := range []string{"ServiceAccount", "GatewayClass"} {
				if len(r.ofKind(kind)) != 0 {
					t.Errorf("%s rendered: %q", kind, ids(r))
				}
			}
			if r.find("Service", "rauta") != nil {
				t.Errorf("Service rendered: %q", ids(r))
			}
			if sa := convert[appsv1.Deployment](t, r.ofKind("Deployment")[0]).Spec.Template.Spec.ServiceAccountName; sa != "existing" {
				t.Errorf("serviceAccountName %q", sa)
			}
		},
	}, {
		name:      "listener ports",
		overrides: "service: {type: ClusterIP, ports: [{name: web, port: 80, targetPort: 8080}, {name: grpc, port: 9443, targetPort: 9443}]}",
		check: func(t *testing.T, r *rendered) {
			s := convert[corev1.Service](t, r.find("Service", "rauta"))
			d := convert[appsv1.Deployment](t, r.ofKind("Deployment")[0])
			if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.ExternalTrafficPolicy != "" {
				t.Errorf("type %s policy %q", s.Spec.Type, s.Spec.ExternalTrafficPolicy)
			}
			if containerPort(d, "web") != 8080 || containerPort(d, "grpc") != 9443 || containerPort(d, "http") != 0 {
				t.Errorf("container ports %+v", d.Spec.Template.Spec.Containers[0].Ports)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rel := tc.rel
			if rel.Name == "" {
				rel = defaultRelease
			}
			r := mustRender(t, rel, tc.overrides)
			checkConsistent(t, r, rel)
			tc.check(t, r)
		})
	}
}

// TestValueErrors checks that values the chart cannot honour fail the
// render with a message naming the value.
func TestValueErrors(t *testing.T) {
	for _, tc := range []struct{ overrides, want string }{
		{"serviceAccount: {create: false}", "serviceAccount.name is required"},
		{"controllerName: \"\"", "controllerName is required"},
		// helm says "service.ports[].targetPort is required"; this stricter
		// renderer stops at the missing key first.
		{"service: {ports: [{name: http, port: 80}]}", "targetPort"},
		{"accessLog: {destinaton: stdout}", ""}, // an unknown key is ignored, as by Helm
	} {
		_, err := mustLoad(t).render(defaultRelease, tc.overrides)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.overrides, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.overrides, err, tc.want)
		}
	}
}

// TestArgsAreFlags checks that every flag the chart passes is one that
// `rauta serve` defines, or one the plain manifests pass too (the
// in-cluster flags of deploy/deployment.yaml, kept by the kube tests).
func TestArgsAreFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/rauta")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	bin := filepath.Join(t.TempDir(), "rauta")
	if out, err := exec.Command(goBin, "build", "-o", bin, "../../cmd/rauta").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rauta: %v\n%s", err, out)
	}
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput() // exits 2 after the usage
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		defined[m[1]] = true
	}
	if !defined["config"] || !defined["admin-address"] {
		t.Fatalf("could not read the flags of rauta serve -h:\n%s", out)
	}
	for _, p := range readPlain(t) {
		if p.GetKind() == "Deployment" {
			for _, a := range convert[appsv1.Deployment](t, p).Spec.Template.Spec.Containers[0].Args {
				if name, ok := flagName(a); ok {
					defined[name] = true
				}
			}
		}
	}
	r := mustRender(t, defaultRelease, "{addressPool: 10.0.0.0/24, address: 10.0.0.1, admin: {pprof: true}, accessLog: {errorsOnly: true}}")
	a := args(t, r)
	if a[0] != "serve" {
		t.Errorf("args %q: want the serve command first", a)
	}
	for _, arg := range a[1:] {
		name, ok := flagName(arg)
		if !ok {
			t.Errorf("argument %q is not a flag", arg)
			continue
		}
		if !defined[name] {
			t.Errorf("flag --%s is defined neither by rauta serve nor in deploy/deployment.yaml", name)
		}
	}
}

func flagName(arg string) (string, bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", false
	}
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name, name != ""
}

// TestRendererFunctions checks the renderer's Sprig functions against
// Sprig's documented results, so that what passes here renders the same
// with helm.
func TestRendererFunctions(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{`{{ "a" | quote }} {{ 1 | quote }}`, `"a" "1"`},
		{`{{ "" | default "x" }} {{ "y" | default "x" }} {{ 0 | default 5 }} {{ false | default true }}`, `x y 5 true`},
		{`{{ "a\nb" | indent 2 }}|{{ "a" | nindent 3 }}`, "  a\n  b|\n   a"},
		{`{{ "abcdef" | trunc 3 }} {{ "abcdef" | trunc -2 }} {{ "ab" | trunc 5 }}`, `abc ef ab`},
		{`{{ "ab-" | trimSuffix "-" }} {{ "-.a.-" | trimAll ".-" }} {{ "AbC" | lower }}`, `ab a abc`},
		{`{{ contains "au" "rauta" }} {{ contains "x" "rauta" }}`, `true false`},
		{`{{ regexReplaceAll "[^a-z]" "a/B_c" "-" }}`, `a---c`},
		{`{{ dict | toYaml }}`, `a: 1` + "\n" + `b:` + "\n" + `- x`},
		{`{{ define "t" }}<{{ . }}>{{ end }}{{ include "t" "v" | quote }}`, `"<v>"`},
	} {
		root := template.New("test").Option("missingkey=error")
		fm := funcMap(root)
		fm["dict"] = func() map[string]any { return map[string]any{"b": []string{"x"}, "a": 1} }
		root.Funcs(fm)
		if _, err := root.Parse(tc.tmpl); err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		var b strings.Builder
		if err := root.Execute(&b, nil); err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		if b.String() != tc.want {
			t.Errorf("%s = %q, want %q", tc.tmpl, b.String(), tc.want)
		}
	}
	if _, err := funcMap(nil)["required"].(func(string, any) (any, error))("need x", ""); err == nil || err.Error() != "need x" {
		t.Errorf("required of an empty string: %v", err)
	}
}
