package maglev

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DefaultSize is the table size M used when [Options.Size] is zero. It is the
// prime the Maglev paper uses.
const DefaultSize = 65537

// MaxSize is the largest table size [Build] accepts. A table takes two bytes
// per entry (four when it has more than 65535 backends), so a table of
// MaxSize entries takes 32 MiB or 64 MiB.
const MaxSize = 1 << 24

// Errors returned by [Build], wrapped with the name of the offending field.
// Test for them with [errors.Is].
var (
	// ErrNoBackends means the backend list is empty.
	ErrNoBackends = errors.New("no backends")
	// ErrZeroWeight means every backend has weight zero.
	ErrZeroWeight = errors.New("total weight is zero")
	// ErrInvalidSize means the table size is not a prime in [2, MaxSize].
	ErrInvalidSize = errors.New("table size must be a prime between 2 and MaxSize")
	// ErrEmptyName means a backend has an empty name.
	ErrEmptyName = errors.New("backend name is empty")
	// ErrDuplicateName means two backends have the same name.
	ErrDuplicateName = errors.New("duplicate backend name")
)

// Backend is one member of a Maglev table.
type Backend struct {
	// Name identifies the backend, for example "10.0.0.7:8080". It must be
	// non-empty and unique within a table, and stable: the backend's place in
	// the table is derived from it alone, so a backend keeps most of its
	// entries across rebuilds as long as its name does not change.
	Name string
	// Weight is the backend's share of the table relative to the others.
	// A backend of weight zero is kept in the table's backend list but owns
	// no entry and is never picked.
	Weight uint32
}

// Options are the parameters of [Build]. The zero Options are valid and build
// a table of [DefaultSize] entries.
type Options struct {
	// Size is the number of entries M of the lookup table. It must be a prime
	// no larger than MaxSize; zero means DefaultSize. It should be much
	// larger than the number of backends (the paper suggests M > 100·N) for
	// the shares to follow the weights closely.
	Size int
}

// Table is an immutable Maglev lookup table. It is safe for concurrent use.
// Obtain one from [Build]; to change the backends, build a new table.
//
// The zero Table has no backends and its Pick returns -1.
type Table struct {
	backends []Backend // sorted by name
	counts   []int     // entries owned by each backend
	small    []uint16  // lookup table when len(backends) <= math.MaxUint16
	large    []uint32  // lookup table otherwise
}

