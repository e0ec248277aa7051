package ratelimit

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxKeys is the key limit of a Keyed limiter whose MaxKeys is zero.
const DefaultMaxKeys = 10000

const (
	maxShards      = 32
	minShardLength = 64 // keys per shard before the limiter splits into more shards
)

// KeyedOptions configure a [Keyed] limiter.
type KeyedOptions struct {
	// Rate is the number of tokens each key gains per second.
	Rate float64
	// Burst is the most tokens one key can hold; a key seen for the first
	// time starts with Burst tokens.
	Burst int
	// MaxKeys bounds the number of keys remembered at once. Zero means
	// DefaultMaxKeys.
	MaxKeys int
	// Now tells the limiter the time; nil means time.Now. Tests set it to
	// control refill exactly.
	Now func() time.Time
}

// A Keyed limiter keeps one token bucket per key (a client address, a route,
// a header value), all with the same rate and burst, in bounded memory.
//
// # The bound
//
// A Keyed limiter remembers at most MaxKeys keys. The keys are spread by hash
// over up to 32 shards; each shard holds its share of MaxKeys (the shares
// differ by at most one and add up to MaxKeys) and keeps its keys in
// least-recently-used order, where every Allow or Take of a key, allowed or
// not, counts as a use. When a key that is not remembered arrives at a full
// shard, the shard forgets its least recently used key and reuses its memory
// for the new key, which starts with a full bucket of Burst tokens, as every
// new key does. A forgotten key that comes back is a new key again.
//
// Forgetting a key is lossless when the key has not been used for at least
// the refill time, Burst/Rate seconds: its bucket is full again, exactly as a
// new key's would be. So while each shard sees fewer distinct keys within any
// refill time than it can hold, no decision differs from an unbounded
// limiter. Past that, under a flood of distinct keys, a key can be forgotten
// while its bucket is not full, and it then regains up to Burst tokens early;
// no key ever holds more than Burst tokens.
//
// Memory is never released below the high-water mark except by forgetting:
// entries are reused, so a flood of new keys costs no allocation once the
// limiter is full.
//
// A Keyed limiter is safe for concurrent use. Allow on a remembered key takes
// one shard lock briefly and does not allocate. The limiter retains the key
// strings it is given.
type Keyed struct {
	now    func() time.Time
	epoch  time.Time
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

// shard is one lock's worth of keys with an LRU list. The list is circular
// through root: root.next is the most recently used entry, root.prev the
// least.
type shard struct {
	mu   sync.Mutex
	lim  limit // the same in every shard; SetLimit changes it shard by shard
	m    map[string]*entry
	root entry
	cap  int
	_    [64]byte // keep neighbouring shards' locks off one cache line
}

type entry struct {
	key        string
	tat        int64
	prev, next *entry
}

// NewKeyed returns a Keyed limiter configured by opts. Rate and Burst obey
// the rules of [BucketOptions]; MaxKeys must not be negative. It returns an
// error wrapping [ErrInvalidLimit] otherwise.
func NewKeyed(opts KeyedOptions) (*Keyed, error) {
	lim, err := newLimit(opts.Rate, opts.Burst)
	if err != nil {
		return nil, err
	}
	maxKeys := opts.MaxKeys
	switch {
	case maxKeys < 0:
		return nil, fmt.Errorf("ratelimit: MaxKeys %d: must be >= 0: %w", maxKeys, ErrInvalidLimit)
	case maxKeys == 0:
		maxKeys = DefaultMaxKeys
	}
	n := 1
	for n < maxShards && n*2*minShardLength <= maxKeys {
		n *= 2
	}
	k := &Keyed{
		now:    opts.Now,
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]shard, n),
	}
	if k.now == nil {
		k.now = time.Now
	}
	k.epoch = k.now()
	for i := range k.shards {
		s := &k.shards[i]
		s.lim = lim
		s.cap = maxKeys / n
		if i < maxKeys%n {
			s.cap++
		}
		s.m = make(map[string]*entry)
		s.root.next, s.root.prev = &s.root, &s.root
	}
	return k, nil
}

