package ratelimit

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// modelLimiter is a plain reference for a single-shard Keyed limiter: each
// key holds credit in nanoseconds (a token costs one interval of credit) and
// the keys sit in a slice, most recently used first.
type modelLimiter struct {
	interval, tau int64
	burst, max    int
	keys          []string
	credit        map[string]int64
	last          map[string]int64
}

func (m *modelLimiter) take(key string, t int64, n int) (bool, time.Duration) {
	if i := slices.Index(m.keys, key); i >= 0 {
		m.keys = slices.Delete(m.keys, i, i+1)
	} else {
		if len(m.keys) == m.max {
			old := m.keys[len(m.keys)-1]
			m.keys = m.keys[:len(m.keys)-1]
			delete(m.credit, old)
			delete(m.last, old)
		}
		m.credit[key], m.last[key] = m.tau, t
	}
	m.keys = slices.Insert(m.keys, 0, key)
	m.credit[key] = min(m.tau, m.credit[key]+t-m.last[key])
	m.last[key] = t
	switch {
	case n <= 0:
		return true, 0
	case n > m.burst:
		return false, InfDuration
	}
	cost := int64(n) * m.interval
	if have := m.credit[key]; have < cost {
		return false, time.Duration(cost - have)
	}
	m.credit[key] -= cost
	return true, 0
}

// FuzzKeyedModel drives a Keyed limiter with arbitrary keys and forward clock
// moves and checks every decision and retry-after against modelLimiter.
func FuzzKeyedModel(f *testing.F) {
	f.Add(byte(3), byte(2), []byte{0, 0, 0, 1, 2, 0x85, 0, 8, 16, 3})
	f.Add(byte(1), byte(1), []byte{0, 1, 0, 0x81, 0, 0xff, 1, 9})
	// Ops 16..23 take one token from k0..k7.
	f.Add(byte(1), byte(2), []byte{16, 16, 17, 18, 16, 16, 16, 16, 0x8e, 16, 17, 40, 33})
	f.Add(byte(8), byte(4), []byte{0, 1, 2, 3, 4, 5, 6, 7, 0x90, 7, 6, 5, 0xc0, 24, 25})
	f.Fuzz(func(t *testing.T, maxKeys, burst byte, ops []byte) {
		maxKeys = maxKeys%8 + 1
		burst = burst%4 + 1
		clk := newFakeClock()
		k, err := NewKeyed(KeyedOptions{Rate: 10, Burst: int(burst), MaxKeys: int(maxKeys), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		m := &modelLimiter{
			interval: int64(100 * time.Millisecond), tau: int64(burst) * int64(100*time.Millisecond),
			burst: int(burst), max: int(maxKeys),
			credit: map[string]int64{}, last: map[string]int64{},
		}
		start := clk.Now()
		for i, op := range ops {
			if op&0x80 != 0 {
				// Move the clock forward by 0..127 steps of 7ms.
				clk.Advance(time.Duration(op&0x7f) * 7 * time.Millisecond)
				continue
			}
			key := "k" + strconv.Itoa(int(op&7))
			n := int(op>>3&7) - 1 // -1..6
			now := clk.Now()
			gotOK, gotRetry := k.TakeN(key, now, n)
			wantOK, wantRetry := m.take(key, now.Sub(start).Nanoseconds(), n)
			if gotOK != wantOK || gotRetry != wantRetry {
				t.Fatalf("op %d: TakeN(%q, %d) = %v, %v; model says %v, %v", i, key, n, gotOK, gotRetry, wantOK, wantRetry)
			}
			if k.Len() != len(m.keys) {
				t.Fatalf("op %d: Len = %d; model holds %d", i, k.Len(), len(m.keys))
			}
		}
		checkShards(t, k)
	})
}
