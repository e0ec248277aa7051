package upstream_test

import (
	"fmt"
	"net"

	"github.com/rauta/rauta/maglev"
	"github.com/rauta/rauta/upstream"
)

// Example keeps two backends in a Set, picks members from them, and
// shows that a configuration change keeps the state of the members that
// stay.
func Example() {
	set := upstream.NewSet(upstream.Options{})
	defer set.Close()

	specs := []upstream.Spec{
		{Name: "web", Endpoints: []upstream.Endpoint{{Address: "10.0.0.1:80", Weight: 3}, {Address: "10.0.0.2:80"}}},
		{Name: "db", Endpoints: []upstream.Endpoint{{Address: "10.0.1.1:5432"}, {Address: "10.0.1.2:5432"}},
			LoadBalancer: upstream.LoadBalancer{Policy: upstream.Maglev}},
	}
	backends, errs := set.Sync(specs, nil)
	fmt.Println("errors:", len(errs))

	// Round robin by weight: 10.0.0.1 gets three picks in four.
	web := backends["web"].Table()
	count := map[string]int{}
	for range 400 {
		m, ticket := web.Pick(0, false, nil)
		m.Done(ticket, true) // the attempt succeeded
		count[m.Addr()]++
	}
	fmt.Println(count["10.0.0.1:80"], count["10.0.0.2:80"])

	// Maglev: a client address keeps its member.
	db := backends["db"].Table()
	client, _, _ := net.SplitHostPort("192.0.2.7:40000")
	first, t1 := db.Pick(maglev.HashString(client), true, nil)
	first.Done(t1, true)
	again, t2 := db.Pick(maglev.HashString(client), true, nil)
	again.Done(t2, true)
	fmt.Println(first == again)

	// A new configuration: web loses 10.0.0.2; 10.0.0.1 keeps its state.
	specs[0].Endpoints = specs[0].Endpoints[:1]
	before := web.Find([]byte("10.0.0.1:80"))
	backends, _ = set.Sync(specs, nil)
	set.Settle()
	after := backends["web"].Table().Find([]byte("10.0.0.1:80"))
	fmt.Println(before == after, web.Find([]byte("10.0.0.2:80")) == nil)
	// Output:
	// errors: 0
	// 300 100
	// true
	// true true
}
