package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/yaml"

	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
)

// Options configure the admin [Handler].
type Options struct {
	// Proxy is the proxy whose configuration, metrics and routing are
	// shown; required.
	Proxy *proxy.Proxy
	// Gatherer provides /metrics; nil means the proxy's own registry
	// (proxy.Proxy.Registry) or, when the proxy registered its metrics
	// elsewhere, prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Ready reports readiness for /readyz; nil means ready once the proxy
	// has applied a configuration (its generation is not zero).
	Ready func() bool
	// Status returns the status of the objects served, rendered by
	// /debug/status as YAML (or JSON with ?format=json); nil makes
	// /debug/status answer 404.
	Status func() any
	// Logger receives errors writing responses; nil means slog.Default().
	Logger *slog.Logger
	// Pprof serves net/http/pprof under /debug/pprof/. It is off by
	// default: profiles expose internals and cost CPU while they run.
	Pprof bool
}

// Handler serves the admin endpoints; see the package documentation.
type Handler struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewHandler returns the admin handler of opts.Proxy.
func NewHandler(opts Options) (*Handler, error) {
	if opts.Proxy == nil {
		return nil, errors.New("admin: Options.Proxy is nil")
	}
	h := &Handler{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.Default()
	}
	g := opts.Gatherer
	if g == nil {
		if r := opts.Proxy.Registry(); r != nil {
			g = r
		} else {
			g = prometheus.DefaultGatherer
		}
	}
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.HandleFunc("GET /debug/config", h.config)
	h.mux.HandleFunc("GET /debug/status", h.status)
	h.mux.HandleFunc("GET /debug/route", h.route)
	h.mux.HandleFunc("GET /{$}", h.index)
	if opts.Pprof {
		h.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		h.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		h.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		h.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		h.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

const indexText = `rauta admin
  /metrics        Prometheus metrics
  /healthz        200 while the process runs
  /readyz         200 once a configuration is applied
  /debug/config   the configuration in effect (JSON)
  /debug/status   the status of every object (YAML; ?format=json)
  /debug/route    how a request would be routed, and the policy in effect:
                  ?listener=&host=&path=&method=&header=Name:Value&query=a=b (&format=json)
`

func (h *Handler) index(w http.ResponseWriter, _ *http.Request) {
	h.text(w, http.StatusOK, indexText)
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	h.text(w, http.StatusOK, "ok\n")
}

func (h *Handler) ready() bool {
	if h.opts.Ready != nil {
		return h.opts.Ready()
	}
	return h.opts.Proxy.Generation() > 0
}

func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if !h.ready() {
		h.text(w, http.StatusServiceUnavailable, "not ready: no configuration applied\n")
		return
	}
	h.text(w, http.StatusOK, "ok\n")
}

func (h *Handler) config(w http.ResponseWriter, _ *http.Request) {
	cfg := h.opts.Proxy.Config()
	b, err := json.Marshal(struct {
		Generation uint64       `json:"generation"`
		Config     proxy.Config `json:"config"`
	}{h.opts.Proxy.Generation(), cfg})
	var v any
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		err = dec.Decode(&v)
	}
	if err != nil {
		h.text(w, http.StatusInternalServerError, "marshalling the configuration: "+err.Error()+"\n")
		return
	}
	h.json(w, http.StatusOK, prune(v))
}

