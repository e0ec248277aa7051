package filters

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of MirrorOptions.
const (
	// DefaultMirrorMaxInFlight bounds the mirrors captured or sent at once.
	DefaultMirrorMaxInFlight = 64
	// DefaultMirrorMaxBodyBytes bounds the body copied for a mirror.
	DefaultMirrorMaxBodyBytes = 64 << 10
	// DefaultMirrorTimeout bounds each mirrored request.
	DefaultMirrorTimeout = 10 * time.Second
	// mirrorDrainBytes is how much of a mirror response body is read
	// (and discarded) before it is closed, so that small responses let
	// the connection be reused.
	mirrorDrainBytes = 64 << 10
)

// MirrorSender sends a mirrored request to a mirror backend. It is the
// transport seam between this package and the proxy: the proxy picks an
// endpoint of backend (one endpoint per mirror, as the spec requires), sets
// r.URL.Scheme and r.URL.Host, and round-trips r. The returned response body
// is drained (up to 64 KiB) and closed by the Mirrorer. SendMirror is called
// on its own goroutine, with a context that carries the original request's
// values but not its cancellation, bounded by MirrorOptions.Timeout.
type MirrorSender interface {
	SendMirror(backend string, r *http.Request) (*http.Response, error)
}

// MirrorSenderFunc adapts a function to MirrorSender.
type MirrorSenderFunc func(backend string, r *http.Request) (*http.Response, error)

// SendMirror calls f(backend, r).
func (f MirrorSenderFunc) SendMirror(backend string, r *http.Request) (*http.Response, error) {
	return f(backend, r)
}

// MirrorOptions configures a Mirrorer. Zero fields take the defaults.
type MirrorOptions struct {
	// Sender sends mirrored requests. Required.
	Sender MirrorSender
	// MaxInFlight bounds the mirrored requests that are being captured or
	// sent at once; when it is reached further mirrors are dropped.
	// Default DefaultMirrorMaxInFlight.
	MaxInFlight int
	// MaxBodyBytes bounds the request body copied for a mirror. A request
	// whose body is longer is not mirrored (a truncated body would be a
	// different request). Default DefaultMirrorMaxBodyBytes; a negative
	// value mirrors only requests without a body.
	MaxBodyBytes int64
	// Timeout bounds each mirrored request. Default DefaultMirrorTimeout.
	Timeout time.Duration
	// Rand returns a uniformly distributed number in [0, n); it decides
	// which requests a fractional mirror samples. It must be safe for
	// concurrent use. Default math/rand/v2.Uint64N.
	Rand func(n uint64) uint64
	// Logger receives send failures (at Debug level) and recovered
	// panics of the Sender (at Error level). Default slog.Default().
	Logger *slog.Logger
}

// MirrorStats counts what happened to the requests selected for mirroring.
type MirrorStats struct {
	// Sent counts mirrored requests the backend answered.
	Sent uint64
	// Failed counts mirrored requests whose send returned an error or
	// panicked.
	Failed uint64
	// Dropped counts mirrors not attempted because MaxInFlight was reached.
	Dropped uint64
	// TooLarge counts mirrors not sent because the body exceeded
	// MaxBodyBytes.
	TooLarge uint64
	// Abandoned counts mirrors not sent because the original body was not
	// read to its end: the upstream request failed or was canceled, or the
	// gateway answered the request itself.
	Abandoned uint64
}

// Mirrorer sends the mirrored copies of requests for RequestMirror filters:
// fire and forget, on their own goroutines, responses discarded. The primary
// request is never delayed or failed by a mirror: the body is copied while
// the primary request reads it, and a mirror that cannot be sent within the
// limits is skipped and counted. Create one with NewMirrorer and share it
// between all chains (via CompileOptions) so the limits are process-wide.
type Mirrorer struct {
	sender      MirrorSender
	maxInFlight int
	maxBody     int64
	timeout     time.Duration
	rand        func(uint64) uint64
	log         *slog.Logger

	mu       sync.Mutex
	inflight int
	idle     chan struct{} // closed when inflight drops to zero

	sent, failed, dropped, tooLarge, abandoned atomic.Uint64
}

