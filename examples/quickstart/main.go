// Command quickstart runs a complete rauta gateway on this machine, with no
// cluster: two demo backends and the gateway serving the YAML files of this
// directory.
//
// From the root of the repository (rauta needs Go 1.27; GOTOOLCHAIN makes
// an older go command fetch it once, see README.md):
//
//	GOTOOLCHAIN=go1.27.3 go run ./examples/quickstart
//
// It starts two echo backends on 127.0.0.1:9001 (echo-v1) and
// 127.0.0.1:9002 (echo-v2) that answer with their name, the method, the
// path and the headers they received; then it runs the gateway exactly as
// `rauta serve --config examples/quickstart` does: HTTP on 127.0.0.1:8080,
// HTTPS on 127.0.0.1:8443 and the admin listener on 127.0.0.1:9090. Edit the
// YAML files while it runs: the gateway reloads them.
//
// The flags -config and -admin-address change where the YAML files are read
// from and where the admin listener binds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/filesource"
	"github.com/rauta/rauta/proxy"
)

func main() {
	config := flag.String("config", defaultConfigDir(), "directory of the quickstart's YAML files")
	adminAddr := flag.String("admin-address", "127.0.0.1:9090", "address of the admin listener")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, log, os.Stderr, *config, *adminAddr); err != nil {
		log.Error("quickstart failed", "error", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out io.Writer, config, adminAddr string) error {
	// The demo backends the YAML files point at.
	backends := []struct{ name, addr string }{
		{"echo-v1", "127.0.0.1:9001"},
		{"echo-v2", "127.0.0.1:9002"},
	}
	for _, b := range backends {
		ln, err := net.Listen("tcp", b.addr)
		if err != nil {
			return fmt.Errorf("backend %s: %w (is another quickstart running?)", b.name, err)
		}
		srv := &http.Server{Handler: echo(b.name), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("backend stopped", "backend", b.name, "error", err)
			}
		}()
		defer srv.Close()
		log.Info("backend listening", "backend", b.name, "address", b.addr)
	}

	// The gateway: a proxy, a Source feeding it the files, and admin.Run
	// for the admin listener and the graceful shutdown.
	p := proxy.New(proxy.Options{Logger: log})
	printed := false
	src, err := filesource.New(filesource.Options{
		Path:   config,
		Proxy:  p,
		Logger: log,
		OnReport: func(r filesource.Report) {
			if r.Error == nil && !printed {
				printed = true
				fmt.Fprint(out, tryIt(adminAddr))
			}
		},
	})
	if err != nil {
		return err
	}
	return admin.Run(ctx, admin.RunOptions{
		Proxy:   p,
		Address: adminAddr,
		Status:  func() any { return src.Report() },
		Logger:  log,
	}, src)
}

// echo answers with the backend's name and what it received.
func echo(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Backend", name)
		var b strings.Builder
		fmt.Fprintf(&b, "backend: %s\n%s %s %s\nhost: %s\n", name, r.Method, r.URL.RequestURI(), r.Proto, r.Host)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range r.Header {
				if !yield(k) {
					return
				}
			}
		}) {
			for _, v := range r.Header[k] {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		_, _ = io.WriteString(w, b.String())
	})
}

// tryIt returns the curl commands printed once the gateway is up.
func tryIt(adminAddr string) string {
	return `
rauta is running. Try:

  # split 80/20 between echo-v1 and echo-v2
  for i in $(seq 20); do curl -s http://127.0.0.1:8080/ | head -1; done | sort | uniq -c
  # header match: always echo-v2, with the header X-Route: canary added
  curl -s -H 'X-Canary: always' http://127.0.0.1:8080/hello
  # redirect /old -> /new
  curl -si http://127.0.0.1:8080/old | head -3
  # api.example.com over HTTP is redirected to HTTPS
  curl -si -H 'Host: api.example.com' http://127.0.0.1:8080/api/users | head -3
  # HTTPS with SNI (self-signed certificate, hence -k)
  curl -sk --resolve api.example.com:8443:127.0.0.1 https://api.example.com:8443/api/users

  # the admin listener
  curl -s 'http://` + adminAddr + `/debug/route?host=api.example.com&path=/api/users&listener=default/demo/https'
  curl -s http://` + adminAddr + `/debug/status
  curl -s http://` + adminAddr + `/metrics | grep rauta_http_requests_total

Edit the YAML files in examples/quickstart while it runs; Ctrl-C stops it.

`
}

// defaultConfigDir returns the directory of this example's YAML files:
// examples/quickstart under the working directory when it exists (go run
// from the repository root), else the directory of this source file.
func defaultConfigDir() string {
	const rel = "examples/quickstart"
	if st, err := os.Stat(filepath.Join(rel, "gateway.yaml")); err == nil && st.Mode().IsRegular() {
		return rel
	}
	if _, err := os.Stat("gateway.yaml"); err == nil {
		return "."
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		return filepath.Dir(file)
	}
	return rel
}
