package router

import (
	"errors"
	"strconv"
)

// ErrBadPath is returned (possibly wrapped in a [*PathError]) for a request
// path the router refuses to interpret. A proxy answers it with 400.
var ErrBadPath = errors.New("bad request path")

// PathError describes why [NormalizePath] refused a path.
type PathError struct {
	// Path is the refused input.
	Path string
	// Offset is the byte offset of the offending character in Path.
	Offset int
	// Reason says what was wrong, e.g. "encoded slash".
	Reason string
}

// Error implements error.
func (e *PathError) Error() string {
	return "bad request path " + strconv.Quote(e.Path) + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns [ErrBadPath].
func (e *PathError) Unwrap() error { return ErrBadPath }

// pathFault is why a path was refused; faultNone means it was accepted.
type pathFault uint8

const (
	faultNone pathFault = iota
	faultNotAbsolute
	faultBadEscape
	faultEncodedSlash
	faultEncodedBackslash
	faultEncodedNUL
	faultBackslash
	faultControl
)

func (f pathFault) String() string {
	switch f {
	case faultNotAbsolute:
		return "path does not begin with '/'"
	case faultBadEscape:
		return "invalid percent-encoding"
	case faultEncodedSlash:
		return "encoded slash (%2F)"
	case faultEncodedBackslash:
		return "encoded backslash (%5C)"
	case faultEncodedNUL:
		return "encoded NUL (%00)"
	case faultBackslash:
		return "backslash"
	case faultControl:
		return "control character"
	}
	return "ok"
}

// Byte classes used by the path normaliser.
const (
	classUnreserved = 1 << iota // ALPHA DIGIT - . _ ~
	classPchar                  // unreserved, sub-delims, ':' and '@'
)

var byteClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = classUnreserved | classPchar
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = classUnreserved | classPchar
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = classUnreserved | classPchar
	}
	for _, c := range "-._~" {
		t[c] = classUnreserved | classPchar
	}
	for _, c := range "!$&'()*+,;=:@" {
		t[c] = classPchar
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const upperHex = "0123456789ABCDEF"

// NormalizePath returns the canonical form of a request path given in its
// escaped (wire) form, or a [*PathError] wrapping [ErrBadPath].
//
// See the package documentation for the exact rules. The result is the
// input itself (no allocation) when the input is already canonical.
// NormalizePath is idempotent.
func NormalizePath(raw string) (string, error) {
	p, fault, off := normalizePath(raw)
	if fault != faultNone {
		return "", &PathError{Path: raw, Offset: off, Reason: fault.String()}
	}
	return p, nil
}

// normalizePath is NormalizePath without the error allocation.
func normalizePath(p string) (string, pathFault, int) {
	if p == "" {
		return "/", faultNone, 0
	}
	if p[0] != '/' {
		return "", faultNotAbsolute, 0
	}
	if isCanonicalPath(p) {
		return p, faultNone, 0
	}
	return normalizeSlow(p)
}

// isCanonicalPath reports whether p (which begins with '/') is already in
// canonical form: only pchar bytes and '/', escapes in upper case that
// decode to bytes which stay encoded, no empty segment except a final one,
// and no dot segments.
func isCanonicalPath(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if byteClass[c]&classPchar != 0 {
			continue
		}
		switch c {
		case '/':
			r := p[i+1:]
			if len(r) == 0 {
				return true
			}
			if r[0] == '/' {
				return false
			}
			if r[0] == '.' {
				if len(r) == 1 || r[1] == '/' {
					return false
				}
				if r[1] == '.' && (len(r) == 2 || r[2] == '/') {
					return false
				}
			}
		case '%':
			if i+2 >= len(p) {
				return false
			}
			h, l := p[i+1], p[i+2]
			if !isUpperHex(h) || !isUpperHex(l) {
				return false
			}
			hv, _ := unhex(h)
			lv, _ := unhex(l)
			b := hv<<4 | lv
			if byteClass[b]&classUnreserved != 0 || b == '/' || b == '\\' || b == 0 {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

func isUpperHex(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'F'
}

// normalizeSlow rewrites p segment by segment into a new buffer.
func normalizeSlow(p string) (string, pathFault, int) {
	buf := make([]byte, 0, len(p)+8)
	for i := 0; i < len(p); {
		// p[i] == '/'.
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		last := j == len(p)
		mark := len(buf)
		buf = append(buf, '/')
		var fault pathFault
		var off int
		buf, fault, off = appendCanonSegment(buf, p[i+1:j])
		if fault != faultNone {
			return "", fault, i + 1 + off
		}
		seg := buf[mark+1:]
		switch {
		case len(seg) == 0:
			if !last {
				buf = buf[:mark] // collapse "//"
			}
		case len(seg) == 1 && seg[0] == '.':
			buf = buf[:mark]
			if last {
				buf = append(buf, '/')
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			buf = buf[:mark]
			for k := len(buf) - 1; k >= 0; k-- {
				if buf[k] == '/' {
					buf = buf[:k]
					break
				}
			}
			if last {
				buf = append(buf, '/')
			}
		}
		i = j
	}
	if len(buf) == 0 {
		return "/", faultNone, 0
	}
	return string(buf), faultNone, 0
}

// appendCanonSegment appends the canonical form of one path segment (no
// '/' in seg) to buf. On a fault it returns the offset within seg.
func appendCanonSegment(buf []byte, seg string) ([]byte, pathFault, int) {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '%':
			if i+2 >= len(seg) {
				return buf, faultBadEscape, i
			}
			hv, ok1 := unhex(seg[i+1])
			lv, ok2 := unhex(seg[i+2])
			if !ok1 || !ok2 {
				return buf, faultBadEscape, i
			}
			b := hv<<4 | lv
			switch {
			case b == '/':
				return buf, faultEncodedSlash, i
			case b == '\\':
				return buf, faultEncodedBackslash, i
			case b == 0:
				return buf, faultEncodedNUL, i
			case byteClass[b]&classUnreserved != 0:
				buf = append(buf, b)
			default:
				buf = append(buf, '%', upperHex[b>>4], upperHex[b&15])
			}
			i += 2
		case c == '\\':
			return buf, faultBackslash, i
		case c < 0x20 || c == 0x7f:
			return buf, faultControl, i
		case byteClass[c]&classPchar != 0:
			buf = append(buf, c)
		default:
			buf = append(buf, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return buf, faultNone, 0
}
