package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
)

// Example builds a configuration in Go, serves it, and swaps in a new one.
func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s", r.URL.Path)
	}))
	defer backend.Close()

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())

	cfg := proxy.Config{
		Listeners: []proxy.Listener{{Name: "web", Address: "127.0.0.1", Port: 0, Protocol: proxy.HTTP}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "app", Listeners: []string{"web"},
			Rules: []proxy.Rule{{
				Matches:  []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api"}}},
				Backends: []proxy.BackendRef{{Backend: "app", Weight: 1}},
			}},
		}},
		Backends: []proxy.Backend{{
			Name:      "app",
			Endpoints: []proxy.Endpoint{{Address: strings.TrimPrefix(backend.URL, "http://")}},
		}},
	}
	if err := p.Apply(cfg); err != nil {
		fmt.Println(err)
		return
	}
	addr, _ := p.Addr("web")
	for _, path := range []string{"/api/users", "/other"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// 200 backend saw /api/users
	// 404 no route
}
