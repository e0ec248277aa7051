package h2server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/rauta/rauta/internal/conntrack"
)

// Defaults of the Server limits.
const (
	// DefaultMaxConcurrentStreams is the default MaxConcurrentStreams.
	DefaultMaxConcurrentStreams = 250
	// DefaultMaxReadFrameSize is the default MaxReadFrameSize: the
	// protocol's initial frame size, which every client can work with.
	DefaultMaxReadFrameSize = 16 << 10
	// DefaultMaxHeaderListSize is the default MaxHeaderListSize.
	DefaultMaxHeaderListSize = 64 << 10
	// DefaultMaxHeaderBlockFrames is the default MaxHeaderBlockFrames.
	DefaultMaxHeaderBlockFrames = 32
	// DefaultHandshakeTimeout is the default HandshakeTimeout.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultResetsPerSecond is the default ResetsPerSecond.
	DefaultResetsPerSecond = 100
	// DefaultMaxQueuedControlFrames is the default
	// MaxQueuedControlFrames.
	DefaultMaxQueuedControlFrames = 1000
	// DefaultWindowUpdatesPerSecond is the default WindowUpdatesPerSecond.
	DefaultWindowUpdatesPerSecond = 1000
	// DefaultPrioritiesPerSecond is the default PrioritiesPerSecond.
	DefaultPrioritiesPerSecond = 100
	// DefaultEmptyFramesPerSecond is the default EmptyFramesPerSecond.
	DefaultEmptyFramesPerSecond = 100

	// streamWindow and connWindow are the receive windows the server
	// grants: per stream (SETTINGS_INITIAL_WINDOW_SIZE) and per
	// connection. They bound the request body bytes buffered.
	streamWindow = 1 << 20
	connWindow   = 1 << 20
	// maxStreamBuffer bounds the response bytes a handler may have
	// queued on one stream before Write waits for the writer.
	maxStreamBuffer = 64 << 10
	// maxWriteBatch bounds the bytes one scheduling round puts into one
	// write.
	maxWriteBatch = 256 << 10
	// bombFactor: a header block that decodes to more than bombFactor
	// times MaxHeaderListSize is taken for an HPACK bomb and closes the
	// connection; between one and bombFactor times, the request alone is
	// refused with 431.
	bombFactor = 4
)

// Limit names a defence of the server: the argument of Server.OnLimit.
type Limit uint8

// The limits a Server enforces. Each closes the connection with GOAWAY
// (the code is given) except ConcurrentStreams and HeaderListSize, which
// refuse one stream.
const (
	// RapidReset: the client reset (or had refused) more streams than
	// ResetsPerSecond allows (CVE-2023-44487); ENHANCE_YOUR_CALM.
	RapidReset Limit = iota
	// ContinuationFlood: a header block spread over more than
	// MaxHeaderBlockFrames frames, or larger than twice the header list
	// size (CVE-2024-27316); ENHANCE_YOUR_CALM.
	ContinuationFlood
	// HPACKBomb: a header block that decodes to more than four times
	// MaxHeaderListSize, or holds one string longer than
	// MaxHeaderListSize; ENHANCE_YOUR_CALM.
	HPACKBomb
	// SettingsFlood: a SETTINGS frame arrived while
	// MaxQueuedControlFrames control frames were waiting to be written,
	// so its acknowledgement could not be queued: the client sends
	// SETTINGS faster than it reads the acknowledgements;
	// ENHANCE_YOUR_CALM.
	SettingsFlood
	// PingFlood: as SettingsFlood, for a PING frame; ENHANCE_YOUR_CALM.
	PingFlood
	// WindowUpdateFlood: more WINDOW_UPDATE frames that do not give back
	// window the server's DATA used than WindowUpdatesPerSecond;
	// ENHANCE_YOUR_CALM.
	WindowUpdateFlood
	// PriorityFlood: more PRIORITY frames than PrioritiesPerSecond;
	// ENHANCE_YOUR_CALM.
	PriorityFlood
	// EmptyFrameFlood: more frames without payload and without an end
	// flag (DATA, HEADERS, CONTINUATION) than EmptyFramesPerSecond;
	// ENHANCE_YOUR_CALM.
	EmptyFrameFlood
	// ControlQueue: a RST_STREAM answering a client's frame could not be
	// queued because MaxQueuedControlFrames control frames were waiting
	// to be written (the client causes stream errors faster than it
	// reads the answers); ENHANCE_YOUR_CALM.
	ControlQueue
	// ConcurrentStreams: a stream past MaxConcurrentStreams (open
	// streams, or handlers still running) was refused with RST_STREAM
	// REFUSED_STREAM.
	ConcurrentStreams
	// HeaderListSize: a request whose header list exceeds
	// MaxHeaderListSize was answered 431.
	HeaderListSize
	// HandshakeTimeoutLimit: the client preface and SETTINGS did not arrive
	// within HandshakeTimeout; the connection is closed (with GOAWAY
	// PROTOCOL_ERROR once the preface was read).
	HandshakeTimeoutLimit
	// IdleTimeoutLimit: no stream for IdleTimeout; GOAWAY NO_ERROR.
	IdleTimeoutLimit
	numLimits // the number of limits
)

