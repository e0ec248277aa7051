package filesource

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
)

// ServeOptions configure [Serve].
type ServeOptions struct {
	// Path is the configuration file or directory; required.
	Path string
	// Translate are the translator's options (controller name, addresses).
	Translate gatewayapi.Options
	// Proxy are the options of the proxy Serve creates. A nil
	// Proxy.Logger means Logger.
	Proxy proxy.Options
	// AdminAddress is the address of the admin listener (see package
	// admin), e.g. "127.0.0.1:9090"; empty means no admin listener.
	AdminAddress string
	// Pprof serves net/http/pprof on the admin listener.
	Pprof bool
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger
	// Interval is the time between polls of Path; zero means
	// DefaultInterval.
	Interval time.Duration
	// ShutdownTimeout bounds the wait for requests in flight once ctx is
	// done; zero means proxy.DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// OnReport, if set, is called after every load with the new report.
	OnReport func(Report)
	// OnStart, if set, is called once the admin listener is bound (addr
	// is nil without one) and before the files are first loaded.
	OnStart func(adminAddr net.Addr)
}

// Serve runs a standalone gateway until ctx is done: a proxy.Proxy serving
// the files at opts.Path through a [Source], and an admin listener on
// opts.AdminAddress serving metrics, health, readiness and the debug
// endpoints (admin.Handler, with /debug/status showing the Source's
// [Report]). This is what `rauta serve --config PATH` runs.
//
// When ctx is done, /readyz turns to 503 and the proxy shuts down
// gracefully: listeners close, requests in flight get up to
// ShutdownTimeout to finish. Serve returns nil after such a shutdown; it
// returns an error if the admin address cannot be bound, if the files fail
// to load the first time, or if the shutdown deadline passes.
func Serve(ctx context.Context, opts ServeOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	popts := opts.Proxy
	if popts.Logger == nil {
		popts.Logger = log
	}
	timeout := orDefault(opts.ShutdownTimeout, proxy.DefaultShutdownTimeout)
	p := proxy.New(popts)
	src, err := New(Options{
		Path:      opts.Path,
		Proxy:     p,
		Translate: opts.Translate,
		Logger:    log,
		Interval:  opts.Interval,
		OnReport:  opts.OnReport,
	})
	if err != nil {
		return err
	}

	err = admin.Run(ctx, admin.RunOptions{
		Proxy:           p,
		Address:         opts.AdminAddress,
		Ready:           func() bool { return p.Generation() > 0 },
		Status:          func() any { return src.Report() },
		Pprof:           opts.Pprof,
		Logger:          log,
		ShutdownTimeout: timeout,
		OnStart:         opts.OnStart,
	}, src.Run)
	if err != nil {
		return fmt.Errorf("filesource: %w", err)
	}
	return nil
}
