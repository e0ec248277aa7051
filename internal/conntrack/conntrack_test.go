package conntrack

import (
	"context"
	"errors"
	"testing"
	"time"
)

type conn struct{ idle, closed bool }

// TestSet checks admission before and after Shut, and that Wait returns
// once the last connection leaves, sweeping those left, or when its
// context ends.
func TestSet(t *testing.T) {
	var s Set[*conn]
	a, b := &conn{}, &conn{idle: true}
	if !s.Add(a) || !s.Add(b) || s.Len() != 2 {
		t.Fatalf("Add before Shut: len %d", s.Len())
	}
	shutSeen := 0
	s.Shut(func(*conn) { shutSeen++ })
	if shutSeen != 2 || !s.IsShut() {
		t.Errorf("Shut called f %d times, IsShut %v", shutSeen, s.IsShut())
	}
	if s.Add(&conn{}) {
		t.Error("Add after Shut succeeded")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with connections left: %v, want the context's error", err)
	}

	// The sweep closes idle connections, which then leave; the others
	// leave on their own.
	done := make(chan error, 1)
	go func() {
		done <- s.Wait(context.Background(), func(c *conn) {
			if c.idle && !c.closed {
				c.closed = true
				go s.Remove(c)
			}
		})
	}()
	time.Sleep(20 * time.Millisecond)
	s.Remove(a)
	s.Remove(a) // twice is harmless
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the last connection left")
	}
	if !b.closed || s.Len() != 0 {
		t.Errorf("idle connection closed %v, %d left", b.closed, s.Len())
	}
}
