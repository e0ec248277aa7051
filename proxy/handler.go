package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/rauta/rauta/breaker"
	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/internal/httpsem"
	"github.com/rauta/rauta/maglev"
	"github.com/rauta/rauta/pool"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// portHandler serves the requests of one bound port, or, with listener
// set, those of one listener mounted by Proxy.Handler.
type portHandler struct {
	p        *Proxy
	key      string
	tls      bool
	listener string
}

// requestState is the state of one request as it goes through the proxy.
type requestState struct {
	start     time.Time
	listener  string
	route     string
	rule      int
	backend   string
	endpoint  string
	upstream  time.Duration
	status    int
	reason    reason
	wrote     bool
	retries   int
	respBytes int64
	requestID string
	traceID   string
	sess      *sessionPin // session persistence; nil without it
	// body is the request body under RequestLimits, when it is wrapped;
	// writeTimeout is a RequestLimits.WriteTimeout in effect.
	body         *limitedBody
	writeTimeout time.Duration
	// grpc marks a gRPC call: the gateway's own answers are gRPC
	// answers. grpcStatus is the call's gRPC status once known; exchange
	// is the context bounding the call's exchange with the backend.
	grpc       bool
	grpcStatus grpcCode
	ruleName   string
	exchange   context.Context
	// h2up is an HTTP/2 extended CONNECT carried as a WebSocket upgrade
	// (h2tunnel.go); nil for other requests.
	h2up *h2Upgrade
}

// Shared header values. Each is a full slice (len == cap): code that adds a
// value to such a header gets a new array, and no code here writes into a
// header's slice in place.
var (
	plainHeader = []string{"text/plain; charset=utf-8"}
	httpValue   = []string{"http"}
	httpsValue  = []string{"https"}
)

// fail answers a request from the gateway itself.
func (x *requestState) fail(w http.ResponseWriter, code int, reason reason, msg string) {
	x.status, x.reason = code, reason
	if x.wrote {
		return
	}
	x.wrote = true
	if x.grpc {
		x.failGRPC(w, grpcCodeFor(reason, code), msg)
		return
	}
	h := w.Header()
	h["Content-Type"] = plainHeader
	h["X-Content-Type-Options"] = []string{"nosniff"}
	if code == http.StatusServiceUnavailable || code == http.StatusBadGateway {
		h["Cache-Control"] = []string{"no-store"}
	}
	w.WriteHeader(code)
	n, _ := io.WriteString(w, msg)
	x.respBytes += int64(n)
}

// gone ends a request whose client went away (499 in the log): the
// handler is aborted, so that the server sends nothing (an HTTP/2 stream
// is reset) rather than the empty 200 of a handler that wrote nothing.
func (x *requestState) gone() {
	x.status, x.reason, x.grpcStatus = 499, reasonClientGone, grpcCanceled
	panic(http.ErrAbortHandler)
}

