package kube_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/kube"
	"github.com/rauta/rauta/proxy"
)

// RESTConfig reads a kubeconfig file; with an empty path it falls back to
// $KUBECONFIG, ~/.kube/config and the in-cluster configuration.
func ExampleRESTConfig() {
	dir, _ := os.MkdirTemp("", "kubeconfig")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config")
	_ = os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: secret}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`), 0o600)
	cfg, err := kube.RESTConfig(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Host)
	// Output: https://127.0.0.1:6443
}

// A Controller feeds a proxy the program owns; Run blocks until the
// context ends.
func ExampleController() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := kube.RESTConfig("")
	if err != nil {
		log.Fatal(err)
	}
	p := proxy.New(proxy.Options{})
	c, err := kube.New(cfg, kube.Options{
		Proxy:          p,
		Translate:      gatewayapi.Options{ControllerName: gatewayapi.DefaultControllerName},
		LeaseNamespace: "rauta-system",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// The whole gateway, as `rauta serve` runs it in a cluster: a proxy, a
// Controller feeding it, and admin.Run for the admin endpoints and the
// graceful shutdown.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := kube.RESTConfig("") // in-cluster
	if err != nil {
		log.Fatal(err)
	}
	p := proxy.New(proxy.Options{})
	c, err := kube.New(cfg, kube.Options{
		Proxy:          p,
		Translate:      gatewayapi.Options{Address: "0.0.0.0"},
		LeaseNamespace: os.Getenv("POD_NAMESPACE"),
		Identity:       os.Getenv("POD_NAME"),
	})
	if err != nil {
		log.Fatal(err)
	}
	err = admin.Run(ctx, admin.RunOptions{
		Proxy:   p,
		Address: ":9090",
		Status:  func() any { return c.Status() },
	}, c)
	if err != nil {
		log.Fatal(err)
	}
}
