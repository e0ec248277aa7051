package h2load_test

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rauta/rauta/internal/h2load"
	"github.com/rauta/rauta/internal/h2server"
)

// TestRunFailsOnStatus checks that a response other than 200 fails Run,
// so that a benchmark never counts errors as requests served.
func TestRunFailsOnStatus(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	defer srv.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(nc, nil)
		}
	}()
	for _, tc := range []struct{ path, err string }{{"/", ""}, {"/fail", "status 503"}} {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := h2load.NewConn(nc, h2load.Request{Scheme: "http", Authority: "example.test", Path: tc.path})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Run(20, 5)
		c.Close()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Run: %v; want %q", tc.path, err, tc.err)
		}
	}
}

// TestRunAllSpreadsRequests: RunAll sends exactly n requests over its
// connections, each connection its share.
func TestRunAllSpreadsRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	perConn := map[string]int{}
	srv := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perConn[r.RemoteAddr]++
		mu.Unlock()
	})}
	defer srv.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(nc, nil)
		}
	}()
	var conns []*h2load.Conn
	for range 3 {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := h2load.NewConn(nc, h2load.Request{Scheme: "http", Authority: "example.test", Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	if err := h2load.RunAll(conns, 50, 4); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var shares []int
	total := 0
	for _, n := range perConn {
		shares = append(shares, n)
		total += n
	}
	slices.Sort(shares)
	if total != 50 || !slices.Equal(shares, []int{16, 17, 17}) {
		t.Fatalf("requests per connection %v, want 16, 17 and 17", shares)
	}
}
