package filters

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// nopWriter is a ResponseWriter that keeps one header map and discards the
// rest, so benchmarks measure the filters and not httptest.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

func benchRequest(target string, kv ...string) *http.Request {
	u, err := url.ParseRequestURI(target)
	if err != nil {
		panic(err)
	}
	r := &http.Request{Method: "GET", URL: u, Host: "gw.example", Header: http.Header{}, Body: http.NoBody}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header[http.CanonicalHeaderKey(kv[i])] = []string{kv[i+1]}
	}
	return r
}

func BenchmarkChainEmpty(b *testing.B) {
	c := mustCompile(b, nil, CompileOptions{})
	r := benchRequest("/a/b")
	w := &nopWriter{h: http.Header{}}
	h := http.Header{}
	var st State
	b.ReportAllocs()
	for b.Loop() {
		c.Request(w, r, RequestInfo{}, &st)
		c.Response(h, &st)
	}
}

// The conformance "multiple" modifier: 2 set, 3 add, 2 remove on a request
// with 8 headers; the request is restored after each iteration without
// allocating.
func BenchmarkRequestHeaderModifier(b *testing.B) {
	c := mustCompile(b, []Spec{reqHeaders(modMul)}, CompileOptions{})
	r := benchRequest("/multiple", "Accept", "*/*", "User-Agent", "bench", "X-Header-Set-2", "set-val-2",
		"X-Header-Remove-1", "r1", "X-Header-Remove-2", "r2", "Another-Header", "v", "Cookie", "a=b", "X-Request-Id", "1")
	rm1, rm2 := r.Header["X-Header-Remove-1"], r.Header["X-Header-Remove-2"]
	w := &nopWriter{h: http.Header{}}
	var st State
	b.ReportAllocs()
	for b.Loop() {
		c.Request(w, r, RequestInfo{}, &st)
		delete(r.Header, "X-Header-Add-1")
		delete(r.Header, "X-Header-Add-2")
		delete(r.Header, "X-Header-Add-3")
		r.Header["X-Header-Remove-1"], r.Header["X-Header-Remove-2"] = rm1, rm2
	}
}

func BenchmarkResponseHeaderModifier(b *testing.B) {
	c := mustCompile(b, []Spec{respHeaders(modMul)}, CompileOptions{})
	r := benchRequest("/multiple")
	w := &nopWriter{h: http.Header{}}
	h := hdr("Content-Type", "text/plain", "X-Header-Remove-1", "r1", "Date", "now")
	rm1 := h["X-Header-Remove-1"]
	var st State
	b.ReportAllocs()
	for b.Loop() {
		c.Request(w, r, RequestInfo{}, &st)
		c.Response(h, &st)
		delete(h, "X-Header-Add-1")
		delete(h, "X-Header-Add-2")
		delete(h, "X-Header-Add-3")
		h["X-Header-Remove-1"] = rm1
	}
}

func BenchmarkRedirect(b *testing.B) {
	for _, bc := range []struct {
		name string
		rd   Redirect
		info RequestInfo
	}{
		{"scheme", Redirect{Scheme: SchemeHTTPS}, http80},
		{"prefix+port", Redirect{Path: prefixPath("/new"), Port: 8443}, RequestInfo{ListenerPort: 8080, PathPrefix: "/old"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := mustCompile(b, []Spec{redirectSpec(bc.rd)}, CompileOptions{})
			r := benchRequest("/old/items/42?page=2")
			w := &nopWriter{h: http.Header{}}
			var st State
			b.ReportAllocs()
			for b.Loop() {
				c.Request(w, r, bc.info, &st)
			}
		})
	}
}

func BenchmarkURLRewrite(b *testing.B) {
	for _, bc := range []struct {
		name string
		rw   URLRewrite
	}{
		{"host", URLRewrite{Hostname: "internal.example"}},
		{"prefix", URLRewrite{Path: prefixPath("/v2")}},
		{"full", URLRewrite{Path: fullPath("/static/index.html")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := mustCompile(b, []Spec{rewriteSpec(bc.rw)}, CompileOptions{})
			r := benchRequest("/api/items/42?x=1")
			orig := *r.URL
			w := &nopWriter{h: http.Header{}}
			info := RequestInfo{PathPrefix: "/api"}
			var st State
			b.ReportAllocs()
			for b.Loop() {
				c.Request(w, r, info, &st)
				*r.URL = orig
			}
		})
	}
}

