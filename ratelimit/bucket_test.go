package ratelimit

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// step advances the clock, then tries to take one token take times.
type step struct {
	advance time.Duration
	take    int
}

// outcome is what a step saw: how many tokens were granted and the
// retry-after reported by the first refusal (0 if none was refused).
type outcome struct {
	Allowed int
	Retry   time.Duration
}

func TestBucketExactCounts(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
		want  []outcome
	}{
		{
			name: "full at start then refill one per interval",
			rate: 10, burst: 5,
			steps: []step{
				{0, 7},
				{100 * time.Millisecond, 2},
				{250 * time.Millisecond, 3},
				{50 * time.Millisecond, 1},
				{99 * time.Millisecond, 1},
				{time.Millisecond, 1},
			},
			want: []outcome{
				{5, 100 * time.Millisecond},
				{1, 100 * time.Millisecond},
				{2, 50 * time.Millisecond},
				{1, 0},
				{0, time.Millisecond},
				{1, 0},
			},
		},
		{
			name: "refill stops at burst",
			rate: 10, burst: 5,
			steps: []step{{0, 5}, {time.Hour, 8}, {time.Second, 20}},
			want:  []outcome{{5, 0}, {5, 100 * time.Millisecond}, {5, 100 * time.Millisecond}},
		},
		{
			name: "slower than one per second",
			rate: 0.5, burst: 1,
			steps: []step{{0, 2}, {time.Second, 1}, {time.Second, 2}, {3 * time.Second, 1}},
			want:  []outcome{{1, 2 * time.Second}, {0, time.Second}, {1, 2 * time.Second}, {1, 0}},
		},
		{
			name: "interval rounded to the nanosecond",
			rate: 3, burst: 3,
			steps: []step{{0, 3}, {time.Second, 4}, {time.Second / 3, 1}, {time.Minute, 200}},
			want:  []outcome{{3, 0}, {3, 333333333}, {1, 0}, {3, 333333333}},
		},
		{
			name: "burst of one is a strict rate",
			rate: 1000, burst: 1,
			steps: []step{{0, 3}, {500 * time.Microsecond, 1}, {500 * time.Microsecond, 1}, {10 * time.Millisecond, 2}},
			want:  []outcome{{1, time.Millisecond}, {0, 500 * time.Microsecond}, {1, 0}, {1, time.Millisecond}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			b, err := NewBucket(BucketOptions{Rate: tt.rate, Burst: tt.burst, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			var got []outcome
			for _, s := range tt.steps {
				clk.Advance(s.advance)
				var o outcome
				for range s.take {
					ok, retry := b.Take()
					if ok {
						o.Allowed++
					} else if o.Retry == 0 {
						o.Retry = retry
					}
				}
				got = append(got, o)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBucketTakeN(t *testing.T) {
	clk := newFakeClock()
	b, err := NewBucket(BucketOptions{Rate: 10, Burst: 5, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	type result struct {
		OK     bool
		Retry  time.Duration
		Tokens float64
	}
	var got []result
	take := func(at time.Time, n int) {
		ok, retry := b.TakeN(at, n)
		s := b.cur.Load()
		got = append(got, result{ok, retry, s.lim.tokens(s.tat.Load(), at.Sub(b.epoch).Nanoseconds())})
	}
	take(now, 3)                                       // 5 -> 2
	take(now, 3)                                       // refused whole, 1 token short
	take(now, 0)                                       // always allowed, takes nothing
	take(now, -1)                                      // likewise
	take(now, 6)                                       // more than burst: never
	take(now.Add(100*time.Millisecond), 3)             // 3 -> 0
	take(now.Add(150*time.Millisecond), 1)             // 0.5 tokens: refused
	take(now.Add(-time.Second), 1)                     // time moved back: no refill, refused
	take(now.Add(time.Second+100*time.Millisecond), 5) // refilled to 5 (capped)
	want := []result{
		{true, 0, 2},
		{false, 100 * time.Millisecond, 2},
		{true, 0, 2},
		{true, 0, 2},
		{false, InfDuration, 2},
		{true, 0, 0},
		{false, 50 * time.Millisecond, 0.5},
		{false, 1200 * time.Millisecond, 0},
		{true, 0, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TakeN results (-want +got):\n%s", diff)
	}
	if !b.AllowN(now.Add(time.Hour), 5) || b.AllowN(now.Add(time.Hour), 1) {
		t.Errorf("AllowN after an hour: want 5 granted then 1 refused")
	}
}

func TestBucketTokensAndAccessors(t *testing.T) {
	clk := newFakeClock()
	b, err := NewBucket(BucketOptions{Rate: 4, Burst: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	got = append(got, b.Tokens())
	b.Allow()
	b.Allow()
	got = append(got, b.Tokens())
	clk.Advance(125 * time.Millisecond)
	got = append(got, b.Tokens())
	clk.Advance(time.Second)
	got = append(got, b.Tokens())
	if diff := cmp.Diff([]float64{2, 0, 0.5, 2}, got); diff != "" {
		t.Errorf("Tokens (-want +got):\n%s", diff)
	}
	if b.Burst() != 2 || b.Interval() != 250*time.Millisecond {
		t.Errorf("Burst, Interval = %d, %v; want 2, 250ms", b.Burst(), b.Interval())
	}
}

func TestBucketRealClock(t *testing.T) {
	b, err := NewBucket(BucketOptions{Rate: 1, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range 10 {
		if b.Allow() {
			got++
		}
	}
	// One token per second: a slow machine may add at most one more.
	if got < 3 || got > 4 {
		t.Errorf("allowed %d of 10 immediately; want 3 (or 4 on a slow run)", got)
	}
}

func TestNewBucketErrors(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		field string
	}{
		{"zero rate", 0, 1, "Rate"},
		{"negative rate", -1, 1, "Rate"},
		{"NaN rate", nan(), 1, "Rate"},
		{"infinite rate", inf(), 1, "Rate"},
		{"faster than a token per nanosecond", 3e9, 1, "Rate"},
		{"zero burst", 1, 0, "Burst"},
		{"negative burst", 1, -4, "Burst"},
		{"refill time overflows", 1e-12, 1 << 30, "Burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBucket(BucketOptions{Rate: tt.rate, Burst: tt.burst})
			if !errors.Is(err, ErrInvalidLimit) {
				t.Fatalf("NewBucket(BucketOptions{Rate: %v, Burst: %d}) = %v, %v; want ErrInvalidLimit", tt.rate, tt.burst, b, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("error %q does not name field %s", err, tt.field)
			}
		})
	}
	if _, err := NewBucket(BucketOptions{Rate: 2e9, Burst: 1}); err != nil {
		t.Errorf("NewBucket(BucketOptions{Rate: 2e9, Burst: 1}): %v; want a 1ns interval", err)
	}
}

func TestBucketConcurrent(t *testing.T) {
	clk := newFakeClock()
	const rate, burst = 1000, 50
	b, err := NewBucket(BucketOptions{Rate: rate, Burst: burst, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int64
	hammer := func(workers, tries int) {
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range tries {
					if b.Allow() {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}
	// With the clock frozen, exactly the burst is granted however the
	// goroutines interleave.
	hammer(8, 500)
	if got := allowed.Load(); got != burst {
		t.Fatalf("frozen clock: allowed %d; want %d", got, burst)
	}
	// With the clock moving concurrently, never more than burst plus what
	// the elapsed time refilled.
	allowed.Store(0)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			clk.Advance(100 * time.Microsecond) // 0.1 token each
		}
	})
	hammer(8, 500)
	wg.Wait()
	clk.Advance(time.Second) // refill completely, then drain
	for b.Allow() {
		allowed.Add(1)
	}
	// 20 ms of refill (20 tokens) plus the second's refill capped at burst.
	if got := allowed.Load(); got > 20+burst {
		t.Errorf("moving clock: allowed %d; want at most %d", got, 20+burst)
	}
}

func nan() float64 { var z float64; return z / z }
func inf() float64 { var z float64; return 1 / z }
