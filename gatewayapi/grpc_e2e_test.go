package gatewayapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/rauta/rauta/internal/grpctest"
	"github.com/rauta/rauta/proxy"
)

// grpcE2EYAML is a Gateway with an HTTP (h2c) and an HTTPS listener and a
// GRPCRoute that routes echo.Echo by method and by header to two
// Services, and a service whose backend does
// not exist. %d are the two listener ports and the endpoint ports of v1
// and v2.
const grpcE2EYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: rauta
  listeners:
  - {name: h2c, port: %d, protocol: HTTP}
  - {name: tls, port: %d, protocol: HTTPS, hostname: grpc.example.com, tls: {certificateRefs: [{name: cert}]}}
---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: infra}
type: kubernetes.io/tls
stringData: {tls.crt: "${CERT}", tls.key: "${KEY}"}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - name: v2-by-header
    matches: [{method: {service: echo.Echo}, headers: [{name: version, value: two}]}]
    backendRefs: [{name: v2, port: 9000}]
  - name: say
    matches: [{method: {service: echo.Echo, method: Say}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: version, value: from-gateway}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-gateway, value: rauta}]}
    backendRefs: [{name: v1, port: 9000}]
  - name: slow
    matches: [{method: {service: echo.Echo, method: Slow}}]
    backendRefs: [{name: v1, port: 9000}]
  - name: others
    matches: [{method: {type: RegularExpression, service: "echo\\.Echo", method: "Missing|Chat"}}]
    backendRefs: [{name: v2, port: 9000}]
  - name: gone
    matches: [{method: {service: gone.Gone}}]
    backendRefs: [{name: nowhere, port: 9000}]
