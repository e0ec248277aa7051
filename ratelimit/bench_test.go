package ratelimit

import (
	"strconv"
	"sync/atomic"
	"testing"
)

func BenchmarkBucketAllow(b *testing.B) {
	bk, err := NewBucket(BucketOptions{Rate: 1e9, Burst: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		bk.Allow()
	}
}

func BenchmarkBucketAllowParallel(b *testing.B) {
	bk, err := NewBucket(BucketOptions{Rate: 1e9, Burst: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bk.Allow()
		}
	})
}

func BenchmarkKeyedOneKeyParallel(b *testing.B) {
	k, err := NewKeyed(KeyedOptions{Rate: 1e6, Burst: 100})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k.Take("203.0.113.7")
		}
	})
}

// benchKeys returns n distinct client-address-like keys.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return keys
}

func BenchmarkKeyedManyKeysParallel(b *testing.B) {
	keys := benchKeys(8192)
	k, err := NewKeyed(KeyedOptions{Rate: 1e6, Burst: 100, MaxKeys: 16384})
	if err != nil {
		b.Fatal(err)
	}
	for _, key := range keys {
		k.Take(key)
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			k.Take(keys[i%len(keys)])
			i++
		}
	})
}

// BenchmarkKeyedFloodParallel cycles through four times more keys than the
// limiter remembers, so every call forgets one key and admits another.
func BenchmarkKeyedFloodParallel(b *testing.B) {
	keys := benchKeys(40000)
	k, err := NewKeyed(KeyedOptions{Rate: 1, Burst: 1, MaxKeys: 10000})
	if err != nil {
		b.Fatal(err)
	}
	for _, key := range keys {
		k.Take(key)
	}
	var next atomic.Uint32
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			k.Take(keys[i%len(keys)])
			i++
		}
	})
}
