package breaker

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// transitions records OnStateChange calls as "from>to".
type transitions []string

func (tr *transitions) record(from, to State) { *tr = append(*tr, from.String()+">"+to.String()) }

// run executes a script against b and returns one trace entry per op:
//
//	+D   advance the clock by duration D         -> state
//	s, f Allow, then Done(success or failure)    -> state, or "refused <state>"
//	aN   Allow and keep the ticket as N          -> state, or "refused <state>"
//	sN, fN  Done(ticket N, success or failure)    -> state
func run(t *testing.T, b *Breaker, clk *fakeClock, ops string) []string {
	t.Helper()
	tickets := map[string]Ticket{}
	var trace []string
	for _, op := range strings.Fields(ops) {
		if d, ok := strings.CutPrefix(op, "+"); ok {
			dur, err := time.ParseDuration(d)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(dur)
			trace = append(trace, b.State().String())
			continue
		}
		kind, name := op[:1], op[1:]
		switch {
		case kind == "a" || name == "":
			tk, ok := b.Allow()
			if !ok {
				trace = append(trace, "refused "+b.State().String())
				continue
			}
			if kind == "a" {
				tickets[name] = tk
				break
			}
			b.Done(tk, kind == "s")
		default:
			tk, ok := tickets[name]
			if !ok {
				t.Fatalf("op %q: no ticket %q", op, name)
			}
			b.Done(tk, kind == "s")
		}
		trace = append(trace, b.State().String())
	}
	return trace
}

