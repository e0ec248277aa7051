// Command localcluster runs the control plane of the conformance run on
// loopback: etcd and kube-apiserver (package internal/testcluster, with the
// experimental-channel Gateway API CRDs of the gateway-api version this
// module requires) plus kube-controller-manager for the Deployment,
// ReplicaSet, EndpointSlice, Namespace, ServiceAccount and garbage
// collector controllers. The binaries come from scripts/kube-binaries.
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
	"os/exec"
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

// controllers are the kube-controller-manager controllers the suite's
// objects need: Deployments make ReplicaSets make Pods, Services get
// EndpointSlices, deleted namespaces and owners are cleaned up.
var controllers = []string{
	"deployment",
	"replicaset",
	"endpointslice",
	"endpointslicemirroring",
	"namespace",
	"serviceaccount",
	"garbagecollector",
}

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
		Binaries:     dir,
		Channel:      testcluster.Experimental,
		StartTimeout: *startTimeout,
		Logf:         log.Printf,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			log.Printf("localcluster: stopping: %v", err)
		}
	}()

	kcm, err := startControllerManager(c, dir)
	if err != nil {
		return err
	}
	defer kcm.stop()

	if err := waitControllers(ctx, c, kcm, *startTimeout); err != nil {
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

	select {
	case <-ctx.Done():
		log.Printf("localcluster: stopping")
		return nil
	case <-kcm.done:
		return fmt.Errorf("kube-controller-manager exited: %v; its log ends with:\n%s", kcm.err, tail(kcm.log, 30))
	}
}

// child is the controller manager process.
type child struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startControllerManager(c *testcluster.Cluster, dir string) (*child, error) {
	logPath := filepath.Join(c.Dir, "kube-controller-manager.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(dir, "kube-controller-manager"),
		"--kubeconfig="+c.Kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
		"--concurrent-service-endpoint-syncs=10",
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	k := &child{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		k.err = cmd.Wait()
		f.Close()
		close(k.done)
	}()
	return k, nil
}

// stop ends the process by its PID: SIGTERM, SIGKILL after 10 s.
func (k *child) stop() {
	select {
	case <-k.done:
		return
	default:
	}
	_ = syscall.Kill(k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
}

// waitControllers waits until the controller manager works: the
// ServiceAccount controller has created the default ServiceAccount of a
// namespace made for the check.
func waitControllers(ctx context.Context, c *testcluster.Cluster, k *child, timeout time.Duration) error {
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
		case <-k.done:
			return fmt.Errorf("kube-controller-manager exited (%v) before it was ready; its log ends with:\n%s", k.err, tail(k.log, 30))
		case <-ctx.Done():
			return fmt.Errorf("kube-controller-manager not ready: %w; its log ends with:\n%s", ctx.Err(), tail(k.log, 30))
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
