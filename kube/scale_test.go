package kube

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// routeChanges measures the time from an HTTPRoute update until traffic
// reaches the backend it now names, over n changes alternating between
// the Services a and b (whose backends answer "A" and "B").
func routeChanges(t *testing.T, e *env, port, n int, name, host string) []time.Duration {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, 0, n)
	for i := range n {
		svc, want := "b", "B"
		if i%2 == 1 {
			svc, want = "a", "A"
		}
		start := time.Now()
		e.updateRoute(e.ns, name, func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{backendRef(e.ns, svc, e.ns)}
		})
		for {
			code, body, err := get(client, port, host, "/")
			if err == nil && code == 200 && body == want {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("change %d: traffic did not reach %s within 20s (last %d %q %v)", i, want, code, body, err)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat
}

func summary(lat []time.Duration) string {
	n := len(lat)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("%d changes: p50 %v, p90 %v, p99 %v, max %v", n, r(lat[n/2]), r(lat[n*9/10]), r(lat[n*99/100]), r(lat[n-1]))
}

// TestRoutePropagation measures the time from an HTTPRoute change to
// traffic on its new backend with the default hold-off (100ms).
func TestRoutePropagation(t *testing.T) {
	e := newEnv(t)
	var b backends
	b.add(t, "10.213.2.1", "A")
	b.add(t, "10.213.2.2", "B")
	p := newProxy(t, &b)
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "a", "10.213.2.1")
	e.service(e.ns, "b", "10.213.2.2")
	e.createRoute(e.route(e.ns, "r", "gw", e.ns, "a"))
	e.start(nil, e.options(p))
	e.waitBody(port, "", "A")
	n := 100
	if testing.Short() {
		n = 10
	}
	t.Logf("HTTPRoute update -> traffic on the new backend: %s", summary(routeChanges(t, e, port, n, "r", "")))
}

// TestScale (RAUTA_KUBE_SCALE=1000,10000) creates that many HTTPRoutes and
// reports the heap the controller, translator and proxy add, the time to
// the first configuration, and HTTPRoute propagation at that size.
func TestScale(t *testing.T) {
	sizes := os.Getenv("RAUTA_KUBE_SCALE")
	if sizes == "" {
		t.Skip("set RAUTA_KUBE_SCALE=1000,10000 to measure memory and propagation with many HTTPRoutes")
	}
	e := newEnv(t)
	e.timeout = 10 * time.Minute
	var b backends
	b.add(t, "10.213.3.1", "A")
	b.add(t, "10.213.3.2", "B")
	e.gatewayClass()
	port := freePort(t)
	e.gateway("gw", port)
	e.service(e.ns, "a", "10.213.3.1")
	e.service(e.ns, "b", "10.213.3.2")
	fast := rest.CopyConfig(e.c.Config)
	fast.QPS, fast.Burst = 5000, 5000
	gw := gwclient.NewForConfigOrDie(fast)

	created := 0
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("RAUTA_KUBE_SCALE: bad size %q", s)
		}
		began := time.Now()
		var wg sync.WaitGroup
		work := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range work {
					r := e.route(e.ns, fmt.Sprintf("r%05d", i), "gw", e.ns, "a")
					r.Spec.Hostnames = []gatewayv1.Hostname{gatewayv1.Hostname(fmt.Sprintf("h%05d.example", i))}
					if _, err := gw.GatewayV1().HTTPRoutes(e.ns).Create(context.Background(), r, metav1.CreateOptions{}); err != nil {
						t.Errorf("creating route %d: %v", i, err)
					}
				}
			})
		}
		for i := created; i < n; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		created = n
		t.Logf("%d HTTPRoutes in the API server (created in %v)", n, time.Since(began).Round(time.Millisecond))

		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		p := newProxy(t, &b)
		began = time.Now()
		run := e.start(nil, e.options(p))
		e.eventually("all routes served", func() (bool, string) {
			got := len(p.Config().Routes)
			return got == n, fmt.Sprintf("%d routes", got)
		})
		ready := time.Since(began)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		e.waitBody(port, "h00000.example", "A")
		lat := routeChanges(t, e, port, 20, "r00000", "h00000.example")
		t.Logf("%d HTTPRoutes: first configuration after %v; heap in use +%.1f MiB (controller caches, translation, proxy tables); HTTPRoute update -> traffic %s",
			n, ready.Round(time.Millisecond), float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/(1<<20), summary(lat))
		run.stop(t)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.Shutdown(sctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		cancel()
		// Put the route back for the next size.
		e.updateRoute(e.ns, "r00000", func(r *gatewayv1.HTTPRoute) {
			r.Spec.Rules[0].BackendRefs = []gatewayv1.HTTPBackendRef{backendRef(e.ns, "a", e.ns)}
		})
	}
}
