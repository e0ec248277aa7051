package router

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// refMatcher is the brute-force reference: a linear scan over every
// (route, rule, match) that evaluates each condition directly and keeps
// the best by the precedence written out literally in refKey.
type refMatcher struct {
	routes []Route
	res    map[string]*regexp.Regexp
}

type refKey struct {
	hostClass int // 0 exact hostname, 1 wildcard, 2 route without hostnames
	hostLen   int // characters of the matching wildcard hostname
	// originClass and originLen rank the route's own hostname the
	// matching hostname came from: 0 exact, 1 wildcard (longer first),
	// 2 none ("*").
	originClass int
	originLen   int
	pathRank    int // 0 Exact, 1 RegularExpression, 2 PathPrefix
	pathLen     int
	hasMethod   bool
	headers     int
	queries     int
	created     time.Time
	nsName      string
	route       int
	rule        int
	match       int
}

func (a refKey) less(b refKey) bool {
	if a.hostClass != b.hostClass {
		return a.hostClass < b.hostClass
	}
	if a.hostLen != b.hostLen {
		return a.hostLen > b.hostLen
	}
	if a.originClass != b.originClass {
		return a.originClass < b.originClass
	}
	if a.originLen != b.originLen {
		return a.originLen > b.originLen
	}
	if a.pathRank != b.pathRank {
		return a.pathRank < b.pathRank
	}
	if a.pathLen != b.pathLen {
		return a.pathLen > b.pathLen
	}
	if a.hasMethod != b.hasMethod {
		return a.hasMethod
	}
	if a.headers != b.headers {
		return a.headers > b.headers
	}
	if a.queries != b.queries {
		return a.queries > b.queries
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	if a.nsName != b.nsName {
		return a.nsName < b.nsName
	}
	return cmp.Or(cmp.Compare(a.route, b.route), cmp.Compare(a.rule, b.rule), cmp.Compare(a.match, b.match)) < 0
}

func (m *refMatcher) re(expr string) *regexp.Regexp {
	if m.res == nil {
		m.res = make(map[string]*regexp.Regexp)
	}
	re, ok := m.res[expr]
	if !ok {
		re = regexp.MustCompile("^(?:" + expr + ")$")
		m.res[expr] = re
	}
	return re
}

// match returns "route#rule.match", "404" or "400".
func (m *refMatcher) match(req *Request) string {
	p, ok := refNormalize(req.Path)
	if !ok {
		return "400"
	}
	host := req.Host
	if strings.HasPrefix(host, "[") {
		host = ""
	}
	if i := strings.Index(host, ":"); i >= 0 {
		host = host[:i]
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if len(host) > 253 {
		host = ""
	}
	query, _ := url.ParseQuery(req.RawQuery)

	var best *refKey
	for ri, r := range m.routes {
		if len(r.Listeners) > 0 && !slices.Contains(r.Listeners, req.Listener) {
			continue
		}
		// The best (hostname, origin) pair that matches the host, compared
		// as hostClass, then longer hostLen, then originClass, then longer
		// originLen.
		hostClass, hostLen, originClass, originLen := 3, 0, 2, 0
		if len(r.Hostnames) == 0 {
			hostClass = 2
		}
		for k, h := range r.Hostnames {
			h = strings.ToLower(h)
			if host == "" {
				continue
			}
			hc, hl := 3, 0
			if h == host {
				hc = 0
			} else if suffix, ok := strings.CutPrefix(h, "*"); ok &&
				strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				hc, hl = 1, len(h)
			}
			if hc == 3 {
				continue
			}
			o := h
			if r.HostnameOrigins != nil {
				o = strings.ToLower(r.HostnameOrigins[k])
			}
			oc, ol := 0, len(o)
			switch {
			case o == "*":
				oc, ol = 2, 0
			case strings.HasPrefix(o, "*."):
				oc = 1
			}
			if cmp.Or(cmp.Compare(hc, hostClass), cmp.Compare(hostLen, hl), cmp.Compare(oc, originClass), cmp.Compare(originLen, ol)) < 0 {
				hostClass, hostLen, originClass, originLen = hc, hl, oc, ol
			}
		}
		if hostClass == 3 {
			continue
		}
		for rj, rule := range r.Rules {
			ms := rule.Matches
			idx := func(k int) int { return k }
			if len(ms) == 0 {
				ms = []Match{{Path: PathMatch{Type: PathPrefix, Value: "/"}}}
				idx = func(int) int { return -1 }
			}
			for mk, mt := range ms {
				key := refKey{
					hostClass: hostClass, hostLen: hostLen,
					originClass: originClass, originLen: originLen,
					created: r.CreationTime, nsName: r.Namespace + "/" + r.Name,
					route: ri, rule: rj, match: idx(mk),
				}
				if !m.matchOne(&key, mt, p, req, query) {
					continue
				}
				if best == nil || key.less(*best) {
					best = &key
				}
			}
		}
	}
	if best == nil {
		return "404"
	}
	return fmt.Sprintf("%d#%d.%d", best.route, best.rule, best.match)
}

// matchOne evaluates one match and fills the precedence fields of key.
func (m *refMatcher) matchOne(key *refKey, mt Match, p string, req *Request, query url.Values) bool {
	v := cmp.Or(mt.Path.Value, "/")
	switch mt.Path.Type {
	case PathExact:
		v, _ = refNormalize(v)
		key.pathRank = 0
		if p != v {
			return false
		}
	case PathRegularExpression:
		key.pathRank = 1
		if !m.re(v).MatchString(p) {
			return false
		}
	case PathPrefix:
		v, _ = refNormalize(v)
		key.pathRank = 2
		segs := strings.Split(strings.Trim(v, "/"), "/")
		have := strings.Split(strings.Trim(p, "/"), "/")
		if v != "/" && (len(have) < len(segs) || !slices.Equal(segs, have[:len(segs)])) {
			return false
		}
	}
	key.pathLen = len(v)
	if mt.Method != "" {
		key.hasMethod = true
		if mt.Method != req.Method {
			return false
		}
	}
	var seen []string
	for _, h := range mt.Headers {
		if slices.ContainsFunc(seen, func(s string) bool { return strings.EqualFold(s, h.Name) }) {
			continue
		}
		seen = append(seen, h.Name)
		key.headers++
		var got string
		if strings.EqualFold(h.Name, "host") {
			if req.Host == "" {
				return false
			}
			got = req.Host
		} else {
			vals := req.Header.Values(h.Name)
			if len(vals) == 0 {
				return false
			}
			got = strings.Join(vals, ", ")
		}
		if h.Type == HeaderRegularExpression && !m.re(h.Value).MatchString(got) ||
			h.Type == HeaderExact && got != h.Value {
			return false
		}
	}
	seen = seen[:0]
	for _, q := range mt.QueryParams {
		if slices.Contains(seen, q.Name) {
			continue
		}
		seen = append(seen, q.Name)
		key.queries++
		vals := query[q.Name]
		if len(vals) == 0 {
			return false
		}
		if q.Type == QueryRegularExpression && !m.re(q.Value).MatchString(vals[0]) ||
			q.Type == QueryExact && vals[0] != q.Value {
			return false
		}
	}
	return true
}

// gen makes random but valid route sets and requests from small
// alphabets, so that overlaps and ties are frequent.
type gen struct{ r *rand.Rand }

func pick[T any](g gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

func (g gen) chance(p float64) bool { return g.r.Float64() < p }

func (g gen) pathValue() string {
	var segs []string
	for range g.r.IntN(4) {
		segs = append(segs, pick(g, "a", "b", "ab", "%61", "c"))
	}
	p := "/" + strings.Join(segs, "/")
	if len(segs) > 0 && g.chance(0.2) {
		p += "/"
	}
	return p
}

func (g gen) match() Match {
	var m Match
	switch g.r.IntN(10) {
	case 0, 1, 2:
		m.Path = PathMatch{Type: PathExact, Value: g.pathValue()}
	case 3:
		m.Path = PathMatch{Type: PathRegularExpression, Value: pick(g, "/a.*", "/[ab]+(/.*)?", "/a/b/?", ".*", "/c")}
	case 4:
		// zero value: PathPrefix "/"
	default:
		m.Path = PathMatch{Type: PathPrefix, Value: g.pathValue()}
	}
	if g.chance(0.25) {
		m.Method = pick(g, "GET", "POST")
	}
	for range g.r.IntN(3) {
		h := HeaderMatch{Name: pick(g, "x-a", "X-A", "x-b", "Host"), Value: pick(g, "1", "2", "1, 2", "a.com")}
		if g.chance(0.2) {
			h.Type, h.Value = HeaderRegularExpression, pick(g, "[12]", "1.*", "[a-z.]+")
		}
		m.Headers = append(m.Headers, h)
	}
	for range g.r.IntN(3) {
		q := QueryMatch{Name: pick(g, "q", "r", "a b"), Value: pick(g, "1", "2", "a b")}
		if g.chance(0.2) {
			q.Type, q.Value = QueryRegularExpression, pick(g, "[0-9]", "a.*")
		}
		m.QueryParams = append(m.QueryParams, q)
	}
	return m
}

func (g gen) routes() []Route {
	routes := make([]Route, 1+g.r.IntN(8))
	for i := range routes {
		r := &routes[i]
		r.Namespace = pick(g, "n", "n-a")
		r.Name = pick(g, "a", "b")
		r.CreationTime = pick(g, t0, t1)
		for range g.r.IntN(3) {
			r.Hostnames = append(r.Hostnames, pick(g, "a.com", "b.a.com", "x.b.a.com", "c.com", "*.a.com", "*.b.a.com", "*.com", "A.com"))
		}
		if len(r.Hostnames) > 0 && g.chance(0.5) {
			// As if intersected with a listener hostname: each hostname
			// comes from itself, from a wildcard covering it or from a
			// route without hostnames.
			for _, h := range r.Hostnames {
				from := []string{h, h, "*"}
				for _, w := range []string{"*.a.com", "*.b.a.com", "*.com", "*.A.com"} {
					if suffix := strings.ToLower(w[1:]); strings.HasSuffix(strings.ToLower(h), suffix) && len(h) > len(suffix) && !strings.EqualFold(h, w) {
						from = append(from, w)
					}
				}
				r.HostnameOrigins = append(r.HostnameOrigins, pick(g, from...))
			}
		}
		if g.chance(0.15) {
			r.Listeners = []string{pick(g, "l1", "l2")}
			if g.chance(0.3) {
				r.Listeners = append(r.Listeners, "l3")
			}
		}
		r.Rules = make([]Rule, 1+g.r.IntN(3))
		for j := range r.Rules {
			for range g.r.IntN(3) {
				r.Rules[j].Matches = append(r.Rules[j].Matches, g.match())
			}
		}
	}
	return routes
}

func (g gen) request() Request {
	var segs []string
	for range 1 + g.r.IntN(4) {
		segs = append(segs, pick(g, "a", "b", "ab", "a", "%61", "c", ".", "..", "", "%2e", "A"))
	}
	path := "/" + strings.Join(segs, "/")
	if g.chance(0.02) {
		path += pick(g, "%2F", "%", "\\")
	}
	h := http.Header{}
	for range g.r.IntN(3) {
		h.Add(pick(g, "X-A", "X-B"), pick(g, "1", "2", "a.com"))
	}
	var qs []string
	for range g.r.IntN(3) {
		qs = append(qs, pick(g, "q=1", "q=2", "r=1", "r=a+b", "q=a%20b", "q=%zz", "q;=1", "%71=2", "r=2", "a+b=1", "q"))
	}
	return Request{
		Host:     pick(g, "a.com", "b.a.com", "x.b.a.com", "y.x.b.a.com", "c.com", "A.COM:80", "b.a.com.", "", "d.org", "[::1]:1", "com"),
		Path:     path,
		Method:   pick(g, "GET", "POST", "PUT"),
		Header:   h,
		RawQuery: strings.Join(qs, "&"),
		Listener: pick(g, "", "", "l1", "l2", "l3"),
	}
}

// idOutcome is outcome with the route index instead of its name.
func idOutcome(res Result, err error) string {
	switch {
	case errors.Is(err, ErrBadPath):
		return "400"
	case errors.Is(err, ErrNotFound):
		return "404"
	case err != nil:
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%d#%d.%d", res.RouteIndex, res.RuleIndex, res.MatchIndex)
}

func explainOutcome(tab *Table, req *Request) string {
	cands, err := tab.Explain(req)
	if err != nil {
		return "400"
	}
	for _, c := range cands {
		if c.Verdict == Selected {
			return fmt.Sprintf("%d#%d.%d", c.RouteIndex, c.RuleIndex, c.MatchIndex)
		}
	}
	return "404"
}

func TestDifferentialAgainstReference(t *testing.T) {
	sets, reqs := 3000, 40
	if testing.Short() {
		sets = 300
	}
	g := gen{rand.New(rand.NewPCG(1, 2))}
	outcomes := map[string]int{}
	for s := range sets {
		routes := g.routes()
		tab := Compile(routes)
		err := tab.Err()
		if err != nil {
			t.Fatalf("set %d: Compile: %v", s, err)
		}
		ref := refMatcher{routes: routes}
		for range reqs {
			req := g.request()
			want := ref.match(&req)
			got := idOutcome(tab.Match(&req))
			if got != want {
				t.Fatalf("set %d: request %+v\nroutes: %+v\nMatch = %s, reference = %s", s, req, routes, got, want)
			}
			if ex := explainOutcome(tab, &req); ex != want {
				t.Fatalf("set %d: request %+v\nroutes: %+v\nExplain = %s, reference = %s", s, req, routes, ex, want)
			}
			switch want {
			case "400", "404":
				outcomes[want]++
			default:
				outcomes["match"]++
			}
		}
	}
	// The generator must exercise every outcome substantially.
	for _, k := range []string{"400", "404", "match"} {
		if outcomes[k] < sets/10 {
			t.Errorf("only %d %s outcomes in %d requests: generator is too narrow", outcomes[k], k, sets*reqs)
		}
	}
}

// fuzzRoutes is a fixed route set for FuzzMatch: random routes plus
// hand-written ones covering every feature.
func fuzzRoutes() []Route {
	g := gen{rand.New(rand.NewPCG(7, 7))}
	var routes []Route
	for range 6 {
		routes = append(routes, g.routes()...)
	}
	routes = append(routes,
		route("admin", []string{"a.com"}, rule(prefix("/admin").header("x-a", "1"), exact("/admin/login"))),
		route("api", []string{"*.a.com"}, rule(regex(`/api/v[0-9]+/.*`).query("q", "1")), rule(prefix("/api/"))),
	)
	return routes
}

func FuzzMatch(f *testing.F) {
	f.Add("a.com", "/admin/x", "GET", "q=1", "1", "")
	f.Add("x.a.com:8080", "/api/v2/users", "POST", "q=%31&q=2", "", "l1")
	f.Add("B.A.COM.", "//a/./b/../%61b/", "GET", "r=a+b", "2", "l2")
	f.Add("", "/%2e%2E/c", "PUT", "q;=1&q=2", "1, 2", "")
	f.Add("[::1]", "/a%2Fb", "GET", "", "", "")
	routes := fuzzRoutes()
	tab := Compile(routes)
	err := tab.Err()
	if err != nil {
		f.Fatal(err)
	}
	ref := refMatcher{routes: routes}
	f.Fuzz(func(t *testing.T, host, path, method, rawQuery, xa, listener string) {
		req := Request{Host: host, Path: path, Method: method, RawQuery: rawQuery, Listener: listener,
			Header: http.Header{"X-A": {xa}}}
		if strings.Count(rawQuery, "&") > 1000 {
			return // url.ParseQuery, used by the reference, caps parameters
		}
		want := ref.match(&req)
		if got := idOutcome(tab.Match(&req)); got != want {
			t.Fatalf("request %+v: Match = %s, reference = %s", req, got, want)
		}
		if ex := explainOutcome(tab, &req); ex != want {
			t.Fatalf("request %+v: Explain = %s, reference = %s", req, ex, want)
		}
	})
}
