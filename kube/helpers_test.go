package kube

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/internal/testcluster"
	"github.com/rauta/rauta/pool"
	"github.com/rauta/rauta/proxy"
)

// The tests in this package that need Kubernetes share one control plane
// (started on first use, stopped by TestMain). Each test works in its own
// namespaces with its own GatewayClass and controllerName, so tests can
// run in parallel without seeing each other's objects as theirs.

var (
	clusterOnce sync.Once
	cluster     *testcluster.Cluster
	clusterErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the test cluster:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// env is what a test gets: the cluster, admin clients and a namespace.
type env struct {
	t       *testing.T
	c       *testcluster.Cluster
	kube    kubernetes.Interface
	gw      gwclient.Interface
	ns      string
	class   string
	ctrl    string // controllerName
	timeout time.Duration
}

var nameRE = regexp.MustCompile(`[^a-z0-9]+`)

// newEnv returns an env for t, skipping t when the control plane cannot be
// built (see testcluster.ForTest).
func newEnv(t *testing.T) *env {
	t.Helper()
	clusterOnce.Do(func() {
		dir, err := testcluster.Binaries()
		if err != nil {
			clusterErr = err
			return
		}
		cluster, clusterErr = testcluster.Start(context.Background(), testcluster.Options{Binaries: dir})
	})
	if errors.Is(clusterErr, testcluster.ErrNoBinaries) {
		t.Skipf("skipping: %v", clusterErr)
	}
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	base := strings.Trim(nameRE.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	e := &env{
		t: t, c: cluster,
		kube:    kubernetes.NewForConfigOrDie(cluster.Config),
		gw:      gwclient.NewForConfigOrDie(cluster.Config),
		ns:      base,
		class:   base,
		ctrl:    "test.rauta.io/" + base,
		timeout: 30 * time.Second,
	}
	e.namespace(e.ns, nil)
	e.namespace(DefaultLeaseNamespace, nil)
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	e.t.Cleanup(cancel)
	return ctx
}

// namespace creates a namespace if it does not exist.
func (e *env) namespace(name string, labels map[string]string) {
	e.t.Helper()
	_, err := e.kube.CoreV1().Namespaces().Create(e.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
}

// must fails the test on err.
func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// gatewayClass creates the test's GatewayClass (with the test's
// controllerName).
func (e *env) gatewayClass() *gatewayv1.GatewayClass {
	e.t.Helper()
	gc, err := e.gw.GatewayV1().GatewayClasses().Create(e.ctx(), &gatewayv1.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: e.class},
		Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayv1.GatewayController(e.ctrl)},
	}, metav1.CreateOptions{})
	e.must(err)
	return gc
}

// freePort returns a port free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// gateway creates a Gateway of the test's class with one HTTP listener
// named "http" on port.
func (e *env) gateway(name string, port int) *gatewayv1.Gateway {
	e.t.Helper()
	all := gatewayv1.NamespacesFromAll
	gw, err := e.gw.GatewayV1().Gateways(e.ns).Create(e.ctx(), &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: gatewayv1.ObjectName(e.class),
			Listeners: []gatewayv1.Listener{{
				Name: "http", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &all}},
			}},
		},
	}, metav1.CreateOptions{})
	e.must(err)
	return gw
}

// route returns an HTTPRoute in ns attached to the Gateway gw (in the
// test's namespace) forwarding "/" to backend Service svc port 80 in
// svcNS.
func (e *env) route(ns, name, gw, svcNS, svc string) *gatewayv1.HTTPRoute {
	gwNS := gatewayv1.Namespace(e.ns)
	r := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: gatewayv1.ObjectName(gw), Namespace: &gwNS}}},
			Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{backendRef(svcNS, svc, ns)}}},
		},
	}
	return r
}

func backendRef(svcNS, svc, routeNS string) gatewayv1.HTTPBackendRef {
	port := gatewayv1.PortNumber(80)
	ref := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
		Name: gatewayv1.ObjectName(svc), Port: &port,
	}}}
	if svcNS != routeNS {
		n := gatewayv1.Namespace(svcNS)
		ref.Namespace = &n
	}
	return ref
}

func (e *env) createRoute(r *gatewayv1.HTTPRoute) *gatewayv1.HTTPRoute {
	e.t.Helper()
	out, err := e.gw.GatewayV1().HTTPRoutes(r.Namespace).Create(e.ctx(), r, metav1.CreateOptions{})
	e.must(err)
	return out
}

// service creates a selector-less Service port 80 -> targetPort 8080
// ("http") and an EndpointSlice holding addrs.
func (e *env) service(ns, name string, addrs ...string) {
	e.t.Helper()
	_, err := e.kube.CoreV1().Services(ns).Create(e.ctx(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP,
		}}},
	}, metav1.CreateOptions{})
	e.must(err)
	_, err = e.kube.DiscoveryV1().EndpointSlices(ns).Create(e.ctx(), slice(ns, name, addrs...), metav1.CreateOptions{})
	e.must(err)
}

