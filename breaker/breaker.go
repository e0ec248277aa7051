package breaker

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// State is the state of a Breaker.
type State uint8

// The states of a Breaker.
const (
	// Closed lets every request through and watches the error rate.
	Closed State = iota
	// Open refuses every request until the open timeout has passed.
	Open
	// HalfOpen lets a bounded number of probe requests through to decide
	// between Closed and Open.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Defaults used for the zero fields of Options.
const (
	DefaultWindow           = 10 * time.Second
	DefaultBuckets          = 10
	DefaultFailureThreshold = 0.5
	DefaultMinRequests      = 20
	DefaultOpenTimeout      = 30 * time.Second
	DefaultHalfOpenProbes   = 1
)

// Upper bounds of the Options fields that size the breaker's state.
const (
	MaxBuckets        = 1000
	MaxHalfOpenProbes = 1<<16 - 1
)

// ErrInvalidOptions is wrapped by every error that reports a bad Options field.
var ErrInvalidOptions = errors.New("invalid circuit breaker options")

// Options configure a Breaker. The zero value of every field means its
// default.
//
// Options encode to JSON (for showing a configuration) without Now
// and OnStateChange; durations encode as time.Duration does, in
// nanoseconds.
type Options struct {
	// Window is the span of time over which the error rate is measured.
	// Default 10s.
	Window time.Duration `json:"window,omitempty"`
	// Buckets is the number of slices the window is divided into; the
	// window slides one slice (Window/Buckets) at a time. Default 10, at
	// most MaxBuckets.
	Buckets int `json:"buckets,omitempty"`
	// FailureThreshold is the fraction of failed requests in the window,
	// in (0, 1], at or above which the breaker opens; it is compared
	// exactly, in millionths. Default 0.5.
	FailureThreshold float64 `json:"failureThreshold,omitempty"`
	// MinRequests is the number of requests the window must hold before
	// the error rate can open the breaker. Default 20.
	MinRequests int `json:"minRequests,omitempty"`
	// OpenTimeout is how long the breaker stays open before it lets probes
	// through. It is also how long half-open waits for its probes to be
	// reported before it admits fresh ones. Default 30s.
	OpenTimeout time.Duration `json:"openTimeout,omitempty"`
	// HalfOpenProbes is the number of probe requests half-open lets
	// through; that many must succeed to close the breaker. Default 1, at
	// most MaxHalfOpenProbes.
	HalfOpenProbes int `json:"halfOpenProbes,omitempty"`
	// Now tells the breaker the time; nil means time.Now. Tests set it
	// to control the window and the timeouts exactly.
	Now func() time.Time `json:"-"`
	// OnStateChange, if not nil, is called after every change of state,
	// with the old and the new state, for metrics or logs. Calls are made
	// one at a time, in the order of the changes, while the breaker holds
	// an internal lock: the function must be quick and must not call
	// Allow or Done on the same breaker (State and Counts are fine).
	OnStateChange func(from, to State) `json:"-"`
}

// A Ticket is handed out by Allow for a request it lets through and handed
// back to Done with the request's outcome.
type Ticket struct {
	gen uint32
}

// Counts are the requests and failures counted in the current window.
type Counts struct {
	Requests uint64
	Failures uint64
}

// The breaker's state word packs, from the top: the State (2 bits), a
// generation number that changes at every transition (30 bits), and, while
// half-open, the probes admitted and the probes that succeeded (16 bits
// each). A Ticket carries the generation it was issued in, so an outcome
// reported after a transition is recognised as stale and ignored.
const (
	succShift  = 0
	admitShift = 16
	genShift   = 32
	stateShift = 62
	fieldMask  = 1<<16 - 1
	genMask    = 1<<30 - 1
)

func stateOf(w uint64) State    { return State(w >> stateShift) }
func genOf(w uint64) uint32     { return uint32(w>>genShift) & genMask }
func admitted(w uint64) uint64  { return w >> admitShift & fieldMask }
func succeeded(w uint64) uint64 { return w >> succShift & fieldMask }
func pack(s State, gen uint32) uint64 {
	return uint64(s)<<stateShift | uint64(gen&genMask)<<genShift
}

// nextGen returns the generation after g, skipping 0 so that the zero
// Ticket never matches.
func nextGen(g uint32) uint32 { return g%genMask + 1 }

// A Breaker is a circuit breaker for one backend, fed by the outcomes of
// the requests sent to it.
//
// While closed, it counts requests and failures in a sliding window of
// Options.Window divided into Options.Buckets slices. When a failure is
// reported and the window then holds at least MinRequests requests of which
// at least FailureThreshold failed, it opens. (The rate is checked when a
// failure is reported, so a success never opens the breaker.) Open refuses
// every request; the first Allow at or after OpenTimeout moves it to
// half-open, which lets HalfOpenProbes requests through. As soon as one of
// them fails the breaker opens again for another OpenTimeout; when all of
// them have succeeded it closes, with an empty window. If half-open's
// probes are not all reported within OpenTimeout, it admits fresh ones and
// ignores the late reports.
//
// A Breaker is safe for concurrent use. In the closed state Allow is one
// atomic load, and Done one clock read (none with DoneAt) and one atomic add (plus a sum over
// the window's slices when it reports a failure); neither takes a lock
// except once per slice of the window, and neither allocates.
type Breaker struct {
	st    atomic.Uint64 // see pack
	since atomic.Int64  // when the current state began, ns since epoch
	head  atomic.Int64  // the newest slice the window has been advanced to
	ring  []atomic.Uint64

	now          func() time.Time
	epoch        time.Time
	slice        int64 // ns per slice
	thresholdPPM uint64
	minRequests  uint64
	openTimeout  int64
	probes       uint64
	onChange     func(from, to State)

	mu sync.Mutex // serialises transitions and window advances
}

// New returns a closed Breaker configured by opts, or an error naming the
// first invalid field.
func New(opts Options) (*Breaker, error) {
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.Buckets == 0 {
		opts.Buckets = DefaultBuckets
	}
	if opts.FailureThreshold == 0 {
		opts.FailureThreshold = DefaultFailureThreshold
	}
	if opts.MinRequests == 0 {
		opts.MinRequests = DefaultMinRequests
	}
	if opts.OpenTimeout == 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.HalfOpenProbes == 0 {
		opts.HalfOpenProbes = DefaultHalfOpenProbes
	}
	switch {
	case opts.Buckets < 0 || opts.Buckets > MaxBuckets:
		return nil, fmt.Errorf("breaker: Buckets %d: must be in [1, %d]: %w", opts.Buckets, MaxBuckets, ErrInvalidOptions)
	case opts.Window < time.Duration(opts.Buckets):
		return nil, fmt.Errorf("breaker: Window %v: must be at least 1ns per bucket (%d buckets): %w", opts.Window, opts.Buckets, ErrInvalidOptions)
	case math.IsNaN(opts.FailureThreshold) || opts.FailureThreshold < 0 || opts.FailureThreshold > 1:
		return nil, fmt.Errorf("breaker: FailureThreshold %v: must be in (0, 1]: %w", opts.FailureThreshold, ErrInvalidOptions)
	case opts.MinRequests < 0:
		return nil, fmt.Errorf("breaker: MinRequests %d: must be >= 1: %w", opts.MinRequests, ErrInvalidOptions)
	case opts.OpenTimeout < 0:
		return nil, fmt.Errorf("breaker: OpenTimeout %v: must be > 0: %w", opts.OpenTimeout, ErrInvalidOptions)
	case opts.HalfOpenProbes < 0 || opts.HalfOpenProbes > MaxHalfOpenProbes:
		return nil, fmt.Errorf("breaker: HalfOpenProbes %d: must be in [1, %d]: %w", opts.HalfOpenProbes, MaxHalfOpenProbes, ErrInvalidOptions)
	}
	b := &Breaker{
		ring:         make([]atomic.Uint64, opts.Buckets),
		now:          time.Now,
		slice:        int64(opts.Window) / int64(opts.Buckets),
		thresholdPPM: uint64(math.Round(opts.FailureThreshold * 1e6)),
		minRequests:  uint64(opts.MinRequests),
		openTimeout:  int64(opts.OpenTimeout),
		probes:       uint64(opts.HalfOpenProbes),
		onChange:     opts.OnStateChange,
	}
	if opts.Now != nil {
		b.now = opts.Now
	}
	b.epoch = b.now()
	b.st.Store(pack(Closed, 1))
	return b, nil
}

// State reports the breaker's current state. An open breaker whose timeout
// has passed reports Open until the next Allow moves it to half-open.
func (b *Breaker) State() State { return stateOf(b.st.Load()) }

// Allow reports whether a request may be sent now. If it may, the caller
// must hand the Ticket to Done exactly once when the request has ended.
func (b *Breaker) Allow() (Ticket, bool) {
	for {
		w := b.st.Load()
		switch stateOf(w) {
		case Closed:
			return Ticket{genOf(w)}, true
		case HalfOpen:
			if admitted(w) < b.probes {
				if b.st.CompareAndSwap(w, w+1<<admitShift) {
					return Ticket{genOf(w)}, true
				}
				continue
			}
		}
		// Open, or half-open with every probe out: wait for the timeout.
		now := b.sinceEpoch(b.now())
		if now-b.since.Load() < b.openTimeout {
			return Ticket{}, false
		}
		b.transition(w, HalfOpen, now)
	}
}

// Done reports the outcome of a request let through by Allow. What counts as
// a failure (a transport error, a 5xx status, a response slower than some
// budget) is the caller's choice. Outcomes of requests admitted before the
// breaker last changed state are ignored.
func (b *Breaker) Done(t Ticket, success bool) {
	b.DoneAt(t, success, b.now())
}

// DoneAt is Done for a request that ended at now, a time read from the
// breaker's clock (Options.Now, time.Now by default). A caller that reads the clock
// anyway, to measure latency, saves the breaker a second read.
func (b *Breaker) DoneAt(t Ticket, success bool, now time.Time) {
	w := b.st.Load()
	if genOf(w) != t.gen {
		return
	}
	ns := b.sinceEpoch(now)
	switch stateOf(w) {
	case Closed:
		b.record(ns, success)
		if !success && b.tripped(ns) {
			b.transition(w, Open, ns)
		}
	case HalfOpen:
		if !success {
			b.transition(w, Open, ns)
			return
		}
		for !b.st.CompareAndSwap(w, w+1<<succShift) {
			w = b.st.Load()
			if genOf(w) != t.gen {
				return
			}
		}
		if succeeded(w)+1 >= b.probes {
			b.transition(w, Closed, ns)
		}
	}
}

// Cancel hands back a Ticket whose request was not sent, for a reason
// that says nothing about the backend (a local connection limit, say): the
// request counts neither as a success nor as a failure, and a half-open
// breaker may admit another probe in its place. A Ticket must go to Done
// or to Cancel, once.
func (b *Breaker) Cancel(t Ticket) {
	for {
		w := b.st.Load()
		if genOf(w) != t.gen || stateOf(w) != HalfOpen || admitted(w) == 0 {
			return
		}
		if b.st.CompareAndSwap(w, w-1<<admitShift) {
			return
		}
	}
}

// Counts reports the requests and failures counted in the window that ends
// now. It is zero outside the closed state.
func (b *Breaker) Counts() Counts {
	if b.State() != Closed {
		return Counts{}
	}
	return b.window(b.sinceEpoch(b.now()))
}

// transition moves the breaker from the state and generation of w to the
// state to, with a new generation, unless another transition got there
// first. It calls OnStateChange if the state changed.
func (b *Breaker) transition(w uint64, to State, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from := stateOf(w)
	next := pack(to, nextGen(genOf(w)))
	// Only transitions, all under b.mu, change the state and generation;
	// the CAS below can only lose to half-open's probe counters.
	for {
		cur := b.st.Load()
		if stateOf(cur) != from || genOf(cur) != genOf(w) {
			return
		}
		if to == Closed {
			b.clearWindow(now)
		}
		// since must be visible before the state that reads it.
		b.since.Store(now)
		if b.st.CompareAndSwap(cur, next) {
			break
		}
	}
	if to != from && b.onChange != nil {
		b.onChange(from, to)
	}
}

// sinceEpoch returns the nanoseconds from the breaker's creation to t,
// never negative.
func (b *Breaker) sinceEpoch(t time.Time) int64 {
	return max(t.Sub(b.epoch).Nanoseconds(), 0)
}

// record counts one outcome at time now in the window.
func (b *Breaker) record(now int64, success bool) {
	s := now / b.slice
	n := int64(len(b.ring))
	if h := b.head.Load(); s > h {
		b.advance(s)
	} else if s <= h-n {
		// Reported so late that its slice has been reused: count it now.
		s = h
	}
	delta := uint64(1)
	if !success {
		delta |= 1 << 32
	}
	b.ring[s%n].Add(delta)
}

// advance moves the head of the window to slice s, clearing the slices
// that s and those before it take over from old ones.
func (b *Breaker) advance(s int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.head.Load()
	if s <= h {
		return
	}
	n := int64(len(b.ring))
	for i := max(h+1, s-n+1); i <= s; i++ {
		b.ring[i%n].Store(0)
	}
	b.head.Store(s)
}

// clearWindow empties the window. The caller holds b.mu.
func (b *Breaker) clearWindow(now int64) {
	for i := range b.ring {
		b.ring[i].Store(0)
	}
	b.head.Store(max(b.head.Load(), now/b.slice))
}

// window sums the slices of the window that ends at now.
func (b *Breaker) window(now int64) Counts {
	n := int64(len(b.ring))
	h := b.head.Load()
	oldest := max(now/b.slice, h) - n + 1
	var c Counts
	for i := range n {
		// The slice that ring[i] holds: the newest one <= h with s%n == i.
		if s := h - ((h-i)%n+n)%n; s >= oldest {
			v := b.ring[i].Load()
			c.Requests += v & math.MaxUint32
			c.Failures += v >> 32
		}
	}
	return c
}

// tripped reports whether the window ending at now calls for opening.
func (b *Breaker) tripped(now int64) bool {
	c := b.window(now)
	return c.Requests >= b.minRequests && c.Failures*1e6 >= b.thresholdPPM*c.Requests
}
