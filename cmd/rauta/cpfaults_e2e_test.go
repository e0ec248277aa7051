package main

// Control-plane faults: `rauta serve --kubeconfig` processes against a real
// API server (internal/testcluster) that is stopped and restarted, whose
// status-writing leader is killed, and that hands over an object its
// schema accepts but rauta cannot serve. The figures of a run go to
// docs/reliability.md, "Control-plane faults".

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/rauta/rauta/internal/testcluster"
)

// EnvCPOutage names the environment variable setting how long
// TestControlPlaneFaults keeps the API server stopped (a Go duration). The
// default, cpOutageShort, keeps the test within scripts/test's budget;
// docs/reliability.md quotes a run with 60s.
const EnvCPOutage = "RAUTA_CP_OUTAGE"

const cpOutageShort = 15 * time.Second

// Leader-election timings of the leader-kill case, passed as flags.
const (
	cpLeaseDuration = 6 * time.Second
	cpRenewDeadline = 4 * time.Second
	cpRetryPeriod   = time.Second
	// cpSlack is the time allowed on top of LeaseDuration + RetryPeriod
	// for a loaded machine: the survivor's poll, its write, and ours.
	cpSlack = 2 * time.Second
)

// cpEnv is what the cases share: one control plane, one binary, one
// backend.
type cpEnv struct {
	cl      *testcluster.Cluster
	bin     string
	dc      dynamic.Interface
	cs      kubernetes.Interface
	hostIP  string
	backend int // the backend's port on hostIP
}

// TestControlPlaneFaults runs rauta in cluster mode through control-plane
// faults (see the subtests). Set RAUTA_CP_OUTAGE=60s for the outage the
// issue asks for; the default is 15s.
func TestControlPlaneFaults(t *testing.T) {
	outage := cpOutageShort
	if v := os.Getenv(EnvCPOutage); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration such as 60s", EnvCPOutage, v)
		}
		outage = d
	}
	cl := testcluster.ForTest(t, testcluster.Options{})
	bin := make(chan string, 1)
	go func() { bin <- buildPlainBinary(t) }()
	env := &cpEnv{cl: cl, hostIP: localEndpointIP(t)}
	var err error
	if env.dc, err = dynamic.NewForConfig(cl.Config); err != nil {
		t.Fatal(err)
	}
	if env.cs, err = kubernetes.NewForConfig(cl.Config); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(env.hostIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	backend.Listener.Close()
	backend.Listener = ln
	backend.Start()
	t.Cleanup(backend.Close)
	env.backend = ln.Addr().(*net.TCPAddr).Port
	env.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: rauta-system}\n")
	if env.bin = <-bin; env.bin == "" {
		t.FailNow()
	}

	t.Run("APIServerOutage", func(t *testing.T) { env.outage(t, outage) })
	t.Run("LeaderKilled", env.leaderKilled)
	t.Run("MalformedObject", env.malformed)
}

func (e *cpEnv) apply(t *testing.T, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.cl.Apply(ctx, []byte(manifest), testcluster.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// setup creates a namespace with a GatewayClass of controller, a Gateway
// listening on port, the backend's Service and EndpointSlice, and an
// HTTPRoute "a" for /a.
func (e *cpEnv) setup(t *testing.T, ns, controller string, port int) {
	t.Helper()
	addrType := "IPv4"
	if strings.Contains(e.hostIP, ":") {
		addrType = "IPv6"
	}
	e.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: %[1]s}
spec: {controllerName: %[2]s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: %[1]s}
spec:
  gatewayClassName: %[1]s
  listeners: [{name: web, protocol: HTTP, port: %[3]d}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: %[1]s}
spec:
  ports: [{name: http, port: 80, targetPort: %[4]d, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-1
  namespace: %[1]s
  labels: {kubernetes.io/service-name: echo}
addressType: %[6]s
ports: [{name: http, port: %[4]d, protocol: TCP}]
endpoints: [{addresses: ["%[5]s"], conditions: {ready: true}}]
`, ns, controller, port, e.backend, e.hostIP, addrType))
	e.route(t, ns, "a", "PathPrefix", "/a")
}

// route applies an HTTPRoute of the Gateway with one path match.
func (e *cpEnv) route(t *testing.T, ns, name, matchType, path string) {
	t.Helper()
	e.apply(t, fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s, namespace: %s}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: %s, value: %q}}]
    backendRefs: [{name: echo, port: 80}]
`, name, ns, matchType, path))
}

// accepted returns the status, reason and message of the Accepted
// condition a route's parent status holds, with "" when there is none.
func (e *cpEnv) accepted(ns, name string) (status, reason, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	gvr := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	u, err := e.dc.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", "", ""
	}
	parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
	for _, p := range parents {
		pm, _ := p.(map[string]any)
		conds, _, _ := unstructured.NestedSlice(pm, "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Accepted" {
				s, _ := m["status"].(string)
				r, _ := m["reason"].(string)
				msg, _ := m["message"].(string)
				return s, r, msg
			}
		}
	}
	return "", "", ""
}