// NewMirrorer returns a Mirrorer. It fails only when opts.Sender is nil.
func NewMirrorer(opts MirrorOptions) (*Mirrorer, error) {
	if opts.Sender == nil {
		return nil, errors.New("filters: MirrorOptions.Sender is required")
	}
	m := &Mirrorer{
		sender:      opts.Sender,
		maxInFlight: opts.MaxInFlight,
		maxBody:     opts.MaxBodyBytes,
		timeout:     opts.Timeout,
		rand:        opts.Rand,
		log:         opts.Logger,
	}
	if m.maxInFlight <= 0 {
		m.maxInFlight = DefaultMirrorMaxInFlight
	}
	if m.maxBody == 0 {
		m.maxBody = DefaultMirrorMaxBodyBytes
	}
	if m.timeout <= 0 {
		m.timeout = DefaultMirrorTimeout
	}
	if m.rand == nil {
		m.rand = rand.Uint64N
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	return m, nil
}

// Stats returns the counters accumulated since the Mirrorer was created.
func (m *Mirrorer) Stats() MirrorStats {
	return MirrorStats{
		Sent:      m.sent.Load(),
		Failed:    m.failed.Load(),
		Dropped:   m.dropped.Load(),
		TooLarge:  m.tooLarge.Load(),
		Abandoned: m.abandoned.Load(),
	}
}

// InFlight returns the number of mirrors being captured or sent.
func (m *Mirrorer) InFlight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inflight
}

// Wait blocks until no mirror is being captured or sent, or ctx is done. It
// is meant for graceful shutdown and tests.
func (m *Mirrorer) Wait(ctx context.Context) error {
	m.mu.Lock()
	if m.inflight == 0 {
		m.mu.Unlock()
		return nil
	}
	idle := m.idle
	m.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire takes an in-flight slot, or counts a drop.
func (m *Mirrorer) acquire() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight >= m.maxInFlight {
		m.dropped.Add(1)
		return false
	}
	if m.inflight == 0 {
		m.idle = make(chan struct{})
	}
	m.inflight++
	return true
}

// release gives back a slot taken by acquire.
func (m *Mirrorer) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight--
	if m.inflight == 0 {
		close(m.idle)
	}
}

// copyRequest snapshots r for a mirror: headers and URL are deep-copied, so
// later changes to r do not reach the mirror. The body is set at dispatch.
func (m *Mirrorer) copyRequest(r *http.Request) *http.Request {
	req := r.Clone(context.WithoutCancel(r.Context()))
	req.RequestURI = ""
	req.Body = http.NoBody
	req.GetBody = nil
	req.ContentLength = 0
	req.TransferEncoding = nil
	req.Close = false
	// The body is complete when the mirror is sent; waiting for
	// "100 Continue" would only slow it down.
	delete(req.Header, "Expect")
	return req
}

// dispatch sends req with body (nil: no body) on a new goroutine. The slot
// taken by acquire is released when the send ends.
func (m *Mirrorer) dispatch(backend string, req *http.Request, body []byte) {
	if len(body) > 0 {
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		}
	}
	go m.send(backend, req)
}

// send performs one mirrored request and discards the response.
func (m *Mirrorer) send(backend string, req *http.Request) {
	defer m.release()
	defer func() {
		if p := recover(); p != nil {
			m.failed.Add(1)
			m.log.Error("filters: mirror sender panicked", "backend", backend, "panic", p)
		}
	}()
	ctx, cancel := context.WithTimeout(req.Context(), m.timeout)
	defer cancel()
	resp, err := m.sender.SendMirror(backend, req.WithContext(ctx))
	if err != nil {
		m.failed.Add(1)
		m.log.Debug("filters: mirror request failed", "backend", backend, "error", err)
		return
	}
	if resp != nil && resp.Body != nil {
		_, _ = io.CopyN(io.Discard, resp.Body, mirrorDrainBytes)
		_ = resp.Body.Close()
	}
	m.sent.Add(1)
}

// mirrorStep is a compiled RequestMirror filter.
type mirrorStep struct {
	m        *Mirrorer
	backend  string
	num, den uint64
}

// compileMirror validates mr.
func compileMirror(i int, mr *Mirror, m *Mirrorer) (*mirrorStep, error) {
	const f = "requestMirror"
	if m == nil {
		return nil, configErr(i, f, ErrNoMirrorer, "")
	}
	if mr.Backend == "" {
		return nil, configErr(i, f+".backend", ErrInvalid, "must not be empty")
	}
	s := &mirrorStep{m: m, backend: mr.Backend, num: 1, den: 1}
	if fr := mr.Fraction; fr != nil {
		s.num, s.den = uint64(fr.Numerator), uint64(fr.Denominator)
		if s.den == 0 {
			s.den = 100
		}
		if s.num > s.den {
			return nil, configErr(i, f+".fraction.numerator", ErrInvalid, "%d is greater than the denominator %d", s.num, s.den)
		}
	}
	return s, nil
}

