package kube

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/proxy"
)

// RESTConfig returns the configuration to reach a cluster: the kubeconfig
// file at path when path is not empty; otherwise the file named by
// $KUBECONFIG or ~/.kube/config when one exists, and else the in-cluster
// configuration of a Pod (its service account).
func RESTConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if path != "" {
			return nil, fmt.Errorf("kube: kubeconfig %s: %w", path, err)
		}
		return nil, fmt.Errorf("kube: no kubeconfig and not in a cluster: %w", err)
	}
	return cfg, nil
}

// ServeOptions configure [Serve].
type ServeOptions struct {
	// Config reaches the cluster; nil means RESTConfig(Kubeconfig).
	Config *rest.Config
	// Kubeconfig is the kubeconfig file used when Config is nil; empty
	// means $KUBECONFIG, ~/.kube/config or the in-cluster configuration.
	Kubeconfig string
	// Controller configures the controller. Its Proxy must be nil: Serve
	// creates the proxy from Proxy. A nil Controller.Logger means Logger;
	// a nil Controller.Registerer means Proxy.Registerer (the metrics of
	// both go to one registry).
	Controller Options
	// Proxy are the options of the proxy Serve creates. A nil
	// Proxy.Logger means Logger.
	Proxy proxy.Options
	// AdminAddress is the address of the admin listener (package admin:
	// /healthz, /readyz, /metrics, /debug/config, /debug/status), e.g.
	// ":9090"; empty means none.
	AdminAddress string
	// Pprof serves net/http/pprof on the admin listener.
	Pprof bool
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger
	// ShutdownTimeout bounds the wait for requests in flight once ctx is
	// done; zero means proxy.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// OnStart, if set, is called with the admin listener's address (nil
	// without one) once it is bound, before the controller starts.
	OnStart func(adminAddr net.Addr)
}

// Serve runs rauta in a cluster until ctx is done: a proxy.Proxy, a
// [Controller] feeding it from the cluster (writing status while it holds
// the Lease, and telling the proxy how many replicas share its rate
// limits), and an admin listener whose /readyz turns ready once
// the caches have synced and the first configuration is applied. This is
// what `rauta serve --kubeconfig PATH` (or in a Pod, in-cluster) runs.
//
// When ctx is done, /readyz turns to 503, the controller stops and the
// proxy shuts down gracefully, requests in flight getting up to
// ShutdownTimeout. Serve returns nil after such a shutdown; it returns an
// error if the cluster cannot be reached or does not serve the Gateway
// API, if the admin address cannot be bound, or if the shutdown deadline
// passes.
func Serve(ctx context.Context, opts ServeOptions) error {
	log := cmp.Or(opts.Logger, slog.Default())
	if opts.Controller.Proxy != nil {
		return errors.New("kube: ServeOptions.Controller.Proxy must be nil: Serve creates the proxy")
	}
	cfg := opts.Config
	if cfg == nil {
		var err error
		if cfg, err = RESTConfig(opts.Kubeconfig); err != nil {
			return err
		}
	}
	popts := opts.Proxy
	if popts.Logger == nil {
		popts.Logger = log
	}
	p := proxy.New(popts)
	copts := opts.Controller
	copts.Proxy = p
	if copts.Logger == nil {
		copts.Logger = log
	}
	if copts.Registerer == nil {
		copts.Registerer = popts.Registerer
	}
	c, err := New(cfg, copts)
	if err != nil {
		return err
	}
	timeout := cmp.Or(opts.ShutdownTimeout, proxy.DefaultShutdownTimeout)

	err = admin.Run(ctx, admin.RunOptions{
		Proxy:           p,
		Address:         opts.AdminAddress,
		Ready:           func() bool { return c.Ready() },
		Status:          func() any { return c.Status() },
		Pprof:           opts.Pprof,
		Logger:          log,
		ShutdownTimeout: timeout,
		OnStart:         opts.OnStart,
	}, c.Run)
	if err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	return nil
}
