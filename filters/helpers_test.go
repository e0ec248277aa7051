package filters

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// mustCompile compiles specs or fails the test.
func mustCompile(t testing.TB, specs []Spec, opts CompileOptions) *Chain {
	t.Helper()
	c, err := Compile(specs, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

// newRequest builds a server-side request for target with the given headers
// (name, value pairs; a name may repeat).
func newRequest(method, target string, kv ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

// hdr builds an http.Header from name, values... groups: hdr("A", "1", "2")
// is not supported; use pairs and repeat the name for several values.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// configErrorOf returns the first *ConfigError in err.
func configErrorOf(err error) *ConfigError {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// Pointer-free helpers for specs.
func reqHeaders(m HeaderModifier) Spec {
	return Spec{Type: TypeRequestHeaderModifier, RequestHeaderModifier: &m}
}

func respHeaders(m HeaderModifier) Spec {
	return Spec{Type: TypeResponseHeaderModifier, ResponseHeaderModifier: &m}
}

func redirectSpec(r Redirect) Spec { return Spec{Type: TypeRequestRedirect, RequestRedirect: &r} }

func rewriteSpec(r URLRewrite) Spec { return Spec{Type: TypeURLRewrite, URLRewrite: &r} }

func corsSpec(c CORS) Spec { return Spec{Type: TypeCORS, CORS: &c} }

func mirrorSpec(m Mirror) Spec { return Spec{Type: TypeRequestMirror, RequestMirror: &m} }

func prefixPath(v string) *PathModifier {
	return &PathModifier{Type: ReplacePrefixMatch, ReplacePrefixMatch: v}
}

func fullPath(v string) *PathModifier {
	return &PathModifier{Type: ReplaceFullPath, ReplaceFullPath: v}
}

// discardLogger returns a logger that drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTLSState returns the TLS state of a connection without client
// certificates.
func newTLSState() *tls.ConnectionState { return &tls.ConnectionState{} }
