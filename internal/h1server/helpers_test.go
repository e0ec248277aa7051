package h1server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testConfig is what the behavioural tests configure, for either server.
type testConfig struct {
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	connState         func(net.Conn, http.ConnState)
	log               *slog.Logger
}

// testServer is a running server under test.
type testServer struct {
	addr     string
	shutdown func(context.Context) error
	close    func() error
}

// impl starts one of the servers the behavioural tests run against.
type impl struct {
	name  string
	start func(t testing.TB, h http.Handler, cfg testConfig) *testServer
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startOurs(t testing.TB, h http.Handler, cfg testConfig) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := cfg.log
	if log == nil {
		log = quietLogger()
	}
	s := &Server{
		Handler:                 h,
		ReadHeaderTimeout:       cfg.readHeaderTimeout,
		ReadTimeout:             cfg.readTimeout,
		WriteTimeout:            cfg.writeTimeout,
		IdleTimeout:             cfg.idleTimeout,
		MaxHeaderBytes:          cfg.maxHeaderBytes,
		ConnState:               cfg.connState,
		ErrorLog:                log,
		DisconnectCheckInterval: 10 * time.Millisecond,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return &testServer{addr: ln.Addr().String(), shutdown: s.Shutdown, close: s.Close}
}

func startNetHTTP(t testing.TB, h http.Handler, cfg testConfig) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		ReadTimeout:       cfg.readTimeout,
		WriteTimeout:      cfg.writeTimeout,
		IdleTimeout:       cfg.idleTimeout,
		MaxHeaderBytes:    cfg.maxHeaderBytes,
		ConnState:         cfg.connState,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return &testServer{addr: ln.Addr().String(), shutdown: s.Shutdown, close: s.Close}
}

var impls = []impl{
	{"h1server", startOurs},
	{"net-http", startNetHTTP},
}

// forEachImpl runs a behavioural test against both servers: this package's
// and net/http's as a reference.
func forEachImpl(t *testing.T, f func(t *testing.T, start func(testing.TB, http.Handler, testConfig) *testServer)) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) { f(t, im.start) })
	}
}

// rawConn is a client connection speaking HTTP/1.1 bytes directly.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// clientResponse is a response read by rawConn, body included.
type clientResponse struct {
	*http.Response
	body string
}

// read reads one response to a request of the given method.
func (c *rawConn) read(method string) *clientResponse {
	c.t.Helper()
	r, err := c.tryRead(method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return r
}

func (c *rawConn) tryRead(method string) (*clientResponse, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &clientResponse{Response: resp, body: string(b)}, nil
}

// closed reports whether the server closed the connection: a read ends
// with EOF (or a reset) within the timeout rather than blocking.
func (c *rawConn) closed(timeout time.Duration) bool {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	defer c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.br.ReadByte()
	if err == nil {
		return false
	}
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// rawHead reads the raw bytes of a response head.
func (c *rawConn) rawHead() string {
	c.t.Helper()
	var sb strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		sb.WriteString(line)
		if err != nil {
			c.t.Fatalf("reading head: %v (%q)", err, sb.String())
		}
		if line == "\r\n" {
			return sb.String()
		}
	}
}

// parsed is a request parsed in process by the server's own code.
type parsed struct {
	req      *http.Request
	body     []byte
	consumed int // bytes of the input used by the request, body included
}

// parseRaw parses one request from raw exactly as a connection does,
// reading its body to the end. r, if not nil, replaces the reader of raw
// (to feed it in pieces).
func parseRaw(raw []byte, r io.Reader) (*parsed, error) {
	cr := &countingReader{r: r}
	if r == nil {
		cr.r = bytes.NewReader(raw)
	}
	br := bufio.NewReaderSize(cr, readBufferSize)
	s, err := readHead(br, DefaultMaxRequestLineBytes, 64<<10, nil)
	if err != nil {
		return nil, err
	}
	var hd head
	sink := fieldSink{h: make(http.Header)}
	u := new(url.URL)
	if err := parseHead(s, &hd, &sink, u); err != nil {
		return nil, err
	}
	req := new(http.Request)
	var te [1]string
	fillRequest(req, &hd, u, sink.h, br, nil, maxTrailerBytes, te[:])
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	return &parsed{req: req, body: body, consumed: cr.n - br.Buffered()}, nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// statusOf returns the status a parse error is answered with, 0 for none.
func statusOf(err error) int {
	var pe *protoError
	if errors.As(err, &pe) {
		return pe.code
	}
	return 0
}

// recorder collects values from handlers running on other goroutines.
type recorder[T any] struct {
	mu   sync.Mutex
	vals []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	r.vals = append(r.vals, v)
	r.mu.Unlock()
}

func (r *recorder[T]) get() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.vals...)
}
