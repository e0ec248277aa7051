//go:build idleconns

package main

// The idle-connections test: a `rauta serve` process holding 10,000 idle
// keep-alive client connections, from 10,000 source addresses of
// 127.0.0.0/8, still serves normal requests quickly and within a stated
// memory figure. It opens 20,000 file descriptors (10,000 in each process)
// and takes about a minute, so it runs only with its build tag:
//
//	go test -tags idleconns -run TestIdleConnections -v ./cmd/rauta
//
// docs/reliability.md quotes its figures.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// idleConns is the number of idle client connections held open.
	idleConns = 10000
	// idleP99 is the latency the normal requests' 99th percentile must
	// stay under.
	idleP99 = 10 * time.Millisecond
	// idleRSSCeiling is the figure rauta's resident memory must stay
	// under with the idle connections open and the load served.
	idleRSSCeiling = 256 << 20
	// idleRequests is the number of normal requests measured, sent by
	// idleClients keep-alive clients at once.
	idleRequests = 5000
	idleClients  = 4
)

// rss returns a process's resident set size in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// openFiles counts a process's open file descriptors.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// idleSource is the source address of idle connection i: 127.1.x.y, one
// address per connection.
func idleSource(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}
}

func TestIdleConnections(t *testing.T) {
	// Each process needs idleConns descriptors and some; the Go runtime
	// raises the soft limit to the hard one at start (rauta's too), and
	// this makes sure of it here.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < idleConns+1000 {
		t.Skipf("skipped: the hard open-file limit is %d; the test needs %d per process", lim.Max, idleConns+1000)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}

	bin := buildPlainBinary(t)
	if bin == "" {
		t.FailNow()
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	ports := freePorts(t, 2)
	port, adminPort := ports[0], ports[1]
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: rauta}
spec: {controllerName: rauta.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: rauta
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: %d}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: %d}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo
  namespace: default
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports: [{name: http, port: %[2]d}]
endpoints: [{addresses: ["127.0.0.1"], conditions: {ready: true}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
`, port, backend.Listener.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--config", dir, "--admin-address", "127.0.0.1:"+strconv.Itoa(adminPort),
		"--access-log", "off", "--shutdown-timeout", "2s")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("rauta's output:\n%s", lastLines(logs.String(), 40))
		}
	}()
	pid := cmd.Process.Pid
	addr := "127.0.0.1:" + strconv.Itoa(port)
	url := "http://" + addr + "/"
	deadline := time.Now().Add(30 * time.Second)
	for code, _ := plainGet(url); code != 200; code, _ = plainGet(url) {
		if time.Now().After(deadline) {
			t.Fatalf("rauta does not serve %s after 30s", url)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The baseline: the normal load once, without idle connections.
	baseLat := normalLoad(t, url)
	base := rss(t, pid)

	// The idle connections: each sends one request, reads the answer and
	// stays open, idle (under the 60s idle timeout).
	conns := make([]net.Conn, idleConns)
	opened := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, idleConns)
	sem := make(chan struct{}, 64)
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d := net.Dialer{LocalAddr: idleSource(i), Timeout: 10 * time.Second}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				errs <- fmt.Errorf("idle connection %d: %w", i, err)
				return
			}
			conns[i] = c
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil {
				errs <- fmt.Errorf("idle connection %d: %w", i, err)
			}
			c.SetDeadline(time.Time{})
		})
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var nerr int
	for err := range errs {
		if nerr < 5 {
			t.Error(err)
		}
		nerr++
	}
	if nerr > 0 {
		t.Fatalf("%d of %d idle connections failed", nerr, idleConns)
	}
	openTook := time.Since(opened)
	time.Sleep(time.Second) // let the server's goroutines settle into their idle wait
	idle := rss(t, pid)
	fds := openFiles(t, pid)

	lat := normalLoad(t, url)
	after := rss(t, pid)
	held := time.Since(opened)

	// Every idle connection is still open: none of them may read EOF.
	var closed int
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err == nil || !isTimeout(err) {
			closed++
		}
	}
	if closed > 0 {
		t.Errorf("%d of %d idle connections were closed within %v (idle timeout 60s)", closed, idleConns, held.Round(time.Second))
	}
	if fds < idleConns {
		t.Errorf("rauta holds %d file descriptors with %d idle connections open", fds, idleConns)
	}

	p99 := lat[len(lat)*99/100]
	if p99 >= idleP99 {
		t.Errorf("with %d idle connections, normal requests' p99 is %v; want under %v", idleConns, p99, idleP99)
	}
	if max(idle, after) >= idleRSSCeiling {
		t.Errorf("rauta's RSS is %d MiB with %d idle connections (%d MiB after the load); want under %d MiB",
			idle>>20, idleConns, after>>20, idleRSSCeiling>>20)
	}
	pct := func(l []time.Duration, p int) time.Duration { return l[len(l)*p/100].Round(10 * time.Microsecond) }
	t.Logf("RESULT without idle connections: RSS %.1f MiB; %d requests by %d clients: p50 %v p99 %v max %v",
		float64(base)/(1<<20), idleRequests, idleClients, pct(baseLat, 50), pct(baseLat, 99), baseLat[len(baseLat)-1].Round(10*time.Microsecond))
	t.Logf("RESULT %d idle connections from %d source addresses, opened in %v: RSS %.1f MiB (%.1f KiB per connection), %d open files",
		idleConns, idleConns, openTook.Round(time.Millisecond), float64(idle)/(1<<20), float64(idle-base)/1024/idleConns, fds)
	t.Logf("RESULT with them: %d requests by %d clients: p50 %v p99 %v max %v; RSS after %.1f MiB; ceiling %d MiB",
		idleRequests, idleClients, pct(lat, 50), pct(lat, 99), lat[len(lat)-1].Round(10*time.Microsecond), float64(after)/(1<<20), idleRSSCeiling>>20)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// normalLoad sends idleRequests GETs from idleClients keep-alive clients at
// once and returns their latencies, sorted.
func normalLoad(t *testing.T, url string) []time.Duration {
	t.Helper()
	lat := make([][]time.Duration, idleClients)
	var wg sync.WaitGroup
	var failed sync.Map
	for c := range idleClients {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for range idleRequests / idleClients {
				start := time.Now()
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Store(c, err)
					return
				}
				lat[c] = append(lat[c], time.Since(start))
			}
		})
	}
	wg.Wait()
	failed.Range(func(k, v any) bool {
		t.Fatalf("normal load, client %v: %v", k, v)
		return false
	})
	all := slices.Concat(lat...)
	slices.Sort(all)
	return all
}
