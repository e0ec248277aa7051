package filters

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Canonical names of the CORS headers.
const (
	hdrOrigin         = "Origin"
	hdrVary           = "Vary"
	hdrReqMethod      = "Access-Control-Request-Method"
	hdrReqHeaders     = "Access-Control-Request-Headers"
	hdrAllowOrigin    = "Access-Control-Allow-Origin"
	hdrAllowCreds     = "Access-Control-Allow-Credentials"
	hdrAllowMethods   = "Access-Control-Allow-Methods"
	hdrAllowHeaders   = "Access-Control-Allow-Headers"
	hdrExposeHeaders  = "Access-Control-Expose-Headers"
	hdrMaxAge         = "Access-Control-Max-Age"
	defaultCORSMaxAge = 5
)

// originPattern is one compiled allowOrigins entry.
type originPattern struct {
	scheme string // "http" or "https"
	// host is the exact host, or for a wildcard the suffix after "*"
	// (".example.com"); anyHost is set for a host of "*".
	host     string
	wildcard bool
	anyHost  bool
	port     string // explicit or the scheme's well-known port
}

// corsFilter is a compiled CORS filter.
type corsFilter struct {
	anyOrigin   bool
	origins     []originPattern
	credentials bool

	anyMethod bool
	methods   []string // precomputed Access-Control-Allow-Methods value (nil: omit)
	anyHeader bool
	headers   []string // precomputed Access-Control-Allow-Headers value (nil: omit)
	anyExpose bool
	expose    []string // precomputed Access-Control-Expose-Headers value (nil: omit)
	maxAge    []string

	// One-element header values shared by all requests (len == cap, never
	// written in place).
	star, yes, origin []string
}

// corsMode records what the CORS filter decided for a request.
type corsMode uint8

// CORS modes.
const (
	corsNone      corsMode = iota // not a CORS request, or filter did not run
	corsActual                    // cross-origin request forwarded upstream
	corsPreflight                 // preflight answered by the filter
)

// corsState is the per-request part of the CORS filter, kept in State.
type corsState struct {
	mode corsMode
	// allow is the Access-Control-Allow-Origin value for an actual request;
	// "" when the origin is not allowed.
	allow      string
	credential bool // the request carries cookies or a client certificate
}

// compileCORS validates c and precomputes the response header values.
func compileCORS(i int, c *CORS) (*corsFilter, error) {
	const f = "cors"
	cf := &corsFilter{
		credentials: c.AllowCredentials,
		star:        []string{"*"},
		yes:         []string{"true"},
		origin:      []string{hdrOrigin},
	}
	for j, o := range c.AllowOrigins {
		path := fmt.Sprintf("%s.allowOrigins[%d]", f, j)
		if o == "*" {
			if len(c.AllowOrigins) > 1 {
				return nil, configErr(i, path, ErrInvalid, "\"*\" cannot be combined with other origins")
			}
			cf.anyOrigin = true
			continue
		}
		p, err := parseOriginPattern(o)
		if err != "" {
			return nil, configErr(i, path, ErrInvalid, "%q: %s", o, err)
		}
		cf.origins = append(cf.origins, p)
	}
	var err error
	if cf.anyMethod, cf.methods, err = compileCORSList(i, f+".allowMethods", c.AllowMethods, false); err != nil {
		return nil, err
	}
	if cf.anyHeader, cf.headers, err = compileCORSList(i, f+".allowHeaders", c.AllowHeaders, true); err != nil {
		return nil, err
	}
	if cf.anyExpose, cf.expose, err = compileCORSList(i, f+".exposeHeaders", c.ExposeHeaders, true); err != nil {
		return nil, err
	}
	switch {
	case c.MaxAge < 0:
		return nil, configErr(i, f+".maxAge", ErrInvalid, "%d is negative", c.MaxAge)
	case c.MaxAge == 0:
		cf.maxAge = []string{strconv.Itoa(defaultCORSMaxAge)}
	default:
		cf.maxAge = []string{strconv.Itoa(int(c.MaxAge))}
	}
	return cf, nil
}

