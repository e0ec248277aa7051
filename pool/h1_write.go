package pool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rauta/rauta/internal/h1wire"
)

// syncBodyMax is the largest request body (with a known length) written in
// the caller's goroutine before the response is read. Larger bodies, bodies
// of unknown length and bodies sent after "Expect: 100-continue" are written
// by a goroutine while the response is read, so that a backend answering
// early or streaming its response while it reads cannot deadlock with us.
const syncBodyMax = 64 << 10

// writeHead writes the request line and header section of req to bw.
// cl is the Content-Length to declare (-1 for none); chunked selects
// Transfer-Encoding: chunked. It refuses header names and values that could
// split the request (CR, LF, NUL, other controls).
func writeHead(bw *bufio.Writer, req *http.Request, host string, cl int64, chunked bool) error {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	if method == http.MethodConnect {
		bw.WriteString(host)
	} else if err := writeTarget(bw, req.URL); err != nil {
		return err
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range req.Header {
		if skipRequestField(k) {
			continue
		}
		if !h1wire.ValidToken(k) {
			return fmt.Errorf("invalid request header field name %q", clip(k))
		}
		for _, v := range vv {
			if !h1wire.ValidFieldValue(v) {
				return fmt.Errorf("invalid value for request header field %q", clip(k))
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if req.Close && !h1wire.HasToken(req.Header["Connection"], "close") {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			bw.WriteString("Trailer: ")
			first := true
			for k := range req.Trailer {
				if !h1wire.ValidToken(k) || skipRequestField(k) {
					return fmt.Errorf("invalid request trailer field name %q", clip(k))
				}
				if !first {
					bw.WriteString(", ")
				}
				first = false
				bw.WriteString(k)
			}
			bw.WriteString("\r\n")
		}
	case cl >= 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), cl, 10))
		bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// skipRequestField reports the fields the transport writes itself, compared
// ASCII case-insensitively so that a non-canonical map key cannot smuggle a
// second framing header.
func skipRequestField(k string) bool {
	switch len(k) {
	case 4:
		return strings.EqualFold(k, "Host")
	case 7:
		return strings.EqualFold(k, "Trailer")
	case 14:
		return strings.EqualFold(k, "Content-Length")
	case 17:
		return strings.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// writeTarget writes the origin-form request target of u without building
// an intermediate string.
func writeTarget(bw *bufio.Writer, u *url.URL) error {
	if u.Opaque != "" {
		t := u.RequestURI()
		if !validTarget(t) {
			return fmt.Errorf("invalid request target %q", clip(t))
		}
		bw.WriteString(t)
		return nil
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	} else if p[0] != '/' {
		bw.WriteByte('/')
	}
	if !validTarget(p) {
		return fmt.Errorf("invalid request path %q", clip(p))
	}
	bw.WriteString(p)
	if u.ForceQuery || u.RawQuery != "" {
		if !validTarget(u.RawQuery) {
			return fmt.Errorf("invalid request query %q", clip(u.RawQuery))
		}
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
	return nil
}

// validTarget refuses spaces, controls and DEL in a request target.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// chunkHeadRoom is the space reserved in front of chunk data for its size
// line ("ffffffff\r\n" and more than enough for any buffer size).
const chunkHeadRoom = 12

// writeBody copies body to bw: exactly n bytes when n >= 0, or chunked
// (flushing every chunk, so that a streaming body streams) when n < 0,
// followed by the trailers of trailer. Errors reading the body and errors
// writing to the connection are returned apart. It reads straight into the
// writer's free buffer space: no copy buffer is allocated.
func writeBody(bw *bufio.Writer, body io.Reader, n int64, trailer http.Header) (rerr, werr error) {
	zero := 0
	if n >= 0 {
		left := n
		for left > 0 {
			if bw.Available() < 512 {
				if werr = bw.Flush(); werr != nil {
					return nil, werr
				}
			}
			buf := bw.AvailableBuffer()[:min(int64(bw.Available()), left)]
			k, err := body.Read(buf)
			if k > 0 {
				zero = 0
				bw.Write(buf[:k])
				left -= int64(k)
			} else if err == nil {
				if zero++; zero > 100 {
					return io.ErrNoProgress, nil
				}
			}
			if err == io.EOF {
				if left > 0 {
					return fmt.Errorf("body is %d bytes shorter than its ContentLength %d: %w", left, n, io.ErrUnexpectedEOF), nil
				}
				break
			}
			if err != nil {
				return err, nil
			}
		}
		return nil, nil
	}
	for {
		if bw.Available() < 512+chunkHeadRoom {
			if werr = bw.Flush(); werr != nil {
				return nil, werr
			}
		}
		avail := bw.AvailableBuffer()[:bw.Available()]
		k, err := body.Read(avail[chunkHeadRoom : len(avail)-2])
		if k > 0 {
			zero = 0
			head := strconv.AppendInt(avail[:0], int64(k), 16)
			head = append(head, '\r', '\n')
			bw.Write(head)
			// The data sits after the reserved room; Write moves it down
			// to follow the size line (copy handles the overlap).
			bw.Write(avail[chunkHeadRoom : chunkHeadRoom+k])
			bw.WriteString("\r\n")
			if werr = bw.Flush(); werr != nil {
				return nil, werr
			}
		} else if err == nil {
			if zero++; zero > 100 {
				return io.ErrNoProgress, nil
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err, nil
		}
	}
	bw.WriteString("0\r\n")
	for k, vv := range trailer {
		if !h1wire.ValidToken(k) || skipRequestField(k) {
			return fmt.Errorf("invalid request trailer field name %q", clip(k)), nil
		}
		for _, v := range vv {
			if !h1wire.ValidFieldValue(v) {
				return fmt.Errorf("invalid value for request trailer field %q", clip(k)), nil
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	_, werr = bw.WriteString("\r\n")
	return nil, werr
}

// isUpgrade reports whether req asks for a protocol switch (WebSocket and
// other Upgrades), which only HTTP/1.1 can carry.
func isUpgrade(req *http.Request) bool {
	return len(req.Header["Upgrade"]) > 0 && h1wire.HasToken(req.Header["Connection"], "upgrade")
}

var errBodyNotSent = errors.New("request body not sent: the backend answered before 100 Continue")
