package filesource

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/gatewayapi"
)

// TestLoadGRPCRoute decodes a GRPCRoute strictly: a valid one is loaded,
// a misspelt field is an error naming the field.
func TestLoadGRPCRoute(t *testing.T) {
	dir := writeFiles(t, map[string]string{"ok.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: echo.v1.Echo, method: Say}, headers: [{name: version, value: "2"}]}]
    backendRefs: [{name: echo, port: 9000}]
`})
	res, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GRPCRoutes) != 1 || res.GRPCRoutes[0].Name != "echo" || *res.GRPCRoutes[0].Spec.Rules[0].Matches[0].Method.Method != "Say" {
		t.Fatalf("loaded %+v", res.GRPCRoutes)
	}

	dir = writeFiles(t, map[string]string{"bad.yaml": `
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: apps}
spec:
  rules:
  - matches: [{method: {sevice: echo.v1.Echo}}]
`})
	_, err = Load(dir)
	want := "bad.yaml: document 1 (line 2): GRPCRoute apps/echo: spec.rules[0].matches[0].method.sevice: unknown field"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

// TestGatewayAPIGRPCExamples loads the GRPCRoute examples shipped with the
// gateway-api module, served by a GatewayClass of rauta's with the
// Services and certificate they name: the routes with a parentRef are
// accepted with their references resolved, the others are reported as
// ignored.
func TestGatewayAPIGRPCExamples(t *testing.T) {
	ex := filepath.Join(gatewayAPIExamples(t), "standard")
	cert, err1 := os.ReadFile("../gatewayapi/testdata/cert.pem")
	key, err2 := os.ReadFile("../gatewayapi/testdata/key.pem")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// grpc-routing holds two GRPCRoutes named foo-route, one for each
	// way to write the example: they are loaded apart.
	for _, tc := range []struct {
		files    []string
		accepted []string // GRPCRoutes accepted with resolved references
		ignored  []string // GRPCRoutes without a parentRef
	}{
		{[]string{"grpc-routing/gateway.yaml", "grpc-routing/foo-grpcroute.yaml", "grpc-routing/bar-grpcroute.yaml"}, []string{"bar-route", "example-route", "foo-route"}, nil},
		{[]string{"grpc-routing/gateway.yaml", "grpc-routing/reflection-grpcroute.yaml"}, []string{"example-route", "foo-route"}, nil},
		{[]string{"basic-grpc.yaml"}, []string{"grpc-app-1"}, nil},
		{[]string{"grpc-filter.yaml"}, nil, []string{"grpc-filter-1"}},
		{[]string{"traffic-splitting/grpc-traffic-split-2.yaml"}, nil, []string{"foo-route"}},
	} {
		t.Run(strings.Join(tc.files, "+"), func(t *testing.T) {
			dir := t.TempDir()
			for i, f := range tc.files {
				b, err := os.ReadFile(filepath.Join(ex, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(f))), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.GRPCRoutes) == 0 {
				t.Fatal("no GRPCRoute loaded")
			}
			// The examples' own GatewayClass belongs to another
			// controller; rauta's class of the same name serves them.
			res.GatewayClasses = nil
			for _, g := range res.Gateways {
				res.GatewayClasses = append(res.GatewayClasses, gatewayv1.GatewayClass{
					ObjectMeta: metav1.ObjectMeta{Name: string(g.Spec.GatewayClassName)},
					Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayapi.DefaultControllerName},
				})
				res.Secrets = append(res.Secrets, corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: "example-com-cert", Namespace: g.Namespace},
					Type:       corev1.SecretTypeTLS,
					Data:       map[string][]byte{"tls.crt": cert, "tls.key": key},
				})
			}
			for _, r := range res.GRPCRoutes {
				for _, rule := range r.Spec.Rules {
					for _, br := range rule.BackendRefs {
						res.Services = append(res.Services, corev1.Service{
							ObjectMeta: metav1.ObjectMeta{Name: string(br.Name), Namespace: r.Namespace},
							Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: *br.Port}}},
						})
					}
				}
			}
			tr := gatewayapi.Translate(res, gatewayapi.Options{})
			var accepted, ignored []string
			for _, o := range Summarize(res, tr.Status) {
				if o.Kind != "GRPCRoute" {
					if !o.OK() {
						t.Errorf("%s", o.String())
					}
					continue
				}
				switch {
				case o.Ignored != "":
					ignored = append(ignored, o.Name)
				case o.OK():
					accepted = append(accepted, o.Name)
				default:
					t.Errorf("%s", o.String())
				}
			}
			if strings.Join(accepted, ",") != strings.Join(tc.accepted, ",") || strings.Join(ignored, ",") != strings.Join(tc.ignored, ",") {
				t.Errorf("accepted %v and ignored %v, want %v and %v", accepted, ignored, tc.accepted, tc.ignored)
			}
			served := 0
			for _, r := range tr.Config.Routes {
				if r.GRPC {
					served++
				}
			}
			if served < len(tc.accepted) {
				t.Errorf("%d gRPC routes served, want at least %d", served, len(tc.accepted))
			}
		})
	}
}
