package proxy

import (
	"fmt"
	"strings"

	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/router"
)

// snapshot is one compiled configuration. It is immutable once published;
// requests load it once and use it to the end.
type snapshot struct {
	cfg        *Config
	generation uint64
	ports      map[string]*portTable
	// served maps the name of every listener served to its table, for
	// Proxy.Handler.
	served   map[string]*portTable
	backends map[string]*backendState
	// listenerPolicies holds the limits of the listeners that have any.
	listenerPolicies map[string]*listenerPolicy
}

// portTable routes the requests of one bound port.
type portTable struct {
	listeners []portListener // most specific hostname first
	table     *router.Table
	port      uint16
	https     bool
}

// portListener is a listener's hostname, for picking the listener of a
// request on a shared port.
type portListener struct {
	name     string
	hostname string          // lower case; "" for any; "*.x" for a wildcard
	pol      *listenerPolicy // rate and request limits; nil for none
}

// listenerFor returns the listener of a shared port that serves host: the
// exact hostname, else the longest matching wildcard, else the listener
// without a hostname. With one listener it is that one. It returns nil when
// none serves host.
func (pt *portTable) listenerFor(host string) *portListener {
	if len(pt.listeners) == 1 {
		return &pt.listeners[0]
	}
	host = stripPort(host)
	for i := range pt.listeners {
		if hostMatches(pt.listeners[i].hostname, host) {
			return &pt.listeners[i]
		}
	}
	return nil
}

// named returns the listener of the port called name, or nil.
func (pt *portTable) named(name string) *portListener {
	for i := range pt.listeners {
		if pt.listeners[i].name == name {
			return &pt.listeners[i]
		}
	}
	return nil
}

// nameOrEmpty returns the listener's name; "" for nil (no listener serves the
// request's host).
func (l *portListener) nameOrEmpty() string {
	if l == nil {
		return ""
	}
	return l.name
}

// stripPort removes a port and a trailing dot from a Host header value.
func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return strings.TrimSuffix(host, ".")
}

// hostMatches reports whether host matches a listener hostname pattern
// ("" matches everything; "*.example.com" one or more labels).
func hostMatches(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		suffix := pattern[1:]
		return len(host) > len(suffix) && hasSuffixFold(host, suffix)
	default:
		return strings.EqualFold(pattern, host)
	}
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// hostSpecificity orders listener hostnames: exact names first (longest
// first), then wildcards (longest first), then the catch-all.
func hostSpecificity(h string) (class int, length int) {
	switch {
	case h == "":
		return 2, 0
	case strings.HasPrefix(h, "*."):
		return 1, -len(h)
	default:
		return 0, -len(h)
	}
}

// compiledRule is what a router rule's Value holds: everything the request
// path needs for the rule, resolved.
type compiledRule struct {
	routeLabel string // "namespace/name" for metrics and logs
	rule       *Rule
	filters    *filters.Chain
	refs       []compiledRef
	total      uint64        // sum of refs' weights
	limiters   []*limiter    // the route's and the rule's rate limits
	req        RequestLimits // the rule's over the route's
	retry      *RetryPolicy
	timeouts   Timeouts
	session    *ruleSession // nil: no reference has session persistence
}

// compiledRef is one weighted backend reference of a rule.
type compiledRef struct {
	backend *backendState // nil: invalid reference, answered with 500
	weight  uint64
	filters *filters.Chain
	session *sessionPolicy // nil: no session persistence
}

// compileRoutes compiles the routing table of every bound port group.
func (p *Proxy) compileRoutes(snap *snapshot, cfg *Config, groups map[string]*portGroup, aerr *ApplyError) {
	portOf := make(map[string]string, len(cfg.Listeners)) // listener name -> port key
	for k, g := range groups {
		if _, bound := p.listeners.ports[k]; !bound && !g.unbound || isStream(g.protocol) {
			continue
		}
		for _, l := range g.listeners {
			portOf[l.Name] = k
		}
	}

	rules := make(map[*Rule]*compiledRule)
	perPort := make(map[string][]router.Route)
	for ri := range cfg.Routes {
		r := &cfg.Routes[ri]
		byPort := make(map[string][]string)
		for _, ln := range r.Listeners {
			if k, ok := portOf[ln]; ok {
				byPort[k] = append(byPort[k], ln)
			}
		}
		if len(byPort) == 0 {
			continue
		}
		rrules := make([]router.Rule, 0, len(r.Rules))
		for j := range r.Rules {
			rule := &r.Rules[j]
			cr, err := p.compileRule(r, j, rule, snap.backends, cfg)
			if err != nil {
				aerr.Routes = append(aerr.Routes, fmt.Errorf("route %s/%s rule %d: %w", r.Namespace, r.Name, j, err))
				cr = &compiledRule{
					routeLabel: r.Namespace + "/" + r.Name,
					rule:       rule,
					filters:    filters.ErrorChain(500),
				}
			}
			rules[rule] = cr
			rrules = append(rrules, router.Rule{Name: rule.Name, Matches: rule.Matches, Value: cr})
		}
		origins := r.HostnameOrigins
		if len(origins) == 0 {
			origins = nil // each hostname is its own origin
		}
		for k, lns := range byPort {
			perPort[k] = append(perPort[k], router.Route{
				Namespace:       r.Namespace,
				Name:            r.Name,
				CreationTime:    r.CreationTime,
				Hostnames:       r.Hostnames,
				HostnameOrigins: origins,
				Listeners:       lns,
				Rules:           rrules,
			})
		}
	}

	for k, g := range groups {
		if _, bound := p.listeners.ports[k]; !bound && !g.unbound || isStream(g.protocol) {
			continue
		}
		pt := &portTable{https: g.protocol == HTTPS}
		if len(g.listeners) > 0 {
			pt.port = uint16(g.listeners[0].Port)
			if pt.port == 0 {
				if a, ok := p.listeners.addr(k); ok {
					pt.port = uint16(portOfAddr(a.String()))
				}
			}
		}
		for _, l := range g.listeners {
			pt.listeners = append(pt.listeners, portListener{name: l.Name, hostname: strings.ToLower(strings.TrimSuffix(l.Hostname, ".")), pol: snap.listenerPolicies[l.Name]})
			snap.served[l.Name] = pt
		}
		sortListeners(pt.listeners)
		t := router.Compile(perPort[k])
		if err := t.Err(); err != nil {
			aerr.Routes = append(aerr.Routes, err)
		}
		pt.table = t
		snap.ports[k] = pt
	}
}

// sortListeners orders listeners most specific hostname first (stable).
func sortListeners(ls []portListener) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0; j-- {
			ci, li := hostSpecificity(ls[j].hostname)
			cj, lj := hostSpecificity(ls[j-1].hostname)
			if ci < cj || (ci == cj && li < lj) {
				ls[j], ls[j-1] = ls[j-1], ls[j]
				continue
			}
			break
		}
	}
}

func portOfAddr(a string) int {
	i := strings.LastIndexByte(a, ':')
	n := 0
	for _, c := range a[i+1:] {
		n = n*10 + int(c-'0')
	}
	return n
}

// compileRule resolves a rule's filters, backends and limits.
func (p *Proxy) compileRule(r *Route, j int, rule *Rule, backends map[string]*backendState, cfg *Config) (*compiledRule, error) {
	copts := filters.CompileOptions{Registry: p.opts.Filters, Mirrorer: p.mirrors}
	chain, err := filters.Compile(rule.Filters, copts)
	if err != nil {
		return nil, fmt.Errorf("filters: %w", err)
	}
	if rule.Retry != nil {
		if err := rule.Retry.validate(); err != nil {
			return nil, fmt.Errorf("retry.%w", err)
		}
	}
	cr := &compiledRule{
		routeLabel: r.Namespace + "/" + r.Name,
		rule:       rule,
		filters:    chain,
		retry:      rule.Retry,
		timeouts:   rule.Timeouts,
	}
	for i, ref := range rule.Backends {
		cref := compiledRef{weight: uint64(ref.Weight)}
		if ref.Backend != "" {
			cref.backend = backends[ref.Backend]
			// A reference to a backend that is not configured (or failed
			// to configure) is invalid: its share is answered with 500.
		}
		if len(ref.Filters) > 0 {
			c, err := filters.Compile(ref.Filters, copts)
			if err != nil {
				return nil, fmt.Errorf("backends[%d].filters: %w", i, err)
			}
			cref.filters = c
		}
		cr.total += cref.weight
		cr.refs = append(cr.refs, cref)
	}
	if err := p.compileSession(cr, r, rule); err != nil {
		return nil, fmt.Errorf("sessionPersistence: %w", err)
	}
	if err := p.ruleLimits(cr, r, j, rule); err != nil {
		return nil, err
	}
	return cr, nil
}
