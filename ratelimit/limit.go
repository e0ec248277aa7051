package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// InfDuration is the retry-after reported for a request that can never be
// allowed, because it asks for more tokens than the burst.
const InfDuration = time.Duration(math.MaxInt64)

// ErrInvalidLimit is wrapped by every error that reports a bad rate, burst
// or key limit.
var ErrInvalidLimit = errors.New("invalid rate limit")

// maxTau bounds burst*interval so that time arithmetic cannot overflow.
const maxTau = 1 << 61

// limit is the immutable part of a token bucket in the GCRA form: one token
// every interval nanoseconds, at most burst tokens, which is a tolerance of
// tau = burst*interval nanoseconds of credit.
type limit struct {
	interval int64
	tau      int64
	burst    int
}

// newLimit validates rate (tokens per second) and burst and converts them to
// nanoseconds. The interval between tokens is rounded to the nearest
// nanosecond.
func newLimit(rate float64, burst int) (limit, error) {
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate <= 0 {
		return limit{}, fmt.Errorf("ratelimit: Rate %v: must be a finite number > 0: %w", rate, ErrInvalidLimit)
	}
	if burst < 1 {
		return limit{}, fmt.Errorf("ratelimit: Burst %d: must be >= 1: %w", burst, ErrInvalidLimit)
	}
	iv := math.Round(float64(time.Second) / rate)
	if iv < 1 {
		return limit{}, fmt.Errorf("ratelimit: Rate %v: more than one token per nanosecond: %w", rate, ErrInvalidLimit)
	}
	if iv > maxTau/float64(burst) {
		return limit{}, fmt.Errorf("ratelimit: Rate %v with Burst %d: refill time too long: %w", rate, burst, ErrInvalidLimit)
	}
	interval := int64(iv)
	return limit{interval: interval, tau: interval * int64(burst), burst: burst}, nil
}

// take applies the generic cell rate algorithm to a bucket whose state is tat
// (the theoretical arrival time: the instant at which the bucket is full
// again) at time t, for n tokens. It reports the new state, whether the
// tokens were granted, and otherwise how long until they would be.
func (l limit) take(tat, t int64, n int) (newTAT int64, ok bool, retry time.Duration) {
	if n <= 0 {
		return tat, true, 0
	}
	if n > l.burst {
		return tat, false, InfDuration
	}
	next := max(tat, t) + int64(n)*l.interval
	if over := next - t - l.tau; over > 0 {
		return tat, false, time.Duration(over)
	}
	return next, true, 0
}

// tokens reports how many tokens a bucket in state tat holds at time t. A
// clock that moved backwards can put t before the state; the bucket then
// holds no tokens rather than a negative number.
func (l limit) tokens(tat, t int64) float64 {
	credit := min(l.tau, l.tau-(tat-t))
	return float64(max(credit, 0)) / float64(l.interval)
}
