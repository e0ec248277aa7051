package nodeagent_test

import (
	"fmt"
	"strings"

	"github.com/rauta/rauta/conformance/nodeagent"
)

// The images of the conformance suite's Pods are played by local programs:
// the echo server built from the gateway-api module, and the node agent's
// own DNS stand-in for CoreDNS.
func ExampleImages() {
	images := nodeagent.Images{}
	for _, flag := range []string{
		"registry.k8s.io/gateway-api/echo-basic=/cache/echo-basic",
		"registry.k8s.io/coredns/coredns=/cache/nodeagent dns",
	} {
		if err := images.ParseImage(flag); err != nil {
			fmt.Println(err)
		}
	}
	argv, ok := images.Lookup("registry.k8s.io/gateway-api/echo-basic:v1.5.1")
	fmt.Println(argv, ok)
	argv, ok = images.Lookup("registry.k8s.io/coredns/coredns:v1.12.2")
	fmt.Println(argv, ok)
	_, ok = images.Lookup("registry.k8s.io/gateway-api/echo-advanced:v1.5.1")
	fmt.Println(ok)
	// Output:
	// [/cache/echo-basic] true
	// [/cache/nodeagent dns] true
	// false
}

func ExampleParseCorefile() {
	zones, err := nodeagent.ParseCorefile(strings.NewReader(`.:53 {
    forward . 8.8.8.8 9.9.9.9
}
foo.bar.com:53 {
  whoami
}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, z := range zones {
		fmt.Println(z.Name, z.Port, z.Plugin == nodeagent.ZoneWhoami)
	}
	// Output:
	// . 53 false
	// foo.bar.com. 53 true
}
