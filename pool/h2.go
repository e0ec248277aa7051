package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rauta/rauta/internal/h2client"
)

// h2FallbackFor is how long an H2 endpoint whose backend did not select
// "h2" keeps using HTTP/1.1 over TLS before offering h2 again.
const h2FallbackFor = time.Minute

// h2ep is the HTTP/2 side of an H2 or H2C endpoint: the open connections
// of rauta's HTTP/2 client to this endpoint, each carrying many streams.
// A request takes the first connection with room for a stream; when none
// has room, one connection is dialed and the requests that need it wait
// for that dial rather than each dialing its own.
type h2ep struct {
	e        *Endpoint
	p        *Pool
	tlsCfg   *tls.Config
	cfg      h2client.Config
	fallback atomic.Int64 // unix nanoseconds until which HTTP/1.1 is used
	retired  atomic.Bool

	mu      sync.Mutex
	conns   []*h2client.Conn
	dialing *h2dial
}

// h2dial is a dial in progress that requests wait for.
type h2dial struct {
	done chan struct{}
	err  error
}

func newH2(p *Pool, e *Endpoint) *h2ep {
	h := &h2ep{e: e, p: p}
	h.cfg = h2client.Config{
		MaxHeaderListSize:     uint32(p.cfg.MaxResponseHeaderBytes),
		IdleTimeout:           p.cfg.IdleTimeout,
		ReadIdleTimeout:       p.cfg.HTTP2ReadIdleTimeout,
		PingTimeout:           p.cfg.HTTP2PingTimeout,
		ResponseHeaderTimeout: p.cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: p.cfg.ExpectContinueTimeout,
	}
	if e.key.Protocol == H2 {
		h.tlsCfg = clientTLS(e.key, "h2", "http/1.1")
	}
	return h
}

// conn returns a connection with a stream reserved on it, dialing one
// when none has room.
func (h *h2ep) conn(ctx context.Context) (*h2client.Conn, error) {
	for {
		h.mu.Lock()
		live := h.conns[:0]
		var pick *h2client.Conn
		for _, c := range h.conns {
			if pick == nil && c.Reserve() {
				pick = c
			} else if !c.Usable() {
				continue
			}
			live = append(live, c)
		}
		clear(h.conns[len(live):])
		h.conns = live
		if pick != nil {
			h.mu.Unlock()
			return pick, nil
		}
		if d := h.dialing; d != nil {
			h.mu.Unlock()
			select {
			case <-d.done:
				if d.err != nil {
					return nil, d.err
				}
				continue
			case <-ctx.Done():
				return nil, &NotSentError{Addr: h.e.key.Address, Err: ctx.Err()}
			}
		}
		d := &h2dial{done: make(chan struct{})}
		h.dialing = d
		h.mu.Unlock()
		// The dial serves every request waiting for it: the context of
		// the one that started it bounds it only by its values.
		c, err := h.dial(context.WithoutCancel(ctx))
		h.mu.Lock()
		h.dialing = nil
		d.err = err
		close(d.done)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		h.conns = append(h.conns, c)
		h.mu.Unlock()
		if h.retired.Load() {
			// A retired endpoint serves without pooling: the connection
			// closes once the stream taken below is done.
			ok := c.Reserve()
			c.Shutdown()
			if ok {
				return c, nil
			}
		}
	}
}

// dial connects to the endpoint, negotiates TLS with ALPN h2 for H2, and
// starts an HTTP/2 connection. A backend that does not select "h2" turns
// the endpoint to HTTP/1.1 over TLS for a while.
func (h *h2ep) dial(ctx context.Context) (*h2client.Conn, error) {
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
	h.e.st.open.Add(1)
	var nc net.Conn = &countedConn{Conn: raw, st: &h.e.st}
	if h.tlsCfg != nil {
		tc := tls.Client(nc, h.tlsCfg)
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
		nc = tc
	}
	c, err := h2client.NewConn(nc, h.cfg)
	if err != nil {
		h.e.st.dialErrors.Add(1)
		return nil, &NotSentError{Addr: addr, Err: err}
	}
	h.e.st.dials.Add(1)
	return c, nil
}

func (h *h2ep) roundTrip(req *http.Request) (*http.Response, error) {
	if isUpgrade(req) {
		// Upgrades exist only in HTTP/1.1 (the HTTP/2 client does not
		// carry RFC 8441's extended CONNECT): send them with HTTP/1.1 on
		// the same address.
		return h.e.h1.roundTrip(req)
	}
	if f := h.fallback.Load(); f != 0 && time.Now().UnixNano() < f {
		return h.e.h1.roundTrip(req)
	}
	if req.URL == nil {
		closeReqBody(req)
		return nil, errorf(h.e.key.Address, "request", errors.New("nil URL"))
	}
	st := &h.e.st
	st.requests.Add(1)
	retried := false
again:
	c, err := h.conn(req.Context())
	if err != nil {
		if errors.Is(err, ErrH2NotNegotiated) {
			// Nothing was read from the body: HTTP/1.1 sends it.
			st.requests.Add(^uint64(0)) // counted again by the HTTP/1.1 path
			return h.e.h1.roundTrip(req)
		}
		st.failures.Add(1)
		closeReqBody(req)
		return nil, err
	}
	st.inFlight.Add(1)
	resp, err := c.RoundTrip(req)
	if err != nil {
		st.inFlight.Add(-1)
		st.failures.Add(1)
		if h2client.NotProcessed(err) {
			if !retried && (req.Body == nil || req.Body == http.NoBody) && req.Context().Err() == nil {
				// The connection went away (a GOAWAY crossing the
				// request, say) before the backend took the stream:
				// once more, on a connection that has room.
				retried = true
				st.retry.Add(1)
				st.failures.Add(^uint64(0))
				goto again
			}
			return nil, &NotSentError{Addr: h.e.key.Address, Err: err}
		}
		if errors.Is(err, h2client.ErrResponseHeaderTimeout) {
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

// done accounts for the end of a response.
func (h *h2ep) done() { h.e.st.inFlight.Add(-1) }

// closeIdle closes the connections that carry no stream.
func (h *h2ep) closeIdle() {
	h.mu.Lock()
	conns := append([]*h2client.Conn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		c.CloseIdle()
	}
}

// retire closes the idle connections and has the others close once their
// streams are done.
func (h *h2ep) retire() {
	h.retired.Store(true)
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for _, c := range conns {
		c.Shutdown()
	}
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