// leaseHolder returns the holder of a controller's status-writer Lease.
func (e *cpEnv) leaseHolder(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l, err := e.cs.CoordinationV1().Leases("rauta-system").Get(ctx, name, metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// start runs a replica bound to addr with extra flags.
func (e *cpEnv) start(t *testing.T, controller, addr, identity string, extra ...string) *shareProc {
	t.Helper()
	adminAddr := "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
	p := &shareProc{admin: "http://" + adminAddr, logs: &syncBuffer{}, exited: make(chan struct{})}
	args := append([]string{"serve", "--kubeconfig", e.cl.Kubeconfig,
		"--controller-name", controller, "--address", addr, "--admin-address", adminAddr,
		"--identity", identity, "--access-log", "off", "--shutdown-timeout", "2s"}, extra...)
	p.cmd = exec.Command(e.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop on SIGTERM", identity)
		}
		if t.Failed() {
			t.Logf("%s's output (last 40 lines):\n%s", identity, lastLines(p.logs.String(), 40))
		}
	})
	return p
}

// cpProbe sends a GET every interval, each on a new connection, and
// counts the answers that are not what is wanted.
type cpProbe struct {
	url       string
	want      func(code int, body string) bool
	sent, bad atomic.Int64
	mu        sync.Mutex
	last      string
	stop      chan struct{}
	done      chan struct{}
	stopped   sync.Once
}

