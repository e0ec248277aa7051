package router

import (
	"regexp"
	"strings"
)

// headerCond is a compiled header condition.
type headerCond struct {
	key    string         // canonical MIME header key
	isHost bool           // "Host": compared against Request.Host
	value  string         // Exact value, or the source of re
	re     *regexp.Regexp // non-nil for RegularExpression
}

// match reports whether req satisfies the condition. A header sent several
// times is compared as its combined value: the field values joined by ", "
// (RFC 9110, section 5.3).
func (c *headerCond) match(req *Request) bool {
	if c.isHost {
		if req.Host == "" {
			return false
		}
		if c.re != nil {
			return c.re.MatchString(req.Host)
		}
		return req.Host == c.value
	}
	vs := req.Header[c.key]
	if len(vs) == 0 {
		return false
	}
	if c.re != nil {
		if len(vs) == 1 {
			return c.re.MatchString(vs[0])
		}
		return c.re.MatchString(strings.Join(vs, ", "))
	}
	if len(vs) == 1 {
		return vs[0] == c.value
	}
	return joinedEqual(vs, c.value)
}

// headerValue returns the combined value of the header, for Explain.
func (c *headerCond) headerValue(req *Request) (string, bool) {
	if c.isHost {
		return req.Host, req.Host != ""
	}
	vs := req.Header[c.key]
	if len(vs) == 0 {
		return "", false
	}
	return strings.Join(vs, ", "), true
}

// joinedEqual reports whether strings.Join(vs, ", ") == want without
// building the joined string.
func joinedEqual(vs []string, want string) bool {
	for i, v := range vs {
		if i > 0 {
			if !strings.HasPrefix(want, ", ") {
				return false
			}
			want = want[2:]
		}
		if !strings.HasPrefix(want, v) {
			return false
		}
		want = want[len(v):]
	}
	return want == ""
}

// queryCond is a compiled query parameter condition.
type queryCond struct {
	name  string
	value string         // Exact decoded value, or the source of re
	re    *regexp.Regexp // non-nil for RegularExpression
}

// match reports whether the first occurrence of the parameter in rawQuery
// satisfies the condition. Parameters are read the way net/url.ParseQuery
// reads them: pairs separated by '&', pairs containing ';' or an invalid
// escape ignored, '+' decoded as a space.
func (c *queryCond) match(rawQuery string) bool {
	v, ok := findQuery(rawQuery, c.name)
	if !ok {
		return false
	}
	if c.re != nil {
		if strings.IndexByte(v, '%') < 0 && strings.IndexByte(v, '+') < 0 {
			return c.re.MatchString(v)
		}
		d, _ := queryUnescape(v)
		return c.re.MatchString(d)
	}
	return unescapeEqual(v, c.value)
}

// QueryValue returns the decoded value of the first occurrence of the
// query parameter name in rawQuery (the query without its leading '?'),
// read as query conditions read it: pairs separated by '&', a pair
// containing ';' or an invalid escape ignored, '+' decoded as a space,
// names compared after decoding. It allocates only when the value is
// escaped.
func QueryValue(rawQuery, name string) (string, bool) {
	v, ok := findQuery(rawQuery, name)
	if !ok {
		return "", false
	}
	if strings.IndexByte(v, '%') < 0 && strings.IndexByte(v, '+') < 0 {
		return v, true
	}
	return queryUnescape(v)
}

// findQuery returns the raw (still encoded) value of the first valid pair
// whose decoded key is name.
func findQuery(q, name string) (string, bool) {
	for q != "" {
		var pair string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, ""
		}
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if !unescapeEqual(k, name) {
			continue
		}
		if !validEscapes(v) {
			continue
		}
		return v, true
	}
	return "", false
}

// unescapeEqual reports whether enc is validly query-encoded and its
// decoded form equals plain.
func unescapeEqual(enc, plain string) bool {
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '%':
			if i+2 >= len(enc) {
				return false
			}
			hv, ok1 := unhex(enc[i+1])
			lv, ok2 := unhex(enc[i+2])
			if !ok1 || !ok2 {
				return false
			}
			c = hv<<4 | lv
			i += 2
		case '+':
			c = ' '
		}
		if j >= len(plain) || plain[j] != c {
			return false
		}
		j++
	}
	return j == len(plain)
}

// validEscapes reports whether every '%' in s starts a valid escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) {
				return false
			}
			if _, ok := unhex(s[i+1]); !ok {
				return false
			}
			if _, ok := unhex(s[i+2]); !ok {
				return false
			}
			i += 2
		}
	}
	return true
}

// queryUnescape decodes a query component ('+' is a space).
func queryUnescape(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			hv, ok1 := unhex(s[i+1])
			lv, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			c = hv<<4 | lv
			i += 2
		case '+':
			c = ' '
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
