//go:build reliability

package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// soakEnv reads a duration from the environment.
func soakEnv(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 2m or 1h", name, v)
	}
	return d
}

// rautaBinary is $RAUTA_BINARY, or cmd/rauta built into a temporary
// directory.
func rautaBinary(t *testing.T) string {
	if b := os.Getenv("RAUTA_BINARY"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "rauta")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/rauta/rauta/cmd/rauta")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/rauta: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// sample is one measurement of the rauta process.
type sample struct {
	at         time.Duration
	phase      string
	rssKiB     int
	goroutines int
	fds        int
	upstream   int // open upstream connections (rauta_upstream_connections{state="open"})
	requests   int
	failed     int
}

// soakFiles writes the gateway's configuration: the Gateway, a route whose
// header filter carries the configuration generation (with an extra route
// every other generation), and the Service with one EndpointSlice per
// endpoint, ready or not.
type soakFiles struct {
	dir  string
	port int
	mu   sync.Mutex
}

const soakGateway = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: soak, namespace: default}
spec:
  gatewayClassName: rauta
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: gateway.rauta.io/v1alpha1
kind: BackendPolicy
metadata: {name: app, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: app}]
  connections: {idleTimeout: 5s}
`

// write replaces a file atomically, so the source never reads half of it.
func (f *soakFiles) write(t *testing.T, name, content string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tmp := filepath.Join(f.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, name)); err != nil {
		t.Error(err)
	}
}

func (f *soakFiles) routes(t *testing.T, gen int) {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: soak}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    timeouts: {request: 20s}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Generation, value: "%d"}]
    backendRefs: [{name: app, port: 80}]
`, gen)
	if gen%2 == 1 {
		fmt.Fprintf(&b, `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: extra-%d, namespace: default}
spec:
  parentRefs: [{name: soak}]
  hostnames: [extra-%d.example]
  rules:
  - backendRefs: [{name: app, port: 80}]
`, gen, gen)
	}
	f.write(t, "routes.yaml", b.String())
}