func (h *portHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	x := requestState{start: time.Now(), grpc: isGRPC(r)}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				// An aborted response (a client gone, a backend failing
				// mid-body) is logged and counted like any other.
				p.observe(r, &x)
				panic(v)
			}
			p.metrics.panics.Inc()
			p.log.Error("panic serving request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if x.wrote {
				// The response is under way: abort it so the client sees
				// a broken response rather than a truncated success.
				x.reason = reasonPanic
				p.observe(r, &x)
				panic(http.ErrAbortHandler)
			}
			x.fail(w, http.StatusInternalServerError, reasonPanic, "internal error\n")
		}
		p.observe(r, &x)
	}()

	snap := p.snap.Load()
	var pt *portTable
	if h.listener != "" {
		pt = snap.served[h.listener]
	} else {
		pt = snap.ports[h.key]
	}
	trustedClient := len(p.opts.TrustedProxies) > 0 && p.trusted(clientIP(r.RemoteAddr))
	x.requestID, x.traceID = p.requestIDs(w, r, trustedClient)
	if h.listener != "" && p.down.Load() {
		x.fail(w, http.StatusServiceUnavailable, reasonShutDown, "shut down\n")
		return
	}
	if pt == nil {
		x.fail(w, http.StatusNotFound, reasonNoRoute, "no route\n")
		return
	}
	secure := h.tls || (h.listener != "" && (pt.https || r.TLS != nil))
	if extendedConnect(r) {
		if x.h2up = asUpgrade(r); x.h2up == nil {
			x.fail(w, http.StatusNotImplemented, reasonBadRequest, "unsupported :protocol\n")
			return
		}
	}
	if h.listener == "" && r.ProtoMajor == 1 && isH2CUpgrade(r) {
		if p.serveH2CUpgrade(w, r, h) {
			x.status, x.wrote = http.StatusSwitchingProtocols, true
			return
		}
	}
	rreq := router.Request{
		Host:     r.Host,
		Path:     requestPath(r),
		Method:   r.Method,
		Header:   r.Header,
		RawQuery: r.URL.RawQuery,
	}
	var pl *portListener // the listener serving the request, nil for none
	if h.listener != "" {
		pl = pt.named(h.listener)
		rreq.Listener = h.listener
	} else {
		pl = pt.listenerFor(r.Host)
		rreq.Listener = pl.nameOrEmpty()
	}
	x.listener = rreq.Listener
	if h.listener == "" && r.TLS != nil && len(pt.listeners) > 1 && r.TLS.ServerName != "" && pt.listenerFor(r.TLS.ServerName) != pl {
		// The connection was set up for another listener's hostname
		// (HTTP/2 connection reuse across names, or a client sending a
		// Host unlike its SNI): RFC 9110 section 15.5.20.
		x.fail(w, http.StatusMisdirectedRequest, reasonMisdirected, "misdirected request\n")
		return
	}
	res, err := pt.table.Match(&rreq)
	if err != nil {
		if errors.Is(err, router.ErrBadPath) {
			x.fail(w, http.StatusBadRequest, reasonBadRequest, "bad request path\n")
			return
		}
		x.fail(w, http.StatusNotFound, reasonNoRoute, "no route\n")
		return
	}
	cr := res.Rule.Value.(*compiledRule)
	x.route = cr.routeLabel
	x.rule, x.ruleName = res.RuleIndex, cr.rule.Name
	if res.Path != rreq.Path {
		// Forward the normalised path, so the backend sees exactly what
		// was matched.
		setEscapedPath(r.URL, res.Path)
	}

	if !p.admit(w, r, pl, cr, &x) {
		return
	}

	info := filters.RequestInfo{Scheme: filters.SchemeHTTP, ListenerPort: pt.port}
	if secure {
		info.Scheme = filters.SchemeHTTPS
	}
	if res.PathMatch.Type == router.PathPrefix {
		info.PathPrefix = res.PathMatch.Value
	}
	var ruleState filters.State
	if runChain(cr.filters, w, r, info, &ruleState, &x) {
		return
	}

	var ref *compiledRef
	if cr.session != nil {
		ref = p.pickSessionRef(cr, r, &x, res.MatchIndex, secure)
	} else {
		ref = cr.pickRef()
	}
	if ref == nil || ref.backend == nil {
		x.fail(w, http.StatusInternalServerError, reasonInvalidBackend, "no valid backend\n")
		return
	}
	x.backend = ref.backend.name
	var refState filters.State
	if runChain(ref.filters, w, r, info, &refState, &x) {
		return
	}

	p.forward(w, r, secure, cr, ref, &x, func(hdr http.Header) {
		ref.filters.Response(hdr, &refState)
		cr.filters.Response(hdr, &ruleState)
		if x.sess != nil {
			p.sessions.issue(hdr, &x)
		}
	})
}

// runChain runs the request side of a filter chain and reports whether the
// chain answered the request itself (a redirect, a CORS preflight), noting
// the status it answered with.
func runChain(c *filters.Chain, w http.ResponseWriter, r *http.Request, info filters.RequestInfo, st *filters.State, x *requestState) bool {
	if c.Passthrough() {
		return false
	}
	sw := &codeRecorder{ResponseWriter: w}
	if !c.Request(sw, r, info, st) {
		return false
	}
	x.status, x.reason, x.wrote = sw.code, reasonFilter, true
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return true
}

// codeRecorder notes the final status code written through it.
type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (s *codeRecorder) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *codeRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// requestPath returns the request path as it came on the wire, without the
// query. It avoids re-escaping r.URL.Path.
func requestPath(r *http.Request) string {
	u := r.RequestURI
	if strings.HasPrefix(u, "/") {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			return u[:i]
		}
		return u
	}
	return r.URL.EscapedPath()
}