// Build returns the Maglev lookup table of backends.
//
// Backends are sorted by name first, so the order of the input does not
// matter, and every index used by the returned table refers to that sorted
// list. Each backend's permutation of the table is given by
//
//	offset = XXH64(name, seed 0) mod M
//	skip   = XXH64(name, seed 1) mod (M-1) + 1
//	permutation[j] = (offset + j·skip) mod M
//
// which depends only on the name and M, so equal input builds the same table
// in every process and on every machine.
//
// The table is filled in rounds as in the Maglev paper, with weights applied
// by skipping turns: a backend of weight w takes its k-th turn (k = 0, 1, ...)
// in round ⌊k·Wmax/w⌋, where Wmax is the largest weight, and within a round
// backends take their turns in name order. A turn claims the next entry of the
// backend's permutation that is still free. So the heaviest backend takes a
// turn in every round, a backend of half its weight in every second round,
// and every backend of positive weight takes a turn in round 0 and owns at
// least one entry. With equal weights every backend owns ⌊M/N⌋ or ⌈M/N⌉
// entries.
//
// If more than M backends have positive weight, not all of them can own an
// entry: then the M heaviest, ties broken by name, own one entry each, and the
// rest, like backends of weight zero, stay in the backend list but are never
// picked.
//
// Build returns an error wrapping [ErrNoBackends] for an empty list,
// [ErrZeroWeight] when no backend has positive weight, [ErrInvalidSize] for a
// bad [Options.Size], and [ErrEmptyName] or [ErrDuplicateName] for bad names.
// Filling takes about M·ln M probes of the table (times log N heap steps
// when weights differ), sorting N·log N comparisons. Build does not modify
// backends.
func Build(backends []Backend, opts Options) (*Table, error) {
	m := opts.Size
	if m == 0 {
		m = DefaultSize
	}
	if m < 2 || m > MaxSize || !isPrime(m) {
		return nil, fmt.Errorf("maglev: Options.Size %d: %w", opts.Size, ErrInvalidSize)
	}
	if len(backends) == 0 {
		return nil, fmt.Errorf("maglev: backends: %w", ErrNoBackends)
	}
	if uint64(len(backends)) >= math.MaxUint32 {
		return nil, fmt.Errorf("maglev: backends: %d backends, at most %d are supported", len(backends), uint64(math.MaxUint32-1))
	}
	var total uint64
	for i, b := range backends {
		if b.Name == "" {
			return nil, fmt.Errorf("maglev: backends[%d].Name: %w", i, ErrEmptyName)
		}
		total += uint64(b.Weight)
	}
	if total == 0 {
		return nil, fmt.Errorf("maglev: backends[0:%d].Weight: %w", len(backends), ErrZeroWeight)
	}

	sorted := slices.Clone(backends)
	slices.SortFunc(sorted, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return nil, fmt.Errorf("maglev: backends: Name %q: %w", sorted[i].Name, ErrDuplicateName)
		}
	}

	// active lists, in name order, the indexes of the backends that take turns.
	active := make([]uint32, 0, len(sorted))
	for i, b := range sorted {
		if b.Weight > 0 {
			active = append(active, uint32(i))
		}
	}
	if len(active) > m {
		slices.SortFunc(active, func(a, b uint32) int {
			if c := cmp.Compare(sorted[b].Weight, sorted[a].Weight); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		active = active[:m]
		slices.Sort(active)
	}

	t := &Table{backends: sorted, counts: make([]int, len(sorted))}
	if len(sorted) <= math.MaxUint16 {
		t.small = populate[uint16](sorted, active, m, t.counts)
	} else {
		t.large = populate[uint32](sorted, active, m, t.counts)
	}
	return t, nil
}

// turnState is the progress of one active backend through its permutation
// and its turn schedule.
type turnState struct {
	pos    uint32 // next entry of the permutation to try
	skip   uint32
	index  uint32 // index of the backend in the sorted list
	weight uint32
	next   uint64 // round of the next turn
	step   uint64 // ⌊Wmax/weight⌋
	rem    uint64 // Wmax mod weight
	acc    uint64 // accumulated remainder, below weight
}

// populate returns the lookup table of m entries for the backends at the
// indexes active of sorted, following the algorithm documented on Build, and
// adds to counts the entries each backend owns. len(active) must be in
// [1, m], and every index in sorted must be below the largest value of E,
// which marks free entries while the table is filled.
func populate[E uint16 | uint32](sorted []Backend, active []uint32, m int, counts []int) []E {
	free := ^E(0)
	table := make([]E, m)
	for j := range table {
		table[j] = free
	}
	mm := uint64(m)
	var wmax uint32
	state := make([]turnState, len(active))
	for p, i := range active {
		b := sorted[i]
		state[p] = turnState{
			pos:    uint32(xxh64(b.Name, offsetSeed) % mm),
			skip:   uint32(xxh64(b.Name, skipSeed)%(mm-1) + 1),
			index:  i,
			weight: b.Weight,
		}
		wmax = max(wmax, b.Weight)
	}

	// take gives a backend its next turn: it claims the first free entry of
	// its permutation.
	take := func(s *turnState) {
		pos, skip := s.pos, s.skip
		for table[pos] != free {
			pos += skip
			if pos >= uint32(m) {
				pos -= uint32(m)
			}
		}
		table[pos] = E(s.index)
		counts[s.index]++
		pos += skip
		if pos >= uint32(m) {
			pos -= uint32(m)
		}
		s.pos = pos
	}

	if slices.IndexFunc(state, func(s turnState) bool { return s.weight != wmax }) < 0 {
		// Equal weights: every backend takes a turn in every round.
		for filled := 0; filled < m; {
			for p := range state {
				take(&state[p])
				if filled++; filled == m {
					break
				}
			}
		}
		return table
	}

	// The turn of round r at position p has the key r<<32 | p, so keys order
	// turns by round and then by name. A min-heap of keys, one per active
	// backend, yields the turns in order. The heaviest backend takes a turn
	// in every round, so the table is full before round m, and rounds beyond
	// m can be clamped to m without changing the order of the turns taken.
	h := make(turnHeap, len(state))
	for p := range state {
		s := &state[p]
		s.step = uint64(wmax / s.weight)
		s.rem = uint64(wmax % s.weight)
		h[p] = uint64(p) // round 0
	}
	for range m {
		p := uint32(h[0])
		s := &state[p]
		take(s)
		// Advance next from ⌊k·Wmax/w⌋ to ⌊(k+1)·Wmax/w⌋.
		s.next += s.step
		s.acc += s.rem
		if s.acc >= uint64(s.weight) {
			s.acc -= uint64(s.weight)
			s.next++
		}
		h[0] = min(s.next, mm)<<32 | uint64(p)
		h.down()
	}
	return table
}

// turnHeap is a binary min-heap of turn keys.
type turnHeap []uint64

// down restores the heap property after the root has grown.
func (h turnHeap) down() {
	n := len(h)
	i := 0
	x := h[0]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r] < h[c] {
			c = r
		}
		if x <= h[c] {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = x
}

// isPrime reports whether n is prime, by trial division; n is at most
// MaxSize, so this takes a few thousand steps at most.
func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := 3; d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// Pick returns the index, into the name-sorted backend list of t, of the
// backend that owns the entry hash mod M. Pass a well-mixed hash of the
// request key, such as [HashString] of a client address. Pick takes constant
// time and does not allocate. It returns -1 only for the zero Table.
func (t *Table) Pick(hash uint64) int {
	if s := t.small; len(s) != 0 {
		return int(s[hash%uint64(len(s))])
	}
	if l := t.large; len(l) != 0 {
		return int(l[hash%uint64(len(l))])
	}
	return -1
}

// Len returns the number of backends of t, including those that own no entry.
func (t *Table) Len() int {
	return len(t.backends)
}

// Size returns the number of entries M of the lookup table.
func (t *Table) Size() int {
	return len(t.small) + len(t.large)
}

// Backend returns the backend at index i of the name-sorted backend list.
// It panics if i is out of range, like a slice index.
func (t *Table) Backend(i int) Backend {
	return t.backends[i]
}

// Backends returns a copy of the name-sorted backend list of t: the backend
// that [Table.Pick] reports as index i is Backends()[i].
func (t *Table) Backends() []Backend {
	return slices.Clone(t.backends)
}

// Index returns the index of the backend called name, and whether there is
// one.
func (t *Table) Index(name string) (int, bool) {
	return slices.BinarySearchFunc(t.backends, name, func(b Backend, n string) int {
		return strings.Compare(b.Name, n)
	})
}

// Entries returns the number of lookup table entries that the backend at index
// i owns; its expected share of traffic is Entries(i)/Size(). It panics if i
// is out of range, like a slice index.
func (t *Table) Entries(i int) int {
	return t.counts[i]
}
