package gatewayapi

import (
	"slices"
	"strings"
)

// intersectHostnames returns the hostnames a route serves on a listener:
// the route's hostnames that the listener's hostname admits, a wildcard of
// the two being narrowed to the more specific name. An empty listener
// hostname admits every route hostname; a route without hostnames takes the
// listener's. ok is false when the two have nothing in common. The result
// is sorted, lower-case and without duplicates; it is empty when both are
// unrestricted.
func intersectHostnames(listener string, route []string) (hosts []string, ok bool) {
	listener = strings.ToLower(listener)
	if len(route) == 0 {
		if listener == "" {
			return nil, true
		}
		return []string{listener}, true
	}
	for _, h := range route {
		h = strings.ToLower(h)
		if listener == "" {
			hosts = append(hosts, h)
			continue
		}
		if m := narrower(listener, h); m != "" {
			hosts = append(hosts, m)
		}
	}
	if len(hosts) == 0 {
		return nil, false
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), true
}

// narrower returns the more specific of two hostnames (exact or wildcard)
// when one contains the other, or "".
func narrower(a, b string) string {
	switch {
	case a == b:
		return a
	case wildcardCovers(a, b):
		return b
	case wildcardCovers(b, a):
		return a
	}
	return ""
}

// wildcardCovers reports whether wildcard w ("*.example.com") matches host
// h, which may itself be a narrower wildcard. The wildcard stands for one
// or more labels.
func wildcardCovers(w, h string) bool {
	suffix, ok := strings.CutPrefix(w, "*")
	if !ok {
		return false
	}
	if strings.HasPrefix(h, "*") {
		// A wildcard covers a narrower wildcard.
		return len(h) > len(w) && strings.HasSuffix(h[1:], suffix)
	}
	return len(h) > len(suffix) && strings.HasSuffix(h, suffix)
}
