package l4

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// clientHello returns the first flight crypto/tls sends for cfg: the
// records of its ClientHello.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		tls.Client(c, cfg).Handshake()
		c.Close()
	}()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := io.ReadFull(s, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// rechunk splits the handshake payload of one record into records of at
// most n bytes each.
func rechunk(rec []byte, n int) []byte {
	payload := rec[5:]
	var out []byte
	for len(payload) > 0 {
		k := min(n, len(payload))
		out = append(out, 22, rec[1], rec[2], byte(k>>8), byte(k))
		out = append(out, payload[:k]...)
		payload = payload[k:]
	}
	return out
}

func TestReadClientHello(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "Echo.Example.com", NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true})
	noSNI := clientHello(t, &tls.Config{ServerName: "192.0.2.1", InsecureSkipVerify: true}) // IP: no SNI
	tail := []byte("application data after the hello")
	for _, tc := range []struct {
		name  string
		in    []byte
		max   int
		sni   string
		alpn  []string
		err   error
		nread int // bytes consumed; -1: len(in) minus tail
	}{
		{name: "one record", in: append(slices.Clone(hello), tail...), sni: "Echo.Example.com", alpn: []string{"h2", "http/1.1"}, nread: len(hello)},
		{name: "split records", in: append(rechunk(hello, 7), tail...), sni: "Echo.Example.com", alpn: []string{"h2", "http/1.1"}, nread: len(rechunk(hello, 7))},
		{name: "no sni", in: noSNI, nread: len(noSNI)},
		{name: "cap", in: hello, max: len(hello) - 1, err: ErrHelloTooLarge},
		{name: "cap split", in: rechunk(hello, 100), max: 300, err: ErrHelloTooLarge},
		{name: "exact cap", in: hello, max: len(hello), sni: "Echo.Example.com", alpn: []string{"h2", "http/1.1"}, nread: len(hello)},
		{name: "http", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), err: ErrNotTLS},
		{name: "alert record", in: []byte{21, 3, 3, 0, 2, 2, 40}, err: ErrNotTLS},
		{name: "truncated", in: hello[:len(hello)-3], err: io.ErrUnexpectedEOF},
		{name: "empty", in: nil, err: io.ErrUnexpectedEOF},
		{name: "zero record", in: []byte{22, 3, 1, 0, 0}, err: ErrMalformedHello},
		{name: "server hello", in: []byte{22, 3, 3, 0, 4, 2, 0, 0, 0}, err: ErrMalformedHello},
		{name: "huge announced", in: []byte{22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, err: ErrHelloTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(tc.in)
			h, raw, err := ReadClientHello(r, tc.max)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ServerName != tc.sni || !slices.Equal(h.ALPN, tc.alpn) {
				t.Errorf("got %+v, want SNI %q ALPN %q", h, tc.sni, tc.alpn)
			}
			if len(raw) != tc.nread || !bytes.Equal(raw, tc.in[:tc.nread]) {
				t.Errorf("raw: %d bytes, want the %d bytes of the hello records", len(raw), tc.nread)
			}
			if r.Len() != len(tc.in)-tc.nread {
				t.Errorf("read past the hello: %d bytes left, want %d", r.Len(), len(tc.in)-tc.nread)
			}
		})
	}
}

// helloWith builds a ClientHello message with the given extensions block
// (nil: none).
func helloWith(exts []byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)             // session id
	body = append(body, 0, 2, 0x13, 1) // one cipher suite
	body = append(body, 1, 0)          // null compression
	if exts != nil {
		body = binary.BigEndian.AppendUint16(body, uint16(len(exts)))
		body = append(body, exts...)
	}
	msg := []byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

func ext(typ uint16, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

func sniData(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, 0)
		list = binary.BigEndian.AppendUint16(list, uint16(len(n)))
		list = append(list, n...)
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(list))), list...)
}