// Allow takes one token from key's bucket if it holds one and reports
// whether it did.
func (k *Keyed) Allow(key string) bool {
	ok, _ := k.TakeN(key, k.now(), 1)
	return ok
}

// Take takes one token from key's bucket if it holds one. If it holds none,
// Take reports how long until it will, which suits a Retry-After header.
func (k *Keyed) Take(key string) (ok bool, retryAfter time.Duration) {
	return k.TakeN(key, k.now(), 1)
}

// TakeN takes n tokens from key's bucket at time now, with the semantics of
// Bucket.TakeN.
func (k *Keyed) TakeN(key string, now time.Time, n int) (ok bool, retryAfter time.Duration) {
	t := now.Sub(k.epoch).Nanoseconds()
	s := &k.shards[maphash.String(k.seed, key)&k.mask]
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		e = s.insert(key, t)
	} else {
		s.touch(e)
	}
	next, ok, retry := s.lim.take(e.tat, t, n)
	e.tat = next
	s.mu.Unlock()
	return ok, retry
}

// Refund gives back n tokens taken earlier from key's bucket, as when a
// request this limiter allowed was then refused by another limit. A key no
// longer remembered has a full bucket already; a refund of n <= 0 tokens
// does nothing. Refund does not count as a use of key.
func (k *Keyed) Refund(key string, n int) {
	if n <= 0 {
		return
	}
	s := &k.shards[maphash.String(k.seed, key)&k.mask]
	s.mu.Lock()
	if e := s.m[key]; e != nil {
		e.tat -= int64(n) * s.lim.interval
	}
	s.mu.Unlock()
}

// SetLimit changes the rate and burst of every key, with the rules of
// [BucketOptions]. Each remembered key keeps the tokens it holds, up to the new
// burst, and from then on refills at the new rate. It is safe to call
// while other goroutines take tokens; it locks one shard at a time.
func (k *Keyed) SetLimit(rate float64, burst int) error {
	lim, err := newLimit(rate, burst)
	if err != nil {
		return err
	}
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		t := k.now().Sub(k.epoch).Nanoseconds()
		for e := s.root.next; e != &s.root; e = e.next {
			e.tat = convert(s.lim, e.tat, lim, t)
		}
		s.lim = lim
		s.mu.Unlock()
	}
	return nil
}

// Tokens reports how many tokens key's bucket holds now. A key that is not
// remembered holds Burst tokens. Tokens does not count as a use of key.
func (k *Keyed) Tokens(key string) float64 {
	t := k.now().Sub(k.epoch).Nanoseconds()
	s := &k.shards[maphash.String(k.seed, key)&k.mask]
	s.mu.Lock()
	tat := t
	if e := s.m[key]; e != nil {
		tat = e.tat
	}
	lim := s.lim
	s.mu.Unlock()
	return lim.tokens(tat, t)
}

// Len reports the number of keys remembered.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// MaxKeys reports the most keys the limiter remembers.
func (k *Keyed) MaxKeys() int {
	n := 0
	for i := range k.shards {
		n += k.shards[i].cap
	}
	return n
}

// insert adds key with a full bucket at time t as the most recently used
// entry, forgetting the least recently used entry if the shard is full.
func (s *shard) insert(key string, t int64) *entry {
	var e *entry
	if len(s.m) >= s.cap {
		e = s.root.prev
		delete(s.m, e.key)
		s.unlink(e)
	} else {
		e = new(entry)
	}
	e.key, e.tat = key, t
	s.m[key] = e
	s.pushFront(e)
	return e
}

// touch makes e the most recently used entry.
func (s *shard) touch(e *entry) {
	if s.root.next == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

func (s *shard) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
}

func (s *shard) pushFront(e *entry) {
	e.prev = &s.root
	e.next = s.root.next
	s.root.next.prev = e
	s.root.next = e
}
