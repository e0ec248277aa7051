package filesource

import (
	"encoding/base64"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/tlsconfig"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// gatewayAPIExamples returns the examples directory of the gateway-api
// module rauta builds against.
func gatewayAPIExamples(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "examples")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// routeDoc finds the documents of the stream route kinds.
var routeDoc = regexp.MustCompile(`(?m)^kind: (TLS|TCP|UDP)Route\s*$`)

// TestGatewayAPIStreamExamples loads every example file of the gateway-api
// module that holds a TLSRoute, TCPRoute or UDPRoute: each loads and
// decodes strictly.
func TestGatewayAPIStreamExamples(t *testing.T) {
	root := gatewayAPIExamples(t)
	var n int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(data)
		if !strings.Contains(s, "kind: TLSRoute") && !strings.Contains(s, "kind: TCPRoute") && !strings.Contains(s, "kind: UDPRoute") {
			return nil
		}
		n++
		rel, _ := filepath.Rel(root, path)
		res, err := Load(path)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if got, want := len(res.TLSRoutes)+len(res.TCPRoutes)+len(res.UDPRoutes), len(routeDoc.FindAllString(s, -1)); got != want {
			t.Errorf("%s: %d stream routes loaded, the file has %d", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 8 {
		t.Errorf("only %d example files with stream routes found", n)
	}
}

// TestStreamExamplesStatus serves the tcp-routing, tls-routing and
// udp-routing examples (the TLS Gateway has a Passthrough and a Terminate
// listener) with their GatewayClass given to rauta: the routes are
// accepted on their listeners, which list the route kinds they serve; a
// Gateway API kind rauta does not serve (XMesh) is reported as not
// served.
func TestStreamExamplesStatus(t *testing.T) {
	root := gatewayAPIExamples(t)
	dir := t.TempDir()
	for _, f := range []string{"tcp-routing/gateway.yaml", "tcp-routing/tcp-route.yaml", "tls-routing/gateway.yaml",
		"tls-routing/tls-route.yaml", "tls-routing/tls-route-terminate.yaml", "udp-routing/gateway.yaml", "udp-routing/udp-route.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "standard", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(f, "/", "-")), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, certPEM, keyPEM, err := tlsconfig.SelfSigned([]string{"bar.example.com"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XMesh
metadata: {name: mesh}
spec: {controllerName: example.com/mesh}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: example-gateway-class}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: v1
kind: Secret
metadata: {name: tls-terminate-certificate}
type: kubernetes.io/tls
data: {tls.crt: %s, tls.key: %s}
---
apiVersion: v1
kind: Service
metadata: {name: my-foo-service}
spec: {ports: [{port: 6000}]}
---
apiVersion: v1
kind: Service
metadata: {name: foo-svc}
spec: {ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: bar-svc}
spec: {ports: [{port: 8080}]}
`, base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM))
	if err := os.WriteFile(filepath.Join(dir, "zz-rauta.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	result := gatewayapi.Translate(res, gatewayapi.Options{})
	accepted := func(ps []gatewayv1.RouteParentStatus) bool {
		return len(ps) == 1 && metaTrue(ps[0].Conditions, "Accepted") && metaTrue(ps[0].Conditions, "ResolvedRefs")
	}
	if st := result.Status.TCPRoutes; len(st) != 1 || !accepted(st[0].Status.Parents) {
		t.Errorf("TCPRoute status: %+v", st)
	}
	if st := result.Status.TLSRoutes; len(st) != 2 || !accepted(st[0].Status.Parents) || !accepted(st[1].Status.Parents) {
		t.Errorf("TLSRoute status: %+v", st)
	}
	if st := result.Status.UDPRoutes; len(st) != 1 || !accepted(st[0].Status.Parents) {
		t.Errorf("UDPRoute status: %+v", st)
	}
	if len(result.Config.StreamRoutes) != 4 {
		t.Errorf("stream routes served: %+v", result.Config.StreamRoutes)
	}
	var notServed bool
	for _, o := range Summarize(res, result.Status) {
		if o.Kind == "XMesh" && strings.Contains(o.Ignored, "not served") {
			notServed = true
		}
		if o.Kind == "Gateway" && !o.OK() {
			t.Errorf("Gateway %s: %v", o.Name, o.Problems)
		}
	}
	if !notServed {
		t.Error("the XMesh is not reported as not served")
	}
	kinds := map[string]string{}
	for _, g := range result.Status.Gateways {
		for _, l := range g.Status.Listeners {
			if l.AttachedRoutes != 1 || len(l.SupportedKinds) != 1 {
				t.Errorf("listener %s/%s: %d routes, kinds %v", g.Name, l.Name, l.AttachedRoutes, l.SupportedKinds)
				continue
			}
			kinds[g.Name+"/"+string(l.Name)] = string(l.SupportedKinds[0].Kind)
		}
	}
	want := map[string]string{"my-tcp-gateway/foo": "TCPRoute", "my-udp-gateway/foo": "UDPRoute", "example-gateway/tls": "TLSRoute", "example-gateway/tls-terminate": "TLSRoute"}
	if !maps.Equal(kinds, want) {
		t.Errorf("supportedKinds %v, want %v", kinds, want)
	}
}

func metaTrue(cs []metav1.Condition, typ string) bool {
	for _, c := range cs {
		if c.Type == typ {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}
