//go:build reliability

package reliability

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rauta/rauta/filters"
	"github.com/rauta/rauta/proxy"
	"github.com/rauta/rauta/router"
	"github.com/rauta/rauta/upstream"
)

const listenerName = "faults/http"

// suite is the proxy under test and the endpoints its backends have when
// no fault is injected.
type suite struct {
	p       *proxy.Proxy
	addr    string // the listener's host:port
	base    string // http://addr
	mu      sync.Mutex
	healthy map[string][]string // backend name → healthy endpoints
	per     time.Duration       // how long the load runs against each fault
}

// config is the suite's Config at generation gen: a WebSocket rule, and
// rules for an HTTP/1.1 and an h2c backend with a backend timeout and one
// retry. Odd generations carry an extra route, and every generation sets
// a header of its own, so that each Apply changes routes and filters.
func (s *suite) config(gen int, eps map[string][]string) proxy.Config {
	retry := &proxy.RetryPolicy{Attempts: 1}
	timeouts := proxy.Timeouts{Request: 15 * time.Second, BackendRequest: 2 * time.Second}
	rule := func(prefix, backend string) proxy.Rule {
		return proxy.Rule{
			Matches:  []router.Match{{Path: router.PathMatch{Type: router.PathPrefix, Value: prefix}}},
			Backends: []proxy.BackendRef{{Backend: backend, Weight: 1}},
			Timeouts: timeouts,
			Retry:    retry,
		}
	}
	app := rule("/app/", "app")
	app.Filters = []filters.Spec{{
		Type:                  filters.TypeRequestHeaderModifier,
		RequestHeaderModifier: &filters.HeaderModifier{Set: []filters.Header{{Name: "X-Generation", Value: strconv.Itoa(gen)}}},
	}}
	ws := rule("/ws/", "ws")
	ws.Timeouts, ws.Retry = proxy.Timeouts{}, nil
	cfg := proxy.Config{
		Listeners: []proxy.Listener{{Name: listenerName, Address: "127.0.0.1", Port: 0, Protocol: proxy.HTTP}},
		Routes: []proxy.Route{{
			Namespace: "faults", Name: "app", Listeners: []string{listenerName},
			Rules: []proxy.Rule{ws, app, rule("/h2/", "app-h2")},
		}},
	}
	if gen%2 == 1 {
		cfg.Routes = append(cfg.Routes, proxy.Route{
			Namespace: "faults", Name: "churn-" + strconv.Itoa(gen), Listeners: []string{listenerName},
			Hostnames: []string{"churn-" + strconv.Itoa(gen) + ".example"},
			Rules:     []proxy.Rule{rule("/", "app")},
		})
	}
	for _, b := range []struct {
		name  string
		proto proxy.BackendProtocol
	}{{"app", proxy.BackendHTTP1}, {"app-h2", proxy.BackendH2C}, {"ws", proxy.BackendHTTP1}} {
		cfg.Backends = append(cfg.Backends, proxy.Backend{
			Spec:     upstream.Spec{Name: b.name, Endpoints: endpoints(eps[b.name])},
			Protocol: b.proto,
			// The Gateway API's default retryConstraint: retries up to
			// 20% of the requests of the last 10s, and 10 per second
			// whatever the share. (The proxy's own default bounds the
			// retries in flight to 20% of the requests in flight, at
			// least 3: a burst of failures as a fault begins exceeds
			// it; docs/reliability.md says how often.)
			Retry: proxy.BackendRetry{Budget: &proxy.RetryBudget{Percent: 20, Interval: 10 * time.Second, MinRetries: 10, MinRetriesInterval: time.Second}},
		})
	}
	return cfg
}

func endpoints(addrs []string) []upstream.Endpoint {
	var eps []upstream.Endpoint
	for _, a := range addrs {
		eps = append(eps, upstream.Endpoint{Address: a})
	}
	return eps
}

