package router

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// maxHostname is the longest DNS name (RFC 1123); longer hosts can only
// match routes without hostnames.
const maxHostname = 253

// hostPart returns the host of an HTTP Host value with any port and one
// trailing dot removed, not yet lower-cased, and whether it has upper-case
// letters. "" means the host cannot match any route hostname (empty, too
// long, or an IP literal in brackets).
func hostPart(h string) (host string, upper bool) {
	if h == "" || h[0] == '[' {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c == ':' {
			h = h[:i]
			break
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	if len(h) > maxHostname {
		return "", false
	}
	return h, upper
}

// lowerInto writes the ASCII lower-case form of s (at most maxHostname
// bytes) into buf and returns its length.
func lowerInto(buf *[maxHostname]byte, s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return len(s)
}

// canonicalHost returns the lower-cased host part of h, "" when no route
// hostname can match. It allocates and is meant for Explain.
func canonicalHost(h string) string {
	h, _ = hostPart(h)
	return strings.ToLower(h)
}

// validateHostname lower-cases a route hostname and checks it is an RFC
// 1123 name, optionally prefixed by the wildcard label "*.", and not an IP
// address. It returns the lower-cased name and whether it is a wildcard.
func validateHostname(h string) (string, bool, error) {
	h = strings.ToLower(h)
	name := h
	wildcard := strings.HasPrefix(h, "*.")
	if wildcard {
		name = h[2:]
	}
	if len(h) > maxHostname {
		return "", false, fmt.Errorf("%w %q: longer than %d characters", ErrInvalidHostname, h, maxHostname)
	}
	if name == "" {
		return "", false, fmt.Errorf("%w %q: empty", ErrInvalidHostname, h)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "", false, fmt.Errorf("%w %q: IP addresses are not allowed", ErrInvalidHostname, h)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := validateLabel(label); err != nil {
			return "", false, fmt.Errorf("%w %q: %v", ErrInvalidHostname, h, err)
		}
	}
	return h, wildcard, nil
}

func validateLabel(l string) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return errors.New("label longer than 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errors.New("label begins or ends with '-'")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			if c == '*' {
				return errors.New("'*' is only allowed as the whole first label")
			}
			return fmt.Errorf("invalid character %q", c)
		}
	}
	return nil
}

// IntersectHostnames returns the effective hostnames of a route with the
// given hostnames attached to a listener with the given hostname ("" for
// none), as the Gateway API defines them, lower-cased and without
// duplicates:
//
//   - without a listener hostname, the route's own hostnames;
//   - without route hostnames, the listener hostname;
//   - otherwise, for each route hostname that intersects the listener's,
//     the more specific of the two: "test.example.com" or
//     "*.test.example.com" under a "*.example.com" listener stay as they
//     are, and "*.example.com" under a "test.example.com" listener
//     becomes "test.example.com".
//
// ok is false when both sides have hostnames and none intersect: the route
// must not attach (Accepted=False). A nil result with ok true means any
// host. Names are not validated here; Compile does that.
func IntersectHostnames(listener string, route []string) (hosts []string, ok bool) {
	hosts, _, ok = IntersectHostnameOrigins(listener, route)
	return hosts, ok
}

// IntersectHostnameOrigins is [IntersectHostnames] that also returns, for
// each effective hostname, its origin as [Route.HostnameOrigins] defines
// it: the most specific route hostname the effective hostname came from
// (an exact name before wildcards, a longer wildcard before a shorter
// one), or "*" when the route has no hostnames and took the listener's.
// origins is nil when hosts is.
func IntersectHostnameOrigins(listener string, route []string) (hosts, origins []string, ok bool) {
	listener = strings.ToLower(listener)
	if len(route) == 0 {
		if listener == "" {
			return nil, nil, true
		}
		return []string{listener}, []string{"*"}, true
	}
	for _, h := range route {
		h = strings.ToLower(h)
		eff := h
		switch {
		case listener == "", h == listener, wildcardCovers(listener, h):
		case wildcardCovers(h, listener):
			eff = listener
		default:
			continue
		}
		if i := slices.Index(hosts, eff); i >= 0 {
			if originRank(h) < originRank(origins[i]) {
				origins[i] = h
			}
			continue
		}
		hosts = append(hosts, eff)
		origins = append(origins, h)
	}
	return hosts, origins, len(hosts) > 0
}

// originRank orders hostname origins, smaller first: an exact name, then
// wildcards by decreasing length, then "*" (a route without hostnames).
func originRank(o string) int {
	switch {
	case o == "*":
		return maxHostname + 1
	case strings.HasPrefix(o, "*."):
		return 1 + maxHostname - min(len(o), maxHostname)
	}
	return 0
}

// wildcardCovers reports whether the wildcard hostname w ("*.example.com")
// matches h, which may itself be a wildcard: h must end in ".example.com"
// with at least one label in front.
func wildcardCovers(w, h string) bool {
	suffix, ok := strings.CutPrefix(w, "*")
	if !ok || !strings.HasPrefix(suffix, ".") {
		return false
	}
	return len(h) > len(suffix) && strings.HasSuffix(h, suffix)
}