var limitNames = [numLimits]string{
	"rapid_reset", "continuation_flood", "hpack_bomb", "settings_flood",
	"ping_flood", "window_update_flood", "priority_flood", "empty_frame_flood",
	"control_queue", "concurrent_streams", "header_list_size",
	"handshake_timeout", "idle_timeout",
}

// String returns the limit's metric label, such as "rapid_reset".
func (l Limit) String() string {
	if l < numLimits {
		return limitNames[l]
	}
	return "Limit(" + strconv.Itoa(int(l)) + ")"
}

// Limits lists every Limit, in order.
func Limits() []Limit {
	out := make([]Limit, numLimits)
	for i := range out {
		out[i] = Limit(i)
	}
	return out
}

// A Server serves HTTP/2 connections handed to it with ServeConn. Its
// fields configure it and must not change once ServeConn was called. A
// Server must not be copied after first use.
//
// Rate limits (the fields named PerSecond) are token buckets per
// connection: a burst of that many frames, refilled at that many per
// second. Zero means the default; negative means no limit.
type Server struct {
	// Handler serves the requests; nil means http.DefaultServeMux.
	Handler http.Handler

	// MaxConcurrentStreams is advertised to clients and enforced: a
	// stream beyond it, or beyond as many handlers still running on the
	// connection (handlers of streams the client reset included), is
	// refused with REFUSED_STREAM. Zero means
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is the largest frame payload accepted (advertised
	// as SETTINGS_MAX_FRAME_SIZE); 16384 to 16777215, zero means
	// DefaultMaxReadFrameSize.
	MaxReadFrameSize uint32
	// MaxHeaderListSize bounds a request's decoded header list (as
	// RFC 9113 sizes it: name and value lengths plus 32 per field),
	// advertised as SETTINGS_MAX_HEADER_LIST_SIZE. A larger request is
	// answered 431; one over four times as large closes the connection
	// (HPACKBomb). Zero means DefaultMaxHeaderListSize.
	MaxHeaderListSize uint32
	// MaxHeaderBlockFrames bounds the frames (HEADERS and CONTINUATION)
	// of one header block. Zero means DefaultMaxHeaderBlockFrames.
	MaxHeaderBlockFrames int

	// ResetsPerSecond bounds the streams a client resets, or opens past
	// the concurrency limit (RapidReset).
	ResetsPerSecond int
	// MaxQueuedControlFrames bounds the control frames (SETTINGS and
	// PING acknowledgements, RST_STREAM, WINDOW_UPDATE) queued for
	// writing and not yet written. SETTINGS and PING frames have no rate
	// limit: a client whose acknowledgements drain may send them as
	// often as it likes (grpc-go pings for each burst of data it
	// receives), while one that sends them faster than it reads the
	// answers fills this queue and is cut off (SettingsFlood, PingFlood,
	// ControlQueue). Zero means DefaultMaxQueuedControlFrames.
	MaxQueuedControlFrames int
	// WindowUpdatesPerSecond bounds WINDOW_UPDATE frames other than those
	// that give back, by at least 1 KiB or in full, window the server's
	// DATA used (WindowUpdateFlood).
	WindowUpdatesPerSecond int
	// PrioritiesPerSecond bounds PRIORITY frames (PriorityFlood).
	PrioritiesPerSecond int
	// EmptyFramesPerSecond bounds DATA, HEADERS and CONTINUATION frames
	// that carry nothing and end nothing (EmptyFrameFlood).
	EmptyFramesPerSecond int

	// HandshakeTimeout bounds the wait for the client's connection
	// preface and first SETTINGS frame. Zero means
	// DefaultHandshakeTimeout; negative means no limit.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection (GOAWAY NO_ERROR) that has had no
	// stream for this long. Zero means no limit.
	IdleTimeout time.Duration
	// WriteTimeout bounds each response, from its headers: a stream
	// still writing after it is reset with INTERNAL_ERROR. Zero means
	// no limit; handlers may set their own (http.ResponseController).
	WriteTimeout time.Duration

	// UniqueFields names (in lower case) response fields whose value
	// differs from one response to the next, such as a request ID. They
	// are encoded as HPACK literals never indexed, so that they neither
	// cost the encoder and the client a dynamic table insertion each nor
	// evict the fields that repeat.
	UniqueFields []string

	// EnableConnectProtocol offers extended CONNECT (RFC 8441): the
	// server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL and accepts a
	// CONNECT request with a :protocol pseudo-header field (and :scheme,
	// :path and :authority), which the handler sees as net/http and x/net
	// present it: Method "CONNECT", the protocol in
	// r.Header[":protocol"], r.URL from :path. Its r.Body carries the
	// stream's DATA until the client's END_STREAM; a 2xx response opens
	// the tunnel (Flush sends it at once), and the handler's return ends
	// it with END_STREAM. Without it, :protocol makes a request
	// malformed.
	EnableConnectProtocol bool

	// ErrorLog receives panics (Error) and connection errors (Debug).
	// Nil means slog.Default().
	ErrorLog *slog.Logger
	// OnLimit, if set, is called each time a limit is enforced (on the
	// connection's reading goroutine): for metrics.
	OnLimit func(Limit)

	conns conntrack.Set[*conn]
}

// ServeConnOpts are the optional arguments of ServeConn.
type ServeConnOpts struct {
	// Context is the parent of the requests' contexts; nil means
	// context.Background().
	Context context.Context
	// Handler, if set, serves this connection's requests instead of
	// Server.Handler.
	Handler http.Handler
	// UpgradeRequest is the HTTP/1.1 request of a connection upgraded to
	// h2c (RFC 7540 section 3.2), served as stream 1; its body must be
	// empty. Settings is the decoded HTTP2-Settings field that came with
	// it.
	UpgradeRequest *http.Request
	Settings       []byte
}

func (s *Server) logger() *slog.Logger {
	if s.ErrorLog != nil {
		return s.ErrorLog
	}
	return slog.Default()
}

func (s *Server) hit(l Limit) {
	if s.OnLimit != nil {
		s.OnLimit(l)
	}
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams > 0 {
		return s.MaxConcurrentStreams
	}
	return DefaultMaxConcurrentStreams
}

func (s *Server) maxFrame() uint32 {
	if s.MaxReadFrameSize >= 16<<10 && s.MaxReadFrameSize < 1<<24 {
		return s.MaxReadFrameSize
	}
	return DefaultMaxReadFrameSize
}

func (s *Server) maxHeaderList() uint32 {
	if s.MaxHeaderListSize > 0 {
		return s.MaxHeaderListSize
	}
	return DefaultMaxHeaderListSize
}

func (s *Server) maxBlockFrames() int {
	if s.MaxHeaderBlockFrames > 0 {
		return s.MaxHeaderBlockFrames
	}
	return DefaultMaxHeaderBlockFrames
}

func (s *Server) maxQueuedControl() int {
	if s.MaxQueuedControlFrames > 0 {
		return s.MaxQueuedControlFrames
	}
	return DefaultMaxQueuedControlFrames
}

func (s *Server) handshakeTimeout() time.Duration {
	switch {
	case s.HandshakeTimeout > 0:
		return s.HandshakeTimeout
	case s.HandshakeTimeout < 0:
		return 0
	}
	return DefaultHandshakeTimeout
}

// rate returns a per-second limit: v, or def when v is zero; 0 when v is
// negative (no limit).
func rate(v, def int) float64 {
	switch {
	case v > 0:
		return float64(v)
	case v < 0:
		return 0
	}
	return float64(def)
}

// ServeConn serves HTTP/2 on c until the client closes it, a connection
// error, an idle timeout, or Shutdown; it closes c before returning. c has
// either negotiated "h2" with ALPN or is a cleartext connection whose next
// bytes are the client's connection preface (h2c with prior knowledge, or
// after an Upgrade, see ServeConnOpts).
func (s *Server) ServeConn(c net.Conn, opts *ServeConnOpts) {
	if opts == nil {
		opts = &ServeConnOpts{}
	}
	sc := newConn(s, c, opts)
	if !s.conns.Add(sc) {
		c.Close()
		return
	}
	defer s.conns.Remove(sc)
	sc.serve(opts)
}

// Shutdown stops the server gracefully: every connection gets a first
// GOAWAY (NO_ERROR, with the largest stream identifier) and a PING; once
// the PING is acknowledged (or a second has passed) the last GOAWAY names
// the last stream taken, streams opened in the meantime included, and the
// connection is closed once its streams are done. New connections are
// closed at once. Shutdown waits until no connection is left or ctx ends
// (returning ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.Shut((*conn).drain)
	return s.conns.Wait(ctx, nil)
}

// Close closes every connection at once, handlers running or not.
func (s *Server) Close() error {
	s.conns.Shut(func(c *conn) { c.rwc.Close() })
	return nil
}

// budget is a token bucket of frames per connection.
type budget struct {
	tokens float64
	last   int64 // unix nanoseconds of the last refill
}

// take spends a token at the given rate per second (burst as large),
// reporting false when none is left; a zero rate never runs out.
func (b *budget) take(now int64, perSecond float64) bool {
	if perSecond == 0 {
		return true
	}
	if b.last == 0 {
		b.tokens = perSecond
	} else {
		b.tokens = min(perSecond, b.tokens+float64(now-b.last)*perSecond/1e9)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
