// Package conntrack keeps the connections of a server for its graceful
// shutdown: a Set admits connections until it is shut, and Wait waits for
// the last one to leave, looking at the others in the meantime.
// internal/h1server and internal/h2server share it.
package conntrack

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pollInterval bounds how long Wait goes without looking at the
// connections left, when none leaves.
const pollInterval = 50 * time.Millisecond

// A Set holds a server's open connections, of type C (a pointer to the
// server's connection state). The zero Set is empty and open. A Set must
// not be copied after first use.
type Set[C comparable] struct {
	shut  atomic.Bool
	mu    sync.Mutex
	conns map[C]struct{}
	gone  chan struct{} // a connection left while Wait waits
}

// Add adds c, unless the set is shut: then it reports false, and the
// caller closes c.
func (s *Set[C]) Add(c C) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[C]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

// Remove removes c, if it is there, and wakes Wait.
func (s *Set[C]) Remove(c C) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	if s.gone != nil {
		select {
		case s.gone <- struct{}{}:
		default:
		}
	}
}

// Shut makes Add fail from now on and, if f is not nil, calls it for each
// connection held (with the set locked: f must not call its methods).
func (s *Set[C]) Shut(f func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shut.Store(true)
	if f != nil {
		for c := range s.conns {
			f(c)
		}
	}
}

// IsShut reports whether Shut was called.
func (s *Set[C]) IsShut() bool { return s.shut.Load() }

// Len returns the number of connections held.
func (s *Set[C]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Each calls f for each connection held, with the set locked (f must not
// call its methods).
func (s *Set[C]) Each(f func(C)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		f(c)
	}
}

// Wait returns nil once no connection is left, or ctx's error when ctx
// ends first. Each time it looks (when a connection leaves, and at least
// every 50ms) it first calls sweep, if not nil, for each connection held,
// with the set locked: to close those that have become idle, say.
func (s *Set[C]) Wait(ctx context.Context, sweep func(C)) error {
	s.mu.Lock()
	if s.gone == nil {
		s.gone = make(chan struct{}, 1)
	}
	gone := s.gone
	s.mu.Unlock()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		s.mu.Lock()
		if sweep != nil {
			for c := range s.conns {
				sweep(c)
			}
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-gone:
		case <-poll.C:
		}
	}
}
