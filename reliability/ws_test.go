//go:build reliability

package reliability

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rauta/rauta/internal/wsframe"
)

// A minimal WebSocket (RFC 6455): text, close and ping frames without
// extensions or fragmentation, enough to hold a connection through the
// proxy and check that messages come back.

// serveWebSocket upgrades r and echoes every text frame until a close
// frame or an error.
func serveWebSocket(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
		http.Error(w, "not a WebSocket handshake", http.StatusBadRequest)
		return
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsframe.Accept(key))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := readFrame(brw.Reader)
		if err != nil {
			return
		}
		switch op {
		case 0x8: // close
			wsframe.Write(c, 0x8, payload, false)
			return
		case 0x9: // ping
			wsframe.Write(c, 0xA, payload, false)
		case 0x1:
			if wsframe.Write(c, 0x1, payload, false) != nil {
				return
			}
		}
	}
}

// readFrame reads one frame, unmasking it if it is masked.
func readFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	f, err := wsframe.Read(br, 1<<20)
	return f.Op, f.Payload, err
}

// wsClient is a WebSocket held open through the proxy.
type wsClient struct {
	mu   sync.Mutex
	c    net.Conn
	br   *bufio.Reader
	sent int
}

// dialWebSocket opens a WebSocket to http://addr/path.
func dialWebSocket(addr, path string) (*wsClient, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n", path, key)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsframe.Accept(key) {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: status %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	c.SetDeadline(time.Time{})
	return &wsClient{c: c, br: br}, nil
}

// echo sends a message and waits for it to come back.
func (w *wsClient) echo(timeout time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent++
	msg := fmt.Appendf(nil, "message %d", w.sent)
	w.c.SetDeadline(time.Now().Add(timeout))
	defer w.c.SetDeadline(time.Time{})
	if err := wsframe.Write(w.c, 0x1, msg, true); err != nil {
		return err
	}
	op, got, err := readFrame(w.br)
	if err != nil {
		return err
	}
	if op != 0x1 || string(got) != string(msg) {
		return fmt.Errorf("websocket: sent %q, got opcode %d %q", msg, op, got)
	}
	return nil
}

func (w *wsClient) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.c.SetDeadline(time.Now().Add(2 * time.Second))
	wsframe.Write(w.c, 0x8, nil, true)
	readFrame(w.br)
	w.c.Close()
}
