// Package router matches HTTP requests against Gateway API HTTPRoutes.
//
// A set of [Route] values is compiled once by [Compile] into an immutable
// [Table]; [Table.Match] then picks, for each request, the single rule the
// Gateway API says must serve it. The table is safe for concurrent use and
// is meant to be published with an atomic pointer swap. The package knows
// nothing of Kubernetes: a route is plain Go data, and each [Rule] carries
// an opaque Value (the caller's filters and backends) handed back in
// [Result.Rule] without a lookup.
//
// # Scope of a table
//
// A table serves the routes attached to one set of listeners, typically
// all listeners of one port. Route hostnames are the route's effective
// hostnames, already intersected with the listener hostnames (as
// [IntersectHostnames] computes them); an empty list matches any host.
// [Route.HostnameOrigins] keeps, for precedence, the route's own hostname
// each effective hostname came from. A route that must only serve some of the table's
// listeners names them in [Route.Listeners], and the caller puts the
// listener a request arrived on in [Request.Listener]. A restricted route
// never matches a request from another, unknown or unnamed listener.
//
// # Matching
//
// A rule matches when any of its matches does; a match holds when all its
// conditions do. A rule without matches behaves as PathPrefix "/".
//
//   - Hostnames: "foo.example.com" matches that host only; "*.example.com"
//     matches hosts with one or more labels in front of "example.com" but
//     not "example.com" itself. The request host is taken from
//     [Request.Host] with any port and one trailing dot removed, and
//     compared case-insensitively. Bracketed IPv6 literals match routes
//     without hostnames only.
//   - Path: Exact compares the whole normalised path. PathPrefix compares
//     whole segments: "/foo" matches "/foo", "/foo/" and "/foo/bar" but
//     not "/foobar"; a trailing "/" in the prefix is ignored, so "/foo/"
//     matches exactly what "/foo" matches. Exact and PathPrefix values
//     are normalised like request paths at compile time; values that
//     normalisation would restructure ("//", dot segments, also when
//     percent-encoded) are rejected. RegularExpression uses RE2 syntax
//     (package regexp), is anchored at both ends and is applied to the
//     normalised path in its escaped form.
//   - Method: compared case-sensitively.
//   - Headers: names are case-insensitive; Exact compares the value
//     byte for byte. A header present several times is compared as its
//     combined value, the values joined by ", " (RFC 9110, section 5.3).
//     A condition on "Host" is evaluated against [Request.Host].
//   - Query parameters: RawQuery is read as net/url.ParseQuery reads it
//     (pairs separated by '&', a pair containing ';' or an invalid escape
//     ignored, '+' is a space); names compare exactly after decoding, and
//     the first occurrence of a name is the one compared, as the Gateway
//     API recommends.
//   - RegularExpression header and query conditions are RE2, anchored at
//     both ends, applied to the decoded value.
//   - In a match, a second header (or query) condition on an equivalent
//     name is ignored, as the spec requires; it does not count for
//     precedence either.
//
// # Precedence
//
// Among all matching (route, rule, match) triples the winner is the first
// in this order, each criterion deciding only ties of the previous one:
//
//  1. Hostname: a route hostname equal to the request host, then
//     wildcard hostnames by decreasing length, then routes without
//     hostnames. (The Gateway API orders by the characters of the
//     matching non-wildcard hostname, then of the matching hostname.)
//     A route with several hostnames ranks by the best that matches.
//     When no rule of a more specific hostname matches, less specific
//     ones are tried: a request is never refused merely because a more
//     specific hostname exists.
//  2. Hostname origin, between routes whose matching effective hostname
//     is the same: the route's own hostname it came from
//     ([Route.HostnameOrigins]), an exact name before wildcards, a
//     longer wildcard before a shorter one, and a route without
//     hostnames of its own last. Under a listener "abc.example.com",
//     routes with "abc.example.com" and "*.example.com" both serve
//     "abc.example.com"; the exact route wins whatever its age and even
//     with a less specific path, and requests none of its rules match
//     still reach the wildcard route. This is the Gateway API v1.7 rule
//     (feature GatewayRouteHostnameIntersectionPrecedence): routes with
//     identical intersected hostnames rank by their original hostnames.
//  3. Path: Exact, then RegularExpression (longest expression first;
//     the spec leaves their rank to the implementation), then PathPrefix
//     by decreasing length of the normalised value.
//  4. A match with a method before one without.
//  5. More header conditions before fewer.
//  6. More query parameter conditions before fewer.
//  7. The route with the oldest CreationTime.
//  8. The route first in alphabetical order of "{namespace}/{name}".
//  9. The route that came first in the slice given to Compile.
//  10. The rule first in the route's list, then the match first in the
//     rule's list.
//
// # Path normalisation
//
// [Request.Path] is the path as sent on the wire (escaped, without the
// query). Before matching it is normalised by [NormalizePath], which a
// proxy should also use to build the path it forwards, so that the backend
// sees what the router matched:
//
//   - Percent-encoded unreserved characters (ALPHA, DIGIT, '-', '.', '_',
//     '~') are decoded: "/%61dmin" is "/admin".
//   - Every other escape is kept, with its hex digits in upper case:
//     "/a%3a" is "/a%3A". Reserved characters are never decoded, since
//     that would change the meaning of the path (RFC 3986, section 2.2).
//   - Raw bytes that are not allowed in a path segment (space, '"', '<',
//     '>', '[', ']', '^', '`', '{', '|', '}', '#', '?', non-ASCII) are
//     percent-encoded, so a raw and an encoded spelling match alike.
//   - Empty segments are removed ("//admin" and "/a//b" become "/admin"
//     and "/a/b"); a single trailing "/" is kept.
//   - Dot segments are resolved as in RFC 3986, section 5.2.4, after
//     decoding, so "/./admin", "/x/../admin" and "/%2e%2e/admin" all become
//     "/admin"; ".." never climbs above the root. A path ending in a dot
//     segment keeps a trailing "/" ("/a/b/.." is "/a/").
//   - An empty path is "/".
//
// These are refused with an error wrapping [ErrBadPath] (answer 400): a
// path not beginning with '/' (including "*"), an invalid escape ("%",
// "%4", "%zz"), an encoded '/' (%2F) or '\' (%5C), an encoded NUL (%00), a
// raw '\' and raw control characters. Encoded slashes are refused rather
// than decoded or kept because backends disagree about them, which is what
// makes "/admin%2Fx" style bypasses work.
//
// The router does not strip ";parameters" from segments nor fold case;
// backends that do so can still be reached through routes the router
// considers different.
//
// # Errors
//
// [Compile] always returns a usable table with every valid rule; the
// table's [Table.Err] is a [*CompileError] listing each route or rule left
// out as a [*RouteError] naming the route and the field. [Table.Match] returns [ErrNotFound] or
// [ErrBadPath].
//
// # Cost
//
// Match does not allocate for Exact and PathPrefix matches when the path
// is already normal. A map lookup finds the bucket of the request host
// (one more per label for wildcard hostnames, and the bucket of routes
// without hostnames last); a hostname that routes of different hostname
// origins share has one bucket per origin rank, tried in that order.
// Within a bucket, one lookup finds the exact
// path, regular expressions are tried in precedence order, then the
// prefixes of the path are looked up from the longest to "/", skipping
// lengths at which the bucket has no prefix; the rules under each key are
// already in precedence order and the first whose conditions all hold
// wins. [Table.Explain] reports, for a debugging endpoint, every candidate
// and why it did or did not match; it allocates.
package router
