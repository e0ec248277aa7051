package kube

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// coalescer turns a stream of change notifications into few rebuilds. It is
// level-triggered: a notification only marks the state dirty, and the
// rebuild reads the current state of the caches, however many
// notifications came in between.
//
// A full rebuild is due holdOff after the last notification (so a burst
// coalesces into one) but never later than maxDelay after the first (so a
// steady stream cannot postpone it for ever). Endpoint notifications name
// the Service whose EndpointSlices changed; they are due epHoldOff after
// the first one and are folded into a pending full rebuild when that comes
// first.
type coalescer struct {
	holdOff, maxDelay, epHoldOff time.Duration

	mu        sync.Mutex
	full      bool
	fullFirst time.Time
	fullLast  time.Time
	eps       map[serviceKey]struct{}
	epsFirst  time.Time
	wake      chan struct{}
}

// serviceKey names a Service.
type serviceKey struct{ namespace, name string }

func newCoalescer(holdOff, maxDelay, epHoldOff time.Duration) *coalescer {
	return &coalescer{
		holdOff: holdOff, maxDelay: maxDelay, epHoldOff: epHoldOff,
		eps:  make(map[serviceKey]struct{}),
		wake: make(chan struct{}, 1),
	}
}

// markFull records a change that needs a full rebuild.
func (c *coalescer) markFull(now time.Time) {
	c.mu.Lock()
	if !c.full {
		c.full = true
		c.fullFirst = now
	}
	c.fullLast = now
	c.mu.Unlock()
	c.poke()
}

// markEndpoints records a change of a Service's EndpointSlices.
func (c *coalescer) markEndpoints(k serviceKey, now time.Time) {
	c.mu.Lock()
	if len(c.eps) == 0 {
		c.epsFirst = now
	}
	c.eps[k] = struct{}{}
	c.mu.Unlock()
	c.poke()
}

func (c *coalescer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns the work due at now: a full rebuild, or the Services whose
// endpoints must be refreshed (sorted), and clears it. With nothing due it
// returns how long to wait for the next deadline, or a negative wait when
// nothing is pending at all.
func (c *coalescer) take(now time.Time) (full bool, eps []serviceKey, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wait = -1
	if c.full {
		due := earlier(c.fullLast.Add(c.holdOff), c.fullFirst.Add(c.maxDelay))
		if !now.Before(due) {
			// The full rebuild reads every EndpointSlice too.
			c.full = false
			clear(c.eps)
			return true, nil, 0
		}
		wait = due.Sub(now)
	}
	if len(c.eps) > 0 {
		due := c.epsFirst.Add(c.epHoldOff)
		if !now.Before(due) {
			eps = make([]serviceKey, 0, len(c.eps))
			for k := range c.eps {
				eps = append(eps, k)
			}
			clear(c.eps)
			slices.SortFunc(eps, func(a, b serviceKey) int {
				return cmp.Or(cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.name, b.name))
			})
			return false, eps, 0
		}
		if w := due.Sub(now); wait < 0 || w < wait {
			wait = w
		}
	}
	return false, nil, wait
}

// earlier returns the earlier time.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