// setEscapedPath sets u's path from its escaped form.
func setEscapedPath(u *url.URL, escaped string) {
	if p, err := url.PathUnescape(escaped); err == nil {
		u.Path = p
		u.RawPath = escaped
		if u.EscapedPath() != escaped {
			u.RawPath = ""
		}
	}
}

// pickRef picks a backend reference in proportion to the weights.
func (cr *compiledRule) pickRef() *compiledRef {
	switch {
	case len(cr.refs) == 0 || cr.total == 0:
		return nil
	case len(cr.refs) == 1:
		return &cr.refs[0]
	}
	n := rand.Uint64N(cr.total)
	for i := range cr.refs {
		if n < cr.refs[i].weight {
			return &cr.refs[i]
		}
		n -= cr.refs[i].weight
	}
	return &cr.refs[len(cr.refs)-1]
}

// requestKey reads the key named by k from r.
func requestKey(r *http.Request, k upstream.HashKey) (string, bool) {
	switch k.Source {
	case upstream.KeyClientAddress:
		return clientIP(r.RemoteAddr), true
	case upstream.KeyHeader:
		v := r.Header.Get(k.Name)
		return v, v != ""
	case upstream.KeyCookie:
		c, err := r.Cookie(k.Name)
		if err != nil {
			return "", false
		}
		return c.Value, true
	case upstream.KeyQuery:
		v, _ := router.QueryValue(r.URL.RawQuery, k.Name)
		return v, v != ""
	}
	return "", false
}

// clientIP returns the host part of a RemoteAddr without allocating.
func clientIP(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i >= 0 {
		remote = remote[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(remote, "["), "]")
}

// hopHeaders are removed from requests and responses: they describe one
// connection, not the message (RFC 9110 section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders strips hop-by-hop headers, including those the
// Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
}

// upgradeType returns the protocol a request asks to switch to, or "".
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// trusted reports whether a client's forwarding headers are believed.
func (p *Proxy) trusted(ip string) bool {
	if len(p.opts.TrustedProxies) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pfx := range p.opts.TrustedProxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// prepareOutbound turns the client's request into the request sent
// upstream: hop-by-hop headers removed, forwarding headers set, the
// upgrade kept when there is one.
func (p *Proxy) prepareOutbound(r *http.Request, tlsListener bool) (upgrade string) {
	h := r.Header
	upgrade = upgradeType(h)
	te := h["Te"]
	removeHopHeaders(h)
	if upgrade != "" {
		h["Connection"] = []string{"Upgrade"}
		h["Upgrade"] = []string{upgrade}
	}
	if httpguts.HeaderValuesContainsToken(te, "trailers") {
		h["Te"] = []string{"trailers"}
	}
	ip := clientIP(r.RemoteAddr)
	proto := "http"
	if tlsListener {
		proto = "https"
	}
	if p.trusted(ip) {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ip}
		} else {
			h["X-Forwarded-For"] = []string{ip}
		}
		if _, ok := h["X-Forwarded-Proto"]; !ok {
			h["X-Forwarded-Proto"] = []string{proto}
		}
		if _, ok := h["X-Forwarded-Host"]; !ok {
			h["X-Forwarded-Host"] = []string{r.Host}
		}
	} else {
		// One allocation for both values; each slice is full (len ==
		// cap), so appending to one never writes into the other.
		vals := make([]string, 2)
		vals[0], vals[1] = ip, r.Host
		h["X-Forwarded-For"] = vals[0:1:1]
		h["X-Forwarded-Host"] = vals[1:2:2]
		if tlsListener {
			h["X-Forwarded-Proto"] = httpsValue[:1:1]
		} else {
			h["X-Forwarded-Proto"] = httpValue[:1:1]
		}
		delete(h, "Forwarded")
		delete(h, "X-Real-Ip")
	}
	return upgrade
}

