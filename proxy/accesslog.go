package proxy

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AccessLog configures access logging: one structured record per request.
// Records are handed to a background writer through a bounded queue, so
// logging never blocks a request; when the queue is full a record is
// dropped and counted in rauta_access_log_dropped_total.
type AccessLog struct {
	// Logger receives the records at Info level (Warn for 5xx). Nil turns
	// access logging off.
	Logger *slog.Logger
	// SampleRatio is the share of requests logged, in (0, 1]; zero means
	// all. Requests the gateway answered itself with 5xx are always logged.
	SampleRatio float64
	// OnlyErrors logs only requests answered with 4xx or 5xx.
	OnlyErrors bool
	// QueueSize bounds the records waiting for the writer; zero means 4096.
	QueueSize int
}

// RequestIDs configures request IDs. The zero value generates an ID for
// each request, replacing any the client sent, forwards it to the backend in
// X-Request-Id and returns it to the client.
type RequestIDs struct {
	// Disabled turns request IDs off.
	Disabled bool
	// Header is the header carrying the ID; empty means X-Request-Id.
	Header string
	// TrustIncoming keeps an ID the client sent (if it is a sane token of
	// at most 128 characters) instead of generating one. When false, an ID
	// from a client in Options.TrustedProxies is still kept.
	TrustIncoming bool
}

// Tracing configures W3C trace context propagation (traceparent and
// tracestate). The zero value forwards a valid incoming traceparent
// unchanged and starts a new trace (not sampled) when none arrives.
type Tracing struct {
	// Disabled turns trace context handling off: headers pass as they are.
	Disabled bool
	// NoNewTraces forwards incoming trace context but starts none.
	NoNewTraces bool
	// Sampled sets the sampled flag on traces the gateway starts.
	Sampled bool
}

// accessRecord is one request's access log record. It is passed by value
// through the queue; building the slog attributes happens on the writer.
type accessRecord struct {
	start     time.Time
	duration  time.Duration
	upstream  time.Duration
	listener  string
	route     string
	rule      int
	backend   string
	endpoint  string
	method    string
	host      string
	path      string
	status    int
	reqBytes  int64
	respBytes int64
	retries   int
	client    string
	requestID string
	traceID   string
	reason    reason
	proto     string
	userAgent string
	// grpc marks a gRPC call, logged with its service, method and status.
	grpc        bool
	grpcStatus  grpcCode
	grpcService string
	grpcMethod  string
}

// accessLogger owns the queue and the writer goroutine.
type accessLogger struct {
	cfg     AccessLog
	queue   chan accessRecord
	dropped prometheus.Counter
	wg      sync.WaitGroup
	closed  atomic.Bool
	mu      sync.RWMutex // held for reading while sending, for writing to close
}

func newAccessLogger(cfg AccessLog, dropped prometheus.Counter) *accessLogger {
	if cfg.Logger == nil {
		return nil
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	a := &accessLogger{cfg: cfg, queue: make(chan accessRecord, cfg.QueueSize), dropped: dropped}
	a.wg.Go(a.run)
	return a
}

// want reports whether a request with this status and reason is logged.
func (a *accessLogger) want(status int, reason reason) bool {
	if a.cfg.OnlyErrors && status < 400 {
		return false
	}
	if status >= 500 && reason != reasonNone {
		return true
	}
	if r := a.cfg.SampleRatio; r > 0 && r < 1 && rand.Float64() >= r {
		return false
	}
	return true
}

// log queues a record without blocking.
func (a *accessLogger) log(rec *accessRecord) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed.Load() {
		return
	}
	select {
	case a.queue <- *rec:
	default:
		a.dropped.Inc()
	}
}

