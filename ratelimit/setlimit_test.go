package ratelimit

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBucketSetLimit(t *testing.T) {
	clk := newFakeClock()
	b, err := NewBucket(BucketOptions{Rate: 10, Burst: 9, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for range 3 {
		b.Allow()
	}
	got = append(got, b.Tokens()) // 6
	if err := b.SetLimit(1, 3); err != nil {
		t.Fatal(err)
	}
	got = append(got, b.Tokens()) // capped at the new burst
	b.Allow()
	b.Allow()
	got = append(got, b.Tokens()) // 1
	clk.Advance(500 * time.Millisecond)
	got = append(got, b.Tokens()) // refills at the new rate
	if err := b.SetLimit(10, 9); err != nil {
		t.Fatal(err)
	}
	got = append(got, b.Tokens()) // kept as it was
	clk.Advance(time.Second)
	got = append(got, b.Tokens()) // full at the old size again
	if diff := cmp.Diff([]float64{6, 3, 1, 1.5, 1.5, 9}, got); diff != "" {
		t.Errorf("Tokens (-want +got):\n%s", diff)
	}
	if b.Burst() != 9 || b.Interval() != 100*time.Millisecond {
		t.Errorf("Burst, Interval = %d, %v; want 9, 100ms", b.Burst(), b.Interval())
	}
	if err := b.SetLimit(0, 1); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("SetLimit(0, 1) = %v; want ErrInvalidLimit", err)
	}
}

func TestBucketSetLimitConcurrent(t *testing.T) {
	clk := newFakeClock()
	b, err := NewBucket(BucketOptions{Rate: 1000, Burst: 100, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// With the clock frozen, no interleaving of takes and limit changes
	// admits more than the largest burst the bucket ever had.
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				if b.Allow() {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			b.SetLimit(1000, 100-i)
		}
	})
	wg.Wait()
	if got := allowed.Load(); got > 100 {
		t.Errorf("allowed %d with a frozen clock; want at most 100", got)
	}
}

func TestBucketRefund(t *testing.T) {
	clk := newFakeClock()
	b, err := NewBucket(BucketOptions{Rate: 1, Burst: 2, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	b.Allow()
	b.Allow()
	b.Refund(1)
	b.Refund(0)
	b.Refund(-3)
	if got := b.Tokens(); got != 1 {
		t.Errorf("after a refund: %v tokens; want 1", got)
	}
	b.Refund(5)
	if got := b.Tokens(); got != 2 {
		t.Errorf("after refunding more than was taken: %v tokens; want the burst, 2", got)
	}
	if !b.Allow() || !b.Allow() || b.Allow() {
		t.Errorf("a bucket refunded past full admits more than its burst")
	}
}

func TestKeyedSetLimitAndRefund(t *testing.T) {
	clk := newFakeClock()
	k := newTestKeyed(t, KeyedOptions{Rate: 10, Burst: 10, MaxKeys: 1000, Now: clk.Now})
	for range 4 {
		k.Allow("a")
	}
	k.Allow("b")
	k.Refund("b", 1)
	k.Refund("unknown", 1)
	if err := k.SetLimit(2, 4); err != nil {
		t.Fatal(err)
	}
	got := []float64{k.Tokens("a"), k.Tokens("b"), k.Tokens("new")}
	clk.Advance(time.Second)
	got = append(got, k.Tokens("a"))
	if diff := cmp.Diff([]float64{4, 4, 4, 4}, got); diff != "" {
		t.Errorf("Tokens (-want +got):\n%s", diff)
	}
	for range 4 {
		k.Allow("a")
	}
	if k.Allow("a") {
		t.Errorf("key a admitted more than the new burst")
	}
	clk.Advance(500 * time.Millisecond)
	if !k.Allow("a") || k.Allow("a") {
		t.Errorf("key a does not refill at the new rate (one token per 500ms)")
	}
	if k.Len() != 2 {
		t.Errorf("Len = %d; want 2 (refunds and SetLimit remember no key)", k.Len())
	}
	if err := k.SetLimit(1, 0); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("SetLimit(1, 0) = %v; want ErrInvalidLimit", err)
	}
}
