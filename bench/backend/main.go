package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// largePath is the path answered with the -large body.
const largePath = "/large"

// config is what the flags set.
type config struct {
	addr      string // listen address
	size      int    // body of every request but largePath
	large     int    // body of largePath
	h2c       bool   // serve HTTP/2 with prior knowledge besides HTTP/1.1
	cert, key string // PEM files: serve TLS (ALPN h2, http/1.1) when both are set
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "`address` to listen on (host:port)")
	flag.IntVar(&cfg.size, "size", 64, "response body size in `bytes`")
	flag.IntVar(&cfg.large, "large", 1<<20, "response body size in `bytes` for the path "+largePath)
	flag.BoolVar(&cfg.h2c, "h2c", false, "also serve HTTP/2 in clear text (h2c with prior knowledge)")
	flag.StringVar(&cfg.cert, "cert", "", "PEM certificate `file`: serve TLS (with -key)")
	flag.StringVar(&cfg.key, "key", "", "PEM private key `file` for -cert")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(cfg, logger); err != nil {
		logger.Error("backend stopped", "err", err)
		os.Exit(1)
	}
}

// run listens on cfg.addr and serves the fixed bodies until the process is
// killed.
func run(cfg config, logger *slog.Logger) error {
	srv, err := newServer(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on addr %q: %w", cfg.addr, err)
	}
	logger.Info("backend listening", "addr", ln.Addr().String(), "size", cfg.size, "large", cfg.large,
		"h2c", cfg.h2c, "tls", srv.TLSConfig != nil)
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on addr %q: %w", cfg.addr, err)
	}
	return nil
}

// newServer returns the server cfg describes, with its TLS configuration
// set when cfg names a certificate.
func newServer(cfg config) (*http.Server, error) {
	h, err := newHandler(cfg.size, cfg.large)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	switch {
	case (cfg.cert == "") != (cfg.key == ""):
		return nil, errors.New("cert, key: give both or neither")
	case cfg.cert != "":
		if cfg.h2c {
			return nil, errors.New("h2c: not with cert (a TLS listener negotiates h2 by ALPN)")
		}
		pair, err := tls.LoadX509KeyPair(cfg.cert, cfg.key)
		if err != nil {
			return nil, fmt.Errorf("cert %q, key %q: %w", cfg.cert, cfg.key, err)
		}
		srv.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{pair},
			NextProtos:   []string{"h2", "http/1.1"},
			MinVersion:   tls.VersionTLS12,
		}
	case cfg.h2c:
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv, nil
}

// newHandler returns a handler answering every request with size bytes,
// and requests for largePath with large bytes.
func newHandler(size, large int) (http.Handler, error) {
	if size < 0 {
		return nil, fmt.Errorf("size: must not be negative, got %d", size)
	}
	if large < 0 {
		return nil, fmt.Errorf("large: must not be negative, got %d", large)
	}
	small, big := fixedBody(size), fixedBody(large)
	contentType := []string{"text/plain; charset=utf-8"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain a request body so the connection stays reusable.
		_, _ = io.Copy(io.Discard, r.Body)
		b := small
		if r.URL.Path == largePath {
			b = big
		}
		h := w.Header()
		h["Content-Type"] = contentType
		h["Content-Length"] = b.length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b.data)
	}), nil
}

// body is a response body and its Content-Length field value.
type body struct {
	data   []byte
	length []string
}

// fixedBody returns size bytes of 'x' ending in a newline.
func fixedBody(size int) body {
	b := bytes.Repeat([]byte("x"), size)
	if size > 0 {
		b[size-1] = '\n'
	}
	return body{data: b, length: []string{strconv.Itoa(size)}}
}
