package proxy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// Session persistence (GEP-1619).
//
// A session token is the sealed form of
//
//	version (1 byte) | start (8) | last use (8) | reference index (uvarint) |
//	backend name length (uvarint) | backend name | endpoint address
//
// where start and last use are Unix nanoseconds. It is sealed with
// AES-256-GCM under a random 96-bit nonce (cipher.NewGCMWithRandomNonce),
// with additional data naming the route rule and the token's type and name,
// so a token opens only for the rule that issued it, and it travels in
// unpadded base64url. A token that does not open, names a reference or
// endpoint the rule no longer has, or has expired is ignored, and the
// request is pinned anew.

// SessionKeySize is the size in bytes of [Options].SessionKey.
const SessionKeySize = 32

// DefaultSessionName is the cookie or header name of a
// [SessionPersistence] without a Name.
const DefaultSessionName = "rauta-session"

const (
	tokenVersion = 1
	// tokenFixed is the size of the fixed part of the plaintext.
	tokenFixed = 1 + 8 + 8
	// maxTokenLen bounds the encoded tokens the proxy tries to open.
	maxTokenLen = 1024
	// maxIdleRefresh bounds the granularity of the idle clock: a token
	// is re-issued on a request at least min(IdleTimeout/10, 1s) after
	// its last use time.
	maxIdleRefresh = time.Second
)

// tokenBufs holds scratch buffers for opening and sealing tokens.
var tokenBufs = sync.Pool{New: func() any { b := make([]byte, 3*maxTokenLen); return &b }}

// sessionSealer seals and opens session tokens with the proxy's key.
type sessionSealer struct {
	aead cipher.AEAD
	err  error // why the configured key cannot be used
	now  func() time.Time
}

// newSessionSealer makes the sealer of key, or of a random key when key is
// empty.
func newSessionSealer(key []byte, now func() time.Time) sessionSealer {
	s := sessionSealer{now: now}
	if s.now == nil {
		s.now = time.Now
	}
	switch len(key) {
	case 0:
		key = make([]byte, SessionKeySize)
		rand.Read(key)
	case SessionKeySize:
	default:
		s.err = fmt.Errorf("Options.SessionKey: must be %d bytes, not %d", SessionKeySize, len(key))
		return s
	}
	block, err := aes.NewCipher(key)
	if err == nil {
		s.aead, err = cipher.NewGCMWithRandomNonce(block)
	}
	if err != nil {
		s.err = fmt.Errorf("Options.SessionKey: %w", err)
	}
	return s
}

// ruleSession is the compiled session persistence of a rule: where its
// tokens are read from, and the cookie Path of each of its matches.
type ruleSession struct {
	sources []*sessionSource
	paths   []string // cookie Path by match index
}

// path returns the cookie Path for the rule's match at index i (-1 for a
// rule without matches).
func (rs *ruleSession) path(i int) string {
	if i < 0 || i >= len(rs.paths) {
		return "/"
	}
	return rs.paths[i]
}

// sessionSource is one cookie or header a rule's tokens travel in.
type sessionSource struct {
	typ  SessionType
	name string // cookie name, or canonical header name
	ad   []byte // additional data binding a token to the rule and source
}

// sessionPolicy is the session persistence in effect for one backend
// reference of a rule.
type sessionPolicy struct {
	src     *sessionSource
	spec    SessionPersistence
	refresh time.Duration // idle clock granularity; 0 without IdleTimeout
}

// sessionPin is what one request to a rule with session persistence
// carries from the pick to the response.
type sessionPin struct {
	policy *sessionPolicy
	ref    int              // index of the reference in the rule
	ep     *upstream.Member // named by a valid token; nil when pinning anew
	start  int64            // session start, Unix nanoseconds
	last   int64            // the token's last use
	now    int64
	path   string // cookie Path
	secure bool
}