// pendingMirror is a mirror copy waiting for the request body.
type pendingMirror struct {
	m       *Mirrorer
	backend string
	req     *http.Request
}

// request samples r and, when selected, takes a copy of it. A request
// without a body is sent at once; otherwise the copy waits in st until the
// body has been read (see State.flushMirrors). Upgrade requests are never
// mirrored.
func (s *mirrorStep) request(r *http.Request, st *State) {
	if s.num == 0 || (s.num < s.den && s.m.rand(s.den) >= s.num) {
		return
	}
	if len(r.Header["Upgrade"]) > 0 {
		// A protocol upgrade (WebSocket) cannot be replayed to a second
		// backend; it is not mirrored.
		return
	}
	m := s.m
	withBody := r.Body != nil && r.Body != http.NoBody
	if withBody && (m.maxBody < 0 || r.ContentLength > m.maxBody) {
		m.tooLarge.Add(1)
		return
	}
	if !m.acquire() {
		return
	}
	req := m.copyRequest(r)
	if !withBody {
		m.dispatch(s.backend, req, nil)
		return
	}
	st.pending = append(st.pending, pendingMirror{m: m, backend: s.backend, req: req})
}

// abandonMirrors gives up the mirrors waiting for a body that will not be
// read (the chain answered the request itself).
func (st *State) abandonMirrors() {
	for _, p := range st.pending {
		p.m.abandoned.Add(1)
		p.m.release()
	}
	st.pending = nil
}

// flushMirrors replaces r.Body with a reader that copies the body for the
// pending mirrors and sends them when the body has been read to its end.
// If r's context ends first, the mirrors are abandoned, so no slot outlives
// the request.
func (st *State) flushMirrors(r *http.Request) {
	if len(st.pending) == 0 {
		return
	}
	t := &teeBody{rc: r.Body, pending: st.pending, want: -1}
	st.pending = nil
	t.limit = t.pending[0].m.maxBody
	for _, p := range t.pending[1:] {
		t.limit = min(t.limit, p.m.maxBody)
	}
	if r.ContentLength > 0 {
		t.want = r.ContentLength
		t.buf = make([]byte, 0, r.ContentLength)
	}
	r.Body = t
	t.mu.Lock()
	t.stop = context.AfterFunc(r.Context(), t.abandon)
	t.mu.Unlock()
}

// teeBody copies a request body, up to a limit, while the primary request
// reads it, then hands the copy to the pending mirrors. Read and Close may
// be called concurrently (http.Transport may close a request body from
// another goroutine), hence the mutex.
type teeBody struct {
	rc io.ReadCloser

	mu      sync.Mutex
	done    bool // mirrors dispatched or given up
	buf     []byte
	limit   int64
	want    int64 // Content-Length when known, else -1
	pending []pendingMirror
	stop    func() bool
}

// Read reads from the original body and copies what it got.
func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return n, err
	}
	if n > 0 {
		if int64(len(t.buf))+int64(n) > t.limit {
			t.finishLocked(func(p pendingMirror) { p.m.tooLarge.Add(1); p.m.release() })
			return n, err
		}
		t.buf = append(t.buf, p[:n]...)
	}
	switch {
	case err == io.EOF || (t.want >= 0 && int64(len(t.buf)) == t.want):
		body := t.buf
		t.finishLocked(func(p pendingMirror) { p.m.dispatch(p.backend, p.req, body) })
	case err != nil:
		t.finishLocked(abandonPending)
	}
	return n, err
}

// Close abandons mirrors whose body was not read to its end and closes the
// original body.
func (t *teeBody) Close() error {
	t.abandon()
	return t.rc.Close()
}

// abandon gives up the pending mirrors unless they were already handled.
func (t *teeBody) abandon() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.done {
		t.finishLocked(abandonPending)
	}
}

func abandonPending(p pendingMirror) {
	p.m.abandoned.Add(1)
	p.m.release()
}

// finishLocked applies fn to each pending mirror once and frees the copy.
func (t *teeBody) finishLocked(fn func(pendingMirror)) {
	t.done = true
	if t.stop != nil {
		t.stop()
	}
	for _, p := range t.pending {
		fn(p)
	}
	t.pending = nil
	t.buf = nil
}
