package filters

import (
	"net/url"
	"strings"
)

// maxPathLen is the spec's MaxLength for replaceFullPath and
// replacePrefixMatch.
const maxPathLen = 1024

// pathOp is a compiled PathModifier; the zero value changes nothing.
type pathOp struct {
	typ PathModifierType
	// full is the escaped replacement path of ReplaceFullPath, never "".
	full string
	// prefix is the escaped ReplacePrefixMatch value with its trailing
	// slashes removed ("" for "" and "/").
	prefix string
}

// compilePath validates m; field is the path of m in error messages.
func compilePath(i int, field string, m *PathModifier) (pathOp, error) {
	switch m.Type {
	case ReplaceFullPath:
		if m.ReplacePrefixMatch != "" {
			return pathOp{}, configErr(i, field+".replacePrefixMatch", ErrInvalid, "must be empty when type is ReplaceFullPath")
		}
		p := m.ReplaceFullPath
		if p == "" {
			p = "/"
		}
		if err := checkPathValue(p); err != "" {
			return pathOp{}, configErr(i, field+".replaceFullPath", ErrInvalid, "%q: %s", m.ReplaceFullPath, err)
		}
		return pathOp{typ: ReplaceFullPath, full: p}, nil
	case ReplacePrefixMatch:
		if m.ReplaceFullPath != "" {
			return pathOp{}, configErr(i, field+".replaceFullPath", ErrInvalid, "must be empty when type is ReplacePrefixMatch")
		}
		p := m.ReplacePrefixMatch
		if p != "" {
			if err := checkPathValue(p); err != "" {
				return pathOp{}, configErr(i, field+".replacePrefixMatch", ErrInvalid, "%q: %s", p, err)
			}
		}
		return pathOp{typ: ReplacePrefixMatch, prefix: trimTrailingSlashes(p)}, nil
	case PathModifierUnset:
		return pathOp{}, configErr(i, field+".type", ErrInvalid, "must be set")
	}
	return pathOp{}, configErr(i, field+".type", ErrUnsupported, "%v", m.Type)
}

// checkPathValue reports why p is not an absolute path in escaped form, or
// "" if it is one: it must start with "/", hold only characters allowed in a
// URI path (RFC 3986 pchar and "/") with well-formed %XX escapes, and be at
// most 1024 bytes long.
func checkPathValue(p string) string {
	if len(p) > maxPathLen {
		return "longer than 1024 bytes"
	}
	if p == "" || p[0] != '/' {
		return "must start with \"/\""
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "malformed %-escape"
			}
			i += 2
		case isPathChar(c):
		default:
			return "character " + strconvQuoteByte(c) + " is not allowed in a path (escape it)"
		}
	}
	return ""
}

// isPathChar reports whether c may appear unescaped in a URI path:
// unreserved, sub-delims, ':', '@' and '/'.
func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

func strconvQuoteByte(c byte) string {
	const hex = "0123456789ABCDEF"
	if c >= 0x20 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	return "0x" + string([]byte{hex[c>>4], hex[c&15]})
}

// trimTrailingSlashes removes every trailing "/" from p.
func trimTrailingSlashes(p string) string {
	return strings.TrimRight(p, "/")
}

// apply computes the new escaped path for the request path esc (escaped
// form) and the matched prefix. The result is head+tail; it is returned in
// two pieces so that callers building a larger string concatenate once.
// ok is false when the path is to be left unchanged: no modifier, or a
// ReplacePrefixMatch whose prefix does not match esc at a segment boundary.
func (p *pathOp) apply(esc, matchPrefix string) (head, tail string, ok bool) {
	switch p.typ {
	case ReplaceFullPath:
		return p.full, "", true
	case ReplacePrefixMatch:
		rest, ok := cutPathPrefix(esc, matchPrefix)
		if !ok {
			return "", "", false
		}
		if p.prefix == "" && rest == "" {
			return "/", "", true
		}
		return p.prefix, rest, true
	}
	return "", "", false
}

// cutPathPrefix returns the part of the escaped path esc after the path
// prefix prefix, matched on whole segments: a trailing "/" of prefix is
// ignored and the rest is either empty or starts with "/". "" and "/" match
// every absolute path. Escapes are compared by the bytes they stand for, so
// "/%66oo" matches the prefix "/foo"; the rest keeps its original escaping.
func cutPathPrefix(esc, prefix string) (rest string, ok bool) {
	if esc == "" || esc[0] != '/' {
		return "", false
	}
	p := trimTrailingSlashes(prefix)
	if strings.HasPrefix(esc, p) {
		rest = esc[len(p):]
	} else if rest, ok = cutDecodedPrefix(esc, p); !ok {
		return "", false
	}
	if rest != "" && rest[0] != '/' {
		return "", false
	}
	return rest, true
}

// cutDecodedPrefix compares esc and p byte by byte after decoding %XX
// escapes on both sides and returns what follows p in esc.
func cutDecodedPrefix(esc, p string) (string, bool) {
	e, k := 0, 0
	for k < len(p) {
		if e >= len(esc) {
			return "", false
		}
		a, wa := decodeAt(esc, e)
		b, wb := decodeAt(p, k)
		if a != b {
			return "", false
		}
		e += wa
		k += wb
	}
	return esc[e:], true
}

// decodeAt returns the byte that s[i:] starts with, decoding a %XX escape,
// and how many bytes of s it used.
func decodeAt(s string, i int) (byte, int) {
	if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
		return unhex(s[i+1])<<4 | unhex(s[i+2]), 3
	}
	return s[i], 1
}

// setURLPath stores the escaped path head+tail in u, keeping its exact
// escaping in u.RawPath when Go's default encoding would differ.
func setURLPath(u *url.URL, head, tail string) {
	esc := head + tail
	dec, err := url.PathUnescape(esc)
	if err != nil {
		// Not reachable with validated pieces; keep the bytes as they are.
		u.Path, u.RawPath = esc, ""
		return
	}
	u.Path = dec
	if needsRawPath(esc) {
		u.RawPath = esc
	} else {
		u.RawPath = ""
	}
}

// needsRawPath reports whether the escaped path esc differs from what
// url.URL would produce from its decoded form: it has escapes, or
// characters that are valid in a path but that Go escapes.
func needsRawPath(esc string) bool {
	return strings.ContainsAny(esc, "%!'()*[]")
}