// forward sends the request to an endpoint of the reference's backend,
// retrying as the rule allows, and streams the response back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, tlsListener bool, cr *compiledRule, ref *compiledRef, x *requestState, respFilters func(http.Header)) {
	bs := ref.backend
	lb := bs.up.Table()
	var hash uint64
	var hasKey bool
	if lb.Maglev() != nil {
		var k string
		if k, hasKey = requestKey(r, lb.Key()); hasKey {
			hash = maglev.HashString(k)
		}
	}
	upgrade := p.prepareOutbound(r, tlsListener)

	ctx := r.Context()
	if d := grpcTimeout(r, x, cr.timeouts.Request); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	x.exchange = ctx
	ob := &outbound{u: *r.URL, w: w}
	ob.trace.Got1xxResponse = ob.got1xx
	ctx = httptrace.WithClientTrace(ctx, &ob.trace)
	out := r.WithContext(ctx)
	out.RequestURI = ""
	u := &ob.u
	u.Scheme = "http"
	if bs.up.TLS() != nil {
		u.Scheme = "https"
	}
	out.URL = u
	out.Close = false
	if r.ContentLength == 0 && r.Body != nil && r.Body != http.NoBody {
		// net/http gives bodyless requests a non-nil Body; an empty body
		// needs no framing upstream.
		out.Body = http.NoBody
	}

	bs.active.Add(1)
	if rb := bs.retry.Load().budget; rb != nil {
		rb.request(x.start)
	}
	retrySlots := int64(0)
	defer func() {
		bs.active.Add(-1)
		bs.retrying.Add(-retrySlots)
	}()

	attempts := 1 + defaultRetries
	if cr.retry != nil {
		attempts = 1 + cr.retry.Attempts
	}
	var tried *upstream.Member
	notSentRetries := 0
	for attempt := 0; ; attempt++ {
		ep, ticket := x.sess.pinned(tried)
		if ep == nil {
			ep, ticket = lb.Pick(hash, hasKey, tried)
		}
		if ep == nil {
			x.fail(w, http.StatusServiceUnavailable, reasonNoHealthyEndpoint, "no healthy upstream\n")
			return
		}
		tried = ep
		u.Host = ep.Addr()
		x.endpoint = ep.Addr()
		sent := time.Now()
		resp, done, err := p.roundTrip(out, ep, ticket, cr.timeouts.BackendRequest)
		x.upstream = time.Since(sent)
		if err == nil {
			bs.upstreamTime.Observe(x.upstream.Seconds())
		}
		if err != nil {
			if p.bodyFailed(w, r, x) {
				return
			}
			notSent := pool.NotSent(err)
			if ctx.Err() != nil {
				if r.Context().Err() != nil {
					x.gone()
				}
				x.fail(w, http.StatusGatewayTimeout, reasonTimeout, "upstream request timeout\n")
				return
			}
			if notSent {
				// Nothing reached the backend: trying another endpoint
				// costs no backend work, so it is outside the retry
				// budget, bounded by the number of endpoints. A policy
				// of zero attempts disables it too.
				bs.connectErrors.Inc()
				// The request may go to another endpoint whatever its
				// method, but only with its body whole: an attempt
				// that read from it (into a connection found dead
				// before a byte left) spent it.
				notSent = x.unspent()
				if notSent && notSentRetries < min(lb.Len(), maxConnectRetries) && attempts > 1 {
					notSentRetries++
					attempt--
					x.retries++
					continue
				}
			}
			if attempt+1 < attempts && p.retryable(r, cr, notSent, err) && p.allowRetry(bs) {
				retrySlots++
				x.retries++
				p.metrics.retries.WithLabelValues(cr.routeLabel).Inc()
				p.backoff(ctx, cr, bs, attempt)
				continue
			}
			if errors.Is(err, context.DeadlineExceeded) {
				x.fail(w, http.StatusGatewayTimeout, reasonTimeout, "upstream request timeout\n")
				return
			}
			if errors.Is(err, pool.ErrEndpointBusy) {
				// Every endpoint tried is at its connection limit
				// (ConnectionLimits.MaxPerEndpoint).
				x.fail(w, http.StatusServiceUnavailable, reasonNoHealthyEndpoint, "upstream busy\n")
				return
			}
			p.log.Debug("upstream error", "backend", bs.name, "endpoint", ep.Addr(), "error", err)
			x.fail(w, http.StatusBadGateway, reasonUpstreamError, "upstream error\n")
			return
		}
		if cr.retry != nil && attempt+1 < attempts && retryCode(cr.retry, resp.StatusCode) && replayable(r) && p.allowRetry(bs) {
			drainAndClose(resp.Body)
			done()
			retrySlots++
			x.retries++
			p.metrics.retries.WithLabelValues(cr.routeLabel).Inc()
			p.backoff(ctx, cr, bs, attempt)
			if ctx.Err() != nil {
				x.fail(w, http.StatusGatewayTimeout, reasonTimeout, "upstream request timeout\n")
				return
			}
			continue
		}
		p.writeResponse(w, r, resp, upgrade, x, respFilters)
		done()
		return
	}
}

