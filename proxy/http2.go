package proxy

import (
	"strings"
	"time"

	"github.com/rauta/rauta/internal/h2server"
)

// HTTP2Limits are the defences of rauta's own HTTP/2 server
// ([ServerRauta]) against clients that flood it. Zero fields take the
// defaults noted on each; a negative rate disables its limit. Rates are
// per connection: a burst of that many frames, refilled at that many per
// second. A limit reached closes the connection with GOAWAY
// ENHANCE_YOUR_CALM (PROTOCOL_ERROR for the handshake timeout, NO_ERROR for
// the idle one), or refuses one stream, and counts in the
// rauta_http2_limits_total metric under the label given. The
// connection-wide bounds (Limits.MaxConcurrentStreams, MaxReadFrameSize,
// MaxHeaderBytes, IdleTimeout) apply to HTTP/2 as well, and
// Limits.WriteTimeout to each stream. net/http's server
// ([ServerNetHTTP]) has fixed defences of its own and ignores these.
type HTTP2Limits struct {
	// ResetsPerSecond bounds the streams a client resets before their
	// response ended, or opens past MaxConcurrentStreams (the rapid reset
	// attack, CVE-2023-44487; "rapid_reset"); default 100. Handlers still
	// running after their stream was reset count against
	// MaxConcurrentStreams ("concurrent_streams" counts the streams
	// refused).
	ResetsPerSecond int
	// MaxHeaderBlockFrames bounds the HEADERS and CONTINUATION frames of
	// one header block, whose bytes are bounded to twice MaxHeaderBytes
	// plus 16 KiB (the CONTINUATION flood, CVE-2024-27316;
	// "continuation_flood"); default 32.
	MaxHeaderBlockFrames int
	// A header list larger than MaxHeaderBytes, as decoded, is answered
	// 431 ("header_list_size"); one larger than four times that closes
	// the connection (an HPACK bomb; "hpack_bomb").

	// MaxQueuedControlFrames bounds the control frames (SETTINGS and
	// PING acknowledgements, RST_STREAM, WINDOW_UPDATE) queued for
	// writing and not yet written; default 1000. SETTINGS and PING have
	// no rate: a frame whose acknowledgement is written as fast as it
	// arrives costs nothing, and gRPC clients ping for each burst of
	// data they receive. A client that sends them faster than it reads
	// the acknowledgements fills the queue and is cut off
	// ("settings_flood", "ping_flood"; "control_queue" when the queue
	// fills with RST_STREAM answering its stream errors).
	MaxQueuedControlFrames int
	// WindowUpdatesPerSecond bounds WINDOW_UPDATE frames other than those
	// that give back, by at least 1 KiB or in full, window the server's
	// DATA used ("window_update_flood"); default 1000.
	WindowUpdatesPerSecond int
	// PrioritiesPerSecond bounds PRIORITY frames ("priority_flood");
	// default 100.
	PrioritiesPerSecond int
	// EmptyFramesPerSecond bounds DATA, HEADERS and CONTINUATION frames
	// that carry nothing and end nothing ("empty_frame_flood"); default
	// 100.
	EmptyFramesPerSecond int
	// HandshakeTimeout bounds the wait for a new connection's preface and
	// first SETTINGS frame ("handshake_timeout"); default
	// Limits.ReadHeaderTimeout. A connection idle for Limits.IdleTimeout
	// is closed ("idle_timeout").
	HandshakeTimeout time.Duration
}

// newH2Server returns rauta's HTTP/2 server with the limits lim (with its
// defaults applied).
func (p *Proxy) newH2Server(lim Limits) *h2server.Server {
	l := lim.HTTP2
	hs := l.HandshakeTimeout
	if hs == 0 {
		hs = lim.ReadHeaderTimeout
	}
	counters := make(map[h2server.Limit]func(), 16)
	for _, k := range h2server.Limits() {
		c := p.metrics.http2Limits.WithLabelValues(k.String())
		counters[k] = c.Inc
	}
	return &h2server.Server{
		MaxConcurrentStreams:   uint32(lim.MaxConcurrentStreams),
		MaxReadFrameSize:       uint32(lim.MaxReadFrameSize),
		MaxHeaderListSize:      uint32(lim.MaxHeaderBytes),
		MaxHeaderBlockFrames:   l.MaxHeaderBlockFrames,
		ResetsPerSecond:        l.ResetsPerSecond,
		MaxQueuedControlFrames: l.MaxQueuedControlFrames,
		WindowUpdatesPerSecond: l.WindowUpdatesPerSecond,
		PrioritiesPerSecond:    l.PrioritiesPerSecond,
		EmptyFramesPerSecond:   l.EmptyFramesPerSecond,
		HandshakeTimeout:       hs,
		IdleTimeout:            lim.IdleTimeout,
		WriteTimeout:           lim.WriteTimeout,
		EnableConnectProtocol:  true, // WebSockets over HTTP/2, h2tunnel.go
		ErrorLog:               p.log,
		OnLimit:                func(k h2server.Limit) { counters[k]() },
		UniqueFields:           []string{strings.ToLower(p.requestIDHeader)},
	}
}