func BenchmarkCORS(b *testing.B) {
	c := mustCompile(b, []Spec{corsSpec(corsMultiple)}, CompileOptions{})
	b.Run("preflight", func(b *testing.B) {
		r := benchRequest("/cors", "Origin", "https://www.bar.com", "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "x-header-1")
		r.Method = "OPTIONS"
		w := &nopWriter{h: http.Header{}}
		var st State
		b.ReportAllocs()
		for b.Loop() {
			c.Request(w, r, RequestInfo{}, &st)
			clear(w.h)
		}
	})
	b.Run("actual", func(b *testing.B) {
		r := benchRequest("/cors", "Origin", "https://www.foo.com")
		w := &nopWriter{h: http.Header{}}
		h := http.Header{}
		var st State
		b.ReportAllocs()
		for b.Loop() {
			c.Request(w, r, RequestInfo{}, &st)
			c.Response(h, &st)
			clear(h)
		}
	})
	b.Run("no-origin", func(b *testing.B) {
		r := benchRequest("/cors")
		w := &nopWriter{h: http.Header{}}
		h := http.Header{}
		var st State
		b.ReportAllocs()
		for b.Loop() {
			c.Request(w, r, RequestInfo{}, &st)
			c.Response(h, &st)
		}
	})
}

// discardSender answers every mirror with an empty response.
type discardSender struct{}

func (discardSender) SendMirror(string, *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

func BenchmarkMirror(b *testing.B) {
	b.Run("not-sampled", func(b *testing.B) {
		m, _ := NewMirrorer(MirrorOptions{Sender: discardSender{}, Rand: func(n uint64) uint64 { return n - 1 }})
		c := mustCompile(b, []Spec{mirrorSpec(Mirror{Backend: "b", Fraction: Percent(10)})}, CompileOptions{Mirrorer: m})
		r := benchRequest("/", "Accept", "*/*")
		w := &nopWriter{h: http.Header{}}
		var st State
		b.ReportAllocs()
		for b.Loop() {
			c.Request(w, r, RequestInfo{}, &st)
		}
	})
	b.Run("sampled-no-body", func(b *testing.B) {
		m, _ := NewMirrorer(MirrorOptions{Sender: discardSender{}, MaxInFlight: 1 << 20})
		c := mustCompile(b, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
		r := benchRequest("/", "Accept", "*/*", "User-Agent", "bench")
		w := &nopWriter{h: http.Header{}}
		var st State
		b.ReportAllocs()
		for b.Loop() {
			c.Request(w, r, RequestInfo{}, &st)
		}
		b.StopTimer()
		_ = m.Wait(b.Context())
	})
	b.Run("sampled-1KiB-body", func(b *testing.B) {
		m, _ := NewMirrorer(MirrorOptions{Sender: discardSender{}, MaxInFlight: 1 << 20})
		c := mustCompile(b, []Spec{mirrorSpec(Mirror{Backend: "b"})}, CompileOptions{Mirrorer: m})
		body := strings.Repeat("x", 1024)
		w := &nopWriter{h: http.Header{}}
		buf := make([]byte, 4096)
		var st State
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			r := benchRequest("/upload", "Content-Type", "text/plain")
			r.Method = "POST"
			r.Body = http.NoBody
			r.Body = readCloser{strings.NewReader(body)}
			r.ContentLength = int64(len(body))
			c.Request(w, r, RequestInfo{}, &st)
			for {
				if _, err := r.Body.Read(buf); err != nil {
					break
				}
			}
			r.Body.Close()
		}
		b.StopTimer()
		_ = m.Wait(b.Context())
	})
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// A realistic rule: CORS, both header modifiers and a prefix rewrite.
func BenchmarkTypicalRule(b *testing.B) {
	c := mustCompile(b, []Spec{
		corsSpec(corsMultiple),
		reqHeaders(HeaderModifier{Set: []Header{{"X-Env", "prod"}}, Remove: []string{"X-Internal"}}),
		respHeaders(HeaderModifier{Set: []Header{{"Strict-Transport-Security", "max-age=63072000"}}, Remove: []string{"Server"}}),
		rewriteSpec(URLRewrite{Path: prefixPath("/v2")}),
	}, CompileOptions{})
	r := benchRequest("/api/items/42", "Accept", "application/json", "User-Agent", "bench")
	orig := *r.URL
	w := &nopWriter{h: http.Header{}}
	h := hdr("Content-Type", "application/json", "Server", "backend")
	server := h["Server"]
	info := RequestInfo{Scheme: SchemeHTTPS, ListenerPort: 443, PathPrefix: "/api"}
	var st State
	b.ReportAllocs()
	for b.Loop() {
		c.Request(w, r, info, &st)
		c.Response(h, &st)
		*r.URL = orig
		h["Server"] = server
	}
}
