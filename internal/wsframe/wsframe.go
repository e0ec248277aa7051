// Package wsframe holds the pieces of the WebSocket protocol (RFC 6455)
// that rauta needs in one place: the Sec-WebSocket-Accept value a proxy
// checks when it opens a WebSocket for a client (WebSocket over HTTP/2,
// RFC 8441, is carried to HTTP/1.1 backends as the RFC 6455 handshake),
// and the framing of final, unfragmented frames without extensions that
// the tests use to hold sessions through the proxy.
package wsframe

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// guid is the GUID of RFC 6455 section 1.3.
const guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Opcodes of the frames this package reads and writes (RFC 6455
// section 5.2).
const (
	OpText  byte = 0x1
	OpClose byte = 0x8
	OpPing  byte = 0x9
	OpPong  byte = 0xA
)

// Accept returns the Sec-WebSocket-Accept value that answers a
// Sec-WebSocket-Key (RFC 6455 section 4.2.2).
func Accept(key string) string {
	h := sha1.Sum([]byte(key + guid))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Frame is one final frame, its payload unmasked.
type Frame struct {
	Op      byte
	Payload []byte
	Masked  bool // the frame came masked (frames from a client must be)
}

// Write writes one final frame with payload, masked with a random key
// when mask is set (a client masks every frame it sends).
func Write(w io.Writer, op byte, payload []byte, mask bool) error {
	b := make([]byte, 2, 14+len(payload))
	b[0] = 0x80 | op
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

// Read reads one frame of at most max payload bytes. A fragmented frame
// (FIN not set) or a larger one is an error.
func Read(br *bufio.Reader, max int) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return Frame{}, err
	}
	if h[0]&0x80 == 0 {
		return Frame{}, errors.New("wsframe: fragmented frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > uint64(max) {
		return Frame{}, fmt.Errorf("wsframe: frame of %d bytes, more than %d", n, max)
	}
	f := Frame{Op: h[0] & 0x0f, Masked: h[1]&0x80 != 0}
	var key [4]byte
	if f.Masked {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return Frame{}, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(br, f.Payload); err != nil {
		return Frame{}, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i%4]
		}
	}
	return f, nil
}
