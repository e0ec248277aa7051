package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/rauta/rauta/internal/h2server"
)

// tunnelSet tracks hijacked connections (upgrades), which the HTTP server
// no longer tracks, so that Shutdown can close them.
type tunnelSet struct {
	mu    sync.Mutex
	conns map[io.Closer]struct{}
}

func (t *tunnelSet) add(c io.Closer) {
	t.mu.Lock()
	if t.conns == nil {
		t.conns = make(map[io.Closer]struct{})
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
}

func (t *tunnelSet) remove(c io.Closer) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// closeAll waits until every tunnel has ended or ctx is done, then closes
// what is left.
func (t *tunnelSet) closeAll(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		t.mu.Lock()
		n := len(t.conns)
		t.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.mu.Lock()
			for c := range t.conns {
				c.Close()
			}
			t.conns = nil
			t.mu.Unlock()
			return
		case <-tick.C:
		}
	}
}

// tunnel completes a protocol upgrade (WebSocket and the like): the client
// connection is hijacked, the backend's 101 response written to it, and
// bytes are copied both ways until either side closes. A tunnel depends on
// no snapshot, so it survives configuration changes.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, resp *http.Response, upgrade string, x *requestState) {
	if x.h2up != nil {
		p.tunnelH2(w, r, resp, x)
		return
	}
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || upgrade == "" || !strings.EqualFold(resp.Header.Get("Upgrade"), upgrade) {
		x.fail(w, http.StatusBadGateway, reasonUpstreamError, "upstream switched protocols unexpectedly\n")
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 clients cannot be hijacked; upgrades need HTTP/1.1.
		back.Close()
		x.fail(w, http.StatusBadGateway, reasonUpstreamError, "upgrade not possible on this connection\n")
		return
	}
	x.status, x.wrote = http.StatusSwitchingProtocols, true
	defer conn.Close()
	defer back.Close()

	h := resp.Header.Clone()
	removeHopHeaders(h)
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{upgrade}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	t := &tunnelConn{client: conn, back: back}
	p.tunnels.add(t)
	defer p.tunnels.remove(t)

	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(back, brw.Reader) // buffered client bytes first
		closeWrite(back)
		errc <- err
	}()
	go func() {
		_, err := io.Copy(conn, back)
		closeWrite(conn)
		errc <- err
	}()
	<-errc
	<-errc
}

// tunnelConn closes both halves of a tunnel.
type tunnelConn struct {
	client net.Conn
	back   io.Closer
}

func (t *tunnelConn) Close() error {
	t.client.Close()
	return t.back.Close()
}

// closeWrite half-closes a connection when it supports it, else closes it.
func closeWrite(c any) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	if cl, ok := c.(io.Closer); ok {
		cl.Close()
	}
}

// serveH2CUpgrade switches an HTTP/1.1 connection that asked for
// "Upgrade: h2c" (RFC 7540 section 3.2) to HTTP/2, serving the upgrading
// request as stream 1. Requests with a body are not upgraded (they are
// served over HTTP/1.1, which the RFC allows). It reports whether it took
// the connection.
func (p *Proxy) serveH2CUpgrade(w http.ResponseWriter, r *http.Request, h *portHandler) bool {
	if r.ContentLength != 0 || r.Method == http.MethodConnect {
		return false
	}
	settings, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(r.Header.Get("Http2-Settings"), "="))
	if err != nil {
		return false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
		return true
	}
	r.Header.Del("Upgrade")
	r.Header.Del("Http2-Settings")
	r.Header.Del("Connection")
	r.Body = http.NoBody
	lim := p.opts.Limits.withDefaults()
	c := &bufferedConn{Conn: conn, r: brw.Reader}
	p.tunnels.add(conn)
	defer p.tunnels.remove(conn)
	ctx := context.WithoutCancel(r.Context())
	if p.opts.Server == ServerRauta {
		p.newH2Server(lim).ServeConn(c, &h2server.ServeConnOpts{Context: ctx, Handler: h, UpgradeRequest: r, Settings: settings})
		return true
	}
	srv := &http2.Server{
		MaxConcurrentStreams: uint32(lim.MaxConcurrentStreams),
		MaxReadFrameSize:     uint32(lim.MaxReadFrameSize),
		IdleTimeout:          lim.IdleTimeout,
	}
	srv.ServeConn(c, &http2.ServeConnOpts{
		Context:        ctx,
		Handler:        h,
		UpgradeRequest: r,
		Settings:       settings,
	})
	return true
}

// bufferedConn is a net.Conn whose first reads come from a bufio.Reader
// holding bytes already read from it.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
