package pool

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// connLog is a test server's record of which connection served each
// request, by the client side's address.
type connLog struct {
	mu    sync.Mutex
	order []string       // remote address of each request, in order
	count map[string]int // requests per connection
}

func (l *connLog) handler(slow <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		if l.count == nil {
			l.count = map[string]int{}
		}
		l.order = append(l.order, r.RemoteAddr)
		l.count[r.RemoteAddr]++
		l.mu.Unlock()
		if r.URL.Path == "/slow" && slow != nil {
			w.(http.Flusher).Flush()
			<-slow
		}
		io.WriteString(w, "ok")
	})
}

// perConn returns the number of requests each connection served, in the
// order the connections were first used.
func (l *connLog) perConn() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int
	seen := map[string]bool{}
	for _, a := range l.order {
		if !seen[a] {
			seen[a] = true
			out = append(out, l.count[a])
		}
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLimitsMaxRequests closes a connection after the endpoint's
// MaxRequests, whatever the pool's Options says, and a negative override
// lifts the Options's limit.
func TestLimitsMaxRequests(t *testing.T) {
	var log connLog
	s, cc := newServer(t, log.handler(nil))
	p := newTestPool(t, Options{MaxRequestsPerConn: 2})
	e := endpoint(t, p, s.URL, HTTP1)
	e.SetLimits(Limits{MaxRequests: 3})
	if got := e.Limits(); got != (Limits{MaxRequests: 3}) {
		t.Errorf("Limits() = %+v", got)
	}
	for range 7 {
		roundTrip(t, e, newRequest(t, "GET", "/", nil))
	}
	if got := log.perConn(); !equalInts(got, []int{3, 3, 1}) {
		t.Errorf("requests per backend connection = %v, want [3 3 1]", got)
	}
	if cc.count() != 3 || e.Stats().Open != 1 {
		t.Errorf("backend saw %d connections, %d open; want 3 and 1", cc.count(), e.Stats().Open)
	}

	// Another endpoint of the pool follows its Options: two requests per
	// connection, until its own limit lifts that.
	var log2 connLog
	s2, _ := newServer(t, log2.handler(nil))
	e2 := endpoint(t, p, s2.URL, HTTP1)
	for range 4 {
		roundTrip(t, e2, newRequest(t, "GET", "/", nil))
	}
	if got := log2.perConn(); !equalInts(got, []int{2, 2}) {
		t.Errorf("Options.MaxRequestsPerConn 2: requests per connection = %v, want [2 2]", got)
	}
	e2.SetLimits(Limits{MaxRequests: -1})
	for range 4 {
		roundTrip(t, e2, newRequest(t, "GET", "/", nil))
	}
	if got := log2.perConn(); !equalInts(got, []int{2, 2, 4}) {
		t.Errorf("MaxRequests -1: requests per connection = %v, want [2 2 4]", got)
	}
}

// TestLimitsMaxLifetime retires a connection once it is older than its
// lifetime: not while it serves a request, but when the request ends, and
// an idle one in the background.
func TestLimitsMaxLifetime(t *testing.T) {
	const life = 150 * time.Millisecond
	gate := make(chan struct{})
	var log connLog
	s, cc := newServer(t, log.handler(gate))
	p := newTestPool(t, Options{IdleTimeout: -1})
	e := endpoint(t, p, s.URL, HTTP1)
	e.SetLimits(Limits{MaxLifetime: life})

	start := time.Now()
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if time.Since(start) < life && cc.count() != 1 {
		t.Fatalf("two quick requests used %d connections, want 1", cc.count())
	}
	// Idle past its lifetime: the sweep closes it.
	eventually(t, "the idle connection to be closed at the end of its lifetime", func() bool { return e.Stats().Open == 0 })
	if d := time.Since(start); d < life {
		t.Errorf("connection closed after %v, before its lifetime of %v", d, life)
	}

	// A request longer than the lifetime finishes on its connection,
	// which is closed afterwards rather than reused.
	resp, err := e.RoundTrip(newRequest(t, "GET", "/slow", nil))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(life + 20*time.Millisecond)
	close(gate)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "ok" {
		t.Fatalf("request outliving the connection's lifetime: %q, %v", b, err)
	}
	if st := e.Stats(); st.Open != 0 || st.Idle != 0 {
		t.Errorf("after its lifetime the connection was kept: %+v", st)
	}
	roundTrip(t, e, newRequest(t, "GET", "/", nil))
	if cc.count() != 3 {
		t.Errorf("backend saw %d connections, want 3", cc.count())
	}
}

// TestLimitsIdleTimeout expires one endpoint's idle connections sooner
// than the pool's Options, leaving another endpoint's alone.
func TestLimitsIdleTimeout(t *testing.T) {
	s1, _ := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s2, _ := newServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	p := newTestPool(t, Options{IdleTimeout: time.Hour})
	short := endpoint(t, p, s1.URL, HTTP1)
	long := endpoint(t, p, s2.URL, HTTP1)
	// The janitor is first armed for the hour-long timeout; the shorter
	// one must bring it forward.
	roundTrip(t, long, newRequest(t, "GET", "/", nil))
	short.SetLimits(Limits{IdleTimeout: 50 * time.Millisecond})
	start := time.Now()
	roundTrip(t, short, newRequest(t, "GET", "/", nil))
	eventually(t, "the short idle timeout to close the connection", func() bool { return short.Stats().Open == 0 })
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("closed after %v, before the idle timeout", d)
	}
	if st := long.Stats(); st.Idle != 1 {
		t.Errorf("the other endpoint's idle connection: %+v, want kept", st)
	}
}

