package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// ExampleProxy_Handler mounts the proxy in a program's own http.Server,
// behind the program's own middleware and next to its own routes. The
// listener is Unbound: the proxy binds nothing, and the program's server
// decides the address, TLS and protocols.
func ExampleProxy_Handler() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s with tenant %s", r.URL.Path, r.Header.Get("X-Tenant"))
	}))
	defer backend.Close()

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	err := p.Apply(proxy.Config{
		Listeners: []proxy.Listener{{Name: "mounted", Protocol: proxy.HTTP, Unbound: true}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "app", Listeners: []string{"mounted"},
			Rules: []proxy.Rule{{
				Matches:  []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api"}}},
				Backends: []proxy.BackendRef{{Backend: "app", Weight: 1}},
			}},
		}},
		Backends: []proxy.Backend{{
			Spec: upstream.Spec{Name: "app", Endpoints: []upstream.Endpoint{{Address: strings.TrimPrefix(backend.URL, "http://")}}},
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The program's middleware: it tags the request for the backend and
	// the response for the client.
	tenant := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Set("X-Tenant", "blue")
			w.Header().Set("X-Served-By", "my-server")
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("/", tenant(p.Handler("mounted")))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background()) // before the proxy's Shutdown

	for _, path := range []string{"/api/users", "/healthz", "/other"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %q %s\n", resp.StatusCode, resp.Header.Get("X-Served-By"), strings.TrimSpace(string(body)))
	}
	// Output:
	// 200 "my-server" backend saw /api/users with tenant blue
	// 200 "" ok
	// 404 "my-server" no route
}
