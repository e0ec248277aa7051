package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "/"},
		{"/", "/"},
		{"/a", "/a"},
		{"/a/", "/a/"},
		{"/a/b/c", "/a/b/c"},
		// Unreserved escapes are decoded, in either case.
		{"/%61dmin", "/admin"},
		{"/%41%42%43", "/ABC"},
		{"/%7euser", "/~user"},
		{"/%2D%2e%5F%7E", "/-._~"},
		// Other escapes are kept, upper-cased.
		{"/a%20b", "/a%20b"},
		{"/a%3ab", "/a%3Ab"},
		{"/%e2%82%ac", "/%E2%82%AC"},
		{"/%25", "/%25"},
		{"/%3F%23", "/%3F%23"},
		// Raw bytes not allowed in a segment are encoded.
		{"/a b", "/a%20b"},
		{"/caf\xc3\xa9", "/caf%C3%A9"},
		{"/a|b{c}", "/a%7Cb%7Bc%7D"},
		{"/[x]", "/%5Bx%5D"},
		// Sub-delimiters, ':' and '@' stay raw.
		{"/!$&'()*+,;=:@", "/!$&'()*+,;=:@"},
		// Empty segments.
		{"//", "/"},
		{"//admin", "/admin"},
		{"/a//b", "/a/b"},
		{"/a///", "/a/"},
		{"///a///b///", "/a/b/"},
		// Dot segments.
		{"/.", "/"},
		{"/..", "/"},
		{"/./admin", "/admin"},
		{"/../admin", "/admin"},
		{"/../../../admin", "/admin"},
		{"/x/../admin", "/admin"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/a/b/../", "/a/"},
		{"/a/./b/../../c", "/c"},
		{"/%2e/admin", "/admin"},
		{"/%2e%2E/admin", "/admin"},
		{"/x/.%2e/admin", "/admin"},
		{"/a/.../b", "/a/.../b"},
		{"/a/.b/..c", "/a/.b/..c"},
		{"/.well-known/x", "/.well-known/x"},
		{"//./..//a/.//", "/a/"},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if err != nil {
			t.Errorf("NormalizePath(%q): unexpected error %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again, err := NormalizePath(got); err != nil || again != got {
			t.Errorf("NormalizePath(%q) = %q, %v; not idempotent", got, again, err)
		}
	}
}

func TestNormalizePathRefused(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		reason string
	}{
		{"*", 0, "path does not begin with '/'"},
		{"a/b", 0, "path does not begin with '/'"},
		{"http://x/a", 0, "path does not begin with '/'"},
		{"/a%", 2, "invalid percent-encoding"},
		{"/a%4", 2, "invalid percent-encoding"},
		{"/a%zz", 2, "invalid percent-encoding"},
		{"/a%g1/b", 2, "invalid percent-encoding"},
		{"/admin%2Fx", 6, "encoded slash (%2F)"},
		{"/admin%2fx", 6, "encoded slash (%2F)"},
		{"/a/%5c", 3, "encoded backslash (%5C)"},
		{"/a%00", 2, "encoded NUL (%00)"},
		{"/a\\b", 2, "backslash"},
		{"/a\x00", 2, "control character"},
		{"/a\nb", 2, "control character"},
		{"/a\x7f", 2, "control character"},
		{"/ok/../b%2F", 8, "encoded slash (%2F)"},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if err == nil {
			t.Errorf("NormalizePath(%q) = %q, want error", tt.in, got)
			continue
		}
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("NormalizePath(%q) error %v does not wrap ErrBadPath", tt.in, err)
		}
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Fatalf("NormalizePath(%q) error %T is not *PathError", tt.in, err)
		}
		want := &PathError{Path: tt.in, Offset: tt.offset, Reason: tt.reason}
		if diff := cmp.Diff(want, pe); diff != "" {
			t.Errorf("NormalizePath(%q) error (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNormalizePathNoAllocWhenCanonical(t *testing.T) {
	for _, p := range []string{"/", "/api/v1/users/123", "/a%20b/c%3A", "/.well-known/acme", "/a/b/"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := NormalizePath(p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("NormalizePath(%q): %v allocs, want 0", p, allocs)
		}
	}
}

// refNormalize is a deliberately naive reimplementation of the documented
// normalisation: split on '/', canonicalise each segment unit by unit,
// then resolve segments with a stack.
func refNormalize(p string) (string, bool) {
	const unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
	const pchar = unreserved + "!$&'()*+,;=:@"
	if p == "" {
		return "/", true
	}
	if p[0] != '/' {
		return "", false
	}
	segs := strings.Split(p[1:], "/")
	var out []string
	trailing := false
	for idx, s := range segs {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '%':
				if i+3 > len(s) {
					return "", false
				}
				v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
				if err != nil {
					return "", false
				}
				d := byte(v)
				switch {
				case d == '/' || d == '\\' || d == 0:
					return "", false
				case strings.IndexByte(unreserved, d) >= 0:
					b.WriteByte(d)
				default:
					fmt.Fprintf(&b, "%%%02X", d)
				}
				i += 2
			case c == '\\' || c < 0x20 || c == 0x7f:
				return "", false
			case strings.IndexByte(pchar, c) >= 0:
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		last := idx == len(segs)-1
		switch seg := b.String(); seg {
		case "", ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, seg)
			trailing = false
		}
	}
	res := "/" + strings.Join(out, "/")
	if trailing && len(out) > 0 {
		res += "/"
	}
	return res, true
}

func TestRefNormalizeAgreesOnTable(t *testing.T) {
	for _, in := range []string{"/a/b/..", "//", "/a/./", "/%2e%2e", "/x/%7E", "/a b/", "/%zz", "/%2f"} {
		got, gerr := NormalizePath(in)
		want, ok := refNormalize(in)
		if (gerr == nil) != ok || got != want {
			t.Errorf("%q: NormalizePath = %q, %v; reference = %q, %v", in, got, gerr, want, ok)
		}
	}
}

// checkCanonical verifies the documented shape of a normalised path.
func checkCanonical(t *testing.T, in, p string) {
	t.Helper()
	if !strings.HasPrefix(p, "/") {
		t.Fatalf("NormalizePath(%q) = %q: not absolute", in, p)
	}
	if strings.Contains(p, "//") {
		t.Fatalf("NormalizePath(%q) = %q: contains //", in, p)
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("NormalizePath(%q) = %q: dot segment", in, p)
		}
	}
	if !isCanonicalPath(p) {
		t.Fatalf("NormalizePath(%q) = %q: not canonical", in, p)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "", "/a/../b", "//a//", "/%61%2e%2E/", "/%2F", "/a%zz", "/\\", "/é", "/a/./b/../../..", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizePath(in)
		want, ok := refNormalize(in)
		if (err == nil) != ok {
			t.Fatalf("NormalizePath(%q) error %v; reference ok=%v (%q)", in, err, ok, want)
		}
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v does not wrap ErrBadPath", err)
			}
			return
		}
		if got != want {
			t.Fatalf("NormalizePath(%q) = %q, reference %q", in, got, want)
		}
		checkCanonical(t, in, got)
		again, err := NormalizePath(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}
