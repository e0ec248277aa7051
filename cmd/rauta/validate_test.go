package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rauta/rauta/filesource"
	"github.com/rauta/rauta/gatewayapi"
)

// policiesYAML holds one policy of each kind on the quickstart's objects.
const policiesYAML = `apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: echo-lb}
spec:
  targetRefs: [{group: "", kind: Service, name: echo-v1}]
  loadBalancer: {type: Maglev, hashKey: {type: Header, name: X-User}}
---
apiVersion: gateway.rauta.io/v1alpha1
kind: TrafficPolicy
metadata: {name: web-limit}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: web}]
  rateLimit: {requests: 5, unit: Second, burst: 5}
---
apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XBackendTrafficPolicy
metadata: {name: echo-budget}
spec:
  targetRefs: [{group: "", kind: Service, name: echo-v2}]
  retryConstraint: {budget: {percent: 20}}
`

// quickstartWith copies the quickstart's files into a new directory with
// the extra files.
func quickstartWith(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"gateway.yaml", "backends.yaml", "routes.yaml"} {
		b, err := os.ReadFile(filepath.Join(exampleDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestValidatePolicies shows `rauta validate` printing a line for every
// policy, with the status the translator computed for it, and rejecting a
// policy file with the file, document, line and field of the mistake.
func TestValidatePolicies(t *testing.T) {
	dir := quickstartWith(t, map[string]string{"policies.yaml": policiesYAML})
	var out, errOut bytes.Buffer
	code := validate([]string{"--config", dir}, &out, &errOut)

	// The lines expected are those of the status the translator computes.
	res, err := filesource.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	result := gatewayapi.Translate(res, gatewayapi.Options{})
	lines := strings.Split(out.String(), "\n")
	wantCode := 0
	for _, o := range filesource.Summarize(res, result.Status) {
		mark := "ok  "
		switch {
		case o.Ignored != "":
			mark = "--  "
		case !o.OK():
			mark, wantCode = "FAIL", 1
		}
		want := mark + " " + o.String()
		if !strings.Contains(o.Kind, "Policy") {
			continue
		}
		found := false
		for _, l := range lines {
			found = found || l == want
		}
		if !found {
			t.Errorf("validate does not print %q:\n%s%s", want, out.String(), errOut.String())
		}
	}
	for _, name := range []string{"BackendPolicy default/echo-lb: ", "TrafficPolicy default/web-limit: ", "XBackendTrafficPolicy default/echo-budget: "} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("validate prints no line for %s:\n%s", name, out.String())
		}
	}
	if code != wantCode {
		t.Errorf("validate: exit %d, want %d\n%s%s", code, wantCode, out.String(), errOut.String())
	}

	// A mistake in a policy is a load error naming where it is.
	bad := quickstartWith(t, map[string]string{"policies.yaml": strings.Replace(policiesYAML, "burst: 5", "brust: 5", 1)})
	out.Reset()
	errOut.Reset()
	code = validate([]string{"--config", bad}, &out, &errOut)
	want := filepath.Join(bad, "policies.yaml") + ": document 2 (line 8): TrafficPolicy default/web-limit: spec.rateLimit.brust: unknown field"
	if code != 1 || !strings.Contains(errOut.String(), want) {
		t.Errorf("validate of a bad policy: exit %d, want 1 and %q\n%s%s", code, want, out.String(), errOut.String())
	}
}
