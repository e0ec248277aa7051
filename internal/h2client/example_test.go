package h2client_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/rauta/rauta/internal/h2client"
	"github.com/rauta/rauta/internal/h2server"
)

// Example dials an h2c server (rauta's own, on loopback), sends a POST with
// a trailer on a reserved stream, and reads the answer and its trailer.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	srv := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Length")
		fmt.Fprintf(w, "%s %s got %q (%s)", r.Proto, r.URL.Path, body, r.Trailer.Get("X-Checksum"))
		w.Header().Set("X-Length", fmt.Sprint(len(body)))
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
		fmt.Println(err)
		return
	}
	c, err := h2client.NewConn(nc, h2client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/upload", strings.NewReader("hello"))
	req.Trailer = http.Header{"X-Checksum": {"c0ffee"}}
	req.ContentLength = -1
	if !c.Reserve() {
		fmt.Println("no room for a stream")
		return
	}
	resp, err := c.RoundTrip(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status, string(body), err)
	fmt.Println("trailer X-Length:", resp.Trailer.Get("X-Length"))
	// Output:
	// 200 OK HTTP/2.0 /upload got "hello" (c0ffee) <nil>
	// trailer X-Length: 5
}
