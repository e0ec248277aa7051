package main

import (
	"bytes"
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

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "`address` to listen on (host:port)")
	size := flag.Int("size", 64, "response body size in `bytes`")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*addr, *size, logger); err != nil {
		logger.Error("backend stopped", "err", err)
		os.Exit(1)
	}
}

// run listens on addr and serves the fixed body until the process is killed.
func run(addr string, size int, logger *slog.Logger) error {
	h, err := newHandler(size)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on addr %q: %w", addr, err)
	}
	logger.Info("backend listening", "addr", ln.Addr().String(), "size", size)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on addr %q: %w", addr, err)
	}
	return nil
}

// newHandler returns a handler answering every request with size bytes.
func newHandler(size int) (http.Handler, error) {
	if size < 0 {
		return nil, fmt.Errorf("size: must not be negative, got %d", size)
	}
	body := bytes.Repeat([]byte("x"), size)
	if size > 0 {
		body[size-1] = '\n'
	}
	length := []string{strconv.Itoa(size)}
	contentType := []string{"text/plain; charset=utf-8"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain a request body so the connection stays reusable.
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = contentType
		h["Content-Length"] = length
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}), nil
}
