// Package proxy is rauta's data plane: listeners, the request path, load
// balancing, retries, timeouts, health checking, metrics and the atomic
// swap of configurations.
//
// A [Config] is plain data: [Listener] values (HTTP, HTTPS, TCP, TLS or
// UDP, an address and a port, certificates), [Route] values attached to
// HTTP and HTTPS listeners by name, stream routes (package l4) attached to
// TCP, TLS and UDP listeners, and [Backend] values (endpoints, protocol, load-balancing,
// health and breaker policies) that rules refer to by name. It holds no Kubernetes types; the
// gatewayapi package translates Gateway API objects into it, and a Go
// program can build it directly.
//
// [Proxy.Apply] compiles a Config into an immutable snapshot (one routing
// table per bound port and per unbound listener) and publishes it with a single atomic store.
// Requests load the snapshot once and finish on it; state that must outlive
// configurations is found again by key: connection pools by endpoint
// address and protocol, circuit breakers and health by backend and endpoint,
// rate-limit buckets by limit name. [Proxy.UpdateEndpoints] is the fast
// path for endpoint churn: it swaps one backend's load-balancing table
// without recompiling routes.
//
// # Streams
//
// TCP, TLS and UDP listeners are served by an [l4.Forwarder] the proxy
// owns (a UDP listener on a socket of its own from net.ListenPacket, apart
// from any TCP socket of the same port number),
// from the same [Proxy.Apply] and the same backends: backend state lives
// in one [upstream.Set], so an endpoint's health checks, breaker and
// connection limits count HTTP requests and streams alike. A TLS listener
// with Passthrough routes by the ClientHello's server name and splices
// the bytes untouched; without it, it terminates TLS with its
// Certificates and forwards the plaintext. An Apply keeps the streams
// whose route stays attached to its listener and closes the others;
// [Proxy.Shutdown] waits for streams as it waits for requests.
//
// # The request path
//
// For each request the proxy picks the listener of the port by host (the
// most specific listener hostname), matches the route with the router
// package, applies the rate limits and request limits that cover the
// request (listener, route and rule) and the rule's filters, picks a backend
// reference by weight (or by session token), applies that reference's
// filters, picks an endpoint (the session's, round robin by weight, or
// Maglev over a request key for affinity: the client address, a header, a
// cookie or a query parameter, see [upstream.HashKey]),
// skipping endpoints whose health check fails or whose circuit breaker is
// open, and forwards the request through the pool package. Responses and
// request bodies stream in both directions; trailers, 1xx responses and
// protocol upgrades (WebSocket) pass through. A WebSocket over HTTP/2
// (RFC 8441: rauta's HTTP/2 server offers extended CONNECT) is routed,
// filtered and carried to the backend as the HTTP/1.1 handshake (a GET
// with Upgrade: websocket and a Sec-WebSocket-Key of the proxy's); the
// backend's 101, its Sec-WebSocket-Accept checked, becomes the stream's
// 200, and the stream's DATA and the backend connection's bytes are
// copied both ways (END_STREAM is the FIN, a reset either way closes or
// resets the other side). A backend that answers it with another success
// is answered 502, never 200; another :protocol is answered 501.
//
// Answers made by the gateway itself are: 400 for a request path the router
// refuses, 404 when no route matches, 408 when a request body does not
// arrive within its ReadTimeout, 413 when it is larger than its
// MaxBodyBytes, 429 (with Retry-After and the RateLimit fields) when a rate
// limit refuses, 500 for a rule whose backend references are invalid, 502
// when the backend fails, 503 when no endpoint can be picked (or every
// endpoint tried is at its connection limit), 504 when a route timeout
// expires. Each is counted in rauta_gateway_responses_total by reason, and
// the access log names the same reason: no_route, bad_request, filter (a
// redirect or CORS preflight answered by a filter), invalid_backend,
// no_healthy_endpoint, rate_limited, upstream_error, timeout, panic,
// client_gone, misdirected (421), body_too_large, request_timeout,
// bad_body or shut_down (a mounted handler after Shutdown;
// docs/operating.md tells what to look at for each). A panic
// while serving a request is recovered, logged, counted and answered with
// 500.
//
// # Mounting the proxy in your own server
//
// [Proxy.Handler] returns an http.Handler serving the routes of one named
// listener, for a program to mount in its own [net/http.Server], behind its
// own middleware, next to its own routes or under its own listener:
//
//	p.Apply(proxy.Config{
//		Listeners: []proxy.Listener{{Name: "api", Protocol: proxy.HTTP, Unbound: true}},
//		...
//	})
//	mux.Handle("/", authenticate(p.Handler("api")))
//
// A listener with [Listener].Unbound set is bound by nobody: the proxy opens
// no socket for it and it is served only where a Handler is mounted; its
// Address and Port must be empty. A Proxy whose listeners are all unbound is
// just handlers. Unbound is a field of its own rather than a special port
// because Port 0 already means an ephemeral port. A bound listener can be
// mounted too, and is then served in both places.
//
// The handler loads the snapshot for every request, like the proxy's own
// ports: a Config applied while requests run reaches the next request, and
// a handler made for a name the Config does not hold yet serves it from
// the Apply that adds it. While the name is not served (absent from the
// Config in effect, or refused by Apply) requests are answered 404 with
// reason no_route, the answer of a port without a matching route: a 503
// would invite retries of a request no backend will ever serve.
//
// TLS, HTTP/2 and h2c are the mounting server's. A request is taken as HTTPS
// (X-Forwarded-Proto, the scheme of redirects, the Secure attribute of
// session cookies) when the server saw TLS (r.TLS is set) or the listener's
// Protocol is HTTPS, which says TLS ended in front of the server. An unbound
// listener carries no Certificates and no ClientValidation: the server's
// tls.Config holds them. A mounted handler serves exactly its listener, so
// it picks no listener by Host and makes no 421 check against SNI; those
// belong to ports shared by several listeners. It does not answer an
// "Upgrade: h2c" request itself (an upgrade to h2c takes over the
// connection, which a handler does not own; net/http's server serves h2c
// with prior knowledge when its Protocols enable UnencryptedHTTP2), so such
// a request is forwarded like any other upgrade request. Protocol upgrades
// such as WebSocket need a server that lets the handler hijack the
// connection (net/http's does over HTTP/1.1).
//
// Mounted requests are logged and counted like the others: the access log
// names the listener, rauta_http_requests_total counts them by route,
// backend, method and code, and rauta_gateway_responses_total the gateway's
// own answers by reason. rauta_active_connections counts only the proxy's own ports; the
// mounting server's connections are its own to count. [Proxy.Shutdown]
// waits only for the proxy's own ports: shut the mounting server down
// first, then the proxy; a mounted handler answers 503 (reason shut_down)
// once the proxy is shut down.
//
// # Rate limits
//
// A [RateLimit] is a token bucket (the generic cell rate algorithm of the
// ratelimit package): Rate requests per second in the long run, Burst at
// once, one bucket for the limit or one per client address, header, cookie
// or query parameter value (with bounded memory; requests without the key
// share one bucket). Limits sit on a [Listener], a [Route] and a [Rule];
// every limit that covers a request must admit it. A limit refusing a
// request gives back the tokens the limits before it took, so a refused
// request costs no budget. Limits apply to requests that match a route;
// a request answered 404 counts against none.
//
// Limits with the same Name share their buckets wherever they appear, so a
// Gateway's limit copied onto each of its listeners, or a route translated
// into several Routes, is one budget; a Name used twice with different
// numbers is an error. Buckets outlive configurations while the Name and
// the numbers stay the same; a limit without a Name has a budget of its
// own, kept while its place in the Config (listener, route, rule and
// index) and its numbers stay the same. [Proxy.SetReplicas] divides every
// limit among the processes serving one gateway, at once and without an
// Apply.
//
// A refused request is answered 429 with Retry-After and the
// RateLimit-Policy and RateLimit fields of the IETF httpapi working
// group's ratelimit-headers draft, in the syntax of
// draft-ietf-httpapi-ratelimit-headers-11 (see [RateLimitDraft]), naming
// the limit that refused:
//
//	Retry-After: 1
//	RateLimit-Policy: "default/api";q=100;w=1
//	RateLimit: "default/api";r=0;t=1
//
// Admitted responses carry neither field: they would cost every response
// an allocation and tell every client the limits, and the draft leaves
// the choice to the server. rauta_rate_limited_requests_total counts the
// refusals by limit and route.
//
// # Connection limits
//
// [Limits] bound what clients hold proxy-wide: MaxConnsPerListener
// connections per bound port (default [DefaultMaxConnsPerListener]) and,
// when set, MaxConnsPerClient per client IP address. A connection past
// either is closed as soon as it is accepted, before a byte is read, and
// counted in rauta_connections_refused_total. The Limits documentation
// gives the memory a connection can hold.
//
// # Request limits
//
// [RequestLimits] bound a request's body size (413), the time to receive
// its body (408) and the time to write its response, per listener, route
// and rule; for each field the rule's value wins over the route's, the
// route's over the listener's, and the listener's over [Limits]. A body
// whose Content-Length is over the limit is refused before anything
// reaches a backend; a body without one that crosses the limit, or stops
// arriving, is cut off upstream (the backend sees an incomplete body,
// never a complete one) and the client answered 413 or 408 if no response
// has begun. The read and write deadlines are those of
// http.ResponseController, on HTTP/1.1 and HTTP/2 alike.
//
// # Circuit breakers
//
// Every endpoint has a breaker (see the breaker package) unless its backend
// disables it. By default it counts as failures only attempts that got no
// response (connection refused or reset, TLS failure, timeout); a 5xx
// response is passed to the client as it is, unless the backend sets
// [upstream.CircuitBreaker].Count5xx. An open breaker takes its endpoint out of the
// pick until its timeout, then lets probes through. A request refused by
// an endpoint's connection limit counts for nothing.
//
// # Health checks
//
// A backend with a [upstream.HealthCheck] probes each endpoint every Interval, with
// a TCP connect or an HTTP GET that passes on one of ExpectedStatuses (by
// default 200 to 399). UnhealthyThreshold failed probes in a row take the
// endpoint out of the pick, so a failing endpoint leaves it within
// Interval × UnhealthyThreshold (plus one probe's latency); HealthyThreshold
// passes bring it back.
//
// # Connection limits
//
// [Options].Pool bounds the connections to every endpoint; a backend's
// [upstream.ConnectionLimits] override it for its endpoints: connections per
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
// retried once when it is idempotent and has no body: its method is GET,
// HEAD, OPTIONS, TRACE, PUT or DELETE, or it carries an Idempotency-Key
// header (the rule package pool applies to its own retries). Such a request
// may have been processed by the backend (a connection reset after it was
// sent); rauta sends it again because its method or key says doing so is
// safe. With a RetryPolicy, a request without a body that failed after it
// was sent is retried whatever its method, up to Attempts times: the rule
// asked for retries. A RetryPolicy of zero Attempts disables every retry,
// the failover after a connection failure included. A RetryPolicy
// adds retries on the listed status codes, with exponential backoff and full
// jitter: the delay before retry n is uniform up to Backoff × 2^(n-1),
// capped at MaxBackoff. The rule's values win, then the backend's
// [BackendRetry], then 25ms and ten times the base. Retries that send a
// request again are bounded by a budget: at any moment at most a fraction
// ([Options].RetryBudget, default 20%, at least three) of a backend's
// requests in flight may be retries; a backend's own [RetryBudget] replaces
// that with a share of its requests over an interval, plus a number of
// retries always allowed per MinRetriesInterval.
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
//
// # Watching it
//
// [Proxy.Registry] holds the Prometheus metrics (or [Options.Registerer]
// receives them); [Options.AccessLog] logs every request with the reason of
// any answer the gateway gave itself; [Proxy.Config] and
// [Proxy.Generation] tell what is served; [Proxy.Explain] tells how a
// request would be routed. Package admin serves all of these over HTTP
// (/metrics, /readyz, /debug/config, /debug/route), and admin.Run runs a
// proxy with a source of configuration (package filesource or kube) as a
// process, shutting it down gracefully.
package proxy