func TestTransitions(t *testing.T) {
	base := Options{Window: 10 * time.Second, Buckets: 10, MinRequests: 4, OpenTimeout: 30 * time.Second}
	shortOpen := base
	shortOpen.OpenTimeout = 2 * time.Second
	threeProbes := base
	threeProbes.HalfOpenProbes = 3
	const opened = "f f f f +30s "
	tests := []struct {
		name  string
		cfg   Options
		ops   string
		trace string // space-separated states, "x" marking a refusal
		calls transitions
	}{
		{
			name:  "opens at the threshold once min requests are in",
			cfg:   base,
			ops:   "s s f f f",
			trace: "closed closed closed open x-open",
			calls: transitions{"closed>open"},
		},
		{
			name:  "below min requests stays closed and a success never opens",
			cfg:   base,
			ops:   "f f f s f",
			trace: "closed closed closed closed open",
			calls: transitions{"closed>open"},
		},
		{
			name:  "below the threshold stays closed",
			cfg:   base,
			ops:   "s s s f s s f f f f",
			trace: "closed closed closed closed closed closed closed closed closed open",
			calls: transitions{"closed>open"},
		},
		{
			name:  "open refuses until the timeout, then one probe closes it",
			cfg:   base,
			ops:   "f f f f +29999ms s +1ms a1 s s1 f",
			trace: "closed closed closed open open x-open open half-open x-half-open closed closed",
			calls: transitions{"closed>open", "open>half-open", "half-open>closed"},
		},
		{
			name:  "a failed probe re-opens for a full timeout",
			cfg:   base,
			ops:   opened + "a1 +5s f1 +29s s +1s s",
			trace: "closed closed closed open open half-open half-open open open x-open open closed",
			calls: transitions{"closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"},
		},
		{
			name:  "closing empties the window",
			cfg:   shortOpen,
			ops:   "f f f f +2s s f f f f",
			trace: "closed closed closed open open closed closed closed closed open",
			calls: transitions{"closed>open", "open>half-open", "half-open>closed", "closed>open"},
		},
		{
			name:  "a report from before the last transition is ignored",
			cfg:   base,
			ops:   "a1 a2 f f f f s1 +30s a3 f2 s3",
			trace: "closed closed closed closed closed open open open half-open half-open closed",
			calls: transitions{"closed>open", "open>half-open", "half-open>closed"},
		},
		{
			name:  "all probes must succeed",
			cfg:   threeProbes,
			ops:   opened + "a1 a2 a3 s s1 s2 s3",
			trace: "closed closed closed open open half-open half-open half-open x-half-open half-open half-open closed",
			calls: transitions{"closed>open", "open>half-open", "half-open>closed"},
		},
		{
			name:  "one failed probe of three re-opens",
			cfg:   threeProbes,
			ops:   opened + "a1 a2 a3 s1 f2 s3",
			trace: "closed closed closed open open half-open half-open half-open half-open open open",
			calls: transitions{"closed>open", "open>half-open", "half-open>open"},
		},
		{
			name:  "probes not reported within the timeout are replaced",
			cfg:   base,
			ops:   opened + "a1 +29s s +1s a2 s1 s2",
			trace: "closed closed closed open open half-open half-open x-half-open half-open half-open half-open closed",
			calls: transitions{"closed>open", "open>half-open", "half-open>closed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			var calls transitions
			cfg := tt.cfg
			cfg.Now = clk.Now
			cfg.OnStateChange = calls.record
			b, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(strings.Join(run(t, b, clk, tt.ops), " "), "refused ", "x-")
			if diff := cmp.Diff(strings.Fields(tt.trace), strings.Fields(got)); diff != "" {
				t.Errorf("states after each op (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.calls, calls); diff != "" {
				t.Errorf("OnStateChange calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWindowSlides(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{Window: 10 * time.Second, Buckets: 10, MinRequests: 6, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	type point struct {
		At     time.Duration // since the breaker was created
		Counts Counts
		State  State
	}
	start := clk.Now()
	var got []point
	step := func(at time.Duration, ops string) {
		clk.Advance(start.Add(at).Sub(clk.Now()))
		run(t, b, clk, ops)
		got = append(got, point{at, b.Counts(), b.State()})
	}
	step(0, "f")
	step(1500*time.Millisecond, "f")
	step(5*time.Second, "s s")
	step(9999*time.Millisecond, "") // every slice still in the window
	step(10*time.Second, "")        // the slice [0s, 1s) has left
	step(10999*time.Millisecond, "")
	step(11*time.Second, "")      // [1s, 2s) has left
	step(11*time.Second, "f f f") // 2 successes, 3 failures: too few
	step(12*time.Second, "f")     // 6 requests, 4 failed: open
	step(13*time.Second, "")      // open: nothing counted
	want := []point{
		{0, Counts{1, 1}, Closed},
		{1500 * time.Millisecond, Counts{2, 2}, Closed},
		{5 * time.Second, Counts{4, 2}, Closed},
		{9999 * time.Millisecond, Counts{4, 2}, Closed},
		{10 * time.Second, Counts{3, 1}, Closed},
		{10999 * time.Millisecond, Counts{3, 1}, Closed},
		{11 * time.Second, Counts{2, 0}, Closed},
		{11 * time.Second, Counts{5, 3}, Closed},
		{12 * time.Second, Counts{}, Open},
		{13 * time.Second, Counts{}, Open},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("window over time (-want +got):\n%s", diff)
	}
}

func TestWindowAfterLongSilence(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{Window: time.Second, Buckets: 4, MinRequests: 3, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, clk, "f f")
	clk.Advance(time.Hour + 300*time.Millisecond)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("Counts an hour later = %+v; want zero", c)
	}
	got := run(t, b, clk, "f f +250ms f")
	if diff := cmp.Diff([]string{"closed", "closed", "closed", "open"}, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

func TestLateReportCountsInCurrentSlice(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{Window: 4 * time.Second, Buckets: 4, MinRequests: 100, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := b.Allow()
	start := clk.Now()
	clk.Advance(21 * time.Second)
	run(t, b, clk, "s")
	// A request admitted long ago, reported with an end time older than
	// the window, is counted in the newest slice rather than in whichever
	// slice reuses its old place in the ring.
	b.DoneAt(tk, false, start)
	var got []Counts
	for range 5 {
		got = append(got, b.Counts())
		clk.Advance(time.Second)
	}
	want := []Counts{{2, 1}, {2, 1}, {2, 1}, {2, 1}, {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counts each second (-want +got):\n%s", diff)
	}
}

func TestThresholdIsExact(t *testing.T) {
	// 0.1 is not exact in binary; 1 failure in 10 must still reach it.
	clk := newFakeClock()
	b, err := New(Options{FailureThreshold: 0.1, MinRequests: 10, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, b, clk, "s s s s s s s s s f")
	if got[len(got)-1] != "open" {
		t.Errorf("after 1 failure in 10 with threshold 0.1: %v; want open", got[len(got)-1])
	}
}

func TestDefaults(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	type settings struct {
		Buckets      int
		Slice        time.Duration
		ThresholdPPM uint64
		MinRequests  uint64
		OpenTimeout  time.Duration
		Probes       uint64
	}
	got := settings{len(b.ring), time.Duration(b.slice), b.thresholdPPM, b.minRequests, time.Duration(b.openTimeout), b.probes}
	want := settings{10, time.Second, 500000, 20, 30 * time.Second, 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	// Behaviourally: 19 failures are too few, the 20th opens; 30s later
	// one probe is let through.
	got2 := run(t, b, clk, strings.Repeat("f ", 19)+"f s +29s s +1s a1 s")
	want2 := append(strings.Fields(strings.Repeat("closed ", 19)),
		"open", "refused open", "open", "refused open", "open", "half-open", "refused half-open")
	if diff := cmp.Diff(want2, got2); diff != "" {
		t.Errorf("default behaviour (-want +got):\n%s", diff)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		cfg   Options
		field string
	}{
		{Options{Buckets: -1}, "Buckets"},
		{Options{Buckets: MaxBuckets + 1}, "Buckets"},
		{Options{Window: 5, Buckets: 10}, "Window"},
		{Options{Window: -time.Second}, "Window"},
		{Options{FailureThreshold: -0.5}, "FailureThreshold"},
		{Options{FailureThreshold: 1.5}, "FailureThreshold"},
		{Options{FailureThreshold: nan()}, "FailureThreshold"},
		{Options{MinRequests: -1}, "MinRequests"},
		{Options{OpenTimeout: -time.Second}, "OpenTimeout"},
		{Options{HalfOpenProbes: -1}, "HalfOpenProbes"},
		{Options{HalfOpenProbes: MaxHalfOpenProbes + 1}, "HalfOpenProbes"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			_, err := New(tt.cfg)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("New(%+v) error = %v; want ErrInvalidOptions naming %s", tt.cfg, err, tt.field)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	got := []string{Closed.String(), Open.String(), HalfOpen.String(), State(7).String()}
	if diff := cmp.Diff([]string{"closed", "open", "half-open", "State(7)"}, got); diff != "" {
		t.Errorf("State.String (-want +got):\n%s", diff)
	}
}

func TestZeroTicketIsIgnored(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{MinRequests: 1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	b.Done(Ticket{}, false)
	if b.State() != Closed || b.Counts() != (Counts{}) {
		t.Errorf("after Done(Ticket{}): %v, %+v; want closed with nothing counted", b.State(), b.Counts())
	}
}

func TestClosedPathDoesNotAllocate(t *testing.T) {
	b, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(1000, func() {
		tk, _ := b.Allow()
		b.Done(tk, true)
	})
	if n != 0 {
		t.Errorf("Allow+Done allocates %v times; want 0", n)
	}
}

func TestConcurrentCountingIsExact(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{MinRequests: 1 << 20, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				tk, ok := b.Allow()
				if !ok {
					t.Error("closed breaker refused a request")
					return
				}
				b.Done(tk, (i+w)%4 != 0)
			}
		})
	}
	wg.Wait()
	if got, want := b.Counts(), (Counts{8000, 2000}); got != want {
		t.Errorf("Counts = %+v; want %+v", got, want)
	}
}

func TestConcurrentHalfOpenAdmitsExactlyProbes(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{MinRequests: 1, HalfOpenProbes: 3, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, clk, "f +30s")
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, ok := b.Allow(); ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != 3 || b.State() != HalfOpen {
		t.Errorf("admitted %d in %v; want 3 in half-open", n, b.State())
	}
}

func TestConcurrentChaos(t *testing.T) {
	clk := newFakeClock()
	var calls transitions // appended under the breaker's lock
	b, err := New(Options{
		Window: time.Second, Buckets: 4, MinRequests: 5, OpenTimeout: 20 * time.Millisecond,
		// Half of the requests fail against a threshold of 30%: whatever
		// the scheduling, a window with enough requests trips it.
		FailureThreshold: 0.3,
		HalfOpenProbes:   2, Now: clk.Now, OnStateChange: calls.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(time.Millisecond)
				time.Sleep(10 * time.Microsecond)
			}
		}
	})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 3000 {
				if tk, ok := b.Allow(); ok {
					b.Done(tk, r.IntN(2) != 0)
				}
				_ = b.Counts()
			}
		})
	}
	wg.Wait()
	close(stop)
	ticker.Wait()
	// Transitions chain: each starts where the previous ended.
	prev := Closed.String()
	for i, c := range calls {
		from, to, _ := strings.Cut(c, ">")
		if from != prev || from == to {
			t.Fatalf("transition %d %q does not follow %q", i, c, prev)
		}
		prev = to
	}
	if prev != b.State().String() {
		t.Errorf("last transition ends in %s; State is %v", prev, b.State())
	}
	if len(calls) == 0 {
		t.Errorf("half of the requests failing never opened the breaker")
	}
}

func nan() float64 { var z float64; return z / z }

// TestCancel shows that a cancelled ticket counts for nothing: the closed
// window does not move, and a half-open probe slot is freed.
func TestCancel(t *testing.T) {
	clk := newFakeClock()
	b, err := New(Options{MinRequests: 2, OpenTimeout: time.Second, HalfOpenProbes: 1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := b.Allow()
	b.Cancel(tk)
	if c := b.Counts(); c != (Counts{}) {
		t.Errorf("closed: Counts after Cancel = %+v, want none", c)
	}
	for range 2 {
		tk, _ := b.Allow()
		b.Done(tk, false)
	}
	if b.State() != Open {
		t.Fatalf("state %v, want open", b.State())
	}
	clk.Advance(time.Second)
	probe, ok := b.Allow()
	if !ok || b.State() != HalfOpen {
		t.Fatalf("half-open probe refused (%v)", b.State())
	}
	if _, ok := b.Allow(); ok {
		t.Fatal("a second probe admitted while the first is out")
	}
	b.Cancel(probe)
	b.Cancel(probe) // a second Cancel of the same ticket frees nothing more
	next, ok := b.Allow()
	if !ok {
		t.Fatal("no probe admitted after the first was cancelled")
	}
	if _, ok := b.Allow(); ok {
		t.Error("two probes admitted after one Cancel")
	}
	b.Done(next, true)
	if b.State() != Closed {
		t.Errorf("state %v after the probe succeeded, want closed", b.State())
	}
	b.Cancel(probe) // stale: ignored
	if b.State() != Closed {
		t.Errorf("stale Cancel changed the state to %v", b.State())
	}
}

// TestOptionsJSON encodes Options whose Now and OnStateChange are set.
func TestOptionsJSON(t *testing.T) {
	cfg := Options{Window: 5 * time.Second, MinRequests: 4, FailureThreshold: 0.25, Now: newFakeClock().Now,
		OnStateChange: func(State, State) {}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if got, want := string(b), `{"window":5000000000,"failureThreshold":0.25,"minRequests":4}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
}
