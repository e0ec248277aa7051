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
	var hb [maxHostname]byte
	if n := hostBytes(req.Host, &hb); n > 0 {
		h := hb[:n]
		if b := t.exact[string(h)]; b != nil {
			if e := b.match(p, req, li); e != nil {
				return e.result(b, p), nil
			}
		}
		if len(t.wild) > 0 {
			for i := 0; i < len(h); i++ {
				if h[i] != '.' {
					continue
				}
				if b := t.wild[string(h[i+1:])]; b != nil {
					if e := b.match(p, req, li); e != nil {
						return e.result(b, p), nil
					}
				}
			}
		}
	}
	if t.any != nil {
		if e := t.any.match(p, req, li); e != nil {
			return e.result(t.any, p), nil
		}
	}
	return Result{}, ErrNotFound
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
	n := b.paths[p]
	if n != nil {
		for _, e := range n.exact {
			if e.conds(req, li) {
				return e
			}
		}
	}
	for _, e := range b.regex {
		if e.conds(req, li) && e.re.MatchString(p) {
			return e
		}
	}
	if b.maxDepth < 0 {
		return nil
	}
	// Walk the prefix keys of p from the longest to "/": "/a/b/" and
	// "/a/b" both give "/a/b", "/a", "/".
	q, reuse := p, true
	if len(q) > 1 && q[len(q)-1] == '/' {
		q, reuse = q[:len(q)-1], false
	}
	depth := 0
	if q != "/" {
		depth = strings.Count(q, "/")
	}
	for depth > b.maxDepth {
		q, reuse = parentKey(q), false
		depth--
	}
	for {
		if !reuse {
			n = b.paths[q]
		}
		reuse = false
		if n != nil {
			for _, e := range n.prefix {
				if e.conds(req, li) {
					return e
				}
			}
		}
		if len(q) == 1 {
			return nil
		}
		q = parentKey(q)
	}
}

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
