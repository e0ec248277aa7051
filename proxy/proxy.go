package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/l4"
	"github.com/rauta/rauta/pool"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

// Options configure a [Proxy]. The zero value is usable.
type Options struct {
	// Logger receives the proxy's logs; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the proxy's Prometheus collectors; nil registers
	// them with a new registry returned by [Proxy.Registry].
	Registerer prometheus.Registerer
	// Limits bound what clients can make the proxy hold.
	Limits Limits
	// Server selects the HTTP server implementations that serve the
	// listeners the Proxy binds; the zero value is [ServerRauta].
	Server ServerImpl
	// ShutdownTimeout bounds how long a released listener waits for its
	// requests to finish; zero means [DefaultShutdownTimeout].
	ShutdownTimeout time.Duration
	// TrustedProxies lists the client networks whose X-Forwarded-For,
	// X-Forwarded-Proto and X-Forwarded-Host headers are kept and appended
	// to. From any other client those headers are replaced, so a client
	// cannot spoof its address.
	TrustedProxies []netip.Prefix
	// Filters resolves ExtensionRef filters to user-defined filters; nil
	// makes every ExtensionRef a configuration error.
	Filters *filters.Registry
	// Pool configures the upstream connection pools. A backend's
	// [upstream.ConnectionLimits] override its limits for that backend's
	// endpoints.
	Pool pool.Options
	// RetryBudget is the fraction of a backend's active requests that may
	// be retries at any moment; zero means 0.2. At least three concurrent
	// retries per backend are always allowed. A backend's own
	// [BackendRetry].Budget replaces it for that backend.
	RetryBudget float64
	// AccessLog configures access logs; they are off unless a Logger is set.
	AccessLog AccessLog
	// RequestIDs configures request IDs (on by default).
	RequestIDs RequestIDs
	// Tracing configures W3C trace context propagation (on by default).
	Tracing Tracing
	// MirrorBodyLimit is the largest request body copied to mirrors;
	// larger requests are not mirrored. Zero means 64 KiB.
	MirrorBodyLimit int64
	// SessionKey is the AES-256 key, [SessionKeySize] bytes, that seals
	// the tokens of [SessionPersistence]. Empty makes New pick a random
	// key, so tokens are good only for this Proxy: replicas behind one
	// address must share a key for sessions to survive a client moving
	// from one replica to another (and a restart). Of another size, every
	// rule using session persistence is refused by Apply.
	SessionKey []byte
	// SessionClock tells session persistence the time, for its absolute
	// and idle timeouts; nil means time.Now.
	SessionClock func() time.Time
	// Streams configures the forwarding of TCP, TLS and UDP listeners
	// (timeouts, the ClientHello cap, the UDP session cap); its Logger
	// and Registerer are replaced by the proxy's.
	Streams l4.Options
}

// DefaultShutdownTimeout is the one default of rauta's graceful
// shutdowns: how long a listener released by [Proxy.Apply] waits for its
// requests to finish ([Options].ShutdownTimeout), and how long a process
// run by admin.Run gives the requests in
// flight once it is told to stop. It leaves room within Kubernetes'
// default 30 s termination grace period for the endpoint removal to reach
// the clients before the Pod is killed.
const DefaultShutdownTimeout = 15 * time.Second

// ServerImpl selects the HTTP server implementations behind a Proxy's
// listeners ([Options].Server), one choice for every protocol: rauta's own
// servers where it has them, or the Go project's. Either serves the same
// request path with the same [Limits]; they differ in the work done per
// request and connection. An unknown value makes [Proxy.Apply] fail when
// it binds a listener.
type ServerImpl uint8

const (
	// ServerRauta, the default, serves HTTP/1.1 with rauta's own server
	// (package internal/h1server), which reuses its buffers and does less
	// work per request than net/http's, and HTTP/2 (h2 over TLS, h2c with
	// prior knowledge or Upgrade) with rauta's own HTTP/2 server (package
	// internal/h2server), which batches the frames of all streams into
	// one write per round, passes every h2spec case, enforces
	// [HTTP2Limits] against floods, and offers WebSockets over HTTP/2
	// (extended CONNECT, RFC 8441).
	ServerRauta ServerImpl = iota
	// ServerNetHTTP serves HTTP/1.1 and HTTP/2 with the standard library's
	// net/http.Server, whose HTTP/2 is golang.org/x/net/http2's server as
	// bundled into net/http (HTTP/2 upgrades from h2c go to x/net's
	// http2.Server). It is the fallback should rauta's own servers
	// misbehave with some client, and the baseline their benchmarks are
	// measured against; [HTTP2Limits] do not apply to it, and it does not
	// offer extended CONNECT.
	ServerNetHTTP
)

