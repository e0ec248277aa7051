package router

import (
	"net/http"
	"strconv"
	"time"
)

// PathMatchType selects how a [PathMatch] compares the request path.
// The zero value is [PathPrefix], the Gateway API default.
type PathMatchType uint8

// Path match types.
const (
	// PathPrefix matches a path prefix element by element: "/foo" matches
	// "/foo", "/foo/" and "/foo/bar" but not "/foobar". A trailing "/" in
	// the prefix is ignored for matching.
	PathPrefix PathMatchType = iota
	// PathExact matches the whole normalised path, case-sensitively.
	PathExact
	// PathRegularExpression matches the whole normalised path (in its
	// escaped form) against an RE2 expression; the expression is anchored
	// at both ends.
	PathRegularExpression
)

// String returns the Gateway API spelling of t.
func (t PathMatchType) String() string {
	switch t {
	case PathPrefix:
		return "PathPrefix"
	case PathExact:
		return "Exact"
	case PathRegularExpression:
		return "RegularExpression"
	}
	return "PathMatchType(" + strconv.Itoa(int(t)) + ")"
}

// HeaderMatchType selects how a [HeaderMatch] compares a header value.
// The zero value is [HeaderExact].
type HeaderMatchType uint8

// Header match types.
const (
	// HeaderExact requires the header value to equal Value exactly.
	HeaderExact HeaderMatchType = iota
	// HeaderRegularExpression requires the whole header value to match an
	// RE2 expression; the expression is anchored at both ends.
	HeaderRegularExpression
)

// String returns the Gateway API spelling of t.
func (t HeaderMatchType) String() string {
	switch t {
	case HeaderExact:
		return "Exact"
	case HeaderRegularExpression:
		return "RegularExpression"
	}
	return "HeaderMatchType(" + strconv.Itoa(int(t)) + ")"
}

// QueryMatchType selects how a [QueryMatch] compares a query parameter
// value. The zero value is [QueryExact].
type QueryMatchType uint8

// Query parameter match types.
const (
	// QueryExact requires the decoded parameter value to equal Value.
	QueryExact QueryMatchType = iota
	// QueryRegularExpression requires the whole decoded parameter value to
	// match an RE2 expression; the expression is anchored at both ends.
	QueryRegularExpression
)

// String returns the Gateway API spelling of t.
func (t QueryMatchType) String() string {
	switch t {
	case QueryExact:
		return "Exact"
	case QueryRegularExpression:
		return "RegularExpression"
	}
	return "QueryMatchType(" + strconv.Itoa(int(t)) + ")"
}

// Route is one HTTPRoute as attached to the listeners served by a [Table].
//
// Hostnames are the route's effective hostnames: the translator has already
// intersected them with the listener hostnames. An empty list matches any
// host. When one HTTPRoute attaches to several listeners with different
// effective hostnames, pass one Route per attachment, each restricted with
// Listeners.
type Route struct {
	// Namespace and Name identify the route; "{Namespace}/{Name}" breaks
	// precedence ties after CreationTime.
	Namespace string
	// Name is the route's name within Namespace.
	Name string
	// CreationTime breaks precedence ties: the oldest route wins.
	CreationTime time.Time
	// Hostnames are exact names ("foo.example.com") or wildcards
	// ("*.example.com", one or more labels, never the apex). Matching is
	// case-insensitive. Empty means any host.
	Hostnames []string
	// HostnameOrigins, when not nil, holds one entry per Hostnames entry:
	// the route's own hostname (HTTPRoute spec.hostnames) that the
	// effective hostname came from by intersection with a listener
	// hostname, the most specific one when several did, or "*" when the
	// route has no hostnames of its own and took the listener's
	// ([IntersectHostnameOrigins] computes both lists). Each origin must
	// equal its hostname or be a wildcard covering it. Among routes with
	// the same effective hostname, the one with the more specific origin
	// wins before paths are compared (Gateway API
	// GatewayRouteHostnameIntersectionPrecedence). Nil means every
	// hostname is its own origin, as when no listener hostname narrowed
	// the route's.
	HostnameOrigins []string
	// Listeners, when not empty, restricts the route to requests whose
	// Request.Listener is one of these names. Empty means every listener
	// served by the table.
	Listeners []string
	// Rules are the route's rules in order. A route without rules matches
	// nothing.
	Rules []Rule
}

