package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// livenessCheckAfter is how long a connection must have been idle before it
// is probed (one non-blocking peek) for a close by the backend when taken
// from the idle stack. Connections reused sooner skip the probe: under load
// it would cost a system call per request.
const livenessCheckAfter = time.Second

// counters are an endpoint's statistics, updated atomically.
type counters struct {
	open, idle, inUse, inFlight                          atomic.Int64
	dials, dialErrors, reused, requests, failures, retry atomic.Uint64
}

// conn is one HTTP/1.1 connection to a backend with its reused buffers.
type conn struct {
	h        *h1
	nc       net.Conn // *tls.Conn over TLS
	raw      net.Conn // the TCP connection, probed for liveness
	tls      bool
	br       *bufio.Reader
	bw       *bufio.Writer
	tlsState *tls.ConnectionState
	idleAt   time.Time
	born     time.Time // when the connection was opened, for its lifetime
	closeFn  func()    // closes nc; made once, registered per request with context.AfterFunc
	uses     int
	nread    int64 // bytes read from nc; touched by the reading goroutine only
	nwritten int64 // bytes written to nc; touched by the writing goroutine only
}

// Read reads from the connection, counting bytes (bufio's source).
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.nc.Read(p)
	c.nread += int64(n)
	return n, err
}

// Write writes to the connection, counting bytes (bufio's sink).
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.nwritten += int64(n)
	return n, err
}

// h1 is the HTTP/1.1 client of one endpoint: a LIFO stack of idle
// connections, a connection limit with optional waiting, and dialing.
type h1 struct {
	p      *Pool
	addr   string
	tlsCfg *tls.Config // nil for cleartext
	st     *counters
	lim    atomic.Pointer[connLimits]

	mu      sync.Mutex
	idle    []*conn // LIFO: the most recently used connection is last
	open    int     // open connections plus dials in progress
	waiters []chan *conn
	retired bool
}

// getConn returns an idle connection, or dials one. With fresh set it
// always dials (used to retry after a dead reused connection).
func (h *h1) getConn(ctx context.Context, fresh bool) (*conn, error) {
	cfg := &h.p.cfg
	lim := h.lim.Load()
	var now time.Time
	h.mu.Lock()
	for !fresh && len(h.idle) > 0 {
		n := len(h.idle)
		c := h.idle[n-1]
		h.idle[n-1] = nil
		h.idle = h.idle[:n-1]
		if now.IsZero() {
			now = time.Now()
		}
		idleFor := now.Sub(c.idleAt)
		if lim.idle > 0 && idleFor > lim.idle {
			// Everything below the top of the stack is older still.
			stale := h.idle
			h.idle = nil
			h.mu.Unlock()
			h.p.idleTotal.Add(-int64(len(stale) + 1))
			h.discard(c, true)
			for _, s := range stale {
				h.discard(s, true)
			}
			h.mu.Lock()
			continue
		}
		h.mu.Unlock()
		h.p.idleTotal.Add(-1)
		h.st.idle.Add(-1)
		h.st.inUse.Add(1)
		if lim.worn(c, now) || idleFor >= livenessCheckAfter && !alive(c.raw, c.tls) {
			h.discard(c, false)
			h.mu.Lock()
			continue
		}
		h.st.reused.Add(1)
		return c, nil
	}
	// h.mu is held here.
	if lim.maxConns > 0 && h.open >= lim.maxConns {
		if cfg.ConnWaitTimeout <= 0 {
			h.mu.Unlock()
			return nil, &NotSentError{Addr: h.addr, Err: ErrEndpointBusy}
		}
		c, err := h.wait(ctx, cfg.ConnWaitTimeout)
		if err != nil || c != nil {
			return c, err
		}
		// A slot was handed to us: dial below.
	} else {
		h.open++
		h.mu.Unlock()
	}
	c, err := h.dial(ctx)
	if err != nil {
		h.releaseSlot()
		h.st.dialErrors.Add(1)
		return nil, &NotSentError{Addr: h.addr, Err: err}
	}
	h.st.dials.Add(1)
	h.st.open.Add(1)
	h.st.inUse.Add(1)
	return c, nil
}

// wait queues for a connection (handed over by put) or a free slot (handed
// over by releaseSlot, c == nil) and is called with h.mu held.
func (h *h1) wait(ctx context.Context, d time.Duration) (*conn, error) {
	ch := make(chan *conn, 1)
	h.waiters = append(h.waiters, ch)
	h.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	var err error
	select {
	case c := <-ch:
		return h.handedOver(c), nil
	case <-t.C:
		err = &NotSentError{Addr: h.addr, Err: ErrEndpointBusy}
	case <-ctx.Done():
		err = &NotSentError{Addr: h.addr, Err: ctx.Err()}
	}
	h.mu.Lock()
	for i, w := range h.waiters {
		if w == ch {
			h.waiters = append(h.waiters[:i], h.waiters[i+1:]...)
			h.mu.Unlock()
			return nil, err
		}
	}
	h.mu.Unlock()
	// Something was handed to us just as we gave up: take it.
	return h.handedOver(<-ch), nil
}

func (h *h1) handedOver(c *conn) *conn {
	if c != nil {
		h.st.reused.Add(1)
	}
	return c
}