// fault is one fault the suite injects into one backend while the load
// runs.
type fault struct {
	name    string
	backend string // "app" (HTTP/1.1) or "app-h2" (h2c)
	// expect is what the fault may cost: allowAll (failures are the
	// fault's, only wrong answers count), noIdempotent (a healthy endpoint
	// remains, so no GET may fail) or none (no request may fail).
	expect  expectation
	maxBody int // the largest POST body; zero keeps the load's default
	// inject starts the fault. It returns the backend's endpoints while
	// the fault lasts (nil keeps the healthy ones) and, optionally, what
	// to run alongside the load: it gets a context that ends when the
	// fault's time is up, and returns what it injected; the load runs
	// until it returns.
	inject func(t *testing.T, s *suite) (eps []string, during func(ctx context.Context) string)
}

type expectation int

const (
	allowAll expectation = iota
	noIdempotent
	none
)

func (e expectation) String() string {
	return [...]string{"failures surface as errors", "0 failed GET", "0 failed requests"}[e]
}

// row is the result of one fault.
type row struct {
	f        fault
	t        *tally
	injected string
	problems []string
}

// TestFaults injects the faults one at a time while HTTP/1.1 and HTTP/2
// clients send GET and POST requests through a proxy.Proxy, with a
// WebSocket held open across all of them, and fails on any mismatched
// answer or false success, on any failed GET while a healthy endpoint
// remains, on any failed request during the rollout, the configuration
// changes and the client aborts, and if the WebSocket is not alive at the
// end. $FAULTS_RUN, a regular expression, selects faults by name;
// $FAULTS_LOG names a file for the proxy's debug and access logs.
// $FAULT_DURATION sets the load's time per fault (default 10s, 4s
// with -short); with $FAULTS_REPORT naming a Markdown file (relative
// paths are taken from the repository root), the table is written into it
// between the markers <!-- faults:begin --> and <!-- faults:end -->.
func TestFaults(t *testing.T) {
	per := 10 * time.Second
	if testing.Short() {
		per = 4 * time.Second
	}
	if v := os.Getenv("FAULT_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("FAULT_DURATION=%q: want a positive duration", v)
		}
		per = d
	}
	s := &suite{per: per, healthy: map[string][]string{
		"app":    {startServer(t, stampHandler("healthy-1"), false).addr, startServer(t, stampHandler("healthy-2"), false).addr},
		"app-h2": {startServer(t, stampHandler("healthy-h2-1"), true).addr, startServer(t, stampHandler("healthy-h2-2"), true).addr},
		"ws":     {startServer(t, stampHandler("ws"), false).addr},
	}}
	opts := proxy.Options{Logger: slog.New(slog.DiscardHandler)}
	if path := os.Getenv("FAULTS_LOG"); path != "" {
		// The proxy's debug log and the access log of its failed
		// requests, for looking into a failing row.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})
		opts.Logger = slog.New(h)
		opts.AccessLog = proxy.AccessLog{Logger: slog.New(h), OnlyErrors: true}
	}
	only := regexp.MustCompile(os.Getenv("FAULTS_RUN"))
	s.p = proxy.New(opts)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.p.Shutdown(ctx)
	}()
	if err := s.p.Apply(s.config(0, s.healthy)); err != nil {
		t.Fatal(err)
	}
	a, ok := s.p.Addr(listenerName)
	if !ok {
		t.Fatal("listener not bound")
	}
	s.addr, s.base = a.String(), "http://"+a.String()

	// The WebSocket goes to a backend that is never faulted, and must
	// carry a message every 250ms through every fault.
	ws, err := dialWebSocket(s.addr, "/ws/held")
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	wsCtx, wsStop := context.WithCancel(context.Background())
	var wsOK, wsFailed atomic.Int64
	var wsErr atomic.Value
	wsDone := make(chan struct{})
	go func() {
		defer close(wsDone)
		for sleepCtx(wsCtx, 250*time.Millisecond) {
			if err := ws.echo(10 * time.Second); err != nil {
				wsFailed.Add(1)
				wsErr.Store(err.Error())
				return
			}
			wsOK.Add(1)
		}
	}()

	var rows []*row
	for _, f := range faults() {
		if !only.MatchString(f.name) {
			continue
		}
		r := s.run(t, f)
		rows = append(rows, r)
		t.Logf("%-48s %s", f.name, r.summary())
		if len(r.t.errors) > 0 {
			t.Logf("%-48s first transport errors: %q", "", r.t.errors)
		}
	}
	wsStop()
	<-wsDone
	alive := ws.echo(10*time.Second) == nil
	ws.close()

	wsLine := fmt.Sprintf("The WebSocket held across all faults carried %d messages; %d failed; alive at the end: %t.", wsOK.Load(), wsFailed.Load(), alive)
	if !alive || wsFailed.Load() > 0 {
		t.Errorf("WebSocket: %d messages, %d failed (%v), alive at the end: %t", wsOK.Load(), wsFailed.Load(), wsErr.Load(), alive)
	}
	for _, r := range rows {
		for _, p := range r.problems {
			t.Errorf("%s: %s", r.f.name, p)
		}
	}
	if path := os.Getenv("FAULTS_REPORT"); path != "" {
		writeReport(t, path, per, rows, wsLine)
	}
}

