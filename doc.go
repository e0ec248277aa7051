// Package rauta is the root of the rauta SDK: a Kubernetes Gateway API data
// plane written in Go, delivered as independently importable packages and
// composed into the rauta gateway binary.
//
// rauta is built in three stages. A source turns the outside world into a
// bundle of Gateway API resources; a translator, a pure function, turns that
// bundle into a data-plane configuration and the status of every object; the
// proxy serves the configuration and swaps in a new one atomically while
// requests are in flight.
//
// # Packages
//
// The leaves import nothing of rauta and can be used on their own:
//
//   - [github.com/rauta/rauta/maglev]: Maglev consistent hashing (weighted,
//     deterministic across processes, O(1) allocation-free picks).
//   - [github.com/rauta/rauta/ratelimit]: token buckets and keyed limiters with
//     bounded memory.
//   - [github.com/rauta/rauta/breaker]: a circuit breaker (closed, open,
//     half-open) driven by the error rate over a sliding window.
//   - [github.com/rauta/rauta/router]: compiled HTTPRoute matching with the
//     Gateway API's precedence rules and explicit path normalisation.
//   - [github.com/rauta/rauta/filters]: every HTTPRoute filter (header
//     modifiers, redirects, rewrites, mirrors, CORS) and a registry for
//     user-defined filters.
//   - [github.com/rauta/rauta/tlsconfig]: server certificates selected by SNI
//     with hot reload, and TLS configuration for dialling backends.
//   - [github.com/rauta/rauta/pool]: per-endpoint upstream transports for
//     HTTP/1.1, h2c and h2 over TLS, with connection limits and statistics.
//
// The proxy package composes the leaves into listeners, a request path with
// retries, timeouts, load balancing, health checking and metrics, and an
// atomic configuration swap. None of these packages import Kubernetes
// libraries: a program that embeds the proxy does not pay for client-go.
//
// Above the proxy, the Kubernetes side: [github.com/rauta/rauta/gatewayapi]
// translates Gateway API objects into a proxy configuration and their
// status; [github.com/rauta/rauta/filesource] and
// [github.com/rauta/rauta/kube] are the sources that feed it (YAML files or a
// Go program's own objects, and a cluster); [github.com/rauta/rauta/admin]
// serves metrics, health and debug endpoints and runs a gateway process.
// The binary in cmd/rauta wires them together.
//
// # A guide for net/http programmers
//
// Build a proxy: proxy.New returns a Proxy, and Proxy.Apply hands it a
// proxy.Config, plain Go data naming listeners, routes and backends. The
// proxy binds the listeners it is given an address and port for and serves
// them; the example of package proxy is a complete program.
//
// Mount it: Proxy.Handler(listener) is an http.Handler serving one
// listener's routes, to put behind your own middleware in your own
// http.Server; a listener marked Unbound is served only there. A new Config
// applied while requests run reaches the next request.
//
// Feed it configuration: apply proxy.Config values yourself; or describe
// the gateway with Gateway API objects (gatewayapi.Resources) and let
// gatewayapi.Translate turn them into a Config; or let a source do it
// continuously: filesource.Source reads YAML files and reloads them (or
// takes the Resources your program builds, through Source.Apply), and
// kube.Controller watches a cluster and writes status back. Both are an
// admin.Source, and admin.Run is the life cycle of the process around them:
// admin listener, readiness, graceful shutdown.
//
// Watch it: Proxy.Registry holds the Prometheus metrics; admin.NewHandler
// serves them with /healthz, /readyz, the configuration in effect, the
// status of every object and /debug/route, which explains how a request
// would be routed; Proxy.Explain gives the same answer to a program. The
// access log (proxy.Options.AccessLog) names the reason of every answer the
// gateway gives itself.
package rauta
