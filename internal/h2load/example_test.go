package h2load_test

import (
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/rauta/rauta/internal/h2load"
	"github.com/rauta/rauta/internal/h2server"
)

// Example sends 100 GETs, 10 at a time, over one h2c connection to
// rauta's HTTP/2 server.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	srv := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
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

	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	c, err := h2load.NewConn(nc, h2load.Request{Scheme: "http", Authority: "example.test", Path: "/"})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Run(100, 10); err != nil {
		panic(err)
	}
	fmt.Println(c.Bytes, "body bytes")
	// Output: 500 body bytes
}
