package filesource

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
)

// Options configure a [Source].
type Options struct {
	// Path is the file or directory of configuration files. Empty means
	// none: a Go program feeds the Source its own Resources with
	// [Source.Apply].
	Path string
	// Proxy serves the translated configuration; required.
	Proxy *proxy.Proxy
	// Translate are the translator's options (controller name, addresses).
	Translate gatewayapi.Options
	// Logger receives the source's logs; nil means slog.Default().
	Logger *slog.Logger
	// Interval, HoldOff and MaxDelay configure the polling of Path; see
	// [Watcher]. Zero values mean the defaults.
	Interval time.Duration
	// HoldOff is how long the files must stay unchanged before a change
	// is loaded.
	HoldOff time.Duration
	// MaxDelay bounds the wait for the files to settle.
	MaxDelay time.Duration
	// OnReport, if set, is called after every load with the new report.
	OnReport func(Report)
}

// Report is what a [Source] did with the files last read.
type Report struct {
	// Path is the file or directory read.
	Path string `json:"path"`
	// Time is when the files were last read.
	Time time.Time `json:"time"`
	// Error is why the files last read were rejected; the configuration
	// from the files read before keeps serving. Nil when they were
	// applied.
	Error error `json:"-"`
	// AppliedAt is when the configuration in effect was applied; zero
	// before the first one.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// Generation is the proxy's configuration generation after the last
	// apply.
	Generation uint64 `json:"generation"`
	// ApplyError lists the parts of the configuration in effect the proxy
	// could not serve (a port that cannot be bound, say), or nil.
	ApplyError error `json:"-"`
	// Objects is the status of every object of the configuration in
	// effect, as [Summarize] gives it.
	Objects []ObjectStatus `json:"objects"`
}

// MarshalJSON renders the report with its errors as strings.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	v := struct {
		plain
		Error      string `json:"error,omitempty"`
		ApplyError string `json:"applyError,omitempty"`
	}{plain: plain(r)}
	if r.Error != nil {
		v.Error = r.Error.Error()
	}
	if r.ApplyError != nil {
		v.ApplyError = r.ApplyError.Error()
	}
	return json.Marshal(v)
}

// Source runs a gateway from configuration files: it loads them with
// [Load], translates them with gatewayapi.Translate, applies the result to
// a proxy.Proxy and does it again whenever the files change (see
// [Watcher]). Files that fail to load are reported and change nothing: the
// previous configuration keeps serving. A Go program hands a Source its
// own Resources with [Source.Apply] instead, or as well. A Source is an
// admin.Source: `rauta serve --config` and the quickstart example are a
// proxy and a Source run by admin.Run.
type Source struct {
	opts Options
	log  *slog.Logger

	// applyMu serialises applies (from Run and from Apply) and guards
	// appliedClean and conditions.
	applyMu sync.Mutex
	// appliedClean is set when the last Apply succeeded whole.
	appliedClean bool
	// conditions are the conditions of the last translation, to keep
	// their LastTransitionTime.
	conditions map[conditionKey]stampedCondition

	mu     sync.Mutex
	report Report
}

