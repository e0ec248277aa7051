package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"
)

// A Bucket is a token bucket: it holds at most burst tokens, gains rate
// tokens per second, and each allowed request takes tokens from it. A new
// Bucket is full.
//
// A Bucket is safe for concurrent use. Its state is one integer updated
// with compare-and-swap, so Allow takes no lock and does not allocate.
// [Bucket.SetLimit] changes the rate and burst of a bucket in use.
type Bucket struct {
	now   func() time.Time
	epoch time.Time
	cur   atomic.Pointer[bucketState]
	mu    sync.Mutex // serialises SetLimit
}

// bucketState is a limit and the bucket's state under it. The limit of a
// state never changes; SetLimit publishes a new state.
type bucketState struct {
	lim limit
	tat atomic.Int64 // nanoseconds since epoch at which the bucket is full
}

// BucketOptions configure a [Bucket].
type BucketOptions struct {
	// Rate is the number of tokens the bucket gains per second: positive,
	// finite and at most one token per nanosecond. The interval between
	// two tokens is rounded to the nearest nanosecond.
	Rate float64
	// Burst is the most tokens the bucket holds, at least 1; a new bucket
	// holds Burst tokens.
	Burst int
	// Now tells the bucket the time; nil means time.Now. Tests set it to
	// control refill exactly.
	Now func() time.Time
}

// NewBucket returns a full bucket configured by opts. It returns an error
// wrapping [ErrInvalidLimit] when Rate or Burst is out of range.
func NewBucket(opts BucketOptions) (*Bucket, error) {
	lim, err := newLimit(opts.Rate, opts.Burst)
	if err != nil {
		return nil, err
	}
	b := &Bucket{now: opts.Now}
	if b.now == nil {
		b.now = time.Now
	}
	b.epoch = b.now()
	b.cur.Store(&bucketState{lim: lim})
	return b, nil
}

// Allow takes one token if there is one and reports whether it did.
func (b *Bucket) Allow() bool {
	ok, _ := b.TakeN(b.now(), 1)
	return ok
}

// AllowN takes n tokens at time now if the bucket holds them and reports
// whether it did. It never takes part of n.
func (b *Bucket) AllowN(now time.Time, n int) bool {
	ok, _ := b.TakeN(now, n)
	return ok
}

// Take takes one token if there is one. If there is none it reports how long
// until there will be, which suits a Retry-After header.
func (b *Bucket) Take() (ok bool, retryAfter time.Duration) {
	return b.TakeN(b.now(), 1)
}

// TakeN takes n tokens at time now if the bucket holds them. Otherwise it
// takes nothing and reports how long after now the bucket will hold n tokens,
// or InfDuration if n exceeds the burst. A request for n <= 0 tokens is
// always allowed.
func (b *Bucket) TakeN(now time.Time, n int) (ok bool, retryAfter time.Duration) {
	t := now.Sub(b.epoch).Nanoseconds()
	s := b.cur.Load()
	for {
		tat := s.tat.Load()
		next, ok, retry := s.lim.take(tat, t, n)
		if !ok || next == tat {
			return ok, retry
		}
		if s.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// Refund gives back n tokens taken earlier, as when a request this bucket
// allowed was then refused by another limit. The bucket never holds more
// than its burst; a refund of n <= 0 tokens does nothing.
func (b *Bucket) Refund(n int) {
	if n <= 0 {
		return
	}
	s := b.cur.Load()
	s.tat.Add(-int64(n) * s.lim.interval)
}

// SetLimit changes the bucket's rate and burst, with the rules of
// [BucketOptions]. The bucket keeps the tokens it holds, up to the new
// burst, and from then on refills at the new rate. It is safe to call while other
// goroutines take tokens: a take that races with SetLimit is carried over
// to the new limit, except one still in progress when SetLimit returns,
// which can be lost.
func (b *Bucket) SetLimit(rate float64, burst int) error {
	lim, err := newLimit(rate, burst)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.cur.Load()
	t := b.now().Sub(b.epoch).Nanoseconds()
	tat0 := old.tat.Load()
	ns := &bucketState{lim: lim}
	ns.tat.Store(convert(old.lim, tat0, lim, t))
	b.cur.Store(ns)
	// Takes that landed on the old state after it was read are owed by
	// the new one.
	if d := old.tat.Load() - tat0; d != 0 {
		ns.tat.Add(int64(float64(d) / float64(old.lim.interval) * float64(lim.interval)))
	}
	return nil
}

// convert returns the state under limit to that holds, at time t, the
// tokens a bucket in state tat under limit from holds, up to to's burst.
func convert(from limit, tat int64, to limit, t int64) int64 {
	tokens := min(from.tokens(tat, t), float64(to.burst))
	return t + to.tau - int64(tokens*float64(to.interval))
}

// Tokens reports how many tokens the bucket holds now, including the
// fraction of the next one.
func (b *Bucket) Tokens() float64 {
	s := b.cur.Load()
	return s.lim.tokens(s.tat.Load(), b.now().Sub(b.epoch).Nanoseconds())
}

// Burst reports the most tokens the bucket can hold.
func (b *Bucket) Burst() int { return b.cur.Load().lim.burst }

// Interval reports the time it takes to gain one token.
func (b *Bucket) Interval() time.Duration { return time.Duration(b.cur.Load().lim.interval) }
