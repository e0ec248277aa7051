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
// reference by weight (or by session token), applies that reference's
// filters, picks an endpoint (the session's, round robin by weight, or
// Maglev over a request key for affinity),
// skipping endpoints whose health check fails or whose circuit breaker is
// open, and forwards the request through the pool package. Responses and
// request bodies stream in both directions; trailers, 1xx responses and
// protocol upgrades (WebSocket) pass through.
//
// Answers made by the gateway itself are: 400 for a request path the router
// refuses, 404 when no route matches, 429 (with Retry-After) when a rate
// limit refuses, 500 for a rule whose backend references are invalid, 502
// when the backend fails, 503 when no endpoint can be picked, 504 when a
// route timeout expires. Each is counted in rauta_gateway_responses_total
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
// pick until its timeout, then lets probes through.
//
// # Retries
//
// A failure before any byte of the request was sent (connection refused, an
// open breaker) is retried on other endpoints, up to three, for every
// method. Without a [RetryPolicy] a request that failed after it was sent is
// retried once when it is idempotent and has no body. A RetryPolicy adds
// retries on the listed status codes, with exponential backoff and full
// jitter. Retries that send a request again are bounded by a budget: at any
// moment at most a fraction (default 20%, at least three) of a backend's
// requests in flight may be retries.
//
// # Session persistence
//
// A rule's [SessionPersistence], or for a rule without one the
// SessionPersistence of the backends it refers to, pins a client to the
// backend reference and endpoint that served it (GEP-1619). The response
// that starts a session carries a token, in a Set-Cookie field or, for
// [SessionHeader], in a response header field of the configured name. The
// token names the reference and the endpoint, the session's start and its
// last use; it is sealed with AES-256-GCM under [Options].SessionKey, so
// only a proxy holding the key can read or forge it, and it is bound to
// the rule that issued it: rules never share sessions, even rules that
// forward to the same backend.
//
// A request carrying a valid token goes to the reference it names, even one
// whose weight is now zero, and to the endpoint it names while that
// endpoint is in the configuration, passes its health checks and is
// admitted by its circuit breaker. Otherwise the endpoint is picked as
// usual and the session pinned anew with a new token; a token that was
// tampered with, issued by another rule or another key, names a reference
// the rule no longer has, or has expired is ignored the same way, never
// answered with an error. So adding endpoints moves no session, and
// removing one moves only the sessions pinned to it. A retried request may
// be answered by another endpoint; the session then follows the endpoint
// that answered. When a rule relies on its backends' settings and only some
// of them persist sessions, a client balanced onto one that does not gets
// no token and its next request is balanced by weight again (the third
// choice GEP-1619 allows: traffic drifts toward the persistent backends).
//
// AbsoluteTimeout counts from the session's start, IdleTimeout from the
// last use recorded in the token. With an idle timeout the token is
// re-issued with a new last use on a request that comes at least
// min(IdleTimeout/10, 1s) after the recorded one, so the timeout slides
// with use, to within that granularity. Cookies carry Path (the matched
// path prefix or exact path, the literal prefix of a regular expression up
// to its last '/', else "/"; for a backend's setting too, since sessions
// belong to rules), HttpOnly, SameSite=Lax, Secure on HTTPS listeners,
// and, with PermanentCookie, a Max-Age of the session's remaining absolute
// timeout; otherwise they are session cookies. A token is not removed from
// the request forwarded to the backend.
//
// Without a SessionKey each Proxy makes a random key: its tokens are good
// for that process only, so replicas behind one address must share a key
// for sessions to survive a client moving between replicas or a restart.
//
// # Forwarding headers
//
// Hop-by-hop headers are removed in both directions. X-Forwarded-For,
// X-Forwarded-Proto and X-Forwarded-Host are set from the connection; a
// client's own values are kept (and appended to) only when its address is
// in [Options.TrustedProxies].
package proxy