// close flushes the queue and stops the writer.
func (a *accessLogger) close() {
	if a == nil {
		return
	}
	a.mu.Lock()
	if !a.closed.Swap(true) {
		close(a.queue)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *accessLogger) run() {
	ctx := context.Background()
	h := a.cfg.Logger.Handler()
	for rec := range a.queue {
		level := slog.LevelInfo
		if rec.status >= 500 || rec.grpc && rec.reason != reasonNone {
			level = slog.LevelWarn
		}
		if !h.Enabled(ctx, level) {
			continue
		}
		r := slog.NewRecord(rec.start, level, "request", 0)
		r.AddAttrs(
			slog.String("listener", rec.listener),
			slog.String("route", rec.route),
			slog.Int("rule", rec.rule),
			slog.String("backend", rec.backend),
			slog.String("upstream", rec.endpoint),
			slog.String("method", rec.method),
			slog.String("host", rec.host),
			slog.String("path", rec.path),
			slog.String("proto", rec.proto),
			slog.Int("status", rec.status),
			slog.Int64("request_bytes", rec.reqBytes),
			slog.Int64("response_bytes", rec.respBytes),
			slog.Duration("duration", rec.duration),
			slog.Duration("upstream_time", rec.upstream),
			slog.Int("retries", rec.retries),
			slog.String("client", rec.client),
			slog.String("user_agent", rec.userAgent),
			slog.String("request_id", rec.requestID),
			slog.String("trace_id", rec.traceID),
		)
		if rec.reason != reasonNone {
			r.AddAttrs(slog.String("reason", rec.reason.String()))
		}
		if rec.grpc {
			r.AddAttrs(
				slog.String("grpc_service", rec.grpcService),
				slog.String("grpc_method", rec.grpcMethod),
				slog.Int("grpc_status", int(rec.grpcStatus)),
				slog.String("grpc_status_name", rec.grpcStatus.String()),
			)
		}
		h.Handle(ctx, r)
	}
}

// validID reports whether an incoming request ID is kept: printable ASCII
// without spaces or quotes, 1 to 128 characters.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// requestIDs sets the request ID on the outgoing request and the
// response, and validates or starts W3C trace context (an invalid
// traceparent is dropped together with its tracestate). It returns the
// request ID and the trace ID. The IDs it generates come from one read of
// the random source and share one string and one header-value slice.
func (p *Proxy) requestIDs(w http.ResponseWriter, r *http.Request, trustedClient bool) (requestID, traceID string) {
	newRequest, newTrace := false, false
	key := p.requestIDHeader
	if cfg := p.opts.RequestIDs; !cfg.Disabled {
		if vs := r.Header[key]; len(vs) == 1 && (cfg.TrustIncoming || trustedClient) && validID(vs[0]) {
			w.Header()[key] = vs
			requestID = vs[0]
		} else {
			newRequest = true
		}
	}
	tracing := p.opts.Tracing
	if !tracing.Disabled {
		vs := r.Header["Traceparent"]
		if len(vs) == 1 {
			traceID, _ = parseTraceparent(vs[0])
		}
		if traceID == "" {
			delete(r.Header, "Traceparent")
			delete(r.Header, "Tracestate")
			newTrace = !tracing.NoNewTraces
		}
	}
	if !newRequest && !newTrace {
		return requestID, traceID
	}
	// 16 bytes of request ID, then a 16-byte trace ID and an 8-byte
	// parent ID, neither of which may be all zeros.
	var rnd [40]byte
	crand.Read(rnd[:])
	for newTrace && (allZero(rnd[16:32]) || allZero(rnd[32:])) {
		crand.Read(rnd[16:])
	}
	var buf [32 + 55]byte
	n := 0
	if newRequest {
		hex.Encode(buf[:32], rnd[:16])
		n = 32
	}
	if newTrace {
		tp := buf[n : n+55]
		copy(tp, "00-")
		hex.Encode(tp[3:35], rnd[16:32])
		tp[35] = '-'
		hex.Encode(tp[36:52], rnd[32:])
		copy(tp[52:], "-00")
		if tracing.Sampled {
			tp[54] = '1'
		}
		n += 55
	}
	str := string(buf[:n])
	// One allocation for both header values; each slice is full (len ==
	// cap), so appending to one never writes into the other.
	vals := make([]string, 2)
	if newRequest {
		requestID = str[:32]
		vals[0] = requestID
		v := vals[0:1:1]
		r.Header[key] = v
		w.Header()[key] = v
	}
	if newTrace {
		v := str[n-55:]
		traceID = v[3:35]
		vals[1] = v
		r.Header["Traceparent"] = vals[1:2:2]
	}
	return requestID, traceID
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseTraceparent validates a version-00 traceparent (or a later version,
// read as 00 as the spec allows) and returns its trace ID.
func parseTraceparent(v string) (string, bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	if !lowerHex(v[0:2]) || v[0:2] == "ff" || !lowerHex(v[3:35]) || !lowerHex(v[36:52]) || !lowerHex(v[53:55]) {
		return "", false
	}
	if v[0:2] == "00" && len(v) != 55 {
		return "", false
	}
	if len(v) > 55 && v[55] != '-' {
		return "", false
	}
	if v[3:35] == "00000000000000000000000000000000" || v[36:52] == "0000000000000000" {
		return "", false
	}
	return v[3:35], true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