// maxConnectRetries bounds the endpoints tried for a request whose
// attempts fail before anything is sent (connection refused, say).
const maxConnectRetries = 3

// outbound holds what the upstream request needs besides the client's
// request, in one allocation: its URL and the trace that relays 1xx
// responses to the client.
type outbound struct {
	u     url.URL
	trace httptrace.ClientTrace
	w     http.ResponseWriter
}

func (o *outbound) got1xx(code int, header textproto.MIMEHeader) error {
	return forward1xx(o.w, code, header)
}

// forward1xx relays an informational response (103 Early Hints, say) to the
// client. 100 Continue is not relayed: the server sends it itself when the
// request body is first read.
func forward1xx(w http.ResponseWriter, code int, header textproto.MIMEHeader) error {
	if code == http.StatusContinue || code == http.StatusSwitchingProtocols {
		return nil
	}
	h := w.Header()
	for k, vv := range header {
		h[k] = vv
	}
	w.WriteHeader(code)
	clear(h)
	return nil
}

// defaultRetries is the retry a request gets without a retry policy: once,
// on a connection failure before the request was sent or, for a replayable
// idempotent request, on a failed connection.
const defaultRetries = 1

// roundTrip sends one attempt to an endpoint and reports its outcome to
// the endpoint's breaker. done must be called once the response is
// finished with (it is a no-op on error).
func (p *Proxy) roundTrip(out *http.Request, ep *upstream.Member, ticket breaker.Ticket, timeout time.Duration) (resp *http.Response, done func(), err error) {
	req := out
	var cancel context.CancelFunc
	if timeout > 0 {
		var ctx context.Context
		ctx, cancel = context.WithTimeout(out.Context(), timeout)
		req = out.WithContext(ctx)
	}
	resp, err = ep.Transport().RoundTrip(req)
	if err != nil {
		if cancel != nil {
			cancel()
		}
		if errors.Is(err, pool.ErrEndpointBusy) || out.Context().Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			// A local limit, or the client gone (or its request body
			// broken, which cancels an HTTP/2 request): not the
			// endpoint failing.
			ep.Cancel(ticket)
		} else {
			ep.Done(ticket, false)
		}
		return nil, noop, err
	}
	ep.Done(ticket, resp.StatusCode < 500 || !ep.Count5xx())
	if cancel == nil {
		return resp, noop, nil
	}
	return resp, cancel, nil
}

func noop() {}

// retryable reports whether a failed attempt may be retried.
func (p *Proxy) retryable(r *http.Request, cr *compiledRule, notSent bool, err error) bool {
	if notSent {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) && cr.retry == nil {
		return false
	}
	return replayable(r) && (httpsem.Idempotent(r) || cr.retry != nil)
}

// replayable reports whether a request can be sent again: it has no body.
func replayable(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
}

func retryCode(rp *RetryPolicy, code int) bool {
	for _, c := range rp.Codes {
		if c == code {
			return true
		}
	}
	return false
}

// allowRetry applies the retry budget of a backend: its own
// [RetryBudget] when it has one, else [Options].RetryBudget, by which
// retries in flight may be at most a fraction of the requests in flight
// (at least three). When it returns true the caller holds one retry slot
// until the request ends.
func (p *Proxy) allowRetry(bs *backendState) bool {
	if rb := bs.retry.Load().budget; rb != nil {
		if !rb.allow(time.Now()) {
			return false
		}
		bs.retrying.Add(1)
		return true
	}
	budget := p.opts.RetryBudget
	if budget <= 0 {
		budget = 0.2
	}
	limit := max(int64(float64(bs.active.Load())*budget), 3)
	if bs.retrying.Add(1) > limit {
		bs.retrying.Add(-1)
		return false
	}
	return true
}