// run injects f, runs the load for s.per (and as long as the fault's own
// action lasts), restores the healthy endpoints and checks the results.
func (s *suite) run(t *testing.T, f fault) *row {
	eps, during := f.inject(t, s)
	if eps != nil {
		if err := s.p.UpdateEndpoints(f.backend, endpoints(eps)); err != nil {
			t.Fatalf("%s: UpdateEndpoints: %v", f.name, err)
		}
	}
	prefix := "/app/"
	if f.backend == "app-h2" {
		prefix = "/h2/"
	}
	l := newLoad(s.base, prefix)
	if f.maxBody > 0 {
		l.maxBody = f.maxBody
	}
	r := &row{f: f, t: newTally(), injected: "-"}
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loadDone := make(chan struct{})
	go func() { l.run(loadCtx, r.t); close(loadDone) }()
	faultCtx, faultEnd := context.WithTimeout(context.Background(), s.per)
	if during != nil {
		r.injected = during(faultCtx)
	}
	<-faultCtx.Done()
	faultEnd()
	stopLoad()
	<-loadDone
	l.h1.CloseIdleConnections()
	l.h2.CloseIdleConnections()
	s.mu.Lock()
	healthy := s.healthy[f.backend]
	s.mu.Unlock()
	if err := s.p.UpdateEndpoints(f.backend, endpoints(healthy)); err != nil {
		t.Fatalf("%s: restoring endpoints: %v", f.name, err)
	}

	tl := r.t
	if tl.total() == 0 {
		r.problems = append(r.problems, "no request was sent")
	}
	if tl.mismatch > 0 || tl.falseSuccess > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d mismatched answers, %d false successes, e.g. %q", tl.mismatch, tl.falseSuccess, tl.examples))
	}
	switch f.expect {
	case noIdempotent:
		if n := tl.idempotentFailed(); n > 0 {
			r.problems = append(r.problems, fmt.Sprintf("%d GET requests failed with a healthy endpoint left (%s)", n, tl.failures()))
		}
	case none:
		if n := tl.allFailed(); n > 0 {
			r.problems = append(r.problems, fmt.Sprintf("%d requests failed (%s)", n, tl.failures()))
		}
	}
	if strings.HasPrefix(r.injected, "error: ") {
		r.problems = append(r.problems, r.injected)
	}
	return r
}

func (r *row) summary() string {
	t := r.t
	return fmt.Sprintf("sent %d (%d GET, %d POST), ok %d, failed: %s, mismatched %d, false successes %d; injected: %s",
		t.total(), t.sent[kindGET], t.sent[kindPOST], t.ok[kindGET]+t.ok[kindPOST], t.failures(), t.mismatch, t.falseSuccess, r.injected)
}