// String returns "rauta" or "net/http".
func (s ServerImpl) String() string {
	switch s {
	case ServerRauta:
		return "rauta"
	case ServerNetHTTP:
		return "net/http"
	}
	return "ServerImpl(" + strconv.Itoa(int(s)) + ")"
}

// Proxy is a gateway's data plane: it serves a [Config] on its listeners
// (and, through [Proxy.Handler], in a program's own server) and swaps in a
// new one with [Proxy.Apply] without dropping requests.
//
// A Proxy is safe for concurrent use.
type Proxy struct {
	opts     Options
	log      *slog.Logger
	registry *prometheus.Registry
	metrics  *metrics
	pools    *pool.Pool

	applyMu   sync.Mutex // serialises Apply, UpdateEndpoints and Shutdown
	snap      atomic.Pointer[snapshot]
	listeners listenerManager
	backends  map[string]*backendState // by Backend.Name; guarded by applyMu
	closed    bool
	down      atomic.Bool // closed, for mounted handlers, which hold no lock
	// limiters keeps rate-limit buckets across configurations, keyed by
	// limit name (or place) and numbers; limitersUsed marks the ones the
	// Apply in progress uses, limitNames and limitUsers the names it met
	// and where first. replicas is the count set by SetReplicas. All are
	// guarded by applyMu.
	limiters     map[string]*limiter
	limitersUsed map[string]bool
	limitNames   map[string]string
	limitUsers   map[string]string
	replicas     int
	rateLimited  *prometheus.CounterVec
	upstreams    *upstream.Set
	streams      *l4.Forwarder
	mirrors      *filters.Mirrorer
	alog         *accessLogger

	requestIDHeader string // canonical
	tunnels         tunnelSet
	sessions        sessionSealer
}

