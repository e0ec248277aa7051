package h1server

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// errBodyTooLarge is returned by reads of a request body the server gave
// up draining.
var errBodyTooLarge = errors.New("h1server: request body too large to drain")

// chunk parsing states.
const (
	csSize    uint8 = iota // expecting a chunk-size line
	csData                 // inside chunk data
	csCRLF                 // expecting the CRLF after chunk data
	csTrailer              // expecting the trailer section
)

// body is a request body: Content-Length delimited or chunked. One is
// allocated per request that has a body, so that a goroutine still holding
// it after the handler returned (an upstream client writing it, say) can
// never read the next request's bytes: once the server takes the body back,
// every read fails.
//
// Read may be called from any goroutine; reads are serialised. Close never
// blocks.
type body struct {
	br         *bufio.Reader
	c          *conn // nil outside a server (parser tests)
	req        *http.Request
	trailerMax int

	closed atomic.Bool // Close was called

	mu       sync.Mutex
	finished bool  // the server took the body back; reads fail
	chunked  bool  // chunked framing; else n counts the bytes left
	state    uint8 // chunk parsing state
	n        int64 // bytes left in the body or the current chunk
	excess   int64 // chunk framing overhead beyond what data justifies
	eof      bool  // the whole body, trailers included, was read
	err      error // sticky error
	started  bool  // a read asked for bytes
	cont     bool  // send "100 Continue" on the first read
}

// Read reads the body. It returns io.EOF at the end of the body (with the
// last bytes when they are at hand), http.ErrBodyReadAfterClose after
// Close or once the handler has returned, and a sticky error for a
// truncated or malformed body.
func (b *body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, http.ErrBodyReadAfterClose
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

// Close makes later reads fail. The unread rest of the body is dealt with
// by the server once the handler returns.
func (b *body) Close() error {
	b.closed.Store(true)
	return nil
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	b.started = true
	if b.cont {
		b.cont = false
		if b.c != nil {
			b.c.writeContinue()
		}
	}
	var (
		n   int
		err error
	)
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readLength(p)
	}
	if err != nil && err != io.EOF {
		b.err = err
		if b.c != nil {
			b.c.bodyFailed()
		}
	}
	if b.eof && b.c != nil {
		b.c.bodyDone.Store(true)
	}
	return n, err
}

