package l4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxHelloBytes is the default cap on the bytes [ReadClientHello] reads:
// the records that carry a ClientHello, headers included. A ClientHello
// with post-quantum key shares takes about 2 KiB.
const MaxHelloBytes = 16 << 10

// Errors of [ReadClientHello] and [ParseClientHello]. They are wrapped
// with details; test with errors.Is.
var (
	// ErrNotTLS: the first bytes are not a TLS handshake record.
	ErrNotTLS = errors.New("not a TLS handshake")
	// ErrMalformedHello: the records or the ClientHello break the TLS
	// grammar (RFC 8446, section 4.1.2; RFC 6066, section 3).
	ErrMalformedHello = errors.New("malformed ClientHello")
	// ErrHelloTooLarge: the ClientHello does not fit in the cap.
	ErrHelloTooLarge = errors.New("ClientHello too large")
)

// ClientHello is what the gateway reads of a TLS ClientHello to route a
// connection it does not terminate.
type ClientHello struct {
	// ServerName is the host_name of the server_name extension
	// (SNI), as sent; empty when the client sent none.
	ServerName string
	// ALPN lists the protocols of the application_layer_protocol_negotiation
	// extension, in the client's order.
	ALPN []string
}

const (
	recordHeaderLen  = 5
	recordHandshake  = 22
	maxRecordPayload = 1<<14 + 256 // TLSPlaintext may not exceed 2^14; tolerate TLS 1.2's compression slack
	handshakeClient  = 1
	extServerName    = 0
	extALPN          = 16
)

