package ratelimit

import (
	"sync/atomic"
	"time"
)

// A Bucket is a token bucket: it holds at most burst tokens, gains rate
// tokens per second, and each allowed request takes tokens from it. A new
// Bucket is full.
//
// A Bucket is safe for concurrent use. Its whole state is one integer updated
// with compare-and-swap, so Allow takes no lock and does not allocate.
type Bucket struct {
	lim   limit
	now   func() time.Time
	epoch time.Time
	tat   atomic.Int64 // nanoseconds since epoch at which the bucket is full
}

// Option configures a Bucket.
type Option func(*Bucket)

// WithClock makes the Bucket read time from c instead of time.Now.
func WithClock(c Clock) Option {
	return func(b *Bucket) { b.now = clockFunc(c) }
}

// NewBucket returns a full bucket that refills at rate tokens per second and
// holds at most burst tokens. Rate must be positive, finite and at most one
// token per nanosecond; burst must be at least 1. The interval between two
// tokens is rounded to the nearest nanosecond.
func NewBucket(rate float64, burst int, opts ...Option) (*Bucket, error) {
	lim, err := newLimit(rate, burst)
	if err != nil {
		return nil, err
	}
	b := &Bucket{lim: lim, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	b.epoch = b.now()
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
	for {
		tat := b.tat.Load()
		next, ok, retry := b.lim.take(tat, t, n)
		if !ok || next == tat {
			return ok, retry
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// Tokens reports how many tokens the bucket holds now, including the
// fraction of the next one.
func (b *Bucket) Tokens() float64 {
	return b.lim.tokens(b.tat.Load(), b.now().Sub(b.epoch).Nanoseconds())
}

// Burst reports the most tokens the bucket can hold.
func (b *Bucket) Burst() int { return b.lim.burst }

// Interval reports the time it takes to gain one token.
func (b *Bucket) Interval() time.Duration { return time.Duration(b.lim.interval) }
