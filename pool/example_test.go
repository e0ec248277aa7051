package pool_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/rauta/rauta/pool"
)

func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	defer backend.Close()

	p := pool.New(pool.Options{})
	defer p.Close()

	// A proxy resolves endpoints when it compiles a configuration, and
	// keeps the *Endpoint in its tables.
	key := pool.Key{Address: strings.TrimPrefix(backend.URL, "http://"), Protocol: pool.HTTP1}
	ep, err := p.Get(key)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, path := range []string{"/a", "/b"} {
		req, _ := http.NewRequest("GET", "http://app.example"+path, nil)
		resp, err := ep.RoundTrip(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	st := ep.Stats()
	fmt.Printf("dials=%d reused=%d open=%d idle=%d\n", st.Dials, st.Reused, st.Open, st.Idle)

	// After a configuration change that no longer names the backend:
	p.Retain(nil)
	fmt.Printf("open=%d\n", ep.Stats().Open)
	// Output:
	// 200 hello from /a
	// 200 hello from /b
	// dials=1 reused=1 open=1 idle=1
	// open=0
}

func ExampleNotSent() {
	p := pool.New(pool.Options{})
	defer p.Close()
	ep, _ := p.Get(pool.Key{Address: "127.0.0.1:1", Protocol: pool.HTTP1}) // nothing listens
	req, _ := http.NewRequest("POST", "http://app.example/order", strings.NewReader("{}"))
	_, err := ep.RoundTrip(req)
	fmt.Println("safe to retry elsewhere:", pool.NotSent(err))
	// Output:
	// safe to retry elsewhere: true
}

func ExampleEndpoint_SetLimits() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()

	p := pool.New(pool.Options{MaxRequestsPerConn: 100})
	defer p.Close()
	ep, _ := p.Get(pool.Key{Address: strings.TrimPrefix(backend.URL, "http://"), Protocol: pool.HTTP1})

	// This endpoint's backend wants a new connection every two requests,
	// whatever the pool's Options says.
	ep.SetLimits(pool.Limits{MaxRequests: 2})
	for range 6 {
		req, _ := http.NewRequest("GET", "http://app.example/", nil)
		resp, err := ep.RoundTrip(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	fmt.Printf("requests=%d dials=%d\n", ep.Stats().Requests, ep.Stats().Dials)
	// Output:
	// requests=6 dials=3
}