// faults are the faults of the suite, in the order they run.
func faults() []fault {
	with := func(s *suite, backend string, extra ...string) []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return append(append([]string(nil), s.healthy[backend]...), extra...)
	}
	cut := func(chunked, h2 bool) func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
		return func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			b := "app"
			if h2 {
				b = "app-h2"
			}
			return with(s, b, startServer(t, cutHandler(chunked), h2).addr), nil
		}
	}
	return []fault{{
		name: "backend process killed (SIGKILL)", backend: "app", expect: noIdempotent,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			cmd, addr := childBackend(t)
			return with(s, "app", addr), func(ctx context.Context) string {
				sleepCtx(ctx, s.per/3)
				if err := cmd.Process.Kill(); err != nil {
					return "error: " + err.Error()
				}
				cmd.Wait()
				return "1 process killed after " + (s.per / 3).Round(100*time.Millisecond).String() + "; its endpoint stays listed"
			}
		},
	}, {
		name: "backend resets connections", backend: "app", expect: noIdempotent,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			var n atomic.Int64
			b := startRaw(t, func(c net.Conn) {
				if n.Add(1)%2 == 0 {
					http.ReadRequest(bufio.NewReader(c))
				}
				c.(*net.TCPConn).SetLinger(0)
			})
			return with(s, "app", b.addr()), func(ctx context.Context) string {
				<-ctx.Done()
				return fmt.Sprintf("%d connections reset (half on accept, half after the request head)", n.Load())
			}
		},
	}, {
		name: "backend accepts and never answers", backend: "app", expect: noIdempotent,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			var n atomic.Int64
			b := startRaw(t, func(c net.Conn) {
				n.Add(1)
				io.Copy(io.Discard, c)
			})
			return with(s, "app", b.addr()), func(ctx context.Context) string {
				<-ctx.Done()
				return fmt.Sprintf("%d connections held unanswered (backend timeout 2s)", n.Load())
			}
		},
	}, {
		name: "backend closes mid-body: HTTP/1.1, Content-Length", backend: "app", expect: allowAll,
		inject: cut(false, false),
	}, {
		name: "backend closes mid-body: HTTP/1.1, chunked", backend: "app", expect: allowAll,
		inject: cut(true, false),
	}, {
		name: "backend resets mid-body: HTTP/2, Content-Length", backend: "app-h2", expect: allowAll,
		inject: cut(false, true),
	}, {
		name: "backend resets mid-body: HTTP/2, no Content-Length", backend: "app-h2", expect: allowAll,
		inject: cut(true, true),
	}, {
		name: "backend answers before reading the body", backend: "app", expect: noIdempotent, maxBody: 1 << 20,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			return with(s, "app", startServer(t, earlyHandler(), false).addr), nil
		},
	}, {
		name: "backend sends oversized heads (1 MiB field)", backend: "app", expect: noIdempotent,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			var n atomic.Int64
			b := startRaw(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					req, reqSum, err := readRequest(br)
					if err != nil {
						return
					}
					n.Add(1)
					body := answerBody(req, "oversized", reqSum)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%s: %s\r\n%s: %s\r\nX-Big: %s\r\nContent-Length: %d\r\n\r\n%s",
						hdrStamp, sum(body), hdrSID, req.Header.Get(hdrID), strings.Repeat("a", 1<<20), len(body), body)
				}
			})
			return with(s, "app", b.addr()), func(ctx context.Context) string {
				<-ctx.Done()
				return fmt.Sprintf("%d oversized heads sent", n.Load())
			}
		},
	}, {
		name: "backend sends malformed heads", backend: "app", expect: noIdempotent,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			// Heads RFC 9112 makes invalid, so a proxy must not pass
			// them on; none carries a stamp, so a 2xx from one is a false
			// success.
			bad := []string{
				"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok",
				"HTTP/1.1 99 OK\r\nContent-Length: 2\r\n\r\nok",
				"HELLO WORLD\r\n\r\n",
				"HTTP/1.1 200 OK\r\nNo-Colon-Here\r\nContent-Length: 2\r\n\r\nok",
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!",
				"HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok",
				"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
			}
			var n atomic.Int64
			b := startRaw(t, func(c net.Conn) {
				if _, _, err := readRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, bad[int(n.Add(1))%len(bad)])
			})
			return with(s, "app", b.addr()), func(ctx context.Context) string {
				<-ctx.Done()
				return fmt.Sprintf("%d malformed heads sent (%d kinds)", n.Load(), len(bad))
			}
		},
	}, {
		name: "slow backend (1 byte per 100 ms)", backend: "app", expect: noIdempotent,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			var n atomic.Int64
			b := startRaw(t, func(c net.Conn) {
				req, reqSum, err := readRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				n.Add(1)
				body := answerBody(req, "slow", reqSum)
				msg := fmt.Sprintf("HTTP/1.1 200 OK\r\n%s: %s\r\n%s: %s\r\nContent-Length: %d\r\n\r\n%s",
					hdrStamp, sum(body), hdrSID, req.Header.Get(hdrID), len(body), body)
				for i := range len(msg) {
					if _, err := io.WriteString(c, msg[i:i+1]); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			})
			return with(s, "app", b.addr()), func(ctx context.Context) string {
				<-ctx.Done()
				return fmt.Sprintf("%d slow responses begun (backend timeout 2s)", n.Load())
			}
		},
	}, {
		name: "rollout: new endpoints up, old not ready, then shut down", backend: "app", expect: none,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			return nil, func(ctx context.Context) string { return s.rollouts(t, ctx) }
		},
	}, {
		name: "1,000 configuration changes", backend: "app", expect: none,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			return nil, func(ctx context.Context) string {
				pause := s.per / 1000
				start := time.Now()
				for gen := 1; gen <= 1000; gen++ {
					s.mu.Lock()
					cfg := s.config(gen, s.healthy)
					s.mu.Unlock()
					if err := s.p.Apply(cfg); err != nil {
						return fmt.Sprintf("error: Apply %d: %v", gen, err)
					}
					time.Sleep(pause)
				}
				return fmt.Sprintf("1000 Applies in %s (routes and filters change each time)", time.Since(start).Round(time.Millisecond))
			}
		},
	}, {
		name: "clients abort mid-request", backend: "app", expect: none,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			return nil, func(ctx context.Context) string { return s.aborts(ctx, true) }
		},
	}, {
		name: "clients abort mid-response", backend: "app", expect: none,
		inject: func(t *testing.T, s *suite) ([]string, func(context.Context) string) {
			return nil, func(ctx context.Context) string { return s.aborts(ctx, false) }
		},
	}}
}

