package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestQuickstart runs the example as `go run ./examples/quickstart` does,
// on its fixed ports; it is skipped when one of them is taken.
func TestQuickstart(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8443", "127.0.0.1:9001", "127.0.0.1:9002"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("%s is in use: %v", addr, err)
		}
		ln.Close()
	}
	if got := defaultConfigDir(); got != "." {
		t.Errorf("defaultConfigDir() = %q in the example's directory, want \".\"", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard, ".", "127.0.0.1:0")
	}()

	get := func(path string, header http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := get("/", nil)
		if code == 200 && strings.HasPrefix(body, "backend: echo-v") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the quickstart did not serve / within 20s: %d %q", code, body)
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	code, body := get("/hello", http.Header{"X-Canary": {"always"}})
	for _, s := range []string{"backend: echo-v2", "GET /hello HTTP/1.1", "X-Route: canary", "X-Canary: always"} {
		if code != 200 || !strings.Contains(body, s) {
			t.Errorf("GET /hello with X-Canary: %d, body does not contain %q:\n%s", code, s, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
