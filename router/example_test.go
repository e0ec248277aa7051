package router_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/rauta/rauta/router"
)

func Example() {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	table := router.Compile([]router.Route{
		{
			Namespace: "shop", Name: "web", CreationTime: created,
			Hostnames: []string{"*.example.com"},
			Rules: []router.Rule{
				{Value: "web-frontend"}, // no matches: PathPrefix "/"
			},
		},
		{
			Namespace: "shop", Name: "api", CreationTime: created,
			Hostnames: []string{"shop.example.com"},
			Rules: []router.Rule{
				{
					Matches: []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/api"}}},
					Value:   "api-v1",
				},
				{
					Matches: []router.Match{{
						Path:    router.PathMatch{Type: router.PathPrefix, Value: "/api"},
						Headers: []router.HeaderMatch{{Name: "x-version", Value: "2"}},
					}},
					Value: "api-v2",
				},
			},
		},
	})
	if err := table.Err(); err != nil {
		fmt.Println("left out:", err)
	}

	for _, req := range []router.Request{
		{Host: "shop.example.com:443", Path: "/api/orders", Method: "GET"},
		{Host: "Shop.Example.com", Path: "/%61pi/orders", Method: "GET",
			Header: map[string][]string{"X-Version": {"2"}}},
		{Host: "shop.example.com", Path: "/apiary", Method: "GET"},
		{Host: "example.com", Path: "/", Method: "GET"},
		{Host: "shop.example.com", Path: "/api%2Forders", Method: "GET"},
	} {
		res, err := table.Match(&req)
		switch {
		case errors.Is(err, router.ErrBadPath):
			fmt.Printf("%-20s 400\n", req.Path)
		case errors.Is(err, router.ErrNotFound):
			fmt.Printf("%-20s 404\n", req.Path)
		default:
			fmt.Printf("%-20s %s (route %s/%s, matched %s %q on %q)\n", req.Path, res.Rule.Value,
				res.Route.Namespace, res.Route.Name, res.PathMatch.Type, res.PathMatch.Value, res.Path)
		}
	}
	// Output:
	// /api/orders          api-v1 (route shop/api, matched PathPrefix "/api" on "/api/orders")
	// /%61pi/orders        api-v2 (route shop/api, matched PathPrefix "/api" on "/api/orders")
	// /apiary              web-frontend (route shop/web, matched PathPrefix "/" on "/apiary")
	// /                    404
	// /api%2Forders        400
}

func ExampleNormalizePath() {
	for _, p := range []string{"/a//b/./c/../d", "/%7Euser/%e2%82%ac", "/x/%2e%2e/admin", "/a%2Fb"} {
		n, err := router.NormalizePath(p)
		fmt.Printf("%q %q %v\n", p, n, err)
	}
	// Output:
	// "/a//b/./c/../d" "/a/b/d" <nil>
	// "/%7Euser/%e2%82%ac" "/~user/%E2%82%AC" <nil>
	// "/x/%2e%2e/admin" "/admin" <nil>
	// "/a%2Fb" "" bad request path "/a%2Fb" at offset 2: encoded slash (%2F)
}

func ExampleTable_Explain() {
	table := router.Compile([]router.Route{{
		Namespace: "default", Name: "admin",
		Rules: []router.Rule{
			{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathExact, Value: "/admin"}, Method: "POST"}}},
			{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: "/"}}}},
		},
	}})
	cands, _ := table.Explain(&router.Request{Host: "a.test", Path: "//admin", Method: "GET"})
	for _, c := range cands {
		fmt.Printf("rules[%d] %s: %s\n", c.RuleIndex, c.Verdict, c.Detail)
	}
	// Output:
	// rules[0] WrongMethod: method "GET" is not "POST"
	// rules[1] Selected:
}

// Two routes attached to a listener with hostname abc.example.com both
// serve abc.example.com. The newer one names that host itself, so it wins
// for what it matches; the rest still reaches the older wildcard route.
func ExampleIntersectHostnameOrigins() {
	attach := func(name string, own []string, created time.Time, rules ...router.Rule) router.Route {
		hosts, origins, _ := router.IntersectHostnameOrigins("abc.example.com", own)
		fmt.Println(name, hosts, origins)
		return router.Route{Namespace: "shop", Name: name, CreationTime: created,
			Hostnames: hosts, HostnameOrigins: origins, Rules: rules}
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	table := router.Compile([]router.Route{
		attach("wildcard", []string{"*.example.com"}, t0,
			router.Rule{Matches: []router.Match{{Path: router.PathMatch{Type: router.PathExact, Value: "/cart"}}}}),
		attach("exact", []string{"abc.example.com"}, t0.Add(time.Hour),
			router.Rule{Matches: []router.Match{{Method: "GET"}}}),
	})
	if err := table.Err(); err != nil {
		panic(err)
	}
	for _, method := range []string{"GET", "POST"} {
		res, err := table.Match(&router.Request{Host: "abc.example.com", Path: "/cart", Method: method})
		if err != nil {
			fmt.Println(method, err)
			continue
		}
		fmt.Println(method, res.Route.Name)
	}
	// Output:
	// wildcard [abc.example.com] [*.example.com]
	// exact [abc.example.com] [abc.example.com]
	// GET exact
	// POST wildcard
}
