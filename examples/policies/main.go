// Command policies runs a rauta gateway on this machine, with no cluster,
// whose traffic features are switched on by policies: a rate limit, Maglev
// consistent hashing on a header, session persistence, health checks and
// circuit breakers, a request body limit.
//
// From the root of the repository (rauta needs Go 1.27; GOTOOLCHAIN makes
// an older go command fetch it once, see README.md):
//
//	GOTOOLCHAIN=go1.27.3 go run ./examples/policies
//
// It starts three backends on 127.0.0.1:19001, 19002 and 19003 (app-1,
// app-2, app-3) that answer with their name and serve /healthz; then it runs
// the gateway exactly as `rauta serve --config examples/policies` does: HTTP
// on 127.0.0.1:18080 and the admin listener on 127.0.0.1:19090. The YAML
// files of this directory are the configuration; docs/policies.md walks
// through them. Edit them while it runs: the gateway reloads them.
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
	"syscall"
	"time"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/filesource"
	"github.com/rauta/rauta/proxy"
)

// backends are the example's endpoints, as backends.yaml names them.
var backends = []struct{ name, addr string }{
	{"app-1", "127.0.0.1:19001"},
	{"app-2", "127.0.0.1:19002"},
	{"app-3", "127.0.0.1:19003"},
}

func main() {
	config := flag.String("config", defaultConfigDir(), "directory of the example's YAML files")
	adminAddr := flag.String("admin-address", "127.0.0.1:19090", "address of the admin listener")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(ctx, log, os.Stderr, *config, *adminAddr); err != nil {
		log.Error("policies example failed", "error", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, out io.Writer, config, adminAddr string) error {
	for _, b := range backends {
		ln, err := net.Listen("tcp", b.addr)
		if err != nil {
			return fmt.Errorf("backend %s: %w (is another copy of the example running?)", b.name, err)
		}
		srv := &http.Server{Handler: app(b.name), ReadHeaderTimeout: 10 * time.Second}
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

// app is one backend: /healthz for the health checks, and its name for
// every other request.
func app(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Backend", name)
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		fmt.Fprintf(w, "backend: %s\n%s %s\n", name, r.Method, r.URL.RequestURI())
	})
}

// tryIt returns the commands printed once the gateway is up.
func tryIt(adminAddr string) string {
	return `
rauta is running with policies. Try:

  # a rate limit of 5 requests per second, burst 5: the sixth request of a
  # quick series is answered 429 with Retry-After, RateLimit and RateLimit-Policy
  for i in $(seq 8); do curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:18080/limited; done
  curl -si http://127.0.0.1:18080/limited | grep -i -e ^HTTP -e ^ratelimit -e ^retry-after

  # Maglev on X-User: each user keeps its endpoint
  for u in alice bob carol alice bob carol; do curl -s -H "X-User: $u" http://127.0.0.1:18080/sticky | head -1; done

  # session persistence: the gateway issues a cookie naming the endpoint it picked
  curl -s -c /tmp/rauta-jar -b /tmp/rauta-jar http://127.0.0.1:18080/session | head -1
  for i in $(seq 5); do curl -s -c /tmp/rauta-jar -b /tmp/rauta-jar http://127.0.0.1:18080/session | head -1; done

  # the policies' status, and the policy in effect for a request
  curl -s http://` + adminAddr + `/debug/status
  curl -s 'http://` + adminAddr + `/debug/route?path=/limited&listener=default/policies/http'

Edit the YAML files in examples/policies while it runs; Ctrl-C stops it.

`
}

// defaultConfigDir returns the directory of this example's YAML files:
// examples/policies under the working directory when it exists (go run
// from the repository root), else the directory of this source file.
func defaultConfigDir() string {
	const rel = "examples/policies"
	if st, err := os.Stat(filepath.Join(rel, "policies.yaml")); err == nil && st.Mode().IsRegular() {
		return rel
	}
	if _, err := os.Stat("policies.yaml"); err == nil {
		return "."
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		return filepath.Dir(file)
	}
	return rel
}
