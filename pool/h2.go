package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// h2FallbackFor is how long an H2 endpoint whose backend did not select
// "h2" keeps using HTTP/1.1 over TLS before offering h2 again.
const h2FallbackFor = time.Minute

// h2ep is the HTTP/2 side of an H2 or H2C endpoint: a net/http Transport
// restricted to HTTP/2 (it multiplexes and pools on its own) whose dialers
// connect only to this endpoint and count connections for statistics.
type h2ep struct {
	e        *Endpoint
	p        *Pool
	t        *http.Transport
	scheme   string
	tlsCfg   *tls.Config
	fallback atomic.Int64 // unix nanoseconds until which HTTP/1.1 is used
	spokeH2  atomic.Bool  // some connection negotiated h2
	retired  atomic.Bool
}

func newH2(p *Pool, e *Endpoint) *h2ep {
	h := &h2ep{e: e, p: p, scheme: "http"}
	h.t = &http.Transport{
		Protocols:              new(http.Protocols),
		IdleConnTimeout:        max(p.cfg.IdleTimeout, 0),
		ResponseHeaderTimeout:  p.cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout:  p.cfg.ExpectContinueTimeout,
		MaxResponseHeaderBytes: int64(p.cfg.MaxResponseHeaderBytes),
		DisableCompression:     true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: p.cfg.HTTP2ReadIdleTimeout,
			PingTimeout:     p.cfg.HTTP2PingTimeout,
		},
	}
	if e.key.Protocol == H2 {
		h.scheme = "https"
		h.tlsCfg = clientTLS(e.key, "h2", "http/1.1")
		h.t.Protocols.SetHTTP2(true)
		h.t.DialTLSContext = h.dialTLS
	} else {
		h.t.Protocols.SetUnencryptedHTTP2(true)
		h.t.DialContext = h.dial
	}
	return h
}

// dial connects to the endpoint whatever address the Transport derived
// from the request (h2c).
func (h *h2ep) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	addr := h.e.key.Address
	if d := h.p.cfg.DialTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	raw, err := h.p.dial(ctx, addr)
	if err != nil {
		h.e.st.dialErrors.Add(1)
		return nil, &NotSentError{Addr: addr, Err: err}
	}
	h.e.st.dials.Add(1)
	h.e.st.open.Add(1)
	return &countedConn{Conn: raw, st: &h.e.st}, nil
}

// dialTLS connects and negotiates TLS with ALPN h2. A backend that does not
// select "h2" turns the endpoint to HTTP/1.1 over TLS for a while.
func (h *h2ep) dialTLS(ctx context.Context, _, _ string) (net.Conn, error) {
	addr := h.e.key.Address
	if d := h.p.cfg.DialTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	raw, err := h.p.dial(ctx, addr)
	if err != nil {
		h.e.st.dialErrors.Add(1)
		return nil, &NotSentError{Addr: addr, Err: err}
	}
	// The counting wrapper goes under TLS: net/http recognises HTTP/2 by
	// the returned connection being a *tls.Conn.
	tc := tls.Client(&countedConn{Conn: raw, st: &h.e.st}, h.tlsCfg)
	h.e.st.open.Add(1)
	if err := tc.HandshakeContext(ctx); err != nil {
		tc.Close()
		h.e.st.dialErrors.Add(1)
		return nil, &NotSentError{Addr: addr, Err: fmt.Errorf("tls handshake: %w", err)}
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		h.fallback.Store(time.Now().Add(h2FallbackFor).UnixNano())
		h.p.cfg.Logger.Info("pool: backend did not negotiate h2; using HTTP/1.1 over TLS",
			"address", addr, "alpn", p, "retry_after", h2FallbackFor)
		return nil, &NotSentError{Addr: addr, Err: ErrH2NotNegotiated}
	}
	h.e.st.dials.Add(1)
	h.spokeH2.Store(true)
	return tc, nil
}

