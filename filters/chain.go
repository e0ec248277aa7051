package filters

import (
	"errors"
	"net/http"
)

// RequestInfo tells a Chain how the request reached it: facts that are not in
// the *http.Request itself. The zero value is usable: the scheme is then
// derived from r.TLS and the listener port from the Host header.
type RequestInfo struct {
	// Scheme is the scheme the client used, from the listener's protocol.
	// SchemeUnset means https when r.TLS is set and http otherwise.
	Scheme Scheme
	// ListenerPort is the port of the Gateway listener that accepted the
	// request. Redirects keep it when they change neither scheme nor port.
	// Zero means unknown: the port of the Host header is used, else the
	// scheme's well-known port.
	ListenerPort uint16
	// PathPrefix is the value of the PathPrefix match that selected the rule,
	// in escaped form (as written in the HTTPRoute, or as normalised by the
	// router that compared it with the request path). ReplacePrefixMatch
	// replaces it. "" means "/", the default match of a rule without matches.
	PathPrefix string
}

// scheme returns the scheme the request arrived with.
func (info *RequestInfo) scheme(r *http.Request) Scheme {
	if info.Scheme != SchemeUnset {
		return info.Scheme
	}
	if r.TLS != nil {
		return SchemeHTTPS
	}
	return SchemeHTTP
}

// CompileOptions carries what Compile needs besides the filter specs.
type CompileOptions struct {
	// Registry resolves ExtensionRef filters. With a nil Registry every
	// ExtensionRef is an ErrUnknownExtension error.
	Registry *Registry
	// Mirrorer sends mirrored requests. It is required when the list has a
	// RequestMirror filter; share one Mirrorer between all chains so that
	// its limits are global.
	Mirrorer *Mirrorer
}

// Chain is a compiled, immutable list of filters, built once per route rule
// or backendRef and shared by all requests. Its methods are safe for
// concurrent use. A nil *Chain is valid and does nothing.
type Chain struct {
	steps  []step
	status int // non-zero: ErrorChain answering every request with status
}

// step is one compiled filter. Exactly the field matching typ is set.
type step struct {
	typ      Type
	hdr      *headerOps
	redirect *redirect
	rewrite  *rewrite
	mirror   *mirrorStep
	cors     *corsFilter
	ext      Filter
}

// State carries one request's filter state from Chain.Request to
// Chain.Response. The zero value is ready to use; Request resets it. Use one
// State per Chain per request (a rule chain and a backendRef chain each need
// their own); it can live on the caller's stack or in a pooled struct.
type State struct {
	req     *http.Request
	ran     int // number of steps whose request side has run
	cors    corsState
	pending []pendingMirror
}