// endpoints writes the Service with its endpoints; ready[i] says whether
// addrs[i] is ready.
func (f *soakFiles) endpoints(t *testing.T, addrs []string, ready []bool) {
	var b strings.Builder
	b.WriteString(`apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec:
  ports: [{name: http, port: 80}]
`)
	for i, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&b, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-%s
  namespace: default
  labels: {kubernetes.io/service-name: app}
addressType: IPv4
ports: [{name: http, port: %s, protocol: TCP}]
endpoints:
- addresses: [%s]
  conditions: {ready: %t, serving: true, terminating: %t}
`, port, port, host, ready[i], !ready[i])
	}
	f.write(t, "backends.yaml", b.String())
}

// TestSoak runs `rauta serve` under mixed HTTP/1.1, HTTP/2 and WebSocket
// load with configuration and endpoint churn for $SOAK_DURATION (default
// 2m), sampling the process every $SOAK_INTERVAL (default 10s), and fails
// if, 30 s after the load stops, its goroutines or file descriptors exceed
// their pre-load baseline by more than 5% or its RSS by more than 20 MiB,
// or if any answer was a mismatch or a false success. With $SOAK_OUT set it
// writes the samples there as TSV.
func TestSoak(t *testing.T) {
	duration := soakEnv(t, "SOAK_DURATION", 2*time.Minute)
	interval := soakEnv(t, "SOAK_INTERVAL", 10*time.Second)
	bin := rautaBinary(t)

	files := &soakFiles{dir: t.TempDir(), port: freePort(t)}
	files.write(t, "gateway.yaml", fmt.Sprintf(soakGateway, files.port))
	files.routes(t, 0)
	var backends []*server
	for range 3 {
		backends = append(backends, startServer(t, stampHandler("app"), false))
	}
	publish := func(ready []bool) {
		var addrs []string
		for _, b := range backends {
			addrs = append(addrs, b.addr)
		}
		files.endpoints(t, addrs, ready)
	}
	publish([]bool{true, true, true})

	adminPort := freePort(t)
	admin := "http://127.0.0.1:" + strconv.Itoa(adminPort)
	logs := &tailBuffer{max: 64 << 10}
	cmd := exec.Command(bin, "serve", "--config", files.dir,
		"--admin-address", "127.0.0.1:"+strconv.Itoa(adminPort), "--pprof",
		"--poll-interval", "200ms", "--log-format", "json", "--access-log", "off",
		"--shutdown-timeout", "5s")
	cmd.Stdout, cmd.Stderr = logs, logs
	// rauta dies with the test, even when the test is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("rauta's last logs:\n%s", logs.String())
		}
	}()
	pid := cmd.Process.Pid
	ac := &http.Client{Timeout: 5 * time.Second}
	base := "http://127.0.0.1:" + strconv.Itoa(files.port)
	waitUntil(t, "rauta to serve the route", 30*time.Second, func() bool {
		resp, err := ac.Get(base + "/warm/0?size=10")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && resp.Header.Get(hdrStamp) != ""
	})

	start := time.Now()
	var samples []sample
	tl := newTally()
	takeSample := func(phase string) sample {
		s := sample{at: time.Since(start).Round(time.Second), phase: phase}
		// The admin endpoints first, so that the sampler's own
		// connection to the admin listener is open in every sample.
		var err error
		if s.goroutines, err = goroutines(ac, admin); err == nil {
			s.upstream, err = upstreamOpen(ac, admin)
		}
		if err == nil {
			s.rssKiB, err = procRSS(pid)
		}
		if err == nil {
			s.fds, err = procFDs(pid)
		}
		if err != nil {
			t.Fatalf("sampling rauta (pid %d): %v", pid, err)
		}
		s.requests, s.failed = tl.total(), tl.allFailed()
		samples = append(samples, s)
		t.Logf("%6s %-8s rss %6d KiB  goroutines %4d  fds %4d  upstream %3d  requests %d  failed %d",
			s.at, s.phase, s.rssKiB, s.goroutines, s.fds, s.upstream, s.requests, s.failed)
		return s
	}
	// The warm-up request's connections go idle and close before the
	// baseline (the BackendPolicy's idle timeout is 5s).
	ac.CloseIdleConnections()
	time.Sleep(7 * time.Second)
	baseline := takeSample("baseline")

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var wg sync.WaitGroup
	l := newLoad(base, "/a/", "/b/")
	l.workers = 6
	paced := func(c *http.Client) {
		defer wg.Done()
		for ctx.Err() == nil {
			l.one(c, tl)
			time.Sleep(10 * time.Millisecond)
		}
	}
	for w := range l.workers {
		wg.Add(1)
		if w%2 == 0 {
			go paced(l.h1)
		} else {
			go paced(l.h2)
		}
	}

	// WebSockets: one held for the whole load, and short-lived ones.
	var wsErrors, wsMessages atomic.Int64
	held, err := dialWebSocket("127.0.0.1:"+strconv.Itoa(files.port), "/ws/held")
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if err := held.echo(10 * time.Second); err != nil {
				t.Errorf("held WebSocket: %v", err)
				return
			}
			wsMessages.Add(1)
			sleepCtx(ctx, time.Second)
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			ws, err := dialWebSocket("127.0.0.1:"+strconv.Itoa(files.port), "/ws/short")
			if err != nil {
				wsErrors.Add(1)
			} else {
				for range 3 {
					if ws.echo(10*time.Second) != nil {
						wsErrors.Add(1)
						break
					}
					wsMessages.Add(1)
				}
				ws.close()
			}
			sleepCtx(ctx, 2*time.Second)
		}
	}()

	// Configuration churn: a new generation of the routes every 3s.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for gen := 1; sleepCtx(ctx, 3*time.Second); gen++ {
			files.routes(t, gen)
		}
	}()
	// Endpoint churn: a rollout of one endpoint every 15s, the way
	// Kubernetes does it: the new endpoint comes up, the old one goes not
	// ready, then away, and then its server shuts down.
	var rollouts atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sleepCtx(ctx, 15*time.Second) {
			old := backends[0]
			backends = append(backends, startServer(t, stampHandler("app"), false))
			publish([]bool{true, true, true, true})
			time.Sleep(2 * time.Second)
			publish([]bool{false, true, true, true})
			time.Sleep(2 * time.Second)
			backends = backends[1:]
			publish([]bool{true, true, true})
			time.Sleep(2 * time.Second)
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			old.srv.Shutdown(sctx)
			cancel()
			rollouts.Add(1)
		}
	}()

	tick := time.NewTicker(interval)
	for ctx.Err() == nil {
		select {
		case <-tick.C:
			takeSample("load")
		case <-ctx.Done():
		}
	}
	wg.Wait()
	takeSample("loadend")
	if err := held.echo(10 * time.Second); err != nil {
		t.Errorf("the held WebSocket is not alive at the end: %v", err)
	}
	held.close()
	l.h1.CloseIdleConnections()
	l.h2.CloseIdleConnections()
	loadEnd := time.Now()
	for time.Since(loadEnd) < 30*time.Second {
		<-tick.C
		takeSample("cooldown")
	}
	tick.Stop()
	final := takeSample("final")

	if out := os.Getenv("SOAK_OUT"); out != "" {
		writeTSV(t, out, samples)
	}
	t.Logf("%d requests (%d GET, %d POST), %d failed (%s), %d mismatched, %d false successes; %d WebSocket messages, %d WebSocket errors; %d rollouts",
		tl.total(), tl.sent[kindGET], tl.sent[kindPOST], tl.allFailed(), tl.failures(), tl.mismatch, tl.falseSuccess,
		wsMessages.Load(), wsErrors.Load(), rollouts.Load())
	if tl.mismatch > 0 || tl.falseSuccess > 0 {
		t.Errorf("%d mismatched answers and %d false successes, e.g. %q", tl.mismatch, tl.falseSuccess, tl.examples)
	}
	if float64(final.goroutines) > float64(baseline.goroutines)*1.05 {
		t.Errorf("goroutines: %d 30s after the load, baseline %d (more than 5%% over)", final.goroutines, baseline.goroutines)
	}
	if float64(final.fds) > float64(baseline.fds)*1.05 {
		t.Errorf("open file descriptors: %d 30s after the load, baseline %d (more than 5%% over)", final.fds, baseline.fds)
	}
	if final.rssKiB > baseline.rssKiB+20<<10 {
		t.Errorf("RSS: %d KiB 30s after the load, baseline %d KiB (more than 20 MiB over)", final.rssKiB, baseline.rssKiB)
	}
}

// sleepCtx sleeps for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procRSS is the resident set size of process pid, in KiB.
func procRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// procFDs is the number of open file descriptors of process pid.
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// goroutines reads the goroutine count from the admin listener's
// /debug/pprof/goroutine.
func goroutines(c *http.Client, admin string) (int, error) {
	resp, err := c.Get(admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	io.Copy(io.Discard, resp.Body)
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("/debug/pprof/goroutine: first line %q", line)
	}
	return strconv.Atoi(v)
}

// upstreamOpen sums rauta_upstream_connections{state="open"} from
// /metrics.
func upstreamOpen(c *http.Client, admin string) (int, error) {
	resp, err := c.Get(admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "rauta_upstream_connections{") || !strings.Contains(line, `state="open"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q: %v", line, err)
		}
		n += int(v)
	}
	return n, nil
}

func writeTSV(t *testing.T, path string, samples []sample) {
	var b bytes.Buffer
	b.WriteString("seconds\tphase\trss_mib\tgoroutines\tfds\tupstream_conns\trequests\tfailed\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "%d\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\n", int(s.at.Seconds()), s.phase,
			float64(s.rssKiB)/1024, s.goroutines, s.fds, s.upstream, s.requests, s.failed)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Error(err)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
