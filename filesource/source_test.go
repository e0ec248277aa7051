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
	if _, err := New(Options{Proxy: p}); err == nil {
		t.Errorf("New without a Path succeeded")
	}
	if _, err := New(Options{Path: dir}); err == nil {
		t.Errorf("New without a Proxy succeeded")
	}
}

func TestServe(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	port := freePort(t)
	dir := writeFiles(t, map[string]string{"gw.yaml": gatewayYAML(port, "/", backend.Listener.Addr().String())})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan net.Addr, 1)
	reported := make(chan Report, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{
			Path:         dir,
			AdminAddress: "127.0.0.1:0",
			Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnStart:      func(a net.Addr) { started <- a },
			OnReport:     func(r Report) { reported <- r },
		})
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
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	if _, err := get(admin + "/healthz"); err == nil {
		t.Errorf("the admin listener still serves after Serve returned")
	}

	// A busy admin address is an error, before anything is served.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Serve(context.Background(), ServeOptions{Path: dir, AdminAddress: ln.Addr().String(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Errorf("Serve with a busy admin address: %v", err)
	}
}
