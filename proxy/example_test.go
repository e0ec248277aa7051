package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
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
			Spec: upstream.Spec{Name: "app", Endpoints: []upstream.Endpoint{{Address: strings.TrimPrefix(backend.URL, "http://")}}},
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

// ExampleRateLimit limits a listener as a whole and one route within it;
// a refused request is answered 429 with the fields that say why.
func ExampleRateLimit() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()

	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(context.Background())
	// Two replicas serve this gateway: each admits half of every limit.
	p.SetReplicas(2)

	cfg := proxy.Config{
		Listeners: []proxy.Listener{{
			Name: "web", Address: "127.0.0.1", Protocol: proxy.HTTP,
			RateLimits: []proxy.RateLimit{{Name: "gateway", Rate: 1000, Burst: 2000}},
		}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "app", Listeners: []string{"web"},
			RateLimits: []proxy.RateLimit{{Name: "default/app", Rate: 2, Burst: 4, Window: time.Minute}},
			Rules:      []proxy.Rule{{Backends: []proxy.BackendRef{{Backend: "app", Weight: 1}}}},
		}},
		Backends: []proxy.Backend{{
			Spec: upstream.Spec{Name: "app", Endpoints: []upstream.Endpoint{{Address: strings.TrimPrefix(backend.URL, "http://")}}},
		}},
	}
	if err := p.Apply(cfg); err != nil {
		fmt.Println(err)
		return
	}
	addr, _ := p.Addr("web")
	for range 3 {
		resp, err := http.Get("http://" + addr.String() + "/")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			fmt.Println(resp.StatusCode)
			continue
		}
		fmt.Println(resp.StatusCode, resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
	}
	// Output:
	// 200
	// 200
	// 429 "default/app";q=120;w=60 "default/app";r=0;t=1
}

// ExampleSessionPersistence pins a client to the endpoint that served its
// first request, with a cookie sealed by the proxy.
func ExampleSessionPersistence() {
	var endpoints []upstream.Endpoint
	for _, name := range []string{"one", "two", "three"} {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		defer s.Close()
		endpoints = append(endpoints, upstream.Endpoint{Address: strings.TrimPrefix(s.URL, "http://")})
	}

	p := proxy.New(proxy.Options{
		Logger: slog.New(slog.DiscardHandler),
		// Replicas share a key; without one each Proxy makes its own.
		SessionKey: []byte("an example key of 32 bytes long!"),
	})
	defer p.Shutdown(context.Background())
	cfg := proxy.Config{
		Listeners: []proxy.Listener{{Name: "web", Address: "127.0.0.1", Protocol: proxy.HTTP}},
		Routes: []proxy.Route{{
			Namespace: "default", Name: "shop", Listeners: []string{"web"},
			Rules: []proxy.Rule{{
				Matches:            []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/cart"}}},
				Backends:           []proxy.BackendRef{{Backend: "cart", Weight: 1}},
				SessionPersistence: &proxy.SessionPersistence{Type: proxy.SessionCookie, Name: "cart-session"},
			}},
		}},
		Backends: []proxy.Backend{{Spec: upstream.Spec{Name: "cart", Endpoints: endpoints}}},
	}
	if err := p.Apply(cfg); err != nil {
		fmt.Println(err)
		return
	}
	addr, _ := p.Addr("web")
	get := func(cookie string) (string, *http.Cookie) {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/cart/items", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error(), nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var c *http.Cookie
		if cs := resp.Cookies(); len(cs) > 0 {
			c = cs[0]
		}
		return string(body), c
	}

	first, c := get("")
	fmt.Printf("cookie %s: Path=%s HttpOnly=%v SameSite=Lax:%v\n", c.Name, c.Path, c.HttpOnly, c.SameSite == http.SameSiteLaxMode)
	same := true
	for range 10 {
		got, _ := get(c.Name + "=" + c.Value)
		same = same && got == first
	}
	fmt.Println("ten requests with the cookie reached the first endpoint:", same)
	// Output:
	// cookie cart-session: Path=/cart HttpOnly=true SameSite=Lax:true
	// ten requests with the cookie reached the first endpoint: true
}
