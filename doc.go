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
// The binary in cmd/rauta wires a configuration source (YAML files or a
// Kubernetes cluster) to the translator and the proxy.
package rauta
