package main

// End-to-end tests: the rauta binary, built with `go build`, started as a
// process on a copy of examples/quickstart (with free ports) and checked
// with real HTTP requests.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rauta/rauta/filesource"
)

const exampleDir = "../../examples/quickstart"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// rautaBinary builds the binary once per test run. With the race detector
// on, the binary is built with it too, which reuses the test's compiled
// packages and catches races in the process.
func rautaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "rauta-e2e")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rauta")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePorts returns n distinct TCP ports of 127.0.0.1 that were free a
// moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// echoBackend answers with its name and the X-Route header it received.
func echoBackend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "backend: %s\npath: %s\nx-route: %s\n", name, r.URL.Path, r.Header.Get("X-Route"))
	}))
	t.Cleanup(s.Close)
	return s
}

// gateway is a running rauta process and what it serves.
type gateway struct {
	dir                    string // the configuration directory
	http, https, admin     string // base URLs
	httpsPort              int
	roots                  *x509.CertPool
	cmd                    *exec.Cmd
	logs                   *syncBuffer
	exited                 chan struct{}
	client                 *http.Client // no redirects followed
	v1, v2                 *httptest.Server
	exitErr                error
	httpPort, adminPortNum int
}

// startGateway copies the quickstart's YAML files with free ports and
// backends of the test, and starts `rauta serve` on them.
func startGateway(t *testing.T) *gateway {
	bin := rautaBinary(t)
	g := &gateway{dir: t.TempDir(), logs: &syncBuffer{}, exited: make(chan struct{})}
	g.v1, g.v2 = echoBackend(t, "echo-v1"), echoBackend(t, "echo-v2")
	ports := freePorts(t, 3)
	g.httpPort, g.httpsPort, g.adminPortNum = ports[0], ports[1], ports[2]
	replacer := strings.NewReplacer(
		"port: 8080", "port: "+strconv.Itoa(g.httpPort),
		"port: 8443", "port: "+strconv.Itoa(g.httpsPort),
		"9001", strconv.Itoa(g.v1.Listener.Addr().(*net.TCPAddr).Port),
		"9002", strconv.Itoa(g.v2.Listener.Addr().(*net.TCPAddr).Port),
	)
	files, err := filepath.Glob(filepath.Join(exampleDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files in %s: %v", exampleDir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(g.dir, filepath.Base(f)), []byte(replacer.Replace(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Trust the example's self-signed certificate.
	res, err := filesource.Load(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	g.roots = x509.NewCertPool()
	for _, s := range res.Secrets {
		if !g.roots.AppendCertsFromPEM(s.Data["tls.crt"]) {
			t.Fatalf("secret %s: no certificate", s.Name)
		}
	}

	g.http = "http://127.0.0.1:" + strconv.Itoa(g.httpPort)
	g.https = "https://api.example.com:" + strconv.Itoa(g.httpsPort)
	g.admin = "http://127.0.0.1:" + strconv.Itoa(g.adminPortNum)
	g.cmd = exec.Command(bin, "serve", "--config", g.dir,
		"--admin-address", "127.0.0.1:"+strconv.Itoa(g.adminPortNum),
		"--poll-interval", "50ms", "--log-format", "json", "--shutdown-timeout", "5s")
	g.cmd.Stdout = g.logs
	g.cmd.Stderr = g.logs
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.exitErr = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			g.cmd.Process.Kill()
			<-g.exited
		}
		if t.Failed() {
			t.Logf("rauta logs:\n%s", g.logs.String())
		}
	})
	g.client = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			// Every name resolves to the gateway, as curl --resolve does.
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
			TLSClientConfig:     &tls.Config{RootCAs: g.roots},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
		},
	}
	g.waitFor(t, "/readyz to answer 200", 30*time.Second, func() bool {
		code, _, _ := g.get(g.admin+"/readyz", nil)
		return code == 200
	})
	return g
}

// get does a GET and returns the status, the body and the headers; the
// status is 0 on a transport error.
func (g *gateway) get(url string, header http.Header) (int, string, http.Header) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error(), nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error(), nil
	}
	return resp.StatusCode, string(b), resp.Header
}

