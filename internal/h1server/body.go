package h1server

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/rauta/rauta/internal/h1wire"
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
	n, err := h1wire.ReadAtMost(b.br, p, b.n)
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
			if n > 0 && !h1wire.LineBuffered(b.br) {
				return n, nil
			}
			size, lineLen, err := h1wire.ReadChunkSize(b.br)
			if err != nil {
				return n, wireErr(err)
			}
			b.excess += int64(lineLen) - 16 - 2*min(size, 1<<40)
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
			m, err := h1wire.ReadAtMost(b.br, p[n:], b.n)
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
			if err := h1wire.ReadChunkEnd(b.br); err != nil {
				return n, wireErr(err)
			}
			b.state = csSize
		case csTrailer:
			if n > 0 && !h1wire.TrailerBuffered(b.br) {
				return n, nil
			}
			if err := h1wire.ReadTrailer(b.br, b.trailerMax, &b.req.Trailer); err != nil {
				return n, wireErr(err)
			}
			b.eof = true
			return n, io.EOF
		}
	}
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
