package main

import (
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
)

// TestMeasureDirect runs both modes against the echo server on a loopback
// port, as -serve and -target do in separate processes.
func TestMeasureDirect(t *testing.T) {
	encoding.RegisterCodec(rawCodec{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer()
	go srv.Serve(ln)
	defer srv.Stop()
	for _, mode := range []string{"unary", "streaming"} {
		r, err := measure(mode, ln.Addr().String(), 500*time.Millisecond, 0, 2, 1, 64)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if r.calls == 0 || r.errors != 0 || r.p50 <= 0 || r.p99 < r.p50 {
			t.Errorf("%s: got %d calls, %d errors, p50 %v, p99 %v; want calls, no error, 0 < p50 <= p99", mode, r.calls, r.errors, r.p50, r.p99)
		}
	}
}

func TestMeasureTargetRejectsMode(t *testing.T) {
	if err := measureTarget("127.0.0.1:1", "bidi", time.Second, 1, 1, 1); err == nil {
		t.Fatal("measureTarget with mode bidi: want an error, got nil")
	}
}
