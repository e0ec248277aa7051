package testcluster_test

import (
	"context"
	"fmt"
	"log"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rauta/rauta/internal/testcluster"
)

// A test starts a control plane (or skips when it cannot be built), applies
// manifests and talks to it with client-go.
func Example() {
	c, err := testcluster.Start(context.Background(), testcluster.Options{})
	if err != nil {
		log.Fatal(err) // in a test: testcluster.ForTest(t, ...) skips or fails
	}
	defer c.Stop()
	ctx := context.Background()
	if _, err := c.Apply(ctx, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n"), testcluster.ApplyOptions{}); err != nil {
		log.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(c.Config)
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "demo", metav1.GetOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ns.Name, c.GatewayAPIVersion)
}

// The Gateway API channels name the CRD directories of the gateway-api
// module.
func ExampleChannel() {
	fmt.Println(testcluster.Standard, testcluster.Experimental)
	// Output: standard experimental
}
