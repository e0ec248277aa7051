package h1wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Errors of the wire format. They are values, compared by identity, and
// never echo the peer's bytes.
var (
	ErrBareLF       = errors.New("h1wire: line not terminated by CRLF")
	ErrBareCR       = errors.New("h1wire: bare CR in a line")
	ErrEmptyStart   = errors.New("h1wire: empty start line")
	ErrLineTooLong  = errors.New("h1wire: start line too long")
	ErrBlockTooLong = errors.New("h1wire: header section too large")
	ErrObsFold      = errors.New("h1wire: obsolete line folding")
	ErrFieldName    = errors.New("h1wire: invalid field name")
	ErrFieldValue   = errors.New("h1wire: invalid field value")
	ErrTrailerField = errors.New("h1wire: forbidden field in trailer")
)

// blockScan is the state of the search for the end of a header block. Its
// offsets count from the first byte of the block.
type blockScan struct {
	pos       int  // bytes scanned
	lineStart int  // offset of the line being scanned
	prevCR    bool // the byte at pos-1 is CR
	lines     int  // complete non-empty lines seen
	end       int  // offset just past the terminating empty line, once found
}

// scan looks for line ends in win, which holds the block's bytes from
// offset base. It reports whether the block is complete.
func (s *blockScan) scan(win []byte, base, lineMax, max int, startLine bool) (bool, error) {
	for {
		rel := s.pos - base
		i := bytes.IndexByte(win[rel:], '\n')
		if i < 0 {
			if len(win) > rel {
				s.prevCR = win[len(win)-1] == '\r'
			}
			s.pos = base + len(win)
			if startLine && s.lines == 0 && s.pos-s.lineStart > lineMax+1 {
				return false, ErrLineTooLong
			}
			if s.pos >= max {
				return false, ErrBlockTooLong
			}
			return false, nil
		}
		nl := rel + i
		cr := s.prevCR
		if nl > rel {
			cr = win[nl-1] == '\r'
		}
		if !cr {
			return false, ErrBareLF
		}
		lineLen := base + nl - 1 - s.lineStart
		next := base + nl + 1
		if next > max {
			if startLine && s.lines == 0 && lineLen > lineMax {
				return false, ErrLineTooLong
			}
			return false, ErrBlockTooLong
		}
		if lineLen == 0 {
			if startLine && s.lines == 0 {
				return false, ErrEmptyStart
			}
			s.end = next
			return true, nil
		}
		if startLine && s.lines == 0 && lineLen > lineMax {
			return false, ErrLineTooLong
		}
		s.lines++
		s.lineStart = next
		s.pos = next
		s.prevCR = false
	}
}

// ReadBlock reads a header block (a start line and header fields, or a
// trailer section) up to and including the empty line that ends it, and
// returns it as one string, CRLFs included: the only allocation of a
// message head. Every LF must follow a CR. The block may hold at most max
// bytes. With startLine set, the first line is a request or status line
// of at most lineMax bytes, and an empty first line is ErrEmptyStart;
// otherwise an empty first line ends an empty block. arm, if not nil, is
// called once before the first read that may block.
//
// A block that fits in br's buffer is converted in place; a larger one is
// gathered into a temporary slice. Bytes after the block stay in br. It
// returns io.EOF only when the input ended before any byte, and
// io.ErrUnexpectedEOF when it ended inside the block.
func ReadBlock(br *bufio.Reader, lineMax, max int, startLine bool, arm func()) (string, error) {
	var (
		s     blockScan
		big   []byte
		armed bool
	)
	lineMax = min(lineMax, max)
	for {
		n := br.Buffered()
		if n > 0 {
			win, _ := br.Peek(n)
			base := len(big)
			done, err := s.scan(win, base, lineMax, max, startLine)
			if err != nil {
				return "", err
			}
			if done {
				k := s.end - base
				var out string
				if big == nil {
					out = string(win[:k])
				} else {
					out = string(append(big, win[:k]...))
				}
				br.Discard(k)
				return out, nil
			}
			if n == br.Size() {
				big = append(big, win...)
				br.Discard(n)
			}
		}
		if !armed && arm != nil {
			arm()
			armed = true
		}
		before := br.Buffered()
		if _, err := br.Peek(before + 1); err != nil {
			// Peek fails only when no byte arrived.
			if err == io.EOF && (s.pos > 0 || len(big) > 0 || before > 0) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// StartLine splits a block returned by ReadBlock with startLine set into
// its first line (without CRLF) and the field lines that follow.
func StartLine(block string) (line, fields string) {
	eol := strings.Index(block, "\r\n")
	return block[:eol], block[eol+2:]
}

// NextField parses the first field line of fields, a part of a block
// returned by ReadBlock, and returns the field's canonical name, its value
// trimmed of whitespace, and the lines after it. At the empty line that
// ends the block it returns an empty name and rest "". The errors are
// ErrObsFold, ErrFieldName, ErrFieldValue and ErrBareCR.
func NextField(fields string) (name, value, rest string, err error) {
	eol := strings.Index(fields, "\r\n")
	line := fields[:eol]
	rest = fields[eol+2:]
	if line == "" {
		return "", "", "", nil
	}
	if IsOWS(line[0]) {
		return "", "", "", ErrObsFold
	}
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return "", "", "", ErrFieldName
	}
	name, ok := CanonicalName(line[:colon])
	if !ok {
		return "", "", "", ErrFieldName
	}
	value = line[colon+1:]
	for i := 0; i < len(value); i++ {
		if !ValidValueByte(value[i]) {
			if value[i] == '\r' {
				return "", "", "", ErrBareCR
			}
			return "", "", "", ErrFieldValue
		}
	}
	return name, TrimOWS(value), rest, nil
}

// forbiddenInTrailer reports whether a field may not be sent in a trailer
// section because it frames or routes the message (RFC 9110 section
// 6.5.1). net/http refuses the first three in both directions; Host is
// refused too, as it routes a request.
func forbiddenInTrailer(name string) bool {
	switch name {
	case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
		return true
	}
	return false
}

// ParseTrailer adds the fields of a trailer section (a block returned by
// ReadBlock without a start line) to h, with the rules of NextField. A
// field that frames or routes the message is ErrTrailerField.
func ParseTrailer(block string, h http.Header) error {
	for {
		name, v, rest, err := NextField(block)
		if err != nil {
			return err
		}
		if name == "" {
			return nil
		}
		if forbiddenInTrailer(name) {
			return ErrTrailerField
		}
		h[name] = append(h[name], v)
		block = rest
	}
}

// ReadTrailer reads the trailer section that follows the last chunk of a
// chunked body, of at most max bytes, and adds its fields to *h, making
// the map when there is a field and *h is nil. The end of input is
// io.ErrUnexpectedEOF.
func ReadTrailer(br *bufio.Reader, max int, h *http.Header) error {
	if buf, _ := br.Peek(2); len(buf) == 2 && buf[0] == '\r' && buf[1] == '\n' {
		br.Discard(2)
		return nil
	}
	s, err := ReadBlock(br, max, max, false, nil)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if *h == nil {
		*h = make(http.Header)
	}
	return ParseTrailer(s, *h)
}

// LineBuffered reports whether a whole line is in br's buffer, so that
// reading it will not block.
func LineBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(buf, '\n') >= 0
}

// TrailerBuffered reports whether the end of a trailer section is in br's
// buffer, so that reading it will not block.
func TrailerBuffered(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Buffered())
	return bytes.HasPrefix(buf, []byte("\r\n")) || bytes.Contains(buf, []byte("\r\n\r\n"))
}
