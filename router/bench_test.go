package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// benchSet builds a realistic mix of n routes and requests against them:
// most routes have one exact hostname (about ten routes per host), some a
// wildcard hostname, a few none; rules use prefixes, some exact paths,
// some methods and header conditions. About one request in ten misses.
func benchSet(n int) ([]Route, []Request) {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	hosts := max(n/10, 1)
	routes := make([]Route, n)
	for i := range routes {
		rt := &routes[i]
		rt.Namespace = "ns" + strconv.Itoa(i%50)
		rt.Name = "route-" + strconv.Itoa(i)
		rt.CreationTime = time.Unix(int64(1_700_000_000+r.IntN(1_000_000)), 0)
		switch k := r.IntN(20); {
		case k == 0:
			// no hostnames
		case k <= 2:
			rt.Hostnames = []string{fmt.Sprintf("*.team%d.example.org", r.IntN(hosts))}
		default:
			rt.Hostnames = []string{fmt.Sprintf("svc%d.example.com", r.IntN(hosts))}
		}
		base := fmt.Sprintf("/api/v%d/res%d", 1+r.IntN(3), i)
		m0 := prefix(base + "/items")
		if r.IntN(5) == 0 {
			m0 = m0.header("x-tenant", "t"+strconv.Itoa(r.IntN(4)))
		}
		if r.IntN(10) == 0 {
			m0 = m0.method("POST")
		}
		rt.Rules = []Rule{
			{Matches: []Match{m0}, Value: i},
			{Matches: []Match{prefix(base), exact(base + "/healthz")}, Value: i},
		}
	}
	reqs := make([]Request, 1024)
	for i := range reqs {
		rt := &routes[r.IntN(n)]
		host := "unknown.example.net"
		if len(rt.Hostnames) > 0 {
			host = rt.Hostnames[0]
			if host[0] == '*' {
				host = "web" + host[1:]
			}
		}
		path := rt.Rules[1].Matches[0].Path.Value
		switch r.IntN(10) {
		case 0:
			path = "/not/routed/anywhere"
		case 1, 2, 3:
			path += "/items/" + strconv.Itoa(r.IntN(1000))
		case 4:
			path += "/healthz"
		default:
			path += "/other/" + strconv.Itoa(r.IntN(1000))
		}
		reqs[i] = Request{
			Host:     host,
			Path:     path,
			Method:   "GET",
			Header:   http.Header{"X-Tenant": {"t" + strconv.Itoa(r.IntN(4))}, "User-Agent": {"bench"}},
			RawQuery: "page=2&sort=asc",
		}
	}
	return routes, reqs
}

var benchSizes = []int{10, 1000, 10000}

func BenchmarkMatch(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("routes="+strconv.Itoa(n), func(b *testing.B) {
			routes, reqs := benchSet(n)
			tab := Compile(routes)
			err := tab.Err()
			if err != nil {
				b.Fatal(err)
			}
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := tab.Match(&reqs[i%len(reqs)]); err == nil {
					matched++
				}
			}
			if matched == 0 {
				b.Fatal("no request matched")
			}
		})
	}
}

func BenchmarkMatchRegex(b *testing.B) {
	routes, reqs := benchSet(1000)
	for i := range routes {
		if i%10 == 0 {
			routes[i].Rules = append(routes[i].Rules, rule(regex(fmt.Sprintf(`/api/v[0-9]+/res%d/[a-z]+/[0-9]+`, i))))
		}
	}
	tab := Compile(routes)
	err := tab.Err()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _ = tab.Match(&reqs[i%len(reqs)])
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("routes="+strconv.Itoa(n), func(b *testing.B) {
			routes, _ := benchSet(n)
			b.ReportAllocs()
			for b.Loop() {
				if err := Compile(routes).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, p := range []struct{ name, path string }{
		{"canonical", "/api/v1/users/12345/orders"},
		{"rewrite", "/api//v1/./users/%31%32/../12345/orders"},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(p.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkExplain(b *testing.B) {
	routes, reqs := benchSet(1000)
	tab := Compile(routes)
	err := tab.Err()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := tab.Explain(&reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
}
