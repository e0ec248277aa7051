package v1alpha1_test

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/rauta/rauta/apis/v1alpha1"
)

// Decoding a BackendPolicy from YAML strictly, so that a misspelt field is
// an error rather than a setting silently dropped.
func Example() {
	manifest := `
apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: web, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  loadBalancer:
    type: Maglev
    hashKey: {type: Header, name: X-User}
  healthCheck: {type: HTTP, interval: 10s, http: {path: /healthz}}
`
	var p v1alpha1.BackendPolicy
	if err := yaml.UnmarshalStrict([]byte(manifest), &p); err != nil {
		fmt.Println(err)
		return
	}
	lb := p.Spec.LoadBalancer
	fmt.Println(p.Namespace+"/"+p.Name, p.Spec.TargetRefs[0].Kind, p.Spec.TargetRefs[0].Name)
	fmt.Println(lb.Type, lb.HashKey.Type, lb.HashKey.Name)
	fmt.Println(p.Spec.HealthCheck.Type, *p.Spec.HealthCheck.Interval, p.Spec.HealthCheck.HTTP.Path)

	// A misspelt field is refused.
	err := yaml.UnmarshalStrict([]byte("spec: {loadBalancer: {typ: Maglev}}"), &v1alpha1.BackendPolicy{})
	fmt.Println(err)

	// The types are registered for clients and informers.
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Recognizes(v1alpha1.TrafficPolicyKind), v1alpha1.BackendPolicyResource)
	// Output:
	// shop/web Service web
	// Maglev Header X-User
	// HTTP 10s /healthz
	// error unmarshaling JSON: while decoding JSON: json: unknown field "typ"
	// true gateway.rauta.io/v1alpha1, Resource=backendpolicies
}