// prune drops the null and empty-string members of the objects of a
// decoded JSON document, which the configuration types without JSON tags
// (router matches, filter specs) are full of.
func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == nil || e == "" {
				delete(v, k)
				continue
			}
			v[k] = prune(e)
		}
	case []any:
		for i, e := range v {
			v[i] = prune(e)
		}
	}
	return v
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	if h.opts.Status == nil {
		http.NotFound(w, r)
		return
	}
	v := h.opts.Status()
	if r.URL.Query().Get("format") == "json" {
		h.json(w, http.StatusOK, v)
		return
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		h.text(w, http.StatusInternalServerError, "marshalling status: "+err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	h.write(w, http.StatusOK, b)
}

// RouteExplanation is the answer of /debug/route with format=json.
type RouteExplanation struct {
	// Request is the request as understood.
	Request RouteRequest `json:"request"`
	// Listeners has one entry per listener explained.
	Listeners []ListenerExplanation `json:"listeners"`
}

// RouteRequest is the request /debug/route explains.
type RouteRequest struct {
	// Host is the Host header.
	Host string `json:"host"`
	// Path is the request path.
	Path string `json:"path"`
	// Method is the request method.
	Method string `json:"method"`
	// Headers are the request headers given.
	Headers map[string][]string `json:"headers,omitempty"`
	// Query is the raw query.
	Query string `json:"query,omitempty"`
}

// ListenerExplanation is how one listener would route the request.
type ListenerExplanation struct {
	// Listener is the listener's name.
	Listener string `json:"listener"`
	// Error is set when the listener cannot route the request at all (it
	// is not serving, or the path is refused).
	Error string `json:"error,omitempty"`
	// Selected is the index in Candidates of the match that would serve
	// the request, or -1 when none would (the proxy answers 404).
	Selected int `json:"selected"`
	// Backends are the weighted backends of the selected rule.
	Backends []proxy.BackendRef `json:"backends,omitempty"`
	// Filters are the types of the selected rule's filters, in order.
	Filters []string `json:"filters,omitempty"`
	// Policy is the policy in effect for the request on the selected
	// rule (rate limits, request limits, session persistence, the
	// backends' balancing, health checks, breakers and connections) and
	// where each part comes from.
	Policy *PolicyExplanation `json:"policy,omitempty"`
	// Candidates are the matches considered, in the order of precedence.
	Candidates []Candidate `json:"candidates"`
}

// Candidate is one match of one rule as evaluated for the request.
type Candidate struct {
	// Route is "namespace/name".
	Route string `json:"route"`
	// Rule is the rule's index in the route.
	Rule int `json:"rule"`
	// RuleName is the rule's name, if any.
	RuleName string `json:"ruleName,omitempty"`
	// Match is the match's index in the rule, -1 for a rule without
	// matches.
	Match int `json:"match"`
	// Hostname is the route hostname that matched the host.
	Hostname string `json:"hostname,omitempty"`
	// Path is the path condition, e.g. "PathPrefix /api".
	Path string `json:"path"`
	// Verdict is Selected, Shadowed, WrongHostname, WrongPath, ...
	Verdict string `json:"verdict"`
	// Detail says why a condition failed.
	Detail string `json:"detail,omitempty"`
}

func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := router.Request{
		Host:     q.Get("host"),
		Path:     q.Get("path"),
		Method:   q.Get("method"),
		RawQuery: q.Get("query"),
		Header:   http.Header{},
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	for _, hv := range q["header"] {
		name, value, ok := strings.Cut(hv, ":")
		if !ok || strings.TrimSpace(name) == "" {
			h.text(w, http.StatusBadRequest, fmt.Sprintf("header %q: want Name:Value\n", hv))
			return
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	cfg := h.opts.Proxy.Config()
	var listeners []string
	if l := q.Get("listener"); l != "" {
		listeners = []string{l}
	} else {
		for _, l := range cfg.Listeners {
			listeners = append(listeners, l.Name)
		}
	}
	out := RouteExplanation{Request: RouteRequest{
		Host: req.Host, Path: req.Path, Method: req.Method, Headers: req.Header, Query: req.RawQuery,
	}}
	if len(req.Header) == 0 {
		out.Request.Headers = nil
	}
	for _, name := range listeners {
		le := ListenerExplanation{Listener: name, Selected: -1, Candidates: []Candidate{}}
		cands, err := h.opts.Proxy.Explain(name, req)
		if err != nil {
			le.Error = err.Error()
		}
		for i, c := range cands {
			le.Candidates = append(le.Candidates, Candidate{
				Route:    c.Namespace + "/" + c.Name,
				Rule:     c.RuleIndex,
				RuleName: c.RuleName,
				Match:    c.MatchIndex,
				Hostname: c.Hostname,
				Path:     c.PathMatch.Type.String() + " " + c.PathMatch.Value,
				Verdict:  c.Verdict.String(),
				Detail:   c.Detail,
			})
			if c.Verdict == router.Selected && le.Selected < 0 {
				le.Selected = i
				if rule := findRule(&cfg, c.Namespace, c.Name, c.RuleIndex); rule != nil {
					le.Backends = rule.Backends
					for _, f := range rule.Filters {
						le.Filters = append(le.Filters, f.Type.String())
					}
					le.Policy = explainPolicy(&cfg, name, findRoute(&cfg, c.Namespace, c.Name), c.RuleIndex)
				}
			}
		}
		out.Listeners = append(out.Listeners, le)
	}
	if len(cfg.Listeners) == 0 && len(listeners) == 0 {
		h.text(w, http.StatusServiceUnavailable, "no configuration applied\n")
		return
	}
	if q.Get("format") == "json" {
		h.json(w, http.StatusOK, out)
		return
	}
	h.text(w, http.StatusOK, out.String())
}

// findRule returns a rule of the Config, or nil.
func findRule(cfg *proxy.Config, ns, name string, rule int) *proxy.Rule {
	r := findRoute(cfg, ns, name)
	if r == nil || rule < 0 || rule >= len(r.Rules) {
		return nil
	}
	return &r.Rules[rule]
}

// String renders the explanation for people, one line per candidate.
func (e *RouteExplanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s host %q", e.Request.Method, e.Request.Path, e.Request.Host)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range e.Request.Headers {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, " %s: %s", k, strings.Join(e.Request.Headers[k], ","))
	}
	if e.Request.Query != "" {
		fmt.Fprintf(&b, " query %q", e.Request.Query)
	}
	b.WriteString("\n")
	for _, l := range e.Listeners {
		fmt.Fprintf(&b, "\nlistener %s: ", l.Listener)
		switch {
		case l.Error != "":
			b.WriteString(l.Error + "\n")
			continue
		case len(l.Candidates) == 0:
			b.WriteString("no route attached (404)\n")
		case l.Selected < 0:
			b.WriteString("no route matches (404)\n")
		default:
			c := l.Candidates[l.Selected]
			fmt.Fprintf(&b, "route %s rule %d", c.Route, c.Rule)
			if c.RuleName != "" {
				fmt.Fprintf(&b, " %q", c.RuleName)
			}
			if c.Match >= 0 {
				fmt.Fprintf(&b, " match %d", c.Match)
			}
			if len(l.Filters) > 0 {
				b.WriteString(" filters " + strings.Join(l.Filters, ", "))
			}
			var refs []string
			for _, ref := range l.Backends {
				n := ref.Backend
				if n == "" {
					n = "(invalid reference: 500)"
				}
				refs = append(refs, n+" weight "+strconv.FormatUint(uint64(ref.Weight), 10))
			}
			if len(refs) > 0 {
				b.WriteString(" -> " + strings.Join(refs, ", "))
			}
			b.WriteString("\n")
		}
		for _, c := range l.Candidates {
			fmt.Fprintf(&b, "  %-13s %s rule %d", c.Verdict, c.Route, c.Rule)
			if c.RuleName != "" {
				fmt.Fprintf(&b, " %q", c.RuleName)
			}
			if c.Match >= 0 {
				fmt.Fprintf(&b, " match %d", c.Match)
			}
			fmt.Fprintf(&b, " (%s", c.Path)
			if c.Hostname != "" {
				fmt.Fprintf(&b, ", hostname %s", c.Hostname)
			}
			b.WriteString(")")
			if c.Detail != "" {
				b.WriteString(": " + c.Detail)
			}
			b.WriteString("\n")
		}
		if l.Policy != nil {
			b.WriteString("  policy in effect:\n")
			l.Policy.writeText(&b, "    ")
		}
	}
	return b.String()
}

func (h *Handler) json(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		h.text(w, http.StatusInternalServerError, "marshalling: "+err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	h.write(w, code, buf.Bytes())
}

func (h *Handler) text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	h.write(w, code, []byte(s))
}

func (h *Handler) write(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if _, err := w.Write(b); err != nil {
		h.log.Debug("admin: writing response", "error", err)
	}
}

// serve serves h on ln until ctx is done, then shuts the server down,
// waiting at most timeout for requests in flight. It returns nil after a
// shutdown caused by ctx, or the error that stopped the server.
func serve(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Start builds the admin handler from opts, binds addr and serves it in the
// background until ctx is done, as serve does. It returns the bound address
// and a channel that receives serve's result once it returns.
func Start(ctx context.Context, addr string, opts Options, timeout time.Duration) (net.Addr, <-chan error, error) {
	h, err := NewHandler(opts)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	h.log.Info("admin listening", "address", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, timeout) }()
	return ln.Addr(), done, nil
}

// A Source feeds a proxy its configuration for as long as [Run] runs it.
// Two methods are the whole contract: filesource.Source (YAML files, or
// Resources a Go program hands it) and kube.Controller (a cluster)
// implement it, and so can a program's own source.
type Source interface {
	// Run feeds the proxy until ctx is done and then returns, with
	// ctx.Err() or nil. An error returned before that (the first
	// configuration cannot be read, say) ends Run's life cycle.
	Run(ctx context.Context) error
	// Ready reports whether the proxy serves the source's first
	// configuration: /readyz says ready when it does.
	Ready() bool
}

// RunOptions configure [Run].
type RunOptions struct {
	// Proxy is the proxy the source feeds; required.
	Proxy *proxy.Proxy
	// Address is the admin listener's address, e.g. "127.0.0.1:9090";
	// empty runs without one.
	Address string
	// Status is as in [Options]: what /debug/status shows, such as
	// filesource.Source.Report or kube.Controller.Status.
	Status func() any
	// Pprof is as in [Options].
	Pprof bool
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger
	// ShutdownTimeout bounds the proxy's and the admin listener's
	// shutdowns; zero means proxy.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// OnStart, if set, is called with the admin listener's address (nil
	// without one) once it is bound, before the source runs.
	OnStart func(net.Addr)
}

// Run is the life cycle of a gateway process; see the package
// documentation. It starts the admin listener, runs src until it returns
// (which it does when ctx is done), then turns /readyz to 503, shuts the
// proxy down gracefully within the timeout and stops the admin listener.
// A source that ends because ctx is done is not an error; Run returns the
// error of a source that failed, of an admin address that cannot be bound
// (before anything runs), or of a shutdown that missed its deadline.
func Run(ctx context.Context, opts RunOptions, src Source) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = proxy.DefaultShutdownTimeout
	}
	var stopping atomic.Bool
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	var adminAddr net.Addr
	var adminDone <-chan error
	if opts.Address != "" {
		var err error
		adminAddr, adminDone, err = Start(adminCtx, opts.Address, Options{
			Proxy:  opts.Proxy,
			Ready:  func() bool { return !stopping.Load() && src.Ready() },
			Status: opts.Status,
			Logger: log,
			Pprof:  opts.Pprof,
		}, opts.ShutdownTimeout)
		if err != nil {
			return err
		}
	}
	if opts.OnStart != nil {
		opts.OnStart(adminAddr)
	}

	runErr := src.Run(ctx)
	if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
		runErr = nil
	}
	stopping.Store(true)
	log.Info("shutting down", "timeout", opts.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.ShutdownTimeout)
	defer cancel()
	shutErr := opts.Proxy.Shutdown(sctx)
	stopAdmin()
	if adminDone != nil {
		if err := <-adminDone; err != nil && shutErr == nil {
			shutErr = fmt.Errorf("admin listener: %w", err)
		}
	}
	if shutErr != nil {
		shutErr = fmt.Errorf("shutdown: %w", shutErr)
	}
	return errors.Join(runErr, shutErr)
}
