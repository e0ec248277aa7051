package gatewayapi

import (
	"cmp"
	"slices"

	"github.com/rauta/rauta/router"
)

// intersectHostnames returns the hostnames a route serves on a listener,
// as router.IntersectHostnameOrigins computes them: the route's hostnames
// that the listener's hostname admits, a wildcard of the two being
// narrowed to the more specific name, each with the route hostname it came
// from ("*" when the route has none and takes the listener's). An empty
// listener hostname admits every route hostname. ok is false when the two
// have nothing in common. The result is sorted by hostname, lower-case and
// without duplicates; both lists are empty when listener and route are
// unrestricted.
func intersectHostnames(listener string, route []string) (hosts, origins []string, ok bool) {
	hosts, origins, ok = router.IntersectHostnameOrigins(listener, route)
	if len(hosts) < 2 {
		return hosts, origins, ok
	}
	idx := make([]int, len(hosts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(hosts[a], hosts[b]) })
	sh, so := make([]string, len(idx)), make([]string, len(idx))
	for i, j := range idx {
		sh[i], so[i] = hosts[j], origins[j]
	}
	return sh, so, ok
}
