package pool

import (
	"cmp"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options hold the limits and timeouts shared by every endpoint of a
// [Pool]. The zero value is usable: zero fields take the defaults given.
type Options struct {
	// DialTimeout bounds connecting, TLS handshake included.
	// Zero means 5s; negative means no limit other than the request's
	// context.
	DialTimeout time.Duration

	// KeepAlive is the TCP keep-alive period of backend connections.
	// Zero means the net package's default (15s); negative disables it.
	KeepAlive time.Duration

	// IdleTimeout is how long a connection may stay idle before it is
	// closed. Zero means 60s; negative means idle connections never expire.
	IdleTimeout time.Duration

	// MaxIdlePerEndpoint bounds the idle HTTP/1.1 connections kept per
	// endpoint. Zero means 512 (two HTTP/2 clients' worth of concurrent
	// streams to one endpoint: below the concurrency a proxy sees, the
	// connections beyond the bound are closed and dialed again under
	// steady load); negative keeps none (no reuse).
	MaxIdlePerEndpoint int

	// MaxConnsPerEndpoint bounds the open HTTP/1.1 connections (idle, in
	// use and being dialed) per endpoint. Zero means no limit.
	MaxConnsPerEndpoint int

	// MaxRequestsPerConn closes an HTTP/1.1 connection once it has
	// carried this many requests. Zero or negative means no limit.
	MaxRequestsPerConn int

	// MaxConnLifetime closes an HTTP/1.1 connection this long after it
	// was opened, when its exchange in progress ends (or, idle, when it is
	// next swept or taken). Zero or negative means no limit.
	MaxConnLifetime time.Duration

	// ConnWaitTimeout is how long a request waits for a connection when
	// the endpoint is at MaxConnsPerEndpoint. Zero fails at once with
	// ErrEndpointBusy (so that the caller can pick another endpoint or
	// answer 503); the request's context bounds any wait.
	ConnWaitTimeout time.Duration

	// ResponseHeaderTimeout bounds the wait for the response head after
	// the request head was written. Zero means no limit.
	ResponseHeaderTimeout time.Duration

	// ExpectContinueTimeout is how long a request carrying
	// "Expect: 100-continue" waits for 100 Continue before sending its body
	// anyway. Zero means 1s.
	ExpectContinueTimeout time.Duration

	// MaxResponseHeaderBytes bounds a response's header section (and its
	// trailer section), status line included. Zero means 64 KiB.
	MaxResponseHeaderBytes int

	// HTTP2ReadIdleTimeout is the time without frames on an HTTP/2
	// connection after which it is health-checked with a PING. Zero means
	// 30s; negative disables the check.
	HTTP2ReadIdleTimeout time.Duration

	// HTTP2PingTimeout is how long an HTTP/2 PING may go unanswered before
	// the connection is closed. Zero means 15s.
	HTTP2PingTimeout time.Duration

	// DialContext, if set, opens TCP connections instead of a net.Dialer.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)

	// Logger receives rare events (an H2 backend falling back to
	// HTTP/1.1). Nil means slog.Default().
	Logger *slog.Logger
}

func (c Options) withDefaults() Options {
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.MaxIdlePerEndpoint == 0 {
		c.MaxIdlePerEndpoint = 512
	} else if c.MaxIdlePerEndpoint < 0 {
		c.MaxIdlePerEndpoint = 0
	}
	c.MaxConnsPerEndpoint = max(c.MaxConnsPerEndpoint, 0)
	c.MaxRequestsPerConn = max(c.MaxRequestsPerConn, 0)
	c.MaxConnLifetime = max(c.MaxConnLifetime, 0)
	if c.ExpectContinueTimeout <= 0 {
		c.ExpectContinueTimeout = time.Second
	}
	if c.MaxResponseHeaderBytes <= 0 {
		c.MaxResponseHeaderBytes = 64 << 10
	}
	if c.HTTP2ReadIdleTimeout == 0 {
		c.HTTP2ReadIdleTimeout = 30 * time.Second
	} else if c.HTTP2ReadIdleTimeout < 0 {
		c.HTTP2ReadIdleTimeout = 0
	}
	if c.HTTP2PingTimeout <= 0 {
		c.HTTP2PingTimeout = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Pool is a registry of endpoint transports keyed by [Key]. Endpoints are
// created on first use and kept across configuration changes until
// [Pool.Retain] prunes them, so that connections survive a new snapshot
// that still names the same backend. A Pool is safe for concurrent use.
//
// Idle HTTP/1.1 connections are expired by one timer per pool that runs
// only while some connection is idle, and by a check when a connection is
// taken from the idle stack.
type Pool struct {
	cfg    Options
	dialer net.Dialer

	mu     sync.RWMutex
	eps    map[Key]*Endpoint
	closed bool

	idleTotal atomic.Int64 // idle HTTP/1.1 connections in the pool
	jarmed    atomic.Bool  // a sweep is scheduled
	jevery    atomic.Int64 // within this many nanoseconds
	jmu       sync.Mutex
	jtimer    *time.Timer
}

// New returns an empty pool with the limits of opts.
func New(opts Options) *Pool {
	opts = opts.withDefaults()
	p := &Pool{cfg: opts, eps: make(map[Key]*Endpoint)}
	p.dialer.KeepAlive = opts.KeepAlive
	return p
}

func (p *Pool) dial(ctx context.Context, addr string) (net.Conn, error) {
	if p.cfg.DialContext != nil {
		return p.cfg.DialContext(ctx, "tcp", addr)
	}
	return p.dialer.DialContext(ctx, "tcp", addr)
}

// Get returns the endpoint transport for k, creating it on first use. It
// fails for an invalid key or a closed pool. Callers on a hot path should
// keep the returned *Endpoint in their compiled configuration rather than
// call Get per request.
func (p *Pool) Get(k Key) (*Endpoint, error) {
	p.mu.RLock()
	e, ok := p.eps[k]
	closed := p.closed
	p.mu.RUnlock()
	if ok {
		return e, nil
	}
	if closed {
		return nil, ErrPoolClosed
	}
	if err := k.validate(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	if e, ok := p.eps[k]; ok {
		return e, nil
	}
	e = newEndpoint(p, k)
	p.eps[k] = e
	return e, nil
}

// Lookup returns the endpoint for k if it exists, without creating it.
func (p *Pool) Lookup(k Key) (*Endpoint, bool) {
	p.mu.RLock()
	e, ok := p.eps[k]
	p.mu.RUnlock()
	return e, ok
}

// Retain keeps the endpoints whose key is in keys and removes the others,
// returning how many were removed. A removed endpoint closes its idle
// connections at once; requests in flight on it (and upgraded connections
// such as WebSockets) finish normally, and their connections are closed
// instead of kept when they are done. A removed endpoint still serves
// requests from a caller holding it, without pooling.
func (p *Pool) Retain(keys []Key) int {
	keep := make(map[Key]struct{}, len(keys))
	for _, k := range keys {
		keep[k] = struct{}{}
	}
	var gone []*Endpoint
	p.mu.Lock()
	for k, e := range p.eps {
		if _, ok := keep[k]; !ok {
			delete(p.eps, k)
			gone = append(gone, e)
		}
	}
	p.mu.Unlock()
	for _, e := range gone {
		e.retire()
	}
	return len(gone)
}

// Stats returns a snapshot of every endpoint's statistics, sorted by
// address and protocol.
func (p *Pool) Stats() []Stats {
	p.mu.RLock()
	out := make([]Stats, 0, len(p.eps))
	for _, e := range p.eps {
		out = append(out, e.Stats())
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b Stats) int {
		if c := cmp.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return cmp.Compare(a.Protocol, b.Protocol)
	})
	return out
}

// Close removes every endpoint as Retain(nil) does and makes later Get
// calls fail. Requests in flight finish.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Retain(nil)
	p.jmu.Lock()
	if p.jtimer != nil {
		p.jtimer.Stop()
	}
	p.jmu.Unlock()
	return nil
}

// armJanitor makes sure a sweep of idle connections runs within every
// (an endpoint's sweep period); it does nothing for a zero period. The
// common case, a sweep already due soon enough, takes no lock.
func (p *Pool) armJanitor(every time.Duration) {
	if every <= 0 || p.jarmed.Load() && time.Duration(p.jevery.Load()) <= every {
		return
	}
	p.jmu.Lock()
	defer p.jmu.Unlock()
	if p.jarmed.Load() && time.Duration(p.jevery.Load()) <= every {
		return
	}
	p.jevery.Store(int64(every))
	p.jarmed.Store(true)
	if p.jtimer == nil {
		p.jtimer = time.AfterFunc(every, p.sweep)
	} else {
		p.jtimer.Reset(every)
	}
}

// sweep closes the idle connections that expired (idle timeout or
// lifetime), and reschedules itself, at the shortest sweep period of the
// endpoints that still have idle connections.
func (p *Pool) sweep() {
	now := time.Now()
	next := time.Duration(0)
	p.mu.RLock()
	closed := p.closed
	for _, e := range p.eps {
		if left, every := e.h1.sweep(now); left > 0 && every > 0 && (next == 0 || every < next) {
			next = every
		}
	}
	p.mu.RUnlock()
	if closed {
		return
	}
	p.jmu.Lock()
	if next > 0 {
		p.jevery.Store(int64(next))
		p.jtimer.Reset(next)
		p.jmu.Unlock()
		return
	}
	p.jarmed.Store(false)
	p.jmu.Unlock()
	if p.idleTotal.Load() > 0 {
		// A connection went idle while we were finishing: look again
		// soon, and settle on its endpoint's period then.
		p.armJanitor(minSweepEvery)
	}
}

// minSweepEvery is the shortest period of the idle connection sweep.
const minSweepEvery = 10 * time.Millisecond

// Limits are connection limits of one [Endpoint] that override the
// Pool's [Options], set with [Endpoint.SetLimits]: a proxy whose backends
// have limits of their own sets them on their endpoints. A zero field
// follows the Options; a negative one means no limit whatever the Options
// says. They govern HTTP/1.1 connections (those of HTTP1 and HTTP1TLS
// endpoints, and the HTTP/1.1 side of H2 and H2C ones); HTTP/2
// connections multiplex requests and follow the Options.
type Limits struct {
	// MaxConns overrides Options.MaxConnsPerEndpoint.
	MaxConns int
	// IdleTimeout overrides Options.IdleTimeout.
	IdleTimeout time.Duration
	// MaxRequests overrides Options.MaxRequestsPerConn.
	MaxRequests int
	// MaxLifetime overrides Options.MaxConnLifetime.
	MaxLifetime time.Duration
}

// connLimits are the limits in effect for one endpoint: its own over the
// Pool's Options. Zero (or, for idle, negative) means no limit.
type connLimits struct {
	own         Limits
	maxConns    int
	idle        time.Duration
	maxRequests int
	lifetime    time.Duration
}

// resolveLimits computes the limits in effect from Options with their
// defaults applied and an endpoint's own limits.
func resolveLimits(cfg *Options, l Limits) *connLimits {
	pick := func(own, pool int64) int64 {
		switch {
		case own > 0:
			return own
		case own < 0:
			return 0
		}
		return max(pool, 0)
	}
	return &connLimits{
		own:         l,
		maxConns:    int(pick(int64(l.MaxConns), int64(cfg.MaxConnsPerEndpoint))),
		idle:        time.Duration(pick(int64(l.IdleTimeout), int64(cfg.IdleTimeout))),
		maxRequests: int(pick(int64(l.MaxRequests), int64(cfg.MaxRequestsPerConn))),
		lifetime:    time.Duration(pick(int64(l.MaxLifetime), int64(cfg.MaxConnLifetime))),
	}
}

// sweepEvery is how often the idle connections of an endpoint under l
// need sweeping: half the shorter of the idle timeout and the lifetime,
// or zero when neither is set.
func (l *connLimits) sweepEvery() time.Duration {
	d := l.idle
	if l.lifetime > 0 && (d <= 0 || l.lifetime < d) {
		d = l.lifetime
	}
	if d <= 0 {
		return 0
	}
	return max(d/2, minSweepEvery)
}

// Stats is a snapshot of one endpoint's statistics, for metrics.
type Stats struct {
	// Address and Protocol identify the endpoint.
	Address  string
	Protocol Protocol
	// Open is the number of open connections (HTTP/2 ones included).
	Open int64
	// Idle and InUse split the open HTTP/1.1 connections; an upgraded
	// connection (WebSocket) is in use until it is closed.
	Idle, InUse int64
	// InFlight is the number of requests sent and not finished (their
	// response body not yet read to the end or closed).
	InFlight int64
	// Dials counts connections opened; DialErrors the dials (TLS
	// handshakes included) that failed.
	Dials, DialErrors uint64
	// Reused counts requests sent on a connection that served an earlier
	// one (HTTP/1.1).
	Reused uint64
	// Requests counts round trips started; Failures those that returned an
	// error; Retries the transparent retries of a request on a new
	// connection after a reused one was found dead.
	Requests, Failures, Retries uint64
}

// Endpoint is the transport of one backend endpoint, protocol and TLS
// configuration. It implements http.RoundTripper and is safe for concurrent
// use. See the package documentation for the behaviour of each protocol.
type Endpoint struct {
	key Key
	st  counters
	h1  *h1
	h2  *h2ep // H2 and H2C only
}

func newEndpoint(p *Pool, k Key) *Endpoint {
	e := &Endpoint{key: k}
	e.h1 = &h1{p: p, addr: k.Address, st: &e.st}
	e.h1.lim.Store(resolveLimits(&p.cfg, Limits{}))
	if k.Protocol.TLS() {
		e.h1.tlsCfg = clientTLS(k, "http/1.1")
	}
	if k.Protocol == H2 || k.Protocol == H2C {
		e.h2 = newH2(p, e)
	}
	return e
}

// clientTLS clones the key's TLS configuration for one endpoint with the
// given ALPN protocols, a server name and a session cache.
func clientTLS(k Key, protos ...string) *tls.Config {
	var c *tls.Config
	if k.TLS != nil {
		c = k.TLS.Clone()
	} else {
		c = &tls.Config{}
	}
	c.NextProtos = protos
	if c.ServerName == "" {
		host, _, _ := net.SplitHostPort(k.Address)
		c.ServerName = host
	}
	if c.ClientSessionCache == nil {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	return c
}

// Key returns the endpoint's key.
func (e *Endpoint) Key() Key { return e.key }

// RoundTrip sends req to the endpoint and returns its response. The
// request is sent to the endpoint's address whatever req.URL.Host says;
// the Host header (or :authority) comes from req.Host, else req.URL.Host.
//
// Only the path and query of req.URL are used for HTTP/1.1. The request's
// context bounds the whole exchange, response body included: its deadline
// is set on the connection and its cancellation closes the connection.
// A failure before any byte was written is a [NotSentError].
func (e *Endpoint) RoundTrip(req *http.Request) (*http.Response, error) {
	if e.h2 != nil {
		return e.h2.roundTrip(req)
	}
	return e.h1.roundTrip(req)
}

// Limits returns the endpoint's own limits, as last set by
// [Endpoint.SetLimits]; zero fields follow the Pool's Options.
func (e *Endpoint) Limits() Limits {
	return e.h1.lim.Load().own
}

// SetLimits replaces the endpoint's own limits. It takes effect at once
// and interrupts nothing: requests in flight finish on their connections,
// which are then kept or closed under the new limits (over a lowered
// MaxConns, connections close as their exchanges end until the endpoint
// is within it), and requests waiting for a connection may proceed under
// a raised one.
func (e *Endpoint) SetLimits(l Limits) {
	e.h1.setLimits(resolveLimits(&e.h1.p.cfg, l))
}

// CloseIdleConnections closes the endpoint's idle connections.
func (e *Endpoint) CloseIdleConnections() {
	e.h1.closeIdle(false)
	if e.h2 != nil {
		e.h2.closeIdle()
	}
}

func (e *Endpoint) retire() {
	e.h1.closeIdle(true)
	if e.h2 != nil {
		e.h2.retire()
	}
}

// Stats returns a snapshot of the endpoint's statistics.
func (e *Endpoint) Stats() Stats {
	return Stats{
		Address:    e.key.Address,
		Protocol:   e.key.Protocol,
		Open:       e.st.open.Load(),
		Idle:       e.st.idle.Load(),
		InUse:      e.st.inUse.Load(),
		InFlight:   e.st.inFlight.Load(),
		Dials:      e.st.dials.Load(),
		DialErrors: e.st.dialErrors.Load(),
		Reused:     e.st.reused.Load(),
		Requests:   e.st.requests.Load(),
		Failures:   e.st.failures.Load(),
		Retries:    e.st.retry.Load(),
	}
}
