package maglev

import (
	"fmt"
	"testing"
)

// refInput is the input of the reference vectors: n bytes b[i] = i*7+3.
func refInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// TestXXH64Vectors checks xxh64 against XXH64 values computed by an
// independent implementation, covering every code path: the 32-byte stripes,
// the 8-byte and 4-byte tails and single bytes, with seeds 0 and 1.
func TestXXH64Vectors(t *testing.T) {
	tests := []struct {
		n    int
		seed uint64
		want uint64
	}{
		{0, 0, 0xef46db3751d8e999},
		{1, 0, 0x1f25c8d0bc1f4bb6},
		{3, 0, 0x31d2363f52e564c9},
		{4, 0, 0x9bb64b7d66ee9fda},
		{7, 0, 0x9a7b149959ce60d8},
		{8, 0, 0xdab99d95c6f90092},
		{9, 0, 0x170bb6bf975b4c02},
		{15, 0, 0x1b47cb8243cc8e32},
		{16, 0, 0x434850232b787be2},
		{31, 0, 0xa2aa5f33cc4a6119},
		{32, 0, 0x23c3c17ef790fd97},
		{33, 0, 0x50a7cfc7ba588784},
		{63, 0, 0x5e3e54b431c7493c},
		{64, 0, 0x0eb64b3ef6eeb01f},
		{100, 0, 0xa61f8d4c170fe531},
		{257, 0, 0xb7b604f7e4f822fa},
		{0, 1, 0xd5afba1336a3be4b},
		{5, 1, 0x89c1d7fbeb0222bf},
		{40, 1, 0x8c15d7af4fd7bc9f},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("n=%d/seed=%d", tt.n, tt.seed), func(t *testing.T) {
			in := refInput(tt.n)
			if got := xxh64(in, tt.seed); got != tt.want {
				t.Errorf("xxh64(bytes) = %#016x, want %#016x", got, tt.want)
			}
			if got := xxh64(string(in), tt.seed); got != tt.want {
				t.Errorf("xxh64(string) = %#016x, want %#016x", got, tt.want)
			}
		})
	}
	if got, want := HashString("abc"), uint64(0x44bc2cf5ad770999); got != want {
		t.Errorf(`HashString("abc") = %#016x, want %#016x`, got, want)
	}
}

func FuzzHashStringBytesAgree(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("10.0.0.1:443"))
	f.Add(refInput(70))
	f.Fuzz(func(t *testing.T, b []byte) {
		if hs, hb := HashString(string(b)), HashBytes(b); hs != hb {
			t.Fatalf("HashString = %#x, HashBytes = %#x", hs, hb)
		}
	})
}

func TestHashAllocs(t *testing.T) {
	s := "2001:db8::1:54321"
	b := []byte(s)
	var sink uint64
	if n := testing.AllocsPerRun(100, func() { sink += HashString(s) + HashBytes(b) }); n != 0 {
		t.Errorf("hashing allocates %v times per call, want 0", n)
	}
	_ = sink
}

func BenchmarkHashString(b *testing.B) {
	for _, n := range []int{15, 64} {
		s := string(refInput(n))
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			var sink uint64
			for b.Loop() {
				sink += HashString(s)
			}
			_ = sink
		})
	}
}
