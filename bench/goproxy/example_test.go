package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
)

// Example shows the baseline proxy taking turns between two backends.
func Example() {
	var targets []*url.URL
	for _, name := range []string{"left", "right"} {
		backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		defer backend.Close()
		u, _ := url.Parse(backend.URL)
		targets = append(targets, u)
	}
	proxy := httptest.NewServer(newProxy(targets, slog.New(slog.DiscardHandler)))
	defer proxy.Close()

	for range 3 {
		resp, err := http.Get(proxy.URL)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// left
	// right
	// left
}
