package h2wire

import (
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ValidFieldName reports whether s is a field name as HTTP/2 carries it: a
// non-empty token without upper-case letters (RFC 9113 section 8.2.1).
func ValidFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if 'A' <= b && b <= 'Z' || !httpguts.IsTokenRune(rune(b)) {
			return false
		}
	}
	return true
}

// ConnectionSpecific reports whether the field named k, in any case, is
// one that HTTP/2 forbids (RFC 9113 section 8.2.2): Connection and the
// fields it is used with. TE is not among them; it is allowed with the
// value "trailers" only, a rule for the caller.
func ConnectionSpecific(k string) bool {
	switch len(k) {
	case 7:
		return strings.EqualFold(k, "Upgrade")
	case 10:
		return strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Keep-Alive")
	case 16:
		return strings.EqualFold(k, "Proxy-Connection")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// Lower returns the wire form of the canonical field name k, without
// allocating for common fields.
func Lower(k string) string {
	if l, ok := lowerCommon[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// Names converts lower-case wire names to canonical ones, caching a
// bounded number of uncommon names. The zero value is ready; a Names is
// used by one goroutine (a connection's reader).
type Names struct {
	cache map[string]string
}

// maxCached bounds the uncommon names a Names remembers.
const maxCached = 64

// Canonical returns the canonical form of the lower-case field name.
func (n *Names) Canonical(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	if k, ok := n.cache[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if n.cache == nil {
		n.cache = make(map[string]string)
	}
	if len(n.cache) < maxCached {
		n.cache[name] = k
	}
	return k
}

// commonCanonical maps lower-case names of common fields to their
// canonical forms; lowerCommon the reverse.
var commonCanonical, lowerCommon = func() (map[string]string, map[string]string) {
	names := []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Origin", "Age", "Allow", "Authorization", "Cache-Control",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Type", "Cookie", "Date", "Etag",
		"Expect", "Expires", "Forwarded", "From", "Grpc-Encoding", "Grpc-Message", "Grpc-Status",
		"Grpc-Timeout", "Grpc-Accept-Encoding", "Host", "If-Match", "If-Modified-Since",
		"If-None-Match", "If-Range", "If-Unmodified-Since", "Last-Modified", "Link",
		"Location", "Max-Forwards", "Origin", "Priority", "Proxy-Authenticate",
		"Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Traceparent",
		"Tracestate", "Transfer-Encoding", "User-Agent", "Vary", "Via",
		"Www-Authenticate", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
		"X-Request-Id", "X-Real-Ip",
	}
	canon := make(map[string]string, len(names))
	lower := make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		canon[l] = n
		lower[n] = l
	}
	return canon, lower
}()
