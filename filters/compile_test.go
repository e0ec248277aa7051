package filters

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompileErrors(t *testing.T) {
	okHdr := reqHeaders(HeaderModifier{Set: []Header{{"X", "1"}}})
	m, err := NewMirrorer(MirrorOptions{Sender: &recordingSender{}})
	if err != nil {
		t.Fatal(err)
	}
	withMirrorer := CompileOptions{Mirrorer: m}
	type want struct {
		Index int
		Field string
	}
	tests := []struct {
		name  string
		specs []Spec
		opts  CompileOptions
		want  want
		kind  error
		msg   string // substring of the message
	}{
		{name: "unset type", specs: []Spec{{}}, want: want{0, "type"}, kind: ErrUnsupported},
		{name: "unknown type", specs: []Spec{{Type: 42}}, want: want{0, "type"}, kind: ErrUnsupported, msg: "Type(42)"},
		{name: "missing config", specs: []Spec{okHdr, {Type: TypeRequestRedirect}},
			want: want{1, "requestRedirect"}, kind: ErrInvalid, msg: "must be specified"},
		{name: "config of another type", specs: []Spec{{Type: TypeURLRewrite, URLRewrite: &URLRewrite{}, CORS: &CORS{}}},
			want: want{0, "cors"}, kind: ErrInvalid, msg: "must be nil"},

		{name: "bad header name", specs: []Spec{reqHeaders(HeaderModifier{Set: []Header{{"X Y", "1"}}})},
			want: want{0, "requestHeaderModifier.set[0].name"}, kind: ErrInvalid},
		{name: "empty header name", specs: []Spec{respHeaders(HeaderModifier{Remove: []string{""}})},
			want: want{0, "responseHeaderModifier.remove[0]"}, kind: ErrInvalid},
		{name: "bad header value", specs: []Spec{reqHeaders(HeaderModifier{Add: []Header{{"X", "a\r\nInjected: 1"}}})},
			want: want{0, "requestHeaderModifier.add[0].value"}, kind: ErrInvalid},
		{name: "two actions on one header", specs: []Spec{reqHeaders(HeaderModifier{Set: []Header{{"X-A", "1"}}, Remove: []string{"x-a"}})},
			want: want{0, "requestHeaderModifier.remove[0]"}, kind: ErrInvalid, msg: "requestHeaderModifier.set[0].name"},
		{name: "same header twice", specs: []Spec{respHeaders(HeaderModifier{Add: []Header{{"X-A", "1"}, {"X-a", "2"}}})},
			want: want{0, "responseHeaderModifier.add[1].name"}, kind: ErrInvalid},
		{name: "set Host to a bad value", specs: []Spec{reqHeaders(HeaderModifier{Set: []Header{{"Host", "a b"}}})},
			want: want{0, "requestHeaderModifier.set[0].value"}, kind: ErrInvalid},
		{name: "add Host", specs: []Spec{reqHeaders(HeaderModifier{Add: []Header{{"Host", "h"}}})},
			want: want{0, "requestHeaderModifier.add[0].name"}, kind: ErrUnsupported},

		{name: "status code", specs: []Spec{redirectSpec(Redirect{StatusCode: 305})},
			want: want{0, "requestRedirect.statusCode"}, kind: ErrUnsupported, msg: "305"},
		{name: "scheme", specs: []Spec{redirectSpec(Redirect{Scheme: 9})},
			want: want{0, "requestRedirect.scheme"}, kind: ErrUnsupported},
		{name: "redirect hostname", specs: []Spec{redirectSpec(Redirect{Hostname: "Example.org"})},
			want: want{0, "requestRedirect.hostname"}, kind: ErrInvalid},
		{name: "redirect hostname with port", specs: []Spec{redirectSpec(Redirect{Hostname: "example.org:80"})},
			want: want{0, "requestRedirect.hostname"}, kind: ErrInvalid},
		{name: "path type unset", specs: []Spec{redirectSpec(Redirect{Path: &PathModifier{}})},
			want: want{0, "requestRedirect.path.type"}, kind: ErrInvalid},
		{name: "path type unknown", specs: []Spec{rewriteSpec(URLRewrite{Path: &PathModifier{Type: 7}})},
			want: want{0, "urlRewrite.path.type"}, kind: ErrUnsupported},
		{name: "full path not absolute", specs: []Spec{rewriteSpec(URLRewrite{Path: fullPath("foo")})},
			want: want{0, "urlRewrite.path.replaceFullPath"}, kind: ErrInvalid},
		{name: "full path with query", specs: []Spec{redirectSpec(Redirect{Path: fullPath("/a?b")})},
			want: want{0, "requestRedirect.path.replaceFullPath"}, kind: ErrInvalid},
		{name: "prefix with bad escape", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/a%zz")})},
			want: want{0, "urlRewrite.path.replacePrefixMatch"}, kind: ErrInvalid},
		{name: "prefix with CRLF", specs: []Spec{rewriteSpec(URLRewrite{Path: prefixPath("/a\r\nb")})},
			want: want{0, "urlRewrite.path.replacePrefixMatch"}, kind: ErrInvalid},
		{name: "path too long", specs: []Spec{rewriteSpec(URLRewrite{Path: fullPath("/" + strings.Repeat("a", 1024))})},
			want: want{0, "urlRewrite.path.replaceFullPath"}, kind: ErrInvalid},
		{name: "both path fields", specs: []Spec{rewriteSpec(URLRewrite{Path: &PathModifier{Type: ReplaceFullPath, ReplaceFullPath: "/a", ReplacePrefixMatch: "/b"}})},
			want: want{0, "urlRewrite.path.replacePrefixMatch"}, kind: ErrInvalid},
		{name: "rewrite hostname", specs: []Spec{rewriteSpec(URLRewrite{Hostname: "-bad.example"})},
			want: want{0, "urlRewrite.hostname"}, kind: ErrInvalid},

		{name: "redirect and rewrite", specs: []Spec{rewriteSpec(URLRewrite{Hostname: "a"}), okHdr, redirectSpec(Redirect{})},
			want: want{2, "type"}, kind: ErrIncompatible},
		{name: "repeated redirect", specs: []Spec{redirectSpec(Redirect{}), redirectSpec(Redirect{})},
			want: want{1, "type"}, kind: ErrIncompatible, msg: "filters[0]"},
		{name: "repeated request modifier", specs: []Spec{okHdr, okHdr},
			want: want{1, "type"}, kind: ErrIncompatible},
		{name: "repeated CORS", specs: []Spec{corsSpec(CORS{}), corsSpec(CORS{})},
			want: want{1, "type"}, kind: ErrIncompatible},

		{name: "no mirrorer", specs: []Spec{mirrorSpec(Mirror{Backend: "b"})},
			want: want{0, "requestMirror"}, kind: ErrNoMirrorer},
		{name: "mirror backend", specs: []Spec{mirrorSpec(Mirror{})}, opts: withMirrorer,
			want: want{0, "requestMirror.backend"}, kind: ErrInvalid},
		{name: "mirror fraction", specs: []Spec{mirrorSpec(Mirror{Backend: "b", Fraction: &Fraction{3, 2}})}, opts: withMirrorer,
			want: want{0, "requestMirror.fraction.numerator"}, kind: ErrInvalid},
		{name: "mirror percent over 100", specs: []Spec{mirrorSpec(Mirror{Backend: "b", Fraction: Percent(101)})}, opts: withMirrorer,
			want: want{0, "requestMirror.fraction.numerator"}, kind: ErrInvalid},

		{name: "cors origin wildcard mixed", specs: []Spec{corsSpec(CORS{AllowOrigins: []string{"https://a.example", "*"}})},
			want: want{0, "cors.allowOrigins[1]"}, kind: ErrInvalid},
		{name: "cors origin scheme", specs: []Spec{corsSpec(CORS{AllowOrigins: []string{"ftp://a.example"}})},
			want: want{0, "cors.allowOrigins[0]"}, kind: ErrInvalid},
		{name: "cors origin path", specs: []Spec{corsSpec(CORS{AllowOrigins: []string{"https://a.example/"}})},
			want: want{0, "cors.allowOrigins[0]"}, kind: ErrInvalid},
		{name: "cors origin port", specs: []Spec{corsSpec(CORS{AllowOrigins: []string{"https://a.example:0"}})},
			want: want{0, "cors.allowOrigins[0]"}, kind: ErrInvalid},
		{name: "cors origin inner wildcard", specs: []Spec{corsSpec(CORS{AllowOrigins: []string{"https://a.*.example"}})},
			want: want{0, "cors.allowOrigins[0]"}, kind: ErrInvalid},
		{name: "cors method", specs: []Spec{corsSpec(CORS{AllowMethods: []string{"GET", "BAD METHOD"}})},
			want: want{0, "cors.allowMethods[1]"}, kind: ErrInvalid},
		{name: "cors method wildcard mixed", specs: []Spec{corsSpec(CORS{AllowMethods: []string{"GET", "*"}})},
			want: want{0, "cors.allowMethods[1]"}, kind: ErrInvalid},
		{name: "cors header", specs: []Spec{corsSpec(CORS{AllowHeaders: []string{"a:b"}})},
			want: want{0, "cors.allowHeaders[0]"}, kind: ErrInvalid},
		{name: "cors expose", specs: []Spec{corsSpec(CORS{ExposeHeaders: []string{""}})},
			want: want{0, "cors.exposeHeaders[0]"}, kind: ErrInvalid},
		{name: "cors max age", specs: []Spec{corsSpec(CORS{MaxAge: -1})},
			want: want{0, "cors.maxAge"}, kind: ErrInvalid},

		{name: "extension without registry", specs: []Spec{{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Group: "example.com", Kind: "Auth", Name: "a"}}},
			want: want{0, "extensionRef"}, kind: ErrUnknownExtension, msg: `"example.com"`},
		{name: "extension without kind", specs: []Spec{{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Name: "a"}}},
			want: want{0, "extensionRef.kind"}, kind: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compile(tc.specs, tc.opts)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			if c != nil {
				t.Error("Compile returned a chain with an error")
			}
			ce := configErrorOf(err)
			if ce == nil {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			if diff := cmp.Diff(tc.want, want{ce.Index, ce.Field}); diff != "" {
				t.Errorf("error location (-want +got):\n%s\nerror: %v", diff, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v does not wrap %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

// Every invalid filter is reported, not only the first.
func TestCompileReportsAllErrors(t *testing.T) {
	_, err := Compile([]Spec{
		redirectSpec(Redirect{StatusCode: 200}),
		reqHeaders(HeaderModifier{Set: []Header{{"", "x"}}}),
		corsSpec(CORS{MaxAge: 10}),
	}, CompileOptions{})
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		got = append(got, e.Error())
	}
	want := []string{
		"filters[0].requestRedirect.statusCode: unsupported value: 200 (want 301, 302, 303, 307 or 308)",
		`filters[1].requestHeaderModifier.set[0].name: invalid value: header name "" is not a valid token`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The valid combinations of the spec compile: repeated mirrors and
// extensions, and every filter type at most once.
func TestCompileValid(t *testing.T) {
	m, err := NewMirrorer(MirrorOptions{Sender: &recordingSender{}})
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	if err := reg.Register("example.com", "Noop", func(ExtensionRef) (Filter, error) { return noopFilter{}, nil }); err != nil {
		t.Fatal(err)
	}
	ext := Spec{Type: TypeExtensionRef, ExtensionRef: &ExtensionRef{Group: "example.com", Kind: "Noop", Name: "n"}}
	specs := []Spec{
		reqHeaders(HeaderModifier{Set: []Header{{"A", "1"}}}),
		respHeaders(HeaderModifier{Set: []Header{{"A", "1"}}}),
		rewriteSpec(URLRewrite{Hostname: "a.example", Path: prefixPath("")}),
		mirrorSpec(Mirror{Backend: "m1"}),
		mirrorSpec(Mirror{Backend: "m2", Fraction: &Fraction{0, 1}}),
		corsSpec(CORS{AllowOrigins: []string{"*"}}),
		ext, ext,
	}
	c, err := Compile(specs, CompileOptions{Mirrorer: m, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != len(specs) {
		t.Errorf("Len = %d, want %d", c.Len(), len(specs))
	}
}

func TestTypeStrings(t *testing.T) {
	got := []string{TypeUnset.String(), TypeRequestHeaderModifier.String(), TypeResponseHeaderModifier.String(),
		TypeRequestRedirect.String(), TypeURLRewrite.String(), TypeRequestMirror.String(), TypeCORS.String(),
		TypeExtensionRef.String(), Type(99).String(),
		SchemeUnset.String(), SchemeHTTP.String(), SchemeHTTPS.String(), Scheme(5).String(),
		PathModifierUnset.String(), ReplaceFullPath.String(), ReplacePrefixMatch.String(), PathModifierType(9).String()}
	want := []string{"Unset", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite",
		"RequestMirror", "CORS", "ExtensionRef", "Type(99)",
		"", "http", "https", "Scheme(5)",
		"Unset", "ReplaceFullPath", "ReplacePrefixMatch", "PathModifierType(9)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