func (g *gateway) waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-g.exited:
			t.Fatalf("rauta exited (%v) while waiting for %s", g.exitErr, what)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// editFile rewrites a configuration file with a replacement applied.
func (g *gateway) editFile(t *testing.T, name, old, new string) {
	t.Helper()
	p := filepath.Join(g.dir, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestServe(t *testing.T) {
	g := startGateway(t)

	t.Run("routing", func(t *testing.T) {
		for _, tc := range []struct {
			name, url  string
			header     http.Header
			wantCode   int
			wantBody   []string
			wantHeader map[string]string
		}{
			{name: "header match", url: g.http + "/hello", header: http.Header{"X-Canary": {"always"}},
				wantCode: 200, wantBody: []string{"backend: echo-v2", "path: /hello", "x-route: canary"}},
			{name: "split rule filter", url: g.http + "/x", wantCode: 200, wantBody: []string{"x-route: split"}},
			{name: "redirect", url: g.http + "/old", wantCode: 301,
				wantHeader: map[string]string{"Location": "http://127.0.0.1:" + strconv.Itoa(g.httpPort) + "/new"}},
			{name: "http to https", url: "http://api.example.com:" + strconv.Itoa(g.httpPort) + "/api/users", wantCode: 301,
				wantHeader: map[string]string{"Location": g.https + "/api/users"}},
			{name: "https with SNI", url: g.https + "/api/users", wantCode: 200,
				wantBody: []string{"backend: echo-v1", "path: /api/users", "x-route: api"}},
			{name: "https other host", url: "https://www.example.com:" + strconv.Itoa(g.httpsPort) + "/api/users", wantCode: 200,
				wantBody: []string{"x-route: split"}},
		} {
			code, body, hdr := g.get(tc.url, tc.header)
			if code != tc.wantCode {
				t.Errorf("%s: GET %s: %d %q, want %d", tc.name, tc.url, code, body, tc.wantCode)
				continue
			}
			for _, s := range tc.wantBody {
				if !strings.Contains(body, s) {
					t.Errorf("%s: body %q does not contain %q", tc.name, body, s)
				}
			}
			for k, v := range tc.wantHeader {
				if hdr.Get(k) != v {
					t.Errorf("%s: %s: %q, want %q", tc.name, k, hdr.Get(k), v)
				}
			}
		}

		// The HTTPS listener presents the example's certificate, over h2.
		resp, err := g.client.Get(g.https + "/api/users")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.ServerName != "api.example.com" ||
			!slices.Contains(resp.TLS.PeerCertificates[0].DNSNames, "*.example.com") {
			t.Errorf("HTTPS: proto %s, TLS %+v", resp.Proto, resp.TLS)
		}
	})

	t.Run("weights", func(t *testing.T) {
		const n = 400
		v1 := 0
		for range n {
			code, _, hdr := g.get(g.http+"/", nil)
			if code != 200 {
				t.Fatalf("GET /: %d", code)
			}
			if hdr.Get("X-Backend") == "echo-v1" {
				v1++
			}
		}
		// 80/20: 320 expected, with a standard deviation of 8.
		if v1 < 280 || v1 > 360 {
			t.Errorf("echo-v1 served %d of %d requests, want about 80%%", v1, n)
		}
	})

	t.Run("admin", func(t *testing.T) {
		code, body, _ := g.get(g.admin+"/metrics", nil)
		if code != 200 || !strings.Contains(body, `rauta_http_requests_total{`) || !strings.Contains(body, `route="default/web"`) {
			t.Errorf("/metrics: %d\n%.2000s", code, body)
		}
		code, body, _ = g.get(g.admin+"/debug/route?host=api.example.com&path=/api/users&listener=default/demo/https", nil)
		for _, s := range []string{
			"listener default/demo/https: route default/api rule 0 match 0 filters RequestHeaderModifier -> default/echo-v1:80 weight 1",
			"Selected      default/api rule 0 match 0 (PathPrefix /api, hostname api.example.com)",
			`WrongPath     default/web rule 1 "moved" match 0 (Exact /old): path "/api/users" does not match Exact "/old"`,
			`WrongHeader   default/web rule 0 "canary" match 0 (PathPrefix /): header "X-Canary" is missing`,
			`Shadowed      default/web rule 2 "split" match 0 (PathPrefix /)`,
		} {
			if code != 200 || !strings.Contains(body, s) {
				t.Errorf("/debug/route: %d, does not contain %q:\n%s", code, s, body)
			}
		}
		code, body, _ = g.get(g.admin+"/debug/route?path=/hello&header=X-Canary:always&listener=default/demo/http&format=json", nil)
		var ex struct {
			Listeners []struct {
				Selected   int
				Candidates []struct{ Route, RuleName, Verdict string }
			}
		}
		if err := json.Unmarshal([]byte(body), &ex); err != nil || code != 200 || len(ex.Listeners) != 1 ||
			ex.Listeners[0].Selected < 0 || ex.Listeners[0].Candidates[ex.Listeners[0].Selected].RuleName != "canary" {
			t.Errorf("/debug/route JSON: %d %v\n%s", code, err, body)
		}
		code, body, _ = g.get(g.admin+"/debug/config", nil)
		if code != 200 || !strings.Contains(body, `"default/demo/https"`) || strings.Contains(body, "PRIVATE KEY") {
			t.Errorf("/debug/config: %d\n%.1000s", code, body)
		}
		code, body, _ = g.get(g.admin+"/debug/status", nil)
		if code != 200 || !strings.Contains(body, "kind: HTTPRoute") || !strings.Contains(body, "reason: Accepted") {
			t.Errorf("/debug/status: %d\n%.1000s", code, body)
		}
		if code, _, _ := g.get(g.admin+"/healthz", nil); code != 200 {
			t.Errorf("/healthz: %d", code)
		}
	})

	t.Run("hot reload under load", func(t *testing.T) {
		var stop atomic.Bool
		var total, failed atomic.Int64
		var firstFailure atomic.Value
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for !stop.Load() {
					code, body, _ := g.get(g.http+"/load", nil)
					total.Add(1)
					if code != 200 {
						failed.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
					}
				}
			})
		}
		// Each edit adds a rule; it must take effect while the load runs.
		for i := range 3 {
			path := fmt.Sprintf("/reloaded-%d", i)
			g.editFile(t, "routes.yaml", "  - name: canary\n", fmt.Sprintf(`  - matches:
    - path:
        type: Exact
        value: %s
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set:
        - name: X-Route
          value: reloaded-%d
    backendRefs:
    - name: echo-v2
      port: 80
  - name: canary
`, path, i))
			g.waitFor(t, path+" to be routed", 15*time.Second, func() bool {
				code, body, _ := g.get(g.http+path, nil)
				return code == 200 && strings.Contains(body, fmt.Sprintf("x-route: reloaded-%d", i))
			})
		}
		time.Sleep(100 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
		if failed.Load() > 0 || total.Load() < 50 {
			t.Errorf("%d of %d requests failed during the reloads (first: %v)", failed.Load(), total.Load(), firstFailure.Load())
		}
		t.Logf("%d requests during 3 reloads, %d failed", total.Load(), failed.Load())
		code, body, _ := g.get(g.admin+"/debug/config", nil)
		var cfg struct{ Generation int }
		if err := json.Unmarshal([]byte(body), &cfg); err != nil || code != 200 || cfg.Generation < 4 {
			t.Errorf("generation after 3 reloads: %d (%v)", cfg.Generation, err)
		}
	})

	t.Run("broken file", func(t *testing.T) {
		routes := filepath.Join(g.dir, "routes.yaml")
		good, err := os.ReadFile(routes)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, old, new, wantLog string }{
			{"unknown field", "        value: /old\n", "        value: /changed\n        valeu: /old\n",
				"routes.yaml: document 1 (line 8): HTTPRoute default/web: spec.rules[4].matches[0].path.valeu: unknown field"},
			{"bad YAML", "  name: api\n", "  name: api\n   namespace: x\n", "routes.yaml: document 2 (line"},
		} {
			g.editFile(t, "routes.yaml", tc.old, tc.new)
			g.waitFor(t, "the error to be logged", 15*time.Second, func() bool {
				return strings.Contains(g.logs.String(), tc.wantLog)
			})
			// The previous configuration keeps serving.
			if code, body, hdr := g.get(g.http+"/old", nil); code != 301 || !strings.HasSuffix(hdr.Get("Location"), "/new") {
				t.Errorf("%s: GET /old: %d %q, want the old redirect", tc.name, code, body)
			}
			if code, _, _ := g.get(g.http+"/reloaded-2", nil); code != 200 {
				t.Errorf("%s: GET /reloaded-2: %d, want 200", tc.name, code)
			}
			code, body, _ := g.get(g.admin+"/debug/status?format=json", nil)
			var st struct {
				Error   string
				Objects []any
			}
			if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 ||
				!strings.Contains(st.Error, "routes.yaml") || len(st.Objects) == 0 {
				t.Errorf("%s: /debug/status: %d %v %.500s", tc.name, code, err, body)
			}
			if code, _, _ := g.get(g.admin+"/readyz", nil); code != 200 {
				t.Errorf("%s: /readyz: %d, want 200", tc.name, code)
			}
			if err := os.WriteFile(routes, good, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Fixed again: the status has no error.
		g.waitFor(t, "the error to clear", 15*time.Second, func() bool {
			_, body, _ := g.get(g.admin+"/debug/status?format=json", nil)
			return !strings.Contains(body, `"error"`)
		})
	})

	t.Run("shutdown", func(t *testing.T) {
		if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-g.exited:
		case <-time.After(15 * time.Second):
			t.Fatal("rauta did not exit within 15s of SIGTERM")
		}
		if g.exitErr != nil {
			t.Errorf("rauta exited with %v", g.exitErr)
		}
		if !strings.Contains(g.logs.String(), `"msg":"rauta stopped"`) {
			t.Errorf("no 'rauta stopped' log line")
		}
	})
}

