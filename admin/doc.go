// Package admin serves the admin endpoints of a rauta gateway, on a
// listener of their own (`rauta serve` binds 127.0.0.1:9090 by default):
//
//	/metrics        the proxy's Prometheus metrics
//	/healthz        200 while the process runs
//	/readyz         200 once a configuration is applied, else 503
//	/debug/config   the proxy.Config in effect, as JSON (certificate keys
//	                and CA bundles are never printed)
//	/debug/status   the status of every object, as YAML (?format=json for
//	                JSON), from the function given in Options.Status
//	/debug/route    how a request would be routed: which route and rule
//	                match, the backends, and why every other rule does not
//
// /debug/route takes the request as query parameters: host, path, method
// (GET when absent), header=Name:Value (repeated for several headers) and
// query (the raw query string), and optionally listener (a listener name
// such as "default/demo/http"; all listeners when absent). It answers in
// text for people, or with format=json in the shape of [RouteExplanation]:
//
//	$ curl 'http://127.0.0.1:9090/debug/route?host=api.example.com&path=/api/users'
//
// The endpoints read the proxy's state and never change it; still, they
// reveal the configuration, so the admin listener should not be exposed
// beyond the host or the pod.
package admin