// Compile validates specs and builds a Chain that applies them in order.
// Errors are *ConfigError values naming the filter index and field (several
// are joined with errors.Join); on error the Chain is nil.
//
// Besides each filter's own fields, Compile enforces the list rules of the
// spec: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect,
// URLRewrite and CORS appear at most once, and RequestRedirect and URLRewrite
// are not combined (ErrIncompatible). RequestMirror and ExtensionRef may
// repeat.
func Compile(specs []Spec, opts CompileOptions) (*Chain, error) {
	c := &Chain{steps: make([]step, 0, len(specs))}
	var errs []error
	first := map[Type]int{}
	for i := range specs {
		sp := &specs[i]
		st, err := compileStep(i, sp, &opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch sp.Type {
		case TypeRequestHeaderModifier, TypeResponseHeaderModifier, TypeRequestRedirect, TypeURLRewrite, TypeCORS:
			if j, dup := first[sp.Type]; dup {
				errs = append(errs, configErr(i, "type", ErrIncompatible, "%s filter cannot be repeated (first at filters[%d])", sp.Type, j))
				continue
			}
		}
		if _, ok := first[sp.Type]; !ok {
			first[sp.Type] = i
		}
		c.steps = append(c.steps, st)
	}
	if j, ok := first[TypeRequestRedirect]; ok {
		if k, ok := first[TypeURLRewrite]; ok {
			errs = append(errs, configErr(max(j, k), "type", ErrIncompatible, "RequestRedirect (filters[%d]) and URLRewrite (filters[%d]) cannot be combined", j, k))
		}
	}
	switch len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// compileStep validates one spec and compiles it.
func compileStep(i int, sp *Spec, opts *CompileOptions) (step, error) {
	set := map[Type]bool{
		TypeRequestHeaderModifier:  sp.RequestHeaderModifier != nil,
		TypeResponseHeaderModifier: sp.ResponseHeaderModifier != nil,
		TypeRequestRedirect:        sp.RequestRedirect != nil,
		TypeURLRewrite:             sp.URLRewrite != nil,
		TypeRequestMirror:          sp.RequestMirror != nil,
		TypeCORS:                   sp.CORS != nil,
		TypeExtensionRef:           sp.ExtensionRef != nil,
	}
	if _, known := set[sp.Type]; !known {
		return step{}, configErr(i, "type", ErrUnsupported, "%v", sp.Type)
	}
	if !set[sp.Type] {
		return step{}, configErr(i, sp.Type.field(), ErrInvalid, "must be specified for type %s", sp.Type)
	}
	for t := TypeRequestHeaderModifier; t <= TypeExtensionRef; t++ {
		if t != sp.Type && set[t] {
			return step{}, configErr(i, t.field(), ErrInvalid, "must be nil when type is %s", sp.Type)
		}
	}
	s := step{typ: sp.Type}
	var err error
	switch sp.Type {
	case TypeRequestHeaderModifier:
		s.hdr, err = compileHeaders(i, "requestHeaderModifier", sp.RequestHeaderModifier, true)
	case TypeResponseHeaderModifier:
		s.hdr, err = compileHeaders(i, "responseHeaderModifier", sp.ResponseHeaderModifier, false)
	case TypeRequestRedirect:
		s.redirect, err = compileRedirect(i, sp.RequestRedirect)
	case TypeURLRewrite:
		s.rewrite, err = compileRewrite(i, sp.URLRewrite)
	case TypeRequestMirror:
		s.mirror, err = compileMirror(i, sp.RequestMirror, opts.Mirrorer)
	case TypeCORS:
		s.cors, err = compileCORS(i, sp.CORS)
	case TypeExtensionRef:
		s.ext, err = opts.Registry.resolve(i, *sp.ExtensionRef)
	}
	if err != nil {
		return step{}, err
	}
	return s, nil
}

// ErrorChain returns a Chain that answers every request with the given status
// (500 when status is not a 4xx or 5xx code) and an empty body. Use it for a
// rule whose filters failed to compile: the spec requires that requests which
// an unresolvable filter would have processed receive an HTTP error, never
// that the filter be skipped.
func ErrorChain(status int) *Chain {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	return &Chain{status: status}
}

// Passthrough reports whether the chain does nothing to requests and
// responses: it is nil, or has no filters and is not an ErrorChain. Callers
// can skip per-request work for such chains.
func (c *Chain) Passthrough() bool {
	return c == nil || (len(c.steps) == 0 && c.status == 0)
}

// Len returns the number of filters in the chain.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.steps)
}

// Request applies the request side of the chain to r, in order: header
// modification, URL rewrite (which needs info.PathPrefix for
// ReplacePrefixMatch), mirroring, and user filters change r in place.
//
// It returns true when the chain answered the request itself: a redirect, a
// CORS preflight, an ErrorChain, or a user filter that wrote a response. The
// response (including this chain's ResponseHeaderModifier and CORS headers)
// has then been written to w and the caller must neither forward the request
// nor call Response. Otherwise the caller forwards r and calls Response with
// the upstream response headers.
//
// st must not be nil; Request resets it. Mirrored copies of r are taken when
// the RequestMirror filter runs; if r has a body, they are sent once the
// body has been read to its end, so r.Body is replaced by a reader that
// copies it (up to the Mirrorer's limit).
func (c *Chain) Request(w http.ResponseWriter, r *http.Request, info RequestInfo, st *State) (handled bool) {
	if st == nil {
		st = new(State)
	}
	*st = State{req: r}
	if c == nil {
		return false
	}
	if c.status != 0 {
		c.respond(w, st, c.status)
		return true
	}
	for i := range c.steps {
		s := &c.steps[i]
		switch s.typ {
		case TypeRequestHeaderModifier:
			s.hdr.applyRequest(r)
		case TypeRequestRedirect:
			s.redirect.prepare(w.Header(), r, &info)
			c.respond(w, st, s.redirect.code)
			return true
		case TypeURLRewrite:
			s.rewrite.apply(r, &info)
		case TypeRequestMirror:
			s.mirror.request(r, st)
		case TypeCORS:
			if s.cors.request(w.Header(), r, &st.cors) {
				c.respond(w, st, http.StatusNoContent)
				return true
			}
		case TypeExtensionRef:
			st.ran = i + 1
			if s.ext.Request(w, r, info) {
				st.abandonMirrors()
				return true
			}
		}
		st.ran = i + 1
	}
	st.flushMirrors(r)
	return false
}

// Response applies the response side of the chain to h, the headers of the
// upstream response, before they are written to the client:
// ResponseHeaderModifier, the CORS headers of an actual (non-preflight)
// cross-origin request, and the Response hooks of user filters. st must be
// the State given to Request.
func (c *Chain) Response(h http.Header, st *State) {
	if c == nil || st == nil {
		return
	}
	c.responseHooks(h, st)
}

// responseHooks runs the response side of every step on h.
func (c *Chain) responseHooks(h http.Header, st *State) {
	for i := range c.steps {
		s := &c.steps[i]
		switch s.typ {
		case TypeResponseHeaderModifier:
			s.hdr.apply(h)
		case TypeCORS:
			s.cors.response(h, &st.cors)
		case TypeExtensionRef:
			if i < st.ran {
				s.ext.Response(h, st.req)
			}
		}
	}
}

// respond writes a response generated by the chain itself. The response
// side of the chain applies to it too, so a ResponseHeaderModifier also
// decorates redirects and preflight answers.
func (c *Chain) respond(w http.ResponseWriter, st *State, code int) {
	st.abandonMirrors()
	c.responseHooks(w.Header(), st)
	w.WriteHeader(code)
}