// New returns a Source; call Run to start it.
func New(opts Options) (*Source, error) {
	if opts.Proxy == nil {
		return nil, errors.New("filesource: Options.Proxy is nil")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Source{opts: opts, log: log, report: Report{Path: opts.Path}}, nil
}

// Run loads, translates and applies the files, then watches them until
// ctx is done. It returns the load error at once if the files fail to load
// the first time (nothing would be served), and ctx.Err() at the end.
// Without a Path it only waits for ctx: the configuration comes from
// [Source.Apply].
func (s *Source) Run(ctx context.Context) error {
	if s.opts.Path == "" {
		<-ctx.Done()
		return ctx.Err()
	}
	w := &Watcher{
		Path:     s.opts.Path,
		Interval: s.opts.Interval,
		HoldOff:  s.opts.HoldOff,
		MaxDelay: s.opts.MaxDelay,
		Logger:   s.log,
		OnChange: s.apply,
		OnError:  s.reject,
	}
	snap := w.read()
	err := snap.err
	var res *gatewayapi.Resources
	if err == nil {
		res, err = parse(snap.files)
	}
	if err != nil {
		s.reject(err)
		return err
	}
	s.apply(res)
	w.seeded = &snap.sum
	return w.Run(ctx)
}

// Ready reports whether the proxy serves a configuration: the first one
// the Source applied, or any applied since.
func (s *Source) Ready() bool { return s.opts.Proxy.Generation() > 0 }

// Apply translates res and applies the result to the proxy, as a change of
// the files does, and records the outcome in the [Report]. A Go program
// feeds its own Resources this way: every kind gatewayapi.Resources holds
// is served, translated by the same rules as files and clusters. res is
// the whole configuration, not a change to the previous one; Apply does not
// modify it, and it may be reused once Apply returns. Apply may be called
// at any time, from any goroutine, before Run, during it or without it.
func (s *Source) Apply(res *gatewayapi.Resources) { s.apply(res) }

// Report returns the report of the last load.
func (s *Source) Report() Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.report
}

// reject records files that failed to load.
func (s *Source) reject(err error) {
	s.mu.Lock()
	s.report.Time = time.Now()
	s.report.Error = err
	r := s.report
	s.mu.Unlock()
	if s.opts.OnReport != nil {
		s.opts.OnReport(r)
	}
}

// apply translates res and applies the result.
func (s *Source) apply(res *gatewayapi.Resources) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	result := gatewayapi.Translate(res, s.opts.Translate)
	s.conditions = stampConditions(&result.Status, s.conditions, metav1.NewTime(time.Now().Truncate(time.Second)))
	objects := Summarize(res, result.Status)
	// Files changed in ways that do not change the configuration (comments,
	// order, unused objects) are not applied again, unless the last apply
	// failed in part and may now succeed (a port freed, say).
	var applyErr error
	unchanged := s.appliedClean && reflect.DeepEqual(result.Config, s.opts.Proxy.Config())
	if !unchanged {
		applyErr = s.opts.Proxy.Apply(result.Config)
		s.appliedClean = applyErr == nil
	}
	now := time.Now()

	for i := range objects {
		o := &objects[i]
		switch {
		case o.Ignored != "":
			s.log.Info("object ignored", "object", o.Kind+" "+qualified(o.Namespace, o.Name), "reason", o.Ignored)
		case o.OK():
			s.log.Info("object accepted", "object", o.Kind+" "+qualified(o.Namespace, o.Name), "status", o.Summary)
		default:
			s.log.Warn("object not accepted", "object", o.Kind+" "+qualified(o.Namespace, o.Name), "problems", o.Problems)
		}
	}
	gen := s.opts.Proxy.Generation()
	var aerr *proxy.ApplyError
	switch {
	case applyErr != nil && !errors.As(applyErr, &aerr):
		// A structurally invalid Config: the proxy kept the previous one.
		s.log.Error("configuration rejected by the proxy; the previous configuration keeps serving", "error", applyErr)
	default:
		if aerr != nil {
			s.log.Warn("configuration partly applied", "error", applyErr)
		}
		msg := "configuration applied"
		if unchanged {
			msg = "configuration unchanged"
		}
		s.log.Info(msg, "path", s.opts.Path, "generation", gen,
			"listeners", len(result.Config.Listeners), "routes", len(result.Config.Routes), "backends", len(result.Config.Backends))
	}

	s.mu.Lock()
	s.report.Time = now
	if aerr != nil || applyErr == nil {
		s.report.Error = nil
		if !unchanged {
			s.report.AppliedAt = now
			s.report.ApplyError = applyErr
		}
		s.report.Objects = objects
	} else {
		s.report.Error = applyErr
	}
	s.report.Generation = gen
	r := s.report
	s.mu.Unlock()
	if s.opts.OnReport != nil {
		s.opts.OnReport(r)
	}
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}
