package filesource_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rauta/rauta/filesource"
	"github.com/rauta/rauta/gatewayapi"
)

func ExampleLoad() {
	dir, err := os.MkdirTemp("", "rauta-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	const gateway = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: rauta
spec:
  controllerName: rauta.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: demo
spec:
  gatewayClassName: rauta
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
`
	if err := os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(gateway), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	res, err := filesource.Load(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	result := gatewayapi.Translate(res, gatewayapi.Options{Address: "127.0.0.1"})
	for _, o := range filesource.Summarize(res, result.Status) {
		fmt.Println(o.String())
	}
	for _, l := range result.Config.Listeners {
		fmt.Println(l.Name, l.Address, l.Port, l.Protocol)
	}
	// Output:
	// GatewayClass rauta: accepted
	// Gateway default/demo: programmed (address 127.0.0.1, listener http: 0 routes)
	// default/demo/http 127.0.0.1 8080 HTTP
}

func ExampleError() {
	dir, err := os.MkdirTemp("", "rauta-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	const route = `# A route with a typo.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  rules:
  - matches:
    - path:
        type: PathPrefix
        valeu: /api
`
	if err := os.WriteFile(filepath.Join(dir, "route.yaml"), []byte(route), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	_, err = filesource.Load(dir)
	var e *filesource.Error
	if errors.As(err, &e) {
		fmt.Println(filepath.Base(e.File), e.Document, e.Line, e.Object, e.Field, errors.Is(err, filesource.ErrUnknownField))
	}
	// Output:
	// route.yaml 1 2 HTTPRoute default/web spec.rules[0].matches[0].path.valeu true
}
