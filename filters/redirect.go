package filters

import (
	"net/http"
	"strconv"
	"strings"
)

// redirect is a compiled RequestRedirect filter.
type redirect struct {
	scheme   Scheme
	hostname string
	port     uint16
	path     pathOp
	code     int
}

// compileRedirect validates rd.
func compileRedirect(i int, rd *Redirect) (*redirect, error) {
	const f = "requestRedirect"
	c := &redirect{scheme: rd.Scheme, hostname: rd.Hostname, port: rd.Port, code: rd.StatusCode}
	switch rd.Scheme {
	case SchemeUnset, SchemeHTTP, SchemeHTTPS:
	default:
		return nil, configErr(i, f+".scheme", ErrUnsupported, "%v", rd.Scheme)
	}
	if rd.Hostname != "" {
		if err := checkPreciseHostname(rd.Hostname); err != "" {
			return nil, configErr(i, f+".hostname", ErrInvalid, "%q: %s", rd.Hostname, err)
		}
	}
	switch rd.StatusCode {
	case 0:
		c.code = http.StatusFound
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil, configErr(i, f+".statusCode", ErrUnsupported, "%d (want 301, 302, 303, 307 or 308)", rd.StatusCode)
	}
	if rd.Path != nil {
		p, err := compilePath(i, f+".path", rd.Path)
		if err != nil {
			return nil, err
		}
		c.path = p
	}
	return c, nil
}

// prepare stores the Location of the redirect in h.
func (rd *redirect) prepare(h http.Header, r *http.Request, info *RequestInfo) {
	h["Location"] = []string{rd.location(r, info)}
}

// location builds the redirect target for r.
//
// The scheme is the configured one or the request's. The hostname is the
// configured one or that of the Host header. The port follows the spec: the
// configured port; else, when the scheme is configured, its well-known port;
// else the listener port (info.ListenerPort, or the Host header's port when
// unknown). The port is left out when it is the well-known port of the
// resulting scheme. The path is the request's escaped path, modified by the
// configured PathModifier, and the query is kept. Without any hostname (a
// request with no Host) the Location is the relative reference path?query.
func (rd *redirect) location(r *http.Request, info *RequestInfo) string {
	scheme := rd.scheme
	if scheme == SchemeUnset {
		scheme = info.scheme(r)
	}
	host, hostPort := splitHostPort(r.Host)
	if rd.hostname != "" {
		host = rd.hostname
	}
	var port uint16
	switch {
	case rd.port != 0:
		port = rd.port
	case rd.scheme != SchemeUnset:
		port = rd.scheme.defaultPort()
	case info.ListenerPort != 0:
		port = info.ListenerPort
	default:
		port = scheme.defaultPort()
		if n, err := strconv.ParseUint(hostPort, 10, 16); err == nil && n != 0 {
			port = uint16(n)
		}
	}

	esc := r.URL.EscapedPath()
	head, tail := esc, ""
	if h, t, ok := rd.path.apply(esc, info.PathPrefix); ok {
		head, tail = h, t
	}
	if head == "" && tail == "" {
		head = "/"
	}
	query := r.URL.RawQuery
	withQuery := query != "" || r.URL.ForceQuery

	var b strings.Builder
	b.Grow(len("https://[]:65535?") + len(host) + len(head) + len(tail) + len(query))
	if host != "" {
		b.WriteString(scheme.String())
		b.WriteString("://")
		if strings.IndexByte(host, ':') >= 0 {
			b.WriteByte('[')
			b.WriteString(host)
			b.WriteByte(']')
		} else {
			b.WriteString(host)
		}
		if port != scheme.defaultPort() {
			var digits [5]byte
			b.WriteByte(':')
			b.Write(strconv.AppendUint(digits[:0], uint64(port), 10))
		}
	}
	b.WriteString(head)
	b.WriteString(tail)
	if withQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

// splitHostPort splits a Host header value into host and port without
// allocating. Brackets of an IPv6 literal are removed. A value that is not
// host[:port] is returned whole as the host.
func splitHostPort(hostport string) (host, port string) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return hostport, ""
		}
		host, rest := hostport[1:end], hostport[end+1:]
		if strings.HasPrefix(rest, ":") {
			return host, rest[1:]
		}
		return host, ""
	}
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.IndexByte(hostport[:i], ':') >= 0 {
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}

// rewrite is a compiled URLRewrite filter.
type rewrite struct {
	hostname string
	path     pathOp
}

// compileRewrite validates rw.
func compileRewrite(i int, rw *URLRewrite) (*rewrite, error) {
	const f = "urlRewrite"
	c := &rewrite{hostname: rw.Hostname}
	if rw.Hostname != "" {
		if err := checkPreciseHostname(rw.Hostname); err != "" {
			return nil, configErr(i, f+".hostname", ErrInvalid, "%q: %s", rw.Hostname, err)
		}
	}
	if rw.Path != nil {
		p, err := compilePath(i, f+".path", rw.Path)
		if err != nil {
			return nil, err
		}
		c.path = p
	}
	return c, nil
}

// apply rewrites r in place: r.Host, and r.URL.Path with r.URL.RawPath.
// r.RequestURI is left as received.
func (rw *rewrite) apply(r *http.Request, info *RequestInfo) {
	if rw.hostname != "" {
		r.Host = rw.hostname
	}
	if rw.path.typ == PathModifierUnset {
		return
	}
	if head, tail, ok := rw.path.apply(r.URL.EscapedPath(), info.PathPrefix); ok {
		setURLPath(r.URL, head, tail)
	}
}

// checkPreciseHostname reports why h is not a PreciseHostname (RFC 1123
// labels of lower-case letters, digits and '-', separated by dots, at most
// 253 bytes), or "" if it is one.
func checkPreciseHostname(h string) string {
	if len(h) > 253 {
		return "longer than 253 bytes"
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return "empty or over-long label"
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			case c == '-' && j != 0 && j != len(label)-1:
			default:
				return "labels must be lower-case letters, digits and inner '-'"
			}
		}
	}
	return ""
}
