package h1wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Errors of chunked framing.
var (
	ErrBadChunk      = errors.New("h1wire: malformed chunked encoding")
	ErrChunkLineLong = errors.New("h1wire: chunk-size line too long")
)

// ReadChunkSize reads one chunk-size line (RFC 9112 section 7.1) and
// returns the chunk size and the line's length with its CRLF. A line
// longer than br's buffer is ErrChunkLineLong; a bare LF, a CR before the
// end or a line ParseChunkLine refuses is ErrBadChunk; the end of input is
// io.ErrUnexpectedEOF.
func ReadChunkSize(br *bufio.Reader) (size int64, lineLen int, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		switch err {
		case io.EOF:
			err = io.ErrUnexpectedEOF
		case bufio.ErrBufferFull:
			err = ErrChunkLineLong
		}
		return 0, 0, err
	}
	n := len(line)
	if n < 2 || line[n-2] != '\r' || bytes.IndexByte(line[:n-2], '\r') >= 0 {
		return 0, 0, ErrBadChunk
	}
	size, ok := ParseChunkLine(line[:n-2])
	if !ok {
		return 0, 0, ErrBadChunk
	}
	return size, n, nil
}

// ReadAtMost reads into p at most n bytes (the rest of a body or of a
// chunk) from br, with one Read.
func ReadAtMost(br *bufio.Reader, p []byte, n int64) (int, error) {
	if int64(len(p)) > n {
		p = p[:n]
	}
	return br.Read(p)
}

// ReadChunkEnd reads the CRLF that ends a chunk's data. Anything else is
// ErrBadChunk; the end of input is io.ErrUnexpectedEOF.
func ReadChunkEnd(br *bufio.Reader) error {
	crlf, err := br.Peek(2)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return ErrBadChunk
	}
	br.Discard(2)
	return nil
}

// ParseChunkLine parses a chunk-size line without its CRLF:
//
//	chunk-size = 1*HEXDIG
//	chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
//	ext-name   = token
//	ext-val    = token / quoted-string
//
// The size has at most 16 digits and must fit in an int64, as net/http
// requires. Extensions must follow the grammar and are then ignored;
// whitespace at the end of the line (after the size or an extension
// name) is refused, as the grammar has no place for it.
func ParseChunkLine(line []byte) (int64, bool) {
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
		rest = rest[j:]
		if eq := skipOWS(rest); len(eq) == 0 || eq[0] != '=' {
			continue // whitespace here must precede a ";" or "="
		}
		rest = skipOWS(skipOWS(rest)[1:])
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
	for len(b) > 0 && IsOWS(b[0]) {
		b = b[1:]
	}
	return b
}

// tokenLen returns the length of the token at the start of b.
func tokenLen(b []byte) int {
	i := 0
	for i < len(b) && IsTokenByte(b[i]) {
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
			if i == len(b) || !ValidValueByte(b[i]) {
				return 0
			}
		case ValidValueByte(c):
		default:
			return 0
		}
	}
	return 0
}
