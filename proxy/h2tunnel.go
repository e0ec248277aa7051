package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rauta/rauta/internal/wsframe"
)

// WebSockets over HTTP/2 (RFC 8441). rauta's HTTP/2 server offers
// extended CONNECT; a CONNECT with ":protocol: websocket" is carried to
// the backend as the HTTP/1.1 handshake (RFC 6455 section 4): routed,
// filtered and balanced as a GET with "Connection: Upgrade" and
// "Upgrade: websocket" and a Sec-WebSocket-Key of the proxy's own. The
// backend's 101, once its Sec-WebSocket-Accept is checked, becomes the
// stream's 200; then the stream's DATA and the backend connection's bytes
// are copied both ways. END_STREAM and the backend's FIN map to each
// other; a stream reset closes the backend connection, and a backend
// connection that fails resets the stream (CONNECT_ERROR).

// h2Upgrade is an extended CONNECT turned into an HTTP/1.1 upgrade.
type h2Upgrade struct {
	key  string        // the Sec-WebSocket-Key sent upstream
	body io.ReadCloser // the stream's DATA: the client's side of the tunnel
}

// extendedConnect reports whether r is an HTTP/2 extended CONNECT (its
// protocol in the ":protocol" header, as net/http's servers and rauta's
// present it).
func extendedConnect(r *http.Request) bool {
	if r.Method != http.MethodConnect || r.ProtoMajor < 2 {
		return false
	}
	_, ok := r.Header[":protocol"]
	return ok
}

// asUpgrade rewrites an extended CONNECT for a WebSocket into the
// HTTP/1.1 upgrade request the rest of the proxy serves, taking its body
// aside as the client's side of the tunnel. It reports nil for other
// protocols, which the proxy does not carry.
func asUpgrade(r *http.Request) *h2Upgrade {
	proto := r.Header[":protocol"]
	delete(r.Header, ":protocol")
	if len(proto) != 1 || !strings.EqualFold(proto[0], "websocket") {
		return nil
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	up := &h2Upgrade{key: base64.StdEncoding.EncodeToString(nonce[:]), body: r.Body}
	h := r.Header
	h["Connection"] = []string{"Upgrade"}
	h["Upgrade"] = []string{"websocket"}
	h["Sec-Websocket-Key"] = []string{up.key}
	delete(h, "Sec-Websocket-Accept")
	r.Method = http.MethodGet
	r.Body, r.ContentLength = http.NoBody, 0
	return up
}

// tunnelH2 completes a WebSocket over HTTP/2: it checks the backend's 101,
// answers the stream 200 with the backend's WebSocket fields, and copies
// bytes both ways until the backend's side ends (END_STREAM) or fails
// (the stream is reset), or the client resets the stream.
func (p *Proxy) tunnelH2(w http.ResponseWriter, r *http.Request, resp *http.Response, x *requestState) {
	up := x.h2up
	back, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || resp.Header.Get("Sec-Websocket-Accept") != wsframe.Accept(up.key) {
		x.fail(w, http.StatusBadGateway, reasonUpstreamError, "upstream switched protocols unexpectedly\n")
		return
	}
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	removeHopHeaders(h)
	delete(h, "Sec-Websocket-Accept")
	rc := http.NewResponseController(w)
	// A tunnel is a connection, not a response: the server's write
	// timeout does not bound it (as a hijacked HTTP/1 connection's
	// deadlines are cleared).
	rc.SetWriteDeadline(time.Time{})
	x.status, x.wrote = http.StatusOK, true
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		x.gone()
	}
	p.tunnels.add(back)
	defer p.tunnels.remove(back)

	// The client's side: its DATA to the backend, its END_STREAM a FIN.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := io.Copy(back, up.body); err == nil {
			closeWrite(back)
		} else {
			back.Close()
		}
	}()
	// The backend's side, on the handler's goroutine: its bytes as DATA,
	// its FIN the handler's return (END_STREAM).
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var failed error
	for failed == nil {
		n, err := back.Read(buf)
		if n > 0 {
			x.respBytes += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				failed = werr
			} else {
				failed = rc.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if failed == nil {
			failed = err
		}
	}
	// Stop the client's side (a Read in progress fails once the body is
	// closed) before the handler returns.
	up.body.Close()
	back.Close()
	<-sent
	if failed == nil {
		return
	}
	if r.Context().Err() != nil {
		x.gone() // the client reset the stream, or its connection ended
	}
	p.log.Debug("websocket tunnel failed", "backend", x.backend, "endpoint", x.endpoint, "error", failed)
	x.reason = reasonUpstreamError
	panic(http.ErrAbortHandler)
}
