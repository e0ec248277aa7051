// Command nodeagent runs the node agent of package nodeagent against a
// cluster: it registers a Node and runs the Pods scheduled to it, each in
// its own network namespace. It must run as root.
//
// Usage:
//
//	nodeagent --kubeconfig PATH --state-dir DIR --image REPO=PROGRAM [ARGS] ... [flags]
//	nodeagent dns -conf COREFILE      the CoreDNS stand-in (run inside a Pod)
//
// SIGINT or SIGTERM stop every Pod, remove the network namespaces and
// interfaces and exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rauta/rauta/conformance/nodeagent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
}

// imageFlags collects repeated --image flags.
type imageFlags struct{ images nodeagent.Images }

func (f *imageFlags) String() string { return fmt.Sprint(len(f.images), " images") }
func (f *imageFlags) Set(s string) error {
	return f.images.ParseImage(s)
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "dns" {
		return runDNS(ctx, args[1:])
	}
	fs := flag.NewFlagSet("nodeagent", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig `path` (required)")
	nodeName := fs.String("node-name", "rauta-node", "name of the Node to register")
	nodeIP := fs.String("node-ip", "127.0.0.1", "the Node's InternalIP, where the API server reaches the log endpoint")
	podCIDR := fs.String("pod-cidr", nodeagent.DefaultPodCIDR, "IPv4 `CIDR` carved into one /30 per Pod")
	prefix := fs.String("link-prefix", nodeagent.DefaultLinkPrefix, "name prefix of the network namespaces and interfaces")
	stateDir := fs.String("state-dir", "", "`directory` for the Pods' volumes and logs (required)")
	logAddr := fs.String("log-address", "", "listen `address` of the container log endpoint (default <node-ip>:0)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	images := &imageFlags{images: nodeagent.Images{}}
	fs.Var(images, "image", "`REPO=PROGRAM [ARGS]`: the program standing for an image (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *stateDir == "" {
		return errors.New("--kubeconfig and --state-dir are required")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ip, err := netip.ParseAddr(*nodeIP)
	if err != nil {
		return fmt.Errorf("--node-ip: %w", err)
	}
	cidr, err := netip.ParsePrefix(*podCIDR)
	if err != nil {
		return fmt.Errorf("--pod-cidr: %w", err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("--kubeconfig: %w", err)
	}
	restConfig.UserAgent = "rauta-nodeagent"
	restConfig.QPS, restConfig.Burst = 50, 100
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	agent, err := nodeagent.New(nodeagent.Config{
		Client:     client,
		NodeName:   *nodeName,
		NodeIP:     ip,
		PodCIDR:    cidr,
		LinkPrefix: *prefix,
		StateDir:   *stateDir,
		Images:     images.images,
		LogAddress: *logAddr,
		Logger:     logger,
	})
	if err != nil {
		return err
	}
	return agent.Run(ctx)
}

// runDNS serves the zones of a Corefile (the CoreDNS stand-in).
func runDNS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nodeagent dns", flag.ContinueOnError)
	conf := fs.String("conf", "Corefile", "Corefile `path`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*conf)
	if err != nil {
		return err
	}
	zones, err := nodeagent.ParseCorefile(f)
	f.Close()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	var names []string
	for _, z := range zones {
		names = append(names, fmt.Sprintf("%s:%d", z.Name, z.Port))
	}
	logger.Info("serving", "zones", strings.Join(names, " "))
	srv := &nodeagent.DNSServer{Zones: zones, Logger: logger}
	return srv.Serve(ctx, "")
}
