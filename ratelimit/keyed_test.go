package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newTestKeyed(t testing.TB, cfg KeyedOptions) *Keyed {
	t.Helper()
	k, err := NewKeyed(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// drain takes tokens for key until refused and reports how many it got.
func drain(k *Keyed, key string) int {
	n := 0
	for k.Allow(key) {
		n++
	}
	return n
}

func TestKeyedIndependentKeys(t *testing.T) {
	clk := newFakeClock()
	k := newTestKeyed(t, KeyedOptions{Rate: 10, Burst: 3, Now: clk.Now})
	type got struct{ A, B int }
	var g []got
	g = append(g, got{drain(k, "a"), 0})
	g = append(g, got{drain(k, "a"), drain(k, "b")})
	clk.Advance(200 * time.Millisecond)
	g = append(g, got{drain(k, "a"), drain(k, "b")})
	clk.Advance(time.Minute)
	g = append(g, got{drain(k, "a"), 0})
	want := []got{{3, 0}, {0, 3}, {2, 2}, {3, 0}}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("tokens per key (-want +got):\n%s", diff)
	}
	ok, retry := k.Take("a")
	if ok || retry != 100*time.Millisecond {
		t.Errorf("Take on drained key = %v, %v; want false, 100ms", ok, retry)
	}
	ok, retry = k.TakeN("c", clk.Now(), 4)
	if ok || retry != InfDuration {
		t.Errorf("TakeN beyond burst = %v, %v; want false, InfDuration", ok, retry)
	}
}

func TestKeyedEvictsLeastRecentlyUsed(t *testing.T) {
	tests := []struct {
		name string
		ops  []string // "key" takes one token; "+d" advances the clock by d
		// tokens held afterwards by each key, and the keys remembered
		want map[string]float64
		len  int
	}{
		{
			name: "new key at the bound forgets the oldest",
			ops:  []string{"a", "a", "b", "c"},
			want: map[string]float64{"a": 2, "b": 1, "c": 1},
			len:  2,
		},
		{
			name: "a use moves a key to the front",
			ops:  []string{"a", "a", "b", "a", "c"},
			want: map[string]float64{"a": 0, "b": 2, "c": 1},
			len:  2,
		},
		{
			name: "a refused request is a use too",
			ops:  []string{"a", "a", "b", "a", "a", "c"},
			want: map[string]float64{"a": 0, "b": 2, "c": 1},
			len:  2,
		},
		{
			name: "forgetting an idle key loses nothing",
			ops:  []string{"a", "a", "b", "+1s", "c", "a"},
			want: map[string]float64{"a": 1, "b": 2, "c": 1},
			len:  2,
		},
		{
			name: "a forgotten key comes back with at most burst",
			ops:  []string{"a", "a", "b", "c", "a", "a", "a"},
			want: map[string]float64{"a": 0, "b": 2, "c": 1},
			len:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			k := newTestKeyed(t, KeyedOptions{Rate: 2, Burst: 2, MaxKeys: 2, Now: clk.Now})
			for _, op := range tt.ops {
				if d, ok := strings.CutPrefix(op, "+"); ok {
					dur, err := time.ParseDuration(d)
					if err != nil {
						t.Fatal(err)
					}
					clk.Advance(dur)
					continue
				}
				k.Allow(op)
			}
			got := map[string]float64{}
			for key := range tt.want {
				got[key] = k.Tokens(key)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
			if n := k.Len(); n != tt.len {
				t.Errorf("Len = %d; want %d", n, tt.len)
			}
		})
	}
}

func TestKeyedBound(t *testing.T) {
	for _, maxKeys := range []int{1, 3, 127, 128, 1000, 4099} {
		t.Run(strconv.Itoa(maxKeys), func(t *testing.T) {
			clk := newFakeClock()
			k := newTestKeyed(t, KeyedOptions{Rate: 1, Burst: 5, MaxKeys: maxKeys, Now: clk.Now})
			if got := k.MaxKeys(); got != maxKeys {
				t.Errorf("MaxKeys() = %d; want %d", got, maxKeys)
			}
			// A flood of distinct keys fills every shard and stops there.
			for i := range 30 * maxKeys {
				if !k.Allow(strconv.Itoa(i)) {
					t.Fatalf("new key %d refused", i)
				}
			}
			if got := k.Len(); got != maxKeys {
				t.Errorf("Len after flood = %d; want %d", got, maxKeys)
			}
			checkShards(t, k)
		})
	}
	k := newTestKeyed(t, KeyedOptions{Rate: 1, Burst: 1})
	if got := k.MaxKeys(); got != DefaultMaxKeys {
		t.Errorf("zero MaxKeys: MaxKeys() = %d; want %d", got, DefaultMaxKeys)
	}
	if got := len(k.shards); got != maxShards {
		t.Errorf("default limiter has %d shards; want %d", got, maxShards)
	}
}

// checkShards verifies that every shard's LRU list and map agree.
func checkShards(t *testing.T, k *Keyed) {
	t.Helper()
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n := 0
		for e := s.root.next; e != &s.root; e = e.next {
			if e.next.prev != e {
				t.Errorf("shard %d: broken list at %q", i, e.key)
			}
			if s.m[e.key] != e {
				t.Errorf("shard %d: listed key %q not mapped to its entry", i, e.key)
			}
			n++
			if n > s.cap {
				break
			}
		}
		if n != len(s.m) || n > s.cap {
			t.Errorf("shard %d: %d listed, %d mapped, cap %d", i, n, len(s.m), s.cap)
		}
		s.mu.Unlock()
	}
}

func TestNewKeyedErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   KeyedOptions
		field string
	}{
		{"zero config", KeyedOptions{}, "Rate"},
		{"zero burst", KeyedOptions{Rate: 1}, "Burst"},
		{"negative MaxKeys", KeyedOptions{Rate: 1, Burst: 1, MaxKeys: -1}, "MaxKeys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKeyed(tt.cfg)
			if !errors.Is(err, ErrInvalidLimit) || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("NewKeyed(%+v) error = %v; want ErrInvalidLimit naming %s", tt.cfg, err, tt.field)
			}
		})
	}
}

func TestKeyedNoAllocForKnownKey(t *testing.T) {
	k := newTestKeyed(t, KeyedOptions{Rate: 1e6, Burst: 10, Now: newFakeClock().Now})
	key := "203.0.113.7"
	k.Allow(key)
	if n := testing.AllocsPerRun(1000, func() { k.Take(key) }); n != 0 {
		t.Errorf("Take on a known key allocates %v times; want 0", n)
	}
}

func TestKeyedConcurrent(t *testing.T) {
	clk := newFakeClock()
	const burst, keys = 20, 50
	k := newTestKeyed(t, KeyedOptions{Rate: 100, Burst: burst, MaxKeys: 200, Now: clk.Now})
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			local := map[string]int{}
			for i := range 400 {
				key := fmt.Sprint("k", (i+w)%keys)
				if k.Allow(key) {
					local[key]++
				}
			}
			mu.Lock()
			for key, n := range local {
				allowed[key] += n
			}
			mu.Unlock()
		})
	}
	// Meanwhile, other goroutines churn a second limiter far past its bound.
	churn := newTestKeyed(t, KeyedOptions{Rate: 1, Burst: 1, MaxKeys: 300, Now: clk.Now})
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				churn.Allow(fmt.Sprint(w, "/", i%700))
			}
		})
	}
	wg.Wait()
	// The clock never moved: every key got exactly its burst.
	for i := range keys {
		key := fmt.Sprint("k", i)
		if allowed[key] != burst {
			t.Errorf("key %s: allowed %d; want %d", key, allowed[key], burst)
		}
	}
	if n := churn.Len(); n != 300 {
		t.Errorf("churned limiter holds %d keys; want 300", n)
	}
	checkShards(t, k)
	checkShards(t, churn)
}
