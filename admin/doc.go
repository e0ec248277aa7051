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
//	                match, the backends, why every other rule does not,
//	                and the policy in effect for it
//
// /debug/route takes the request as query parameters: host, path, method
// (GET when absent), header=Name:Value (repeated for several headers) and
// query (the raw query string), and optionally listener (a listener name
// such as "default/demo/http"; all listeners when absent). It answers in
// text for people, or with format=json in the shape of [RouteExplanation].
// For the rule that serves the request it shows the policy in effect
// ([PolicyExplanation]) and where each part comes from: every rate limit
// the request must pass (the listener's, the route's and the rule's, with
// their names), the request limits resolved field by field (rule over route
// over listener) with the level each comes from, the session persistence,
// and each backend's load balancing, health check, circuit breaker,
// connection limits and retry budget, each with the policies the
// configuration names as their source (the Policies fields of
// proxy.Listener, Route, Rule and Backend):
//
//	$ curl 'http://127.0.0.1:9090/debug/route?host=api.example.com&path=/api/users'
//
// The endpoints read the proxy's state and never change it; still, they
// reveal the configuration, so the admin listener should not be exposed
// beyond the host or the pod. [NewHandler] gives them as an http.Handler
// to mount anywhere; [Start] serves them on a listener of their own.
//
// # Life cycle
//
// [Run] is the life cycle of a gateway process, shared by every source of
// configuration: a [Source] is anything with Run(ctx) and Ready(), such as
// filesource.Source (YAML files, or gatewayapi.Resources a Go program
// hands it), kube.Controller (a cluster) or a program's own. In order, Run
//
//  1. binds the admin listener at RunOptions.Address (if any; a busy
//     address is an error before anything else happens), with /readyz
//     answering 503 until the source is Ready, and calls OnStart;
//  2. runs the source's Run until it returns, which it does when ctx is
//     done, or earlier with an error (the first configuration could not
//     be read, say);
//  3. turns /readyz to 503, so that load balancers stop sending new
//     connections, and shuts the proxy down gracefully: its listeners
//     close and requests in flight get up to RunOptions.ShutdownTimeout
//     (proxy.DefaultShutdownTimeout, 15 s) to finish;
//  4. stops the admin listener and returns: nil after a clean stop, the
//     source's error, or the shutdown's if the deadline passed.
//
// `rauta serve` is a proxy.Proxy, one source and Run; see the examples of
// filesource and kube.
package admin