// ReadClientHello reads, from the start of a connection, the TLS records
// that carry the client's first handshake message, and parses it. It
// returns the bytes it read, exactly, so that the caller can replay them
// to a backend; it never reads past the last record of the ClientHello.
// max caps the bytes read (headers included); zero means [MaxHelloBytes].
//
// The caller bounds the time it may take with a read deadline on the
// connection. Any error means the connection cannot be routed: it is
// [ErrNotTLS], [ErrMalformedHello] or [ErrHelloTooLarge] (wrapped), or
// the reader's error, io.ErrUnexpectedEOF included.
func ReadClientHello(r io.Reader, max int) (ClientHello, []byte, error) {
	if max <= 0 {
		max = MaxHelloBytes
	}
	var raw []byte
	var msg []byte // handshake message bytes gathered from records
	need := -1     // length of the handshake message, once known
	for {
		if len(raw)+recordHeaderLen > max {
			return ClientHello{}, raw, fmt.Errorf("%w: more than %d bytes", ErrHelloTooLarge, max)
		}
		var hdr [recordHeaderLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return ClientHello{}, raw, noEOF(err)
		}
		raw = append(raw, hdr[:]...)
		if hdr[0] != recordHandshake {
			return ClientHello{}, raw, fmt.Errorf("%w: record type %d", ErrNotTLS, hdr[0])
		}
		if hdr[1] != 3 {
			return ClientHello{}, raw, fmt.Errorf("%w: record version %d.%d", ErrNotTLS, hdr[1], hdr[2])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if n == 0 || n > maxRecordPayload {
			return ClientHello{}, raw, fmt.Errorf("%w: record length %d", ErrMalformedHello, n)
		}
		if len(raw)+n > max {
			return ClientHello{}, raw, fmt.Errorf("%w: more than %d bytes", ErrHelloTooLarge, max)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			return ClientHello{}, raw[:start], noEOF(err)
		}
		msg = append(msg, raw[start:]...)
		if need < 0 && len(msg) >= 4 {
			if msg[0] != handshakeClient {
				return ClientHello{}, raw, fmt.Errorf("%w: handshake type %d, want ClientHello", ErrMalformedHello, msg[0])
			}
			need = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if need > max {
				return ClientHello{}, raw, fmt.Errorf("%w: %d bytes announced", ErrHelloTooLarge, need)
			}
		}
		if need >= 0 && len(msg) >= need {
			if len(msg) > need {
				// Another handshake message shares the record: a client
				// must wait for the ServerHello before sending one.
				return ClientHello{}, raw, fmt.Errorf("%w: data after the ClientHello", ErrMalformedHello)
			}
			h, err := ParseClientHello(msg)
			return h, raw, err
		}
	}
}

// noEOF turns a clean EOF in the middle of the hello into
// io.ErrUnexpectedEOF: a connection closed before its ClientHello is
// complete.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseClientHello parses a ClientHello handshake message: its 4-byte
// handshake header and its body, nothing before or after. Errors wrap
// [ErrMalformedHello].
func ParseClientHello(msg []byte) (ClientHello, error) {
	bad := func(what string) (ClientHello, error) {
		return ClientHello{}, fmt.Errorf("%w: %s", ErrMalformedHello, what)
	}
	if len(msg) < 4 || msg[0] != handshakeClient {
		return bad("not a ClientHello")
	}
	if int(msg[1])<<16|int(msg[2])<<8|int(msg[3]) != len(msg)-4 {
		return bad("length does not match")
	}
	s := cursor(msg[4:])
	if v, ok := s.u16(); !ok || v>>8 != 3 {
		return bad("legacy_version")
	}
	if !s.skip(32) {
		return bad("random")
	}
	if sid, ok := s.vec8(); !ok || len(sid) > 32 {
		return bad("legacy_session_id")
	}
	if cs, ok := s.vec16(); !ok || len(cs) < 2 || len(cs)%2 != 0 {
		return bad("cipher_suites")
	}
	if comp, ok := s.vec8(); !ok || len(comp) < 1 {
		return bad("legacy_compression_methods")
	}
	var h ClientHello
	if len(s) == 0 {
		return h, nil // no extensions (TLS 1.0 to 1.2 allow it)
	}
	exts, ok := s.vec16()
	if !ok || len(s) != 0 {
		return bad("extensions")
	}
	seen := make(map[uint16]bool, 16)
	for len(exts) > 0 {
		typ, ok1 := exts.u16()
		data, ok2 := exts.vec16()
		if !ok1 || !ok2 {
			return bad("extension")
		}
		if seen[typ] {
			return bad(fmt.Sprintf("extension %d twice", typ))
		}
		seen[typ] = true
		switch typ {
		case extServerName:
			name, err := serverName(data)
			if err != nil {
				return bad("server_name: " + err.Error())
			}
			h.ServerName = name
		case extALPN:
			list, ok := data.vec16()
			if !ok || len(data) != 0 || len(list) == 0 {
				return bad("application_layer_protocol_negotiation")
			}
			for len(list) > 0 {
				p, ok := list.vec8()
				if !ok || len(p) == 0 {
					return bad("application_layer_protocol_negotiation")
				}
				h.ALPN = append(h.ALPN, string(p))
			}
		}
	}
	return h, nil
}

// serverName reads the server_name extension's data (RFC 6066, section
// 3): a list with one host_name entry, a DNS name in ASCII without a
// trailing dot.
func serverName(data cursor) (string, error) {
	list, ok := data.vec16()
	if !ok || len(data) != 0 || len(list) == 0 {
		return "", errors.New("bad list")
	}
	var name string
	for len(list) > 0 {
		typ, ok1 := list.u8()
		v, ok2 := list.vec16()
		if !ok1 || !ok2 {
			return "", errors.New("bad entry")
		}
		if typ != 0 {
			continue // unknown name types are skipped (none is defined)
		}
		if name != "" {
			return "", errors.New("two host_name entries")
		}
		if len(v) == 0 || len(v) > 255 || v[len(v)-1] == '.' {
			return "", errors.New("bad host_name")
		}
		for _, c := range v {
			if c <= ' ' || c >= 0x7f {
				return "", errors.New("host_name is not printable ASCII")
			}
		}
		name = string(v)
	}
	return name, nil
}

// cursor reads big-endian fields from the front of a byte slice.
type cursor []byte

func (c *cursor) u8() (byte, bool) {
	if len(*c) < 1 {
		return 0, false
	}
	v := (*c)[0]
	*c = (*c)[1:]
	return v, true
}

func (c *cursor) u16() (uint16, bool) {
	if len(*c) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(*c)
	*c = (*c)[2:]
	return v, true
}

func (c *cursor) skip(n int) bool {
	if len(*c) < n {
		return false
	}
	*c = (*c)[n:]
	return true
}

func (c *cursor) vec8() (cursor, bool) {
	n, ok := c.u8()
	if !ok || len(*c) < int(n) {
		return nil, false
	}
	v := (*c)[:n]
	*c = (*c)[n:]
	return v, true
}

func (c *cursor) vec16() (cursor, bool) {
	n, ok := c.u16()
	if !ok || len(*c) < int(n) {
		return nil, false
	}
	v := (*c)[:n]
	*c = (*c)[n:]
	return v, true
}
