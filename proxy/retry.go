package proxy

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the retry backoff and budget.
const (
	defaultBackoff            = 25 * time.Millisecond
	defaultMaxBackoffFactor   = 10
	defaultBudgetInterval     = 10 * time.Second
	defaultMinRetriesInterval = time.Second
)

// retrySettings are a backend's retry backoff and budget
// ([Backend].Retry), swapped whole when a configuration changes them.
type retrySettings struct {
	backoff    time.Duration
	maxBackoff time.Duration
	// budget is the backend's own retry budget; nil applies
	// Options.RetryBudget.
	budget *retryBudget
}

// newRetrySettings returns the settings of r. The budget's counts are
// carried over from prev when the budget is unchanged.
func newRetrySettings(r BackendRetry, prev *retrySettings) *retrySettings {
	rs := &retrySettings{backoff: r.Backoff, maxBackoff: r.MaxBackoff}
	if r.Budget != nil {
		if prev != nil && prev.budget != nil && prev.budget.spec == *r.Budget {
			rs.budget = prev.budget
		} else {
			rs.budget = newRetryBudget(*r.Budget, time.Now())
		}
	}
	return rs
}

// retryBackoff returns the base delay and the cap of a rule's retries to a
// backend: the rule's [RetryPolicy] wins, then the backend's
// [BackendRetry], then 25ms and ten times the base.
func retryBackoff(rp *RetryPolicy, rs *retrySettings) (base, ceiling time.Duration) {
	base = defaultBackoff
	if rp != nil && rp.Backoff > 0 {
		base = rp.Backoff
	} else if rs != nil && rs.backoff > 0 {
		base = rs.backoff
	}
	ceiling = defaultMaxBackoffFactor * base
	if rp != nil && rp.MaxBackoff > 0 {
		ceiling = rp.MaxBackoff
	} else if rs != nil && rs.maxBackoff > 0 {
		ceiling = rs.maxBackoff
	}
	return base, ceiling
}

// retryDelay returns the wait before retry number attempt+1: exponential
// (base doubled per earlier retry) up to ceiling, with full jitter, so
// within (0, min(base×2^attempt, ceiling)]. randN returns a uniform
// number in [0, n).
func retryDelay(base, ceiling time.Duration, attempt int, randN func(n int64) int64) time.Duration {
	d := base
	for i := 0; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = max(min(d, ceiling), 1)
	return time.Duration(randN(int64(d))) + 1
}

// retryBudget is a backend's [RetryBudget]: the requests and retries sent
// to the backend over a sliding window of Interval, and the retries over
// one of MinRetriesInterval. Under concurrent requests the check and the
// count are not one atomic step, so a burst may exceed the budget by the
// number of retries decided at the same instant.
type retryBudget struct {
	spec       RetryBudget // as configured
	percent    float64
	minRetries uint64
	all        window // requests in the low 32 bits, retries in the high ones
	recent     window // retries, over MinRetriesInterval
}

func newRetryBudget(spec RetryBudget, now time.Time) *retryBudget {
	b := &retryBudget{spec: spec, percent: spec.Percent, minRetries: uint64(max(spec.MinRetries, 0))}
	interval := spec.Interval
	if interval <= 0 {
		interval = defaultBudgetInterval
	}
	minInterval := spec.MinRetriesInterval
	if minInterval <= 0 {
		minInterval = defaultMinRetriesInterval
	}
	b.all.init(now, interval)
	b.recent.init(now, minInterval)
	return b
}

// request counts a request sent to the backend (its first attempt).
func (b *retryBudget) request(now time.Time) { b.all.add(now, 1) }

// allow reports whether one more retry fits in the budget, and counts it
// (as a request and a retry) if it does: fewer than MinRetries retries in
// the last MinRetriesInterval, or retries, this one included, at most
// Percent of the requests in the last Interval, this one included.
func (b *retryBudget) allow(now time.Time) bool {
	if b.minRetries == 0 || b.recent.sum(now)&lowMask >= b.minRetries {
		v := b.all.sum(now)
		requests, retries := v&lowMask, v>>32
		if float64(retries+1)*100 > b.percent*float64(requests+1) {
			return false
		}
	}
	b.all.add(now, 1|1<<32)
	b.recent.add(now, 1)
	return true
}

const lowMask = 1<<32 - 1

// windowSlices is the number of slices of a window: it slides by a tenth
// of its span.
const windowSlices = 10

// window counts events over a sliding span of time, a slice at a time.
// Each slot of the ring holds the count of one slice and that slice's
// number.
type window struct {
	start time.Time
	slice int64 // nanoseconds per slice
	ring  [windowSlices]struct {
		id atomic.Int64 // the slice counted, from start
		n  atomic.Uint64
	}
	mu sync.Mutex // serialises slot reuse
}

func (w *window) init(now time.Time, span time.Duration) {
	w.start = now
	w.slice = max(int64(span)/windowSlices, 1)
	for i := range w.ring {
		w.ring[i].id.Store(-windowSlices) // counts for no slice
	}
}

// at returns the slice that now falls in.
func (w *window) at(now time.Time) int64 { return max(now.Sub(w.start).Nanoseconds(), 0) / w.slice }

// add counts delta in the slice of now.
func (w *window) add(now time.Time, delta uint64) {
	s := w.at(now)
	slot := &w.ring[s%windowSlices]
	if slot.id.Load() != s {
		w.mu.Lock()
		if slot.id.Load() < s {
			slot.n.Store(0)
			slot.id.Store(s)
		}
		w.mu.Unlock()
	}
	slot.n.Add(delta)
}

// sum returns the counts of the window that ends at now.
func (w *window) sum(now time.Time) uint64 {
	s := w.at(now)
	var total uint64
	for i := range w.ring {
		slot := &w.ring[i]
		if id := slot.id.Load(); id > s-windowSlices && id <= s {
			total += slot.n.Load()
		}
	}
	return total
}

// validateBackoff checks a base delay and its cap, as a rule's
// RetryPolicy and a backend's BackendRetry both give them.
func validateBackoff(base, limit time.Duration) error {
	switch {
	case base < 0:
		return errors.New("backoff: must not be negative")
	case limit < 0:
		return errors.New("maxBackoff: must not be negative")
	case limit > 0 && limit < base:
		return fmt.Errorf("maxBackoff: %v is less than backoff (%v)", limit, base)
	}
	return nil
}

// validate checks a rule's retry policy. Errors start with the field name.
func (rp *RetryPolicy) validate() error {
	if rp.Attempts < 0 {
		return errors.New("attempts: must not be negative")
	}
	if err := validateBackoff(rp.Backoff, rp.MaxBackoff); err != nil {
		return err
	}
	return nil
}