func startProbe(url string, every time.Duration, want func(int, string) bool) *cpProbe {
	p := &cpProbe{url: url, want: want, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			code, body := plainGet(p.url)
			p.sent.Add(1)
			if !p.want(code, body) {
				p.bad.Add(1)
				p.mu.Lock()
				p.last = fmt.Sprintf("%s at %s: %d %q", p.url, time.Now().Format("15:04:05.000"), code, body)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *cpProbe) end() (sent, bad int64, last string) {
	p.stopped.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent.Load(), p.bad.Load(), p.last
}

func okBody(path string) func(int, string) bool {
	return func(code int, body string) bool { return code == 200 && body == "ok "+path }
}

// waitServed waits until url answers 200 with the backend's body for path.
func waitServed(t *testing.T, p *shareProc, d time.Duration, url, path string) time.Duration {
	t.Helper()
	start := time.Now()
	p.waitFor(t, d, url+" served", func() bool { return okBody(path)(plainGet(url)) })
	return time.Since(start)
}

// outage stops the API server for d and starts it again: rauta keeps
// serving the last configuration and stays ready throughout, and once the
// API server is back its watches resume: a route created then reaches
// traffic and gets its status.
func (e *cpEnv) outage(t *testing.T, d time.Duration) {
	const ns, controller = "cp-outage", "rauta.io/cp-outage"
	port := sharedFreePort(t, []string{"127.0.0.2"})
	e.setup(t, ns, controller, port)
	p := e.start(t, controller, "127.0.0.2", "outage-a")
	base := "http://127.0.0.2:" + strconv.Itoa(port)
	waitServed(t, p, 60*time.Second, base+"/a", "/a")
	p.waitFor(t, 30*time.Second, "route a Accepted", func() bool { s, _, _ := e.accepted(ns, "a"); return s == "True" })

	traffic := startProbe(base+"/a", 20*time.Millisecond, okBody("/a"))
	ready := startProbe(p.admin+"/readyz", 100*time.Millisecond, func(code int, _ string) bool { return code == 200 })
	if err := e.cl.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Logf("API server stopped for %v", d)
	time.Sleep(d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.cl.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("API server ready again %v after it was stopped", back.Sub(stopped).Round(time.Millisecond))

	// A change made now must reach traffic: the watches resumed.
	e.route(t, ns, "b", "PathPrefix", "/b")
	applied := time.Now()
	waitServed(t, p, 90*time.Second, base+"/b", "/b")
	toTraffic := time.Since(applied)
	p.waitFor(t, 60*time.Second, "route b Accepted", func() bool { s, _, _ := e.accepted(ns, "b"); return s == "True" })
	toStatus := time.Since(applied)
	time.Sleep(time.Second)
	sent, bad, last := traffic.end()
	rsent, rbad, rlast := ready.end()
	if bad > 0 {
		t.Errorf("traffic to route a: %d of %d requests failed (last: %s)", bad, sent, last)
	}
	if rbad > 0 {
		t.Errorf("/readyz: %d of %d checks not 200 (last: %s)", rbad, rsent, rlast)
	}
	if sent == 0 || rsent == 0 {
		t.Errorf("the probes sent nothing (%d requests, %d readiness checks)", sent, rsent)
	}
	t.Logf("RESULT outage=%v requests=%d failed=%d readyz=%d not-ready=%d change-to-traffic=%v change-to-status=%v",
		d, sent, bad, rsent, rbad, toTraffic.Round(time.Millisecond), toStatus.Round(time.Millisecond))
}

// leaderKilled runs two replicas, kills the one writing status with
// SIGKILL, and changes a route at once: the survivor takes the Lease and
// writes the route's status within LeaseDuration + RetryPeriod (plus
// cpSlack), and the traffic it serves never fails.
func (e *cpEnv) leaderKilled(t *testing.T) {
	const ns, controller, lease = "cp-leader", "rauta.io/cp-leader", "rauta.io-cp-leader"
	addrs := []string{"127.0.0.2", "127.0.0.3"}
	port := sharedFreePort(t, addrs)
	e.setup(t, ns, controller, port)
	timings := []string{"--lease-duration", cpLeaseDuration.String(),
		"--lease-renew-deadline", cpRenewDeadline.String(), "--lease-retry-period", cpRetryPeriod.String()}
	a := e.start(t, controller, addrs[0], "leader-a", timings...)
	a.waitFor(t, 60*time.Second, "leader-a holding the Lease", func() bool { return e.leaseHolder(lease) == "leader-a" })
	b := e.start(t, controller, addrs[1], "leader-b", timings...)
	baseB := "http://" + net.JoinHostPort(addrs[1], strconv.Itoa(port))
	waitServed(t, b, 60*time.Second, baseB+"/a", "/a")
	if h := e.leaseHolder(lease); h != "leader-a" {
		t.Fatalf("the Lease is held by %q before the kill; want leader-a", h)
	}

	traffic := startProbe(baseB+"/a", 20*time.Millisecond, okBody("/a"))
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	e.route(t, ns, "k", "PathPrefix", "/k")
	var tookLease, wroteStatus time.Duration
	bound := cpLeaseDuration + cpRetryPeriod + cpSlack
	b.waitFor(t, 3*bound, "leader-b taking the Lease and writing route k's status", func() bool {
		if tookLease == 0 && e.leaseHolder(lease) == "leader-b" {
			tookLease = time.Since(killed)
		}
		if s, _, _ := e.accepted(ns, "k"); s == "True" {
			wroteStatus = time.Since(killed)
			return true
		}
		return false
	})
	if tookLease == 0 {
		tookLease = wroteStatus
	}
	if wroteStatus > bound {
		t.Errorf("status written %v after the leader was killed; want within LeaseDuration %v + RetryPeriod %v (+ %v slack)",
			wroteStatus.Round(time.Millisecond), cpLeaseDuration, cpRetryPeriod, cpSlack)
	}
	waitServed(t, b, 30*time.Second, baseB+"/k", "/k")
	time.Sleep(time.Second)
	sent, bad, last := traffic.end()
	if bad > 0 {
		t.Errorf("traffic through the survivor: %d of %d requests failed (last: %s)", bad, sent, last)
	}
	t.Logf("RESULT lease-duration=%v retry-period=%v lease-taken=%v status-written=%v requests=%d failed=%d",
		cpLeaseDuration, cpRetryPeriod, tookLease.Round(time.Millisecond), wroteStatus.Round(time.Millisecond), sent, bad)
}

// malformed hands rauta, through its watch, an HTTPRoute that the CRD
// schema accepts but that rauta cannot serve (a path regular expression
// that does not compile): the route is not Accepted and its status says
// why, the other routes keep serving, and a later change is still applied.
func (e *cpEnv) malformed(t *testing.T) {
	const ns, controller = "cp-malformed", "rauta.io/cp-malformed"
	port := sharedFreePort(t, []string{"127.0.0.2"})
	e.setup(t, ns, controller, port)
	p := e.start(t, controller, "127.0.0.2", "malformed-a")
	base := "http://127.0.0.2:" + strconv.Itoa(port)
	waitServed(t, p, 60*time.Second, base+"/a", "/a")

	traffic := startProbe(base+"/a", 20*time.Millisecond, okBody("/a"))
	e.route(t, ns, "bad", "RegularExpression", "/bad/([a-z")
	var status, reason, msg string
	p.waitFor(t, 30*time.Second, "route bad's Accepted condition", func() bool {
		status, reason, msg = e.accepted(ns, "bad")
		return status != ""
	})
	if status != "False" || !strings.Contains(msg, "regular expression") {
		t.Errorf("route bad: Accepted %s, reason %s, message %q; want False with a message about its regular expression", status, reason, msg)
	}
	if code, body := plainGet(base + "/bad/x"); code != http.StatusNotFound {
		t.Errorf("GET /bad/x: %d %q; want 404 (the route is not served)", code, body)
	}
	e.route(t, ns, "c", "PathPrefix", "/c")
	waitServed(t, p, 30*time.Second, base+"/c", "/c")
	time.Sleep(time.Second)
	sent, bad, last := traffic.end()
	if bad > 0 {
		t.Errorf("traffic to route a: %d of %d requests failed (last: %s)", bad, sent, last)
	}
	t.Logf("RESULT malformed route: Accepted=%s reason=%s message=%q; requests=%d failed=%d", status, reason, msg, sent, bad)
}
