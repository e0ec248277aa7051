package kube_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"

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

// Serve is the whole gateway: proxy, controller and admin endpoints.
func ExampleServe() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := kube.Serve(ctx, kube.ServeOptions{
		Kubeconfig:   "", // in-cluster
		AdminAddress: ":9090",
		Controller: kube.Options{
			Translate:      gatewayapi.Options{Address: "0.0.0.0"},
			LeaseNamespace: os.Getenv("POD_NAMESPACE"),
			Identity:       os.Getenv("POD_NAME"),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
}
