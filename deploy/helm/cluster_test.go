package helm_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/internal/testcluster"
)

// TestServerSideDryRun applies the rendered chart with a server-side
// dry-run to a real kube-apiserver (with the Gateway API CRDs), which
// validates every object as an installation would. It is skipped only when
// the control plane binaries are absent (see testcluster.ForTest).
func TestServerSideDryRun(t *testing.T) {
	c := testcluster.ForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	apply := func(manifest []byte, dryRun bool) (int, error) {
		objs, err := c.Apply(ctx, manifest, testcluster.ApplyOptions{DryRun: dryRun, FieldManager: "helm-chart-test"})
		return len(objs), err
	}

	// Namespaced objects are only admitted into an existing namespace.
	for _, ns := range []string{"rauta-system", "edge"} {
		if _, err := apply([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+ns+"\n"), false); err != nil {
			t.Fatal(err)
		}
	}

	// Helm installs crds/ first: the API server admits the CRDs (it
	// compiles their CEL rules).
	crds, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil || len(crds) != 2 {
		t.Fatalf("chart CRDs %q: %v, want 2", crds, err)
	}
	for _, f := range crds {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := apply(b, true); err != nil || n != 1 {
			t.Errorf("%s: %d objects admitted: %v", f, n, err)
		}
	}

	for _, tc := range []struct {
		name      string
		rel       release
		overrides string
		want      int
	}{
		{"defaults", defaultRelease, "", 8},
		{"namespace and admin Service", defaultRelease, "{namespace: {create: true}, metrics: {service: {create: true}}}", 10},
		{"another release", release{Name: "edge", Namespace: "edge"},
			"{controllerName: example.com/edge, gatewayClass: {name: edge}, addressPool: 10.96.0.0/24, " +
				"serviceAccount: {annotations: {example.com/role: gateway}}, service: {annotations: {example.com/lb: internal}}, " +
				"podAnnotations: {example.com/scrape: \"true\"}, nodeSelector: {kubernetes.io/os: linux}, " +
				"tolerations: [{key: dedicated, operator: Equal, value: gateway, effect: NoSchedule}], " +
				"affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app.kubernetes.io/name: rauta}}}}]}}, " +
				"imagePullSecrets: [{name: registry}]}", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.rel, tc.overrides)
			n, err := apply(r.manifest(), true)
			if err != nil {
				t.Fatalf("%v\n%s", err, r.manifest())
			}
			if n != tc.want {
				t.Errorf("%d objects admitted, want %d", n, tc.want)
			}
		})
	}

	// The ServiceMonitor needs the Prometheus Operator's CRD, which the
	// test control plane does not have: everything else is applied, and
	// the ServiceMonitor is refused for want of its kind, not for its
	// content.
	r := mustRender(t, defaultRelease, "metrics: {serviceMonitor: {enabled: true}}")
	last := r.docs[len(r.docs)-1]
	if last.obj.GetKind() != "ServiceMonitor" {
		t.Fatalf("last object %s, want the ServiceMonitor (custom resources come last)", ids(r)[len(r.docs)-1])
	}
	n, err := apply(r.manifest(), true)
	if n != len(r.docs)-1 || err == nil || !strings.Contains(err.Error(), "ServiceMonitor") {
		t.Errorf("%d of %d objects admitted, error %v: want all but the ServiceMonitor", n, len(r.docs), err)
	}

	// The dry-run is real validation: a broken value is refused.
	r = mustRender(t, defaultRelease, "replicas: -1")
	if _, err := apply(r.manifest(), true); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Errorf("replicas -1: %v, want the Deployment refused", err)
	}
}