// compileCORSList validates a list of methods (headers=false) or header
// names and returns whether it is the wildcard and its joined value.
func compileCORSList(i int, field string, list []string, headers bool) (any bool, joined []string, err error) {
	for j, v := range list {
		path := fmt.Sprintf("%s[%d]", field, j)
		if v == "*" {
			if len(list) > 1 {
				return false, nil, configErr(i, path, ErrInvalid, "\"*\" cannot be combined with other values")
			}
			return true, nil, nil
		}
		if headers && !validToken(v) {
			return false, nil, configErr(i, path, ErrInvalid, "%q is not a valid header name", v)
		}
		if !headers && !validToken(v) {
			return false, nil, configErr(i, path, ErrInvalid, "%q is not a valid method", v)
		}
	}
	if len(list) == 0 {
		return false, nil, nil
	}
	return false, []string{strings.Join(list, ", ")}, nil
}

// parseOriginPattern parses "scheme://host[:port]" where scheme is http or
// https and host may be "*" or start with "*.".
func parseOriginPattern(s string) (originPattern, string) {
	scheme, host, port, ok := splitOrigin(s)
	if !ok {
		return originPattern{}, "want scheme://host[:port] with scheme http or https"
	}
	p := originPattern{scheme: strings.ToLower(scheme), port: port}
	if port == "" {
		p.port = defaultOriginPort(p.scheme)
	} else {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return originPattern{}, "port must be 1-65535"
		}
		p.port = strconv.FormatUint(n, 10)
	}
	host = strings.ToLower(host)
	switch {
	case host == "*":
		p.anyHost = true
	case strings.HasPrefix(host, "*."):
		p.wildcard, p.host = true, host[1:]
		if !validOriginHost(host[2:]) {
			return originPattern{}, "invalid host"
		}
	default:
		if !validOriginHost(host) {
			return originPattern{}, "invalid host"
		}
		p.host = host
	}
	return p, ""
}

// validOriginHost reports whether h is made of DNS labels (letters, digits,
// '-') separated by dots, or is a bracketed IPv6 literal.
func validOriginHost(h string) bool {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") && len(h) > 2 {
		return strings.Trim(h[1:len(h)-1], "0123456789abcdefABCDEF:.") == ""
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return false
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// splitOrigin splits an origin "scheme://host[:port]" without allocating.
// The scheme must be http or https (any case) and nothing may follow the
// port.
func splitOrigin(s string) (scheme, host, port string, ok bool) {
	i := strings.Index(s, "://")
	if i < 0 {
		return "", "", "", false
	}
	scheme, rest := s[:i], s[i+3:]
	if !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return "", "", "", false
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return "", "", "", false
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", "", false
		}
		host, rest = rest[:end+1], rest[end+1:]
		if rest == "" {
			return scheme, host, "", true
		}
		if rest[0] != ':' || len(rest) == 1 {
			return "", "", "", false
		}
		return scheme, host, rest[1:], isDigits(rest[1:])
	}
	if j := strings.IndexByte(rest, ':'); j >= 0 {
		host, port = rest[:j], rest[j+1:]
		if host == "" || !isDigits(port) {
			return "", "", "", false
		}
		return scheme, host, port, true
	}
	return scheme, rest, "", true
}

func isDigits(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func defaultOriginPort(scheme string) string {
	if strings.EqualFold(scheme, "https") {
		return "443"
	}
	return "80"
}

// originAllowed reports whether the Origin header value origin matches the
// configured origins. It does not allocate.
func (cf *corsFilter) originAllowed(origin string) bool {
	if cf.anyOrigin {
		return true
	}
	scheme, host, port, ok := splitOrigin(origin)
	if !ok {
		return false
	}
	if port == "" {
		port = defaultOriginPort(scheme)
	} else {
		port = strings.TrimLeft(port, "0")
	}
	for k := range cf.origins {
		p := &cf.origins[k]
		if !strings.EqualFold(p.scheme, scheme) || p.port != port {
			continue
		}
		switch {
		case p.anyHost:
			return true
		case p.wildcard:
			if len(host) > len(p.host) && strings.EqualFold(host[len(host)-len(p.host):], p.host) {
				return true
			}
		case strings.EqualFold(host, p.host):
			return true
		}
	}
	return false
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or
// "" if the origin is not allowed. With allowOrigins ["*"] the value is "*"
// unless credentials are allowed, in which case the origin is echoed (the
// spec forbids "*" then). The opaque origin "null" is never echoed.
func (cf *corsFilter) allowOrigin(origin string) string {
	if !cf.originAllowed(origin) {
		return ""
	}
	if cf.anyOrigin && !cf.credentials {
		return "*"
	}
	if origin == "null" {
		return ""
	}
	return origin
}

// request runs the request side. For a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) it fills h with the preflight answer and
// returns true: the gateway is the final authority on preflights of a route
// with a CORS filter, so they are never forwarded. A preflight from an origin
// that is not allowed gets the same status without any CORS header.
func (cf *corsFilter) request(h http.Header, r *http.Request, st *corsState) bool {
	origins := r.Header[hdrOrigin]
	if len(origins) == 0 {
		st.mode = corsNone
		return false
	}
	origin := origins[0]
	if r.Method == http.MethodOptions && len(r.Header[hdrReqMethod]) > 0 {
		st.mode = corsPreflight
		cf.preflight(h, r, origin)
		return true
	}
	st.mode = corsActual
	st.credential = len(r.Header["Cookie"]) > 0 || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0)
	st.allow = cf.allowOrigin(origin)
	if st.credential && !cf.credentials {
		// A credentialed request to a route that does not allow
		// credentials gets no CORS headers at all (GEP-1767).
		st.allow = ""
	}
	return false
}

// preflight writes the headers of a preflight answer.
func (cf *corsFilter) preflight(h http.Header, r *http.Request, origin string) {
	allow := cf.allowOrigin(origin)
	if allow == "" {
		return
	}
	cf.setOrigin(h, allow)
	if cf.credentials {
		h[hdrAllowCreds] = cf.yes
	}
	switch {
	case cf.anyMethod:
		// Echo the requested method: always valid, and required when
		// credentials are allowed.
		h[hdrAllowMethods] = r.Header[hdrReqMethod][:1:1]
	case cf.methods != nil:
		h[hdrAllowMethods] = cf.methods
	}
	switch {
	case cf.anyHeader:
		if v := r.Header[hdrReqHeaders]; len(v) > 0 {
			h[hdrAllowHeaders] = v[:len(v):len(v)]
		}
	case cf.headers != nil:
		h[hdrAllowHeaders] = cf.headers
	}
	switch {
	case cf.anyExpose:
		// A preflight is never credentialed, but "*" is only allowed
		// when credentials are not.
		if !cf.credentials {
			h[hdrExposeHeaders] = cf.star
		}
	case cf.expose != nil:
		h[hdrExposeHeaders] = cf.expose
	}
	h[hdrMaxAge] = cf.maxAge
}

// setOrigin sets Access-Control-Allow-Origin and, for an echoed origin,
// adds Origin to Vary.
func (cf *corsFilter) setOrigin(h http.Header, allow string) {
	if allow == "*" {
		h[hdrAllowOrigin] = cf.star
		return
	}
	h[hdrAllowOrigin] = []string{allow}
	cf.addVaryOrigin(h)
}

// response runs the response side for an actual cross-origin request: the
// filter owns the CORS response headers, so values set upstream are
// replaced (or removed when the origin is not allowed).
func (cf *corsFilter) response(h http.Header, st *corsState) {
	if st.mode != corsActual {
		return
	}
	delete(h, hdrAllowOrigin)
	delete(h, hdrAllowCreds)
	delete(h, hdrExposeHeaders)
	if !cf.anyOrigin || cf.credentials {
		// The answer depends on the Origin header.
		cf.addVaryOrigin(h)
	}
	if st.allow == "" {
		return
	}
	cf.setOrigin(h, st.allow)
	if cf.credentials {
		h[hdrAllowCreds] = cf.yes
	}
	switch {
	case cf.anyExpose && !cf.credentials:
		h[hdrExposeHeaders] = cf.star
	case cf.anyExpose:
		// "*" is not allowed with credentials: list the response's own
		// header names instead.
		if names := exposableNames(h); names != "" {
			h[hdrExposeHeaders] = []string{names}
		}
	case cf.expose != nil:
		h[hdrExposeHeaders] = cf.expose
	}
}

// exposableNames returns the sorted, comma-separated names of the headers
// in h that a browser does not expose by default.
func exposableNames(h http.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		switch k {
		case "Cache-Control", "Content-Language", "Content-Length", "Content-Type",
			"Expires", "Last-Modified", "Pragma", hdrVary, "Set-Cookie", "Set-Cookie2":
			continue
		}
		if strings.HasPrefix(k, "Access-Control-") {
			continue
		}
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// addVaryOrigin adds "Origin" to the Vary header unless already listed.
func (cf *corsFilter) addVaryOrigin(h http.Header) {
	vary := h[hdrVary]
	for _, v := range vary {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "*" || strings.EqualFold(tok, hdrOrigin) {
				return
			}
		}
	}
	if len(vary) == 0 {
		h[hdrVary] = cf.origin
		return
	}
	h[hdrVary] = append(vary[:len(vary):len(vary)], hdrOrigin)
}
