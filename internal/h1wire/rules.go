package h1wire

import (
	"strings"

	"golang.org/x/net/http/httpguts"
)

// IsTokenByte reports whether c is a tchar of RFC 9110 section 5.6.2.
func IsTokenByte(c byte) bool { return httpguts.IsTokenRune(rune(c)) }

// ValidToken reports whether s is a non-empty token (a method, a field
// name, a list element that must be one).
func ValidToken(s string) bool { return httpguts.ValidHeaderFieldName(s) }

// ValidValueByte reports whether c may appear in a field value: VCHAR,
// obs-text, SP and HTAB. NUL, CR, LF, DEL and the other controls may not.
func ValidValueByte(c byte) bool { return c == '\t' || (c >= ' ' && c != 0x7f) }

// ValidFieldValue reports whether every byte of s satisfies ValidValueByte.
func ValidFieldValue(s string) bool { return httpguts.ValidHeaderFieldValue(s) }

// IsOWS reports whether c is optional whitespace: SP or HTAB.
func IsOWS(c byte) bool { return c == ' ' || c == '\t' }

// TrimOWS removes leading and trailing spaces and tabs.
func TrimOWS(s string) string {
	for len(s) > 0 && IsOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && IsOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// ForEachToken calls f with each non-empty element of a comma-separated
// list, trimmed of optional whitespace.
func ForEachToken(v string, f func(string)) {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = TrimOWS(t); t != "" {
			f(t)
		}
	}
}

// HasToken reports whether any of the comma-separated values holds token,
// ASCII case-insensitively.
func HasToken(values []string, token string) bool {
	return httpguts.HeaderValuesContainsToken(values, token)
}

// ValidHost checks a Host value (or the authority of a request target):
// uri-host [ ":" port ], where the host is a bracketed IP literal or a
// name of the characters httpguts.ValidHostHeader allows, and the port is
// at most five digits. The empty string is valid: an HTTP/1.0 request
// may have no host.
func ValidHost(h string) bool {
	if !httpguts.ValidHostHeader(h) {
		return false
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || strings.ContainsAny(h[1:end], "[]") {
			return false
		}
		rest := h[end+1:]
		if rest == "" {
			return true
		}
		return rest[0] == ':' && ValidPort(rest[1:])
	}
	if strings.ContainsAny(h, "[]") {
		return false
	}
	_, port, ok := strings.Cut(h, ":")
	if !ok {
		return true
	}
	return ValidPort(port)
}

// ValidPort reports whether p is *DIGIT of at most five digits.
func ValidPort(p string) bool {
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !IsDigit(p[i]) {
			return false
		}
	}
	return true
}

// IsDigit reports whether c is an ASCII decimal digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// ParseLength parses a Content-Length value (one element of it): 1*DIGIT, at most 2^63-1.
// Signs, spaces, lists and hexadecimal are refused.
func ParseLength(v string) (int64, bool) {
	if v == "" || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		if !IsDigit(v[i]) {
			return 0, false
		}
		n = n*10 + uint64(v[i]-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