// dial opens a connection, with the TLS handshake when configured, within
// the dial timeout.
func (h *h1) dial(ctx context.Context) (*conn, error) {
	if d := h.p.cfg.DialTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	raw, err := h.p.dial(ctx, h.addr)
	if err != nil {
		return nil, err
	}
	c := &conn{h: h, nc: raw, raw: raw, born: time.Now()}
	c.closeFn = func() { c.nc.Close() }
	if h.tlsCfg != nil {
		tc := tls.Client(raw, h.tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		state := tc.ConnectionState()
		c.nc, c.tls, c.tlsState = tc, true, &state
	}
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(c, 4<<10)
	return c, nil
}

// put returns an in-use connection whose exchange completed cleanly.
func (h *h1) put(c *conn) {
	now := time.Now()
	lim := h.lim.Load()
	if c.br.Buffered() > 0 || lim.worn(c, now) {
		// The backend sent bytes nobody asked for (the framing is lost),
		// or the connection has carried all it may.
		h.discard(c, false)
		return
	}
	c.idleAt = now
	h.mu.Lock()
	if lim.maxConns > 0 && h.open > lim.maxConns {
		// Over a lowered connection limit: close as exchanges end. The
		// slot is given up under the lock that counted it, so that
		// exchanges ending together close no more than the excess
		// (and no waiter can take it: the endpoint is still at its
		// limit).
		h.open--
		h.mu.Unlock()
		c.nc.Close()
		h.st.open.Add(-1)
		h.st.inUse.Add(-1)
		return
	}
	if len(h.waiters) > 0 {
		w := h.waiters[0]
		h.waiters = h.waiters[1:]
		h.mu.Unlock()
		w <- c // stays in use, for the waiter
		return
	}
	maxIdle := h.p.cfg.MaxIdlePerEndpoint
	if h.retired || maxIdle == 0 {
		h.mu.Unlock()
		h.discard(c, false)
		return
	}
	var evicted *conn
	if len(h.idle) >= maxIdle {
		// Keep the connection just used; the oldest idle one goes.
		evicted = h.idle[0]
		n := copy(h.idle, h.idle[1:])
		h.idle[n] = nil
		h.idle = h.idle[:n]
	}
	h.idle = append(h.idle, c)
	h.mu.Unlock()
	h.st.inUse.Add(-1)
	h.st.idle.Add(1)
	if evicted != nil {
		h.discard(evicted, true)
	} else {
		h.p.idleTotal.Add(1)
	}
	h.p.armJanitor(lim.sweepEvery())
}

// worn reports whether a connection may carry no more requests: it has
// carried the most allowed, or outlived its lifetime.
func (l *connLimits) worn(c *conn, now time.Time) bool {
	return l.maxRequests > 0 && c.uses >= l.maxRequests ||
		l.lifetime > 0 && now.Sub(c.born) >= l.lifetime
}

// setLimits puts new limits in effect. Requests waiting for a slot get
// the slots a raised connection limit frees, and idle connections are
// swept at the new period.
func (h *h1) setLimits(l *connLimits) {
	h.lim.Store(l)
	h.mu.Lock()
	var woken []chan *conn
	for len(h.waiters) > 0 && (l.maxConns == 0 || h.open < l.maxConns) {
		woken = append(woken, h.waiters[0])
		h.waiters = h.waiters[1:]
		h.open++
	}
	idle := len(h.idle)
	h.mu.Unlock()
	for _, w := range woken {
		w <- nil
	}
	if idle > 0 {
		h.p.armJanitor(l.sweepEvery())
	}
}

// discard closes a connection (idle, or in use) and frees its slot.
func (h *h1) discard(c *conn, wasIdle bool) {
	c.nc.Close()
	h.st.open.Add(-1)
	if wasIdle {
		h.st.idle.Add(-1)
	} else {
		h.st.inUse.Add(-1)
	}
	h.releaseSlot()
}

// releaseSlot frees a connection slot, handing it to a waiter if any.
func (h *h1) releaseSlot() {
	h.mu.Lock()
	h.open--
	if limit := h.lim.Load().maxConns; len(h.waiters) > 0 && (limit == 0 || h.open < limit) {
		w := h.waiters[0]
		h.waiters = h.waiters[1:]
		h.open++
		h.mu.Unlock()
		w <- nil
		return
	}
	h.mu.Unlock()
}

// sweep closes the idle connections that outlived the idle timeout or
// their lifetime, and returns how many stay idle and the endpoint's sweep
// period.
func (h *h1) sweep(now time.Time) (left int, every time.Duration) {
	lim := h.lim.Load()
	var stale []*conn
	h.mu.Lock()
	keep := h.idle[:0]
	for _, c := range h.idle {
		if lim.idle > 0 && now.Sub(c.idleAt) > lim.idle || lim.worn(c, now) {
			stale = append(stale, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(h.idle[len(keep):])
	h.idle = keep
	left = len(h.idle)
	h.mu.Unlock()
	h.p.idleTotal.Add(-int64(len(stale)))
	for _, c := range stale {
		h.discard(c, true)
	}
	return left, lim.sweepEvery()
}

// closeIdle closes every idle connection; with retire set, connections
// returned later are closed too.
func (h *h1) closeIdle(retire bool) {
	h.mu.Lock()
	if retire {
		h.retired = true
	}
	stale := h.idle
	h.idle = nil
	h.mu.Unlock()
	h.p.idleTotal.Add(-int64(len(stale)))
	for _, c := range stale {
		h.discard(c, true)
	}
}
