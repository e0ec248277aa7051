package gatewayapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rauta/rauta/proxy"
)

// hostnameOriginYAML has a listener "abc" with hostname abc.example.com
// and a listener "any" without hostname, and three routes, each to a
// Service of its own: the oldest without hostnames (on "abc" only), an
// older one with *.example.com and a newer one with abc.example.com whose
// path match is less specific than the wildcard route's. %d are the two
// listener ports and the endpoint ports of none, wild and exact.
const hostnameOriginYAML = `
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
  - {name: abc, port: %d, protocol: HTTP, hostname: abc.example.com}
  - {name: any, port: %d, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: none, namespace: infra, creationTimestamp: "2025-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: abc}]
  rules: [{backendRefs: [{name: none, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wild, namespace: infra, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["*.example.com"]
  rules: [{matches: [{path: {type: Exact, value: /a/b}}], backendRefs: [{name: wild, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: exact, namespace: infra, creationTimestamp: "2026-02-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [abc.example.com]
  rules: [{matches: [{path: {type: PathPrefix, value: /}, method: GET}], backendRefs: [{name: exact, port: 80}]}]
`

const hostnameOriginServiceYAML = `
---
apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: infra}
spec: {ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %[1]s, namespace: infra, labels: {kubernetes.io/service-name: %[1]s}}
addressType: IPv4
ports: [{name: http, port: %[2]d}]
endpoints: [{addresses: [127.0.0.1]}]
`

// TestHostnameOriginPrecedenceServed translates the routes and serves
// them with the proxy on loopback (Gateway API v1.7
// GatewayRouteHostnameIntersectionPrecedence): on the listener
// abc.example.com the newer exact route wins over the older wildcard route
// although its path match is less specific, requests it does not match
// reach the wildcard route, then the route without hostnames; on the
// listener without hostname the exact route wins the same way.
func TestHostnameOriginPrecedenceServed(t *testing.T) {
	var ports []any
	for range 2 {
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, free.Addr().(*net.TCPAddr).Port)
		free.Close()
	}
	yaml := ""
	for _, name := range []string{"none", "wild", "exact"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		defer srv.Close()
		ports = append(ports, srv.Listener.Addr().(*net.TCPAddr).Port)
		yaml += fmt.Sprintf(hostnameOriginServiceYAML, name, srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	res, opts, err := decodeResources(fmt.Appendf(nil, hostnameOriginYAML+yaml, ports[0], ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	opts.Address = "127.0.0.1"
	r := Translate(res, opts)
	for _, st := range r.Status.HTTPRoutes {
		for _, ps := range st.Status.Parents {
			for _, c := range ps.Conditions {
				if c.Status != "True" {
					t.Fatalf("route %s: %s %s %s", st.Name, c.Type, c.Reason, c.Message)
				}
			}
		}
	}

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	if err := p.Apply(r.Config); err != nil {
		t.Fatal(err)
	}
	send := func(listener, method, host, path string) string {
		t.Helper()
		addr, ok := p.Addr("infra/gw/" + listener)
		if !ok {
			t.Fatalf("listener %s is not served", listener)
		}
		req, err := http.NewRequest(method, "http://"+addr.String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprint(resp.StatusCode)
		}
		return strings.TrimSpace(string(body))
	}
	tests := []struct{ listener, method, host, path, want string }{
		{"abc", "GET", "abc.example.com", "/a/b", "exact"},
		{"abc", "GET", "abc.example.com", "/other", "exact"},
		{"abc", "PUT", "abc.example.com", "/a/b", "wild"},
		{"abc", "PUT", "abc.example.com", "/other", "none"},
		{"any", "GET", "abc.example.com", "/a/b", "exact"},
		{"any", "PUT", "abc.example.com", "/a/b", "wild"},
		{"any", "PUT", "x.example.com", "/a/b", "wild"},
		{"any", "PUT", "abc.example.com", "/other", "404"},
	}
	for _, tt := range tests {
		if got := send(tt.listener, tt.method, tt.host, tt.path); got != tt.want {
			t.Errorf("%s %s %s%s = %s, want %s", tt.listener, tt.method, tt.host, tt.path, got, tt.want)
		}
	}
}
