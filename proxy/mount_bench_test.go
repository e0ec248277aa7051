package proxy

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkProxyHandler is BenchmarkProxyHTTP1 through Proxy.Handler: a GET
// over keep-alive HTTP/1.1 to net/http's server, with an unbound listener
// mounted as its handler, to a canned backend. Compare it with
// BenchmarkProxyHTTP1/net-http, the same server bound by the proxy itself.
func BenchmarkProxyHandler(b *testing.B) {
	backend := cannedBackend(b)
	p := newTestProxy(b, Options{})
	cfg := simpleConfig(map[string][]string{"b": {backend}},
		Rule{Matches: prefix("/"), Backends: []BackendRef{{Backend: "b", Weight: 1}}})
	cfg.Listeners[0] = Listener{Name: "gw/http", Protocol: HTTP, Unbound: true}
	if err := p.Apply(cfg); err != nil {
		b.Fatal(err)
	}
	s := httptest.NewServer(p.Handler("gw/http"))
	b.Cleanup(s.Close)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rc := newRawClient(b, addrOf(s), "/bench/path?q=1")
		defer rc.c.Close()
		for pb.Next() {
			code, err := rc.do()
			if err != nil || code != 200 {
				b.Errorf("status %d, %v", code, err)
				return
			}
		}
	})
}
