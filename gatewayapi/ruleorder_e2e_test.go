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

// ruleOrderYAML has two routes on one listener (%d is its port): "order",
// whose two rules have the same match with their headers listed in a
// different order, to the Services first and second; and "invalid", whose
// first rule names a Service that does not exist and whose second rule has
// the same match as the first, to the Service second. %s are the Services.
const ruleOrderYAML = `
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
metadata: {name: order, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /rule-order}, headers: [{name: x-version, value: one}, {name: x-color, value: blue}]}]
    backendRefs: [{name: first, port: 80}]
  - matches: [{path: {type: Exact, value: /rule-order}, headers: [{name: x-color, value: blue}, {name: x-version, value: one}]}]
    backendRefs: [{name: second, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: invalid, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /rule-order-invalid-backend}}]
    backendRefs: [{name: nonexistent, port: 80}]
  - matches: [{path: {type: Exact, value: /rule-order-invalid-backend}}]
    backendRefs: [{name: second, port: 80}]
%s`

// TestRuleOrderServed translates and serves routes whose rules have
// identical matches (Gateway API v1.7 HTTPRouteRuleOrder): the first rule
// wins, also when the order of its header matches differs from the
// second's, and when the first rule's backend does not exist the request
// is answered 500 rather than passed to the second rule. The route with
// the missing Service is Accepted with ResolvedRefs False
// (BackendNotFound).
func TestRuleOrderServed(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := free.Addr().(*net.TCPAddr).Port
	free.Close()
	services := ""
	for _, name := range []string{"first", "second"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		defer srv.Close()
		services += fmt.Sprintf(hostnameOriginServiceYAML, name, srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	res, opts, err := decodeResources(fmt.Appendf(nil, ruleOrderYAML, port, services))
	if err != nil {
		t.Fatal(err)
	}
	opts.Address = "127.0.0.1"
	r := Translate(res, opts)
	conds := map[string]string{}
	for _, st := range r.Status.HTTPRoutes {
		for _, ps := range st.Status.Parents {
			for _, c := range ps.Conditions {
				conds[st.Name+"/"+c.Type] = string(c.Status) + " " + c.Reason
			}
		}
	}
	for k, want := range map[string]string{
		"order/Accepted":       "True Accepted",
		"order/ResolvedRefs":   "True ResolvedRefs",
		"invalid/Accepted":     "True Accepted",
		"invalid/ResolvedRefs": "False BackendNotFound",
	} {
		if conds[k] != want {
			t.Errorf("%s = %q, want %q", k, conds[k], want)
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
	send := func(path string, hdr ...string) string {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr.String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
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
	for _, tt := range []struct {
		path string
		hdr  []string
		want string
	}{
		{"/rule-order", []string{"X-Color", "blue", "X-Version", "one"}, "first"},
		{"/rule-order", []string{"X-Version", "one", "X-Color", "blue"}, "first"},
		{"/rule-order", []string{"X-Version", "one"}, "404"},
		{"/rule-order-invalid-backend", nil, "500"},
	} {
		if got := send(tt.path, tt.hdr...); got != tt.want {
			t.Errorf("GET %s %v = %s, want %s", tt.path, tt.hdr, got, tt.want)
		}
	}
}
