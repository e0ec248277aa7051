// Package reliability holds rauta's fault-injection suite and its soak
// test. Both are tests behind the build tag "reliability", so an ordinary
// `go test ./...` skips them; scripts/test runs their short versions and
// scripts/soak the hour-long soak:
//
//	go test -tags reliability -run TestFaults ./reliability
//	DURATION=1h scripts/soak
//
// TestFaults drives steady HTTP/1.1 and HTTP/2 load through a real
// proxy.Proxy while it injects one fault at a time (a backend process
// killed, connections reset, a backend that never answers, responses cut
// off mid-body, early answers, malformed heads, a slow backend, a rollout,
// a thousand configuration changes, clients that give up) with a WebSocket
// held open across all of them. Backends stamp every response with a hash
// of its body and of the request body they received, so the load client
// counts every answer that is not the one the backend sent, and every
// success that no backend gave.
//
// TestSoak runs `rauta serve` as a process under mixed load with
// configuration and endpoint churn and samples its memory, goroutines, file
// descriptors and upstream connections.
//
// docs/reliability.md holds the figures and the commands that produced them.
package reliability
