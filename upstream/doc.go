// Package upstream keeps the state of a gateway's backends across
// configurations: each backend's members (its endpoints, with their
// circuit breakers, active health, stream counts and HTTP transports) and
// the table that picks one of them, round robin by weight or Maglev over a
// key hash.
//
// A [Set] is brought in line with a list of [Spec] values by [Set.Sync]:
// a backend is found again by name and a member by address, so breakers,
// health and pooled connections survive a configuration change; only what
// changed is rebuilt, and a new table is published with one atomic store.
// [Set.UpdateEndpoints] swaps the endpoints of one backend alone (the
// fast path for endpoint churn). Readers take [Backend.Table] and call
// [Table.Pick] without locking or allocating, and report each attempt's
// outcome with [Member.Done].
//
// The package is shared by every kind of traffic a gateway carries: the
// HTTP path of package proxy and the stream forwarding of package l4 pick
// from the same Set, so a backend's breakers, health checks and limits
// apply to both. A program can also use a Set on its own, with or without
// a [pool.Pool] for HTTP transports.
//
// # Policies
//
// A member is admitted ([Member.Admit]) when it passes its active health
// checks ([HealthCheck], TCP connect or HTTP GET, with thresholds) and its
// breaker (package breaker, one per member unless [CircuitBreaker]
// disables them) lets the attempt through. [Table.Pick] skips members
// that are not admitted. [ConnectionLimits] bound each member's pooled
// HTTP connections and, through [Member.Acquire], the streams forwarded to
// it.
//
// # Changes
//
// Members leaving a backend are marked removed ([Member.Removed]) at once,
// so a session pinned to one stops using it; their transports are closed
// and their health checks stopped by [Set.Settle], which a caller runs
// after it has stopped handing out the backends that left (the proxy runs
// it after publishing its new snapshot).
package upstream