// slice returns the EndpointSlice "<svc>-1" of svc with ready addrs on
// port 8080.
func slice(ns, svc string, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
	}
	return s
}

// setSlice replaces the addresses of svc's EndpointSlice.
func (e *env) setSlice(ns, svc string, addrs ...string) {
	e.t.Helper()
	cur, err := e.kube.DiscoveryV1().EndpointSlices(ns).Get(e.ctx(), svc+"-1", metav1.GetOptions{})
	e.must(err)
	next := slice(ns, svc, addrs...)
	cur.Endpoints = next.Endpoints
	_, err = e.kube.DiscoveryV1().EndpointSlices(ns).Update(e.ctx(), cur, metav1.UpdateOptions{})
	e.must(err)
}

// backends maps the endpoint addresses EndpointSlices hold ("10.x.y.z:8080",
// which EndpointSlice validation accepts and nothing answers) to loopback
// httptest servers, through the proxy's pool dialer: traffic really goes
// through the proxy to the endpoint the proxy picked.
type backends struct {
	mu sync.Mutex
	to map[string]string // endpoint address -> loopback address
}

// add starts a backend answering its name, reachable as ip:8080.
func (b *backends) add(t *testing.T, ip, name string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.to == nil {
		b.to = map[string]string{}
	}
	b.to[net.JoinHostPort(ip, "8080")] = srv.Listener.Addr().String()
}