// rollouts replaces the app backend's endpoints the way Kubernetes rolls
// out a Deployment, until ctx ends: two new endpoints come up and are
// added, the old ones go not ready (removed from the endpoints, as an
// EndpointSlice change reaches Proxy.UpdateEndpoints), and a second later
// their servers shut down gracefully. The last generation becomes the
// backend's healthy endpoints.
func (s *suite) rollouts(t *testing.T, ctx context.Context) string {
	s.mu.Lock()
	old := s.healthy["app"]
	s.mu.Unlock()
	var oldServers []*server
	n := 0
	for ctx.Err() == nil {
		fresh := []*server{startServer(t, stampHandler("rollout"), false), startServer(t, stampHandler("rollout"), false)}
		addrs := []string{fresh[0].addr, fresh[1].addr}
		if err := s.p.UpdateEndpoints("app", endpoints(append(slicesClone(old), addrs...))); err != nil {
			return "error: " + err.Error()
		}
		time.Sleep(500 * time.Millisecond)
		if err := s.p.UpdateEndpoints("app", endpoints(addrs)); err != nil {
			return "error: " + err.Error()
		}
		time.Sleep(time.Second)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, o := range oldServers {
			o.srv.Shutdown(sctx)
		}
		cancel()
		s.mu.Lock()
		s.healthy["app"] = addrs
		s.mu.Unlock()
		old, oldServers = addrs, fresh
		n++
	}
	return fmt.Sprintf("%d rollouts of 2 endpoints (the first generation, shared with the other faults, is removed but kept running)", n)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// aborts runs clients that give up halfway, over HTTP/1.1 and HTTP/2,
// until ctx ends: with upload, they send half of a declared 256 KiB body
// and cancel; otherwise they read 16 KiB of a 1 MiB response and cancel.
// An abandoned upload that reaches a backend whole is an error.
func (s *suite) aborts(ctx context.Context, upload bool) string {
	before := abortedUploadsCompleted.Load()
	h1, h2 := clients(2)
	var n, seq atomic.Int64
	var wg sync.WaitGroup
	for _, c := range []*http.Client{h1, h2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				id := abortPrefix + strconv.FormatInt(seq.Add(1), 10)
				rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				var req *http.Request
				if upload {
					pr, pw := io.Pipe()
					go func() {
						pw.Write(make([]byte, 128<<10))
						time.Sleep(50 * time.Millisecond)
						cancel()
						pw.CloseWithError(context.Canceled)
					}()
					req, _ = http.NewRequestWithContext(rctx, http.MethodPost, s.base+"/app/"+id+"?size=100", pr)
					req.ContentLength = 256 << 10
				} else {
					req, _ = http.NewRequestWithContext(rctx, http.MethodGet, s.base+"/app/"+id+"?size=1048576&chunked=1", nil)
				}
				req.Header.Set(hdrID, id)
				resp, err := c.Do(req)
				if err == nil {
					io.CopyN(io.Discard, resp.Body, 16<<10)
					cancel()
					resp.Body.Close()
				}
				cancel()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	h1.CloseIdleConnections()
	h2.CloseIdleConnections()
	what := "mid-response (16 KiB of 1 MiB read)"
	if upload {
		what = "mid-request (128 KiB of 256 KiB sent)"
		time.Sleep(500 * time.Millisecond)
		if whole := abortedUploadsCompleted.Load() - before; whole > 0 {
			return fmt.Sprintf("error: %d abandoned uploads reached a backend whole", whole)
		}
	}
	return fmt.Sprintf("%d requests abandoned %s", n.Load(), what)
}

// writeReport writes the table into the Markdown file at path, between
// the markers <!-- faults:begin --> and <!-- faults:end -->.
func writeReport(t *testing.T, path string, per time.Duration, rows []*row, wsLine string) {
	file := path
	if !filepath.IsAbs(file) {
		// Relative to the repository root, not to this package.
		file = filepath.Join("..", file)
	}
	old, err := os.ReadFile(file)
	if err != nil {
		t.Errorf("FAULTS_REPORT: %v", err)
		return
	}
	const begin, end = "<!-- faults:begin -->\n", "<!-- faults:end -->"
	i, j := strings.Index(string(old), begin), strings.Index(string(old), end)
	if i < 0 || j < i {
		t.Errorf("FAULTS_REPORT %s: no %q ... %q markers", path, strings.TrimSpace(begin), end)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Produced by `FAULT_DURATION=%s FAULTS_REPORT=%s go test -tags reliability -run TestFaults -count=1 ./reliability` (%s, %d CPUs, %s; the machine was shared with other builds and tests while it ran).\n\n",
		per, path, time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version())
	b.WriteString("| fault | injected | sent (GET / POST) | succeeded | failed, by method and status | mismatched | false successes | the suite requires | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		tl := r.t
		result := "pass"
		if len(r.problems) > 0 {
			result = "**FAIL**: " + strings.Join(r.problems, "; ")
		}
		fmt.Fprintf(&b, "| %s | %s | %d (%d / %d) | %d | %s | %d | %d | %s | %s |\n",
			r.f.name, r.injected, tl.total(), tl.sent[kindGET], tl.sent[kindPOST], tl.ok[kindGET]+tl.ok[kindPOST],
			tl.failures(), tl.mismatch, tl.falseSuccess, r.f.expect, result)
	}
	b.WriteString("\n" + wsLine + "\n")
	out := string(old[:i]) + begin + b.String() + string(old[j:])
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Error(err)
	}
}
