// Command localcluster runs the control plane of the conformance run on
// loopback with package internal/testcluster: etcd, kube-apiserver (with
// the experimental-channel Gateway API CRDs of the gateway-api version this
// module requires) and kube-controller-manager (Deployments, ReplicaSets,
// EndpointSlices, namespaces, service accounts, garbage collection). The
// binaries come from scripts/kube-binaries.
//
// Usage:
//
//	localcluster --kubeconfig-out PATH [--binaries DIR] [--namespaces a,b]
//
// It writes an administrator kubeconfig to PATH once the controller manager
// works, then runs until SIGINT or SIGTERM, when it stops the controller
// manager, the API server and etcd (by PID) and removes their directory.
// The children are killed with it if it dies (PR_SET_PDEATHSIG).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rauta/rauta/internal/testcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		log.Printf("localcluster: %v", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	out := flag.String("kubeconfig-out", "", "write the administrator kubeconfig to `path` once the cluster works (required)")
	bin := flag.String("binaries", "", "`directory` holding etcd, kube-apiserver and kube-controller-manager (default: scripts/kube-binaries' cache)")
	startTimeout := flag.Duration("start-timeout", 3*time.Minute, "how long the control plane may take to start")
	namespaces := flag.String("namespaces", "", "comma-separated `names` of namespaces to create once the cluster works (e.g. rauta-system for rauta's Lease)")
	flag.Parse()
	if *out == "" {
		return errors.New("--kubeconfig-out is required")
	}
	dir := *bin
	if dir == "" {
		var err error
		if dir, err = testcluster.Binaries(); err != nil {
			return err
		}
	}
	began := time.Now()
	c, err := testcluster.Start(ctx, testcluster.Options{
		Binaries:          dir,
		Channel:           testcluster.Experimental,
		ControllerManager: true,
		StartTimeout:      *startTimeout,
		Logf:              log.Printf,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			log.Printf("localcluster: stopping: %v", err)
		}
	}()

	if err := waitControllers(ctx, c, *startTimeout); err != nil {
		return err
	}
	if err := createNamespaces(ctx, c, *namespaces); err != nil {
		return err
	}
	kubeconfig, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, kubeconfig, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	log.Printf("localcluster: ready after %v: API server %s, Gateway API %s; logs in %s", time.Since(began).Round(time.Millisecond), c.Config.Host, c.GatewayAPIVersion, c.Dir)

	<-ctx.Done()
	log.Printf("localcluster: stopping")
	return nil
}

// waitControllers waits until the controller manager works: the
// ServiceAccount controller has created the default ServiceAccount of a
// namespace made for the check.
func waitControllers(ctx context.Context, c *testcluster.Cluster, timeout time.Duration) error {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	const probe = "localcluster-probe"
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: probe}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("probe namespace: %w", err)
	}
	for {
		if _, err := client.CoreV1().ServiceAccounts(probe).Get(ctx, "default", metav1.GetOptions{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager not ready: %w; its log ends with:\n%s", ctx.Err(), tail(filepath.Join(c.Dir, "kube-controller-manager.log"), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Deleting it exercises the namespace controller too.
	return client.CoreV1().Namespaces().Delete(ctx, probe, metav1.DeleteOptions{})
}

// createNamespaces creates the comma-separated namespaces.
func createNamespaces(ctx context.Context, c *testcluster.Cluster, list string) error {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	return nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
