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

// newID returns 16 random bytes in hex.
func newID() string {
	var b [16]byte
	var out [32]byte
	crand.Read(b[:])
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// requestID sets the request ID on the outgoing request and the response.
func (p *Proxy) requestID(w http.ResponseWriter, r *http.Request, trustedClient bool) string {
	cfg := p.opts.RequestIDs
	if cfg.Disabled {
		return ""
	}
	key := p.requestIDHeader
	if vs := r.Header[key]; len(vs) == 1 && (cfg.TrustIncoming || trustedClient) && validID(vs[0]) {
		w.Header()[key] = vs
		return vs[0]
	}
	v := []string{newID()}
	r.Header[key] = v
	w.Header()[key] = v
	return v[0]
}

// traceContext validates or starts W3C trace context and returns the trace
// ID. An invalid traceparent is dropped together with its tracestate.
func (p *Proxy) traceContext(r *http.Request) string {
	cfg := p.opts.Tracing
	if cfg.Disabled {
		return ""
	}
	vs := r.Header["Traceparent"]
	if len(vs) == 1 {
		if id, ok := parseTraceparent(vs[0]); ok {
			return id
		}
	}
	delete(r.Header, "Traceparent")
	delete(r.Header, "Tracestate")
	if cfg.NoNewTraces {
		return ""
	}
	var b [24]byte
	for {
		crand.Read(b[:])
		if !allZero(b[:16]) && !allZero(b[16:]) {
			break
		}
	}
	var tp [55]byte
	copy(tp[:], "00-")
	hex.Encode(tp[3:35], b[:16])
	tp[35] = '-'
	hex.Encode(tp[36:52], b[16:])
	copy(tp[52:], "-00")
	if cfg.Sampled {
		tp[54] = '1'
	}
	v := string(tp[:])
	r.Header["Traceparent"] = []string{v}
	return v[3:35]
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
