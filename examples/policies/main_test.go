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

// TestPolicies runs the example as `go run ./examples/policies` does, on its
// fixed ports (skipped when one is taken), and checks what docs/policies.md
// promises for each policy.
func TestPolicies(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:18080", "127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"} {
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
	returned := false
	defer func() {
		cancel()
		if returned {
			return
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not return after cancel")
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string, header http.Header) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:18080"+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			return &http.Response{StatusCode: 0, Header: http.Header{}}, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := get("/", nil)
		if resp.StatusCode == 200 && strings.HasPrefix(body, "backend: app-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not serve / within 20s: %d %q", resp.StatusCode, body)
		}
		select {
		case err := <-done:
			returned = true
			t.Fatalf("run returned early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}

	t.Run("limited", func(t *testing.T) {
		start := time.Now()
		var ok, limited int
		var refused *http.Response
		for range 30 {
			resp, _ := get("/limited", nil)
			switch resp.StatusCode {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				limited++
				refused = resp
			default:
				t.Fatalf("GET /limited: status %d", resp.StatusCode)
			}
		}
		// Burst 5, then 5 per second: at most 5 + 5×elapsed (+1 for a
		// token that refilled between two requests).
		most := 5 + int(5*time.Since(start).Seconds()) + 1
		if ok < 5 || ok > most {
			t.Errorf("/limited admitted %d of 30 in %v, want 5..%d", ok, time.Since(start), most)
		}
		if refused == nil {
			t.Fatal("no request was refused")
		}
		for _, h := range []string{"Retry-After", "RateLimit", "RateLimit-Policy"} {
			if refused.Header.Get(h) == "" {
				t.Errorf("429 without %s: %v", h, refused.Header)
			}
		}
	})

	t.Run("sticky", func(t *testing.T) {
		seen := make(map[string]bool)
		for _, user := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"} {
			first := ""
			for range 5 {
				resp, _ := get("/sticky", http.Header{"X-User": {user}})
				b := resp.Header.Get("X-Backend")
				if first == "" {
					first = b
				}
				if resp.StatusCode != 200 || b != first {
					t.Fatalf("user %s: status %d from %q, first from %q", user, resp.StatusCode, b, first)
				}
			}
			seen[first] = true
		}
		if len(seen) < 2 {
			t.Errorf("8 users all reached %v: Maglev did not spread them", seen)
		}
	})

	t.Run("session", func(t *testing.T) {
		resp, _ := get("/session", nil)
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "rauta-demo-session" {
				cookie = c
			}
		}
		if resp.StatusCode != 200 || cookie == nil {
			t.Fatalf("GET /session: status %d, cookies %v", resp.StatusCode, resp.Cookies())
		}
		first := resp.Header.Get("X-Backend")
		for range 20 {
			resp, _ := get("/session", http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}})
			if got := resp.Header.Get("X-Backend"); resp.StatusCode != 200 || got != first {
				t.Fatalf("with the session cookie: status %d from %q, pinned to %q", resp.StatusCode, got, first)
			}
		}
	})
}
