package main

import (
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/encoding"
)

// Example measures unary calls against the echo server on a loopback port,
// as bench/compare does with -serve and -target in separate processes.
func Example() {
	encoding.RegisterCodec(rawCodec{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := newServer()
	go srv.Serve(ln)
	defer srv.Stop()

	r, err := measure("unary", ln.Addr().String(), 300*time.Millisecond, 0, 1, 1, 128)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("calls completed:", r.calls > 0, "errors:", r.errors)
	// Output: calls completed: true errors: 0
}
