package h1server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// reqContext is the context of the requests of one connection. The same
// value serves every request of the connection in turn (so that a request
// costs no context allocation): it is cancelled when the handler returns,
// when the client is seen to go away, or when a read or write on the
// connection fails, and reset before the next request.
//
// A Done channel is made only when asked for, and closed on cancellation;
// the next request gets a new one. Functions registered by context.AfterFunc
// (and contexts derived with context.WithCancel and friends, which register
// through the AfterFunc method, so no goroutine watches them) run on
// cancellation. Values are the connection's: http.LocalAddrContextKey.
type reqContext struct {
	local net.Addr

	observed atomic.Bool // Done or AfterFunc was called during this request

	mu     sync.Mutex
	done   chan struct{}
	err    error
	gen    uint64
	nextID uint64
	funcs  []afterFunc
}

type afterFunc struct {
	id uint64
	f  func()
}

// Deadline reports no deadline.
func (x *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns a channel closed when the request is cancelled.
func (x *reqContext) Done() <-chan struct{} {
	x.observed.Store(true)
	x.mu.Lock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		}
	}
	d := x.done
	x.mu.Unlock()
	return d
}

// Err returns context.Canceled once the request is cancelled.
func (x *reqContext) Err() error {
	x.mu.Lock()
	err := x.err
	x.mu.Unlock()
	return err
}

// Value returns the connection's local address for
// http.LocalAddrContextKey, and nil for any other key.
func (x *reqContext) Value(key any) any {
	if key == http.LocalAddrContextKey {
		return x.local
	}
	return nil
}

// AfterFunc arranges for f to run when the request is cancelled, and
// returns a function that unregisters it. It makes the context usable by
// context.AfterFunc and context.WithCancel without a watching goroutine.
// f is called synchronously on cancellation; context.AfterFunc wraps user
// functions in their own goroutine.
func (x *reqContext) AfterFunc(f func()) func() bool {
	x.observed.Store(true)
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	x.nextID++
	id, gen := x.nextID, x.gen
	x.funcs = append(x.funcs, afterFunc{id: id, f: f})
	x.mu.Unlock()
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.gen != gen || x.err != nil {
			return false
		}
		for i, af := range x.funcs {
			if af.id == id {
				x.funcs = append(x.funcs[:i], x.funcs[i+1:]...)
				x.funcs[len(x.funcs):cap(x.funcs)][0] = afterFunc{}
				return true
			}
		}
		return false
	}
}

// String names the context in the way context package values do.
func (x *reqContext) String() string { return "h1server.requestContext" }

// cancel cancels the current request's context. It reports whether this
// call did it.
func (x *reqContext) cancel() bool {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return false
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
	funcs := x.funcs
	x.mu.Unlock()
	for _, af := range funcs {
		af.f()
	}
	return true
}

// finish cancels the context of the request that just ended and makes it
// ready for the next one.
func (x *reqContext) finish() {
	if x.observed.Load() {
		x.cancel()
	}
	x.mu.Lock()
	x.done = nil
	x.err = nil
	x.gen++
	clear(x.funcs)
	x.funcs = x.funcs[:0]
	x.mu.Unlock()
	x.observed.Store(false)
}
