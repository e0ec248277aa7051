package h2load_test

import (
	"net"
	"net/http"
	"strings"
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
