package nodeagent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/rauta/rauta/internal/testcluster"
)

// helperEnv makes the test binary act as a container's program: an HTTP
// server on $PORT answering with the Pod's name and the content of the
// file $FILE, logging every request to stdout.
const helperEnv = "NODEAGENT_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "serve" {
		serveHelper()
		return
	}
	os.Exit(m.Run())
}

func serveHelper() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: ":" + os.Getenv("PORT"), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(os.Getenv("FILE"))
		if err != nil {
			b = []byte(err.Error())
		}
		fmt.Printf("served %s\n", r.URL.Path)
		fmt.Fprintf(w, "%s %s", os.Getenv("POD_NAME"), b)
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Println("listening")
	_ = srv.ListenAndServe()
}

// needRoot skips tests that create network namespaces, and otherwise
// holds a machine-wide lock until the test ends: two test processes would
// use the same prefixes and addresses.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: iproute2's ip is not installed")
	}
	dir := "/run/lock"
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = os.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(dir, "rauta-nodeagent-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// leftovers lists the namespaces and links carrying prefix.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	ns, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(ns), "\n") {
		if f := strings.Fields(l); len(f) > 0 && ownedName(f[0], prefix+"-") {
			out = append(out, f[0])
		}
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, l := range parseLinkNames(links) {
		if ownedName(l, prefix+"h") || ownedName(l, prefix+"p") {
			out = append(out, l)
		}
	}
	return out
}

func TestNetworkAttach(t *testing.T) {
	needRoot(t)
	const prefix = "rnu"
	n, err := NewNetwork(prefix, netip.MustParsePrefix("10.251.0.0/24"), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() { _ = n.Cleanup(ctx) })
	a, err := n.Attach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.PodIP.String() != "10.251.0.2" || a.HostIP.String() != "10.251.0.1" {
		t.Errorf("addresses %v %v", a.HostIP, a.PodIP)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", a.Namespace, self)
	cmd.Env = []string{helperEnv + "=serve", "PORT=8080", "POD_NAME=p", "FILE=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	body := getEventually(t, "http://"+net.JoinHostPort(a.PodIP.String(), "8080")+"/x")
	if !strings.HasPrefix(body, "p ") {
		t.Errorf("body %q", body)
	}
	// The server listens in the Pod's namespace only.
	if c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("the Pod's port is open on the host's loopback")
	}
	if err := n.Detach(ctx, a); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the process in the namespace survived Detach")
	}
	if left := leftovers(t, prefix); len(left) > 0 {
		t.Errorf("left after Detach: %v", left)
	}
	// Remains of a killed run are removed by Cleanup.
	if _, err := n.Attach(ctx); err != nil {
		t.Fatal(err)
	}
	n2, _ := NewNetwork(prefix, netip.MustParsePrefix("10.251.0.0/24"), "")
	if err := n2.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, prefix); len(left) > 0 {
		t.Errorf("left after Cleanup: %v", left)
	}
}

