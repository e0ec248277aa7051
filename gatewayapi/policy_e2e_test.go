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

// policyServeYAML is a Gateway on loopback with a route to three
// endpoints: rule "limited" under a TrafficPolicy of 2 requests per
// second with a burst of 2, rule "sticky" to a Service whose BackendPolicy
// balances by Maglev on the header X-User. %d are the Gateway port and
// the three endpoint ports.
const policyServeYAML = `
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
  listeners: [{name: http, port: %d, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - name: limited
    matches: [{path: {value: /limited}}]
    backendRefs: [{name: web, port: 80}]
  - name: sticky
    matches: [{path: {value: /sticky}}]
    backendRefs: [{name: web, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: infra}
spec: {ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: infra, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-2, namespace: infra, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-3, namespace: infra, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: gateway.rauta.io/v1alpha1
kind: TrafficPolicy
metadata: {name: limit, namespace: infra}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: web, sectionName: limited}]
  rateLimit: {requests: 2, unit: Second}
---
apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: sticky, namespace: infra}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  loadBalancer: {type: Maglev, hashKey: {type: Header, name: X-User}}
`

// TestPoliciesServed translates policies from YAML and serves the result
// with the proxy on loopback: the TrafficPolicy's limit answers 429 past
// its burst, and the BackendPolicy's Maglev key keeps each user on one
// endpoint.
func TestPoliciesServed(t *testing.T) {
	var ports []any
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ports = append(ports, free.Addr().(*net.TCPAddr).Port)
	free.Close()
	for i := range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "endpoint %d", i)
		}))
		defer srv.Close()
		ports = append(ports, srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	res, opts, err := decodeResources(fmt.Appendf(nil, policyServeYAML, ports...))
	if err != nil {
		t.Fatal(err)
	}
	opts.Address = "127.0.0.1"
	r := Translate(res, opts)
	for _, st := range append(r.Status.TrafficPolicies, r.Status.BackendPolicies...) {
		if c := st.Status.Ancestors[0].Conditions[0]; c.Reason != "Accepted" {
			t.Fatalf("policy %s: %s %s", st.Name, c.Reason, c.Message)
		}
	}

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	if err := p.Apply(r.Config); err != nil {
		t.Fatal(err)
	}
	addr, ok := p.Addr("infra/gw/http")
	if !ok {
		t.Fatal("listener infra/gw/http is not served")
	}
	get := func(path, user string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr.String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}

	// The burst is 2: a third request at once is refused. The bucket
	// refills at 2 per second, so the three requests must come within
	// half a second, which loopback does by far.
	var codes []int
	for range 3 {
		code, _ := get("/limited", "")
		codes = append(codes, code)
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK || codes[2] != http.StatusTooManyRequests {
		t.Errorf("/limited answered %v, want [200 200 429]", codes)
	}

	// Each user stays on one endpoint; different users reach more than
	// one endpoint.
	endpoints := map[string]bool{}
	for u := range 20 {
		user := fmt.Sprintf("user-%d", u)
		_, first := get("/sticky", user)
		endpoints[first] = true
		for range 5 {
			if _, got := get("/sticky", user); got != first {
				t.Fatalf("%s moved from %q to %q", user, first, got)
			}
		}
	}
	if len(endpoints) < 2 {
		t.Errorf("20 users all reached %v, want them spread over the endpoints", endpoints)
	}
}
