package proxy

import (
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// reason says why the gateway answered a request itself instead of a
// backend. It labels the rauta_gateway_responses_total metric and access
// logs.
type reason uint8

// Reasons for answers made by the gateway.
const (
	// reasonNone means a backend answered.
	reasonNone reason = iota
	// reasonNoRoute: no route matched (404).
	reasonNoRoute
	// reasonBadRequest: the request was malformed, e.g. its path (400).
	reasonBadRequest
	// reasonFilter: a filter answered (a redirect, a CORS preflight).
	reasonFilter
	// reasonInvalidBackend: the rule's backend reference is invalid (500).
	reasonInvalidBackend
	// reasonNoHealthyEndpoint: no endpoint could be picked (503): every
	// endpoint fails its health check, has its breaker open, or is at its
	// connection limit.
	reasonNoHealthyEndpoint
	// reasonRateLimited: a rate limit refused the request (429).
	reasonRateLimited
	// reasonUpstreamError: the backend failed (502).
	reasonUpstreamError
	// reasonTimeout: a route timeout expired (504).
	reasonTimeout
	// reasonPanic: serving the request panicked (500).
	reasonPanic
	// reasonClientGone: the client went away before the answer.
	reasonClientGone
	// reasonMisdirected: an HTTPS request whose Host belongs to another
	// listener than the one its TLS server name (SNI) selected (421).
	reasonMisdirected
	// reasonBodyTooLarge: the request body is larger than its
	// RequestLimits.MaxBodyBytes (413).
	reasonBodyTooLarge
	// reasonRequestTimeout: the request body did not arrive within its
	// RequestLimits.ReadTimeout (408).
	reasonRequestTimeout
	// reasonBadBody: the request body is malformed (broken chunked
	// framing) or shorter than its Content-Length (400); the upstream
	// request was cut off before its end.
	reasonBadBody
	// reasonShutDown: the Proxy is shut down; a handler mounted with
	// Proxy.Handler answers 503.
	reasonShutDown
	numReasons
)

var reasonNames = [numReasons]string{
	"none", "no_route", "bad_request", "filter", "invalid_backend",
	"no_healthy_endpoint", "rate_limited", "upstream_error", "timeout", "panic",
	"client_gone", "misdirected", "body_too_large", "request_timeout",
	"bad_body", "shut_down",
}

// String returns the reason's metric label.
func (r reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// metrics holds the proxy's Prometheus collectors. Label values on the hot
// path come from a fixed set (methods, status classes) or from the
// configuration (route and backend names), so cardinality is bounded by the
// configuration, never by requests.
type metrics struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	gateway          *prometheus.CounterVec
	connectErrors    *prometheus.CounterVec
	retries          *prometheus.CounterVec
	breakerState     *prometheus.GaugeVec
	endpointHealthy  *prometheus.GaugeVec
	// breakerTransitions, healthTransitions and lbPolicy are labelled by
	// backend, not endpoint: their series stay few however endpoints
	// churn.
	breakerTransitions *prometheus.CounterVec
	healthTransitions  *prometheus.CounterVec
	lbPolicy           *prometheus.GaugeVec
	activeConns        *prometheus.GaugeVec
	connsRefused       *prometheus.CounterVec
	generation         prometheus.Gauge
	lastApply          prometheus.Gauge
	applyErrors        prometheus.Counter
	panics             prometheus.Counter
	mirrors            *prometheus.CounterVec
	accessLogDropped   prometheus.Counter
	http2Limits        *prometheus.CounterVec
	// grpc is labelled by route, rule (its name, else its index) and
	// gRPC status name, never by the service or method a client sends.
	grpc *prometheus.CounterVec

	// series holds the children of requests and duration already looked
	// up (a map[seriesKey]*requestSeries replaced whole when one is
	// added; the vectors never delete them), so that a request costs one
	// map lookup instead of hashing and validating its labels twice.
	series   atomic.Pointer[map[seriesKey]*requestSeries]
	seriesMu sync.Mutex // serialises additions to series
}

// seriesKey is the labels of a request's counter and duration.
type seriesKey struct{ route, backend, method, code string }

// requestSeries is the request counter and duration histogram of one
// seriesKey.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// requestSeries returns the counter and histogram of a request's labels.
func (m *metrics) requestSeries(route, backend, method, code string) *requestSeries {
	k := seriesKey{route, backend, method, code}
	if cur := m.series.Load(); cur != nil {
		if s := (*cur)[k]; s != nil {
			return s
		}
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	var next map[seriesKey]*requestSeries
	if cur := m.series.Load(); cur != nil {
		if s := (*cur)[k]; s != nil {
			return s
		}
		next = maps.Clone(*cur)
	} else {
		next = make(map[seriesKey]*requestSeries)
	}
	s := &requestSeries{
		count:    m.requests.WithLabelValues(route, backend, method, code),
		duration: m.duration.WithLabelValues(route, code),
	}
	next[k] = s
	m.series.Store(&next)
	return s
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_http_requests_total",
			Help: "HTTP requests served, by route, backend, method and status class.",
		}, []string{"route", "backend", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rauta_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response headers, by route and status class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rauta_upstream_response_seconds",
			Help:    "Time from sending a request to a backend to receiving its response headers, by backend.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"backend"}),
		gateway: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_gateway_responses_total",
			Help: "Responses made by the gateway itself instead of a backend, by reason.",
		}, []string{"reason"}),
		connectErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_upstream_connect_errors_total",
			Help: "Failures to reach a backend endpoint before a request was sent, by backend.",
		}, []string{"backend"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_retries_total",
			Help: "Requests retried, by route.",
		}, []string{"route"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rauta_breaker_state",
			Help: "Circuit breaker state per endpoint: 0 closed, 1 open, 2 half-open.",
		}, []string{"backend", "endpoint"}),
		endpointHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rauta_endpoint_healthy",
			Help: "1 when an endpoint passes its active health checks, 0 when it is taken out.",
		}, []string{"backend", "endpoint"}),
		breakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_breaker_transitions_total",
			Help: "Circuit breaker state changes of a backend's endpoints, by backend and the state entered (closed, open, half-open).",
		}, []string{"backend", "state"}),
		healthTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_endpoint_health_transitions_total",
			Help: "Active health check verdicts that changed an endpoint's health, by backend and result (healthy, unhealthy).",
		}, []string{"backend", "result"}),
		lbPolicy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rauta_backend_lb_policy",
			Help: "1 for the load-balancing policy (RoundRobin, Maglev) in use by each backend.",
		}, []string{"backend", "policy"}),
		activeConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rauta_active_connections",
			Help: "Open client connections, by listening address.",
		}, []string{"address"}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_connections_refused_total",
			Help: "Client connections closed at accept, by listening address and the limit they were past (listener_limit: Limits.MaxConnsPerListener, client_limit: Limits.MaxConnsPerClient).",
		}, []string{"address", "reason"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rauta_config_generation",
			Help: "Number of configurations applied since start.",
		}),
		lastApply: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rauta_config_last_apply_timestamp_seconds",
			Help: "Unix time of the last configuration applied.",
		}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_config_apply_errors_total",
			Help: "Configuration objects rejected when applying a configuration.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_panics_recovered_total",
			Help: "Panics recovered while serving a request.",
		}),
		mirrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_mirror_requests_total",
			Help: "Mirrored requests sent, by backend and outcome (sent: answered, failed: no answer).",
		}, []string{"backend", "outcome"}),
		accessLogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rauta_access_log_dropped_total",
			Help: "Access log records dropped because the writer fell behind.",
		}),
		http2Limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_http2_limits_total",
			Help: "HTTP/2 limits enforced by rauta's own server (Limits.HTTP2), by limit: a connection closed or a stream refused.",
		}, []string{"limit"}),
		grpc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rauta_grpc_responses_total",
			Help: "gRPC calls (requests with Content-Type application/grpc) finished, by route, rule and gRPC status (the backend's, or the gateway's own answer's).",
		}, []string{"route", "rule", "grpc_status"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.upstreamDuration, m.gateway,
			m.connectErrors, m.retries, m.breakerState, m.endpointHealthy,
			m.breakerTransitions, m.healthTransitions, m.lbPolicy,
			m.activeConns, m.connsRefused, m.generation, m.lastApply, m.applyErrors, m.panics,
			m.mirrors, m.accessLogDropped, m.http2Limits, m.grpc)
	}
	return m
}

// connState returns a ConnState hook counting the open connections of a
// listening address.
func (m *metrics) connState(addr string) func(net.Conn, http.ConnState) {
	g := m.activeConns.WithLabelValues(addr)
	return func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			g.Inc()
		case http.StateHijacked, http.StateClosed:
			g.Dec()
		}
	}
}

// methodLabel maps a method onto a bounded label set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodDelete, http.MethodConnect, http.MethodOptions,
		http.MethodTrace, http.MethodPatch:
		return m
	}
	return "OTHER"
}

var codeClasses = [...]string{"1xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// codeLabel maps a status code onto its class.
func codeLabel(code int) string {
	c := code / 100
	if c >= 1 && c <= 5 {
		return codeClasses[c]
	}
	return "other"
}