func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(rautaBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

func TestValidate(t *testing.T) {
	code, out, errOut := runBinary(t, "validate", "--config", exampleDir)
	if code != 0 || !strings.Contains(out, "configuration OK") || !strings.Contains(out, "ok   HTTPRoute default/web: accepted by default/demo") {
		t.Errorf("validate of the example: exit %d\n%s%s", code, out, errOut)
	}

	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "a.yaml"), []byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {portz: []}\n"), 0o644)
	code, out, errOut = runBinary(t, "validate", "--config", broken)
	if want := filepath.Join(broken, "a.yaml") + ": document 1 (line 1): Service default/a: spec.portz: unknown field"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate of a broken file: exit %d, want 1 and %q\n%s%s", code, want, out, errOut)
	}

	// A route whose parentRef names a missing listener loads but is not
	// accepted.
	rejected := t.TempDir()
	for _, f := range []string{"gateway.yaml", "backends.yaml", "routes.yaml"} {
		b, err := os.ReadFile(filepath.Join(exampleDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rejected, f), bytes.ReplaceAll(b, []byte("sectionName: https"), []byte("sectionName: nope")), 0o644)
	}
	code, out, errOut = runBinary(t, "validate", "--config", rejected)
	if code != 1 || !strings.Contains(out, "FAIL HTTPRoute default/api: parent default/demo/nope: Accepted=False") || !strings.Contains(out, "1 objects not accepted") {
		t.Errorf("validate of a rejected route: exit %d\n%s%s", code, out, errOut)
	}

	for _, args := range [][]string{
		{"validate"},
		{"serve", "--config", exampleDir, "--log-format", "xml"},
		{"serve", "--config", exampleDir, "--address-pool", "nope"},
		{"serve", "--nope"},
		{"frobnicate"},
		{},
	} {
		if code, out, errOut := runBinary(t, args...); code != 2 {
			t.Errorf("rauta %q: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
	if code, out, _ := runBinary(t, "version"); code != 0 || !strings.HasPrefix(out, "rauta ") {
		t.Errorf("rauta version: exit %d %q", code, out)
	}
	// serve exits with 1 when the files do not load.
	if code, _, errOut := runBinary(t, "serve", "--config", broken, "--admin-address", ""); code != 1 || !strings.Contains(errOut, "unknown field") {
		t.Errorf("serve of a broken file: exit %d\n%s", code, errOut)
	}
}