// validateSession checks a SessionPersistence, naming the faulty field.
func validateSession(sp *SessionPersistence) error {
	name := sp.Name
	if name == "" {
		name = DefaultSessionName
	}
	switch sp.Type {
	case SessionCookie:
		if (&http.Cookie{Name: name, Value: "v"}).Valid() != nil {
			return fmt.Errorf("name %q: not a valid cookie name", name)
		}
	case SessionHeader:
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("name %q: not a valid header field name", name)
		}
		if reservedSessionHeader(http.CanonicalHeaderKey(name)) {
			return fmt.Errorf("name %q: a header the proxy or HTTP itself controls", name)
		}
	default:
		return fmt.Errorf("type: unknown value %v", sp.Type)
	}
	if sp.AbsoluteTimeout < 0 {
		return fmt.Errorf("absoluteTimeout: must not be negative, got %v", sp.AbsoluteTimeout)
	}
	if sp.IdleTimeout < 0 {
		return fmt.Errorf("idleTimeout: must not be negative, got %v", sp.IdleTimeout)
	}
	if sp.CookiePath != "" {
		if sp.Type != SessionCookie {
			return errors.New("cookiePath: only for a cookie session")
		}
		if !ValidCookiePath(sp.CookiePath) {
			return fmt.Errorf("cookiePath: %q does not start with '/' or holds a control character, a non-ASCII byte or ';'", sp.CookiePath)
		}
	}
	if sp.PermanentCookie && sp.AbsoluteTimeout == 0 {
		return errors.New("permanentCookie: requires absoluteTimeout, the cookie's Max-Age")
	}
	return nil
}

// reservedSessionHeader reports whether a session header name would
// clash with a field that frames or routes messages.
func reservedSessionHeader(canonical string) bool {
	for _, h := range hopHeaders {
		if h == canonical {
			return true
		}
	}
	switch canonical {
	case "Host", "Content-Length", "Content-Type", "Cookie", "Set-Cookie", "Http2-Settings":
		return true
	}
	return false
}

// compileSession resolves the session persistence of a rule's references:
// the rule's own, else each referenced backend's. Backends' settings were
// validated when the backends were configured.
func (p *Proxy) compileSession(cr *compiledRule, r *Route, rule *Rule) error {
	if rule.SessionPersistence != nil {
		if err := validateSession(rule.SessionPersistence); err != nil {
			return err
		}
	}
	var rs *ruleSession
	for i := range cr.refs {
		ref := &cr.refs[i]
		sp := rule.SessionPersistence
		if sp == nil && ref.backend != nil && ref.backend.spec != nil {
			sp = ref.backend.spec.SessionPersistence
		}
		if sp == nil {
			continue
		}
		if p.sessions.err != nil {
			return p.sessions.err
		}
		if rs == nil {
			rs = &ruleSession{paths: sessionPaths(rule.Matches)}
		}
		pol := &sessionPolicy{spec: *sp}
		if pol.spec.Name == "" {
			pol.spec.Name = DefaultSessionName
		}
		if pol.spec.Type == SessionHeader {
			pol.spec.Name = http.CanonicalHeaderKey(pol.spec.Name)
		}
		if d := pol.spec.IdleTimeout; d > 0 {
			pol.refresh = max(min(d/10, maxIdleRefresh), 1)
		}
		for _, src := range rs.sources {
			if src.typ == pol.spec.Type && src.name == pol.spec.Name {
				pol.src = src
			}
		}
		if pol.src == nil {
			pol.src = &sessionSource{
				typ:  pol.spec.Type,
				name: pol.spec.Name,
				ad:   []byte(fmt.Sprintf("rauta session\x00%s/%s\x00%s\x00%v\x00%s", r.Namespace, r.Name, ruleKey(r, rule), pol.spec.Type, pol.spec.Name)),
			}
			rs.sources = append(rs.sources, pol.src)
		}
		ref.session = pol
	}
	cr.session = rs
	return nil
}

// ruleKey identifies a rule within its route: its name, else its index.
func ruleKey(r *Route, rule *Rule) string {
	if rule.Name != "" {
		return "name:" + rule.Name
	}
	for j := range r.Rules {
		if &r.Rules[j] == rule {
			return "index:" + strconv.Itoa(j)
		}
	}
	return ""
}

// sessionPaths returns the cookie Path of each match: the path prefix (an
// exact path), the longest literal prefix of a regular expression up to a
// '/', and "/" when nothing narrower is safe.
func sessionPaths(ms []router.Match) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		v := m.Path.Value
		switch m.Path.Type {
		case router.PathPrefix, router.PathExact:
			if len(v) > 1 {
				v = strings.TrimSuffix(v, "/")
			}
		case router.PathRegularExpression:
			v = ""
			if re, err := regexp.Compile(m.Path.Value); err == nil {
				lit, _ := re.LiteralPrefix()
				if j := strings.LastIndexByte(lit, '/'); j > 0 {
					v = lit[:j]
				}
			}
		default:
			v = ""
		}
		if !ValidCookiePath(v) {
			v = "/"
		}
		out[i] = v
	}
	return out
}