func (b *body) readLength(p []byte) (int, error) {
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if b.n == 0 {
		b.eof = true
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunked decodes chunked framing (RFC 9112 section 7.1) strictly:
// CRLF line ends, 1 to 16 hex digits, well-formed chunk extensions (which
// are ignored), CRLF after each chunk's data, and a trailer section
// parsed like header fields. It avoids blocking once it has bytes to
// return.
func (b *body) readChunked(p []byte) (int, error) {
	n := 0
	for {
		switch b.state {
		case csSize:
			if n > 0 && !b.lineBuffered() {
				return n, nil
			}
			line, err := readChunkLine(b.br)
			if err != nil {
				return n, err
			}
			size, ok := parseChunkLine(line)
			if !ok {
				return n, errBadChunk
			}
			b.excess += int64(len(line)) + 2 - 16 - 2*min(size, 1<<40)
			b.excess = max(b.excess, 0)
			if b.excess > 16<<10 {
				return n, errChunkOverhead
			}
			if size == 0 {
				b.state = csTrailer
				continue
			}
			b.n = size
			b.state = csData
		case csData:
			if n == len(p) {
				return n, nil
			}
			if n > 0 && b.br.Buffered() == 0 {
				return n, nil
			}
			q := p[n:]
			if int64(len(q)) > b.n {
				q = q[:b.n]
			}
			m, err := b.br.Read(q)
			n += m
			b.n -= int64(m)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			if b.n == 0 {
				b.state = csCRLF
			}
		case csCRLF:
			if n > 0 && b.br.Buffered() < 2 {
				return n, nil
			}
			crlf, err := b.br.Peek(2)
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, err
			}
			if crlf[0] != '\r' || crlf[1] != '\n' {
				return n, errBadChunk
			}
			b.br.Discard(2)
			b.state = csSize
		case csTrailer:
			if n > 0 && !b.trailerBuffered() {
				return n, nil
			}
			if err := b.readTrailer(); err != nil {
				return n, err
			}
			b.eof = true
			return n, io.EOF
		}
	}
}

// lineBuffered reports whether a whole line is buffered.
func (b *body) lineBuffered() bool {
	buf, _ := b.br.Peek(b.br.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// trailerBuffered reports whether the end of the trailer section is
// buffered.
func (b *body) trailerBuffered() bool {
	buf, _ := b.br.Peek(b.br.Buffered())
	return bytes.HasPrefix(buf, []byte("\r\n")) || bytes.Contains(buf, []byte("\r\n\r\n"))
}

// readTrailer reads the trailer section into the request's Trailer.
func (b *body) readTrailer() error {
	if buf, _ := b.br.Peek(2); len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
		b.br.Discard(2)
		return nil
	}
	s, err := readBlock(b.br, b.trailerMax, b.trailerMax, false, nil)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if b.req.Trailer == nil {
		b.req.Trailer = make(http.Header)
	}
	return parseFields(s, b.req.Trailer)
}

// readChunkLine reads one chunk-size line and returns it without its
// CRLF. A line longer than the reader's buffer, a bare LF or a CR before
// the end are errors.
func readChunkLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		switch err {
		case io.EOF:
			err = io.ErrUnexpectedEOF
		case bufio.ErrBufferFull:
			err = errChunkLineLong
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line[:len(line)-2], '\r') >= 0 {
		return nil, errBadChunk
	}
	return line[:len(line)-2], nil
}

// parseChunkLine parses chunk-size [ chunk-ext ]:
//
//	chunk-size = 1*HEXDIG
//	chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
//	ext-val    = token / quoted-string
//
// The size must fit in an int64.
func parseChunkLine(line []byte) (int64, bool) {
	i := 0
	var n uint64
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i == 16 {
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
ext:
	if i == 0 || n > 1<<63-1 {
		return 0, false
	}
	rest := line[i:]
	for len(rest) > 0 {
		rest = skipOWS(rest)
		if len(rest) == 0 || rest[0] != ';' {
			return 0, false
		}
		rest = skipOWS(rest[1:])
		j := tokenLen(rest)
		if j == 0 {
			return 0, false
		}
		rest = skipOWS(rest[j:])
		if len(rest) == 0 || rest[0] != '=' {
			continue
		}
		rest = skipOWS(rest[1:])
		if len(rest) > 0 && rest[0] == '"' {
			j = quotedLen(rest)
		} else {
			j = tokenLen(rest)
		}
		if j == 0 {
			return 0, false
		}
		rest = rest[j:]
	}
	return int64(n), true
}

func skipOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	return b
}

// tokenLen returns the length of the token at the start of b.
func tokenLen(b []byte) int {
	i := 0
	for i < len(b) && tokenChar[b[i]] {
		i++
	}
	return i
}

// quotedLen returns the length of the quoted-string at the start of b, or
// 0 if it is not one.
func quotedLen(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(b) || !(b[i] == '\t' || b[i] >= ' ' && b[i] != 0x7f) {
				return 0
			}
		case c == '\t' || c >= ' ' && c != 0x7f:
		default:
			return 0
		}
	}
	return 0
}

// drain reads and discards the rest of the body, at most limit bytes of
// it. It reports whether the body ended; if not, later reads fail with
// errBodyTooLarge. The caller holds b.mu.
func (b *body) drainLocked(limit int64, scratch []byte) bool {
	if b.eof {
		return true
	}
	if b.err != nil {
		return false
	}
	b.cont = false
	if !b.chunked {
		if b.n > limit {
			b.err = errBodyTooLarge
			return false
		}
		for b.n > 0 {
			m, err := b.br.Discard(int(min(b.n, 1<<30)))
			b.n -= int64(m)
			if err != nil {
				b.err = err
				return false
			}
		}
		b.eof = true
		return true
	}
	var total int64
	for {
		m, err := b.readChunked(scratch)
		total += int64(m)
		switch {
		case err == io.EOF:
			return true
		case err != nil:
			b.err = err
			return false
		case total > limit:
			b.err = errBodyTooLarge
			return false
		}
	}
}
