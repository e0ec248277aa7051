package h1server

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestReqContext(t *testing.T) {
	var x reqContext
	if x.observed.Load() {
		t.Fatal("observed before use")
	}
	var ran atomic.Int32
	stop1 := x.AfterFunc(func() { ran.Add(1) })
	stop2 := x.AfterFunc(func() { ran.Add(10) })
	if !stop1() || stop1() {
		t.Error("stop before cancel: want true, then false")
	}
	done := x.Done()
	if !x.observed.Load() {
		t.Error("Done does not mark the context observed")
	}
	if x.Err() != nil {
		t.Error("Err before cancel")
	}
	if !x.cancel() || x.cancel() {
		t.Error("cancel: want true, then false")
	}
	select {
	case <-done:
	default:
		t.Fatal("Done not closed")
	}
	if ran.Load() != 10 || stop2() {
		t.Errorf("ran %d; stop after cancel must report false", ran.Load())
	}
	if !errors.Is(x.Err(), context.Canceled) {
		t.Errorf("Err %v", x.Err())
	}
	late := make(chan struct{})
	if x.AfterFunc(func() { close(late) })() {
		t.Error("stop of a function registered after cancel")
	}
	<-late

	// The next request gets a fresh context; stale stop functions do
	// nothing.
	x.finish()
	if x.Err() != nil {
		t.Fatal("finish did not reset")
	}
	stop3 := x.AfterFunc(func() { ran.Add(100) })
	x.finish()
	if x.Err() != nil || x.observed.Load() {
		t.Fatal("finish did not reset")
	}
	if stop3() {
		t.Error("stale stop function reported success")
	}
	if ran.Load() != 110 {
		t.Errorf("ran %d: finish must run what the ended request registered", ran.Load())
	}
	if d := x.Done(); d == done {
		t.Error("Done channel reused")
	}
	if dl, ok := x.Deadline(); ok || !dl.IsZero() {
		t.Error("deadline")
	}
	if x.Value("other") != nil || x.String() == "" {
		t.Error("Value or String")
	}
}

// TestReqContextDerived checks that contexts derived from a request's
// context are cancelled through AfterFunc, without a watching goroutine.
func TestReqContextDerived(t *testing.T) {
	var x reqContext
	ctx, cancel := context.WithCancel(&x)
	defer cancel()
	tctx, tcancel := context.WithTimeout(&x, time.Hour)
	defer tcancel()
	x.mu.Lock()
	n := len(x.funcs)
	x.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d registrations, want 2 (one per derived context)", n)
	}
	x.finish()
	for _, c := range []context.Context{ctx, tctx} {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("derived context not cancelled")
		}
	}
	if context.Cause(ctx) != context.Canceled {
		t.Errorf("cause %v", context.Cause(ctx))
	}
	if x.Value(http.LocalAddrContextKey) != nil {
		t.Error("local address without a connection")
	}
}