// ValidCookiePath reports whether p can be a cookie's Path attribute
// (RFC 6265 section 4.1.1) without escaping: it starts with '/' and holds
// no control character, no byte above 0x7e and no ';'.
func ValidCookiePath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c >= 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// pickSessionRef picks the backend reference of a request to a rule with
// session persistence: the one a valid token names, else one by weight.
// It leaves in x what the response needs to issue a token.
func (p *Proxy) pickSessionRef(cr *compiledRule, r *http.Request, x *requestState, match int, secure bool) *compiledRef {
	now := p.sessions.now().UnixNano()
	pin := sessionPin{now: now, path: cr.session.path(match), secure: secure}
	ref := p.sessions.find(cr, r, &pin)
	if ref == nil {
		ref = cr.pickRef()
		if ref == nil || ref.session == nil {
			return ref
		}
		pin.policy = ref.session
		pin.ref = refIndex(cr, ref)
		pin.start, pin.last = now, now
	}
	x.sess = new(sessionPin)
	*x.sess = pin
	return ref
}

// refIndex returns the index of ref in cr.refs.
func refIndex(cr *compiledRule, ref *compiledRef) int {
	for i := range cr.refs {
		if &cr.refs[i] == ref {
			return i
		}
	}
	return -1
}

// find returns the reference named by the first valid token of the
// request, filling pin, or nil.
func (s *sessionSealer) find(cr *compiledRule, r *http.Request, pin *sessionPin) *compiledRef {
	bp := tokenBufs.Get().(*[]byte)
	defer tokenBufs.Put(bp)
	for _, src := range cr.session.sources {
		switch src.typ {
		case SessionCookie:
			for _, line := range r.Header["Cookie"] {
				for line != "" {
					var part string
					part, line, _ = strings.Cut(line, ";")
					name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
					if !ok || name != src.name {
						continue
					}
					if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
						val = val[1 : len(val)-1]
					}
					if ref := s.open(cr, src, val, *bp, pin); ref != nil {
						return ref
					}
				}
			}
		case SessionHeader:
			for _, line := range r.Header[src.name] {
				for line != "" {
					var val string
					val, line, _ = strings.Cut(line, ",")
					if ref := s.open(cr, src, strings.TrimSpace(val), *bp, pin); ref != nil {
						return ref
					}
				}
			}
		}
	}
	return nil
}

// open reads one token. When it is valid for the rule it returns the
// reference it names and fills pin; otherwise it returns nil.
func (s *sessionSealer) open(cr *compiledRule, src *sessionSource, tok string, buf []byte, pin *sessionPin) *compiledRef {
	if len(tok) > maxTokenLen {
		return nil
	}
	text := buf[:copy(buf, tok)]
	raw := buf[maxTokenLen:]
	n, err := base64.RawURLEncoding.Decode(raw, text)
	if err != nil {
		return nil
	}
	pt, err := s.aead.Open(raw[:0], nil, raw[:n], src.ad)
	if err != nil {
		return nil
	}
	tk, ok := parseToken(pt)
	if !ok {
		return nil
	}
	start, last, idx, backend, addr := tk.start, tk.last, tk.ref, tk.backend, tk.endpoint

	// The reference: where the token says, else the first reference to
	// the same backend (the rule's references were reordered).
	i := -1
	if idx < uint64(len(cr.refs)) && tokenRefIs(&cr.refs[idx], src, backend) {
		i = int(idx)
	} else {
		for j := range cr.refs {
			if tokenRefIs(&cr.refs[j], src, backend) {
				i = j
				break
			}
		}
	}
	if i < 0 {
		return nil
	}
	ref := &cr.refs[i]
	sp := &ref.session.spec
	if sp.AbsoluteTimeout > 0 && pin.now-start >= int64(sp.AbsoluteTimeout) {
		return nil
	}
	if sp.IdleTimeout > 0 && pin.now-last >= int64(sp.IdleTimeout) {
		return nil
	}
	pin.policy, pin.ref = ref.session, i
	pin.start, pin.last = pin.now, pin.now
	pin.ep = nil
	t := ref.backend.up.Table()
	if ep := t.Find(addr); ep != nil && ep.Healthy() {
		pin.ep, pin.start, pin.last = ep, start, last
	} else if ref.weight == 0 || t.Len() == 0 {
		// The session is broken and its reference takes no new
		// sessions: the request is balanced over the references anew.
		return nil
	}
	return ref
}

