// Command rauta runs a Kubernetes Gateway API gateway.
//
// Usage:
//
//	rauta serve --config PATH [flags]      run a gateway from YAML files
//	rauta validate --config PATH [flags]   check YAML files, print every object's status
//	rauta version                          print the version
//
// `rauta serve` reads the Gateway API objects, Services and EndpointSlices
// of a file or directory (see package filesource), serves them, and reloads
// them when they change; a file that fails to load is reported and the
// previous configuration keeps serving. An admin listener (default
// 127.0.0.1:9090) serves /metrics, /healthz, /readyz, /debug/config,
// /debug/status and /debug/route (see package admin). SIGINT or SIGTERM
// shut the gateway down gracefully.
//
// `rauta validate` exits with status 1 when a file fails to load or an
// object is not accepted, like `nginx -t`.
//
// Run `rauta serve -h` for the flags.
package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/filesource"
	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/kube"
	"github.com/rauta/rauta/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `usage:
  rauta serve --config PATH [flags]      run a gateway from YAML files
  rauta serve [--kubeconfig PATH]        run in a cluster: controller and gateway
  rauta validate --config PATH [flags]   check YAML files and print every object's status
  rauta version                          print the version

Run "rauta serve -h" or "rauta validate -h" for the flags.
`

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "rauta", version())
		return exitOK
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "rauta: unknown command %q\n%s", args[0], usage)
	return exitUsage
}

// translateFlags are the flags shared by serve and validate.
type translateFlags struct {
	config         string
	controllerName string
	address        string
	addressPool    string
}

func (f *translateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "configuration `path`: a YAML file or a directory of them")
	fs.StringVar(&f.controllerName, "controller-name", gatewayapi.DefaultControllerName, "GatewayClass controllerName handled")
	fs.StringVar(&f.address, "address", "", "`IP` the Gateways' listeners bind when spec.addresses gives none (default 0.0.0.0)")
	fs.StringVar(&f.addressPool, "address-pool", "", "`CIDR` giving each Gateway its own IP, e.g. 127.1.0.0/16")
}

func (f *translateFlags) options() (gatewayapi.Options, error) {
	opts := gatewayapi.Options{ControllerName: f.controllerName}
	if f.address != "" {
		a, err := netip.ParseAddr(f.address)
		if err != nil {
			return opts, fmt.Errorf("--address: %w", err)
		}
		opts.Address = a.String()
	}
	if f.addressPool != "" {
		p, err := netip.ParsePrefix(f.addressPool)
		if err != nil {
			return opts, fmt.Errorf("--address-pool: %w", err)
		}
		opts.AddressPool = p.Masked()
	}
	return opts, nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rauta serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf translateFlags
	tf.register(fs)
	adminAddr := fs.String("admin-address", "127.0.0.1:9090", "`address` of the admin listener (metrics, health, debug); empty disables it")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	interval := fs.Duration("poll-interval", filesource.DefaultInterval, "time between checks of the configuration files")
	shutdown := fs.Duration("shutdown-timeout", proxy.DefaultShutdownTimeout, "how long requests in flight may take to finish at shutdown")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig `path` for running in a cluster (without --config); empty means $KUBECONFIG, ~/.kube/config or in-cluster")
	leaseNS := fs.String("lease-namespace", "", "namespace of the leader-election Lease (default rauta-system)")
	identity := fs.String("identity", "", "this replica's identity in the Leases (leader election, replica count) and Events (default: hostname and a random suffix)")
	pprofOn := fs.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin listener")
	accessLog := fs.String("access-log", "stdout", "where access logs go: stdout, stderr or off")
	accessFormat := fs.String("access-log-format", "json", "access log format: json or text")
	accessSample := fs.Float64("access-log-sample", 1, "share of requests logged, in (0, 1]; gateway errors are always logged")
	accessErrors := fs.Bool("access-log-errors-only", false, "log only requests answered with 4xx or 5xx")
	leaseDuration := fs.Duration("lease-duration", kube.DefaultLeaseDuration, "leader election: how long the status writer's Lease holds without renewal")
	renewDeadline := fs.Duration("lease-renew-deadline", kube.DefaultRenewDeadline, "leader election: how long the leader tries to renew before it steps down")
	retryPeriod := fs.Duration("lease-retry-period", kube.DefaultRetryPeriod, "leader election: time between attempts to acquire or renew the Lease")
	maxConns := fs.Int("max-conns-per-listener", proxy.DefaultMaxConnsPerListener, "client connections open at once on each listening port; past it new ones are closed at accept; negative means no limit")
	maxConnsClient := fs.Int("max-conns-per-client", 0, "client connections open at once from one IP address on each listening port; 0 means no limit")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, gcFlagUsage)
	sessionKey := fs.String("session-key-file", "", "`path` of the key that seals session persistence tokens: 32 bytes, raw or base64; replicas must share it (default: a random key per process)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	topts, err := tf.options()
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var log *slog.Logger
	if err == nil {
		log, err = newLogger(stderr, *logFormat, *logLevel)
	}
	var popts proxy.Options
	popts.Limits.MaxConnsPerListener = *maxConns
	popts.Limits.MaxConnsPerClient = *maxConnsClient
	if err == nil {
		popts.AccessLog, err = accessLogOptions(*accessLog, *accessFormat, *accessSample, *accessErrors, stdout, stderr)
	}
	if err == nil && *sessionKey != "" {
		popts.SessionKey, err = readSessionKey(*sessionKey)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rauta serve: %v\n", err)
		fs.Usage()
		return exitUsage
	}
	if popts.Logger == nil {
		popts.Logger = log
	}
	if gcp, limit := tuneGC(*gcPercent); gcp >= 0 || limit >= 0 {
		log.Debug("garbage collector tuned", "gc_percent", gcp, "memory_limit_bytes", limit)
	}
	p := proxy.New(popts)
	run := admin.RunOptions{Proxy: p, Address: *adminAddr, Pprof: *pprofOn, Logger: log, ShutdownTimeout: *shutdown}
	var src admin.Source
	if tf.config == "" {
		log.Info("rauta starting in cluster mode", "version", version(), "kubeconfig", *kubeconfig, "controllerName", topts.ControllerName)
		klog.SetSlogLogger(log)
		var c *kube.Controller
		cfg, err := kube.RESTConfig(*kubeconfig)
		if err == nil {
			c, err = kube.New(cfg, kube.Options{
				Proxy:          p,
				Translate:      topts,
				LeaseNamespace: *leaseNS,
				Identity:       *identity,
				LeaseDuration:  *leaseDuration,
				RenewDeadline:  *renewDeadline,
				RetryPeriod:    *retryPeriod,
				Logger:         log,
			})
		}
		if err != nil {
			log.Error("rauta stopped", "error", err)
			return exitFailure
		}
		src, run.Status = c, func() any { return c.Status() }
	} else {
		log.Info("rauta starting", "version", version(), "config", tf.config, "controllerName", topts.ControllerName)
		fsrc, err := filesource.New(filesource.Options{
			Path:      tf.config,
			Proxy:     p,
			Translate: topts,
			Logger:    log,
			Interval:  *interval,
		})
		if err != nil {
			log.Error("rauta stopped", "error", err)
			return exitFailure
		}
		src, run.Status = fsrc, func() any { return fsrc.Report() }
	}
	err = admin.Run(ctx, run, src)
	if err != nil {
		log.Error("rauta stopped", "error", err)
		return exitFailure
	}
	log.Info("rauta stopped")
	return exitOK
}

// readSessionKey reads the session key file: proxy.SessionKeySize bytes,
// either raw or encoded in base64 (standard or URL alphabet, padded or
// not) with surrounding white space ignored.
func readSessionKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-session-key-file: %w", err)
	}
	if len(b) == proxy.SessionKeySize {
		return b, nil
	}
	text := strings.TrimRight(strings.TrimSpace(string(b)), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil && len(k) == proxy.SessionKeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("-session-key-file %s: want %d bytes, raw or in base64 (for example: head -c %d /dev/urandom | base64)", path, proxy.SessionKeySize, proxy.SessionKeySize)
}

// accessLogOptions turns the access log flags into proxy options.
func accessLogOptions(dest, format string, sample float64, errorsOnly bool, stdout, stderr io.Writer) (proxy.AccessLog, error) {
	var w io.Writer
	switch dest {
	case "off":
		return proxy.AccessLog{}, nil
	case "stdout":
		w = stdout
	case "stderr":
		w = stderr
	default:
		return proxy.AccessLog{}, fmt.Errorf("-access-log %q: want stdout, stderr or off", dest)
	}
	if sample <= 0 || sample > 1 {
		return proxy.AccessLog{}, fmt.Errorf("-access-log-sample %v: want a value in (0, 1]", sample)
	}
	var h slog.Handler
	switch format {
	case "json":
		h = slog.NewJSONHandler(w, nil)
	case "text":
		h = slog.NewTextHandler(w, nil)
	default:
		return proxy.AccessLog{}, fmt.Errorf("-access-log-format %q: want json or text", format)
	}
	return proxy.AccessLog{Logger: slog.New(h), SampleRatio: sample, OnlyErrors: errorsOnly}, nil
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rauta validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var tf translateFlags
	tf.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	topts, err := tf.options()
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err == nil && tf.config == "" {
		err = fmt.Errorf("--config is required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "rauta validate: %v\n", err)
		fs.Usage()
		return exitUsage
	}
	res, err := filesource.Load(tf.config)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n%s: configuration files rejected\n", err, tf.config)
		return exitFailure
	}
	result := gatewayapi.Translate(res, topts)
	bad := 0
	for _, o := range filesource.Summarize(res, result.Status) {
		mark := "ok  "
		switch {
		case o.Ignored != "":
			mark = "--  "
		case !o.OK():
			mark = "FAIL"
			bad++
		}
		fmt.Fprintf(stdout, "%s %s\n", mark, o.String())
	}
	fmt.Fprintf(stdout, "%d listeners, %d routes, %d stream routes, %d backends\n",
		len(result.Config.Listeners), len(result.Config.Routes), len(result.Config.StreamRoutes), len(result.Config.Backends))
	if bad > 0 {
		fmt.Fprintf(stdout, "%s: %d objects not accepted\n", tf.config, bad)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: configuration OK\n", tf.config)
	return exitOK
}

// newLogger returns the logger the flags ask for.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// version returns the module version and VCS revision the binary was built
// from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	var rev, modified string
	var when time.Time
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		case "vcs.time":
			when, _ = time.Parse(time.RFC3339, s.Value)
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + modified
		if !when.IsZero() {
			v += " " + when.UTC().Format("2006-01-02")
		}
	}
	return v + " " + bi.GoVersion
}