`

const grpcE2EServiceYAML = `
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: infra}
spec: {ports: [{name: grpc, port: 9000, targetPort: grpc}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %[1]s, namespace: infra, labels: {kubernetes.io/service-name: %[1]s}}
addressType: IPv4
ports: [{name: grpc, port: %[2]d}]
endpoints: [{addresses: [127.0.0.1]}]
`

// TestGRPCRouteServed translates a GRPCRoute and serves it with the proxy
// on loopback, calling it with gRPC framing over h2c and over TLS: calls
// are routed by method and by header to backends spoken to over h2c
// (inferred from the route kind), the rule's filters apply, the backend's
// gRPC errors pass through, the gateway answers UNIMPLEMENTED for a method
// no rule matches and UNAVAILABLE for a rule whose backend does not exist,
// grpc-timeout ends a call with DEADLINE_EXCEEDED, and a bidirectional
// stream passes message by message.
func TestGRPCRouteServed(t *testing.T) {
	var ports []any
	for range 2 {
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, free.Addr().(*net.TCPAddr).Port)
		free.Close()
	}
	yaml := fmt.Sprintf(grpcE2EYAML, ports...)
	for _, name := range []string{"v1", "v2"} {
		srv := grpctest.EchoServer(name)
		defer srv.Close()
		yaml += fmt.Sprintf(grpcE2EServiceYAML, name, srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	res, opts, err := decodeResources([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	opts.Address = "127.0.0.1"
	r := Translate(res, opts)
	if len(r.Status.GRPCRoutes) != 1 {
		t.Fatalf("GRPCRoute statuses %+v", r.Status.GRPCRoutes)
	}
	for _, ps := range r.Status.GRPCRoutes[0].Status.Parents {
		for _, c := range ps.Conditions {
			if c.Type == "Accepted" && c.Status != "True" || c.Type == "ResolvedRefs" && c.Reason != "BackendNotFound" {
				t.Fatalf("GRPCRoute: %s %s %s %s", c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	if err := p.Apply(r.Config); err != nil {
		t.Fatal(err)
	}
	cert, err := os.ReadFile("testdata/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cert)
	clients := map[string]struct {
		c    *http.Client
		base string
	}{}
	for _, l := range []string{"h2c", "tls"} {
		addr, ok := p.Addr("infra/gw/" + l)
		if !ok {
			t.Fatalf("listener %s not served", l)
		}
		if l == "h2c" {
			c := grpctest.H2CClient()
			defer c.CloseIdleConnections()
			clients[l] = struct {
				c    *http.Client
				base string
			}{c, "http://" + addr.String()}
			continue
		}
		c := grpctest.TLSClient(&tls.Config{RootCAs: roots, ServerName: "grpc.example.com"})
		defer c.CloseIdleConnections()
		clients[l] = struct {
			c    *http.Client
			base string
		}{c, "https://" + addr.String()}
	}

	for name, cl := range clients {
		t.Run(name, func(t *testing.T) {
			call := func(path, msg string, hdr ...string) grpctest.Result {
				t.Helper()
				hdr = append(hdr, "Host", "grpc.example.com")
				res, err := grpctest.Unary(cl.c, cl.base+path, msg, hdr...)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				return res
			}
			say := call("/echo.Echo/Say", "hi")
			if say.Status != "0" || len(say.Messages) != 1 || say.Messages[0] != "v1:hi" ||
				say.Header.Get("X-Seen-Version") != "from-gateway" || say.Header.Get("X-Gateway") != "rauta" {
				t.Errorf("Say: %+v", say)
			}
			// An Exact service and method outrank a service with a header
			// match (more characters of method matched).
			if v1 := call("/echo.Echo/Say", "hi", "Version", "two"); v1.Status != "0" || len(v1.Messages) != 1 || v1.Messages[0] != "v1:hi" {
				t.Errorf("Say with version two: %+v", v1)
			}
			// The header rule takes the methods no other rule names: v2
			// answers UNIMPLEMENTED itself.
			if v2 := call("/echo.Echo/Unknown", "", "Version", "two"); v2.Status != "12" || v2.Header.Get("X-Backend") != "v2" {
				t.Errorf("Unknown with version two: %+v", v2)
			}
			if m := call("/echo.Echo/Missing", ""); m.Status != "5" || m.Message != "no such thing" || m.Header.Get("X-Backend") != "v2" {
				t.Errorf("Missing: the backend's NOT_FOUND must pass through: %+v", m)
			}
			for path, want := range map[string]string{
				"/echo.Echo/Unknown": "12", // no rule matches without the header: UNIMPLEMENTED
				"/other.Svc/Say":     "12",
				"/gone.Gone/Call":    "14", // the backend does not exist: UNAVAILABLE
			} {
				if g := call(path, ""); g.HTTPStatus != 200 || g.ContentType != "application/grpc" || g.Status != want || len(g.Messages) != 0 || g.Header.Get("X-Backend") != "" {
					t.Errorf("%s: %+v, want a trailers-only answer with grpc-status %s", path, g, want)
				}
			}
			slow := call("/echo.Echo/Slow", "", "Grpc-Timeout", "300m")
			if slow.Status != "4" || slow.Elapsed > 5*time.Second {
				t.Errorf("Slow with grpc-timeout 300m: %+v, want DEADLINE_EXCEEDED before the backend answers at 5s", slow)
			}

			pr, pw := io.Pipe()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cl.base+"/echo.Echo/Chat", pr)
			req.Host = "grpc.example.com"
			req.Header.Set("Content-Type", "application/grpc")
			req.Header.Set("Te", "trailers")
			resp, err := cl.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			for i := range 3 {
				want := fmt.Sprint("m", i)
				if _, err := pw.Write(grpctest.Frame(want)); err != nil {
					t.Fatal(err)
				}
				if got, err := grpctest.ReadFrame(resp.Body); err != nil || got != "v2:"+want {
					t.Fatalf("Chat message %d: %q %v", i, got, err)
				}
			}
			pw.Close()
			if _, err := grpctest.ReadFrame(resp.Body); err != io.EOF || resp.Trailer.Get("Grpc-Status") != "0" {
				t.Fatalf("Chat end: %v, grpc-status %q", err, resp.Trailer.Get("Grpc-Status"))
			}
		})
	}
}