// Rule is one HTTPRoute rule: its matches are OR'ed.
type Rule struct {
	// Name is the optional rule name (sectionName); it is only reported.
	Name string
	// Matches are alternatives; the rule matches if any one does. No
	// matches means the spec default: PathPrefix "/".
	Matches []Match
	// Value is an opaque payload returned in [Result.Rule] (the proxy's
	// filters and backends for the rule). The router never looks at it.
	Value any
}

// Match is one HTTPRouteMatch: all its conditions must hold.
type Match struct {
	// Path is the path condition; the zero value is PathPrefix "/".
	Path PathMatch
	// Method, when not empty, is the required method: one of GET, HEAD,
	// POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH.
	Method string
	// Headers must all match. Names are case-insensitive; when a name is
	// repeated only its first entry counts.
	Headers []HeaderMatch
	// QueryParams must all match. Names are case-sensitive; when a name is
	// repeated only its first entry counts.
	QueryParams []QueryMatch
}

// PathMatch is a path condition. An empty Value means "/".
type PathMatch struct {
	// Type selects the comparison; the zero value is PathPrefix.
	Type PathMatchType
	// Value is the path (Exact, PathPrefix) or the expression
	// (RegularExpression).
	Value string
}

// HeaderMatch is a request header condition.
type HeaderMatch struct {
	// Type selects the comparison; the zero value is HeaderExact.
	Type HeaderMatchType
	// Name is the header name, matched case-insensitively.
	Name string
	// Value is the expected value or the expression.
	Value string
}

// QueryMatch is a query parameter condition.
type QueryMatch struct {
	// Type selects the comparison; the zero value is QueryExact.
	Type QueryMatchType
	// Name is the parameter name, matched exactly after decoding.
	Name string
	// Value is the expected decoded value or the expression.
	Value string
}

// Request is what [Table.Match] looks at. It is read, never retained.
type Request struct {
	// Host is the Host header or :authority, with or without a port.
	Host string
	// Path is the request path in its escaped (wire) form, without the
	// query, as returned by url.URL.EscapedPath.
	Path string
	// Method is the request method, e.g. "GET".
	Method string
	// Header holds the request headers with canonical keys, as net/http
	// provides them.
	Header http.Header
	// RawQuery is the query without the leading '?'.
	RawQuery string
	// Listener names the listener the request arrived on. It only matters
	// for routes that set Route.Listeners: those never match a request
	// whose Listener is not in their list (including "").
	Listener string
}

// NewRequest returns the Request for r. Its Listener is empty.
func NewRequest(r *http.Request) Request {
	return Request{
		Host:     r.Host,
		Path:     r.URL.EscapedPath(),
		Method:   r.Method,
		Header:   r.Header,
		RawQuery: r.URL.RawQuery,
	}
}

// Result describes the rule chosen by [Table.Match].
//
// Route and Rule point into the table; they must not be modified.
type Result struct {
	// Route is the table's copy of the matched route.
	Route *Route
	// Rule is the matched rule, &Route.Rules[RuleIndex]; Rule.Value is the
	// caller's payload.
	Rule *Rule
	// RouteIndex is the index of Route in the slice passed to Compile.
	RouteIndex int
	// RuleIndex is the index of Rule in Route.Rules.
	RuleIndex int
	// MatchIndex is the index of the winning match in Rule.Matches, or -1
	// when the rule has no matches (the implicit PathPrefix "/").
	MatchIndex int
	// PathMatch is the winning path condition with its Value normalised
	// (for Exact and PathPrefix) exactly as it was compared against Path.
	// The implicit default is PathMatch{PathPrefix, "/"}.
	PathMatch PathMatch
	// Hostname is the route hostname that matched the request host, in
	// lower case, or "" when the route has no hostnames.
	Hostname string
	// Path is the normalised request path (see [NormalizePath]) that the
	// conditions were evaluated against.
	Path string
}

// MarshalText implements encoding.TextMarshaler, so configurations print
// the match type by its Gateway API name.
func (t PathMatchType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// MarshalText implements encoding.TextMarshaler.
func (t HeaderMatchType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// MarshalText implements encoding.TextMarshaler.
func (t QueryMatchType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }
