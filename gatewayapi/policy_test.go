package gatewayapi

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rauta/rauta/proxy"
)

// TestRateLimitBudgets checks, over every golden case, that a rate limit
// Name stands for one budget: wherever it appears (listeners, routes,
// rules) it carries the same numbers and key, as the proxy shares buckets
// by Name.
func TestRateLimitBudgets(t *testing.T) {
	for name, g := range loadGolden(t) {
		c := Translate(g.res, g.opts).Config
		seen := map[string]proxy.RateLimit{}
		check := func(where string, rls []proxy.RateLimit) {
			for _, rl := range rls {
				if rl.Name == "" {
					t.Errorf("%s: %s: a policy's rate limit has no Name", name, where)
					continue
				}
				if prev, ok := seen[rl.Name]; ok && prev != rl {
					t.Errorf("%s: %s: rate limit %q differs from another of the same Name:\n%s", name, where, rl.Name, cmp.Diff(prev, rl))
				}
				seen[rl.Name] = rl
			}
		}
		for _, l := range c.Listeners {
			check("listener "+l.Name, l.RateLimits)
		}
		for _, r := range c.Routes {
			check("route "+r.Namespace+"/"+r.Name, r.RateLimits)
			for _, rule := range r.Rules {
				check("route "+r.Namespace+"/"+r.Name+" rule "+rule.Name, rule.RateLimits)
			}
		}
	}
}

// TestGatewayRateLimitOnEveryListener checks that a TrafficPolicy on a
// Gateway puts its limit, with one Name, on every listener of the Gateway
// (a ListenerSet's included), that a listener's own limit is added to it
// under another Name, and that an HTTPRoute's limit has one Name on every
// proxy route made from the route.
func TestGatewayRateLimitOnEveryListener(t *testing.T) {
	g := loadGolden(t)["trafficpolicy-precedence.in.yaml"]
	c := Translate(g.res, g.opts).Config
	names := func(rls []proxy.RateLimit) []string {
		var out []string
		for _, rl := range rls {
			out = append(out, rl.Name)
		}
		return out
	}
	want := map[string][]string{
		"infra/gw/admin":                {"infra/gateway:Gateway/gw"},
		"infra/gw/http":                 {"infra/gateway:Gateway/gw", "infra/listener:Gateway/gw/http"},
		"infra/gw/other":                {"infra/gateway:Gateway/gw"},
		"infra/listenerset/extra/extra": {"infra/gateway:Gateway/gw"},
	}
	got := map[string][]string{}
	for _, l := range c.Listeners {
		got[l.Name] = names(l.RateLimits)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listener rate limits (-want +got):\n%s", diff)
	}
	if len(c.Routes) < 2 {
		t.Fatalf("want one proxy route per hostname, got %d", len(c.Routes))
	}
	for _, r := range c.Routes {
		if diff := cmp.Diff([]string{"infra/route:HTTPRoute/web"}, names(r.RateLimits)); diff != "" {
			t.Errorf("route %v rate limits (-want +got):\n%s", r.Hostnames, diff)
		}
		i := slices.IndexFunc(r.Rules, func(rule proxy.Rule) bool { return rule.Name == "api" })
		if i < 0 {
			t.Fatalf("route %v: no rule api", r.Hostnames)
		}
		if diff := cmp.Diff([]string{"infra/rule:HTTPRoute/web/api"}, names(r.Rules[i].RateLimits)); diff != "" {
			t.Errorf("route %v rule api rate limits (-want +got):\n%s", r.Hostnames, diff)
		}
	}
}
