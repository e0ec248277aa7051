package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// idlePerHost is the number of idle upstream connections kept per backend; it
// matches the keepalive 64 given to nginx and the 64 client connections of a
// benchmark run.
const idlePerHost = 64

func main() {
	listen := flag.String("listen", "", "clear-text HTTP/1.1 listen `address` (host:port)")
	tlsListen := flag.String("tls-listen", "", "TLS (ALPN h2, http/1.1) listen `address` (host:port)")
	certFile := flag.String("cert", "", "PEM certificate `file` for -tls-listen")
	keyFile := flag.String("key", "", "PEM private key `file` for -tls-listen")
	backends := flag.String("backends", "", "comma-separated backend `addresses` (host:port)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *tlsListen, *certFile, *keyFile, *backends, logger); err != nil {
		logger.Error("goproxy stopped", "err", err)
		os.Exit(1)
	}
}

// run validates the flags, opens the listeners and serves until a signal.
func run(listen, tlsListen, certFile, keyFile, backends string, logger *slog.Logger) error {
	if listen == "" && tlsListen == "" {
		return errors.New("listen, tls-listen: at least one is required")
	}
	if tlsListen != "" && (certFile == "" || keyFile == "") {
		return errors.New("cert, key: both are required with tls-listen")
	}
	targets, err := parseBackends(backends)
	if err != nil {
		return err
	}
	var plain, secure net.Listener
	if listen != "" {
		if plain, err = net.Listen("tcp", listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	if tlsListen != "" {
		if secure, err = net.Listen("tcp", tlsListen); err != nil {
			if plain != nil {
				plain.Close()
			}
			return fmt.Errorf("tls-listen: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, plain, secure, certFile, keyFile, newProxy(targets, logger), logger)
}

// parseBackends turns "host:port,host:port" into http URLs.
func parseBackends(list string) ([]*url.URL, error) {
	var targets []*url.URL
	for i, addr := range strings.Split(list, ",") {
		addr = strings.TrimSpace(addr)
		if addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("backends[%d] %q: want host:port", i, addr)
		}
		targets = append(targets, &url.URL{Scheme: "http", Host: addr})
	}
	if len(targets) == 0 {
		return nil, errors.New("backends: at least one host:port is required")
	}
	return targets, nil
}

// newProxy returns a ReverseProxy sending requests to targets in turn.
func newProxy(targets []*url.URL, logger *slog.Logger) *httputil.ReverseProxy {
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			n := next.Add(1) - 1
			pr.SetURL(targets[n%uint64(len(targets))])
		},
		Transport: &http.Transport{
			DialContext: (&net.Dialer{
				Timeout:   5 * time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			MaxIdleConns:          idlePerHost * len(targets),
			MaxIdleConnsPerHost:   idlePerHost,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			DisableCompression:    true,
		},
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// serve serves h on plain (clear text) and secure (TLS with h2) until ctx is
// done, then shuts both servers down. Either listener may be nil.
func serve(ctx context.Context, plain, secure net.Listener, certFile, keyFile string, h http.Handler, logger *slog.Logger) error {
	errLog := slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	errc := make(chan error, 2)
	var servers []*http.Server
	if plain != nil {
		srv := newServer(h, errLog)
		servers = append(servers, srv)
		logger.Info("goproxy listening", "addr", plain.Addr().String(), "tls", false)
		go func() { errc <- srv.Serve(plain) }()
	}
	if secure != nil {
		srv := newServer(h, errLog)
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		servers = append(servers, srv)
		logger.Info("goproxy listening", "addr", secure.Addr().String(), "tls", true)
		go func() { errc <- srv.ServeTLS(secure, certFile, keyFile) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", serr)
		}
	}
	return err
}

// newServer returns an http.Server with the limits a proxy should have.
func newServer(h http.Handler, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
}
