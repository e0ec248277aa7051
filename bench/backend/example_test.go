package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
)

// Example serves the benchmark body from an httptest server, as bench/compare
// does on a loopback port.
func Example() {
	h, err := newHandler(64, 1<<20)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/anything")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.ContentLength, len(body))
	// Output: 200 64 64
}
