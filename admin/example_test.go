package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

func Example() {
	p := proxy.New(proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer p.Shutdown(context.Background())
	h, err := admin.NewHandler(admin.Options{Proxy: p})
	if err != nil {
		fmt.Println(err)
		return
	}
	get := func(target string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	get("/readyz")

	err = p.Apply(proxy.Config{
		Listeners: []proxy.Listener{{Name: "default/gw/http", Address: "127.0.0.1"}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "web", Listeners: []string{"default/gw/http"},
			Rules: []proxy.Rule{
				{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api"}}},
					Backends: []proxy.BackendRef{{Backend: "default/api:80", Weight: 1}}},
				{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathExact, Value: "/"}}},
					Backends: []proxy.BackendRef{{Backend: "default/web:80", Weight: 1}}},
			},
		}},
		Backends: []proxy.Backend{
			{Spec: upstream.Spec{Name: "default/api:80", Endpoints: []upstream.Endpoint{{Address: "127.0.0.1:9001"}}}},
			{Spec: upstream.Spec{Name: "default/web:80", Endpoints: []upstream.Endpoint{{Address: "127.0.0.1:9002"}}}},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	get("/readyz")
	get("/debug/route?path=/api/users")
	// Output:
	// 503 not ready: no configuration applied
	// 200 ok
	// 200 GET /api/users host ""
	//
	// listener default/gw/http: route default/web rule 0 match 0 -> default/api:80 weight 1
	//   WrongPath     default/web rule 1 match 0 (Exact /): path "/api/users" does not match Exact "/"
	//   Selected      default/web rule 0 match 0 (PathPrefix /api)
	//   policy in effect:
	//     rate limits: none
	//     request limits: proxy defaults
	//     backend default/api:80:
	//       load balancer RoundRobin
	//       health check: none
	//       circuit breaker package defaults
}
