package router

import (
	"slices"
	"strconv"
	"strings"
)

// Verdict says what [Table.Explain] concluded about one candidate.
type Verdict uint8

// Verdicts, from a match to the first condition that failed.
const (
	// Selected: every condition holds and this is the candidate Match
	// returns.
	Selected Verdict = iota
	// Shadowed: every condition holds but a candidate of higher precedence
	// was selected.
	Shadowed
	// WrongHostname: no route hostname matches the request host.
	WrongHostname
	// WrongListener: the route is restricted to other listeners.
	WrongListener
	// WrongPath: the path condition fails.
	WrongPath
	// WrongMethod: the method condition fails.
	WrongMethod
	// WrongHeader: a header condition fails.
	WrongHeader
	// WrongQuery: a query parameter condition fails.
	WrongQuery
)

// String returns the verdict's name, e.g. "WrongPath".
func (v Verdict) String() string {
	switch v {
	case Selected:
		return "Selected"
	case Shadowed:
		return "Shadowed"
	case WrongHostname:
		return "WrongHostname"
	case WrongListener:
		return "WrongListener"
	case WrongPath:
		return "WrongPath"
	case WrongMethod:
		return "WrongMethod"
	case WrongHeader:
		return "WrongHeader"
	case WrongQuery:
		return "WrongQuery"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// Candidate is one compiled match as seen by [Table.Explain].
type Candidate struct {
	// RouteIndex, RuleIndex and MatchIndex locate the match as in Result.
	RouteIndex int
	// RuleIndex is the rule's index within the route.
	RuleIndex int
	// MatchIndex is the match's index within the rule, -1 for a rule
	// without matches.
	MatchIndex int
	// Namespace and Name identify the route.
	Namespace string
	// Name is the route's name.
	Name string
	// RuleName is the rule's Name, if any.
	RuleName string
	// Hostname is the route hostname that matched the request host ("" for
	// a route without hostnames, or when none matched).
	Hostname string
	// PathMatch is the path condition, normalised as compiled.
	PathMatch PathMatch
	// Verdict is the outcome.
	Verdict Verdict
	// Detail explains a failed condition in words; empty for Selected and
	// Shadowed.
	Detail string
}

// Explain evaluates every compiled match of t against req and returns one
// Candidate per match: first those whose hostname matches, in the order of
// precedence Match applies to this request (so the Selected one, if any,
// comes first among the candidates whose conditions all hold), then those
// whose hostname does not match, in route order. It returns [ErrBadPath]
// when the path is refused. Explain allocates; it is meant for debugging.
func (t *Table) Explain(req *Request) ([]Candidate, error) {
	p, fault, _ := normalizePath(req.Path)
	if fault != faultNone {
		return nil, ErrBadPath
	}
	if t == nil {
		return nil, nil
	}
	host := canonicalHost(req.Host)
	type ranked struct {
		e        *entry
		class    int // 0 exact hostname, 1 wildcard, 2 no hostnames, 3 no match
		wildLen  int
		origin   int // originRank of the matching hostname's origin
		hostname string
	}
	rs := make([]ranked, len(t.entries))
	for i, e := range t.entries {
		r := ranked{e: e, class: 3}
		if len(e.hostnames) == 0 {
			r.class = 2
		}
		for k, h := range e.hostnames {
			switch {
			case host == "":
			case h == host:
				r.class, r.wildLen, r.origin, r.hostname = 0, 0, t.origins[e.routeIdx][k], h
			case strings.HasPrefix(h, "*.") && len(host) > len(h)-1 && strings.HasSuffix(host, h[1:]):
				if r.class > 1 || r.class == 1 && len(h) > r.wildLen {
					r.class, r.wildLen, r.origin, r.hostname = 1, len(h), t.origins[e.routeIdx][k], h
				}
			}
		}
		rs[i] = r
	}
	// t.entries is already in precedence order within a hostname.
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a.class != b.class {
			return a.class - b.class
		}
		if a.wildLen != b.wildLen {
			return b.wildLen - a.wildLen
		}
		return a.origin - b.origin
	})
	li := -1
	if id, ok := t.listeners[req.Listener]; ok {
		li = id
	}
	out := make([]Candidate, 0, len(rs))
	selected := false
	for _, r := range rs {
		e := r.e
		c := Candidate{
			RouteIndex: e.routeIdx, RuleIndex: e.ruleIdx, MatchIndex: e.matchIdx,
			Namespace: e.route.Namespace, Name: e.route.Name, RuleName: e.rule.Name,
			Hostname: r.hostname, PathMatch: e.path,
		}
		c.Verdict, c.Detail = e.explain(r.class == 3, p, req, li)
		if c.Verdict == Selected {
			if selected {
				c.Verdict = Shadowed
			}
			selected = true
		}
		out = append(out, c)
	}
	return out, nil
}

// explain evaluates one entry and says why it fails, if it does.
func (e *entry) explain(wrongHost bool, p string, req *Request, li int) (Verdict, string) {
	if wrongHost {
		return WrongHostname, "host " + strconv.Quote(req.Host) + " matches none of " + quoteList(e.hostnames)
	}
	if e.listeners != nil && (li < 0 || e.listeners[li>>6]&(1<<(li&63)) == 0) {
		return WrongListener, "listener " + strconv.Quote(req.Listener) + " is not one of " + quoteList(e.route.Listeners)
	}
	if !e.pathMatches(p) {
		return WrongPath, "path " + strconv.Quote(p) + " does not match " + e.path.Type.String() + " " + strconv.Quote(e.path.Value)
	}
	if e.method != "" && e.method != req.Method {
		return WrongMethod, "method " + strconv.Quote(req.Method) + " is not " + strconv.Quote(e.method)
	}
	for i := range e.headers {
		h := &e.headers[i]
		if h.match(req) {
			continue
		}
		v, ok := h.headerValue(req)
		if !ok {
			return WrongHeader, "header " + strconv.Quote(h.key) + " is missing"
		}
		return WrongHeader, "header " + strconv.Quote(h.key) + " value " + strconv.Quote(v) + " does not match " + describeCond(h.re != nil, h.value)
	}
	for i := range e.query {
		q := &e.query[i]
		if q.match(req.RawQuery) {
			continue
		}
		raw, ok := findQuery(req.RawQuery, q.name)
		if !ok {
			return WrongQuery, "query parameter " + strconv.Quote(q.name) + " is missing"
		}
		v, _ := queryUnescape(raw)
		return WrongQuery, "query parameter " + strconv.Quote(q.name) + " value " + strconv.Quote(v) + " does not match " + describeCond(q.re != nil, q.value)
	}
	return Selected, ""
}

// pathMatches applies the path condition directly, without the index.
func (e *entry) pathMatches(p string) bool {
	switch e.path.Type {
	case PathExact:
		return p == e.path.Value
	case PathRegularExpression:
		return e.re.MatchString(p)
	}
	k := e.prefixKey
	return k == "/" || strings.HasPrefix(p, k) && (len(p) == len(k) || p[len(k)] == '/')
}

func describeCond(isRegex bool, value string) string {
	if isRegex {
		return "RegularExpression " + strconv.Quote(value)
	}
	return "Exact " + strconv.Quote(value)
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, " ") + "]"
}

// MarshalText implements encoding.TextMarshaler.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }
