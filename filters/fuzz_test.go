package filters

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// FuzzPathModifier checks the path building of URLRewrite and
// RequestRedirect on arbitrary request paths, matched prefixes and
// configured replacements.
func FuzzPathModifier(f *testing.F) {
	for _, tc := range prefixTable {
		f.Add(tc.path, tc.prefix, tc.repl, false, "")
	}
	f.Add("/a%2Fb/c", "/a", "/x", false, "q=1")
	f.Add("/%66oo/bar", "/foo", "/x/", false, "")
	f.Add("/foo//bar", "/foo", "", false, "a=%20&b")
	f.Add("/x", "/", "/caf%C3%A9", true, "")
	f.Add("/a!b(c)", "/a!b(c)", "/", false, "")
	f.Fuzz(func(t *testing.T, path, prefix, repl string, full bool, query string) {
		pm := &PathModifier{Type: ReplacePrefixMatch, ReplacePrefixMatch: repl}
		if full {
			pm = &PathModifier{Type: ReplaceFullPath, ReplaceFullPath: repl}
		}
		rw, err := Compile([]Spec{rewriteSpec(URLRewrite{Path: pm})}, CompileOptions{})
		if err != nil {
			return // invalid configuration, rejected
		}
		rd := mustCompile(t, []Spec{redirectSpec(Redirect{Path: pm})}, CompileOptions{})
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" || u.Opaque != "" || !strings.HasPrefix(u.EscapedPath(), "/") {
			return // not an origin-form request path
		}
		u.RawQuery = ""
		if query != "" {
			if q, err := url.ParseRequestURI("/?" + query); err != nil || q.RawQuery != query || strings.ContainsAny(query, "# ") {
				return
			}
			u.RawQuery = query
		}
		orig := u.EscapedPath()
		info := RequestInfo{Scheme: SchemeHTTP, ListenerPort: 80, PathPrefix: prefix}

		// The expected escaped path, computed independently.
		want := orig
		switch {
		case full:
			want = repl
			if want == "" {
				want = "/"
			}
		default:
			p := strings.TrimRight(prefix, "/")
			if strings.HasPrefix(orig, p) && (len(orig) == len(p) || orig[len(p)] == '/') {
				want = strings.TrimRight(repl, "/") + orig[len(p):]
				if want == "" {
					want = "/"
				}
			}
		}

		r := &http.Request{Method: "GET", URL: u, Host: "h.example", Header: http.Header{}}
		var st State
		rw.Request(httptest.NewRecorder(), r, info, &st)
		got := r.URL.EscapedPath()
		if got == "" || got[0] != '/' {
			t.Fatalf("rewritten path %q is not absolute", got)
		}
		// The matched-prefix fast path must agree with the oracle; the
		// escape-aware path may match more, never less.
		if got != want && (full || got == orig) {
			t.Fatalf("rewrite of %q (prefix %q, repl %q, full %v) = %q, want %q", orig, prefix, repl, full, got, want)
		}
		if dec, err := url.PathUnescape(got); err != nil || dec != r.URL.Path {
			t.Fatalf("Path %q does not decode from EscapedPath %q (%v)", r.URL.Path, got, err)
		}
		if !full && got != orig && !strings.HasPrefix(got, strings.TrimRight(repl, "/")) {
			t.Fatalf("rewritten path %q does not start with the replacement %q", got, repl)
		}
		re, err := url.ParseRequestURI(r.URL.RequestURI())
		if err != nil || re.EscapedPath() != got || re.RawQuery != u.RawQuery {
			t.Fatalf("RequestURI %q does not round-trip: %v %q", r.URL.RequestURI(), err, re)
		}

		// The redirect builds the same path into a valid absolute URL.
		r2 := &http.Request{Method: "GET", URL: &url.URL{Path: "x"}, Host: "h.example", Header: http.Header{}}
		*r2.URL = url.URL{Path: mustUnescape(orig), RawPath: orig, RawQuery: u.RawQuery}
		w := httptest.NewRecorder()
		rd.Request(w, r2, info, &st)
		loc := w.Header().Get("Location")
		if strings.ContainsAny(loc, "\r\n\x00 ") {
			t.Fatalf("Location %q contains forbidden bytes", loc)
		}
		lu, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q does not parse: %v", loc, err)
		}
		if lu.Scheme != "http" || lu.Host != "h.example" || lu.EscapedPath() != got || lu.RawQuery != u.RawQuery {
			t.Fatalf("Location %q: scheme %q host %q path %q query %q; want path %q query %q",
				loc, lu.Scheme, lu.Host, lu.EscapedPath(), lu.RawQuery, got, u.RawQuery)
		}
	})
}

func mustUnescape(s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return d
}

// FuzzRedirectLocation checks the scheme, host and port rules of
// RequestRedirect against an independent statement of the spec.
func FuzzRedirectLocation(f *testing.F) {
	f.Add("gw.example", uint8(0), "", uint16(0), uint16(80), uint8(1), false)
	f.Add("gw.example:8080", uint8(2), "example.org", uint16(0), uint16(8080), uint8(1), false)
	f.Add("[::1]:443", uint8(1), "", uint16(8443), uint16(443), uint8(2), true)
	f.Add("example.org", uint8(0), "example.org", uint16(443), uint16(0), uint8(0), true)
	f.Fuzz(func(t *testing.T, host string, scheme uint8, hostname string, port, listener uint16, listenerScheme uint8, tls bool) {
		if !plausibleHost(host) || scheme > 2 || listenerScheme > 2 {
			return
		}
		rd := Redirect{Scheme: Scheme(scheme), Hostname: hostname, Port: port}
		c, err := Compile([]Spec{redirectSpec(rd)}, CompileOptions{})
		if err != nil {
			if hostname != "" && checkPreciseHostname(hostname) != "" {
				return
			}
			t.Fatalf("valid redirect rejected: %v", err)
		}
		r := newRequest("GET", "/p?q=1")
		r.Host = host
		if !tls {
			r.TLS = nil
		} else if r.TLS == nil {
			r.TLS = newTLSState()
		}
		info := RequestInfo{Scheme: Scheme(listenerScheme), ListenerPort: listener}
		w := httptest.NewRecorder()
		var st State
		c.Request(w, r, info, &st)
		loc := w.Header().Get("Location")

		// The spec, restated.
		reqScheme := "http"
		if listenerScheme == 2 || (listenerScheme == 0 && tls) {
			reqScheme = "https"
		}
		wantScheme := reqScheme
		if scheme != 0 {
			wantScheme = Scheme(scheme).String()
		}
		hostOnly, hostPort := host, ""
		if h, p, err := splitHostPortStd(host); err == nil {
			hostOnly, hostPort = h, p
		}
		wantHost := hostOnly
		if hostname != "" {
			wantHost = hostname
		}
		wellKnown := map[string]int{"http": 80, "https": 443}
		var wantPort int
		switch {
		case port != 0:
			wantPort = int(port)
		case scheme != 0:
			wantPort = wellKnown[wantScheme]
		case listener != 0:
			wantPort = int(listener)
		default:
			wantPort = wellKnown[wantScheme]
			if n, err := strconv.Atoi(hostPort); err == nil && n > 0 && n < 65536 {
				wantPort = n
			}
		}
		if wantHost == "" {
			if loc != "/p?q=1" {
				t.Fatalf("Location without host = %q", loc)
			}
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q does not parse: %v", loc, err)
		}
		wantPortStr := strconv.Itoa(wantPort)
		if wantPort == wellKnown[wantScheme] {
			wantPortStr = ""
		}
		if u.Scheme != wantScheme || u.Hostname() != wantHost || u.Port() != wantPortStr || u.RequestURI() != "/p?q=1" {
			t.Fatalf("Location %q: got scheme %q host %q port %q uri %q; want %q %q %q",
				loc, u.Scheme, u.Hostname(), u.Port(), u.RequestURI(), wantScheme, wantHost, wantPortStr)
		}
	})
}

// plausibleHost accepts Host header values made of host characters, as a
// server would pass them on.
func plausibleHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return false
		}
	}
	u, err := url.Parse("http://" + h + "/")
	return err == nil && u.Host == h
}

// splitHostPortStd is net.SplitHostPort for "host" or "host:port".
func splitHostPortStd(h string) (string, string, error) {
	u, err := url.Parse("http://" + h + "/")
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}

// FuzzCORSOrigin checks origin matching on arbitrary Origin headers and
// configured origins: it never panics, it ignores case, and what it allows
// agrees with a straightforward reading of the spec.
func FuzzCORSOrigin(f *testing.F) {
	f.Add("https://www.bar.com", "https://*.bar.com")
	f.Add("https://bar.com", "https://*.bar.com")
	f.Add("http://a.example:80", "http://a.example")
	f.Add("https://a.example:8443", "https://a.example:8443")
	f.Add("null", "https://a.example")
	f.Add("https://[::1]:8443", "https://*")
	f.Fuzz(func(t *testing.T, origin, pattern string) {
		cf, err := compileCORS(0, &CORS{AllowOrigins: []string{pattern}})
		if err != nil {
			return
		}
		got := cf.originAllowed(origin)
		if up := cf.originAllowed(strings.ToUpper(origin)); up != got && strings.ToUpper(origin) != origin {
			t.Fatalf("matching %q against %q depends on case", origin, pattern)
		}
		if pattern == "*" {
			if !got {
				t.Fatalf("* did not allow %q", origin)
			}
			return
		}
		if got != oracleOriginMatch(origin, pattern) {
			t.Fatalf("originAllowed(%q) with %q = %v, oracle disagrees", origin, pattern, got)
		}
	})
}

// oracleOriginMatch matches with net/url: same scheme, same port (default
// ports filled in), host equal or, for "*.", a proper suffix.
func oracleOriginMatch(origin, pattern string) bool {
	norm := func(s string) (scheme, host, port string, ok bool) {
		i := strings.Index(s, "://")
		if i < 0 {
			return
		}
		rest := s[i+3:]
		if rest == "" || strings.ContainsAny(rest, "/?#@ %") || strings.ContainsAny(s[:i], "%") {
			return
		}
		u, err := url.Parse(strings.ToLower(s[:i]) + "://" + rest)
		if err != nil || u.Host != rest || (u.Scheme != "http" && u.Scheme != "https") {
			return
		}
		port = strings.TrimLeft(u.Port(), "0")
		if u.Port() == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		} else if n, err := strconv.Atoi(u.Port()); err != nil || n > 65535 || len(u.Port()) > 5 {
			return
		}
		h := strings.ToLower(u.Host)
		if u.Port() != "" {
			h = h[:len(h)-len(u.Port())-1]
		}
		return u.Scheme, h, port, true
	}
	os, oh, op, ok := norm(origin)
	if !ok {
		return false
	}
	ps, ph, pp, ok := norm(strings.Replace(pattern, "*", "wildcard-label", 1))
	if !ok || os != ps || op != pp {
		return false
	}
	switch {
	case ph == "wildcard-label":
		return true
	case strings.HasPrefix(ph, "wildcard-label."):
		suffix := ph[len("wildcard-label"):]
		return len(oh) > len(suffix) && strings.HasSuffix(oh, suffix)
	}
	return oh == ph
}

// FuzzHeaderModifier checks that a compiled modifier does what its
// configuration says on arbitrary names and values.
func FuzzHeaderModifier(f *testing.F) {
	f.Add("X-Header-Set", "v", "x-header-add", "w", "X-Header-Remove", "existing")
	f.Add("host", "h.example", "a", "", "b", "")
	f.Fuzz(func(t *testing.T, setName, setVal, addName, addVal, rmName, existing string) {
		mod := HeaderModifier{Set: []Header{{setName, setVal}}, Add: []Header{{addName, addVal}}, Remove: []string{rmName}}
		c, err := Compile([]Spec{reqHeaders(mod)}, CompileOptions{})
		if err != nil {
			return
		}
		sk, ak, rk := http.CanonicalHeaderKey(setName), http.CanonicalHeaderKey(addName), http.CanonicalHeaderKey(rmName)
		if sk == ak || sk == rk || ak == rk || ak == "Host" || rk == "Host" {
			t.Fatalf("conflicting or invalid actions compiled: %+v", mod)
		}
		r := newRequest("GET", "/")
		r.Header[ak] = []string{existing}
		r.Header[rk] = []string{existing}
		var st State
		c.Request(httptest.NewRecorder(), r, RequestInfo{}, &st)
		if sk == "Host" {
			if r.Host != setVal {
				t.Fatalf("Host = %q, want %q", r.Host, setVal)
			}
		} else if got := r.Header[sk]; len(got) != 1 || got[0] != setVal {
			t.Fatalf("%s = %q, want [%q]", sk, got, setVal)
		}
		if got := r.Header[ak]; len(got) != 2 || got[0] != existing || got[1] != addVal {
			t.Fatalf("%s = %q, want [%q %q]", ak, got, existing, addVal)
		}
		if _, ok := r.Header[rk]; ok {
			t.Fatalf("%s not removed", rk)
		}
	})
}
