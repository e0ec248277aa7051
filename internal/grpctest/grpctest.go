// Package grpctest speaks enough gRPC for tests without the gRPC module:
// length-prefixed messages over net/http's HTTP/2 client (h2c with prior
// knowledge, or TLS), the status from a trailers-only response or the
// trailers, and an h2c server of an echo service.
package grpctest

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Frame returns msg as one length-prefixed, uncompressed gRPC message.
func Frame(msg string) []byte {
	b := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:5], uint32(len(msg)))
	copy(b[5:], msg)
	return b
}

// ReadFrame reads one length-prefixed gRPC message; io.EOF at a message
// boundary means the stream ended.
func ReadFrame(r io.Reader) (string, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return "", err
	}
	return string(msg), nil
}

// H2CClient returns a client that speaks HTTP/2 with prior knowledge, as
// gRPC clients do on cleartext connections.
func H2CClient() *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// TLSClient returns a client that speaks HTTP/2 over TLS only.
func TLSClient(cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Transport: tr}
}

// Result is what a client sees of a unary call.
type Result struct {
	// HTTPStatus and ContentType are the response's.
	HTTPStatus  int
	ContentType string
	// Messages are the response messages.
	Messages []string
	// Status and Message are grpc-status and grpc-message, from the
	// trailers or from the headers of a trailers-only response.
	Status, Message string
	// Header is the response header.
	Header http.Header
	// Elapsed is the time from sending to the end of the trailers.
	Elapsed time.Duration
}

// Unary makes a unary call of msg to url (scheme, authority and
// "/service/method"), with the header fields of hdr as name, value pairs
// ("Host" sets the authority).
func Unary(c *http.Client, url, msg string, hdr ...string) (Result, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(Frame(msg)))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	res := Result{HTTPStatus: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header}
	for {
		m, err := ReadFrame(resp.Body)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		res.Messages = append(res.Messages, m)
	}
	res.Elapsed = time.Since(start)
	res.Status, res.Message = resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if res.Status == "" {
		res.Status, res.Message = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	return res, nil
}

// EchoServer starts an h2c server of service echo.Echo, whose replies
// begin with name: Say answers "name:" and the message; Missing answers
// NOT_FOUND; Slow answers when the call is cancelled, or after five
// seconds; Chat echoes each message of a bidirectional stream as it
// arrives; any other method is UNIMPLEMENTED. Every response carries the
// request's "x-seen-*" metadata: the authority and the "version" field.
func EchoServer(name string) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/grpc")
		h.Set("Trailer", "Grpc-Status, Grpc-Message")
		h.Set("X-Seen-Authority", r.Host)
		h.Set("X-Seen-Version", r.Header.Get("Version"))
		h.Set("X-Backend", name)
		switch r.URL.Path {
		case "/echo.Echo/Chat":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for {
				m, err := ReadFrame(r.Body)
				if err != nil {
					break
				}
				w.Write(Frame(name + ":" + m))
				w.(http.Flusher).Flush()
			}
			h.Set("Grpc-Status", "0")
			return
		}
		msg, _ := ReadFrame(r.Body)
		switch r.URL.Path {
		case "/echo.Echo/Say":
			w.Write(Frame(name + ":" + msg))
			h.Set("Grpc-Status", "0")
		case "/echo.Echo/Missing":
			h.Set("Grpc-Status", "5")
			h.Set("Grpc-Message", "no such thing")
		case "/echo.Echo/Slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			h.Set("Grpc-Status", "0")
		default:
			h.Set("Grpc-Status", "12")
		}
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	return s
}