func (h *h2ep) roundTrip(req *http.Request) (*http.Response, error) {
	if isUpgrade(req) {
		// Upgrades exist only in HTTP/1.1 (RFC 8441 is not supported by
		// the HTTP/2 client): send them with HTTP/1.1 on the same address.
		return h.e.h1.roundTrip(req)
	}
	if f := h.fallback.Load(); f != 0 && time.Now().UnixNano() < f {
		return h.e.h1.roundTrip(req)
	}
	if req.URL == nil {
		closeReqBody(req)
		return nil, errorf(h.e.key.Address, "request", errors.New("nil URL"))
	}
	r := req
	// Until the backend is known to speak h2, keep the Transport from
	// closing the body when the dial fails, so that the HTTP/1.1 fallback
	// can still send it.
	guard := h.tlsCfg != nil && !h.spokeH2.Load() && req.Body != nil && req.Body != http.NoBody
	if guard || req.URL.Scheme != h.scheme || req.URL.Host != h.e.key.Address {
		r2 := *req
		u := *req.URL
		u.Scheme, u.Host = h.scheme, h.e.key.Address
		r2.URL = &u
		if r2.Host == "" {
			r2.Host = req.URL.Host
		}
		if guard {
			r2.Body = noCloseBody{req.Body}
		}
		r = &r2
	}
	st := &h.e.st
	st.requests.Add(1)
	st.inFlight.Add(1)
	resp, err := h.t.RoundTrip(r)
	if err != nil {
		st.inFlight.Add(-1)
		if errors.Is(err, ErrH2NotNegotiated) {
			fb := req
			if _, guarded := r.Body.(noCloseBody); !guarded && req.Body != nil && req.Body != http.NoBody {
				// The Transport has closed the body it was given.
				if req.GetBody == nil {
					st.failures.Add(1)
					return nil, err
				}
				body, gerr := req.GetBody()
				if gerr != nil {
					st.failures.Add(1)
					return nil, err
				}
				fb = req.Clone(req.Context())
				fb.Body = body
			}
			st.requests.Add(^uint64(0)) // counted again by the HTTP/1.1 path
			return h.e.h1.roundTrip(fb)
		}
		st.failures.Add(1)
		var ns *NotSentError
		if errors.As(err, &ns) {
			return nil, err
		}
		if h.p.cfg.ResponseHeaderTimeout > 0 && isTimeout(err) && req.Context().Err() == nil {
			err = fmt.Errorf("%w: %w", ErrResponseHeaderTimeout, err)
		}
		return nil, errorf(h.e.key.Address, "h2 round trip", err)
	}
	resp.Request = req
	if resp.Body == nil || resp.Body == http.NoBody {
		h.done()
		return resp, nil
	}
	resp.Body = &h2Body{rc: resp.Body, h: h}
	return resp, nil
}

// done accounts for the end of a response; on a retired endpoint it closes
// the connections that this left idle.
func (h *h2ep) done() {
	h.e.st.inFlight.Add(-1)
	if h.retired.Load() {
		h.t.CloseIdleConnections()
		// The Transport forgets the stream a moment after its body ends.
		time.AfterFunc(retiredRecheck, h.t.CloseIdleConnections)
	}
}

// retiredRecheck is when a retired endpoint looks again for connections
// left idle by a finished response.
const retiredRecheck = 100 * time.Millisecond

func (h *h2ep) retire() {
	h.retired.Store(true)
	h.t.CloseIdleConnections()
}

// h2Body counts the end of an HTTP/2 response for InFlight.
type h2Body struct {
	rc   io.ReadCloser
	h    *h2ep
	done atomic.Bool
}

// Read reads the response body.
func (b *h2Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish()
	}
	return n, err
}

// Close closes the response body.
func (b *h2Body) Close() error {
	err := b.rc.Close()
	b.finish()
	return err
}

func (b *h2Body) finish() {
	if b.done.CompareAndSwap(false, true) {
		b.h.done()
	}
}

// countedConn keeps Stats.Open for an HTTP/2 connection (under TLS for h2).
type countedConn struct {
	net.Conn
	st     *counters
	closed atomic.Bool
}

// Close closes the connection.
func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.st.open.Add(-1)
	}
	return c.Conn.Close()
}

// noCloseBody hides a request body's Close from the HTTP/2 Transport.
type noCloseBody struct{ io.ReadCloser }

// Close does nothing: the fallback path closes the body.
func (noCloseBody) Close() error { return nil }