// New returns a Proxy serving nothing; call [Proxy.Apply] to configure it.
func New(opts Options) *Proxy {
	p := &Proxy{
		opts:     opts,
		log:      opts.Logger,
		backends: make(map[string]*backendState),
		limiters: make(map[string]*limiter),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	reg := opts.Registerer
	if reg == nil {
		p.registry = prometheus.NewRegistry()
		reg = p.registry
	}
	p.metrics = newMetrics(reg)
	p.rateLimited = newRateLimitMetric(reg)
	p.alog = newAccessLogger(opts.AccessLog, p.metrics.accessLogDropped)
	p.requestIDHeader = http.CanonicalHeaderKey(opts.RequestIDs.Header)
	if p.requestIDHeader == "" {
		p.requestIDHeader = "X-Request-Id"
	}
	p.pools = pool.New(opts.Pool)
	p.sessions = newSessionSealer(opts.SessionKey, opts.SessionClock)
	if p.sessions.err != nil {
		p.log.Error("session persistence disabled", "error", p.sessions.err)
	}
	p.mirrors = p.newMirrorer()
	poolCollector := &poolCollector{p: p}
	if err := reg.Register(poolCollector); err != nil {
		p.log.Warn("pool metrics not registered", "error", err)
	}
	p.listeners = listenerManager{p: p, ports: make(map[string]*boundPort)}
	p.upstreams = p.newUpstreams()
	p.streams = p.newStreams(reg)
	p.snap.Store(&snapshot{ports: map[string]*portTable{}})
	return p
}

// Registry returns the registry holding the proxy's metrics when
// Options.Registerer was nil, else nil.
func (p *Proxy) Registry() *prometheus.Registry { return p.registry }

// ApplyError lists the parts of a Config that could not be served. The rest
// of the Config is in effect.
type ApplyError struct {
	// Listeners maps a listener name to why it is not served.
	Listeners map[string]error
	// Routes lists routes and rules that were dropped and why.
	Routes []error
	// Backends maps a backend name to why it is not served.
	Backends map[string]error
}

// Error implements error.
func (e *ApplyError) Error() string {
	var b strings.Builder
	b.WriteString("configuration partly rejected:")
	for _, k := range slices.Sorted(mapKeys(e.Listeners)) {
		fmt.Fprintf(&b, "\n  %v", e.Listeners[k])
	}
	for _, err := range e.Routes {
		fmt.Fprintf(&b, "\n  %v", err)
	}
	for _, k := range slices.Sorted(mapKeys(e.Backends)) {
		fmt.Fprintf(&b, "\n  backend %q: %v", k, e.Backends[k])
	}
	return b.String()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// ErrClosed is returned by Apply after Shutdown.
var ErrClosed = errors.New("proxy: shut down")

// Apply makes cfg the configuration in effect. Listeners are bound or
// released, routes compiled, backends resolved; then the new snapshot is
// published with one atomic store. Requests in flight finish on the snapshot
// they started with, and state that outlives configurations (connection
// pools, breakers, health, rate-limit buckets) is carried over by key.
//
// Invalid parts (a listener that cannot bind, a route with a bad regular
// expression, a backend with a bad CA bundle) are left out and reported in
// an *ApplyError; everything valid is served. A structurally invalid Config
// (duplicate listener names) is rejected whole and the previous one stays.
func (p *Proxy) Apply(cfg Config) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := cfg.validateListeners(); err != nil {
		p.metrics.applyErrors.Inc()
		return err
	}
	p.beginLimits()
	lpol, err := p.compileListenerPolicies(&cfg)
	if err != nil {
		p.metrics.applyErrors.Inc()
		return err
	}
	prev := p.snap.Load()
	aerr := &ApplyError{Listeners: map[string]error{}, Backends: map[string]error{}}

	backends := p.syncBackends(cfg.Backends, aerr.Backends)
	groups, lerrs := groupListeners(cfg.Listeners)
	for k, v := range lerrs {
		aerr.Listeners[k] = v
	}
	p.listeners.apply(groups, aerr.Listeners)

	snap := &snapshot{
		cfg:        &cfg,
		generation: prev.generation + 1,
		ports:      make(map[string]*portTable, len(groups)),
		served:     make(map[string]*portTable, len(cfg.Listeners)),
		backends:   backends,

		listenerPolicies: lpol,
	}
	p.compileRoutes(snap, &cfg, groups, aerr)
	p.applyStreams(&cfg, snap, aerr)
	p.endLimits()
	p.snap.Store(snap)
	p.upstreams.Settle()

	p.metrics.generation.Set(float64(snap.generation))
	p.metrics.lastApply.SetToCurrentTime()
	n := len(aerr.Listeners) + len(aerr.Routes) + len(aerr.Backends)
	if n == 0 {
		return nil
	}
	p.metrics.applyErrors.Add(float64(n))
	return aerr
}

// Config returns the configuration in effect, or the zero Config before the
// first Apply. It must not be modified.
func (p *Proxy) Config() Config {
	if s := p.snap.Load(); s.cfg != nil {
		return *s.cfg
	}
	return Config{}
}

// Generation returns the number of configurations applied.
func (p *Proxy) Generation() uint64 { return p.snap.Load().generation }

// Addr returns the address a listener is bound to, which tells the port
// when the listener asked for port 0.
func (p *Proxy) Addr(listener string) (net.Addr, bool) {
	s := p.snap.Load()
	if s.cfg == nil {
		return nil, false
	}
	for i := range s.cfg.Listeners {
		if l := &s.cfg.Listeners[i]; l.Name == listener {
			return p.listeners.addr(portKey(l))
		}
	}
	return nil, false
}

// Shutdown stops accepting connections, tells HTTP/2 clients to go away,
// closes keep-alive connections once their requests finish, and waits for
// requests in flight until ctx is done. Upgraded connections (WebSocket)
// still open when ctx ends are closed.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.applyMu.Lock()
	if p.closed {
		p.applyMu.Unlock()
		return nil
	}
	p.closed = true
	p.down.Store(true)
	p.applyMu.Unlock()

	p.upstreams.Close()
	err := p.listeners.shutdown(ctx)
	if serr := p.streams.Shutdown(ctx); serr != nil && err == nil {
		err = fmt.Errorf("streams: %w", serr)
	}
	p.tunnels.closeAll(ctx)
	p.pools.Close()
	p.alog.close()
	return err
}

// Explain reports how a request would be routed on a listener: which route
// and rule would match and why the others do not.
func (p *Proxy) Explain(listener string, req router.Request) ([]router.Candidate, error) {
	s := p.snap.Load()
	if s.cfg == nil {
		return nil, errors.New("no configuration applied")
	}
	for i := range s.cfg.Listeners {
		l := &s.cfg.Listeners[i]
		if l.Name != listener {
			continue
		}
		pt := s.ports[portKey(l)]
		if pt == nil {
			return nil, fmt.Errorf("listener %q is not serving", listener)
		}
		req.Listener = pt.listenerFor(req.Host).nameOrEmpty()
		return pt.table.Explain(&req)
	}
	return nil, fmt.Errorf("no listener %q", listener)
}
