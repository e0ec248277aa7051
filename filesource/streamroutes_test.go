package filesource

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rauta/rauta/gatewayapi"
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
// module that holds a TLSRoute, TCPRoute or UDPRoute: each loads, the
// UDPRoutes are kept as not served, and the others decode strictly.
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
		if got, want := len(res.TLSRoutes)+len(res.TCPRoutes)+len(res.NotServed), len(routeDoc.FindAllString(s, -1)); got != want {
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

// TestStreamExamplesStatus serves the tcp-routing and tls-routing
// examples with a GatewayClass of rauta's: the routes are accepted on
// their listeners, which list the route kinds they serve; the UDP example
// reports its UDPRoute as not served and its UDP listener as unsupported.
func TestStreamExamplesStatus(t *testing.T) {
	root := gatewayAPIExamples(t)
	dir := t.TempDir()
	copyFile := func(src, name string) {
		data, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("standard/tcp-routing/gateway.yaml", "tcp-gateway.yaml")
	copyFile("standard/tcp-routing/tcp-route.yaml", "tcp-route.yaml")
	copyFile("standard/udp-routing/gateway.yaml", "udp-gateway.yaml")
	copyFile("standard/udp-routing/udp-route.yaml", "udp-route.yaml")
	copyFile("standard/tls-routing/tls-route.yaml", "tls-route.yaml")
	extra := `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: my-tcp-gateway-class}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: my-udp-gateway-class}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: example-gateway}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: tls, port: 443, protocol: TLS, tls: {mode: Passthrough}}
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
`
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
	if st := result.Status.TLSRoutes; len(st) != 1 || !accepted(st[0].Status.Parents) {
		t.Errorf("TLSRoute status: %+v", st)
	}
	if len(result.Config.StreamRoutes) != 2 {
		t.Errorf("stream routes served: %+v", result.Config.StreamRoutes)
	}
	var notServed, udpListener bool
	for _, o := range Summarize(res, result.Status) {
		if o.Kind == "UDPRoute" && strings.Contains(o.Ignored, "not served") {
			notServed = true
		}
		if o.Kind == "Gateway" && o.Name == "my-udp-gateway" && strings.Contains(strings.Join(o.Problems, " "), "UnsupportedProtocol") {
			udpListener = true
		}
	}
	if !notServed || !udpListener {
		t.Errorf("UDPRoute reported not served: %v; UDP listener unsupported: %v", notServed, udpListener)
	}
	for _, g := range result.Status.Gateways {
		if g.Name != "my-tcp-gateway" {
			continue
		}
		l := g.Status.Listeners[0]
		if l.AttachedRoutes != 1 || len(l.SupportedKinds) != 1 || l.SupportedKinds[0].Kind != "TCPRoute" {
			t.Errorf("TCP listener: %d routes, kinds %v", l.AttachedRoutes, l.SupportedKinds)
		}
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