// backoff waits before retry number attempt+1: exponential with full
// jitter, bounded as [retryBackoff] says. It returns false when ctx ended
// while waiting.
func (p *Proxy) backoff(ctx context.Context, cr *compiledRule, bs *backendState, attempt int) bool {
	base, ceiling := retryBackoff(cr.retry, bs.retry.Load())
	t := time.NewTimer(retryDelay(base, ceiling, attempt, rand.Int64N))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func drainAndClose(b io.ReadCloser) {
	io.CopyN(io.Discard, b, 4<<10)
	b.Close()
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeResponse copies the upstream response to the client: headers without
// hop-by-hop fields, response filters applied, body streamed, trailers.
func (p *Proxy) writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, upgrade string, x *requestState, respFilters func(http.Header)) {
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		p.tunnel(w, r, resp, upgrade, x)
		return
	}
	if x.h2up != nil && resp.StatusCode < 300 {
		// A success without the upgrade would read as an open tunnel
		// to an extended CONNECT's client.
		x.fail(w, http.StatusBadGateway, reasonUpstreamError, "upstream did not switch protocols\n")
		return
	}
	h := w.Header()
	announced := len(resp.Trailer)
	for k, vv := range resp.Header {
		h[k] = vv
	}
	removeHopHeaders(h)
	respFilters(h)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = keys
	}
	x.status, x.wrote = resp.StatusCode, true
	if x.writeTimeout > 0 || x.body != nil && x.body.deadline {
		p.startResponse(w, x)
	}
	w.WriteHeader(resp.StatusCode)

	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	flush := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	rc := http.NewResponseController(w)
	if x.grpc {
		// A stream's response headers go out at once: a bidirectional
		// call may wait for them before sending its first message.
		rc.Flush()
	}
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			x.respBytes += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				x.reason = reasonClientGone
				return
			}
			if flush {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			p.log.Debug("upstream body error", "error", rerr)
			x.reason = reasonUpstreamError
			if x.grpc {
				// A gRPC call ends with its status in the trailers.
				x.endGRPC(h, rerr)
				return
			}
			// The backend failed mid-body: abort the client response so it
			// is not mistaken for a complete one.
			panic(http.ErrAbortHandler)
		}
	}
	for k, vv := range resp.Trailer {
		if announced > 0 && httpguts.HeaderValuesContainsToken(h["Trailer"], k) {
			h[k] = vv
		} else {
			h[http.TrailerPrefix+k] = vv
		}
	}
	if x.grpc {
		x.noteGRPCStatus(resp.Header, resp.Trailer)
	}
}

// observe records a finished request in the metrics and the access log.
func (p *Proxy) observe(r *http.Request, x *requestState) {
	logStatus := x.status
	if x.grpc && x.grpcStatus != grpcOK && logStatus < 400 {
		// A failed gRPC call is an error whatever its HTTP status.
		logStatus = http.StatusInternalServerError
	}
	if p.alog != nil && p.alog.want(logStatus, x.reason) {
		rec := accessRecord{
			start:     x.start,
			duration:  time.Since(x.start),
			upstream:  x.upstream,
			listener:  x.listener,
			route:     x.route,
			rule:      x.rule,
			backend:   x.backend,
			endpoint:  x.endpoint,
			method:    r.Method,
			host:      r.Host,
			path:      r.URL.Path,
			status:    x.status,
			reqBytes:  r.ContentLength,
			respBytes: x.respBytes,
			retries:   x.retries,
			client:    r.RemoteAddr,
			requestID: x.requestID,
			traceID:   x.traceID,
			reason:    x.reason,
			proto:     r.Proto,
			userAgent: r.UserAgent(),
			grpc:      x.grpc,
		}
		if x.grpc {
			rec.grpcStatus = x.grpcStatus
			rec.grpcService, rec.grpcMethod = grpcPath(r.URL.Path)
		}
		p.alog.log(&rec)
	}
	if x.reason != reasonNone {
		p.metrics.gateway.WithLabelValues(x.reason.String()).Inc()
	}
	if x.grpc {
		p.observeGRPC(x)
	}
	rs := p.metrics.requestSeries(x.route, x.backend, methodLabel(r.Method), codeLabel(x.status))
	rs.count.Inc()
	rs.duration.Observe(time.Since(x.start).Seconds())
}

// isH2CUpgrade reports whether an HTTP/1.1 request asks to upgrade to h2c.
func isH2CUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "h2c") && len(r.Header["Http2-Settings"]) == 1 && httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade")
}
