package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rauta/rauta/proxy"
)

// policiesDir is the example that `rauta serve --config examples/policies`
// serves.
const policiesDir = "../../examples/policies"

// policyGateway is one rauta process serving a copy of examples/policies
// whose ports were rewritten to free ones.
type policyGateway struct {
	url   string
	admin string
	logs  *syncBuffer
}

// startPoliciesGateway runs the binary on examples/policies with the
// example's endpoints replaced by backends and extra flags appended.
func startPoliciesGateway(t *testing.T, backends []*httptest.Server, extra ...string) *policyGateway {
	t.Helper()
	bin := rautaBinary(t)
	dir := t.TempDir()
	ports := freePorts(t, 2)
	pairs := []string{"port: 18080", "port: " + strconv.Itoa(ports[0])}
	for i, b := range backends {
		pairs = append(pairs, "port: "+strconv.Itoa(19001+i), "port: "+strconv.Itoa(b.Listener.Addr().(*net.TCPAddr).Port))
	}
	replacer := strings.NewReplacer(pairs...)
	files, err := filepath.Glob(filepath.Join(policiesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML files in %s: %v", policiesDir, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), []byte(replacer.Replace(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := &policyGateway{
		url:   "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		admin: "http://127.0.0.1:" + strconv.Itoa(ports[1]),
		logs:  &syncBuffer{},
	}
	args := append([]string{"serve", "--config", dir, "--admin-address", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--access-log", "off", "--shutdown-timeout", "2s"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("rauta %v logs:\n%s", extra, g.logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(g.url + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return g
			}
		}
		select {
		case <-exited:
			t.Fatalf("rauta exited early:\n%s", g.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rauta did not serve / within 30s:\n%s", g.logs.String())
		}
	}
}

// TestServeSessionKeyShared runs examples/policies in three processes: two
// share a session key file (one raw, one in base64), the third has its
// own. A session cookie issued by the first is honoured by the second, so
// a client keeps its endpoint when a load balancer moves it between
// replicas; the third cannot read it and pins the client anew.
func TestServeSessionKeyShared(t *testing.T) {
	var backends []*httptest.Server
	for i := range 3 {
		name := fmt.Sprintf("app-%d", i+1)
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", name)
			io.WriteString(w, "backend: "+name+"\n")
		}))
		t.Cleanup(b.Close)
		backends = append(backends, b)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	dir := t.TempDir()
	raw, b64 := filepath.Join(dir, "raw"), filepath.Join(dir, "b64")
	if err := os.WriteFile(raw, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b64, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startPoliciesGateway(t, backends, "--session-key-file", raw)
	b := startPoliciesGateway(t, backends, "--session-key-file", b64)
	c := startPoliciesGateway(t, backends)

	get := func(g *policyGateway, cookie *http.Cookie) (string, *http.Cookie) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.url+"/session", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /session: %d", resp.StatusCode)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == "rauta-demo-session" {
				return resp.Header.Get("X-Backend"), ck
			}
		}
		return resp.Header.Get("X-Backend"), nil
	}
	// Sessions spread over the endpoints; each stays on its endpoint
	// through the other process with the same key.
	moved, repinned := 0, 0
	for range 12 {
		first, cookie := get(a, nil)
		if cookie == nil {
			t.Fatal("no session cookie issued")
		}
		for range 3 {
			if got, again := get(b, cookie); got != first {
				moved++
			} else if again != nil {
				t.Errorf("the second process re-issued a valid session cookie")
			}
		}
		if _, again := get(c, cookie); again == nil {
			t.Errorf("a process with another key honoured a cookie it cannot read")
		} else {
			repinned++
		}
	}
	if moved != 0 {
		t.Errorf("%d of 36 requests with a session cookie left their endpoint on a replica sharing the key", moved)
	}
	if repinned != 12 {
		t.Errorf("the process with its own key re-pinned %d of 12 sessions", repinned)
	}
}

func TestReadSessionKey(t *testing.T) {
	dir := t.TempDir()
	key := []byte("an example key of 32 bytes long!")
	for _, tc := range []struct {
		name, content string
		ok            bool
	}{
		{"raw", string(key), true},
		{"base64", base64.StdEncoding.EncodeToString(key) + "\n", true},
		{"base64url unpadded", base64.RawURLEncoding.EncodeToString(key), true},
		{"short", "too short", false},
		{"base64 of 16 bytes", base64.StdEncoding.EncodeToString(key[:16]), false},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readSessionKey(p)
		if tc.ok != (err == nil) || (tc.ok && string(got) != string(key)) {
			t.Errorf("%s: got %q, %v", tc.name, got, err)
		}
		if !tc.ok && err != nil && !strings.Contains(err.Error(), strconv.Itoa(proxy.SessionKeySize)) {
			t.Errorf("%s: error %q does not give the size", tc.name, err)
		}
	}
	if _, err := readSessionKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file gave no error")
	}
}
