// Package proxy is rauta's data plane: listeners, the request path, load
// balancing, retries, timeouts, health checking, metrics and the atomic
// swap of configurations.
//
// A [Config] is plain data: [Listener] values (HTTP or HTTPS, an address and
// a port, certificates), [Route] values attached to listeners by name, and
// [Backend] values (endpoints, protocol, load-balancing, health and breaker
// policies) that rules refer to by name. It holds no Kubernetes types; the
// gatewayapi package translates Gateway API objects into it, and a Go
// program can build it directly.
//
// [Proxy.Apply] compiles a Config into an immutable snapshot (one routing
// table per bound port) and publishes it with a single atomic store.
// Requests load the snapshot once and finish on it; state that must outlive
// configurations is found again by key: connection pools by endpoint
// address and protocol, circuit breakers and health by backend and endpoint,
// rate-limit buckets by rule and limit. [Proxy.UpdateEndpoints] is the fast
// path for endpoint churn: it swaps one backend's load-balancing table
// without recompiling routes.
//
// # The request path
//
// For each request the proxy picks the listener of the port by host (the
// most specific listener hostname), matches the route with the router
// package, applies the rule's rate limit and filters, picks a backend
// reference by weight, applies that reference's filters, picks an endpoint
// (round robin by weight, or Maglev over a request key for affinity: the
// client address, a header, a cookie or a query parameter, see [HashKey]),
// skipping endpoints whose health check fails or whose circuit breaker is
// open, and forwards the request through the pool package. Responses and
// request bodies stream in both directions; trailers, 1xx responses and
// protocol upgrades (WebSocket) pass through.
//
// Answers made by the gateway itself are: 400 for a request path the router
// refuses, 404 when no route matches, 429 (with Retry-After) when a rate
// limit refuses, 500 for a rule whose backend references are invalid, 502
// when the backend fails, 503 when no endpoint can be picked (or every
// endpoint tried is at its connection limit), 504 when a route timeout
// expires. Each is counted in rauta_gateway_responses_total
// by reason. A panic while serving a request is recovered, logged, counted
// and answered with 500.
//
// # Circuit breakers
//
// Every endpoint has a breaker (see the breaker package) unless its backend
// disables it. By default it counts as failures only attempts that got no
// response (connection refused or reset, TLS failure, timeout); a 5xx
// response is passed to the client as it is, unless the backend sets
// [CircuitBreaker].Count5xx. An open breaker takes its endpoint out of the
// pick until its timeout, then lets probes through. A request refused by
// an endpoint's connection limit counts for nothing.
//
// # Health checks
//
// A backend with a [HealthCheck] probes each endpoint every Interval, with
// a TCP connect or an HTTP GET that passes on one of ExpectedStatuses (by
// default 200 to 399). UnhealthyThreshold failed probes in a row take the
// endpoint out of the pick, so a failing endpoint leaves it within
// Interval × UnhealthyThreshold (plus one probe's latency); HealthyThreshold
// passes bring it back.
//
// # Connection limits
//
// [Options].Pool bounds the connections to every endpoint; a backend's
// [ConnectionLimits] override it for its endpoints: connections per
// endpoint (a request finding an endpoint at its limit tries another, or is
// answered 503), idle timeout, and requests and lifetime per connection (a
// connection is closed when its request in progress ends). A new
// configuration changes them without interrupting requests in flight.
//
// # Retries
//
// A failure before any byte of the request was sent (connection refused, an
// open breaker) is retried on other endpoints, up to three, for every
// method. Without a [RetryPolicy] a request that failed after it was sent is
// retried once when it is idempotent and has no body. A RetryPolicy adds
// retries on the listed status codes, with exponential backoff and full
// jitter: the delay before retry n is uniform up to Backoff × 2^(n-1),
// capped at MaxBackoff. The rule's values win, then the backend's
// [BackendRetry], then 25ms and ten times the base. Retries that send a
// request again are bounded by a budget: at any moment at most a fraction
// ([Options].RetryBudget, default 20%, at least three) of a backend's
// requests in flight may be retries; a backend's own [RetryBudget] replaces
// that with a share of its requests over an interval, plus a number of
// retries always allowed per MinRetriesInterval.
//
// # Forwarding headers
//
// Hop-by-hop headers are removed in both directions. X-Forwarded-For,
// X-Forwarded-Proto and X-Forwarded-Host are set from the connection; a
// client's own values are kept (and appended to) only when its address is
// in [Options.TrustedProxies].
package proxy
