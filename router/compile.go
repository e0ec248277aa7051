package router

import (
	"cmp"
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors wrapped by [RouteError.Err], one per kind of invalid input, so a
// caller can map them to status reasons with errors.Is.
var (
	// ErrInvalidHostname: a route hostname is not a valid RFC 1123 name
	// with an optional leading "*." label, or is an IP address.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrInvalidListener: a listener name is empty.
	ErrInvalidListener = errors.New("invalid listener name")
	// ErrInvalidPath: an Exact or PathPrefix value is not a valid,
	// normalised absolute path.
	ErrInvalidPath = errors.New("invalid path")
	// ErrInvalidRegex: a RegularExpression value does not compile as RE2.
	ErrInvalidRegex = errors.New("invalid regular expression")
	// ErrInvalidMethod: a method is not one the Gateway API defines.
	ErrInvalidMethod = errors.New("invalid method")
	// ErrInvalidHeader: a header match has an invalid name or value.
	ErrInvalidHeader = errors.New("invalid header match")
	// ErrInvalidQuery: a query parameter match has an invalid name or value.
	ErrInvalidQuery = errors.New("invalid query parameter match")
	// ErrUnsupportedValue: a match type constant is out of range.
	ErrUnsupportedValue = errors.New("unsupported value")
)

// RouteError reports one invalid part of one route. Compile drops the
// whole route when Rule is -1 (invalid hostnames or listeners) and only
// the named rule otherwise.
type RouteError struct {
	// Index is the route's index in the slice passed to Compile.
	Index int
	// Namespace and Name identify the route.
	Namespace string
	// Name is the route's name.
	Name string
	// Rule is the index of the dropped rule, or -1 when the whole route
	// was dropped.
	Rule int
	// Field is the path of the offending field, e.g.
	// "rules[1].matches[0].path.value".
	Field string
	// Err describes the problem; it wraps one of the ErrInvalid* errors or
	// ErrUnsupportedValue.
	Err error
}

// Error implements error.
func (e *RouteError) Error() string {
	return "route " + strconv.Quote(e.Namespace+"/"+e.Name) + " [" + strconv.Itoa(e.Index) + "]: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns e.Err.
func (e *RouteError) Unwrap() error { return e.Err }

// CompileError lists every route and rule [Compile] left out of a table,
// and why; [Table.Err] returns it.
type CompileError struct {
	// Errors are in route order, then field order.
	Errors []*RouteError
}

// Error implements error; it lists every problem, one per line.
func (e *CompileError) Error() string {
	var b strings.Builder
	for i, re := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(re.Error())
	}
	return b.String()
}

// Unwrap returns the individual errors.
func (e *CompileError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, re := range e.Errors {
		errs[i] = re
	}
	return errs
}

// Table is a compiled, immutable set of routes. It is safe for concurrent
// use. A nil *Table matches nothing.
type Table struct {
	routes    []Route
	exact     map[string]*bucket // by lower-case host
	wild      map[string]*bucket // by the suffix after "*."
	any       *bucket            // routes without hostnames
	listeners map[string]int     // nil when no route restricts listeners
	entries   []*entry           // every compiled match, in precedence order
	// origins holds, by route index, the originRank of each validated
	// hostname of the route (entry.hostnames); kept out of entry, which
	// Match scans.
	origins [][]int
	// err lists what Compile left out; nil when nothing was.
	err *CompileError
}

// bucket holds the entries of one route hostname whose hostname origins
// share a rank, in precedence order. Buckets of the same hostname form a
// list through next, from the most specific origin to the least.
type bucket struct {
	paths map[string]pathNode // by normalised path (exact) or prefix key
	// exactLens and prefixLens have bit n%64 set for the length n of each
	// exact path and prefix key in paths, so that Match skips most lookups
	// of lengths that do not exist.
	exactLens  uint64
	prefixLens uint64
	minPrefix  int // length of the shortest prefix key; 0 when none
	regex      []entry
	hostname   string  // "" for routes without hostnames
	origin     int     // originRank of the entries' hostname origins
	next       *bucket // the same hostname, next less specific origin
}

type pathNode struct {
	exact  []entry // copies, so that scanning a list reads contiguous memory
	prefix []entry
}

// entry is one compiled match (or the implicit match of a rule without
// matches).
type entry struct {
	// Fields read by conds come first, to share a cache line.
	listeners []uint64 // bit set of listener ids; nil means all
	method    string
	headers   []headerCond
	query     []queryCond
	re        *regexp.Regexp

	route     *Route
	rule      *Rule
	routeIdx  int
	ruleIdx   int
	matchIdx  int
	path      PathMatch // Value normalised for Exact and PathPrefix
	prefixKey string    // PathPrefix: path.Value without a trailing '/'
	hostnames []string  // the route's validated hostnames, for Explain
	nsName    string
	rank      uint64 // packed path, method, header and query precedence
	createdS  int64  // CreationTime: Unix seconds
	createdNs int32  // and nanoseconds
}

// pathRank orders path match types: Exact, then RegularExpression, then
// PathPrefix.
func (e *entry) pathRank() int {
	switch e.path.Type {
	case PathExact:
		return 0
	case PathRegularExpression:
		return 1
	}
	return 2
}

// setRank packs the request-independent precedence criteria of e into
// e.rank, smaller first: path type (Exact, RegularExpression, PathPrefix),
// longer path value, method present, more headers, more query parameters.
func (e *entry) setRank(created time.Time) {
	const (
		lenBits   = 32
		countBits = 11
	)
	pathLen := uint64(min(len(e.path.Value), 1<<lenBits-1))
	headers := uint64(min(len(e.headers), 1<<countBits-1))
	query := uint64(min(len(e.query), 1<<countBits-1))
	e.rank = uint64(e.pathRank())<<(lenBits+1+2*countBits) |
		(1<<lenBits-1-pathLen)<<(1+2*countBits) |
		uint64(1-b2i(e.method != ""))<<(2*countBits) |
		(1<<countBits-1-headers)<<countBits |
		(1<<countBits - 1 - query)
	e.createdS, e.createdNs = created.Unix(), int32(created.Nanosecond())
}

// compareEntries orders entries that share a hostname by precedence.
func compareEntries(a, b *entry) int {
	if a.rank != b.rank {
		return cmp.Compare(a.rank, b.rank)
	}
	if a.createdS != b.createdS {
		return cmp.Compare(a.createdS, b.createdS)
	}
	if a.createdNs != b.createdNs {
		return cmp.Compare(a.createdNs, b.createdNs)
	}
	if c := strings.Compare(a.nsName, b.nsName); c != 0 {
		return c
	}
	if a.routeIdx != b.routeIdx {
		return cmp.Compare(a.routeIdx, b.routeIdx)
	}
	if a.ruleIdx != b.ruleIdx {
		return cmp.Compare(a.ruleIdx, b.ruleIdx)
	}
	return cmp.Compare(a.matchIdx, b.matchIdx)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Compile builds a Table from routes.
//
// Invalid input never prevents the valid rest from being served: Compile
// always returns a usable, non-nil Table holding every valid rule, and
// [Table.Err] lists what it left out. A route with an invalid hostname or
// listener name is left out whole (its rules are then not examined); a rule
// with an invalid match is left out alone. Callers that want all-or-nothing
// behaviour discard the table when its Err is not nil.
//
// Compile copies what it keeps; routes may be reused after it returns.
func Compile(routes []Route) *Table {
	c := compiler{regexps: make(map[string]*regexp.Regexp)}
	t := &Table{
		exact: make(map[string]*bucket),
		wild:  make(map[string]*bucket),
	}
	for i := range routes {
		for _, l := range routes[i].Listeners {
			if l == "" {
				continue
			}
			if t.listeners == nil {
				t.listeners = make(map[string]int)
			}
			if _, ok := t.listeners[l]; !ok {
				t.listeners[l] = len(t.listeners)
			}
		}
	}
	words := (len(t.listeners) + 63) / 64

	t.routes = cloneRoutes(routes)
	t.origins = make([][]int, len(routes))
	n := 0
	for i := range routes {
		for j := range routes[i].Rules {
			n += max(1, len(routes[i].Rules[j].Matches))
		}
	}
	c.chunk = make([]entry, 0, n)
	all := make([]*entry, 0, n)
	for i := range t.routes {
		r := &t.routes[i]
		hosts, origins, ok := c.hostnames(i, r)
		if !ok {
			continue
		}
		t.origins[i] = origins
		var lset []uint64
		if len(r.Listeners) > 0 {
			lset = make([]uint64, words)
			bad := false
			for k, l := range r.Listeners {
				if l == "" {
					c.fail(i, r, -1, "listeners["+strconv.Itoa(k)+"]", fmt.Errorf("%w: empty", ErrInvalidListener))
					bad = true
					continue
				}
				id := t.listeners[l]
				lset[id>>6] |= 1 << (id & 63)
			}
			if bad {
				continue
			}
		}
		nsName := r.Namespace + "/" + r.Name
		for j := range r.Rules {
			n := len(all)
			var ok bool
			all, ok = c.rule(all, i, r, j)
			if !ok {
				all = all[:n]
				continue
			}
			for _, e := range all[n:] {
				e.listeners = lset
				e.hostnames = hosts
				e.nsName = nsName
				e.setRank(r.CreationTime)
			}
		}
	}
	slices.SortFunc(all, compareEntries)
	t.entries = all
	for _, e := range all {
		if len(e.hostnames) == 0 {
			if t.any == nil {
				t.any = newBucket("")
			}
			t.any.add(e)
			continue
		}
		for k, h := range e.hostnames {
			m, key := t.exact, h
			if strings.HasPrefix(h, "*.") {
				m, key = t.wild, h[2:]
			}
			head := m[key]
			m[key] = head.tier(h, t.origins[e.routeIdx][k], e)
		}
	}
	if len(c.errs) > 0 {
		t.err = &CompileError{Errors: c.errs}
	}
	return t
}

// Err reports what [Compile] left out of the table: nil when every route
// compiled, a [*CompileError] listing each route or rule left out
// otherwise. The table serves the rest either way.
func (t *Table) Err() error {
	if t == nil || t.err == nil {
		return nil
	}
	return t.err
}

func newBucket(hostname string) *bucket {
	return &bucket{hostname: hostname, paths: make(map[string]pathNode)}
}

// tier adds e to the bucket of origin rank origin in the list starting at
// b (nil for a new hostname), creating it in its place if needed, and
// returns the head of the list.
func (b *bucket) tier(hostname string, origin int, e *entry) *bucket {
	link := &b
	for *link != nil && (*link).origin < origin {
		link = &(*link).next
	}
	if *link == nil || (*link).origin != origin {
		nb := newBucket(hostname)
		nb.origin, nb.next = origin, *link
		*link = nb
	}
	(*link).add(e)
	return b
}

// add appends e; entries must be added in precedence order.
func (b *bucket) add(e *entry) {
	switch e.path.Type {
	case PathRegularExpression:
		b.regex = append(b.regex, *e)
	case PathExact:
		n := b.paths[e.path.Value]
		n.exact = append(n.exact, *e)
		b.paths[e.path.Value] = n
		b.exactLens |= lenBit(len(e.path.Value))
	default:
		n := b.paths[e.prefixKey]
		n.prefix = append(n.prefix, *e)
		b.paths[e.prefixKey] = n
		b.prefixLens |= lenBit(len(e.prefixKey))
		if b.minPrefix == 0 || len(e.prefixKey) < b.minPrefix {
			b.minPrefix = len(e.prefixKey)
		}
	}
}

// cloneRoutes deep-copies routes (but not the Rule values), carving all
// slices out of a few shared arrays.
func cloneRoutes(routes []Route) []Route {
	var nh, nl, nr, nm, nhd, nq int
	for i := range routes {
		r := &routes[i]
		nh += len(r.Hostnames)
		nl += len(r.Listeners)
		nr += len(r.Rules)
		for j := range r.Rules {
			nm += len(r.Rules[j].Matches)
			for k := range r.Rules[j].Matches {
				nhd += len(r.Rules[j].Matches[k].Headers)
				nq += len(r.Rules[j].Matches[k].QueryParams)
			}
		}
	}
	hosts := make([]string, 0, nh)
	listeners := make([]string, 0, nl)
	rules := make([]Rule, 0, nr)
	matches := make([]Match, 0, nm)
	headers := make([]HeaderMatch, 0, nhd)
	queries := make([]QueryMatch, 0, nq)
	out := make([]Route, len(routes))
	for i := range routes {
		out[i] = routes[i]
		r := &out[i]
		r.Hostnames, hosts = carve(hosts, r.Hostnames)
		r.Listeners, listeners = carve(listeners, r.Listeners)
		r.Rules, rules = carve(rules, r.Rules)
		for j := range r.Rules {
			rule := &r.Rules[j]
			rule.Matches, matches = carve(matches, rule.Matches)
			for k := range rule.Matches {
				m := &rule.Matches[k]
				m.Headers, headers = carve(headers, m.Headers)
				m.QueryParams, queries = carve(queries, m.QueryParams)
			}
		}
	}
	return out
}

// carve appends src to arena and returns the appended part, with its
// capacity clipped, and the grown arena. A nil src stays nil.
func carve[T any](arena, src []T) (part, rest []T) {
	if src == nil {
		return nil, arena
	}
	n := len(arena)
	arena = append(arena, src...)
	return arena[n:len(arena):len(arena)], arena
}

// compiler collects errors and caches compiled expressions.
type compiler struct {
	errs    []*RouteError
	regexps map[string]*regexp.Regexp
	chunk   []entry // entries are allocated from here
}

// newEntry returns a zeroed entry from the current block. Compile sizes
// the first block for every match; a new block is only a safeguard.
func (c *compiler) newEntry() *entry {
	if len(c.chunk) == cap(c.chunk) {
		c.chunk = make([]entry, 0, 64)
	}
	c.chunk = c.chunk[:len(c.chunk)+1]
	return &c.chunk[len(c.chunk)-1]
}

func (c *compiler) fail(i int, r *Route, rule int, field string, err error) {
	c.errs = append(c.errs, &RouteError{Index: i, Namespace: r.Namespace, Name: r.Name, Rule: rule, Field: field, Err: err})
}

// hostnames validates, lower-cases and de-duplicates the route hostnames
// and returns the rank of each one's origin (see originRank), the best
// when a hostname is repeated.
func (c *compiler) hostnames(i int, r *Route) ([]string, []int, bool) {
	var hosts []string
	var origins []int
	ok := true
	if r.HostnameOrigins != nil && len(r.HostnameOrigins) != len(r.Hostnames) {
		c.fail(i, r, -1, "hostnameOrigins", fmt.Errorf("%w: %d origins for %d hostnames", ErrInvalidHostname, len(r.HostnameOrigins), len(r.Hostnames)))
		return nil, nil, false
	}
	for k, h := range r.Hostnames {
		v, _, err := validateHostname(h)
		if err != nil {
			c.fail(i, r, -1, "hostnames["+strconv.Itoa(k)+"]", err)
			ok = false
			continue
		}
		rank := originRank(v)
		if r.HostnameOrigins != nil {
			o := strings.ToLower(r.HostnameOrigins[k])
			if o != "*" {
				if o, _, err = validateHostname(o); err != nil {
					c.fail(i, r, -1, "hostnameOrigins["+strconv.Itoa(k)+"]", err)
					ok = false
					continue
				}
				if o != v && !wildcardCovers(o, v) {
					c.fail(i, r, -1, "hostnameOrigins["+strconv.Itoa(k)+"]", fmt.Errorf("%w %q: origin %q neither equals nor covers it", ErrInvalidHostname, v, o))
					ok = false
					continue
				}
			}
			rank = originRank(o)
		}
		if j := slices.Index(hosts, v); j >= 0 {
			origins[j] = min(origins[j], rank)
			continue
		}
		hosts = append(hosts, v)
		origins = append(origins, rank)
	}
	return hosts, origins, ok
}

// regexp compiles an anchored RE2 expression, caching by source.
func (c *compiler) regexp(expr string) (*regexp.Regexp, error) {
	if re, ok := c.regexps[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidRegex, expr, err)
	}
	c.regexps[expr] = re
	return re, nil
}

// rule appends the entries of one rule to all; on error it reports every
// problem and returns false.
func (c *compiler) rule(all []*entry, i int, r *Route, j int) ([]*entry, bool) {
	rule := &r.Rules[j]
	if len(rule.Matches) == 0 {
		e := c.newEntry()
		*e = entry{
			route: r, rule: rule, routeIdx: i, ruleIdx: j, matchIdx: -1,
			path: PathMatch{Type: PathPrefix, Value: "/"}, prefixKey: "/",
		}
		return append(all, e), true
	}
	ok := true
	for k := range rule.Matches {
		e := c.newEntry()
		*e = entry{route: r, rule: rule, routeIdx: i, ruleIdx: j, matchIdx: k}
		fail := func(field string, err error) {
			c.fail(i, r, j, "rules["+strconv.Itoa(j)+"].matches["+strconv.Itoa(k)+"]."+field, err)
			ok = false
		}
		c.match(e, &rule.Matches[k], fail)
		all = append(all, e)
	}
	return all, ok
}

// match fills e from m, calling fail for every invalid field.
func (c *compiler) match(e *entry, m *Match, fail func(field string, err error)) {
	v := m.Path.Value
	if v == "" {
		v = "/"
	}
	switch m.Path.Type {
	case PathExact, PathPrefix:
		norm, err := validatePathValue(v)
		if err != nil {
			fail("path.value", err)
			break
		}
		e.path = PathMatch{Type: m.Path.Type, Value: norm}
		if m.Path.Type == PathPrefix {
			e.prefixKey = norm
			if len(norm) > 1 && norm[len(norm)-1] == '/' {
				e.prefixKey = norm[:len(norm)-1]
			}
		}
	case PathRegularExpression:
		re, err := c.regexp(v)
		if err != nil {
			fail("path.value", err)
			break
		}
		e.path = PathMatch{Type: PathRegularExpression, Value: v}
		e.re = re
	default:
		fail("path.type", fmt.Errorf("%w: path match type %d", ErrUnsupportedValue, m.Path.Type))
	}

	if m.Method != "" {
		switch m.Method {
		case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
			e.method = m.Method
		default:
			fail("method", fmt.Errorf("%w %q", ErrInvalidMethod, m.Method))
		}
	}

	if len(m.Headers) > 0 {
		e.headers = make([]headerCond, 0, len(m.Headers))
	}
	for k, h := range m.Headers {
		field := "headers[" + strconv.Itoa(k) + "]"
		if !validToken(h.Name) {
			fail(field+".name", fmt.Errorf("%w: name %q is not an HTTP token", ErrInvalidHeader, h.Name))
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(h.Name)
		if slices.ContainsFunc(e.headers, func(hc headerCond) bool { return hc.key == key }) {
			continue // only the first entry for a name counts
		}
		hc := headerCond{key: key, isHost: key == "Host"}
		switch h.Type {
		case HeaderExact:
			if err := validFieldValue(h.Value); err != nil {
				fail(field+".value", fmt.Errorf("%w: %v", ErrInvalidHeader, err))
				continue
			}
			hc.value = h.Value
		case HeaderRegularExpression:
			re, err := c.regexp(h.Value)
			if err != nil {
				fail(field+".value", err)
				continue
			}
			hc.value, hc.re = h.Value, re
		default:
			fail(field+".type", fmt.Errorf("%w: header match type %d", ErrUnsupportedValue, h.Type))
			continue
		}
		e.headers = append(e.headers, hc)
	}

	if len(m.QueryParams) > 0 {
		e.query = make([]queryCond, 0, len(m.QueryParams))
	}
	for k, q := range m.QueryParams {
		field := "queryParams[" + strconv.Itoa(k) + "]"
		if q.Name == "" || strings.ContainsFunc(q.Name, isCtl) {
			fail(field+".name", fmt.Errorf("%w: name %q is empty or has control characters", ErrInvalidQuery, q.Name))
			continue
		}
		if slices.ContainsFunc(e.query, func(qc queryCond) bool { return qc.name == q.Name }) {
			continue // only the first entry for a name counts
		}
		qc := queryCond{name: q.Name}
		switch q.Type {
		case QueryExact:
			if q.Value == "" {
				fail(field+".value", fmt.Errorf("%w: empty value", ErrInvalidQuery))
				continue
			}
			qc.value = q.Value
		case QueryRegularExpression:
			re, err := c.regexp(q.Value)
			if err != nil {
				fail(field+".value", err)
				continue
			}
			qc.value, qc.re = q.Value, re
		default:
			fail(field+".type", fmt.Errorf("%w: query match type %d", ErrUnsupportedValue, q.Type))
			continue
		}
		e.query = append(e.query, qc)
	}
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// validToken reports whether s is an RFC 9110 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validFieldValue checks an Exact header value: not empty, no control
// characters other than tab.
func validFieldValue(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Errorf("control character %q in value", c)
		}
	}
	return nil
}

// maxPathValue is the Gateway API limit on a path value.
const maxPathValue = 1024

// validatePathValue checks an Exact or PathPrefix value against the
// Gateway API rules and returns its normalised form. Values that
// normalisation would restructure (dot segments, "//") are refused rather
// than silently changed.
func validatePathValue(v string) (string, error) {
	if len(v) > maxPathValue {
		return "", fmt.Errorf("%w: longer than %d characters", ErrInvalidPath, maxPathValue)
	}
	if v[0] != '/' {
		return "", fmt.Errorf("%w %q: must begin with '/'", ErrInvalidPath, v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '%' {
			if i+2 >= len(v) || !isHex(v[i+1]) || !isHex(v[i+2]) {
				return "", fmt.Errorf("%w %q: invalid percent-encoding at offset %d", ErrInvalidPath, v, i)
			}
			i += 2
			continue
		}
		if c != '/' && byteClass[c]&classPchar == 0 {
			return "", fmt.Errorf("%w %q: invalid character %q", ErrInvalidPath, v, c)
		}
	}
	if strings.Contains(v, "//") {
		return "", fmt.Errorf("%w %q: contains \"//\"", ErrInvalidPath, v)
	}
	norm, err := NormalizePath(v)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	for seg := range strings.SplitSeq(canonicalEscapes(v), "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("%w %q: contains a dot segment", ErrInvalidPath, v)
		}
	}
	return norm, nil
}

// canonicalEscapes decodes escaped unreserved characters in a valid path
// value without touching its segments.
func canonicalEscapes(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			hv, _ := unhex(v[i+1])
			lv, _ := unhex(v[i+2])
			if d := hv<<4 | lv; byteClass[d]&classUnreserved != 0 {
				b.WriteByte(d)
				i += 2
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	_, ok := unhex(c)
	return ok
}
