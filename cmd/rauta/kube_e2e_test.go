package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/rauta/rauta/internal/testcluster"
)

// TestServeKubeMode runs the binary in cluster mode (`rauta serve
// --kubeconfig`) against a real API server and checks that it becomes
// ready and writes the GatewayClass status.
func TestServeKubeMode(t *testing.T) {
	cl := testcluster.ForTest(t, testcluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cl.InstallGatewayAPI(ctx, testcluster.Standard); err != nil {
		t.Fatal(err)
	}
	const class = "rauta-cmd-e2e"
	controller := "rauta.io/cmd-e2e"
	if _, err := cl.Apply(ctx, []byte(fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: rauta-system}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: %s}
spec: {controllerName: %s}
`, class, controller)), testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}

	admin := fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	var out syncBuffer
	cmd := exec.Command(rautaBinary(t), "serve", "--kubeconfig", cl.Kubeconfig,
		"--controller-name", controller, "--admin-address", admin, "--address", "127.0.0.1",
		"--access-log", "off")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("rauta exited with %v\n%s", err, out.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("rauta did not stop on SIGTERM\n%s", out.String())
		}
	}()

	waitUntil(t, 60*time.Second, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, &out)

	dc, err := dynamic.NewForConfig(cl.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	waitUntil(t, 60*time.Second, "GatewayClass Accepted", func() bool {
		u, err := dc.Resource(gvr).Get(ctx, class, metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Accepted" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, &out)
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, out *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			lines := strings.Split(out.String(), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Fatalf("timed out waiting for %s; rauta's output:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
