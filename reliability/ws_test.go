//go:build reliability

package reliability

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// A minimal WebSocket (RFC 6455): text, close and ping frames without
// extensions or fragmentation, enough to hold a connection through the
// proxy and check that messages come back.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

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
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
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
			writeFrame(c, 0x8, payload, false)
			return
		case 0x9: // ping
			writeFrame(c, 0xA, payload, false)
		case 0x1:
			if writeFrame(c, 0x1, payload, false) != nil {
				return
			}
		}
	}
}

// readFrame reads one unfragmented frame, unmasking it if it is masked.
func readFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("websocket: fragmented frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, errors.New("websocket: frame too large")
	}
	var mask [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(br, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}

// writeFrame writes one final frame; clients mask theirs.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	b := []byte{0x80 | op, 0}
	switch n := len(payload); {
	case n < 126:
		b[1] = byte(n)
	case n < 1<<16:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !mask {
		_, err := w.Write(append(b, payload...))
		return err
	}
	b[1] |= 0x80
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	_, err := w.Write(b)
	return err
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
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
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
	if err := writeFrame(w.c, 0x1, msg, true); err != nil {
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
	writeFrame(w.c, 0x8, nil, true)
	readFrame(w.br)
	w.c.Close()
}
