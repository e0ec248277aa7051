package breaker

import (
	"testing"
	"time"
)

func BenchmarkClosed(b *testing.B) {
	br, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		t, _ := br.Allow()
		br.Done(t, true)
	}
}

// BenchmarkClosedParallel is the proxy's fast path: Allow and Done with a
// success, from every P at once.
func BenchmarkClosedParallel(b *testing.B) {
	br, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, _ := br.Allow()
			br.Done(t, true)
		}
	})
}

// BenchmarkClosedParallelDoneAt is the fast path for a caller that already
// read the clock (to measure latency): it excludes the clock read.
func BenchmarkClosedParallelDoneAt(b *testing.B) {
	br, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, _ := br.Allow()
			br.DoneAt(t, true, now)
		}
	})
}

// BenchmarkClosedParallelWithFailures reports one failure in ten, below
// the threshold, so each failure also sums the window.
func BenchmarkClosedParallelWithFailures(b *testing.B) {
	br, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			t, _ := br.Allow()
			br.Done(t, i%10 != 0)
			i++
		}
	})
}

// BenchmarkOpenParallel is the refusal path of an open breaker.
func BenchmarkOpenParallel(b *testing.B) {
	br, err := New(Options{MinRequests: 1, OpenTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	t, _ := br.Allow()
	br.Done(t, false)
	if br.State() != Open {
		b.Fatalf("state %v; want open", br.State())
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			br.Allow()
		}
	})
}