func (b *backends) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	b.mu.Lock()
	to, ok := b.to[addr]
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("test dialer: no backend for %s", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

// newProxy returns a proxy dialling through b, shut down at cleanup.
func newProxy(t *testing.T, b *backends) *proxy.Proxy {
	p := proxy.New(proxy.Options{
		Logger: quietLogger(),
		Pool:   pool.Options{DialContext: b.dial},
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// quietLogger logs warnings and errors only, unless -v asks for more
// through RAUTA_TEST_LOG=debug.
func quietLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("RAUTA_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// testOptions are controller options for tests: the test's controllerName,
// listeners on 127.0.0.1 and short leader-election timings.
func (e *env) options(p *proxy.Proxy) Options {
	return Options{
		Proxy:         p,
		Translate:     gatewayapiOptions(e.ctrl),
		Logger:        quietLogger(),
		LeaseDuration: 3 * time.Second,
		RenewDeadline: 2 * time.Second,
		RetryPeriod:   250 * time.Millisecond,
	}
}

// running is a controller started by a test.
type running struct {
	c      *Controller
	cancel context.CancelFunc
	done   chan error
}

// start runs a controller built from cfg (nil: the admin config) until the
// test ends, and waits until it is ready.
func (e *env) start(cfg *rest.Config, opts Options) *running {
	e.t.Helper()
	if cfg == nil {
		cfg = e.c.Config
	}
	c, err := New(cfg, opts)
	e.must(err)
	return e.run(c)
}

// run runs a controller until the test ends, and waits until it is ready.
func (e *env) run(c *Controller) *running {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	e.eventually("controller ready", func() (bool, string) {
		select {
		case err := <-r.done:
			e.t.Fatalf("controller stopped: %v", err)
		default:
		}
		return c.Ready(), "not ready"
	})
	return r
}

// settleInfra waits until the controller has seen the infrastructure
// Service of each named Gateway of the test's namespace and the rebuild
// that Service's creation caused is done, so that tests counting Applies
// are not disturbed by it.
func (e *env) settleInfra(r *running, gateways ...string) {
	e.t.Helper()
	e.eventually("infrastructure Services seen", func() (bool, string) {
		for _, g := range gateways {
			if _, err := r.c.services.Services(e.ns).Get(infraServiceName(g)); err != nil {
				return false, err.Error()
			}
		}
		return true, ""
	})
	last, stable := r.c.Stats().Rebuilds, time.Now()
	e.eventually("rebuilds settled", func() (bool, string) {
		if n := r.c.Stats().Rebuilds; n != last {
			last, stable = n, time.Now()
		}
		return time.Since(stable) > 3*DefaultHoldOff, fmt.Sprintf("%d rebuilds", last)
	})
}

// stop cancels the controller and waits for Run to return.
func (r *running) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
		r.done <- err // later stops return at once
	case <-time.After(15 * time.Second):
		t.Error("controller did not stop within 15s")
	}
}

// eventually polls cond until it holds or the env's timeout passes.
func (e *env) eventually(what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(e.timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("%s: not reached within %v: %s", what, e.timeout, last)
}

// get sends GET http://host/path to the proxy listening on 127.0.0.1:port
// and returns the status and body.
func get(client *http.Client, port int, host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitBody waits until GET / through the gateway answers want.
func (e *env) waitBody(port int, host, want string) {
	e.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	e.eventually("traffic reaches "+want, func() (bool, string) {
		code, body, err := get(client, port, host, "/")
		return err == nil && code == 200 && body == want, fmt.Sprintf("got %d %q %v", code, body, err)
	})
}

// waitCode waits until GET / through the gateway answers with code.
func (e *env) waitCode(port int, host string, want int) {
	e.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	e.eventually(fmt.Sprintf("gateway answers %d", want), func() (bool, string) {
		code, body, err := get(client, port, host, "/")
		return err == nil && code == want, fmt.Sprintf("got %d %q %v", code, body, err)
	})
}

// findCond returns the condition of type typ.
func findCond(cs []metav1.Condition, typ string) (metav1.Condition, bool) {
	for _, c := range cs {
		if c.Type == typ {
			return c, true
		}
	}
	return metav1.Condition{}, false
}

// condIs reports whether cs has typ with status and, if reason is not
// empty, reason, observed at generation gen (0: any).
func condIs(cs []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) (bool, string) {
	c, ok := findCond(cs, typ)
	if !ok {
		return false, typ + " missing"
	}
	if c.Status != status || (reason != "" && c.Reason != reason) || (gen != 0 && c.ObservedGeneration != gen) {
		return false, fmt.Sprintf("%s=%s reason %s gen %d (%s)", typ, c.Status, c.Reason, c.ObservedGeneration, c.Message)
	}
	return true, ""
}

// ourParent returns the route's status entry of controller ctrl.
func ourParent(r *gatewayv1.HTTPRoute, ctrl string) (gatewayv1.RouteParentStatus, bool) {
	for _, p := range r.Status.Parents {
		if string(p.ControllerName) == ctrl {
			return p, true
		}
	}
	return gatewayv1.RouteParentStatus{}, false
}

// countingTransport records the API requests a client makes and the
// forbidden answers it gets.
type countingTransport struct {
	rt        http.RoundTripper
	mu        sync.Mutex
	requests  map[string]int // "VERB group/resource[/subresource]"
	forbidden []string
	puts      atomic.Int64
	before    func(*http.Request) // called before a request is sent
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c.before != nil {
		c.before(req)
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	keys := requestKeys(req)
	if req.Method == http.MethodPatch && resp.StatusCode == http.StatusCreated && len(keys) == 1 {
		// A server-side apply that creates the object is authorized as a
		// create too.
		keys = append(keys, "create"+strings.TrimPrefix(keys[0], "patch"))
	}
	c.mu.Lock()
	if c.requests == nil {
		c.requests = map[string]int{}
	}
	for _, key := range keys {
		c.requests[key]++
		if resp.StatusCode == http.StatusForbidden {
			c.forbidden = append(c.forbidden, key+" "+req.URL.Path)
		}
	}
	c.mu.Unlock()
	return resp, nil
}

// requestKeys classifies a request as "verb group/resource[/subresource]",
// the way RBAC sees it. A streaming list (watch with sendInitialEvents) is
// both a list and a watch.
func requestKeys(req *http.Request) []string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group = parts[1]
		parts = parts[3:]
	default:
		return []string{"discovery"}
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return []string{"discovery"}
	}
	resource := parts[0]
	named := len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	q := req.URL.Query()
	verb := ""
	switch req.Method {
	case http.MethodGet:
		switch {
		case q.Get("watch") == "true" || q.Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	}
	key := group + "/" + resource
	if verb == "watch" && q.Get("sendInitialEvents") == "true" {
		return []string{"list " + key, "watch " + key}
	}
	return []string{verb + " " + key}
}

// tlsConfigFor dials with SNI host and accepts any certificate (the test
// inspects it).
func tlsConfigFor(host string) *tls.Config {
	return &tls.Config{ServerName: host, InsecureSkipVerify: true}
}

// gatewayapiOptions are the translator options of the tests: the test's
// controllerName and listeners on 127.0.0.1.
func gatewayapiOptions(ctrl string) gatewayapi.Options {
	return gatewayapi.Options{ControllerName: ctrl, Address: "127.0.0.1"}
}

// updateRoute applies mutate to the route and updates it, retrying on
// conflicts (the status writer updates routes too).
func (e *env) updateRoute(ns, name string, mutate func(*gatewayv1.HTTPRoute)) *gatewayv1.HTTPRoute {
	e.t.Helper()
	var out *gatewayv1.HTTPRoute
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := e.gw.GatewayV1().HTTPRoutes(ns).Get(e.ctx(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(r)
		out, err = e.gw.GatewayV1().HTTPRoutes(ns).Update(e.ctx(), r, metav1.UpdateOptions{})
		return err
	})
	e.must(err)
	return out
}