// TestLimitsMaxConns bounds one endpoint's connections; raising the limit
// lets a waiting request through, and lowering it interrupts no request.
func TestLimitsMaxConns(t *testing.T) {
	gate := make(chan struct{})
	var log connLog
	s, cc := newServer(t, log.handler(gate))
	p := newTestPool(t, Options{ConnWaitTimeout: 5 * time.Second})
	e := endpoint(t, p, s.URL, HTTP1)
	e.SetLimits(Limits{MaxConns: 1})

	results := make(chan error, 2)
	send := func() {
		resp, err := e.RoundTrip(newRequest(t, "GET", "/slow", nil))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		results <- err
	}
	go send()
	eventually(t, "the first request on the wire", func() bool { return e.Stats().InUse == 1 })
	go send()
	eventually(t, "the second request waiting", func() bool { return e.Stats().InFlight == 2 })
	time.Sleep(20 * time.Millisecond)
	if cc.count() != 1 {
		t.Fatalf("backend saw %d connections with MaxConns 1", cc.count())
	}
	e.SetLimits(Limits{MaxConns: 2})
	eventually(t, "the waiting request to get a connection", func() bool { return cc.count() == 2 })
	// Lower the limit with both in flight: both finish.
	e.SetLimits(Limits{MaxConns: 1})
	close(gate)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("request in flight across SetLimits: %v", err)
		}
	}
	if st := e.Stats(); st.Open != 1 || st.Idle != 1 {
		t.Errorf("after lowering MaxConns to 1: %+v, want one connection kept", st)
	}

	// Fail fast at the limit when the pool does not wait.
	p2 := newTestPool(t, Options{})
	e2 := endpoint(t, p2, s.URL, HTTP1)
	e2.SetLimits(Limits{MaxConns: 1})
	resp, err := e2.RoundTrip(newRequest(t, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := e2.RoundTrip(newRequest(t, "GET", "/", nil)); !errors.Is(err, ErrEndpointBusy) || !NotSent(err) {
		t.Errorf("second request at MaxConns 1: %v, want ErrEndpointBusy", err)
	}
}

// TestResolveLimits checks how an endpoint's limits combine with the
// pool's Options.
func TestResolveLimits(t *testing.T) {
	cfg := Options{MaxConnsPerEndpoint: 8, MaxRequestsPerConn: 100, MaxConnLifetime: time.Minute}.withDefaults()
	for _, tc := range []struct {
		own  Limits
		want connLimits
	}{
		{Limits{}, connLimits{maxConns: 8, idle: 60 * time.Second, maxRequests: 100, lifetime: time.Minute}},
		{Limits{MaxConns: 2, IdleTimeout: time.Second, MaxRequests: 3, MaxLifetime: time.Hour},
			connLimits{maxConns: 2, idle: time.Second, maxRequests: 3, lifetime: time.Hour}},
		{Limits{MaxConns: -1, IdleTimeout: -1, MaxRequests: -1, MaxLifetime: -1}, connLimits{}},
	} {
		got := resolveLimits(&cfg, tc.own)
		tc.want.own = tc.own
		if *got != tc.want {
			t.Errorf("resolveLimits(%+v) = %+v, want %+v", tc.own, *got, tc.want)
		}
	}
	if got := (&connLimits{idle: time.Minute, lifetime: time.Second}).sweepEvery(); got != 500*time.Millisecond {
		t.Errorf("sweepEvery = %v, want half the lifetime", got)
	}
	if got := (&connLimits{}).sweepEvery(); got != 0 {
		t.Errorf("sweepEvery without limits = %v, want 0", got)
	}
}
