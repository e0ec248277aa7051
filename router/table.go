package router

import (
	"errors"
	"net/http"
	"strings"
)

// ErrNotFound is returned by [Table.Match] when no rule matches. A proxy
// answers it with 404.
var ErrNotFound = errors.New("no matching route")

// Match returns the highest-precedence rule matching req.
//
// It returns [ErrBadPath] when req.Path is refused by [NormalizePath] and
// [ErrNotFound] when nothing matches; both are returned unwrapped. Match
// does not allocate unless the path needs rewriting by normalisation or a
// regular expression is evaluated against a value that must be decoded or
// joined first.
func (t *Table) Match(req *Request) (Result, error) {
	p, fault, _ := normalizePath(req.Path)
	if fault != faultNone {
		return Result{}, ErrBadPath
	}
	if t == nil {
		return Result{}, ErrNotFound
	}
	li := -1
	if t.listeners != nil {
		if id, ok := t.listeners[req.Listener]; ok {
			li = id
		}
	}
	if h, upper := hostPart(req.Host); h != "" && len(t.exact)+len(t.wild) > 0 {
		var e *entry
		var b *bucket
		if upper {
			var buf [maxHostname]byte
			e, b = matchHost(t, buf[:lowerInto(&buf, h)], p, req, li)
		} else {
			e, b = matchHost(t, h, p, req, li)
		}
		if e != nil {
			return e.result(b, p), nil
		}
	}
	if t.any != nil {
		if e := t.any.match(p, req, li); e != nil {
			return e.result(t.any, p), nil
		}
	}
	return Result{}, ErrNotFound
}

// matchHost tries the buckets of the route hostnames matching the
// lower-case host h, most specific first: the exact name, then wildcards
// from the longest suffix to the shortest; the buckets of one hostname
// from the most specific hostname origin to the least.
func matchHost[S string | []byte](t *Table, h S, p string, req *Request, li int) (*entry, *bucket) {
	for b := t.exact[string(h)]; b != nil; b = b.next {
		if e := b.match(p, req, li); e != nil {
			return e, b
		}
	}
	if len(t.wild) == 0 {
		return nil, nil
	}
	for i := 0; i < len(h); i++ {
		if h[i] != '.' {
			continue
		}
		for b := t.wild[string(h[i+1:])]; b != nil; b = b.next {
			if e := b.match(p, req, li); e != nil {
				return e, b
			}
		}
	}
	return nil, nil
}

// MatchHTTP is Match for an *http.Request arriving on an unnamed listener.
func (t *Table) MatchHTTP(r *http.Request) (Result, error) {
	req := NewRequest(r)
	return t.Match(&req)
}

func (e *entry) result(b *bucket, p string) Result {
	return Result{
		Route:      e.route,
		Rule:       e.rule,
		RouteIndex: e.routeIdx,
		RuleIndex:  e.ruleIdx,
		MatchIndex: e.matchIdx,
		PathMatch:  e.path,
		Hostname:   b.hostname,
		Path:       p,
	}
}

// match returns the first entry of b, in precedence order, that matches
// the normalised path p and req.
func (b *bucket) match(p string, req *Request, li int) *entry {
	if b.exactLens&lenBit(len(p)) != 0 {
		es := b.paths[p].exact
		for i := range es {
			if es[i].conds(req, li) {
				return &es[i]
			}
		}
	}
	for i := range b.regex {
		if e := &b.regex[i]; e.conds(req, li) && e.re.MatchString(p) {
			return e
		}
	}
	if b.minPrefix == 0 {
		return nil
	}
	// Walk the prefix keys of p from the longest to "/", looking up only
	// lengths where b has keys: "/a/b/" and "/a/b" give "/a/b", "/a", "/".
	q := p
	if len(q) > 1 && q[len(q)-1] == '/' {
		q = q[:len(q)-1]
	}
	for len(q) >= b.minPrefix {
		if b.prefixLens&lenBit(len(q)) != 0 {
			es := b.paths[q].prefix
			for i := range es {
				if es[i].conds(req, li) {
					return &es[i]
				}
			}
		}
		if len(q) == 1 {
			break
		}
		q = parentKey(q)
	}
	return nil
}

// lenBit is the bit recording a key of length n in a bucket's length
// filters.
func lenBit(n int) uint64 { return 1 << (n & 63) }

// parentKey drops the last segment of a prefix key: "/a/b" -> "/a" -> "/".
func parentKey(q string) string {
	i := strings.LastIndexByte(q, '/')
	if i <= 0 {
		return "/"
	}
	return q[:i]
}

// conds checks everything but the path.
func (e *entry) conds(req *Request, li int) bool {
	if e.listeners != nil && (li < 0 || e.listeners[li>>6]&(1<<(li&63)) == 0) {
		return false
	}
	if e.method != "" && e.method != req.Method {
		return false
	}
	for i := range e.headers {
		if !e.headers[i].match(req) {
			return false
		}
	}
	for i := range e.query {
		if !e.query[i].match(req.RawQuery) {
			return false
		}
	}
	return true
}
