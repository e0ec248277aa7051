package h2server

import (
	"math/rand/v2"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParsePathMatchesURL checks that parsePath gives the URL that
// url.ParseRequestURI gives, for paths validPath accepts: listed ones and
// random ones over the bytes that matter (escapes, "?", "#", delimiters).
func TestParsePathMatchesURL(t *testing.T) {
	paths := []string{
		"*", "/", "/a/b", "/a/b?", "/a/b?x=1&y=2", "/a?b?c", "/%41", "/a%2fb", "/a b",
		"//host/path", "/a:b@c", "/~user/x.y_z-1", "/a;b=c,d", "/{x}", "/a\"b", "/a|b",
		"/a^b", "/a`b", "/a\\b", "/a<b>", "/a?q=%zz", "/%zz", "/a??", "/?", "/a/./../b",
		"/a?x=[1]", "/[::1]", "/a'b(c)*!$+",
	}
	const alphabet = "aZ09-._~!$&'()*+,;=/:@?%2fF<>\"{}|\\^`[]#"
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := []byte{'/'}
		for range r.IntN(12) {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		paths = append(paths, string(b))
	}
	checked := 0
	for _, p := range paths {
		if !validPath(p) {
			continue
		}
		checked++
		want, err := url.ParseRequestURI(p)
		var got url.URL
		ok := parsePath(p, &got)
		if ok != (err == nil) {
			t.Fatalf("parsePath(%q) ok=%v, ParseRequestURI error %v", p, ok, err)
		}
		if ok {
			if d := cmp.Diff(*want, got); d != "" {
				t.Fatalf("parsePath(%q) differs from ParseRequestURI (-want +got):\n%s", p, d)
			}
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d paths checked", checked)
	}
}