func TestParseClientHelloRejects(t *testing.T) {
	good := helloWith(ext(0, sniData("a.example.com")))
	if h, err := ParseClientHello(good); err != nil || h.ServerName != "a.example.com" {
		t.Fatalf("good hello: %+v, %v", h, err)
	}
	if h, err := ParseClientHello(helloWith(nil)); err != nil || h.ServerName != "" {
		t.Fatalf("hello without extensions: %+v, %v", h, err)
	}
	for name, msg := range map[string][]byte{
		"two sni extensions": helloWith(append(ext(0, sniData("a.example.com")), ext(0, sniData("b.example.com"))...)),
		"two host names":     helloWith(ext(0, sniData("a.example.com", "b.example.com"))),
		"trailing dot":       helloWith(ext(0, sniData("a.example.com."))),
		"control character":  helloWith(ext(0, sniData("a.exam\nple.com"))),
		"empty name":         helloWith(ext(0, sniData(""))),
		"short extension":    helloWith([]byte{0, 0, 0, 9, 1}),
		"empty alpn":         helloWith(ext(16, []byte{0, 0})),
		"length mismatch":    append(slices.Clone(good), 0),
		"truncated random":   good[:20],
	} {
		if _, err := ParseClientHello(msg); !errors.Is(err, ErrMalformedHello) {
			t.Errorf("%s: err %v, want ErrMalformedHello", name, err)
		}
	}
}

// TestReadClientHelloDataAfter: a record carrying bytes after the
// ClientHello is refused.
func TestReadClientHelloDataAfter(t *testing.T) {
	msg := append(helloWith(nil), 0, 0)
	rec := append([]byte{22, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	if _, _, err := ReadClientHello(bytes.NewReader(rec), 0); !errors.Is(err, ErrMalformedHello) || !strings.Contains(err.Error(), "after") {
		t.Errorf("err %v", err)
	}
}

// FuzzReadClientHello: whatever the bytes, ReadClientHello does not
// panic, returns a prefix of its input, never reads past it, stays under
// the cap, and what it accepts parses the same again.
func FuzzReadClientHello(f *testing.F) {
	// X25519 alone keeps the seeds small (no post-quantum key share), so
	// that the fuzzer's mutations reach the extensions.
	x := []tls.CurveID{tls.X25519}
	f.Add(clientHello(f, &tls.Config{ServerName: "a.example.com", CurvePreferences: x, InsecureSkipVerify: true}))
	f.Add(rechunk(clientHello(f, &tls.Config{ServerName: "b.example.com", NextProtos: []string{"h2"}, CurvePreferences: x, InsecureSkipVerify: true}), 50))
	f.Add(append([]byte{22, 3, 1, 0, 60}, helloWith(ext(0, sniData("c.example.com")))...))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 4096
		r := bytes.NewReader(in)
		h, raw, err := ReadClientHello(r, max)
		if !bytes.HasPrefix(in, raw) {
			t.Fatal("raw is not a prefix of the input")
		}
		if len(raw) > max {
			t.Fatalf("read %d bytes over a cap of %d", len(raw), max)
		}
		if int(r.Size())-r.Len() != len(raw) && err == nil {
			t.Fatalf("consumed %d bytes, returned %d", int(r.Size())-r.Len(), len(raw))
		}
		if err != nil {
			return
		}
		h2, _, err := ReadClientHello(bytes.NewReader(raw), max)
		if err != nil || h2.ServerName != h.ServerName || !slices.Equal(h.ALPN, h2.ALPN) {
			t.Fatalf("reparse: %+v %v, first %+v", h2, err, h)
		}
	})
}

// FuzzParseClientHello: ParseClientHello never panics, and a name it
// returns is printable ASCII without a trailing dot.
func FuzzParseClientHello(f *testing.F) {
	f.Add(helloWith(ext(0, sniData("a.example.com"))))
	f.Add(helloWith(append(ext(16, []byte{0, 3, 2, 'h', '2'}), ext(0, sniData("x.y"))...)))
	f.Add(helloWith(nil))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, err := ParseClientHello(msg)
		if err != nil {
			return
		}
		n := h.ServerName
		if n != "" && (n[len(n)-1] == '.' || strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r >= 0x7f })) {
			t.Fatalf("bad name %q accepted", n)
		}
	})
}
