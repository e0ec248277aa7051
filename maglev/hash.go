package maglev

import "math/bits"

// The five 64-bit primes of the XXH64 specification.
const (
	xxPrime1 uint64 = 0x9E3779B185EBCA87
	xxPrime2 uint64 = 0xC2B2AE3D27D4EB4F
	xxPrime3 uint64 = 0x165667B19E3779F9
	xxPrime4 uint64 = 0x85EBCA77C2B2AE63
	xxPrime5 uint64 = 0x27D4EB2F165667C5
)

// Seeds of the two independent hashes of a backend name.
const (
	offsetSeed uint64 = 0
	skipSeed   uint64 = 1
)

// HashString returns the 64-bit hash of s that [Table.Pick] expects for a
// request key such as a client address or a header value.
//
// The hash is XXH64 with seed 0, as specified by the xxHash project, so it is
// the same in every process, on every machine and in every language that
// implements XXH64. It does not allocate.
func HashString(s string) uint64 {
	return xxh64(s, 0)
}

// HashBytes returns the same hash as [HashString] for the bytes of b.
func HashBytes(b []byte) uint64 {
	return xxh64(b, 0)
}

// xxh64 is XXH64 of b with the given seed.
func xxh64[T string | []byte](b T, seed uint64) uint64 {
	n := len(b)
	i := 0
	var h uint64
	if n >= 32 {
		v1 := seed + xxPrime1 + xxPrime2
		v2 := seed + xxPrime2
		v3 := seed
		v4 := seed - xxPrime1
		for ; i+32 <= n; i += 32 {
			v1 = xxRound(v1, le64(b, i))
			v2 = xxRound(v2, le64(b, i+8))
			v3 = xxRound(v3, le64(b, i+16))
			v4 = xxRound(v4, le64(b, i+24))
		}
		h = bits.RotateLeft64(v1, 1) + bits.RotateLeft64(v2, 7) +
			bits.RotateLeft64(v3, 12) + bits.RotateLeft64(v4, 18)
		h = xxMerge(h, v1)
		h = xxMerge(h, v2)
		h = xxMerge(h, v3)
		h = xxMerge(h, v4)
	} else {
		h = seed + xxPrime5
	}
	h += uint64(n)
	for ; i+8 <= n; i += 8 {
		h ^= xxRound(0, le64(b, i))
		h = bits.RotateLeft64(h, 27)*xxPrime1 + xxPrime4
	}
	if i+4 <= n {
		h ^= uint64(le32(b, i)) * xxPrime1
		h = bits.RotateLeft64(h, 23)*xxPrime2 + xxPrime3
		i += 4
	}
	for ; i < n; i++ {
		h ^= uint64(b[i]) * xxPrime5
		h = bits.RotateLeft64(h, 11) * xxPrime1
	}
	h ^= h >> 33
	h *= xxPrime2
	h ^= h >> 29
	h *= xxPrime3
	h ^= h >> 32
	return h
}

func xxRound(acc, lane uint64) uint64 {
	acc += lane * xxPrime2
	acc = bits.RotateLeft64(acc, 31)
	return acc * xxPrime1
}

func xxMerge(acc, v uint64) uint64 {
	acc ^= xxRound(0, v)
	return acc*xxPrime1 + xxPrime4
}

// le64 reads the little-endian uint64 at b[i:i+8].
func le64[T string | []byte](b T, i int) uint64 {
	_ = b[i+7]
	return uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24 |
		uint64(b[i+4])<<32 | uint64(b[i+5])<<40 | uint64(b[i+6])<<48 | uint64(b[i+7])<<56
}

// le32 reads the little-endian uint32 at b[i:i+4].
func le32[T string | []byte](b T, i int) uint32 {
	_ = b[i+3]
	return uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
}