// token is the plaintext of a session token.
type token struct {
	start, last int64 // Unix nanoseconds
	ref         uint64
	backend     []byte
	endpoint    []byte
}

// appendToken appends the plaintext of a token to b.
func appendToken(b []byte, start, last int64, ref uint64, backend, endpoint string) []byte {
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	b = binary.BigEndian.AppendUint64(b, uint64(last))
	b = binary.AppendUvarint(b, ref)
	b = binary.AppendUvarint(b, uint64(len(backend)))
	b = append(b, backend...)
	return append(b, endpoint...)
}

// parseToken parses a plaintext made by appendToken. The slices of the
// result point into b.
func parseToken(b []byte) (token, bool) {
	if len(b) < tokenFixed || b[0] != tokenVersion {
		return token{}, false
	}
	t := token{
		start: int64(binary.BigEndian.Uint64(b[1:])),
		last:  int64(binary.BigEndian.Uint64(b[9:])),
	}
	rest := b[tokenFixed:]
	var k int
	if t.ref, k = binary.Uvarint(rest); k <= 0 {
		return token{}, false
	}
	rest = rest[k:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < n {
		return token{}, false
	}
	rest = rest[k:]
	t.backend, t.endpoint = rest[:n], rest[n:]
	return t, true
}

// tokenRefIs reports whether ref is a reference to the backend a token
// names, under the session policy of the token's source.
func tokenRefIs(ref *compiledRef, src *sessionSource, backend []byte) bool {
	return ref.session != nil && ref.session.src == src && ref.backend != nil && ref.backend.name == string(backend)
}

// pinned returns the endpoint a valid token pinned the request to, with
// its breaker ticket, when this is the request's first attempt and the
// endpoint admits it; otherwise nil, and the caller picks.
func (s *sessionPin) pinned(avoid *upstream.Member) (*upstream.Member, breaker.Ticket) {
	if s == nil || s.ep == nil || avoid != nil || s.ep.Removed() {
		return nil, breaker.Ticket{}
	}
	if tk, ok := s.ep.Admit(); ok {
		return s.ep, tk
	}
	return nil, breaker.Ticket{}
}

// issue adds a token to a response when the request began a session, was
// pinned anew (its endpoint gone, refused or failed), or, with an idle
// timeout, when the token's last use is older than the idle granularity.
// x.backend and x.endpoint name where the response came from.
func (s *sessionSealer) issue(h http.Header, x *requestState) {
	pin := x.sess
	if pin == nil || pin.policy == nil || x.endpoint == "" {
		return
	}
	pol := pin.policy
	start := pin.start
	if pin.ep == nil || pin.ep.Addr() != x.endpoint {
		start = pin.now
	} else if pol.refresh == 0 || pin.now-pin.last < int64(pol.refresh) {
		return
	}

	bp := tokenBufs.Get().(*[]byte)
	defer tokenBufs.Put(bp)
	buf := appendToken((*bp)[:0], start, pin.now, uint64(pin.ref), x.backend, x.endpoint)
	sealed := s.aead.Seal(buf[:0], nil, buf, pol.src.ad)
	enc := base64.RawURLEncoding.AppendEncode(sealed[len(sealed):len(sealed)], sealed)

	if pol.spec.Type == SessionHeader {
		h[pol.spec.Name] = []string{string(enc)}
		return
	}
	var b strings.Builder
	path := pin.path
	if pol.spec.CookiePath != "" {
		path = pol.spec.CookiePath
	}
	b.Grow(len(pol.spec.Name) + len(enc) + len(path) + 64)
	b.WriteString(pol.spec.Name)
	b.WriteByte('=')
	b.Write(enc)
	b.WriteString("; Path=")
	b.WriteString(path)
	if pol.spec.PermanentCookie {
		left := int64(pol.spec.AbsoluteTimeout) - (pin.now - start)
		secs := max((left+int64(time.Second)-1)/int64(time.Second), 1)
		b.WriteString("; Max-Age=")
		var num [20]byte
		b.Write(strconv.AppendInt(num[:0], secs, 10))
	}
	b.WriteString("; HttpOnly")
	if pin.secure {
		b.WriteString("; Secure")
	}
	b.WriteString("; SameSite=Lax")
	h["Set-Cookie"] = append(h["Set-Cookie"], b.String())
}
