package testcluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestVersionsMatchBuildModules keeps the constants in step with the
// nested modules scripts/kube-binaries builds from.
func TestVersionsMatchBuildModules(t *testing.T) {
	for _, tc := range []struct{ file, module, want string }{
		{"../../hack/apiserver/kube/go.mod", "k8s.io/kubernetes", KubernetesVersion},
		{"../../hack/apiserver/etcd/go.mod", "go.etcd.io/etcd/server/v3", EtcdVersion},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "require" && f[1] == tc.module {
				got = f[2]
			}
		}
		if got != tc.want {
			t.Errorf("%s requires %s %q; the constant says %q", tc.file, tc.module, got, tc.want)
		}
	}
}

func TestBinariesLookup(t *testing.T) {
	empty := t.TempDir()
	t.Run("env set, binaries missing", func(t *testing.T) {
		t.Setenv(EnvBinaries, empty)
		_, err := Binaries()
		if err == nil || errors.Is(err, ErrNoBinaries) {
			t.Fatalf("Binaries() = %v, want a hard error (not ErrNoBinaries) when %s is set", err, EnvBinaries)
		}
	})
	t.Run("env unset, cache empty", func(t *testing.T) {
		t.Setenv(EnvBinaries, "")
		os.Unsetenv(EnvBinaries)
		t.Setenv("XDG_CACHE_HOME", empty)
		_, err := Binaries()
		if !errors.Is(err, ErrNoBinaries) {
			t.Fatalf("Binaries() = %v, want ErrNoBinaries", err)
		}
		want := filepath.Join(empty, "rauta", "kube", KubernetesVersion+"-etcd-"+EtcdVersion)
		if d, _ := DefaultBinariesDir(); d != want {
			t.Errorf("DefaultBinariesDir() = %q, want %q", d, want)
		}
	})
	t.Run("env set, binaries present", func(t *testing.T) {
		dir := t.TempDir()
		for _, b := range []string{"etcd", "kube-apiserver"} {
			if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv(EnvBinaries, dir)
		got, err := Binaries()
		if err != nil || got != dir {
			t.Fatalf("Binaries() = %q, %v; want %q", got, err, dir)
		}
	})
}

func TestChannelString(t *testing.T) {
	got := []string{Standard.String(), Experimental.String(), NoCRDs.String(), Channel(9).String()}
	want := []string{"standard", "experimental", "none", "Channel(9)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
}

// TestCluster starts a control plane, uses it through Config and the
// kubeconfig file, checks that the Gateway API CRDs validate, and checks
// that Stop leaves no process behind.
func TestCluster(t *testing.T) {
	c := ForTest(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	kc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(kc)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != KubernetesVersion {
		t.Errorf("server version %q, want %q", v.GitVersion, KubernetesVersion)
	}
	if c.GatewayAPIVersion == "" {
		t.Error("GatewayAPIVersion is empty")
	}

	good := `apiVersion: v1
kind: Namespace
metadata: {name: tc}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: tc}
spec:
  rules:
  - matches: [{path: {type: PathPrefix, value: /ok}}]
`
	objs, err := c.Apply(ctx, []byte(good), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[1].GetUID() == "" {
		t.Fatalf("Apply returned %d objects (%v)", len(objs), objs)
	}
	// CEL validation of the CRD: a path must start with "/".
	bad := strings.Replace(good, "value: /ok", "value: ok", 1)
	if _, err := c.Apply(ctx, []byte(bad), ApplyOptions{DryRun: true}); err == nil || !strings.Contains(err.Error(), "HTTPRoute tc/r") {
		t.Errorf("applying an invalid path: err = %v, want a rejection naming HTTPRoute tc/r", err)
	}
	// RBAC is enforced for impersonated users.
	anon := kubernetes.NewForConfigOrDie(c.UserConfig("someone"))
	if _, err := anon.CoreV1().Namespaces().Get(ctx, "tc", metav1.GetOptions{}); err == nil {
		t.Error("an unprivileged user read a namespace: RBAC is not enforced")
	}

	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after Stop", pid)
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop (err %v)", c.Dir, err)
	}
}

// TestControllerManager: with ControllerManager, a deleted namespace is
// emptied and goes away, and a ReplicaSet gets its Pods.
func TestControllerManager(t *testing.T) {
	c := ForTest(t, Options{ControllerManager: true, Channel: NoCRDs})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := kubernetes.NewForConfigOrDie(c.Config)
	manifest := `apiVersion: v1
kind: Namespace
metadata: {name: doomed}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs, namespace: doomed}
spec:
  replicas: 2
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      automountServiceAccountToken: false
      containers: [{name: c, image: example.invalid/x}]
`
	if _, err := c.Apply(ctx, []byte(manifest), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		pods, err := cs.CoreV1().Pods("doomed").List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 2 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the ReplicaSet got no Pods: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := cs.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the namespace was not deleted: %v\n%s", err, tail(filepath.Join(c.Dir, "kube-controller-manager.log"), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRestartAPIServer stops the API server, sees it unreachable, starts it
// again and finds it at the same address with the objects written before.
func TestRestartAPIServer(t *testing.T) {
	c := ForTest(t, Options{Channel: NoCRDs})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: kept}\n"), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := c.StopAPIServer(); err == nil {
		t.Error("a second StopAPIServer succeeded; want an error: it is not running")
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	_, err = cs.CoreV1().Namespaces().Get(short, "kept", metav1.GetOptions{})
	cancelShort()
	if err == nil {
		t.Fatal("the API server answered while stopped")
	}
	if err := c.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAPIServer(ctx); err == nil {
		t.Error("a second StartAPIServer succeeded; want an error: it is running")
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("after the restart, with the old Config: %v", err)
	}
}