func getEventually(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgent runs the agent against a real API server: Pods are bound, run
// in their namespaces, reported Ready with their IPs, their logs reach the
// pods/log subresource, deletion finishes, and nothing is left at exit.
func TestAgent(t *testing.T) {
	needRoot(t)
	c := testcluster.ForTest(t, testcluster.Options{Channel: testcluster.NoCRDs, ControllerManager: true})
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "rnt"
	agent, err := New(Config{
		Client:            client,
		NodeName:          "agent-test",
		PodCIDR:           netip.MustParsePrefix("10.252.0.0/24"),
		LinkPrefix:        prefix,
		StateDir:          t.TempDir(),
		Images:            Images{"example.com/helper": {self}},
		HeartbeatInterval: time.Second,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- agent.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	}
	t.Cleanup(stop)

	const ns = "agent-test"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "msg"},
		Data:       map[string][]byte{"text": []byte("from-a-secret")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "example.com/helper:v1",
				Env: []corev1.EnvVar{
					{Name: helperEnv, Value: "serve"},
					{Name: "PORT", Value: "8080"},
					{Name: "FILE", Value: "/etc/msg/text"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "msg", MountPath: "/etc/msg"}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}},
					PeriodSeconds: 1,
				},
			}},
			Volumes: []corev1.Volume{{Name: "msg", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "msg"}}}},
		},
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, client, ns, "web", func(p *corev1.Pod) bool { return isReady(p) })
	if got.Spec.NodeName != "agent-test" || got.Status.Phase != corev1.PodRunning || !strings.HasPrefix(got.Status.PodIP, "10.252.0.") {
		t.Fatalf("pod: node %q phase %s IP %q", got.Spec.NodeName, got.Status.Phase, got.Status.PodIP)
	}
	node, err := client.CoreV1().Nodes().Get(ctx, "agent-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !nodeReady(node) || node.Status.DaemonEndpoints.KubeletEndpoint.Port == 0 {
		t.Errorf("node status: %+v", node.Status)
	}

	// The EndpointSlice controller publishes the Pod as a ready endpoint.
	if _, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !readyEndpoint(ctx, client, ns, "web", got.Status.PodIP) {
		if time.Now().After(deadline) {
			t.Fatalf("no ready endpoint %s in the EndpointSlices of Service web", got.Status.PodIP)
		}
		time.Sleep(100 * time.Millisecond)
	}

	body := getEventually(t, "http://"+net.JoinHostPort(got.Status.PodIP, "8080")+"/hello")
	if body != "web from-a-secret" {
		t.Errorf("body %q, want %q", body, "web from-a-secret")
	}

	// Through the API server, as the conformance suite reads mirror logs.
	since := metav1.NewTime(time.Now().Add(-time.Minute))
	deadline = time.Now().Add(10 * time.Second)
	for {
		logs, err := client.CoreV1().Pods(ns).GetLogs("web", &corev1.PodLogOptions{Container: "web", SinceTime: &since}).Do(ctx).Raw()
		if err == nil && strings.Contains(string(logs), "served /hello\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod logs: %q, %v", logs, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Graceful deletion: the agent stops the container and removes the
	// Pod object and its namespace.
	grace := int64(5)
	if err := client.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, client, ns, "web")
	deadline = time.Now().Add(10 * time.Second)
	for len(leftovers(t, prefix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("left after deletion: %v", leftovers(t, prefix))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A Pod whose image no program stands for waits with a reason.
	bad := pod.DeepCopy()
	bad.Name = "unknown-image"
	bad.Spec.Containers[0].Image = "example.com/unknown:v1"
	if _, err := client.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, client, ns, "unknown-image", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == "RunContainerError" &&
			strings.Contains(cs[0].State.Waiting.Message, "no local program")
	})

	// At exit the agent removes every namespace and reports the Node and
	// its Pods not ready.
	second := pod.DeepCopy()
	second.Name = "web-2"
	if _, err := client.CoreV1().Pods(ns).Create(ctx, second, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(t, client, ns, "web-2", isReady)
	stop()
	if left := leftovers(t, prefix); len(left) > 0 {
		t.Errorf("left after exit: %v", left)
	}
	bg := context.Background()
	p2, err := client.CoreV1().Pods(ns).Get(bg, "web-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if isReady(p2) {
		t.Error("pod still Ready after the agent exited")
	}
	node, err = client.CoreV1().Nodes().Get(bg, "agent-test", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodeReady(node) {
		t.Error("node still Ready after the agent exited")
	}
	if entries, _ := os.ReadDir(filepath.Join(agent.cfg.StateDir, "pods")); len(entries) > 0 {
		t.Errorf("pod directories left: %d", len(entries))
	}
}

// readyEndpoint reports whether an EndpointSlice of the Service lists ip
// as a ready endpoint.
func readyEndpoint(ctx context.Context, client kubernetes.Interface, ns, svc, ip string) bool {
	slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		return false
	}
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if len(e.Addresses) > 0 && e.Addresses[0] == ip && e.Conditions.Ready != nil && *e.Conditions.Ready {
				return true
			}
		}
	}
	return false
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitPod(t *testing.T, client kubernetes.Interface, ns, name string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			if p != nil {
				t.Fatalf("pod %s/%s: condition not met; status %+v (err %v)", ns, name, p.Status, err)
			}
			t.Fatalf("pod %s/%s: %v", ns, name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitGone(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s/%s not deleted: %v", ns, name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
