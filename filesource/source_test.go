package filesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/proxy"
)

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// gatewayYAML is a Gateway on 127.0.0.1:port with a route sending prefix to
// the backend at addr.
func gatewayYAML(port int, prefix, addr string) string {
	host, p, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: rauta
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: %s}}]
    backendRefs: [{name: echo, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  ports: [{name: http, port: 80, targetPort: %s}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports: [{name: http, port: %s}]
endpoints: [{addresses: [%s]}]
`, port, prefix, p, p, host)
}

func get(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestSource(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	port := freePort(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	writeFile(t, path, gatewayYAML(port, "/a", backend.Listener.Addr().String()))

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(proxy.Options{Logger: log})
	defer p.Shutdown(context.Background())
	reports := make(chan Report, 10)
	src, err := New(Options{
		Path: dir, Proxy: p, Logger: log,
		Interval: 10 * time.Millisecond, HoldOff: 20 * time.Millisecond,
		OnReport: func(r Report) { reports <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := src.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	defer func() { cancel(); wg.Wait() }()

	r := <-reports
	if r.Error != nil || r.Generation != 1 || len(r.Objects) != 3 {
		t.Fatalf("first report %+v, want no error, generation 1 and 3 objects", r)
	}
	for _, o := range r.Objects {
		if !o.OK() {
			t.Errorf("object %s not accepted", o.String())
		}
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if code, err := get(base + "/a"); err != nil || code != 200 {
		t.Fatalf("GET /a: %d %v, want 200", code, err)
	}

	// A broken file is rejected and the previous configuration serves.
	writeFile(t, path, strings.Replace(gatewayYAML(port, "/b", backend.Listener.Addr().String()), "kind: HTTPRoute", "kind: HTTPRoute\nspek: {}", 1))
	r = <-reports
	if !errors.Is(r.Error, ErrUnknownField) || r.Generation != 1 || len(r.Objects) != 3 {
		t.Fatalf("report after a broken file %+v, want ErrUnknownField at generation 1", r)
	}
	if got := src.Report(); !errors.Is(got.Error, ErrUnknownField) {
		t.Errorf("Report().Error = %v", got.Error)
	}
	if code, err := get(base + "/a"); err != nil || code != 200 {
		t.Fatalf("GET /a after a broken file: %d %v, want 200", code, err)
	}

	// A change that leaves the configuration as it is applies nothing.
	writeFile(t, path, "# a comment\n"+gatewayYAML(port, "/a", backend.Listener.Addr().String()))
	r = <-reports
	if r.Error != nil || r.Generation != 1 || p.Generation() != 1 {
		t.Fatalf("report after a comment %+v, proxy generation %d; want generation 1 without error", r, p.Generation())
	}

	// The fixed file takes effect.
	writeFile(t, path, gatewayYAML(port, "/b", backend.Listener.Addr().String()))
	r = <-reports
	if r.Error != nil || r.Generation != 2 {
		t.Fatalf("report after the fix %+v, want generation 2 without error", r)
	}
	for path, want := range map[string]int{"/a": 404, "/b": 200} {
		if code, err := get(base + path); err != nil || code != want {
			t.Errorf("GET %s: %d %v, want %d", path, code, err, want)
		}
	}
}

func TestSourceInitialError(t *testing.T) {
	dir := writeFiles(t, map[string]string{"x.yaml": "kind: ["})
	p := proxy.New(proxy.Options{})
	defer p.Shutdown(context.Background())
	src, err := New(Options{Path: dir, Proxy: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := src.Run(ctx); !errors.Is(err, ErrSyntax) {
		t.Fatalf("Run: %v, want ErrSyntax at once", err)
	}
	if p.Generation() != 0 {
		t.Errorf("a configuration was applied")
	}
	if _, err := New(Options{Path: dir}); err == nil {
		t.Errorf("New without a Proxy succeeded")
	}
}

// TestRun runs the standalone gateway as `rauta serve --config` does: a
// proxy and a file Source under admin.Run.
func TestRun(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	port := freePort(t)
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayYAML(port, "/", backend.Listener.Addr().String())})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan net.Addr, 1)
	reported := make(chan Report, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, dir, "127.0.0.1:0", func(a net.Addr) { started <- a }, func(r Report) { reported <- r })
	}()
	admin := "http://" + (<-started).String()
	<-reported
	for _, u := range []string{admin + "/readyz", admin + "/debug/status", "http://127.0.0.1:" + strconv.Itoa(port) + "/"} {
		if code, err := get(u); err != nil || code != 200 {
			t.Errorf("GET %s: %d %v, want 200", u, code, err)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx was cancelled")
	}
	if _, err := get(admin + "/healthz"); err == nil {
		t.Errorf("the admin listener still serves after Run returned")
	}

	// A busy admin address is an error, before anything is served.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = serve(context.Background(), dir, ln.Addr().String(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Errorf("Run with a busy admin address: %v", err)
	}
}

// serve runs a proxy and a Source of the files at path under admin.Run,
// with the admin listener on adminAddr, until ctx is done.
func serve(ctx context.Context, path, adminAddr string, onStart func(net.Addr), onReport func(Report)) error {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(proxy.Options{Logger: log})
	src, err := New(Options{Path: path, Proxy: p, Logger: log, OnReport: onReport})
	if err != nil {
		return err
	}
	return admin.Run(ctx, admin.RunOptions{Proxy: p, Address: adminAddr, Logger: log, OnStart: onStart,
		Status: func() any { return src.Report() }}, src)
}

// TestApply feeds a Source Resources from Go, with no files: they are
// served through a real listener to a real backend, the Report shows
// them, and the Source is ready only once they are applied.
func TestApply(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from go") }))
	defer backend.Close()
	port := freePort(t)
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayYAML(port, "/", backend.Listener.Addr().String())})
	res, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(proxy.Options{Logger: log})
	src, err := New(Options{Proxy: p, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Run(ctx, admin.RunOptions{Proxy: p, Logger: log}, src) }()
	if src.Ready() {
		t.Error("ready before anything was applied")
	}
	src.Apply(res)
	if !src.Ready() {
		t.Error("not ready after Apply")
	}
	r := src.Report()
	if r.Error != nil || r.ApplyError != nil || r.Generation != 1 || len(r.Objects) == 0 {
		t.Errorf("report after Apply: %+v", r)
	}
	for _, o := range r.Objects {
		if o.Ignored == "" && !o.OK() {
			t.Errorf("%s %s/%s not accepted: %v", o.Kind, o.Namespace, o.Name, o.Problems)
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "from go" {
		t.Errorf("GET through the gateway: %d %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
